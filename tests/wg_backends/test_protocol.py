"""The helper protocol, sans I/O: framing in any chunking, and fuzzed bodies never crash."""

from __future__ import annotations

import json
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import ProtocolError
from wg_backends.helper import protocol as p
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

SPEC = TunnelSpec(
    interface="rtw0",
    addresses=("10.0.0.2/32",),
    peers=(PeerSpec(public_key=PUB, endpoint="192.0.2.1:51820", allowed_ips=("10.1.0.0/16",)),),
    private_key=PRIV,
)


def test_roundtrip_every_message() -> None:
    msgs: list[p.Request | p.Reply] = [
        p.Hello(id=1),
        p.Up(id=2, spec=SPEC),
        p.Down(id=3, interface="rtw0"),
        p.Status(id=4, interface="rtw0"),
    ]
    dec = p.FrameDecoder()
    bodies = list(dec.feed(b"".join(p.encode(m) for m in msgs)))
    assert [p.decode_request(b) for b in bodies] == msgs
    ok = p.Ok(id=5, result={"a": 1})
    err = p.ErrorReply(id=6, code="busy", message="x")
    assert [p.decode_reply(b) for b in p.FrameDecoder().feed(p.encode(ok) + p.encode(err))] == [
        ok,
        err,
    ]


def test_wire_format_is_documented_shape() -> None:
    frame = p.encode(p.Down(id=9, interface="rtw0"))
    assert frame[:4] == struct.pack(">I", len(frame) - 4)
    assert json.loads(frame[4:]) == {"type": "down", "id": 9, "v": 1, "interface": "rtw0"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=50))
def test_any_chunking_yields_the_same_frames(cuts: list[int]) -> None:
    stream = b"".join(p.encode(p.Status(id=i, interface=f"rtw{i}")) for i in range(5))
    dec = p.FrameDecoder()
    out: list[bytes] = []
    pos = 0
    for n in cuts * 20:
        if pos >= len(stream):
            break
        out += dec.feed(stream[pos : pos + n])
        pos += n
    out += dec.feed(stream[pos:])
    assert [p.decode_request(b) for b in out] == [
        p.Status(id=i, interface=f"rtw{i}") for i in range(5)
    ]
    assert dec.pending == 0


def test_one_byte_trickle() -> None:
    stream = p.encode(p.Hello(id=1))
    dec = p.FrameDecoder()
    got = [b for i in range(len(stream)) for b in dec.feed(stream[i : i + 1])]
    assert p.decode_request(got[0]) == p.Hello(id=1)


def test_oversized_header_refused_before_buffering() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        list(p.FrameDecoder().feed(struct.pack(">I", p.MAX_FRAME + 1)))
    with pytest.raises(ProtocolError):
        p.frame(b"x" * (p.MAX_FRAME + 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_bytes_only_ever_raise_protocol_error(data: bytes) -> None:
    dec = p.FrameDecoder()
    try:
        for body in dec.feed(data):
            p.decode_request(body)
    except ProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["hello", "up", "down", "status", "x"]), "id": st.integers()},
        optional={"v": st.integers(0, 3), "spec": json_values, "interface": json_values},
    )
)
def test_fuzzed_messages_decode_or_raise_protocol_error(msg: dict[str, object]) -> None:
    try:
        req = p.decode_request(msgspec.json.encode(msg))
    except ProtocolError:
        return
    assert isinstance(req, p.Hello | p.Up | p.Down | p.Status)
    if isinstance(req, p.Up):  # only a fully valid spec gets through
        assert isinstance(req.spec, TunnelSpec)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.sampled_from(["interface", "endpoint", "public_key"]))
def test_fuzzed_spec_strings_inside_up_never_crash(value: str, field: str) -> None:
    spec = msgspec.to_builtins(SPEC)
    if field == "interface":
        spec["interface"] = value
    else:
        spec["peers"][0][field] = value
    body = msgspec.json.encode({"v": 1, "type": "up", "id": 1, "spec": spec})
    message = ""
    try:
        req = p.decode_request(body)
    except ProtocolError as exc:
        message = str(exc)
    if message:
        assert "$.spec" in message  # a bad value is always blamed on the spec
    else:
        assert isinstance(req, p.Up)


@pytest.mark.parametrize(
    "body",
    [
        b'{"v":1,"type":"hello","id":1,"x":"\xff"}',  # invalid UTF-8 inside a string
        b'{"v":1,"type":"up","id":1,"spec":{"interface":"\xc3"}}',  # truncated sequence
        b"[" * 30_000 + b"]" * 30_000,  # 30,000 deep: msgspec would raise RecursionError
        b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
        b'{"v":1,"type":"up","id":1,"spec":' + b"[" * 20 + b"]" * 20 + b"}",
    ],
)
def test_hostile_bodies_raise_only_protocol_error(body: bytes) -> None:
    for decode in (p.decode_request, p.decode_reply):
        with pytest.raises(ProtocolError):
            decode(body)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    reason = "[[[[{{{{" * 10 + '\\"[['
    msg = {"v": 1, "type": "down", "id": 1, "interface": "rtw0", "reason": reason}
    req = p.decode_request(msgspec.json.encode(msg))
    assert isinstance(req, p.Down)


@pytest.mark.parametrize("name", ["-x", "--help", "rtw0\n", "a" * 16, ""])
def test_down_and_status_refuse_bad_interface_names(name: str) -> None:
    for kind in ("down", "status"):
        body = msgspec.json.encode({"v": 1, "type": kind, "id": 1, "interface": name})
        with pytest.raises(ProtocolError, match="interface"):
            p.decode_request(body)


def test_down_carries_break_glass_and_reason() -> None:
    msg = p.Down(id=3, interface="rtw0", break_glass=True, reason="flight wifi")
    assert p.decode_request(p.encode(msg)[4:]) == msg
    long = msgspec.json.encode(
        {"type": "down", "id": 1, "interface": "rtw0", "break_glass": True, "reason": "x" * 501}
    )
    with pytest.raises(ProtocolError, match="reason"):
        p.decode_request(long)
