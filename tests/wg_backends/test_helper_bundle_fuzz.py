"""Fuzzing the helper's bundle verifier: whatever a trusted key signed (random bytes, random
JSON, bundle-shaped objects, a real bundle after hostile edits), ``verified_spec`` yields a
spec without a private key or refuses with ``BundleRefused`` — nothing else, with bounded
memory. The default run takes a few hundred examples; ``pytest -m fuzz`` takes 100,000 (in
rounds, like the protocol fuzz)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import strategies as st

from tests.wg_backends.bundlekit import check
from tests.wg_backends.test_helper_bundle_agreement import _JSON, BASE, EDITS, ORG
from tests.wg_backends.test_protocol_fuzz import _run
from wg_backends.helper.bundles import BundleRefused

pytestmark = pytest.mark.unit

DEFAULT_EXAMPLES = 300
FUZZ_EXAMPLES = 100_000


@st.composite
def _edited(draw: st.DrawFn) -> bytes:
    payload = BASE
    data = _Draws(draw)
    for _ in range(draw(st.integers(1, 3))):
        payload = draw(st.sampled_from(EDITS))(payload, data)  # type: ignore[arg-type]
    return payload


class _Draws:
    """The ``data.draw`` the edit functions expect, over a composite's ``draw``."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw


def payloads() -> st.SearchStrategy[tuple[bytes, str]]:
    shaped = st.fixed_dictionaries(
        {"version": _JSON, "device_id": _JSON, "issued_at": _JSON, "expires_at": _JSON},
        optional={"tunnel": _JSON, "gateways": _JSON, "schema": _JSON},
    )
    return st.tuples(
        st.one_of(
            st.binary(max_size=512),
            _JSON.map(msgspec.json.encode),
            shaped.map(msgspec.json.encode),
            _edited(),
        ),
        st.sampled_from(["tunnel", "gateway:0", "gateway:1"]),
    )


_STATE = Path(tempfile.mkdtemp(prefix="rtw-fuzz-"))  # floors, shared by every example
atexit.register(shutil.rmtree, _STATE, True)


def _property(case: tuple[bytes, str]) -> None:
    payload, profile = case
    try:
        got = check(ORG, ORG.raw_token(payload), _STATE, profile=profile)
    except BundleRefused:
        return
    assert got.spec.private_key is None


def test_verified_spec_only_refuses_with_bad_bundle() -> None:
    _run(_property, payloads(), DEFAULT_EXAMPLES)


@pytest.mark.fuzz
def test_fuzz_verified_spec() -> None:
    _run(_property, payloads(), FUZZ_EXAMPLES)
