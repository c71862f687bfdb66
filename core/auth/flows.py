"""The OpenID Connect flows of a native app, over Authlib's httpx OAuth 2 client.

``OidcClient`` runs discovery, the browser login (authorization code + PKCE S256 with a
loopback redirect, RFC 8252), the device authorization grant (RFC 8628), refresh and
revocation (RFC 7009). Every result is verified before it is returned (ID token via
``IdTokenVerifier``); nothing here stores anything: the caller (``Session``) stores only
what a flow returned, so a failed login leaves the keyring untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import secrets
import time
import warnings
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():
    # Authlib 1.7+ prefers the "httpx2" fork and warns once when it falls back to httpx;
    # the whole client is built on httpx 0.28, which this integration still supports.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from core.aio import cancel_and_wait, spawn
from core.auth._threads import in_thread
from core.auth.discovery import DiscoveryCache, ProviderMetadata
from core.auth.errors import (
    AuthError,
    BadProviderResponse,
    ClockSkewError,
    ConfigurationError,
    DeviceCodeExpired,
    DiscoveryError,
    IdTokenError,
    LoginDenied,
    LoginError,
    LoginTimeout,
    ReauthRequired,
    TokenError,
)
from core.auth.http import check_endpoint_url, json_object, make_transport, map_transport_error
from core.auth.idtoken import DEFAULT_SKEW_S, IdTokenClaims, IdTokenVerifier, JwksCache
from core.auth.idtoken import server_time as _server_time
from core.auth.loopback import AuthorizationResponse, LoopbackListener
from core.auth.tokens import TokenSet
from core.text import safe_line

__all__ = [
    "DEFAULT_SCOPES",
    "DEVICE_CODE_GRANT",
    "DevicePrompt",
    "OidcClient",
    "OidcConfig",
    "OpenUrl",
]

_log = logging.getLogger(__name__)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access")

#: Opens the authorization URL in a browser. May return an awaitable (awaited) or
#: ``False`` (no browser could be opened: the login fails with a hint to use --device).
OpenUrl = Callable[[str], object]
#: ``on_prompt(user_code, verification_uri, verification_uri_complete)`` for the device flow.
DevicePrompt = Callable[[str, str, str | None], object]


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Which provider and client to use, from managed or user settings (never the network)."""

    issuer: str
    client_id: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    skew_s: int = DEFAULT_SKEW_S
    login_timeout_s: float = 300.0
    http_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_id.isprintable():
            raise ConfigurationError("The OIDC client id is empty or not printable.")
        if "openid" not in self.scopes:
            raise ConfigurationError("The OIDC scopes must include 'openid'.")


async def _system_browser(url: str) -> bool:
    # webbrowser.open can block while it starts a browser: keep it off the loop thread.
    return await in_thread(webbrowser.open, url)


class OidcClient:
    """One provider, one client id. Loop thread only; create once and reuse (caches).

    ``transport`` is the test seam (e.g. ``httpx.MockTransport``); by default real HTTPS
    with the OS trust store. ``open_url`` opens the login page (default: the system
    browser); ``sleep`` and ``clock`` drive the device flow's polling and token times.
    """

    def __init__(
        self,
        config: OidcConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        open_url: OpenUrl | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._transport = transport
        #: This computer's clock minus the provider's (from the last ``Date`` header seen),
        #: or ``None`` before any answer: how far off the clock is, for the user's words.
        self.clock_skew_s: float | None = None
        hooks = {"response": [self._note_date]}
        timeout = httpx.Timeout(config.http_timeout_s)
        headers = {"User-Agent": "rustronaut-client"}
        # Two clients, each owning its (capped) transport: plain GET/POSTs, and Authlib's
        # OAuth 2 client for the token endpoint (grants, PKCE, client auth "none").
        # trust_env=False (defensive, as the controller client): with an explicit transport
        # httpx 0.28 already ignores proxy variables; keep any future env use out as well.
        self._http = httpx.AsyncClient(
            transport=make_transport(transport),
            timeout=timeout,
            headers=headers,
            trust_env=False,
            event_hooks=hooks,
        )
        self._oauth = AsyncOAuth2Client(
            client_id=config.client_id,
            token_endpoint_auth_method="none",  # noqa: S106 (public client)
            revocation_endpoint_auth_method="none",
            code_challenge_method="S256",
            transport=make_transport(transport),
            timeout=timeout,
            headers=headers,
            trust_env=False,
            event_hooks=hooks,
        )
        self.discovery = DiscoveryCache(config.issuer, self._http)
        self._verifier: IdTokenVerifier | None = None
        self._open_url: OpenUrl = open_url or _system_browser
        self._sleep = sleep
        self._clock = clock

    async def aclose(self) -> None:
        """Close the HTTP clients. Idempotent."""
        await self._http.aclose()
        await self._oauth.aclose()

    async def __aenter__(self) -> OidcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _note_date(self, response: httpx.Response) -> None:
        provider_time = _server_time(response)
        if provider_time is not None:
            self.clock_skew_s = self._clock() - provider_time

    def _clock_is_off(self) -> bool:
        skew = self.clock_skew_s
        return skew is not None and abs(skew) > self.config.skew_s

    def for_issuer(self, issuer: str, client_id: str) -> OidcClient:
        """A client like this one for another issuer and client id (same transport, browser
        and clocks): to revoke tokens where they were issued. The caller closes it."""
        return OidcClient(
            dataclasses.replace(self.config, issuer=issuer, client_id=client_id),
            transport=self._transport,
            open_url=self._open_url,
            sleep=self._sleep,
            clock=self._clock,
        )

    @property
    def issuer(self) -> str:
        """The configured issuer (validated)."""
        return self.discovery.issuer

    async def metadata(self) -> ProviderMetadata:
        """The provider's (cached) discovery document; see ``DiscoveryCache.get``."""
        return await self.discovery.get()

    async def _verifier_for(self, meta: ProviderMetadata) -> IdTokenVerifier:
        if self._verifier is None or self._verifier.jwks.jwks_uri != meta.jwks_uri:
            jwks = JwksCache(meta.jwks_uri, self._http)
            self._verifier = IdTokenVerifier(
                self.issuer,
                self.config.client_id,
                jwks,
                skew_s=self.config.skew_s,
                clock=self._clock,
            )
        return self._verifier

    # -- browser login -------------------------------------------------------------

    async def login_browser(
        self, *, time_limit_s: float | None = None, open_url: OpenUrl | None = None
    ) -> TokenSet:
        """Authorization code + PKCE (S256) through the browser; returns verified tokens.

        ``open_url`` opens the page for this sign-in only (the front end that asked for
        it); default: the client's own ``open_url``.

        Binds a loopback listener for the duration of the login only. Raises
        ``LoginError`` subclasses (timeout, wrong state/iss, denied), ``TokenError``
        (code refused, e.g. replayed), ``IdTokenError``, ``ProviderError``.
        """
        meta = await self.metadata()
        if meta.code_challenge_methods_supported and (
            "S256" not in meta.code_challenge_methods_supported
        ):
            raise DiscoveryError("The identity provider does not support PKCE with S256.")
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 chars of the RFC 7636 unreserved set
        listener = LoopbackListener(
            state=state,
            issuer=self.issuer,
            iss_required=meta.authorization_response_iss_parameter_supported,
        )
        async with listener:
            url, _ = self._oauth.create_authorization_url(
                meta.authorization_endpoint,
                state=state,
                code_verifier=verifier,
                nonce=nonce,
                redirect_uri=listener.redirect_uri,
                scope=" ".join(self.config.scopes),
                **self._prompt(meta),
            )
            # The opener may take as long as the browser does (a front end that awaits
            # it): it runs beside the wait for the callback, not before it.
            opener = spawn(_open(open_url or self._open_url, url), name="auth-open-browser")
            try:
                answer = await self._first_callback(
                    listener, opener, time_limit_s or self.config.login_timeout_s
                )
                # The browser's request is held open until the code is exchanged and every
                # check passed: its page then tells the truth (signed in, or what failed).
                try:
                    async with self._provider_call("token"):
                        body = await self._oauth.fetch_token(
                            meta.token_endpoint,
                            grant_type="authorization_code",
                            code=answer.code,
                            code_verifier=verifier,
                            redirect_uri=listener.redirect_uri,
                        )
                    tokens = await self._token_set(meta, dict(body), nonce=nonce)
                except BaseException as exc:
                    listener.finish(exc)
                    raise
                listener.finish(None, who=tokens.identity.display_name)
            finally:
                await listener.close()  # the held page is written before this returns
                if not opener.done():
                    with contextlib.suppress(TimeoutError, Exception):
                        await asyncio.wait_for(asyncio.shield(opener), 5)
                await cancel_and_wait(opener)
        return tokens

    @staticmethod
    async def _first_callback(
        listener: LoopbackListener, opener: asyncio.Task[bool | LoginError], time_limit_s: float
    ) -> AuthorizationResponse:
        """The browser's callback; fails at once if no browser could be opened."""
        waiter = spawn(_outcome(listener.wait(time_limit_s)), name="auth-wait-callback")
        try:
            await asyncio.wait({opener, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done() and opener.done():
                opened = opener.result()
                if isinstance(opened, LoginError):
                    raise opened
                if not opened:
                    raise LoginError(
                        "No web browser could be opened for the sign-in.",
                        "Sign in with 'rustronaut login --device' instead.",
                    )
            answer = await waiter
            if isinstance(answer, LoginError):
                raise answer
            return answer
        finally:
            await cancel_and_wait(waiter)

    def _prompt(self, meta: ProviderMetadata) -> dict[str, str]:
        """``prompt=consent`` when asking for ``offline_access`` (OIDC Core §11: without
        it a compliant provider drops the scope and issues no refresh token), unless the
        provider's metadata lists ``prompt`` values without ``consent``."""
        if "offline_access" not in self.config.scopes:
            return {}
        supported = meta.prompt_values_supported
        if supported and "consent" not in supported:
            return {}
        return {"prompt": "consent"}

    # -- device login --------------------------------------------------------------

    async def login_device(
        self, on_prompt: DevicePrompt, *, time_limit_s: float | None = None
    ) -> TokenSet:
        """Device authorization grant (RFC 8628): prompt the user, poll, verify.

        ``on_prompt`` is called once with the user code and URLs (may be async). Polls at
        the provider's ``interval`` (default 5 s), +5 s on every ``slow_down``. Raises
        ``LoginDenied``, ``DeviceCodeExpired``, ``LoginTimeout``, ``TokenError``,
        ``IdTokenError``, ``ProviderError``.
        """
        meta = await self.metadata()
        if meta.device_authorization_endpoint is None:
            raise DiscoveryError(
                "The identity provider does not offer device sign-in.",
                "Sign in with the browser ('rustronaut login') instead.",
            )
        async with self._provider_call("device authorization"):
            response = await self._http.post(
                meta.device_authorization_endpoint,
                data={"client_id": self.config.client_id, "scope": " ".join(self.config.scopes)},
                headers={"Accept": "application/json"},
            )
        doc = json_object(response, "device authorization")
        if response.status_code != 200 or "error" in doc:
            raise TokenError(
                "The identity provider refused device sign-in "
                f"({safe_line(doc.get('error', response.status_code))})."
            )
        device_code = _required_str(doc, "device_code")
        user_code = _required_str(doc, "user_code")
        verification_uri = check_endpoint_url(
            "verification_uri",
            doc.get("verification_uri", doc.get("verification_url")),
            self.issuer,
            BadProviderResponse,
        )
        complete = doc.get("verification_uri_complete")
        if complete is not None:
            complete = check_endpoint_url(
                "verification_uri_complete", complete, self.issuer, BadProviderResponse
            )
        expires_in = _positive(doc.get("expires_in"), 600)
        interval = _positive(doc.get("interval"), 5)
        prompted = on_prompt(user_code, verification_uri, complete)
        if inspect.isawaitable(prompted):
            await prompted
        limit = min(expires_in, time_limit_s or self.config.login_timeout_s)
        deadline = self._clock() + limit
        while True:
            await self._sleep(interval)
            if self._clock() > deadline:
                if limit < expires_in:
                    raise LoginTimeout(
                        f"The device sign-in was not approved within {int(limit)} s."
                    )
                raise DeviceCodeExpired("The device code expired before it was approved.")
            try:
                async with self._provider_call("token"):
                    body = await self._oauth.fetch_token(
                        meta.token_endpoint, grant_type=DEVICE_CODE_GRANT, device_code=device_code
                    )
            except TokenError as exc:
                code = exc.oauth_error
                if code == "authorization_pending":
                    continue
                if code == "slow_down":
                    interval += 5  # RFC 8628 §3.5: and keep it for all later polls
                    continue
                if code == "access_denied":
                    raise LoginDenied("The device sign-in was refused.") from exc
                if code == "expired_token":
                    raise DeviceCodeExpired(
                        "The device code expired before it was approved."
                    ) from exc
                raise
            return await self._token_set(meta, dict(body), nonce=None)

    # -- refresh and revocation ----------------------------------------------------

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """Use the refresh token; returns the new set (rotated refresh token if sent).

        Raises ``ReauthRequired`` when there is no refresh token or the provider refuses
        it; ``ProviderError`` on transient failures (the old tokens stay valid to retry).
        """
        if tokens.refresh_token is None:
            raise ReauthRequired(
                "The sign-in has ended: the identity provider gave no refresh token, so it "
                "cannot renew itself."
            )
        meta = await self.metadata()
        try:
            async with self._provider_call("refresh"):
                body = await self._oauth.refresh_token(
                    meta.token_endpoint, refresh_token=tokens.refresh_token
                )
        except TokenError as exc:
            if self._clock_is_off() and self.clock_skew_s is not None:
                # Refused while this computer's clock is far off the provider's: most
                # likely the clock's fault. Not "signed out": the tokens are kept, so
                # setting the clock recovers the session if the refresh token still lives.
                raise ClockSkewError.measured(
                    self.clock_skew_s,
                    f"the identity provider refused to renew the sign-in ({exc.reason})",
                ) from exc
            raise ReauthRequired(
                f"The identity provider no longer accepts this sign-in ({exc.reason})."
            ) from exc
        return await self._token_set(meta, dict(body), nonce=None, previous=tokens)

    async def revoke(self, tokens: TokenSet) -> bool:
        """Revoke the refresh and access tokens (RFC 7009) if the provider offers it.

        Returns True when the provider acknowledged every revocation, False when it has
        no revocation endpoint or a request failed (logout goes on regardless). Never
        raises for provider failures.
        """
        try:
            meta = await self.metadata()
        except AuthError:
            return False
        if meta.revocation_endpoint is None:
            return False
        ok = True
        pairs = [(tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")]
        for token, hint in pairs:
            if not token:
                continue
            try:
                response = await self._oauth.revoke_token(
                    meta.revocation_endpoint, token=token, token_type_hint=hint
                )
                ok = ok and response.status_code == 200
            except (httpx.HTTPError, OAuthError, ValueError):
                ok = False
        return ok

    def end_session_url(self, meta: ProviderMetadata, tokens: TokenSet) -> str | None:
        """The RP-initiated logout URL (OIDC RP-Initiated Logout 1.0), or ``None`` when the
        provider has no ``end_session_endpoint``. Carries ``id_token_hint`` (which session
        to end) and ``client_id``; no ``post_logout_redirect_uri`` (a native client has no
        registered page to return to: the provider shows its own "signed out" page)."""
        if meta.end_session_endpoint is None:
            return None
        params = {"client_id": tokens.client_id}
        if tokens.id_token:
            params["id_token_hint"] = tokens.id_token
        sep = "&" if "?" in meta.end_session_endpoint else "?"
        return f"{meta.end_session_endpoint}{sep}{urlencode(params)}"

    async def end_session(self, tokens: TokenSet, *, open_url: OpenUrl | None = None) -> bool:
        """End the provider's browser session too: open its logout page in the browser.

        Returns True when a page was opened; False when the provider offers no logout
        endpoint, discovery fails or no browser opened. Never raises for those.
        """
        try:
            meta = await self.metadata()
        except AuthError:
            return False
        url = self.end_session_url(meta, tokens)
        if url is None:
            return False
        try:
            opened = (open_url or self._open_url)(url)
            if inspect.isawaitable(opened):
                opened = await opened
        except Exception:
            _log.warning("the provider's logout page could not be opened", exc_info=True)
            return False
        return opened is not False

    async def userinfo(self, meta: ProviderMetadata, body: dict[str, Any]) -> dict[str, str]:
        """Name and email from the userinfo endpoint (OIDC Core §5.3), for an ID token
        that lacks them. Only string claims; ``sub`` must match (checked by the caller).
        Empty when the provider has no endpoint or the call fails (never raises)."""
        access = body.get("access_token")
        if meta.userinfo_endpoint is None or not isinstance(access, str):
            return {}
        try:
            response = await self._http.get(
                meta.userinfo_endpoint,
                headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
            )
            doc = json_object(response, "userinfo") if response.status_code == 200 else {}
        except (httpx.HTTPError, AuthError) as exc:
            _log.info("userinfo not available: %s", type(exc).__name__)
            return {}
        keys = ("sub", "email", "name", "preferred_username")
        return {k: v for k, v in doc.items() if k in keys and isinstance(v, str) and v}

    # -- helpers -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _provider_call(self, what: str) -> AsyncIterator[None]:
        """Map httpx/Authlib errors raised inside to ``AuthError``s (the provider's words
        are data: control characters escaped)."""
        try:
            yield
        except AuthError:
            raise
        except OAuthError as exc:
            error = safe_line(exc.error or "error")
            # The provider's own full stop would end our sentence twice: "(x: y.)."
            described = safe_line(exc.description or "").rstrip(". ")
            desc = f": {described}" if described else ""
            raise TokenError(
                f"The identity provider refused the {what} request ({error}{desc}).",
                oauth_error=str(exc.error or "error"),
                reason=f"{error}{desc}",
            ) from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise map_transport_error(exc, what) from exc

    async def _token_set(
        self,
        meta: ProviderMetadata,
        body: dict[str, Any],
        *,
        nonce: str | None,
        previous: TokenSet | None = None,
    ) -> TokenSet:
        skew = self.clock_skew_s
        provider_time = None if skew is None else self._clock() - skew
        id_token = body.get("id_token")
        identity: IdTokenClaims
        if isinstance(id_token, str):
            verifier = await self._verifier_for(meta)
            identity = await verifier.verify(
                id_token,
                nonce=nonce,
                provider_time=provider_time,
                # A refresh: the provider has already rotated the refresh token, so a
                # wrong clock here must not throw the new tokens away (see _check_times).
                provider_clock_ok=previous is not None,
            )
            if previous is not None and (
                identity.sub != previous.identity.sub or identity.iss != previous.identity.iss
            ):
                # OIDC Core §12.2: a refreshed ID token must name the same user.
                raise IdTokenError("The refreshed ID token names a different user.")
            identity = await self._with_profile(meta, body, identity, previous)
        elif previous is not None:
            identity = previous.identity
        else:
            raise IdTokenError(
                "The identity provider returned no ID token; is 'openid' among the scopes?"
            )
        return TokenSet.from_response(
            body,
            issuer=self.issuer,
            client_id=self.config.client_id,
            identity=identity,
            now=self._clock(),
            previous=previous,
        )

    async def _with_profile(
        self,
        meta: ProviderMetadata,
        body: dict[str, Any],
        identity: IdTokenClaims,
        previous: TokenSet | None,
    ) -> IdTokenClaims:
        """``identity`` with name and email filled in when the ID token lacks them: from
        the session being refreshed (same user), else from the userinfo endpoint."""
        if identity.email and identity.name:
            return identity
        known = previous.identity if previous is not None else None
        extra: dict[str, str] = {}
        if known is not None:
            extra = {
                k: v
                for k, v in (
                    ("email", known.email),
                    ("name", known.name),
                    ("preferred_username", known.preferred_username),
                )
                if v
            }
        else:
            info = await self.userinfo(meta, body)
            if info and info.get("sub") != identity.sub:
                # OIDC Core §5.3.4: a userinfo answer for another subject must not be used.
                _log.warning("userinfo names another subject than the ID token; ignoring it")
                info = {}
            extra = {k: v for k, v in info.items() if k != "sub"}
        return dataclasses.replace(
            identity,
            email=identity.email or extra.get("email"),
            name=identity.name or extra.get("name"),
            preferred_username=identity.preferred_username or extra.get("preferred_username"),
        )


async def _open(open_url: OpenUrl, url: str) -> bool | LoginError:
    """Run ``open_url(url)``: whether a browser opened, or the ``LoginError`` to raise
    (returned, so the background task is not logged as crashed)."""
    try:
        opened = open_url(url)
        if inspect.isawaitable(opened):
            opened = await opened
    except Exception as exc:
        error = LoginError(
            f"The web browser could not be opened for the sign-in ({safe_line(exc)}).",
            "Sign in with 'rustronaut login --device' instead.",
        )
        error.__cause__ = exc
        return error
    return opened is not False


async def _outcome(
    waiting: Awaitable[AuthorizationResponse],
) -> AuthorizationResponse | LoginError:
    try:
        return await waiting
    except LoginError as exc:
        return exc


def _required_str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise BadProviderResponse(f"The device authorization answer has no {key!r}.")
    return value


def _positive(value: object, default: int) -> float:
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 86400:
        raise BadProviderResponse(f"The device authorization answer has a bad number {value!r}.")
    return float(value)
