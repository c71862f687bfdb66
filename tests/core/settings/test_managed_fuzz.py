"""Fuzzing the managed settings readers: never a crash, never half a payload.

The Linux JSON parser, the macOS plist parser and the Windows registry reader (through
its injected accessor) take arbitrary, mostly almost-valid input; each result goes
through the loader. The properties: nothing raises, memory stays bounded, and either the
payload is accepted whole (``managed_rejected`` is None and every managed value passes the
model's validation) or it is rejected whole (nothing of it applies: the previous payload
does). Each property runs a few hundred examples in the default run and ≥ 100,000 under
the ``fuzz`` marker (``pytest -m fuzz tests/core/settings/test_managed_fuzz.py``).
"""

from __future__ import annotations

import datetime
import json
import logging
import plistlib
import resource
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import settings as cs
from core.settings.managed import ManagedLayer
from core.settings.managed.linux import parse_json_layer
from core.settings.managed.macos import parse_plist_layer
from core.settings.managed.windows import (
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_QWORD,
    REG_SZ,
    RegistryValues,
    WindowsManagedSource,
)

pytestmark = pytest.mark.unit

FUZZ_EXAMPLES = 100_000
DEFAULT_EXAMPLES = 300
BATCH = 2_000  # examples per Hypothesis run (see ``_run``)
_MEMORY_SLACK_KB = 96 * 1024  # peak RSS may grow this much over a whole fuzz run
NO_USER_FILE = Path("/nonexistent/rustronaut-fuzz/settings.json")
PIN = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
PREVIOUS = cs.ManagedPayload(values={"always_on": True}, origins={"always_on": "previous"})
KEYS = [*cs.SPECS, "ALWAYS_ON", "always_onn", "PayloadUUID", "Payloadx", "", "\x1b[2J"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["yes", "1", "true", "9080", PIN, "https://c.example.com", "debug"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)  # fmt: skip
payloads = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=12), json_values, max_size=8)


class _Static:
    def __init__(self, layers: Sequence[ManagedLayer]) -> None:
        self._layers = layers

    def describe(self) -> str:
        return "fuzz"

    def read(self) -> Sequence[ManagedLayer]:
        return self._layers

    def fingerprint(self) -> object:
        return None


def _mutate(data: bytes, cuts: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(data)
    for pos, junk in cuts:
        at = pos % (len(out) + 1)
        out[at : at + len(junk)] = junk
    return bytes(out)


def _check(source: object) -> None:
    """The loader's contract on whatever ``source`` reads."""
    s = cs.load(managed_sources=[source], user_path=NO_USER_FILE, last_good=PREVIOUS)  # type: ignore[list-item]
    if s.managed_rejected is None:
        for key, value in s.managed.values.items():
            assert cs.SPECS[key].validate(value) == value
            assert s.source(key) == "managed"
    else:
        assert s.managed == PREVIOUS
        assert s.always_on is True
        assert {k for k in cs.SPECS if s.source(k) == "managed"} == {"always_on"}
        assert s.problems
    assert len(s.problems) <= 51


# ----------------------------------------------------------------------- Linux JSON
@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "deep", "structured", "numbers"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    if kind == "deep":
        opener = draw(st.sampled_from([b"[", b'{"always_on":', b'[{"x":']))
        return opener * draw(st.integers(1, 40_000))
    if kind == "numbers":
        digits = draw(st.integers(1, 6000))
        return b'{"proxy_port": ' + b"9" * digits + b"}"
    body = json.dumps(draw(payloads)).encode()
    if kind == "mutated":
        cuts = draw(st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=4)), max_size=4))
        return _mutate(body, cuts)
    return body


def _json_property(data: bytes) -> None:
    layer = parse_json_layer("fuzz.json", data)
    assert isinstance(layer.values, dict)
    _check(_Static([layer]))


# ---------------------------------------------------------------------- macOS plist
plist_values = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40).filter(lambda t: "\x00" not in t and "\r" not in t)
    | st.binary(max_size=8)
    | st.datetimes(min_value=datetime.datetime(1900, 1, 1)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8).filter(lambda t: "\x00" not in t), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def plist_documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "deep", "structured"]))
    if kind == "random":
        return draw(st.sampled_from([b"", b"bplist00", b"<?xml"])) + draw(st.binary(max_size=400))
    if kind == "deep":
        depth = draw(st.integers(1, 5000))
        return (
            b'<?xml version="1.0"?><plist version="1.0">'
            + b"<array>" * depth
            + b"</array>" * draw(st.integers(0, depth))
            + b"</plist>"
        )
    keys = st.sampled_from(KEYS).filter(lambda k: "\x1b" not in k) | st.text(max_size=12).filter(
        lambda t: (
            "\x00" not in t and "\r" not in t and not any(0xD800 <= ord(c) < 0xE000 for c in t)
        )
    )
    doc = draw(st.dictionaries(keys, plist_values, max_size=8))
    fmt = draw(st.sampled_from([plistlib.FMT_XML, plistlib.FMT_BINARY]))
    try:
        body = plistlib.dumps(doc, fmt=fmt)
    except (ValueError, TypeError, OverflowError):  # not representable in this format
        body = plistlib.dumps({"always_on": True}, fmt=fmt)
    if kind == "mutated":
        cuts = draw(st.lists(st.tuples(st.integers(0, 600), st.binary(max_size=4)), max_size=4))
        return _mutate(body, cuts)
    return body


def _plist_property(data: bytes) -> None:
    layer = parse_plist_layer("fuzz.plist", data)
    _check(_Static([layer]))


# ------------------------------------------------------------------ Windows registry
registry_data = (
    st.integers(-(2**70), 2**70)
    | st.text(max_size=40)
    | st.sampled_from(["yes", "1", "9080", PIN, "https://c.example.com"])
    | st.lists(st.text(max_size=20) | st.integers(), max_size=5)
    | st.binary(max_size=16)
    | st.none()
    | st.floats()
)
registry_kinds = st.sampled_from(
    [REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD, 0, 5, 99, -1]
)
registries = (
    st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=12),
        st.tuples(registry_data, registry_kinds),
        max_size=8,
    )
    | st.none()
)


class _Registry:
    def __init__(self, values: RegistryValues | None) -> None:
        self._values = values

    def read_values(self, key_path: str) -> RegistryValues | None:
        return self._values


def _registry_property(values: RegistryValues | None) -> None:
    source = WindowsManagedSource(_Registry(values))
    hash(source.fingerprint())
    _check(source)


# ---------------------------------------------------------------------------- runs
def _run(prop: Callable[..., None], strategy: st.SearchStrategy[object], n: int) -> None:
    """Run ``prop`` on ``n`` examples, in rounds of at most ``BATCH``.

    Hypothesis remembers every example of a run to steer towards new ones, so one run of
    100,000 examples grows by hundreds of MiB on its own; rounds keep that bounded and
    let the check see what the code under test holds on to.
    """
    # Every rejection is logged; pytest would keep 100,000 records in memory.
    logging.getLogger("core.settings.loader").disabled = True
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    test = settings(
        max_examples=min(n, BATCH),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(given(strategy)(prop))
    try:
        for _ in range(-(-n // BATCH)):
            test()
    finally:
        logging.getLogger("core.settings.loader").disabled = False
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < _MEMORY_SLACK_KB, f"peak memory grew by {grown} KiB"


CASES: dict[str, tuple[Callable[..., None], st.SearchStrategy[Any]]] = {
    "linux-json": (_json_property, json_documents()),
    "macos-plist": (_plist_property, plist_documents()),
    "windows-registry": (_registry_property, registries),
}


@pytest.mark.parametrize("case", list(CASES))
def test_managed_readers_never_crash_or_half_apply(case: str) -> None:
    prop, strategy = CASES[case]
    _run(prop, strategy, DEFAULT_EXAMPLES)


@pytest.mark.fuzz
@pytest.mark.parametrize("case", list(CASES))
def test_fuzz_managed_readers(case: str) -> None:
    prop, strategy = CASES[case]
    _run(prop, strategy, FUZZ_EXAMPLES)
