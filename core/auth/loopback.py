"""The loopback redirect listener of the browser sign-in (RFC 8252 §7.3).

Bound on ``127.0.0.1`` with a random port only while one login runs. It serves exactly
one path, reads at most a few KiB per request and settles on the first callback to that
path: a valid one (right ``state``, right ``iss`` per RFC 9207, a ``code``) completes the
login; a wrong one fails it (never silently waits for a better one, so a forged callback
cannot be retried against us).

The browser's page tells the truth: a valid callback's request is held open (at most
``page_wait_s``) until the flow calls :meth:`LoopbackListener.finish` after the code
exchange and every ID-token check, and only then says "You are signed in", or what failed
and what to do. Every word on the page is escaped text, never markup from the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from core.auth.errors import AuthError, CallbackError, LoginDenied, LoginError, LoginTimeout
from core.text import safe_line

__all__ = ["AuthorizationResponse", "LoopbackListener"]

_MAX_REQUEST_HEAD = 16 * 1024  # request line + headers; a real callback is < 2 KiB
_READ_TIMEOUT_S = 10.0

#: How long a valid callback's page waits for the code exchange and checks to finish.
PAGE_WAIT_S = 60.0

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Rustronaut sign-in</title><style>body{{font:16px system-ui,sans-serif;
margin:4em auto;max-width:32em;text-align:center;color:#222}}</style></head>
<body><h1>{title}</h1>{paragraphs}</body></html>"""


def page(title: str, *paragraphs: str) -> str:
    """The small HTML page for the browser: every string escaped (data, never markup)."""
    return _PAGE.format(
        title=html.escape(safe_line(title)),
        paragraphs="".join(f"<p>{html.escape(safe_line(p))}</p>" for p in paragraphs),
    )


def failure_page(exc: BaseException) -> str:
    """What failed and what to do, in the words the app shows too."""
    if isinstance(exc, AuthError):
        return page(exc.title, exc.message, f"Next step: {exc.next_step}")
    return page(
        "Sign-in did not complete",
        "Rustronaut could not finish the sign-in.",
        "Next step: return to Rustronaut to see what went wrong, then sign in again.",
    )


_STILL_CHECKING = page(
    "Sign-in not confirmed yet",
    "Rustronaut is still checking the answer from your identity provider.",
    "Next step: return to Rustronaut to see whether you are signed in.",
)
_ALREADY_USED = page(
    "This sign-in link was already used",
    "Next step: return to Rustronaut; start a new sign-in there if you are not signed in.",
)


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """A validated authorization response: the code and, if sent, the issuer."""

    code: str
    iss: str | None


class LoopbackListener:
    """Async context manager owning the listening socket for one browser login.

    Loop thread only. ``redirect_uri`` is valid inside the ``async with`` block; ``wait``
    returns the validated response or raises ``CallbackError``/``LoginDenied``/
    ``LoginTimeout``. Leaving the block closes the socket (idempotent).
    """

    def __init__(
        self,
        *,
        state: str,
        issuer: str,
        iss_required: bool,
        path: str = "/callback",
        host: str = "127.0.0.1",
    ) -> None:
        self._state = state
        self._issuer = issuer
        self._iss_required = iss_required
        self._path = path
        self._host = host
        self._server: asyncio.Server | None = None
        self._port = 0
        self._result: asyncio.Future[AuthorizationResponse] | None = None
        self._page: asyncio.Future[str] | None = None
        self._handlers: set[asyncio.Task[object]] = set()
        self.page_wait_s = PAGE_WAIT_S

    @property
    def redirect_uri(self) -> str:
        """``http://127.0.0.1:<port>/callback`` for the authorization request."""
        if self._server is None:
            raise RuntimeError("listener is not bound")
        return f"http://{self._host}:{self._port}{self._path}"

    async def __aenter__(self) -> LoopbackListener:
        loop = asyncio.get_running_loop()
        self._result = loop.create_future()
        self._page = loop.create_future()
        self._server = await asyncio.start_server(
            self._handle, self._host, 0, limit=_MAX_REQUEST_HEAD
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def finish(self, error: BaseException | None, *, who: str | None = None) -> None:
        """Say how the sign-in ended, on the page of the held browser request.

        ``error`` ``None``: signed in (as ``who``); else the failure's words and next
        step. Call after the code exchange and every check. Idempotent (first call wins).
        """
        if self._page is None or self._page.done():
            return
        if error is None:
            lines = [f"Signed in as {who}." if who else "The sign-in is complete."]
            lines.append("You can close this tab and return to Rustronaut.")
            self._page.set_result(page("You are signed in", *lines))
        else:
            self._page.set_result(failure_page(error))

    async def close(self) -> None:
        """Stop listening; a held browser request gets its page first. Idempotent."""
        if self._page is not None and not self._page.done():
            # Left without finish(): the flow was cancelled or failed before the exchange.
            self._page.set_result(failure_page(LoginError("The sign-in was stopped.")))
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        if self._handlers:
            # Let held requests write their page (bounded: a stuck browser cannot stall us).
            await asyncio.wait(set(self._handlers), timeout=_READ_TIMEOUT_S)
        if self._result is not None:
            if not self._result.done():
                self._result.cancel()
            elif not self._result.cancelled():
                self._result.exception()  # mark retrieved: no "never retrieved" warning

    async def wait(self, time_limit_s: float) -> AuthorizationResponse:
        """The first callback's validated result, or ``LoginTimeout`` after ``time_limit_s``."""
        assert self._result is not None, "use inside 'async with'"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), time_limit_s)
        except TimeoutError:
            raise LoginTimeout(
                f"No answer from the browser within {int(time_limit_s)} seconds."
            ) from None

    # -- one HTTP request per connection ----------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                await self._respond(writer, 400, "Bad request")
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            if len(parts) != 3 or parts[0] != "GET":
                await self._respond(writer, 405, "Only GET")
                return
            target = urlsplit(parts[1])
            if target.path != self._path:
                await self._respond(writer, 404, "Not found")  # e.g. /favicon.ico
                return
            if self._result is None or self._result.done():
                await self._respond(writer, 410, _ALREADY_USED, html=True)
                return
            try:
                outcome = self._validate(target.query)
            except LoginError as exc:
                self._result.set_exception(exc)
                await self._respond(writer, 400, failure_page(exc), html=True)
                return
            self._result.set_result(outcome)
            # Held until the flow knows the outcome (exchange + ID-token checks).
            assert self._page is not None
            try:
                body = await asyncio.wait_for(asyncio.shield(self._page), self.page_wait_s)
            except TimeoutError:
                body = _STILL_CHECKING
            await self._respond(writer, 200, body, html=True)
        except (ConnectionError, OSError):
            pass  # the browser went away; the login outcome (if any) is already set
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _validate(self, query: str) -> AuthorizationResponse:
        try:
            raw = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=32)
        except ValueError as exc:
            raise CallbackError("The sign-in answer from the browser is malformed.") from exc
        if any(len(v) != 1 for v in raw.values()):
            raise CallbackError("The sign-in answer repeats a parameter; refusing it.")
        params = {k: v[0] for k, v in raw.items()}
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), self._state.encode()):
            raise CallbackError(
                "The sign-in answer does not belong to this sign-in (wrong 'state'); "
                "it may be forged or from an older attempt."
            )
        iss = params.get("iss")
        if iss is not None and iss != self._issuer:
            raise CallbackError(
                f"The sign-in answer comes from issuer {safe_line(iss)!r}, not {self._issuer!r} "
                "(possible mix-up attack)."
            )
        if iss is None and self._iss_required:
            raise CallbackError(
                "The sign-in answer lacks the 'iss' parameter the provider promises (RFC 9207)."
            )
        error = params.get("error")
        if error is not None:
            desc = safe_line(params.get("error_description", "")).rstrip(". ")
            error = safe_line(error)
            detail = f"{error}: {desc}" if desc else error
            if error == "access_denied":
                raise LoginDenied(f"The sign-in was refused ({detail}).")
            raise CallbackError(f"The identity provider reported an error ({detail}).")
        code = params.get("code")
        if not code:
            raise CallbackError("The sign-in answer has no authorization code.")
        return AuthorizationResponse(code=code, iss=iss)

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter, status: int, body: str, *, html: bool = False
    ) -> None:
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
        data = body.encode()
        ctype = "text/html; charset=utf-8" if html else "text/plain; charset=utf-8"
        head = (
            f"HTTP/1.1 {status} {reasons.get(status, 'Gone')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
            "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + data)
        await writer.drain()
