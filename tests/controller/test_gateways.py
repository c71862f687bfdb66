"""Several gateways: config, the fan-out group, and the bundle announcing each one."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from controller.config import ControllerConfig, GatewayConfig
from controller.gateway import CommandResult, Gateway, GatewayError, GatewayGroup
from controller.testing import login, run_controller
from core.controlplane import BearerAuth, ControlPlaneClient
from core.wire.policy import BUNDLE_TYP, decode_bundle
from core.wire.signing import verify
from tests.controller.conftest import new_device

pytestmark = pytest.mark.integration

GW1 = GatewayConfig(
    public_key=new_device().wg_public, endpoint="10.99.0.1:51820", interface="rtcga1"
)
GW2 = GatewayConfig(
    public_key=new_device().wg_public,
    endpoint="10.98.0.1:51820",
    interface="rtcga2",
    address="10.77.0.254/24",
)


class Recorder:
    """A command runner that keeps per-interface peers like ``wg`` would."""

    def __init__(self, failing: str | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.peers: dict[str, dict[str, str]] = {}
        self.failing = failing

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(tuple(argv))
        iface = argv[2]
        if iface == self.failing:
            return CommandResult(tuple(argv), 1, "", "Unable to access interface")
        peers = self.peers.setdefault(iface, {})
        if argv[1] == "show":
            out = "".join(f"{k}\t{v}\n" for k, v in peers.items())
            return CommandResult(tuple(argv), 0, out, "")
        if argv[-1] == "remove":
            peers.pop(argv[4], None)
        else:
            peers[argv[4]] = argv[6].replace(",", " ")
        return CommandResult(tuple(argv), 0, "", "")


def _config(**fields: object) -> ControllerConfig:
    base = {"admin_token_sha256": "0" * 64, "keys_dir": "/nonexistent"}
    return msgspec.convert({**base, **fields}, ControllerConfig)


def test_config_lists_gateway_then_gateways_and_refuses_a_shared_interface() -> None:
    cfg = _config(gateway=msgspec.to_builtins(GW1), gateways=[msgspec.to_builtins(GW2)])
    assert cfg.all_gateways == (GW1, GW2)
    assert _config(gateways=[msgspec.to_builtins(GW2)]).all_gateways == (GW2,)
    assert _config().all_gateways == ()
    with pytest.raises(msgspec.ValidationError, match="same interface"):
        _config(gateway=msgspec.to_builtins(GW1), gateways=[msgspec.to_builtins(GW1)])


def test_group_applies_to_every_member_with_exact_argv() -> None:
    rec = Recorder()
    group = GatewayGroup([Gateway("rtcga1", rec), Gateway("rtcga2", rec)])
    group.set_peer("K=", ["10.77.0.2/32"])
    assert rec.calls == [
        ("wg", "set", "rtcga1", "peer", "K=", "allowed-ips", "10.77.0.2/32"),
        ("wg", "set", "rtcga2", "peer", "K=", "allowed-ips", "10.77.0.2/32"),
    ]
    assert group.peers() == {"K=": ["10.77.0.2/32"]}
    Gateway("rtcga2", rec).remove_peer("K=")  # the members disagree now
    assert group.peers() == {"K=": []}  # so reconcile sets it everywhere again
    group.remove_peer("K=")
    assert group.peers() == {}
    with pytest.raises(ValueError, match="at least one"):
        GatewayGroup([])


def test_one_failing_member_does_not_stop_the_others() -> None:
    rec = Recorder(failing="rtcga1")
    group = GatewayGroup([Gateway("rtcga1", rec), Gateway("rtcga2", rec)])
    with pytest.raises(GatewayError, match="rtcga1"):
        group.set_peer("K=", ["10.77.0.2/32"])
    assert rec.peers["rtcga2"] == {"K=": "10.77.0.2/32"}


async def test_bundle_announces_every_gateway_and_each_gets_the_peer() -> None:
    rec = Recorder()
    async with run_controller(gateway=GW1, gateway_runner=rec, gateways=(GW2,)) as rc:
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            enrolled = await c.enroll(keys.enroll_request())
            assert rec.peers["rtcga1"] == {keys.wg_public: enrolled.address}
            assert rec.peers["rtcga2"] == {keys.wg_public: enrolled.address}
            answer = await c.fetch_bundle(enrolled.device_id)
        disc_keys = {kid: key.public_key() for kid, key in [rc.service.keys.current]}
        bundle = decode_bundle(
            verify(answer.bundle, disc_keys, typ=BUNDLE_TYP, max_size=1 << 20).payload
        )
        assert bundle.tunnel is not None
        assert [p.endpoint for p in bundle.tunnel.peers] == [GW1.endpoint]
        assert [[p.endpoint for p in g.peers] for g in bundle.gateways] == [[GW2.endpoint]]
        (peer2,) = bundle.gateways[0].peers
        assert peer2.public_key == GW2.public_key
        assert "10.77.0.254/32" in peer2.allowed_ips  # gateway 2's own tunnel address
        assert bundle.gateways[0].addresses == bundle.tunnel.addresses
