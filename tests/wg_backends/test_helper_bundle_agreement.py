"""Property: the helper and the engine never read different tunnels in the same signed bytes.

The helper decodes only a few fields of a bundle; the engine decodes all of it. For
payloads derived from a real bundle by the edits an attacker with a signing key's help (or
a buggy controller) could make — a key given twice, another spelling of a number, spacing,
escapes, reordered fields, added fields — whenever the helper accepts, the engine either
refuses the bundle or reads exactly the same spec.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.wire.policy import BundleFormatError, decode_bundle
from tests.wg_backends.bundlekit import Org, check, payload_of, spec
from wg_backends.helper.bundles import BundleRefused

pytestmark = pytest.mark.unit

ORG = Org()
BASE = payload_of(ORG.bundle(1, gateways=(spec("10.30.0.0/16", interface="rst1"),)))
_KEYS = sorted(set(re.findall(rb'"([a-z_]+)":', BASE)))


def _dup(payload: bytes, data: st.DataObject) -> bytes:
    key = data.draw(st.sampled_from(_KEYS))
    value = data.draw(st.sampled_from([b"1", b'"x"', b"null", b"[]", b'["0.0.0.0/0"]', b"{}"]))
    where = data.draw(st.sampled_from(["before", "after"]))
    old = b'"' + key + b'":'
    if where == "before":
        return payload.replace(old, b'"' + key + b'":' + value + b"," + old, 1)
    idx = payload.find(old)
    end = payload.find(b",", idx)
    return payload[:end] + b"," + old + value + payload[end:] if end > 0 else payload


def _number(payload: bytes, data: st.DataObject) -> bytes:
    numbers = [m for m in re.finditer(rb":(-?[0-9]+)([,}\]])", payload)]
    m = data.draw(st.sampled_from(numbers))
    spelling = data.draw(st.sampled_from([b"{}.0", b"{}e0", b"0{}", b"{}.00", b"+{}"]))
    new = spelling.replace(b"{}", m.group(1))
    return payload[: m.start(1)] + new + payload[m.end(1) :]


def _space(payload: bytes, data: st.DataObject) -> bytes:
    at = data.draw(st.sampled_from([m.end() for m in re.finditer(rb"[,:]", payload)]))
    return payload[:at] + data.draw(st.sampled_from([b" ", b"\n", b"\t"])) + payload[at:]


def _field(payload: bytes, data: st.DataObject) -> bytes:
    try:
        doc = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return payload  # an earlier edit made it invalid JSON: nothing to edit here
    target, name, value = data.draw(
        st.sampled_from(
            [
                ("top", "extra", 1),  # unknown: the engine refuses, the helper ignores
                ("top", "version", 2),
                ("tunnel", "dns", ["10.0.0.53"]),
                ("tunnel", "mtu", 1380),
                ("tunnel", "extra", 1),
                ("peer", "allowed_ips", ["10.99.0.0/16", "fd00:99::/32"]),
                ("peer", "endpoint", "198.51.100.7:51820"),
                ("peer", "persistent_keepalive", 25),
            ]
        )
    )
    node = {"top": doc, "tunnel": doc["tunnel"], "peer": doc["tunnel"]["peers"][0]}[target]
    node[name] = value
    if data.draw(st.integers(0, 4)) == 0:
        doc["tunnel"] = dict(reversed(list(doc["tunnel"].items())))
    return msgspec.json.encode(doc)


def _escape(payload: bytes, data: st.DataObject) -> bytes:
    strings = [m for m in re.finditer(rb'"([a-z])', payload)]
    m = data.draw(st.sampled_from(strings))
    return payload[: m.start(1)] + b"\\u00%02x" % m.group(1)[0] + payload[m.end(1) :]


EDITS = [_dup, _number, _space, _field, _field, _field, _escape]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_whenever_the_helper_accepts_the_engine_reads_the_same_spec(
    tmp_path: Path, data: st.DataObject
) -> None:
    payload = BASE
    for _ in range(data.draw(st.integers(1, 2))):
        payload = data.draw(st.sampled_from(EDITS))(payload, data)
    token = ORG.raw_token(payload)
    state = tmp_path / f"s{data.draw(st.integers(0, 10**9))}"
    for profile in ("tunnel", "gateway:0"):
        try:
            helper = check(ORG, token, state, profile=profile).spec
        except BundleRefused:
            continue
        try:
            engine = decode_bundle(payload)
        except BundleFormatError:
            continue  # the engine refuses what it does not read alike: nothing applies
        event("both accept")
        want = engine.tunnel if profile == "tunnel" else engine.gateways[0]
        assert helper == want


def test_every_edit_kind_is_refused_by_the_helper_on_its_own(tmp_path: Path) -> None:
    # A key twice anywhere, another number spelling, spacing, an escape: refused as not
    # canonical before any field is read.
    for payload in (
        BASE.replace(b'{"version":1,', b'{"version":1,"version":2,', 1),
        BASE.replace(b'"mtu":null', b'"mtu":null,"mtu":9000', 1),
        BASE.replace(b'"issued_at":', b'"issued_at": ', 1),
        BASE.replace(b'"alice"', b'"\\u0061lice"', 1),
    ):
        assert payload != BASE
        with pytest.raises(BundleRefused) as info:
            check(ORG, ORG.raw_token(payload), tmp_path)
        assert info.value.reason == "not_canonical"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.one_of(
        st.binary(max_size=256),
        _JSON.map(msgspec.json.encode),
        st.fixed_dictionaries(
            {"version": _JSON, "device_id": _JSON, "issued_at": _JSON, "expires_at": _JSON},
            optional={"tunnel": _JSON, "gateways": _JSON, "schema": _JSON},
        ).map(msgspec.json.encode),
    ),
    profile=st.sampled_from(["tunnel", "gateway:0", "gateway:15"]),
)
def test_any_signed_payload_is_a_spec_or_a_bad_bundle_never_a_crash(
    tmp_path: Path, payload: bytes, profile: str
) -> None:
    # Signed by a trusted key: everything after the signature runs on it.
    try:
        got = check(ORG, ORG.raw_token(payload), tmp_path / "s", profile=profile)
    except BundleRefused:
        pass  # the one error the helper answers with (bad_bundle)
    else:
        assert got.spec.private_key is None
