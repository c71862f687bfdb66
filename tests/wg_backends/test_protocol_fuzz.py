"""Fuzzing the helper protocol's parsers: only ``ProtocolError``, never anything else.

Each property runs twice: a few hundred examples in the default run, and ≥ 100,000 under
the ``fuzz`` marker (``pytest -m fuzz tests/wg_backends/test_protocol_fuzz.py``, about
4 + 7 minutes of one core), with the process's peak memory checked to stay bounded (a
frame never buffers more than ``MAX_FRAME`` plus its header).
"""

from __future__ import annotations

import contextlib
import resource
import struct
from collections.abc import Callable, Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import ProtocolError
from wg_backends.helper import protocol as p

pytestmark = pytest.mark.unit

FUZZ_EXAMPLES = 100_000
DEFAULT_EXAMPLES = 300
# Peak RSS may grow this much after the first run: a later run can draw a larger stream
# (up to ~0.5 MB each, held by Hypothesis too). The decoders' own buffers are checked
# exactly, at every step, by the properties (``pending <= MAX_FRAME + 4``).
_MEMORY_SLACK_KB = 96 * 1024

SPEC = {
    "interface": "rtw0",
    "addresses": ["10.0.0.2/32"],
    "private_key": PRIV,
    "peers": [{"public_key": PUB, "endpoint": "192.0.2.1:51820", "allowed_ips": ["10.1.0.0/16"]}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)  # fmt: skip


def _mutate(data: bytes, cuts: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(data)
    for pos, junk in cuts:
        at = pos % (len(out) + 1)
        out[at : at + len(junk)] = junk
    return bytes(out)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Mostly almost-valid requests: real messages with bytes overwritten, deep nests,
    invalid UTF-8, plus plain random bytes."""
    kind = draw(st.sampled_from(["random", "mutated", "deep", "structured", "utf8"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    if kind == "deep":
        opener = draw(st.sampled_from([b"[", b'{"a":', b'[{"x":']))
        return opener * draw(st.integers(1, 20_000))  # far past Python's recursion limit
    msg: dict[str, object] = {
        "v": draw(st.sampled_from([1, 1, 1, 2, "1", None])),
        "type": draw(st.sampled_from(["hello", "up", "down", "status", "ok", "x"])),
        "id": draw(st.integers(-(2**70), 2**70)),
    }
    if draw(st.booleans()):
        msg["spec"] = SPEC if draw(st.booleans()) else draw(json_values)
    if draw(st.booleans()):
        msg["interface"] = draw(st.one_of(st.text(max_size=20), json_values))
    if draw(st.booleans()):
        msg["reason"] = draw(st.text(max_size=40))
        msg["break_glass"] = draw(json_values)
    body = msgspec.json.encode(msg)
    if kind == "utf8":
        return _mutate(body, [(draw(st.integers(0, 400)), draw(st.sampled_from(
            [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"])))])  # fmt: skip
    if kind == "mutated":
        cuts = draw(st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=4)), max_size=4))
        return _mutate(body, cuts)
    return body


def _decode_property(body: bytes) -> None:
    for decode in (p.decode_request, p.decode_reply):
        with contextlib.suppress(ProtocolError):
            decode(body)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    frames = draw(st.lists(bodies(), max_size=4))
    raw = b"".join(struct.pack(">I", len(b)) + b for b in frames)
    raw = draw(st.sampled_from([raw, raw + draw(st.binary(max_size=64))]))
    if draw(st.booleans()):  # a lying header
        raw = struct.pack(">I", draw(st.integers(0, 2**32 - 1))) + raw
    sizes = draw(st.lists(st.integers(1, 512), max_size=20))
    return raw, sizes


def _chunks(raw: bytes, sizes: list[int]) -> Iterator[bytes]:
    at = 0
    for n in sizes:
        yield raw[at : at + n]
        at += n
    yield raw[at:]


def _frame_property(case: tuple[bytes, list[int]]) -> None:
    raw, sizes = case
    dec = p.FrameDecoder()
    try:
        for chunk in _chunks(raw, sizes):
            for body in dec.feed(chunk):
                assert len(body) <= p.MAX_FRAME
                _decode_property(body)
            assert dec.pending <= p.MAX_FRAME + 4
    except ProtocolError:
        pass


def _run(
    prop: Callable[..., None], strategy: st.SearchStrategy[object], n: int, chunk: int = 5_000
) -> None:
    """``n`` examples of ``prop``, in runs of at most ``chunk`` examples.

    Hypothesis keeps a record of every example of a run (its data tree grows by some
    hundred megabytes over 100,000 examples), so a long fuzz is split into fresh runs;
    the parsers' own memory is then checked by the peak RSS not growing from the end of
    the first run to the end of the last one.
    """
    peaks: list[int] = []
    for start in range(0, n, chunk):
        test = settings(
            max_examples=min(chunk, n - start),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(prop))
        test()
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    grown = peaks[-1] - peaks[0]
    assert grown < _MEMORY_SLACK_KB, f"peak memory grew by {grown} KiB over the runs"


def test_decode_request_only_raises_protocol_error() -> None:
    _run(_decode_property, bodies(), DEFAULT_EXAMPLES)


def test_frame_decoder_only_raises_protocol_error() -> None:
    _run(_frame_property, streams(), DEFAULT_EXAMPLES)


@pytest.mark.fuzz
def test_fuzz_decode_request() -> None:
    _run(_decode_property, bodies(), FUZZ_EXAMPLES)


@pytest.mark.fuzz
def test_fuzz_frame_decoder() -> None:
    _run(_frame_property, streams(), FUZZ_EXAMPLES)
