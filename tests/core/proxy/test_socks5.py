"""SOCKS5 sans-IO handshake: transcripts, trickles, garbage and fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.proxy.socks5 import Connect, Fail, Reply, Send, Socks5Handshake, reply_bytes

pytestmark = pytest.mark.unit

GREETING = b"\x05\x01\x00"
REQ_V4 = b"\x05\x01\x00\x01" + bytes([10, 0, 0, 1]) + struct.pack("!H", 443)
REQ_NAME = b"\x05\x01\x00\x03\x08db.corp." + struct.pack("!H", 5432)
REQ_V6 = b"\x05\x01\x00\x04" + bytes(15) + b"\x01" + struct.pack("!H", 22)


def run(data: bytes, *, step: int | None = None) -> list[object]:
    hs = Socks5Handshake()
    out: list[object] = []
    if step is None:
        out += hs.feed(data)
    else:
        for i in range(0, len(data), step):
            out += hs.feed(data[i : i + step])
    return out


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7])
@pytest.mark.parametrize(
    ("request_bytes", "host", "port"),
    [(REQ_V4, "10.0.0.1", 443), (REQ_NAME, b"db.corp.", 5432), (REQ_V6, "::1", 22)],
)
def test_connect_transcript_any_split(
    step: int | None, request_bytes: bytes, host: object, port: int
) -> None:
    actions = run(GREETING + request_bytes + b"early", step=step)
    assert actions[0] == Send(b"\x05\x00")
    connect = actions[-1]
    assert isinstance(connect, Connect)
    assert (connect.host, connect.port) == (host, port)
    # Optimistic data after the request is kept (as far as it arrived with it).
    assert b"early".startswith(connect.rest)
    assert len([a for a in actions if isinstance(a, Connect)]) == 1


def test_rest_kept_when_sent_together() -> None:
    actions = run(GREETING + REQ_V4 + b"GET / HTTP/1.1\r\n")
    assert isinstance(actions[-1], Connect)
    assert actions[-1].rest == b"GET / HTTP/1.1\r\n"


def test_offers_without_no_auth_are_refused_with_ff() -> None:
    (fail,) = run(b"\x05\x01\x02")
    assert isinstance(fail, Fail)
    assert fail.data == b"\x05\xff"


def test_zero_methods_refused() -> None:
    (fail,) = run(b"\x05\x00")
    assert isinstance(fail, Fail)
    assert fail.data == b"\x05\xff"


@pytest.mark.parametrize(
    ("cmd", "code"),
    [(2, Reply.COMMAND_NOT_SUPPORTED), (3, Reply.COMMAND_NOT_SUPPORTED), (9, 7)],
)
def test_bind_and_udp_associate_refused(cmd: int, code: int) -> None:
    req = bytes([5, cmd, 0, 1, 127, 0, 0, 1, 0, 53])
    actions = run(GREETING + req)
    assert isinstance(actions[-1], Fail)
    assert actions[-1].data[:2] == bytes([5, code])
    assert len(actions[-1].data) == 10


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (b"\x05\x01\x00\x05" + bytes(6), Reply.ADDRESS_TYPE_NOT_SUPPORTED),
        (b"\x04\x01\x00\x01" + bytes(6), Reply.GENERAL_FAILURE),
        (b"\x05\x01\x01\x01" + bytes(6), Reply.GENERAL_FAILURE),
        (b"\x05\x01\x00\x03\x00\x00\x50", Reply.GENERAL_FAILURE),
        (b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00", Reply.GENERAL_FAILURE),
    ],
)
def test_bad_requests_get_the_right_reply(req: bytes, code: int) -> None:
    actions = run(GREETING + req)
    assert isinstance(actions[-1], Fail)
    assert actions[-1].data[1] == code


def test_wrong_version_greeting_fails_silently() -> None:
    (fail,) = run(b"\x04\x01\x00\x50")
    assert isinstance(fail, Fail)
    assert fail.data == b""


def test_done_parser_ignores_more_input() -> None:
    hs = Socks5Handshake()
    hs.feed(GREETING + REQ_V4)
    assert hs.done
    assert hs.feed(b"anything") == []


def test_truncated_handshake_waits() -> None:
    hs = Socks5Handshake()
    assert hs.feed(b"\x05") == []
    assert hs.feed(b"\x01\x00") == [Send(b"\x05\x00")]
    assert hs.feed(REQ_NAME[:-1]) == []
    assert not hs.done


def test_reply_bytes_forms() -> None:
    assert reply_bytes(Reply.NOT_ALLOWED) == b"\x05\x02\x00\x01" + bytes(6)
    assert (
        reply_bytes(Reply.SUCCEEDED, ("127.0.0.1", 80)) == b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00P"
    )
    assert reply_bytes(Reply.SUCCEEDED, ("::1", 1))[3] == 4


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_fuzz_never_raises_and_bounds_output(data: bytes, step: int) -> None:
    hs = Socks5Handshake()
    finals = 0
    for i in range(0, len(data), step):
        for action in hs.feed(data[i : i + step]):
            assert isinstance(action, Send | Connect | Fail)
            if isinstance(action, Send):
                assert len(action.data) == 2
            elif isinstance(action, Fail):
                finals += 1
                assert len(action.data) in (0, 2, 10)
            else:
                finals += 1
                assert 1 <= action.port <= 65535
    assert finals <= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=255), st.integers(1, 65535), st.binary(max_size=40))
def test_fuzz_valid_domain_requests_round_trip(name: bytes, port: int, tail: bytes) -> None:
    req = b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port)
    actions = run(GREETING + req + tail)
    assert actions[-1] == Connect(name, port, tail)
