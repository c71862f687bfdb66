"""``wg_backends.signed``: the verification primitives below both the engine and the helper.

``core.wire`` re-exports the very same objects (one definition: an exception raised by one
is caught as the other's), and the anchor chain gives the helper the signing keys the
organisation's anchors vouch for — and nothing a relay adds."""

from __future__ import annotations

import importlib
import itertools

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.wg_backends.bundlekit import NOW, Org, raw_key
from wg_backends.signed import anchors as anchors_mod
from wg_backends.signed.anchors import (
    MAX_ENDORSEMENTS,
    MAX_ROOT_HOPS,
    anchor_keys,
    parse_anchor,
    trusted_signing_keys,
)
from wg_backends.signed.endorsement import endorse
from wg_backends.signed.jws import key_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("core_name", "moved"),
    [
        ("core.wire.canonical", "wg_backends.signed.canonical"),
        ("core.wire.signing", "wg_backends.signed.jws"),
        ("core.wire.endorsement", "wg_backends.signed.endorsement"),
    ],
)
def test_core_wire_re_exports_the_same_objects(core_name: str, moved: str) -> None:
    old, new = importlib.import_module(core_name), importlib.import_module(moved)
    assert old.__all__ == new.__all__
    for name in new.__all__:
        assert getattr(old, name) is getattr(new, name), name


def test_the_client_and_the_helper_read_anchors_alike() -> None:
    from core.policy.trust import parse_anchor as core_parse

    key = Ed25519PrivateKey.generate()
    good = raw_key(key)
    assert parse_anchor(good).public_bytes_raw() == core_parse(good).public_bytes_raw()
    last = good[-1]
    other = "B" if last != "B" else "C"  # non-zero trailing bits: another spelling
    for bad in ("", good + "=", good[:-1], " " + good[1:], good[:-1] + other, "+" * 43, 43):
        with pytest.raises(ValueError):
            parse_anchor(bad)  # type: ignore[arg-type]
        if isinstance(bad, str) and bad:
            with pytest.raises(ValueError):
                core_parse(bad)


def test_anchors_sign_and_endorse() -> None:
    org = Org()
    keys = trusted_signing_keys(org.anchors, [org.endorsement()], now=NOW)
    assert set(keys) == {key_id(org.root.public_key()), key_id(org.signer.public_key())}


def test_without_anchors_nothing_is_trusted() -> None:
    org = Org()
    assert trusted_signing_keys({}, [org.endorsement()], now=NOW) == {}


def test_relayed_noise_neither_adds_nor_removes() -> None:
    org, evil = Org(), Org()
    noise = ["", "x.y.z", evil.endorsement(), org.endorsement(not_after=NOW - 400), 7]
    keys = trusted_signing_keys(org.anchors, [*noise, org.endorsement()], now=NOW)
    assert key_id(org.signer.public_key()) in keys
    assert key_id(evil.signer.public_key()) not in keys
    assert key_id(evil.root.public_key()) not in keys


def test_only_the_first_statements_are_looked_at() -> None:
    org = Org()
    filler = [org.endorsement(not_after=NOW - 400)] * MAX_ENDORSEMENTS
    keys = trusted_signing_keys(org.anchors, [*filler, org.endorsement()], now=NOW)
    assert key_id(org.signer.public_key()) not in keys


def test_root_rotations_are_followed_a_bounded_number_of_hops() -> None:
    org = Org()
    chain = [org.root] + [Ed25519PrivateKey.generate() for _ in range(MAX_ROOT_HOPS + 1)]
    rotations = [
        endorse(new.public_key(), old, role="root", not_before=NOW - 10, not_after=NOW + 10)
        for old, new in itertools.pairwise(chain)
    ]
    keys = trusted_signing_keys(org.anchors, list(reversed(rotations)), now=NOW)
    reached = [key_id(k.public_key()) in keys for k in chain]
    assert reached == [True] * (MAX_ROOT_HOPS + 1) + [False]


def test_anchor_keys_are_by_kid() -> None:
    key = Ed25519PrivateKey.generate()
    assert list(anchor_keys([raw_key(key)])) == [key_id(key.public_key())]
    with pytest.raises(ValueError):
        anchor_keys(["nope"])
    assert anchors_mod.MAX_ANCHORS == 16
