"""The console's core: the ``/console`` ASGI app, sign-in, sessions, CSRF and headers.

``ConsoleApp`` implements ``controller.console.base.Console`` for the page modules and
mounts their routes. Its own routes: the sign-in page, ``/login`` (starts OIDC),
``/callback``, ``/logout``, the static files and the live WebSocket.

Sessions: the browser holds a 256-bit random cookie ``__Host-rtc_console`` (HttpOnly,
Secure, SameSite=Strict, Path=/); the database holds only its SHA-256 with the admin's
identity and a CSRF token, so every replica knows the session and a database leak gives
no usable cookie. A session ends after ``idle_timeout_s`` without a request (``seen_at``
is written at most once a minute) or ``max_lifetime_s`` after sign-in, or at sign-out.

Every response under ``/console`` carries the CSP and the other security headers
(``_SecurityHeaders``); the admin API's static token is never accepted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import importlib
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from controller.config import ConfigError
from controller.console.auth import PENDING_TTL_S, OidcRelyingParty, PendingLogin, SignInError
from controller.console.base import Admin, CsrfError, SignInNeeded
from controller.errors import ApiError
from controller.ratelimit import RateLimiter
from controller.storage.base import AuditEntry, ConsoleSession
from core.aio import cancel_and_wait, spawn

if TYPE_CHECKING:
    from controller.oidc import DevOidcProvider
    from controller.service import ControllerService

__all__ = [
    "MAX_FORM_BYTES",
    "PAGE_MODULES",
    "PREAUTH_COOKIE",
    "SESSION_COOKIE",
    "ConsoleApp",
    "FormTooLarge",
    "LiveFeedLike",
    "read_form",
    "security_headers",
]

_log = logging.getLogger(__name__)

SESSION_COOKIE = "__Host-rtc_console"
PREAUTH_COOKIE = "__Host-rtc_console_login"
#: ``seen_at`` is written at most this often (idle timeout granularity)
TOUCH_EVERY_S = 60
#: how often an open live socket re-checks that its session still exists
SESSION_RECHECK_S = 5.0
#: concurrent live sockets per admin
MAX_SOCKETS_PER_ADMIN = 4
#: the page modules mounted under /console (each ``routes(console)``)
PAGE_MODULES = ("overview", "devices", "live", "audit", "policy", "whatif", "users")
_HERE = Path(__file__).parent
_NAV = (
    ("overview", "Overview", "/console/"),
    ("devices", "Devices", "/console/devices"),
    ("users", "Users & groups", "/console/users"),
    ("policy", "Policy", "/console/policy"),
    ("live", "Live decisions", "/console/live"),
    ("whatif", "What-if", "/console/whatif"),
    ("audit", "Audit log", "/console/audit"),
)
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(https: bool) -> list[tuple[bytes, bytes]]:
    """The headers every ``/console`` response carries (HSTS only over https)."""
    out = [
        (b"content-security-policy", _CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]
    if https:
        out.append((b"strict-transport-security", b"max-age=31536000"))
    return out


class _SecurityHeaders:
    """ASGI middleware: sets the security headers on every response (replacing any the
    handler set), including a WebSocket refused before accept."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https)
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                kept = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in self.names
                ]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LiveFeedLike(Protocol):
    """What the WebSocket wrapper needs of ``controller.console.live.LiveFeed``."""

    async def serve(self, ws: WebSocket, admin: Admin) -> None:
        """Run one socket until it closes."""
        ...


#: the largest console form accepted (a rule's JSON fits many times over)
MAX_FORM_BYTES = 128 * 1024
_MAX_FIELDS = 200


class FormTooLarge(HTTPException):
    """A form over ``MAX_FORM_BYTES`` or with too many fields (answered 413)."""

    def __init__(self) -> None:
        super().__init__(413, "the form is too large")


async def read_form(request: Request) -> FormData:
    """The request's ``application/x-www-form-urlencoded`` body as ``FormData``.

    Console forms are never multipart, so this needs no multipart parser (Starlette's
    ``request.form()`` needs ``python-multipart``); another content type gives an empty
    form (so the CSRF check fails). Capped at ``MAX_FORM_BYTES`` and ``_MAX_FIELDS``.
    """
    from urllib.parse import parse_qsl

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    if ctype != "application/x-www-form-urlencoded" or not body:
        return FormData()
    try:
        pairs: list[tuple[str, str | UploadFile]] = []
        pairs += parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormTooLarge() from exc
    return FormData(pairs)


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _safe_next(value: str | None) -> str:
    """Only a path inside the console (no scheme, host or ``//``): no open redirect."""
    if (
        not value
        or not value.startswith("/console/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 33 or ord(c) == 127 for c in value)
        or len(value) > 512
    ):
        return "/console/"
    return value


class ConsoleApp:
    """The ``/console`` app; implements ``Console`` for the page modules.

    ``feed`` (the live decision feed) is set by ``create_app``; None: the live socket
    closes with 1011. ``http_transport`` overrides the OIDC client's transport.
    """

    def __init__(
        self,
        service: ControllerService,
        *,
        dev_oidc: DevOidcProvider | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        cfg = service.config.console
        if cfg is None:
            raise ConfigError("the console is not configured (config 'console')")
        self.service = service
        self.config = cfg
        self.public_url = service.config.effective_public_url
        self.origin = _origin(self.public_url)
        self.https = self.public_url.startswith("https://")
        self.feed: LiveFeedLike | None = None
        self.rate = RateLimiter(cfg.signin_rate_per_min)
        self._sockets: dict[str, int] = {}
        #: how often an open live socket re-checks its session
        self.session_recheck_s = SESSION_RECHECK_S
        self.rp = self._relying_party(dev_oidc, http_transport)
        self.env = Environment(
            loader=FileSystemLoader(str(_HERE / "templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["nav_items"] = _NAV
        self.env.filters["datetime"] = _datetime
        self.env.filters["ago"] = lambda t: _ago(t, self.clock())
        routes: list[BaseRoute] = [
            Route("/signin", self._signin_page, methods=["GET"]),
            Route("/login", self._login, methods=["GET"]),
            Route("/callback", self._callback, methods=["GET"]),
            Route("/logout", self._logout, methods=["POST"]),
            WebSocketRoute("/ws/live", self._ws_live),
            Mount("/static", app=StaticFiles(directory=str(_HERE / "static")), name="static"),
        ]
        for name in PAGE_MODULES:
            module = importlib.import_module(f"controller.console.{name}")
            routes.extend(module.routes(self))
        self.app = Starlette(
            routes=routes,
            exception_handlers={
                SignInNeeded: self._on_sign_in_needed,
                CsrfError: self._on_csrf,
                HTTPException: self._on_http_error,
                ApiError: self._on_api_error,
                Exception: self._on_crash,
            },
        )
        self._asgi = _SecurityHeaders(self.app, self.https)

    def _relying_party(
        self, dev: DevOidcProvider | None, transport: httpx.AsyncBaseTransport | None
    ) -> OidcRelyingParty:
        cfg = self.config
        redirect = self.public_url + "/console/callback"
        if cfg.issuer:
            secret = cfg.client_secret
            if cfg.client_secret_file:
                try:
                    secret = Path(cfg.client_secret_file).read_text().strip()
                except OSError as exc:
                    raise ConfigError(f"console: cannot read client_secret_file: {exc}") from exc
            if not secret:
                raise ConfigError("console: the client secret is empty")
            return OidcRelyingParty(
                issuer=cfg.issuer,
                client_id=cfg.client_id,
                client_secret=secret,
                redirect_uri=redirect,
                groups_claim=cfg.groups_claim,
                transport=transport,
            )
        if dev is None:
            raise ConfigError("console: no issuer configured and the dev provider is off")
        if transport is None:
            # In process: the controller need not reach its own public address.
            issuer_path = urlsplit(dev.issuer).path or "/"
            transport = httpx.ASGITransport(
                app=Starlette(routes=[Mount(issuer_path, routes=dev.routes())])
            )
        return OidcRelyingParty(
            issuer=dev.issuer,
            client_id=dev.console_client_id,
            client_secret=dev.console_client_secret,
            redirect_uri=redirect,
            groups_claim=cfg.groups_claim,
            transport=transport,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    # the Console protocol ---------------------------------------------------------
    @property
    def clock(self) -> Callable[[], float]:
        """The service's clock (tests move it to expire sessions)."""
        return self.service.clock

    async def admin(self, request: Request) -> Admin:
        """The signed-in admin of this request; raises ``SignInNeeded``."""
        cached = getattr(request.state, "console_admin", None)
        if isinstance(cached, Admin):
            return cached
        admin = self._session_admin(request)
        if admin is None:
            raise SignInNeeded()
        request.state.console_admin = admin
        return admin

    def _session_admin(self, conn: HTTPConnection, *, touch: bool = True) -> Admin | None:
        cookie = conn.cookies.get(SESSION_COOKIE, "")
        if not cookie or len(cookie) > 128:
            return None
        digest = _hash(cookie)
        row = self.service.storage.get_console_session(digest)
        if row is None:
            return None
        now = int(self.clock())
        if now >= row.expires_at or now - row.seen_at >= self.config.idle_timeout_s:
            self.service.storage.delete_console_session(digest)
            return None
        if touch and now - row.seen_at >= TOUCH_EVERY_S:
            self.service.storage.touch_console_session(digest, now)
        return Admin(
            user_id=row.user_id,
            email=row.email,
            name=row.name,
            groups=row.groups,
            csrf=row.csrf,
            session_hash=digest,
        )

    def check_csrf(self, request: Request, form: FormData | None, admin: Admin) -> None:
        """Refuse a change from another site or without the session's CSRF token."""
        origin = request.headers.get("origin")
        fetch_site = request.headers.get("sec-fetch-site", "").lower()
        # Under the pages' "Referrer-Policy: no-referrer" a browser sends "Origin: null"
        # on its own same-origin form posts (Fetch spec); its Sec-Fetch-Site (which no
        # page can forge) still says same-origin then. (Found by the real-browser test.)
        own_null = origin == "null" and fetch_site == "same-origin"
        if origin is not None and origin.lower() != self.origin and not own_null:
            raise CsrfError(f"request from another origin ({origin[:100]})")
        if fetch_site in ("cross-site", "same-site"):
            raise CsrfError("request from another site")
        token = ""
        if form is not None:
            value = form.get("csrf")
            token = value if isinstance(value, str) else ""
        if not token:
            token = request.headers.get("x-csrf-token", "")
        if not token or not hmac.compare_digest(token.encode(), admin.csrf.encode()):
            raise CsrfError("missing or wrong CSRF token")

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        admin: Admin | None,
        *,
        status: int = 200,
        page: str = "",
    ) -> Response:
        """A page from ``templates/<template>``, autoescaped."""
        body = self.env.get_template(template).render(
            {
                **context,
                "admin": admin,
                "csrf": admin.csrf if admin is not None else "",
                "page": page,
                "request": request,
            }
        )
        return HTMLResponse(body, status_code=status)

    def audit(self, admin: Admin, action: str, detail: str, *, device_id: str = "") -> None:
        """Record an admin change (kind ``admin:<action>``) with the admin as user."""
        self.service.storage.add_audit(
            AuditEntry(
                record_id=f"{time.time_ns():016x}{secrets.token_hex(4)}",
                at=self.service.now(),
                kind=f"admin:{action}",
                user_id=admin.user_id,
                device_id=device_id,
                detail=detail[:2000],
            )
        )

    # errors -------------------------------------------------------------------------
    def error_page(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        *,
        hint: str = "",
        signin_link: bool = False,
    ) -> Response:
        """An error in the console's layout (the admin shown when signed in)."""
        admin = getattr(request.state, "console_admin", None)
        return self.render(
            request,
            "error.html",
            {
                "status": status,
                "title": title,
                "message": message,
                "hint": hint,
                "signin_link": signin_link,
            },
            admin if isinstance(admin, Admin) else None,
            status=status,
        )

    def _wants_json(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return (
            "application/json" in accept
            or request.headers.get("x-requested-with", "") != ""
            or request.headers.get("sec-fetch-mode", "") in ("cors", "same-origin")
        )

    async def _on_sign_in_needed(self, request: Request, exc: Exception) -> Response:
        if self._wants_json(request) or request.method != "GET":
            return JSONResponse({"error": "sign-in needed"}, status_code=401)
        nxt = _safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        target = "/console/signin" if nxt == "/console/" else f"/console/signin?next={_q(nxt)}"
        return RedirectResponse(target, status_code=303)

    async def _on_csrf(self, request: Request, exc: Exception) -> Response:
        _log.warning("console: refused %s %s: %s", request.method, request.url.path, exc)
        return self.error_page(
            request,
            403,
            "Refused",
            "This change was refused: it did not come from a console page of this session "
            "(missing or wrong CSRF token, or another site's origin). Nothing was changed.",
            hint="Reload the page and try again.",
        )

    async def _on_http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 405: "Method not allowed", 400: "Bad request"}
        messages = {
            404: "There is no such page in the console.",
            405: "This page does not accept that method.",
        }
        resp = self.error_page(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            messages.get(exc.status_code, str(exc.detail)),
        )
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    async def _on_api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return self.error_page(request, exc.status, exc.title, exc.detail)

    async def _on_crash(self, request: Request, exc: Exception) -> Response:
        _log.exception("console: unhandled error on %s %s", request.method, request.url.path)
        return self.error_page(
            request, 500, "Internal error", "The console failed; the controller's log says why."
        )

    # sign-in ------------------------------------------------------------------------
    def _limit(self, request: Request) -> Response | None:
        host = request.client.host if request.client else "unknown"
        wait = self.rate.allow(host)
        if wait is None:
            return None
        resp = self.error_page(
            request, 429, "Too many sign-in attempts", "Wait a minute, then sign in again."
        )
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp

    def _issuer_host(self) -> str:
        return urlsplit(self.rp.issuer).netloc or self.rp.issuer

    async def _signin_page(self, request: Request) -> Response:
        admin = self._session_admin(request)
        if admin is not None:
            return RedirectResponse("/console/", status_code=303)
        return self.render(
            request,
            "signin.html",
            {
                "admin_groups": self.config.admin_groups,
                "issuer_host": self._issuer_host(),
                "next_path": _safe_next(request.query_params.get("next")),
                "message": "",
            },
            None,
        )

    def _cookie(self, resp: Response, name: str, value: str, max_age: int, samesite: str) -> None:
        # __Host-: Secure, Path=/, no Domain — a sibling host cannot set or read it.
        resp.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=True,
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]
        )

    async def _login(self, request: Request) -> Response:
        limited = self._limit(request)
        if limited is not None:
            return limited
        try:
            url, pending = await self.rp.start(_safe_next(request.query_params.get("next")))
        except SignInError as exc:
            return self.error_page(request, 502, "Sign-in unavailable", str(exc))
        resp = RedirectResponse(url, status_code=303)
        # Lax, not Strict: the provider's redirect back is a cross-site navigation.
        self._cookie(resp, PREAUTH_COOKIE, pending.encode(), PENDING_TTL_S, "lax")
        return resp

    async def _callback(self, request: Request) -> Response:
        limited = self._limit(request)
        if limited is not None:
            return limited
        pending = PendingLogin.decode(request.cookies.get(PREAUTH_COOKIE, "")[:4096])
        params = {k: v[:4096] for k, v in request.query_params.items()}
        try:
            claims = await self.rp.finish(pending, params)
        except SignInError as exc:
            resp = self.error_page(request, 400, "Sign-in failed", str(exc), signin_link=True)
            resp.delete_cookie(PREAUTH_COOKIE, path="/", secure=True, httponly=True)
            return resp
        allowed = set(self.config.admin_groups)
        if not allowed & set(claims.groups):
            who = claims.email or claims.user_id
            resp = self.error_page(
                request,
                403,
                "Not an administrator",
                f"You are signed in as {who}, who is not in an admin group "
                f"({', '.join(self.config.admin_groups)}).",
                hint="Ask your IT administrators to add you to one of these groups, "
                "then sign in again.",
            )
            resp.delete_cookie(PREAUTH_COOKIE, path="/", secure=True, httponly=True)
            return resp
        # Session fixation: always a new cookie; an older session of this browser ends.
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            self.service.storage.delete_console_session(_hash(old))
        cookie = secrets.token_urlsafe(32)
        now = int(self.clock())
        self.service.storage.create_console_session(
            ConsoleSession(
                session_hash=_hash(cookie),
                user_id=claims.user_id,
                email=claims.email,
                name=claims.name,
                groups=claims.groups,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                seen_at=now,
                expires_at=now + self.config.max_lifetime_s,
            )
        )
        self.service.storage.purge_console_sessions(
            idle_before=now - self.config.idle_timeout_s, now=now
        )
        _log.info("console: %s signed in", claims.user_id)
        next_path = _safe_next(pending.next_path if pending else None)
        # A page (not a redirect) continues to the console: a navigation that started at
        # the provider's site would not send the new SameSite=Strict cookie.
        resp = self.render(request, "signed_in.html", {"next_path": next_path}, None)
        self._cookie(resp, SESSION_COOKIE, cookie, self.config.max_lifetime_s, "strict")
        resp.delete_cookie(PREAUTH_COOKIE, path="/", secure=True, httponly=True)
        return resp

    async def _logout(self, request: Request) -> Response:
        admin = await self.admin(request)
        form = await read_form(request)
        self.check_csrf(request, form, admin)
        self.service.storage.delete_console_session(admin.session_hash)
        _log.info("console: %s signed out", admin.user_id)
        resp = RedirectResponse("/console/signin", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return resp

    # live WebSocket -----------------------------------------------------------------
    async def _ws_live(self, ws: WebSocket) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and origin.lower() != self.origin:
            # Cross-site WebSocket hijacking: a foreign page would carry the cookie.
            await ws.close(code=4403, reason="foreign origin")
            return
        admin = self._session_admin(ws)
        if admin is None:
            await ws.close(code=4401, reason="sign-in needed")
            return
        count = self._sockets.get(admin.user_id, 0)
        if count >= MAX_SOCKETS_PER_ADMIN:
            await ws.accept()
            await ws.close(
                code=1008,
                reason=f"too many live sockets (at most {MAX_SOCKETS_PER_ADMIN} per admin)",
            )
            return
        self._sockets[admin.user_id] = count + 1
        try:
            if self.feed is None:
                await ws.accept()
                await ws.close(code=1011, reason="the live feed is not available")
                return
            watcher = spawn(self._watch_session(ws), name="console-ws-session")
            try:
                await self.feed.serve(ws, admin)
            finally:
                await cancel_and_wait(watcher)
        finally:
            left = self._sockets.get(admin.user_id, 1) - 1
            if left <= 0:
                self._sockets.pop(admin.user_id, None)
            else:
                self._sockets[admin.user_id] = left

    async def _watch_session(self, ws: WebSocket) -> None:
        """Close a live socket (4401) once its session ends (sign-out, expiry): the
        socket outlives the HTTP request that authenticated it."""
        while True:
            await asyncio.sleep(self.session_recheck_s)
            if self._session_admin(ws, touch=False) is None:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await ws.close(code=4401, reason="the console session ended")
                return


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


def _datetime(value: float | int | None) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS UTC`` ("never" for None/0)."""
    if not value:
        return "never"
    import datetime as _dt

    return _dt.datetime.fromtimestamp(float(value), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: float | int | None, now: float) -> str:
    """A short "how long ago" ("never" for None/0)."""
    if not value:
        return "never"
    delta = int(now - float(value))
    if delta < 0:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{delta // size} {unit} ago"
    return f"{delta} s ago"
