"""The policy bundle wire model: round trip, signing, and located schema errors."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.policy import (
    BUNDLE_TYP,
    AllOf,
    BundleFormatError,
    FactCondition,
    NotOf,
    PolicyBundle,
    PortRange,
    Resource,
    Rule,
    UserInfo,
    check_regex,
    decode_bundle,
    encode_bundle,
    sign_bundle,
)
from core.wire.signing import verify
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

KEY32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def _tunnel(private_key: str | None = None) -> TunnelSpec:
    peer = PeerSpec(public_key=KEY32, endpoint="192.0.2.1:51820", allowed_ips=("10.0.0.0/8",))
    return TunnelSpec(
        interface="rst0", addresses=("100.64.0.2/32",), peers=(peer,), private_key=private_key
    )


def _bundle(**over: object) -> PolicyBundle:
    base: dict[str, object] = dict(
        version=3,
        device_id="dev-1",
        issued_at=1000,
        expires_at=5000,
        user=UserInfo(subject="alice", email="alice@corp.example", groups=("eng",)),
        resources=(
            Resource(
                id="git",
                name="Git",
                hosts=("git.corp.example", "*.git.corp.example"),
                cidrs=("10.1.0.0/16", "fd00::/64"),
                ports=(22, PortRange(first=8000, last=8100)),
                protocols=("tcp",),
            ),
        ),
        rules=(
            Rule(
                id="allow-git",
                effect="allow",
                resources=("git",),
                priority=10,
                conditions=AllOf(
                    of=(
                        FactCondition(fact="posture.disk.encrypted", op="eq", value=True),
                        NotOf(of=FactCondition(fact="user.groups", op="in", value=["contractors"])),
                    )
                ),
                max_risk=60,
                remediation={"posture.disk.encrypted": "Turn on disk encryption."},
            ),
        ),
        tunnel=_tunnel(),
    )
    base.update(over)
    return PolicyBundle(**base)  # type: ignore[arg-type]


def test_round_trip_is_exact() -> None:
    bundle = _bundle()
    assert decode_bundle(encode_bundle(bundle)) == bundle


def test_condition_json_shape_uses_kind_tag() -> None:
    data = msgspec.json.decode(encode_bundle(_bundle()))
    cond = data["rules"][0]["conditions"]
    assert cond["kind"] == "all"
    assert cond["of"][0] == {
        "kind": "fact",
        "fact": "posture.disk.encrypted",
        "op": "eq",
        "value": True,
    }  # defaults are omitted: smaller bundles
    assert cond["of"][1]["kind"] == "not"


def test_sign_bundle_verifies_with_typ() -> None:
    key = Ed25519PrivateKey.generate()
    token = sign_bundle(_bundle(), key, kid="k1")
    doc = verify(token, {"k1": key.public_key()}, typ=BUNDLE_TYP, max_size=1 << 20)
    assert decode_bundle(doc.payload) == _bundle()


def test_tunnel_with_private_key_is_refused() -> None:
    with pytest.raises(ValueError, match="private key"):
        _bundle(tunnel=_tunnel(private_key=KEY32))


def _mutate(path: list[object], value: object) -> bytes:
    data = msgspec.json.decode(encode_bundle(_bundle()))
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return msgspec.json.encode(data)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["rules", 0, "conditions", "of", 0, "op"], "approx", "$.rules[0].conditions.of[0].op"),
        (["rules", 0, "effect"], "maybe", "$.rules[0].effect"),
        (["rules", 0, "priority"], "high", "$.rules[0].priority"),
        (["resources", 0, "cidrs"], ["10.1.0.1/16"], "host bits"),
        (["resources", 0, "hosts"], ["Bad Host"], "not a lower-case host"),
        (["resources", 0, "ports"], [{"first": 9, "last": 1}], "reversed"),
        (["resources", 0, "ports"], [70000], "$.resources[0].ports[0]"),
        (["rules", 0, "resources"], ["nope"], "unknown resource 'nope'"),
        (["rules", 0, "conditions", "of", 0, "value"], [1, 2], "single value"),
        (["rules", 0, "conditions", "of", 0, "op"], "regex", "string pattern"),
        (["expires_at"], 10, "expires_at is not after issued_at"),
        (["surprise"], 1, "unknown field `surprise`"),
        (["user", "groups"], ["g"] * 2000, "length <= 1024"),
        (["tunnel", "interface"], "bad name!", "interface"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    path: list[object], value: object, message: str
) -> None:
    with pytest.raises(BundleFormatError) as info:
        decode_bundle(_mutate(path, value))
    assert message in str(info.value)


def test_deep_nesting_is_refused() -> None:
    cond: dict[str, object] = {"kind": "fact", "fact": "risk", "op": "lt", "value": 5}
    for _ in range(40):
        cond = {"kind": "not", "of": cond}
    with pytest.raises(BundleFormatError, match="deeper than"):
        decode_bundle(_mutate(["rules", 0, "conditions"], cond))


def test_very_deep_nesting_never_overflows() -> None:
    payload = encode_bundle(_bundle()).replace(
        b'"conditions":{', b'"conditions":' + b'{"kind":"not","of":' * 5000 + b"{", 1
    )
    with pytest.raises(BundleFormatError):
        decode_bundle(payload)


def test_duplicate_ids_are_refused() -> None:
    rule = _bundle().rules[0]
    with pytest.raises(BundleFormatError, match="duplicate rule id"):
        decode_bundle(encode_bundle(_bundle(rules=(rule, rule))))


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a+)+$", "nested unbounded repeat"),
        ("(a*)*", "nested unbounded repeat"),
        ("(x|xy)+z", "alternation inside"),
        (r"(\w+)\1", "back-references"),
        ("(?=a)a", "look-around"),
        ("a" * 300, "over the 256 limit"),
        ("(unclosed", "does not compile"),
    ],
)
def test_regex_bombs_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_regex(pattern)


@pytest.mark.parametrize("pattern", ["[a-z]+", r"\d{1,3}(\.\d{1,3}){3}", "(foo|bar)-[0-9]+"])
def test_ordinary_regexes_pass(pattern: str) -> None:
    assert check_regex(pattern).pattern == pattern


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("gt", "5"),
        ("gt", True),
        ("in", "eng"),
        ("version_gte", "14.x"),
        ("cidr", "10.0.0.1/8"),
        ("exists", 3),
        ("glob", "*" * 300),
    ],
)
def test_operator_value_mismatch_is_refused(op: str, value: object) -> None:
    with pytest.raises(ValueError):
        FactCondition(fact="posture.os.version", op=op, value=value)  # type: ignore[arg-type]


def test_profiles_are_checked() -> None:
    from core.wire.policy import RefOf

    managed = FactCondition(fact="posture.disk.encrypted", op="eq", value=True)
    rule = Rule(id="r", effect="allow", resources=("git",), conditions=RefOf(profile="managed"))
    ok = _bundle(rules=(rule,), profiles={"managed": managed})
    assert decode_bundle(encode_bundle(ok)) == ok
    with pytest.raises(BundleFormatError, match="unknown condition profile 'managed'"):
        decode_bundle(encode_bundle(_bundle(rules=(rule,))))
    nested = _bundle(rules=(rule,), profiles={"managed": RefOf(profile="managed")})
    with pytest.raises(BundleFormatError, match="may not refer to profiles"):
        decode_bundle(encode_bundle(nested))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["rules", 0, "id"], "allow git", "$.rules[0]: id 'allow git' may only use"),
        (["resources", 0, "id"], "g\nit", "$.resources[0]: id 'g\\nit'"),
        (["device_id"], "dev 1", "$.device_id[0]"),
        (["rules", 0, "conditions", "of", 0, "fact"], "posture.\x1b[31m", "control characters"),
    ],
)
def test_bad_ids_and_fact_names_are_refused(path: list[object], value: str, message: str) -> None:
    with pytest.raises(BundleFormatError) as info:
        decode_bundle(_mutate(path, value))
    assert message in str(info.value)
