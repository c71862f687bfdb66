"""Fuzzing the sans-IO SOCKS5 and HTTP request-head parsers (issue 16's Done-when).

Whatever bytes a local process sends, in whatever chunks they arrive, the parsers never
raise, end with at most one final action and then stay silent, hold no more than one
message's worth of bytes while waiting (bounded memory), and reach the same outcome as
when the same bytes come at once. Inputs are raw bytes and well-formed messages with
bytes flipped, cut or appended, so both the refusals and the ``Connect``/``Tunnel``
paths are reached.

``-m fuzz`` runs each property on 100,000 examples (nightly-style; excluded from the
default run); the default run keeps the same properties on a few hundred.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.proxy import http as h
from core.proxy import socks5 as s5

pytestmark = pytest.mark.unit

FUZZ_EXAMPLES = 100_000
QUICK_EXAMPLES = 300
SOCKS_MAX_PENDING = 2 + 255 + 4 + 1 + 255 + 2  # a whole greeting plus a whole request
HEAD_MAX = 1024


def _settings(n: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- inputs ---------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A well-formed message with a few bytes flipped, a cut, or garbage appended."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data) + draw(st.binary(max_size=64))


@st.composite
def socks_messages(draw: st.DrawFn) -> bytes:
    methods = draw(st.lists(st.integers(0, 255), max_size=8))
    if draw(st.booleans()):
        methods.append(0)
    greeting = bytes((5, len(methods), *methods))
    atyp = draw(st.sampled_from([1, 3, 4, draw(st.integers(0, 255))]))
    if atyp == 1:
        address = bytes(draw(st.binary(min_size=4, max_size=4)))
    elif atyp == 4:
        address = bytes(draw(st.binary(min_size=16, max_size=16)))
    else:
        name = draw(st.binary(max_size=255))
        address = bytes((len(name),)) + name
    cmd = draw(st.sampled_from([1, 1, 1, 2, 3, draw(st.integers(0, 255))]))
    port = struct.pack("!H", draw(st.integers(0, 65535)))
    request = bytes((5, cmd, 0, atyp)) + address + port
    return greeting + request + draw(st.binary(max_size=32))


TOKENS = st.sampled_from(["GET", "CONNECT", "POST", "HEAD", "G\x00T", ""])
TARGETS = st.sampled_from(
    [
        "example.com:443",
        "[::1]:8080",
        "http://example.com/x?y#z",
        "http://[fe80::1]:80/",
        "/proxy.pac",
        "https://x/",
        "http://a@b/",
        "host:99999",
        "",
    ]
)
HEADER_VALUES = st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass"))


@st.composite
def http_heads(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2"]))
    line = f"{draw(TOKENS)} {draw(TARGETS)} {version}"
    headers = [
        draw(st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"X", b"Bad Name"]))
        + b": "
        + draw(HEADER_VALUES)
        for _ in range(draw(st.integers(0, 6)))
    ]
    head = b"\r\n".join([line.encode(), *headers]) + b"\r\n\r\n"
    return head + draw(st.binary(max_size=32))


socks_inputs = st.one_of(st.binary(max_size=600), mutated(socks_messages()), socks_messages())
http_inputs = st.one_of(st.binary(max_size=1500), mutated(http_heads()), http_heads())


@st.composite
def chunked(draw: st.DrawFn, inputs: st.SearchStrategy[bytes]) -> tuple[bytes, list[bytes]]:
    data = draw(inputs)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, chunks


# -- properties -----------------------------------------------------------------------


def _socks_outcome(actions: list[s5.Action]) -> tuple[object, ...]:
    out: list[object] = []
    for a in actions:
        if isinstance(a, s5.Send):
            out.append(("send", a.data))
        elif isinstance(a, s5.Fail):
            out.append(("fail", a.data, a.reason))
        else:
            out.append(("connect", a.host, a.port))
    return tuple(out)


def check_socks(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    parser = s5.Socks5Handshake()
    actions: list[s5.Action] = []
    for chunk in chunks:
        was_done = parser.done
        got = parser.feed(chunk)
        if was_done:
            assert got == []
        actions += got
        if not parser.done:
            assert len(parser._buf) <= SOCKS_MAX_PENDING  # waits for one message at most
    finals = [a for a in actions if not isinstance(a, s5.Send)]
    assert len(finals) <= 1
    if finals:
        assert actions[-1] is finals[0]
        assert parser.done
        assert len(parser._buf) == 0
    for action in actions:
        if isinstance(action, s5.Connect):
            assert 1 <= action.port <= 65535
            assert isinstance(action.host, str | bytes)
            assert action.host
    # the same bytes at once reach the same outcome (optimistic data: a prefix of it)
    whole = s5.Socks5Handshake().feed(data)
    assert _socks_outcome(whole) == _socks_outcome(actions)
    if finals and isinstance(finals[0], s5.Connect):
        assert isinstance(whole[-1], s5.Connect)
        assert whole[-1].rest.startswith(finals[0].rest)


def _http_outcome(action: h.Action) -> tuple[object, ...]:
    if isinstance(action, h.Reject):
        return ("reject", action.status, action.reason)
    if isinstance(action, h.Tunnel):
        return ("tunnel", action.host, action.port, action.headers)
    if isinstance(action, h.Forward):
        return ("forward", action.method, action.host, action.port, action.head)
    return ("local", action.method, action.path, action.headers)


def check_http(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    parser = h.HttpRequestHead(max_head=HEAD_MAX, max_headers=8)
    actions: list[h.Action] = []
    for chunk in chunks:
        was_done = parser.done
        got = parser.feed(chunk)
        if was_done:
            assert got == []
        assert len(got) <= 1
        actions += got
        if not parser.done:
            assert len(parser._buf) <= HEAD_MAX  # never more than one head's worth
    assert len(actions) <= 1
    if not actions:
        assert not parser.done
        return
    [action] = actions
    if isinstance(action, h.Tunnel | h.Forward):
        assert 1 <= action.port <= 65535
        assert action.host
    if isinstance(action, h.Forward):
        assert action.head.endswith(b"\r\n\r\n")
        assert b"\r\n\r\n" not in action.head[:-4]  # one head upstream, no smuggled second
    [whole] = h.HttpRequestHead(max_head=HEAD_MAX, max_headers=8).feed(data)
    assert _http_outcome(whole) == _http_outcome(action)
    if isinstance(action, h.Tunnel | h.Forward):
        assert isinstance(whole, h.Tunnel | h.Forward)
        assert whole.rest.startswith(action.rest)


@_settings(QUICK_EXAMPLES)
@given(chunked(socks_inputs))
def test_socks5_any_bytes_any_chunks(case: tuple[bytes, list[bytes]]) -> None:
    check_socks(case)


@_settings(QUICK_EXAMPLES)
@given(chunked(http_inputs))
def test_http_head_any_bytes_any_chunks(case: tuple[bytes, list[bytes]]) -> None:
    check_http(case)


@pytest.mark.fuzz
@pytest.mark.timeout(3600)  # 100,000 examples take minutes on a shared machine
@_settings(FUZZ_EXAMPLES)
@given(chunked(socks_inputs))
def test_fuzz_socks5(case: tuple[bytes, list[bytes]]) -> None:
    check_socks(case)


@pytest.mark.fuzz
@pytest.mark.timeout(3600)  # 100,000 examples take minutes on a shared machine
@_settings(FUZZ_EXAMPLES)
@given(chunked(http_inputs))
def test_fuzz_http_head(case: tuple[bytes, list[bytes]]) -> None:
    check_http(case)


def test_huge_inputs_stay_bounded() -> None:
    """Megabytes in one read or a byte at a time: the buffers never grow past a
    message (the SOCKS parser) or the head limit (HTTP: 431)."""
    socks = s5.Socks5Handshake()
    assert socks.feed(b"\x05\xff") == []
    socks.feed(b"\x01" * 254)
    assert len(socks._buf) <= SOCKS_MAX_PENDING
    head = h.HttpRequestHead(max_head=HEAD_MAX)
    for _ in range(HEAD_MAX + 1):
        got = head.feed(b"a")
        if got:
            break
    assert got == [h.Reject(431, "request head too large")]
    assert len(head._buf) == 0
    [big] = h.HttpRequestHead(max_head=HEAD_MAX).feed(b"x" * 5_000_000)
    assert big == h.Reject(431, "request head too large")
