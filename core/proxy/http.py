"""Sans-IO HTTP/1.x proxy request head parser: CONNECT, absolute-form and local requests.

``HttpRequestHead.feed(data)`` buffers bytes until the request head is complete (or too
big) and returns exactly one final action:

- ``Tunnel``: ``CONNECT host:port`` — answer 200 and relay raw bytes;
- ``Forward``: ``GET http://host:port/path`` (absolute-form) — send ``head`` (rewritten to
  origin-form, hop-by-hop and ``Proxy-*`` headers dropped, ``Connection: close`` added)
  upstream, then relay raw bytes;
- ``Local``: an origin-form request to the proxy itself (``GET /proxy.pac``);
- ``Reject``: a protocol error with the status and a short reason.

Parsing is strict on purpose (CRLF line ends, token header names, no obs-fold, no
``Transfer-Encoding`` together with ``Content-Length``) so that the proxy and the upstream
cannot read the same bytes as different requests. Never raises on client input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Forward", "HttpRequestHead", "Local", "Reject", "Tunnel", "response_bytes"]

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class Tunnel:
    """CONNECT request. ``host`` is raw (not normalised); ``rest`` follows the head."""

    host: str
    port: int
    headers: tuple[tuple[str, str], ...]
    rest: bytes


@dataclass(frozen=True, slots=True)
class Forward:
    """Absolute-form request: send ``head`` then ``rest`` to ``host:port``."""

    method: str
    host: str
    port: int
    head: bytes
    headers: tuple[tuple[str, str], ...]
    rest: bytes


@dataclass(frozen=True, slots=True)
class Local:
    """Origin-form request addressed to the proxy itself."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Reject:
    """Answer ``status`` with ``reason`` and close."""

    status: int
    reason: str


Action = Tunnel | Forward | Local | Reject


def response_bytes(
    status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8"
) -> bytes:
    """A complete ``HTTP/1.1`` response that closes the connection."""
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _split_authority(authority: str, default_port: int | None) -> tuple[str, int] | None:
    """``host[:port]`` / ``[v6][:port]`` → (host, port); None when malformed."""
    if not authority or "@" in authority:
        return None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, tail = authority[1:end], authority[end + 1 :]
        if tail and not tail.startswith(":"):
            return None
        port_s = tail[1:] if tail else ""
        host = f"[{host}]"
    else:
        host, sep, port_s = authority.rpartition(":")
        if not sep:
            host, port_s = authority, ""
    if not port_s:
        if default_port is None:
            return None
        return host, default_port
    if not port_s.isascii() or not port_s.isdigit() or len(port_s) > 5:
        return None
    port = int(port_s)
    if not 1 <= port <= 65535 or not host:
        return None
    return host, port


class HttpRequestHead:
    """Parser for one request head. One instance per connection; not threadsafe.

    ``max_head`` caps the head size (request line + headers) and ``max_headers`` the
    number of header fields; above either the answer is 431.
    """

    __slots__ = ("_buf", "_done", "max_head", "max_headers")

    def __init__(self, *, max_head: int = 16384, max_headers: int = 100) -> None:
        self._buf = bytearray()
        self._done = False
        self.max_head = max_head
        self.max_headers = max_headers

    @property
    def done(self) -> bool:
        """True once the single final action has been returned."""
        return self._done

    def feed(self, data: bytes) -> list[Action]:
        """Consume ``data``; return ``[]`` while the head is incomplete, else one action."""
        if self._done:
            return []
        # Only search the new tail (plus 3 bytes of overlap) so trickled input stays O(n).
        start = max(0, len(self._buf) - 3)
        self._buf += data
        end = self._buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(self._buf) > self.max_head:
                return self._finish(Reject(431, "request head too large"))
            return []
        if end + 4 > self.max_head:
            return self._finish(Reject(431, "request head too large"))
        head = bytes(self._buf[:end])
        rest = bytes(self._buf[end + 4 :])
        return self._finish(self._parse(head, rest))

    def _finish(self, action: Action) -> list[Action]:
        self._done = True
        self._buf.clear()
        return [action]

    def _parse(self, head: bytes, rest: bytes) -> Action:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            return Reject(400, "malformed request line")
        method_b, target_b, version = parts
        if not _TOKEN.match(method_b) or version not in (b"HTTP/1.1", b"HTTP/1.0"):
            return Reject(400, "malformed request line")
        if not target_b or not target_b.isascii() or _VALUE_BAD.search(target_b):
            return Reject(400, "malformed request target")
        if len(lines) - 1 > self.max_headers:
            return Reject(431, "too many header fields")
        headers: list[tuple[str, str]] = []
        raw_headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.match(name):
                return Reject(400, "malformed header field")
            value = value.strip(b" \t")
            if _VALUE_BAD.search(value) or b"\r" in value:
                return Reject(400, "control character in header value")
            raw_headers.append((name, value))
            headers.append((name.decode("ascii").lower(), value.decode("latin-1")))
        names = [n for n, _ in headers]
        if "transfer-encoding" in names and "content-length" in names:
            return Reject(400, "both Transfer-Encoding and Content-Length")
        if names.count("content-length") > 1 or names.count("host") > 1:
            return Reject(400, "repeated Content-Length or Host")
        method = method_b.decode("ascii")
        target = target_b.decode("ascii")
        hdrs = tuple(headers)
        if method == "CONNECT":
            hp = _split_authority(target, None)
            if hp is None:
                return Reject(400, "CONNECT target must be host:port")
            return Tunnel(hp[0], hp[1], hdrs, rest)
        if target.startswith("/"):
            return Local(method, target, hdrs)
        lower = target.lower()
        if lower.startswith("https://"):
            return Reject(400, "use CONNECT for https")
        if not lower.startswith("http://"):
            return Reject(400, "request target must be absolute http:// or origin-form")
        after = target[len("http://") :]
        slash = [i for i in (after.find("/"), after.find("?")) if i >= 0]
        cut = min(slash) if slash else len(after)
        authority, path = after[:cut], after[cut:]
        if path.startswith("?"):
            path = "/" + path
        path = path.split("#", 1)[0] or "/"
        hp = _split_authority(authority, 80)
        if hp is None:
            return Reject(400, "malformed host in request target")
        connection_tokens = {
            t.strip().lower().encode("latin-1")
            for n, v in headers
            if n in ("connection", "proxy-connection")
            for t in v.split(",")
        }
        # RFC 9112 §3.2.2: a proxy replaces Host with the request target's authority, so
        # the upstream cannot be steered to another virtual host than the one decided.
        out = [
            f"{method} {path} {version.decode('ascii')}".encode("ascii"),
            b"Host: " + authority.encode("ascii"),
        ]
        for name, value in raw_headers:
            low = name.lower()
            if low in _HOP_BY_HOP or low in connection_tokens or low == b"host":
                continue
            out.append(name + b": " + value)
        out.append(b"Connection: close")
        return Forward(method, hp[0], hp[1], b"\r\n".join(out) + b"\r\n\r\n", hdrs, rest)
