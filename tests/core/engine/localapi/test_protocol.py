"""The local API protocol as transcripts: exact round-trips of the engine's models, and
garbage in every form (one byte at a time, oversized, wrong version, invalid UTF-8, deep
nesting) refused with a typed error, never an exception of another kind."""

from __future__ import annotations

import contextlib
import json
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine.api import Setting
from core.engine.localapi import protocol as p
from core.engine.localapi.errors import ProtocolError, UnsupportedVersionError
from core.engine.state import (
    ErrorInfo,
    Event,
    EventKind,
    PostureItem,
    ResourceView,
    SessionState,
    Snapshot,
    TunnelView,
)
from core.policy.api import Decision, Effect, Unmet

pytestmark = pytest.mark.unit

text = st.text(max_size=20)
floats = st.floats(allow_nan=False, allow_infinity=False)
opt_text = st.none() | text
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | floats | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)

errors = st.builds(ErrorInfo, text, text, text, text)
resources = st.builds(ResourceView, text, text, st.booleans(), text, text, st.booleans())
postures = st.builds(PostureItem, text, text, text, st.sampled_from(["pass", "fail", "unknown"]))
tunnels = st.builds(
    TunnelView, text, text, st.none() | floats, st.integers(0, 2**40), st.integers(0, 2**40)
)
snapshots = st.builds(
    Snapshot,
    state=st.sampled_from(list(SessionState)),
    user=opt_text,
    device_id=opt_text,
    organization=opt_text,
    resources=st.lists(resources, max_size=3).map(tuple),
    posture=st.lists(postures, max_size=3).map(tuple),
    tunnel=st.none() | tunnels,
    risk=st.integers(0, 100),
    risk_signals=st.lists(text, max_size=3).map(tuple),
    error=st.none() | errors,
    always_on=st.booleans(),
    session_expires_at=st.none() | floats,
    policy_version=st.none() | st.integers(0, 2**31),
    policy_expires_at=st.none() | floats,
    proxy_address=opt_text,
)
decisions = st.builds(
    Decision,
    effect=st.sampled_from(list(Effect)),
    rule_id=opt_text,
    reason=text,
    resource=opt_text,
    unmet=st.lists(st.builds(Unmet, text, text, text), max_size=2).map(tuple),
    risk=st.integers(0, 100),
    confidence=st.floats(0, 1),
    signals=st.lists(text, max_size=2).map(tuple),
)
events = st.builds(
    Event,
    kind=st.sampled_from(list(EventKind)),
    snapshot=snapshots,
    time=floats,
    message=text,
    decision=st.none() | decisions,
    app=text,
    destination=text,
    details=st.dictionaries(text, text, max_size=3),
)
settings_ = st.builds(
    Setting,
    key=text,
    value=json_values,
    source=st.sampled_from(["default", "user", "managed"]),
    locked=st.booleans(),
    description=text,
)
ids = st.integers(0, 2**31)
requests = st.one_of(
    st.builds(p.Hello, id=ids, client=text),
    st.builds(p.GetSnapshot, id=ids),
    st.builds(p.Subscribe, id=ids),
    st.builds(p.Connect, id=ids),
    st.builds(p.Disconnect, id=ids, reason=opt_text),
    st.builds(p.SignIn, id=ids, device_code=st.booleans()),
    st.builds(p.SignOut, id=ids, reason=opt_text),
    st.builds(p.RecheckPosture, id=ids),
    st.builds(p.Diagnostics, id=ids, path=text),
    st.builds(p.GetSettings, id=ids),
    st.builds(p.SetSetting, id=ids, key=text, value=json_values),
)
replies = st.one_of(
    st.builds(p.HelloReply, id=ids, version=st.just(1), hosted_by=text, pid=ids),
    st.builds(p.SnapshotReply, id=ids, snapshot=snapshots),
    st.builds(p.EventMsg, event=events),
    st.builds(p.OpenUrl, id=ids, url=text),
    st.builds(p.SettingsReply, id=ids, settings=st.lists(settings_, max_size=3).map(tuple)),
    st.builds(p.DiagnosticsReply, id=ids, path=text),
    st.builds(p.Done, id=ids),
    st.builds(p.ErrorReply, id=ids, code=text, title=text, detail=text, next_step=text),
)


def one(data: bytes) -> bytes:
    bodies = list(p.FrameDecoder().feed(data))
    assert len(bodies) == 1
    return bodies[0]


@settings(max_examples=300, deadline=None)
@given(requests)
def test_every_request_round_trips_exactly(msg: p.Request) -> None:
    assert p.decode_request(one(p.encode(msg))) == msg


@settings(max_examples=300, deadline=None)
@given(replies)
def test_every_reply_round_trips_exactly_with_the_engine_models(msg: p.Reply) -> None:
    back = p.decode_reply(one(p.encode(msg)))
    assert back == msg
    if isinstance(back, p.EventMsg):
        # The very types the engine made, not dicts: front ends format typed models.
        assert type(back.event.snapshot) is Snapshot
        assert type(back.event.kind) is EventKind
        assert back.event.decision is None or type(back.event.decision.effect) is Effect


def test_a_snapshot_is_plain_json_with_enum_values() -> None:
    snap = Snapshot(state=SessionState.BLOCKED, error=ErrorInfo("t", "d", "n", "no_gateway"))
    body = json.loads(one(p.encode(p.SnapshotReply(id=7, snapshot=snap))))
    assert body["type"] == "snapshot"
    assert body["id"] == 7
    assert body["v"] == 1
    assert body["snapshot"]["state"] == "blocked"
    assert body["snapshot"]["error"]["code"] == "no_gateway"


def test_frames_fed_one_byte_at_a_time() -> None:
    stream = p.encode(p.Connect(id=1)) + p.encode(p.Disconnect(id=2, reason="x" * 12))
    decoder = p.FrameDecoder()
    bodies = [b for i in range(len(stream)) for b in decoder.feed(stream[i : i + 1])]
    assert [p.decode_request(b) for b in bodies] == [
        p.Connect(id=1),
        p.Disconnect(id=2, reason="x" * 12),
    ]
    assert decoder.pending == 0


def test_a_started_frame_is_pending_until_complete() -> None:
    data = p.encode(p.GetSnapshot(id=3))
    decoder = p.FrameDecoder()
    assert list(decoder.feed(data[:5])) == []
    assert decoder.pending == 5
    assert len(list(decoder.feed(data[5:]))) == 1


def test_an_oversized_header_is_refused_before_buffering() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        list(p.FrameDecoder().feed(struct.pack(">I", p.MAX_FRAME + 1)))


def test_an_oversized_message_is_never_sent() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        p.encode(p.Diagnostics(id=1, path="x" * p.MAX_FRAME))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"v":2,"type":"hello","id":1}', UnsupportedVersionError),
        (b'{"v":"1","type":"hello","id":1}', UnsupportedVersionError),
        (b'{"v":true,"type":"hello","id":1}', UnsupportedVersionError),
        (b"\xff\xfe{}", ProtocolError),
        (b'{"type":"hello","client":"\xff"}', ProtocolError),
        (b"[" * 100_000 + b"]" * 100_000, ProtocolError),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, ProtocolError),
        (b"not json", ProtocolError),
        (b"[]", ProtocolError),
        (b"", ProtocolError),
        (b'{"type":"launch_missiles","id":1}', ProtocolError),
        (b'{"type":"connect","id":1,"extra":true}', ProtocolError),
        (b'{"type":"diagnostics","id":1}', ProtocolError),
        (b'{"type":"disconnect","id":"1"}', ProtocolError),
        (b'{"id":1}', ProtocolError),
    ],
)
def test_garbage_is_a_protocol_error(body: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error) as caught:
        p.decode_request(body)
    assert type(caught.value) is error
    assert caught.value.code == (
        "unsupported_version" if error is UnsupportedVersionError else "bad_request"
    )


def test_version_may_be_omitted_and_means_1() -> None:
    assert p.decode_request(b'{"type":"connect","id":4}') == p.Connect(id=4)


def test_message_id_is_read_for_the_answer_when_possible() -> None:
    assert p.message_id(b'{"type":"nope","id":9}') == 9
    assert p.message_id(b'{"id":true}') == 0
    assert p.message_id(b"\xff") == 0
    assert p.message_id(b"[" * 100_000) == 0


def test_replies_are_not_requests() -> None:
    with pytest.raises(ProtocolError):
        p.decode_request(msgspec.json.encode(p.Done(id=1)))
    with pytest.raises(ProtocolError):
        p.decode_reply(msgspec.json.encode(p.Connect(id=1)))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 17))
def test_any_bytes_in_any_chunks_are_frames_or_a_protocol_error(data: bytes, chunk: int) -> None:
    decoder = p.FrameDecoder(max_frame=256)
    try:
        for i in range(0, len(data), chunk):
            for body in decoder.feed(data[i : i + chunk]):
                with contextlib.suppress(ProtocolError):
                    p.decode_request(body)
    except ProtocolError:
        pass  # an oversized header: the connection is closed
