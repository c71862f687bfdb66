"""The Authlib glue: models, grants and Starlette endpoints of the dev provider.

Endpoints (relative to the issuer ``<base>/oidc``):

=====================================  ==============================================
``GET  /.well-known/openid-configuration``  discovery
``GET  /jwks``                              signing keys (``kid``)
``GET  /authorize``                         HTML login form (fields ``username``,
                                            ``password``; the query string is kept)
``POST /authorize``                         posts the form → 302 to ``redirect_uri``
``POST /token``                             code+PKCE, refresh_token, device_code
``POST /device_authorization``              RFC 8628 device authorization
``GET/POST /device``                        verification form (``user_code``,
                                            ``username``, ``password``)
``POST /revoke``                            RFC 7009 revocation
``GET  /userinfo``                          claims for a bearer access token
=====================================  ==============================================

Authlib's grant classes are synchronous; every call here is quick and in-memory, so the
async handlers call them directly on the event loop.
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import (
    DEVICE_CODE_GRANT_TYPE,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
)
from authlib.oidc.core import OpenIDCode, OpenIDToken, UserInfo
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey, RSAKey
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from controller.config import DemoUser, DevOidcConfig

__all__ = ["DevOidcProvider"]

_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
_MAX_FORM = 16 * 1024


# --- models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    username: str
    email: str
    name: str
    groups: tuple[str, ...]

    def get_user_id(self) -> str:
        return self.username


class _Client:
    """The public native desktop client: loopback redirects on any port (RFC 8252 §7.3)."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in _SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        parts = urlsplit(redirect_uri)
        return (
            parts.scheme == "http"
            and parts.hostname in {"127.0.0.1", "::1", "localhost"}
            and not parts.username
            and not parts.fragment
        )

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token", DEVICE_CODE_GRANT_TYPE}


class _WebClient(_Client):
    """The admin console: a confidential web client with a secret and one exact redirect.

    It authenticates at the token endpoint with its secret (basic or post), uses the
    authorization code grant only, and still sends PKCE (required for every client here).
    """

    def __init__(self, client_id: str, secret: str, redirect_uri: str) -> None:
        super().__init__(client_id)
        self._secret = secret
        self._redirect_uri = redirect_uri

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return hmac.compare_digest(redirect_uri.encode(), self._redirect_uri.encode())

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self._secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: _User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return ["pwd"]


@dataclass
class _Token:
    client_id: str
    user: _User
    scope: str
    access_jti: str
    refresh_token: str | None
    issued_at: float
    expires_in: int
    refresh_expires_at: float
    revoked: bool = False

    def check_client(self, client: _Client) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.refresh_expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> _User:
        return self.user

    def get_client(self) -> _Client:
        return _Client(self.client_id)


@dataclass
class _DeviceCredential:
    client_id: str
    scope: str
    device_code: str
    user_code: str
    expires_at: float
    last_poll: float = 0.0

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def get_nonce(self) -> None:
        return None

    def get_auth_time(self) -> None:
        return None

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


@dataclass
class _State:
    codes: dict[str, _AuthCode] = field(default_factory=dict)
    tokens_by_refresh: dict[str, _Token] = field(default_factory=dict)
    tokens_by_jti: dict[str, _Token] = field(default_factory=dict)
    devices: dict[str, _DeviceCredential] = field(default_factory=dict)
    user_grants: dict[str, tuple[_User, bool]] = field(default_factory=dict)
    nonces: set[tuple[str, str]] = field(default_factory=set)


# --- request glue ------------------------------------------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, data: dict[str, str], datalist: dict[str, list[str]]) -> None:
        self._data = data
        self._datalist = datalist

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class _Req(OAuth2Request):  # type: ignore[misc]
    """An ``OAuth2Request`` built from an already-read Starlette request."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        datalist: dict[str, list[str]] = defaultdict(list)
        for k, v in [*query, *form]:
            datalist[k].append(v)
        data = {k: v[0] for k, v in datalist.items()}
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(data, dict(datalist))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def _read(request: Request) -> _Req:
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise ValueError("form too large")
    form: list[tuple[str, str]] = []
    if body and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        from urllib.parse import parse_qsl

        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return _Req(
        request.method,
        str(request.url),
        # Case-insensitive (Authlib reads "Authorization" for client_secret_basic).
        request.headers,
        list(request.query_params.multi_items()),
        form,
    )


# --- the provider ------------------------------------------------------------------------


class DevOidcProvider:
    """A development OIDC provider for ``issuer`` with the configured demo users.

    ``routes()`` gives the Starlette routes to mount at the issuer's path. Public keys:
    ``public_keyset()`` (what ``/jwks`` serves). Thread-safe for its in-memory state.

    With ``console_redirect_uri``, the admin console is registered as a second,
    confidential client ``console_client_id`` whose secret (``console_client_secret``)
    is made here, fresh at every start (the console runs in the same process).
    """

    def __init__(
        self,
        config: DevOidcConfig,
        issuer: str,
        *,
        api_audience: str,
        console_redirect_uri: str | None = None,
        console_client_id: str = "rustronaut-console",
    ) -> None:
        self.config = config
        self.issuer = issuer.rstrip("/")
        self.api_audience = api_audience
        self._users = {u.username: u for u in config.users}
        self._client = _Client(config.client_id)
        self.console_client_id = console_client_id
        self.console_client_secret = secrets.token_urlsafe(32)
        self._web_client = (
            _WebClient(console_client_id, self.console_client_secret, console_redirect_uri)
            if console_redirect_uri is not None
            else None
        )
        self._state = _State()
        self._lock = threading.RLock()
        if config.id_token_alg == "RS256":  # noqa: S105
            self._key: RSAKey | OKPKey = RSAKey.import_key(
                generate_private_key(public_exponent=65537, key_size=2048),
                {"use": "sig", "alg": "RS256"},
            )
        else:
            self._key = OKPKey.import_key(
                Ed25519PrivateKey.generate(), {"use": "sig", "alg": "EdDSA"}
            )
        self._key.ensure_kid()
        self.alg = config.id_token_alg
        self._server = self._build_server()

    # keys and tokens ------------------------------------------------------------------
    @property
    def kid(self) -> str:
        """The signing key id."""
        return str(self._key.kid)

    def public_keyset(self) -> dict[str, Any]:
        """The JWKS document (public keys only)."""
        return {"keys": [self._key.as_dict(private=False, kid=self.kid, alg=self.alg, use="sig")]}

    def verification_keys(self) -> KeySet:
        """The key set for in-process validation of this provider's tokens."""
        return KeySet([self._key])

    def _access_token(self, user: _User, scope: str, ttl: int, jti: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user.username,
            "aud": self.api_audience,
            "azp": self._client.client_id,
            "client_id": self._client.client_id,
            "iat": now,
            "exp": now + ttl,
            "jti": jti,
            "scope": scope,
            "email": user.email,
            "groups": list(user.groups),
        }
        return jwt.encode({"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}, claims, self._key)

    def _generate_token(
        self,
        grant_type: str,
        client: _Client,
        user: _User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        assert user is not None
        ttl = self.config.access_token_ttl_s
        jti = secrets.token_urlsafe(16)
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": self._access_token(user, scope or "", ttl, jti),
            "expires_in": ttl,
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def _save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        claims = jwt.decode(token["access_token"], self._key).claims
        record = _Token(
            client_id=request.client.get_client_id(),
            user=request.user,
            scope=token.get("scope", ""),
            access_jti=claims["jti"],
            refresh_token=token.get("refresh_token"),
            issued_at=time.time(),
            expires_in=int(token["expires_in"]),
            refresh_expires_at=time.time() + self.config.refresh_token_ttl_s,
        )
        with self._lock:
            self._state.tokens_by_jti[record.access_jti] = record
            if record.refresh_token:
                self._state.tokens_by_refresh[record.refresh_token] = record

    def access_token_revoked(self, jti: str) -> bool:
        """True when the access token ``jti`` was revoked (directly or by its refresh)."""
        with self._lock:
            rec = self._state.tokens_by_jti.get(jti)
            return rec is not None and rec.revoked

    def _authenticate(self, username: str, password: str) -> _User | None:
        demo: DemoUser | None = self._users.get(username)
        if demo is None:
            # Same work either way so the response time does not reveal user names.
            hmac.compare_digest(password.encode(), b"x" * 16)
            return None
        if not hmac.compare_digest(password.encode(), demo.password.encode()):
            return None
        return _User(demo.username, demo.email, demo.name, tuple(demo.groups))

    def _user_info(self, user: _User, scope: str) -> UserInfo:
        info = UserInfo(sub=user.username)
        scopes = set(scope.split())
        if "profile" in scopes:
            info["name"] = user.name
            info["preferred_username"] = user.username
        if "email" in scopes:
            info["email"] = user.email
            info["email_verified"] = True
        if "groups" in scopes or "profile" in scopes:
            info["groups"] = list(user.groups)
        return info

    # authlib server -------------------------------------------------------------------
    def _build_server(self) -> AuthorizationServer:
        provider = self
        state = self._state
        lock = self._lock

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> _Client | None:
                if client_id == provider._client.client_id:
                    return provider._client
                web = provider._web_client
                return web if web is not None and client_id == web.client_id else None

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                provider._save_token(token, request)

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request

            def handle_response(self, status: int, body: Any, headers: Any) -> Response:
                hdrs = dict(headers)
                if isinstance(body, dict):
                    hdrs.pop("Content-Type", None)
                    return JSONResponse(body, status_code=status, headers=hdrs)
                return Response(body or b"", status_code=status, headers=hdrs)

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                return None

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            # "none" for the desktop app; a secret for the console (each client accepts
            # only its own method: check_endpoint_auth_method).
            TOKEN_ENDPOINT_AUTH_METHODS = [  # noqa: RUF012
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                with lock:
                    if data.get("nonce"):
                        state.nonces.add((request.client.get_client_id(), data["nonce"]))
                    state.codes[code] = _AuthCode(
                        code=code,
                        client_id=request.client.get_client_id(),
                        redirect_uri=data.get("redirect_uri", ""),
                        scope=request.client.get_allowed_scope(data.get("scope")),
                        user=request.user,
                        nonce=data.get("nonce"),
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                        auth_time=int(time.time()),
                        expires_at=time.time() + 120,
                    )

            def query_authorization_code(self, code: str, client: _Client) -> _AuthCode | None:
                with lock:
                    item = state.codes.get(code)
                if (
                    item
                    and item.client_id == client.get_client_id()
                    and item.expires_at > time.time()
                ):
                    return item
                return None

            def delete_authorization_code(self, authorization_code: _AuthCode) -> None:
                with lock:
                    state.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _AuthCode) -> _User:
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["none"]  # noqa: RUF012
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: each refresh token works once

            def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
                with lock:
                    item = state.tokens_by_refresh.get(refresh_token)
                if item and not item.revoked and not item.is_expired():
                    return item
                return None

            def authenticate_user(self, refresh_token: _Token) -> _User:
                return refresh_token.user

            def revoke_old_credential(self, refresh_token: _Token) -> None:
                with lock:
                    refresh_token.revoked = True

        class DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["none"]  # noqa: RUF012

            def query_device_credential(self, device_code: str) -> _DeviceCredential | None:
                with lock:
                    return state.devices.get(device_code)

            def query_user_grant(self, user_code: str) -> tuple[_User, bool] | None:
                with lock:
                    return state.user_grants.get(user_code)

            def should_slow_down(self, credential: _DeviceCredential) -> bool:
                now = time.time()
                too_fast = now - credential.last_poll < provider.config.device_poll_interval_s
                credential.last_poll = now
                return too_fast

        class DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS = ["none"]  # noqa: RUF012
            EXPIRES_IN = self.config.device_code_ttl_s
            INTERVAL = self.config.device_poll_interval_s

            def get_verification_uri(self) -> str:
                return f"{provider.issuer}/device"

            def save_device_credential(
                self, client_id: str, scope: str, data: dict[str, Any]
            ) -> None:
                with lock:
                    state.devices[data["device_code"]] = _DeviceCredential(
                        client_id=client_id,
                        scope=_Client(client_id).get_allowed_scope(scope),
                        device_code=data["device_code"],
                        user_code=data["user_code"],
                        expires_at=time.time() + data["expires_in"],
                    )

        class Revocation(RevocationEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS = ["none"]  # noqa: RUF012

            def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
                with lock:
                    item = state.tokens_by_refresh.get(token_string)
                if item is None:
                    try:
                        jti = jwt.decode(token_string, provider._key).claims.get("jti")
                    except (JoseError, ValueError):
                        return None
                    with lock:
                        item = state.tokens_by_jti.get(str(jti))
                return item

            def revoke_token(self, token: _Token, request: OAuth2Request) -> None:
                with lock:
                    token.revoked = True

        class IdToken(OpenIDToken):  # type: ignore[misc]
            def resolve_client_private_key(self, client: _Client) -> Any:
                return provider._key

            def get_client_algorithm(self, client: _Client) -> str:
                return provider.alg

            def get_encode_header(self, client: _Client) -> dict[str, str]:
                return {"alg": provider.alg, "kid": provider.kid}

            def get_client_claims(self, client: _Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def generate_user_info(self, user: _User, scope: str) -> UserInfo:
                return provider._user_info(user, scope)

        class IdTokenCode(IdToken, OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                # A nonce is spent once a code was issued with it (see save_authorization_code).
                with lock:
                    return (request.payload.client_id or "", nonce) in state.nonces

        server = Server(scopes_supported=_SCOPES)
        server.register_token_generator("default", self._generate_token)
        server.register_grant(
            CodeGrant, [CodeChallenge(required=True), IdTokenCode(require_nonce=False)]
        )
        server.register_grant(RefreshGrant, [IdToken()])
        server.register_grant(DeviceGrant, [IdToken()])
        server.register_endpoint(DeviceEndpoint)
        server.register_endpoint(Revocation)
        return server

    # HTTP ------------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata document."""
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "device_authorization_endpoint": f"{i}/device_authorization",
            "revocation_endpoint": f"{i}/revoke",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                DEVICE_CODE_GRANT_TYPE,
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": _SCOPES,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
        }

    def routes(self) -> list[Route]:
        """Starlette routes, paths relative to the issuer's mount point."""

        async def discovery(request: Request) -> Response:
            return JSONResponse(self.discovery())

        async def jwks(request: Request) -> Response:
            return JSONResponse(self.public_keyset())

        async def authorize(request: Request) -> Response:
            try:
                req = await _read(request)
            except ValueError:
                return JSONResponse({"error": "invalid_request"}, status_code=413)
            if request.method == "GET":
                try:
                    self._server.get_consent_grant(req, end_user=None)
                except OAuth2Error as err:
                    return JSONResponse(
                        {"error": err.error, "error_description": err.description},
                        status_code=400,
                    )
                return HTMLResponse(_login_page(str(request.url.query), None))
            user = self._authenticate(req.form.get("username", ""), req.form.get("password", ""))
            if user is None:
                return HTMLResponse(
                    _login_page(str(request.url.query), "Wrong user name or password."),
                    status_code=401,
                )
            req.user = user
            try:
                grant = self._server.get_consent_grant(req, end_user=user)
            except OAuth2Error as err:
                return JSONResponse(
                    {"error": err.error, "error_description": err.description}, status_code=400
                )
            resp: Response = self._server.create_authorization_response(
                req, grant_user=user, grant=grant
            )
            return resp

        async def token(request: Request) -> Response:
            try:
                req = await _read(request)
            except ValueError:
                return JSONResponse({"error": "invalid_request"}, status_code=413)
            resp: Response = self._server.create_token_response(req)
            return resp

        async def device_authorization(request: Request) -> Response:
            req = await _read(request)
            resp: Response = self._server.create_endpoint_response(
                DeviceAuthorizationEndpoint.ENDPOINT_NAME, req
            )
            return resp

        async def revoke(request: Request) -> Response:
            req = await _read(request)
            resp: Response = self._server.create_endpoint_response(
                RevocationEndpoint.ENDPOINT_NAME, req
            )
            return resp

        async def device(request: Request) -> Response:
            if request.method == "GET":
                return HTMLResponse(_device_page(request.query_params.get("user_code", ""), None))
            req = await _read(request)
            code = req.form.get("user_code", "").strip().upper()
            user = self._authenticate(req.form.get("username", ""), req.form.get("password", ""))
            with self._lock:
                known = any(
                    d.user_code == code and not d.is_expired() for d in self._state.devices.values()
                )
                if user is not None and known:
                    self._state.user_grants[code] = (user, True)
            if user is None or not known:
                why = "Wrong user name or password." if user is None else "Unknown or expired code."
                return HTMLResponse(_device_page(code, why), status_code=400)
            return HTMLResponse(
                "<!doctype html><title>Signed in</title><p>Device signed in. "
                "You may close this page.</p>"
            )

        async def userinfo(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            try:
                tok = jwt.decode(auth[7:].strip(), self._key)
            except (JoseError, ValueError):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            claims = tok.claims
            if claims.get("exp", 0) < time.time() or self.access_token_revoked(
                str(claims.get("jti"))
            ):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            demo = self._users.get(str(claims.get("sub")))
            if demo is None:
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            user = _User(demo.username, demo.email, demo.name, tuple(demo.groups))
            return JSONResponse(dict(self._user_info(user, str(claims.get("scope", "")))))

        return [
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/device_authorization", device_authorization, methods=["POST"]),
            Route("/device", device, methods=["GET", "POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/userinfo", userinfo, methods=["GET"]),
        ]


def _login_page(query: str, error: str | None) -> str:
    msg = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    action = "authorize?" + html.escape(query, quote=True)
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Sign in (development)</title>"
        f"</head><body><h1>Rustronaut development sign-in</h1>{msg}"
        f'<form method="post" action="{action}">'
        '<label>User <input name="username" autocomplete="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit">Sign in</button></form></body></html>'
    )


def _device_page(user_code: str, error: str | None) -> str:
    msg = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Device sign-in</title></head>"
        f"<body><h1>Sign in a device</h1>{msg}"
        '<form method="post" action="device">'
        f'<label>Code <input name="user_code" value="{html.escape(user_code, quote=True)}"></label>'
        '<label>User <input name="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit">Approve</button></form></body></html>'
    )
