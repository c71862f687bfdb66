"""The helper verifies a policy bundle itself before taking a tunnel spec from it (issue 16,
Deliver 2): anchors → endorsements → signature → canonical JSON → validity → device →
rollback floor → profile. Hostile bundles: a key the anchors do not trust, an endorsement
of another key, expired statements, rollback, a key given twice, routes added after
signing. A bundle signed by a non-anchored key must never yield a spec."""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.policy.verify import verify_bundle
from core.wire.policy import RiskSettings
from tests.wg_backends.bundlekit import (
    DEVICE,
    GW2_KEY,
    NOW,
    OWNER,
    Org,
    as_builtins,
    check,
    payload_of,
    raw_key,
    spec,
)
from wg_backends.helper.bundles import (
    FLOORS_FILE_NAME,
    MAX_HELPER_BUNDLE,
    BundleRefused,
    HelperFloors,
    parse_profile,
    profile_for,
)
from wg_backends.signed.anchors import anchor_keys
from wg_backends.signed.endorsement import endorse
from wg_backends.signed.jws import b64url, key_id

pytestmark = pytest.mark.unit


@pytest.fixture
def org() -> Org:
    return Org()


def refused(reason: str, fn: object, *args: object, **kw: object) -> BundleRefused:
    with pytest.raises(BundleRefused) as info:
        fn(*args, **kw)  # type: ignore[operator]
    assert info.value.reason == reason, str(info.value)
    assert info.value.helper_code == "bad_bundle"
    return info.value


# --- the good path --------------------------------------------------------------------


def test_an_endorsed_signers_bundle_yields_its_tunnel_spec(org: Org, tmp_path: Path) -> None:
    got = check(org, org.bundle(7), tmp_path)
    assert got.spec == spec()
    assert got.spec.private_key is None
    assert (got.device_id, got.version, got.profile) == (DEVICE, 7, "tunnel")
    assert got.signer == key_id(org.signer.public_key())
    assert HelperFloors(tmp_path).version(DEVICE) == 7


def test_the_helper_and_the_engine_take_the_same_spec(org: Org, tmp_path: Path) -> None:
    token = org.bundle(3, risk=RiskSettings(), gateways=(spec("10.30.0.0/16", gw=GW2_KEY),))
    engine = verify_bundle(
        token, {key_id(org.signer.public_key()): org.signer.public_key()}, device_id=DEVICE, now=NOW
    )
    assert check(org, token, tmp_path).spec == engine.tunnel
    assert check(org, token, tmp_path, profile="gateway:0").spec == engine.gateways[0]


def test_an_anchor_may_sign_a_bundle_itself(org: Org, tmp_path: Path) -> None:
    got = check(org, org.bundle(key=org.root), tmp_path, endorsements=[])
    assert got.signer == key_id(org.root.public_key())


def test_a_root_rotation_is_followed(org: Org, tmp_path: Path) -> None:
    new_root = Ed25519PrivateKey.generate()
    rotation = endorse(
        new_root.public_key(), org.root, role="root", not_before=NOW - 10, not_after=NOW + 10
    )
    signing = endorse(org.signer.public_key(), new_root, not_before=NOW - 10, not_after=NOW + 10)
    assert check(org, org.bundle(), tmp_path, endorsements=[signing, rotation]).version == 1


# --- keys the anchors do not trust ----------------------------------------------------


def test_a_bundle_signed_by_an_unendorsed_key_is_refused(org: Org, tmp_path: Path) -> None:
    err = refused("untrusted_key", check, org, org.bundle(), tmp_path, endorsements=[])
    assert key_id(org.signer.public_key()) in str(err)
    assert HelperFloors(tmp_path).version(DEVICE) is None  # nothing changed


def test_an_attackers_own_root_and_endorsement_do_not_count(org: Org, tmp_path: Path) -> None:
    evil = Org()  # signs with his key, endorsed by his root: a perfect chain to nowhere
    refused(
        "untrusted_key",
        check,
        org,
        evil.bundle(),
        tmp_path,
        endorsements=[evil.endorsement(), org.endorsement()],
    )


def test_an_endorsement_of_another_key_does_not_transfer(org: Org, tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate()
    refused("untrusted_key", check, org, org.bundle(key=other), tmp_path)


@pytest.mark.parametrize(
    ("not_before", "not_after"), [(NOW - 7200, NOW - 3600), (NOW + 3600, NOW + 7200)]
)
def test_an_endorsement_outside_its_window_does_not_count(
    org: Org, tmp_path: Path, not_before: int, not_after: int
) -> None:
    token = org.endorsement(not_before=not_before, not_after=not_after)
    refused("untrusted_key", check, org, org.bundle(), tmp_path, endorsements=[token])


def test_an_endorsement_for_signing_cannot_endorse_further(org: Org, tmp_path: Path) -> None:
    # The endorsed signing key (not a root) vouches for a third key: not followed.
    third = Ed25519PrivateKey.generate()
    hop = endorse(third.public_key(), org.signer, not_before=NOW - 10, not_after=NOW + 10)
    refused(
        "untrusted_key",
        check,
        org,
        org.bundle(key=third),
        tmp_path,
        endorsements=[org.endorsement(), hop],
    )


def test_no_anchors_means_nothing_is_trusted(org: Org, tmp_path: Path) -> None:
    refused("untrusted_key", check, org, org.bundle(), tmp_path, anchors={})


@pytest.mark.parametrize("endorsements", ["not-a-list", [1, 2], ["x"] * 17])
def test_bad_endorsement_lists(org: Org, tmp_path: Path, endorsements: object) -> None:
    with pytest.raises(BundleRefused) as info:
        check(org, org.bundle(), tmp_path, endorsements=endorsements)  # type: ignore[arg-type]
    assert info.value.reason in ("format", "untrusted_key")


# --- the signature and the token ------------------------------------------------------


def test_routes_added_after_signing_break_the_signature(org: Org, tmp_path: Path) -> None:
    token = org.bundle()
    doc = as_builtins(token)
    doc["tunnel"]["peers"][0]["allowed_ips"].append("0.0.0.0/0")
    header, _, sig = token.split(".")
    forged = f"{header}.{b64url(msgspec.json.encode(doc))}.{sig}"
    refused("signature", check, org, forged, tmp_path)


def test_an_endorsement_is_not_a_bundle(org: Org, tmp_path: Path) -> None:
    refused("signature", check, org, org.endorsement(), tmp_path)


def test_an_oversized_token_is_refused_before_any_work(org: Org, tmp_path: Path) -> None:
    refused("signature", check, org, "a" * (MAX_HELPER_BUNDLE + 1), tmp_path)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "é.é.é", 42])
def test_garbage_tokens(org: Org, tmp_path: Path, token: object) -> None:
    with pytest.raises(BundleRefused):
        check(org, token, tmp_path)  # type: ignore[arg-type]


# --- canonical JSON over the whole payload --------------------------------------------


def _resigned(org: Org, token: str, edit: object) -> str:
    text = payload_of(token)
    new = edit(text)  # type: ignore[operator]
    assert new != text
    return org.raw_token(new)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # "version" twice: one reader keeps the first, another the last
        (lambda p: p.replace(b'{"version":1,', b'{"version":1,"version":9,', 1), "not_canonical"),
        # a key twice deep in the rules, a part the helper does not decode
        (
            lambda p: p.replace(b'"effect":"allow"', b'"effect":"allow","effect":"deny"'),
            "not_canonical",
        ),
        # 1.0 for an integer: the schema's to refuse (a float is canonical JSON)
        (lambda p: p.replace(b'{"version":1,', b'{"version":1.0,', 1), "format"),
        (lambda p: p.replace(b'{"version":1,', b'{"version":1e0,', 1), "not_canonical"),
        (
            lambda p: p.replace(b'"issued_at":1799999940', b'"issued_at":1.79999994e9'),
            "not_canonical",
        ),
        (
            lambda p: p.replace(b'"issued_at":1799999940', b'"issued_at":1799999940.00'),
            "not_canonical",
        ),
        (lambda p: p.replace(b'{"version":1,', b'{"version":-0,', 1), "not_canonical"),
        (lambda p: p.replace(b'{"version":1,', b'{ "version": 1,', 1), "not_canonical"),
        (lambda p: p.replace(b'"alice"', b'"\\u0061lice"'), "not_canonical"),
        (lambda p: p.replace(b"{", b"[" * 70 + b"{", 1), "format"),
        (lambda p: p[:-1], "format"),
        (lambda p: b"[" + p + b"]", "format"),
        (lambda p: p.replace(b'"alice"', b'"al\xffice"'), "format"),
    ],
)
def test_a_signed_payload_not_in_canonical_form_is_refused(
    org: Org, tmp_path: Path, edit: object, reason: str
) -> None:
    token = _resigned(org, org.bundle(1), edit)
    refused(reason, check, org, token, tmp_path)
    assert HelperFloors(tmp_path).version(DEVICE) is None


def test_a_spec_in_another_field_order_is_refused(org: Org, tmp_path: Path) -> None:
    doc = as_builtins(org.bundle())
    doc["tunnel"] = dict(reversed(list(doc["tunnel"].items())))
    refused("not_canonical", check, org, org.raw_token(msgspec.json.encode(doc)), tmp_path)


def test_a_spec_with_a_private_key_is_refused(org: Org, tmp_path: Path) -> None:
    doc = as_builtins(org.bundle())
    doc["tunnel"]["private_key"] = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
    refused("format", check, org, org.raw_token(msgspec.json.encode(doc)), tmp_path)


@pytest.mark.parametrize(
    ("field", "value"),
    [("interface", "-rst0"), ("dns", ["not-an-ip"]), ("addresses", []), ("mtu", 100)],
)
def test_an_invalid_spec_is_refused_even_when_signed(
    org: Org, tmp_path: Path, field: str, value: object
) -> None:
    doc = as_builtins(org.bundle())
    doc["tunnel"][field] = value
    err = refused("format", check, org, org.raw_token(msgspec.json.encode(doc)), tmp_path)
    assert "tunnel" in str(err)


def test_a_realistic_large_bundle_verifies(org: Org, tmp_path: Path) -> None:
    import random

    from tests.bench.bench_policy import make_bundle

    big = make_bundle(2000, random.Random(7))
    token = org.bundle(
        resources=big.resources,
        rules=big.rules,
        profiles=big.profiles,
        risk=RiskSettings(),
    )
    assert len(token) > 500_000
    assert check(org, token, tmp_path).spec == spec()


# --- validity, device, rollback -------------------------------------------------------


def test_expired_and_future_bundles(org: Org, tmp_path: Path) -> None:
    refused("expired", check, org, org.bundle(), tmp_path, now=NOW + 3600)
    future = org.bundle(issued_at=NOW + 400, expires_at=NOW + 4000)
    refused("not_yet_valid", check, org, future, tmp_path)
    assert check(org, org.bundle(issued_at=NOW + 200, expires_at=NOW + 4000), tmp_path)


def test_the_expected_device_is_checked(org: Org, tmp_path: Path) -> None:
    refused("wrong_device", check, org, org.bundle(), tmp_path, device_id="dev-2")
    assert check(org, org.bundle(), tmp_path, device_id=DEVICE).device_id == DEVICE


def test_an_older_bundle_is_refused_after_a_newer_one(org: Org, tmp_path: Path) -> None:
    check(org, org.bundle(5), tmp_path)
    check(org, org.bundle(5), tmp_path)  # the same version again: a re-apply
    err = refused("rollback", check, org, org.bundle(4), tmp_path)
    assert "version 4" in str(err)
    assert "version 5" in str(err)
    assert HelperFloors(tmp_path).version(DEVICE) == 5
    check(org, org.bundle(6), tmp_path)
    assert HelperFloors(tmp_path).version(DEVICE) == 6


def test_floors_are_per_device(org: Org, tmp_path: Path) -> None:
    check(org, org.bundle(5), tmp_path)
    assert check(org, org.bundle(1, device_id="dev-2"), tmp_path).version == 1


def test_another_accounts_device_is_refused_root_excepted(org: Org, tmp_path: Path) -> None:
    check(org, org.bundle(1), tmp_path, owner=OWNER)
    err = refused("wrong_device", check, org, org.bundle(2), tmp_path, owner=1001)
    assert "another account" in str(err)
    assert HelperFloors(tmp_path).version(DEVICE) == 1
    assert check(org, org.bundle(2), tmp_path, owner=0).version == 2
    assert check(org, org.bundle(2), tmp_path, owner=OWNER).version == 2  # still his


def test_root_binds_no_account_to_a_device(org: Org, tmp_path: Path) -> None:
    check(org, org.bundle(1), tmp_path, owner=0)
    assert check(org, org.bundle(2), tmp_path, owner=OWNER).version == 2  # binds now
    refused("wrong_device", check, org, org.bundle(3), tmp_path, owner=1001)
    assert check(org, org.bundle(3), tmp_path, owner=0).version == 3


def test_the_floor_file_is_private_and_atomic(org: Org, tmp_path: Path) -> None:
    check(org, org.bundle(3), tmp_path)
    st = os.stat(tmp_path / FLOORS_FILE_NAME)
    assert st.st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".floors-")] == []


@pytest.mark.parametrize("content", [b"", b"{", b'{"floors":{"dev-1":{"version":0}}}', b"\xff"])
def test_an_unreadable_floor_file_is_never_replaced(
    org: Org, tmp_path: Path, content: bytes
) -> None:
    (tmp_path / FLOORS_FILE_NAME).write_bytes(content)
    os.chmod(tmp_path, 0o700)
    refused("floor", check, org, org.bundle(9), tmp_path)
    assert (tmp_path / FLOORS_FILE_NAME).read_bytes() == content


def test_a_symlinked_floor_file_is_refused(org: Org, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b"{}")
    (tmp_path / FLOORS_FILE_NAME).symlink_to(target)
    refused("floor", check, org, org.bundle(), tmp_path)
    assert target.read_bytes() == b"{}"


def test_a_group_writable_state_dir_is_refused(org: Org, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o770)
    refused("floor", check, org, org.bundle(), state)


# --- profiles -------------------------------------------------------------------------


def test_profiles_pick_the_engines_order(org: Org, tmp_path: Path) -> None:
    gw0, gw1 = spec("10.30.0.0/16", gw=GW2_KEY), spec("10.40.0.0/16", interface="rst1")
    token = org.bundle(gateways=(gw0, gw1))
    assert check(org, token, tmp_path, profile="gateway:1").spec == gw1
    assert [profile_for(i, has_tunnel=True) for i in range(3)] == [
        "tunnel",
        "gateway:0",
        "gateway:1",
    ]
    assert profile_for(1, has_tunnel=False) == "gateway:1"
    refused("no_profile", check, org, token, tmp_path, profile="gateway:2")
    only_gateways = org.bundle(tunnel=None, gateways=(gw0,))
    refused("no_profile", check, org, only_gateways, tmp_path, profile="tunnel")
    assert check(org, only_gateways, tmp_path, profile=profile_for(0, has_tunnel=False))


@pytest.mark.parametrize(
    "profile", ["", "Tunnel", "gateway:", "gateway:-1", "gateway:01", "gateway:16", "gw:0", 0]
)
def test_bad_profile_ids(profile: object) -> None:
    with pytest.raises(BundleRefused) as info:
        parse_profile(profile)  # type: ignore[arg-type]
    assert info.value.reason == "no_profile"


def test_a_refused_bundle_leaves_the_floor_alone(org: Org, tmp_path: Path) -> None:
    check(org, org.bundle(2), tmp_path)
    refused("no_profile", check, org, org.bundle(3), tmp_path, profile="gateway:0")
    assert HelperFloors(tmp_path).version(DEVICE) == 2


def test_messages_carry_no_key_material(org: Org, tmp_path: Path) -> None:
    err = refused("untrusted_key", check, org, org.bundle(), tmp_path, endorsements=[])
    assert not re.search(r"[A-Za-z0-9+/]{43}=", str(err))
    assert raw_key(org.root) not in str(err)


def test_anchor_keys_of_the_managed_spelling(org: Org) -> None:
    assert list(anchor_keys([raw_key(org.root)])) == [key_id(org.root.public_key())]
