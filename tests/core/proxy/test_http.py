"""HTTP proxy request head parser: CONNECT, absolute-form, local, rejects, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.proxy.http import Forward, HttpRequestHead, Local, Reject, Tunnel, response_bytes

pytestmark = pytest.mark.unit


def parse(data: bytes, step: int | None = None, **kw: int) -> list[object]:
    p = HttpRequestHead(**kw)
    if step is None:
        return list(p.feed(data))
    out: list[object] = []
    for i in range(0, len(data), step):
        out += p.feed(data[i : i + step])
    return out


@pytest.mark.parametrize("step", [None, 1, 5])
def test_connect(step: int | None) -> None:
    (a,) = parse(b"CONNECT db.corp:5432 HTTP/1.1\r\nHost: db.corp:5432\r\n\r\nxyz", step)
    assert isinstance(a, Tunnel)
    assert (a.host, a.port) == ("db.corp", 5432)
    if step is None:
        assert a.rest == b"xyz"


def test_connect_ipv6() -> None:
    (a,) = parse(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n")
    assert isinstance(a, Tunnel)
    assert (a.host, a.port) == ("[::1]", 443)


def test_absolute_form_is_rewritten() -> None:
    raw = (
        b"POST http://wiki.corp:8080/a/b?q=1#frag HTTP/1.1\r\n"
        b"Host: evil.example\r\nProxy-Connection: keep-alive\r\n"
        b"Proxy-Authorization: Basic eA==\r\nConnection: X-Drop, keep-alive\r\nX-Drop: 1\r\n"
        b"Content-Length: 3\r\nAccept: */*\r\n\r\nabc"
    )
    (a,) = parse(raw)
    assert isinstance(a, Forward)
    assert (a.host, a.port, a.method) == ("wiki.corp", 8080, "POST")
    assert a.head == (
        b"POST /a/b?q=1 HTTP/1.1\r\nHost: wiki.corp:8080\r\nContent-Length: 3\r\n"
        b"Accept: */*\r\nConnection: close\r\n\r\n"
    )
    assert a.rest == b"abc"


def test_absolute_form_default_port_and_query_only() -> None:
    (a,) = parse(b"GET http://Wiki.Corp?x HTTP/1.0\r\n\r\n")
    assert isinstance(a, Forward)
    assert a.port == 80
    assert a.head.startswith(b"GET /?x HTTP/1.0")


def test_local_request() -> None:
    (a,) = parse(b"GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:9080\r\n\r\n")
    assert isinstance(a, Local)
    assert a.path == "/proxy.pac"
    assert a.header("HOST") == "127.0.0.1:9080"
    assert a.header("origin") is None


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"CONNECT db.corp HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT db.corp:0 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT db.corp:99999 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT user@db.corp:22 HTTP/1.1\r\n\r\n", 400),
        (b"GET https://x/ HTTP/1.1\r\n\r\n", 400),
        (b"GET ftp://x/ HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (
            b"POST http://x/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST http://x/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET http://x/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET http://[::1/ HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_rejects(raw: bytes, status: int) -> None:
    (a,) = parse(raw)
    assert isinstance(a, Reject), a
    assert a.status == status


def test_oversized_head_rejected_before_end() -> None:
    p = HttpRequestHead(max_head=1024)
    assert p.feed(b"GET / HTTP/1.1\r\n") == []
    (a,) = p.feed(b"X-Pad: " + b"a" * 2000)
    assert isinstance(a, Reject)
    assert a.status == 431
    assert p.done
    assert p.feed(b"\r\n\r\n") == []


def test_too_many_headers() -> None:
    raw = b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 5 + b"\r\n"
    (a,) = parse(raw, max_headers=4)
    assert isinstance(a, Reject)
    assert a.status == 431


def test_response_bytes() -> None:
    r = response_bytes(403, b"<p>no</p>", "text/html")
    assert r.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Content-Length: 9\r\n" in r
    assert r.endswith(b"\r\n\r\n<p>no</p>")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=300))
def test_fuzz_never_raises_one_final_action(data: bytes, step: int) -> None:
    p = HttpRequestHead(max_head=2048)
    out: list[object] = []
    for i in range(0, len(data), step):
        out += p.feed(data[i : i + step])
    assert len(out) <= 1
    for a in out:
        assert isinstance(a, Tunnel | Forward | Local | Reject)
        if isinstance(a, Forward):
            assert a.head.endswith(b"Connection: close\r\n\r\n")
            assert b"\r\n\r\n" not in a.head[:-4]


_token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_token, st.text(st.characters(min_codepoint=32, max_codepoint=126)))))
def test_fuzz_forward_headers_never_smuggle(headers: list[tuple[str, str]]) -> None:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers)
    raw = f"GET http://wiki.corp/ HTTP/1.1\r\n{lines}\r\n".encode()
    (a,) = parse(raw)
    if isinstance(a, Forward):
        names = [ln.split(b":")[0].lower() for ln in a.head.split(b"\r\n")[1:] if ln]
        assert names.count(b"host") == 1
        assert b"proxy-connection" not in names
        assert b"proxy-authorization" not in names
