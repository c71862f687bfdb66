"""A hostile controller cannot talk the client into trusting its policy key.

Real parts: a real HTTP server on loopback plays the controller, the real
``ControlPlaneClient`` fetches its discovery answer, the real ``ControllerDiscovery`` and
``PolicyAdapter`` (``PolicyTrust`` + ``PolicyStore`` with its on-disk cache) judge it.
Each "start" builds them anew over the same data dir, as the agent does.

Before issue 16 the keys verifying policy were re-learned from the unsigned discovery
answer at every start: a discovery listing only the attacker's key plus a bundle it
signed was accepted, the tunnel got the attacker's extra route and the good cached
bundle was discarded.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.controlplane import ControlPlaneClient
from core.engine.adapters import ControllerDiscovery, PolicyAdapter
from core.policy.errors import (
    BundleSignatureError,
    PinnedRootMismatchError,
    UntrustedKeysError,
)
from core.policy.trust import PIN_FILE_NAME, PolicyTrust, parse_anchor
from core.settings import EffectiveSettings
from core.settings.errors import SettingValueError
from core.settings.model import check_policy_anchor
from core.wire.signing import b64url
from tests.core.policy.hostile import (
    DEVICE,
    Answer,
    bundle_token,
    discovery,
    endorsed,
    serve,
)

pytestmark = [pytest.mark.integration, pytest.mark.hostile_controller]

ROOT = Ed25519PrivateKey.generate()
GOOD = Ed25519PrivateKey.generate()
EVIL = Ed25519PrivateKey.generate()


def anchor(key: Ed25519PrivateKey) -> str:
    return b64url(key.public_key().public_bytes_raw())


def honest() -> bytes:
    return discovery([GOOD], roots=[ROOT], endorsements=[endorsed(GOOD, ROOT)])


async def start(url: str, data: Path, anchors: list[str]) -> PolicyAdapter:
    """One start of the agent: discovery fetched, a fresh adapter over the data dir."""
    disc = ControllerDiscovery(ControlPlaneClient(url), data / "discovery.json")
    await disc.get()
    trust = PolicyTrust(anchors, pin_path=data / PIN_FILE_NAME)
    return PolicyAdapter(disc.keys, data / "policy-bundle.json", trust=trust)


def routes(adapter: PolicyAdapter) -> set[str]:
    spec = adapter.tunnel_spec()
    assert spec is not None
    return {ip for peer in spec.peers for ip in peer.allowed_ips}


async def test_discovery_listing_only_an_attackers_key_is_refused(tmp_path: Path) -> None:
    answer = Answer(body=honest())
    with serve(answer) as url:
        first = await start(url, tmp_path, [anchor(ROOT)])
        first.accept(bundle_token(GOOD, 1), device_id=DEVICE)
        assert routes(first) == {"10.20.0.0/16"}
        cache = (tmp_path / "policy-bundle.json").read_bytes()

        # Next start: discovery lists only the attacker's key (and, for good measure,
        # the attacker as a "root" endorsing itself).
        answer.body = discovery([EVIL], roots=[EVIL], endorsements=[endorsed(EVIL, EVIL)])
        second = await start(url, tmp_path, [anchor(ROOT)])
        assert second.load_cached(device_id=DEVICE) is None  # logged, not raised
        with pytest.raises(UntrustedKeysError, match="trust anchor"):
            second.accept(bundle_token(EVIL, 2, "10.20.0.0/16", "10.99.0.0/16"), device_id=DEVICE)
        assert second.held() is None
        assert (tmp_path / "policy-bundle.json").read_bytes() == cache

        # The honest controller again: the good cached bundle is still there and used.
        answer.body = honest()
        third = await start(url, tmp_path, [anchor(ROOT)])
        info = third.load_cached(device_id=DEVICE)
        assert info is not None
        assert info.version == 1
        assert routes(third) == {"10.20.0.0/16"}


async def test_attacker_bundle_refused_even_beside_the_honest_key(tmp_path: Path) -> None:
    """Discovery lists the good key (endorsed) and the attacker's (not endorsed): only
    the endorsed one verifies anything."""
    body = discovery([GOOD, EVIL], roots=[ROOT], endorsements=[endorsed(GOOD, ROOT)])
    with serve(Answer(body=body)) as url:
        adapter = await start(url, tmp_path, [anchor(ROOT)])
        adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)
        with pytest.raises(BundleSignatureError, match="not trusted"):
            adapter.accept(bundle_token(EVIL, 2, "10.99.0.0/16"), device_id=DEVICE)
        assert routes(adapter) == {"10.20.0.0/16"}


async def test_signing_key_rotation_by_endorsement(tmp_path: Path) -> None:
    new = Ed25519PrivateKey.generate()
    answer = Answer(body=honest())
    with serve(answer) as url:
        adapter = await start(url, tmp_path, [anchor(ROOT)])
        adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)
        answer.body = discovery(
            [new, GOOD], roots=[ROOT], endorsements=[endorsed(new, ROOT), endorsed(GOOD, ROOT)]
        )
        adapter = await start(url, tmp_path, [anchor(ROOT)])
        adapter.accept(bundle_token(new, 2), device_id=DEVICE)
        held = adapter.held()
        assert held is not None
        assert held.version == 2


async def test_expired_or_future_endorsement_does_not_count(tmp_path: Path) -> None:
    now = int(time.time())
    for window in ((now - 7200, now - 3600), (now + 3600, now + 7200)):
        body = discovery(
            [GOOD],
            endorsements=[endorsed(GOOD, ROOT, not_before=window[0], not_after=window[1])],
        )
        with serve(Answer(body=body)) as url:
            adapter = await start(url, tmp_path, [anchor(ROOT)])
            with pytest.raises(UntrustedKeysError, match=r"expired|valid only from"):
                adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)


async def test_root_rotation_signed_by_the_old_root(tmp_path: Path) -> None:
    root2 = Ed25519PrivateKey.generate()
    body = discovery(
        [GOOD],
        roots=[root2],
        endorsements=[endorsed(root2, ROOT, role="root"), endorsed(GOOD, root2)],
    )
    with serve(Answer(body=body)) as url:
        adapter = await start(url, tmp_path, [anchor(ROOT)])
        adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)
    # The same chain without the old root's statement: the new root is nobody.
    body = discovery([GOOD], roots=[root2], endorsements=[endorsed(GOOD, root2)])
    with serve(Answer(body=body)) as url:
        adapter = await start(url, tmp_path / "other", [anchor(ROOT)])
        with pytest.raises(UntrustedKeysError):
            adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)


async def test_a_signing_endorsement_cannot_act_as_a_root(tmp_path: Path) -> None:
    """GOOD is endorsed for signing only; what GOOD "endorses" is not trusted."""
    body = discovery([EVIL], endorsements=[endorsed(GOOD, ROOT), endorsed(EVIL, GOOD, role="root")])
    with serve(Answer(body=body)) as url:
        adapter = await start(url, tmp_path, [anchor(ROOT)])
        with pytest.raises(UntrustedKeysError):
            adapter.accept(bundle_token(EVIL, 1), device_id=DEVICE)


async def test_trust_on_first_use_pins_loudly_and_refuses_another_root(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = Answer(body=honest())
    with serve(answer) as url:
        caplog.set_level(logging.WARNING, logger="core.policy.trust")
        first = await start(url, tmp_path, [])
        first.accept(bundle_token(GOOD, 1), device_id=DEVICE)
        pin = tmp_path / PIN_FILE_NAME
        assert stat.S_IMODE(pin.stat().st_mode) == 0o600
        assert anchor(ROOT) in pin.read_text()
        assert "TRUST ON FIRST USE" in caplog.text
        assert "No policy trust anchors" in (first.trust_notice or "")

        # Another controller (or an attacker) with its own root, fully self-consistent.
        answer.body = discovery([EVIL], roots=[EVIL], endorsements=[endorsed(EVIL, EVIL)])
        second = await start(url, tmp_path, [])
        with pytest.raises(PinnedRootMismatchError, match="pinned on first use"):
            second.accept(bundle_token(EVIL, 2, "10.99.0.0/16"), device_id=DEVICE)
        assert anchor(ROOT) in pin.read_text()

        # The pinned root keeps working after a restart; the notice is shown again.
        answer.body = honest()
        third = await start(url, tmp_path, [])
        third.accept(bundle_token(GOOD, 2), device_id=DEVICE)
        assert third.trust_notice is not None


async def test_first_use_pins_nothing_that_does_not_verify(tmp_path: Path) -> None:
    body = discovery([EVIL], roots=[ROOT], endorsements=[endorsed(GOOD, ROOT)])
    with serve(Answer(body=body)) as url:
        adapter = await start(url, tmp_path, [])
        with pytest.raises(UntrustedKeysError):
            adapter.accept(bundle_token(EVIL, 1), device_id=DEVICE)
    assert not (tmp_path / PIN_FILE_NAME).exists()


async def test_configured_anchors_never_touch_the_pin(tmp_path: Path) -> None:
    (tmp_path / PIN_FILE_NAME).write_text('{"roots":["' + anchor(EVIL) + '"],"pinned_at":1}')
    with serve(Answer(body=honest())) as url:
        adapter = await start(url, tmp_path, [anchor(ROOT)])
        adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)
        assert adapter.trust_notice is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "B",  # non-zero trailing bits: another spelling of a key
        "A" * 42 + "=",
        "+" * 43,
        "A" * 21 + " " + "A" * 21,
        "é" * 43,
    ],
)
def test_anchor_format_is_strict(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_anchor(bad)
    with pytest.raises(SettingValueError):
        check_policy_anchor(bad)


def test_anchor_accepts_the_raw_key() -> None:
    text = anchor(ROOT)
    check_policy_anchor(text)
    assert parse_anchor(text).public_bytes_raw() == ROOT.public_key().public_bytes_raw()


def _managed(tmp: Path, value: object) -> EffectiveSettings:
    """The real Linux managed reader and loader over ``tmp/managed.json``."""
    import json

    from core.settings import load
    from core.settings.managed.linux import LinuxManagedSource

    tmp.chmod(0o755)
    (tmp / "managed.json").write_text(json.dumps({"policy_trust_anchors": value}))
    (tmp / "managed.json").chmod(0o644)
    return load(
        managed_sources=[LinuxManagedSource(tmp, owners=frozenset({os.getuid()}))],
        user_path=tmp / "absent-user-settings.json",
    )


def test_managed_anchors_are_read_and_locked(tmp_path: Path) -> None:
    settings = _managed(tmp_path, [anchor(ROOT)])
    assert settings.managed_rejected is None
    assert settings.policy_trust_anchors == (anchor(ROOT),)
    assert settings.source("policy_trust_anchors") == "managed"


@pytest.mark.parametrize("value", [["A" * 42 + "B"], anchor(ROOT), [anchor(ROOT), 7]])
def test_a_bad_managed_anchor_rejects_the_whole_payload(tmp_path: Path, value: object) -> None:
    settings = _managed(tmp_path, value)
    assert "policy_trust_anchors" in (settings.managed_rejected or "")
    assert settings.policy_trust_anchors == ()


async def test_no_first_use_pin_while_the_managed_configuration_is_rejected(
    tmp_path: Path,
) -> None:
    # A managed device whose anchors were in a rejected payload is not a development
    # setup: the controller it meets must not become its root of trust.
    from dataclasses import replace

    from core.engine.wiring import policy_trust

    managed = tmp_path / "managed"
    managed.mkdir()
    settings = replace(
        _managed(managed, []), managed_rejected="managed.json: always_on must be a bool"
    )
    with serve(Answer(body=honest())) as url:
        disc = ControllerDiscovery(ControlPlaneClient(url), tmp_path / "discovery.json")
        await disc.get()
        adapter = PolicyAdapter(
            disc.keys, tmp_path / "policy-bundle.json", trust=policy_trust(settings, tmp_path)
        )
        with pytest.raises(UntrustedKeysError):
            adapter.accept(bundle_token(GOOD, 1), device_id=DEVICE)
    assert not (tmp_path / PIN_FILE_NAME).exists()
