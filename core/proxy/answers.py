"""What the proxy answers a client: per-protocol replies and the local-request checks.

``Answer`` and its subclasses turn the server's outcomes (denied, bad destination,
connect failure, connected) into protocol-correct bytes: SOCKS5 reply codes or HTTP
statuses with a short HTML reason page in the installed language (``core.i18n``).
``rebinding_reason`` decides whether a request addressed to the proxy itself comes from
a web page (DNS rebinding; its words are for whoever probes, not translated). Pure
functions.
"""

from __future__ import annotations

import errno
import html

from core.i18n import translate
from core.proxy import http as h
from core.proxy import socks5 as s5

__all__ = ["Answer", "HttpAnswer", "SocksAnswer", "page", "rebinding_reason"]


class Answer:
    """Protocol-specific answers to the client; this base (port forwards) answers nothing
    and the connection is simply closed."""

    def deny(self, reason: str, rule: str | None) -> bytes:
        return b""

    def bad_destination(self, reason: str) -> bytes:
        return b""

    def failure(self, exc: BaseException) -> bytes:
        return b""

    def ok(self, bind: tuple[str, int]) -> bytes:
        return b""


class SocksAnswer(Answer):
    """SOCKS5 reply codes."""

    def deny(self, reason: str, rule: str | None) -> bytes:
        return s5.reply_bytes(s5.Reply.NOT_ALLOWED)

    def bad_destination(self, reason: str) -> bytes:
        return s5.reply_bytes(s5.Reply.HOST_UNREACHABLE)

    def failure(self, exc: BaseException) -> bytes:
        if isinstance(exc, ConnectionRefusedError):
            return s5.reply_bytes(s5.Reply.CONNECTION_REFUSED)
        if isinstance(exc, TimeoutError):
            return s5.reply_bytes(s5.Reply.TTL_EXPIRED)
        if isinstance(exc, OSError) and exc.errno == errno.ENETUNREACH:
            return s5.reply_bytes(s5.Reply.NETWORK_UNREACHABLE)
        return s5.reply_bytes(s5.Reply.HOST_UNREACHABLE)

    def ok(self, bind: tuple[str, int]) -> bytes:
        return s5.reply_bytes(s5.Reply.SUCCEEDED, bind)


def page(title: str, text: str, rule: str | None = None) -> bytes:
    """A short HTML page (the deny page names the reason and the rule). Every text,
    translated or not, is HTML-escaped: a translation is as untrusted as a reason."""
    esc_title = html.escape(title)
    rule_line = ""
    if rule:
        label = html.escape(translate("core.proxy.answers", "Rule:"))
        rule_line = f"<p>{label} <code>{html.escape(rule)}</code></p>"
    head = html.escape(translate("core.proxy.answers", "Rustronaut: {title}").format(title=title))
    return (
        f"<!doctype html><meta charset=utf-8><title>{head}</title><h1>{esc_title}</h1>"
        f"<p>{html.escape(text)}</p>{rule_line}\n"
    ).encode()


class HttpAnswer(Answer):
    """HTTP statuses; ``tunnel`` for CONNECT (200 Connection established)."""

    def __init__(self, tunnel: bool) -> None:
        self.tunnel = tunnel

    def deny(self, reason: str, rule: str | None) -> bytes:
        body = page(translate("core.proxy.answers", "Access blocked"), reason, rule)
        return h.response_bytes(403, body, "text/html; charset=utf-8")

    def bad_destination(self, reason: str) -> bytes:
        title = translate("core.proxy.answers", "Bad destination")
        return h.response_bytes(400, page(title, reason), "text/html; charset=utf-8")

    def failure(self, exc: BaseException) -> bytes:
        status = 504 if isinstance(exc, TimeoutError) else 502
        if status == 504:
            text = translate("core.proxy.answers", "the destination did not answer in time")
        else:
            text = str(exc)  # the OS's words for the failure (data, not ours to translate)
        title = translate("core.proxy.answers", "Cannot reach destination")
        return h.response_bytes(status, page(title, text), "text/html")

    def ok(self, bind: tuple[str, int]) -> bytes:
        return b"HTTP/1.1 200 Connection established\r\n\r\n" if self.tunnel else b""


def rebinding_reason(request: h.Local, port: int) -> str | None:
    """Why a request for the proxy itself looks like a web page reaching it (DNS
    rebinding: Host not naming the proxy, an Origin, a cross-site Sec-Fetch-Site);
    None when it looks like the browser or the OS fetching the PAC file."""
    allowed = {f"127.0.0.1:{port}", f"[::1]:{port}", f"localhost:{port}"}
    host = (request.header("host") or "").lower()
    if host not in allowed:
        return "refused: the Host header does not name this proxy (DNS rebinding?)"
    if request.header("origin") is not None:
        return "refused: requests from web pages (Origin header) are not served"
    site = request.header("sec-fetch-site")
    if site is not None and site.lower() != "none":
        return "refused: requests from web pages (Sec-Fetch-Site) are not served"
    return None
