"""The controller keeps each gateway's filter in step with policy (issue 15 items 3-5).

A recording runner stands in for ``wg``/``nft`` (the real ones run in
``test_gateway_netns.py``); it keeps the last script each interface accepted, so the
tests read the grants the gateway would enforce right after each admin call returns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import httpx
import msgspec
import pytest

from controller.config import ControllerConfig, GatewayConfig
from controller.gateway import CommandResult, command_interface
from controller.service import derive_dns_suffixes
from controller.testing import RunningController, login, run_controller
from core.controlplane import BearerAuth, ControlPlaneClient
from core.wire.policy import BUNDLE_TYP, PolicyBundle, Resource, decode_bundle
from core.wire.signing import verify
from tests.controller.conftest import DeviceKeys, new_device

pytestmark = pytest.mark.integration

GW = GatewayConfig(public_key=new_device().wg_public, endpoint="10.99.0.1:51820", interface="gwa")
GW2 = GatewayConfig(
    public_key=new_device().wg_public,
    endpoint="10.98.0.1:51820",
    interface="gwb",
    address="10.77.0.254/24",
)
WIKI = {"id": "wiki", "name": "Wiki", "cidrs": ["10.20.0.0/24"], "hosts": ["wiki.corp.example"]}
PAYROLL = {"id": "payroll", "name": "Payroll", "cidrs": ["10.30.0.0/24"], "hosts": ["10.31.0.7"]}
ENG_WIKI = {
    "id": "eng-wiki",
    "effect": "allow",
    "resources": ["wiki"],
    "conditions": {
        "kind": "all",
        "of": [
            {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
            {"kind": "fact", "fact": "posture.disk.encrypted", "op": "eq", "value": True},
        ],
    },
}
OPS_PAYROLL = {
    "id": "ops-payroll",
    "effect": "allow",
    "resources": ["payroll"],
    "conditions": {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "ops"},
}


class Gateways:
    """``wg`` peers and the last accepted ``nft`` script per interface."""

    def __init__(self) -> None:
        self.peers: dict[str, dict[str, str]] = {}
        self.scripts: dict[str, str] = {}
        self.nft_calls = 0
        self.failing: set[str] = set()

    def __call__(self, argv: Sequence[str], *, input: str | None = None) -> CommandResult:
        iface = command_interface(argv, input) or ""
        if iface in self.failing:
            return CommandResult(tuple(argv), 1, "", "gateway unreachable")
        if argv[0] == "nft":
            self.nft_calls += 1
            self.scripts[iface] = input or ""
            return CommandResult(tuple(argv), 0, "", "")
        peers = self.peers.setdefault(iface, {})
        if argv[1] == "show":
            out = "".join(f"{k}\t{v}\n" for k, v in peers.items())
            return CommandResult(tuple(argv), 0, out, "")
        if argv[-1] == "remove":
            peers.pop(argv[4], None)
        else:
            peers[argv[4]] = argv[6].replace(",", " ")
        return CommandResult(tuple(argv), 0, "", "")

    def grants(self, iface: str = "gwa") -> dict[str, set[str]]:
        """device address → granted destinations, read back from the script."""
        out: dict[str, set[str]] = {}
        for line in self.scripts[iface].splitlines():
            if line.startswith("  set grants"):
                for src, dst in re.findall(r"([0-9a-f.:]+) \. ([0-9a-f.:/]+)", line):
                    out.setdefault(src, set()).add(dst)
        return out

    def always(self, iface: str = "gwa") -> str:
        return next(x for x in self.scripts[iface].splitlines() if "set always4" in x)


async def _admin(rc: RunningController, method: str, path: str, body: object = None) -> int:
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        resp = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {rc.admin_token}"}
        )
        return resp.status_code


async def _report(c: ControlPlaneClient, keys: DeviceKeys, device_id: str, **kw: bool) -> None:
    nonce = await c.posture_nonce(device_id)
    await c.submit_posture(device_id, keys.report(device_id, nonce.nonce, **kw))


async def _policy(rc: RunningController) -> None:
    for path, body in [
        ("/v1/admin/resources/wiki", WIKI),
        ("/v1/admin/resources/payroll", PAYROLL),
        ("/v1/admin/rules/eng-wiki", ENG_WIKI),
        ("/v1/admin/rules/ops-payroll", OPS_PAYROLL),
    ]:
        assert await _admin(rc, "PUT", path, body) == 200


async def test_grants_follow_rules_groups_posture_and_revoke() -> None:
    gws = Gateways()
    async with run_controller(gateway=GW, gateway_runner=gws, tunnel_dns=("10.77.0.53",)) as rc:
        # At start: the filter is there, nothing granted, the probe and DNS open to all.
        assert gws.grants() == {}
        assert "elements = { 10.77.0.1, 10.77.0.53 }" in gws.always()
        await _policy(rc)
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = await c.enroll(keys.enroll_request())
            addr = dev.address.split("/")[0]
            assert gws.grants() == {}  # nothing before its first posture report
            await _report(c, keys, dev.device_id)
            assert gws.grants() == {addr: {"10.20.0.0/24"}}  # engineering + encrypted
            # An admin-managed group grants at once, and withdrawing it withdraws at once.
            assert (
                await _admin(
                    rc,
                    "PUT",
                    "/v1/admin/users/alice@example.com",
                    {"user": "alice@example.com", "groups": ["ops"]},
                )
                == 200
            )
            assert gws.grants() == {addr: {"10.20.0.0/24", "10.30.0.0/24", "10.31.0.7"}}
            bundle = await c.fetch_bundle(dev.device_id)  # the tunnel routes it at once too
            assert "10.30.0.0/24" in _spec_allowed(rc, bundle.bundle)
            assert (
                await _admin(
                    rc,
                    "PUT",
                    "/v1/admin/users/alice@example.com",
                    {"user": "alice@example.com", "groups": []},
                )
                == 200
            )
            assert gws.grants() == {addr: {"10.20.0.0/24"}}
            # A resource edit narrows it; a rule removal withdraws it.
            narrowed = {**WIKI, "cidrs": ["10.20.0.0/28"]}
            assert await _admin(rc, "PUT", "/v1/admin/resources/wiki", narrowed) == 200
            assert gws.grants() == {addr: {"10.20.0.0/28"}}
            assert await _admin(rc, "PUT", "/v1/admin/resources/wiki", WIKI) == 200
            assert gws.grants() == {addr: {"10.20.0.0/24"}}
            assert await _admin(rc, "DELETE", "/v1/admin/rules/eng-wiki") == 204
            assert gws.grants() == {}
            # Nothing reachable: the filter grants nothing and the peer stays, so access
            # that comes back works at once over the same WireGuard session.
            assert gws.peers["gwa"] == {keys.wg_public: dev.address}
            assert await _admin(rc, "PUT", "/v1/admin/rules/eng-wiki", ENG_WIKI) == 200
            assert gws.grants() == {addr: {"10.20.0.0/24"}}
            assert gws.peers["gwa"] == {keys.wg_public: dev.address}
            # The posture it reports next counts: an unencrypted disk withdraws the wiki.
            await _report(c, keys, dev.device_id, encrypted=False)
            assert gws.grants() == {}
            await _report(c, keys, dev.device_id)
            assert gws.grants() == {addr: {"10.20.0.0/24"}}
            assert await _admin(rc, "POST", f"/v1/admin/devices/{dev.device_id}/revoke") == 200
            assert gws.grants() == {}


def _spec_allowed(rc: RunningController, token: str) -> set[str]:
    bundle = _decode(rc, token)
    assert bundle.tunnel is not None
    return set(bundle.tunnel.peers[0].allowed_ips)


def _decode(rc: RunningController, token: str) -> PolicyBundle:
    keys = {kid: key.public_key() for kid, key in [rc.service.keys.current]}
    return decode_bundle(verify(token, keys, typ=BUNDLE_TYP, max_size=1 << 20).payload)


async def test_hostile_admin_input_is_refused_and_the_filter_stays() -> None:
    gws = Gateways()
    async with run_controller(gateway=GW, gateway_runner=gws) as rc:
        await _policy(rc)
        before, calls = gws.scripts["gwa"], gws.nft_calls
        for bad in (
            {**WIKI, "cidrs": ["10.20.0.0/33"]},
            {**WIKI, "cidrs": ["10.20.0.1/24"]},
            {**WIKI, "cidrs": ["10.0.0.0/8 }; flush ruleset; table ip x {"]},
            {**WIKI, "hosts": ["10.0.0.1 . 0.0.0.0/0"]},
        ):
            assert await _admin(rc, "PUT", "/v1/admin/resources/wiki", bad) == 400
        assert (
            await _admin(
                rc, "PUT", "/v1/admin/rules/x", {**ENG_WIKI, "id": "x", "resources": ["nope"]}
            )
            == 422
        )
        assert (gws.scripts["gwa"], gws.nft_calls) == (before, calls)
        # A bad row that reached the database some other way: logged, filter untouched.
        rc.service.storage.put_resource("evil", {"id": "evil", "name": "E", "cidrs": ["bad"]})
        rc.service.reconcile_gateway()
        assert (gws.scripts["gwa"], gws.nft_calls) == (before, calls)


async def test_a_failing_gateway_is_retried_while_the_others_converge() -> None:
    gws = Gateways()
    gws.failing.add("gwa")
    async with run_controller(
        gateway=GW, gateways=(GW2,), gateway_runner=gws, expiry_interval_s=0.05
    ) as rc:
        assert "gwa" not in gws.scripts
        assert "gwb" in gws.scripts
        await _policy(rc)
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = await c.enroll(keys.enroll_request())
            await _report(c, keys, dev.device_id)
        addr = dev.address.split("/")[0]
        assert gws.grants("gwb") == {addr: {"10.20.0.0/24"}}
        gws.failing.clear()  # the gateway is back: the next tick applies the same grants
        from tests.fakes.wait import async_wait_until

        await async_wait_until(lambda: "gwa" in gws.scripts, what="gwa's filter retried")
        assert gws.grants("gwa") == {addr: {"10.20.0.0/24"}}
        assert gws.peers["gwa"] == {keys.wg_public: dev.address}
        assert "10.77.0.1, 10.77.0.254" in gws.always("gwa")  # both gateways' probes


async def test_reconciled_at_start_idempotent_and_refreshed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = [time.time()]
    gws = Gateways()
    async with run_controller(tmp_path, gateway=GW, gateway_runner=gws) as rc:
        await _policy(rc)
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = await c.enroll(keys.enroll_request())
            await _report(c, keys, dev.device_id)
    addr = dev.address.split("/")[0]
    fresh = Gateways()  # a gateway that lost everything (rebooted) while we were down
    async with run_controller(
        tmp_path, gateway=GW, gateway_runner=fresh, clock=lambda: now[0], expiry_interval_s=60
    ) as rc:
        # Rules evaluated from the stored identity (groups from alice's token) and facts.
        assert fresh.grants() == {addr: {"10.20.0.0/24"}}
        assert fresh.peers["gwa"] == {keys.wg_public: dev.address}
        calls = fresh.nft_calls
        rc.service.reconcile_gateway()
        assert fresh.nft_calls == calls  # nothing changed: nothing run
        now[0] += 31  # but an unchanged filter is re-applied now and then (a lost table)
        rc.service.reconcile_gateway()
        assert fresh.nft_calls == calls + 1


async def test_gateway_keepalive_on_every_peer_and_configurable() -> None:
    gws = Gateways()
    calls: list[tuple[str, ...]] = []

    def runner(argv: Sequence[str], *, input: str | None = None) -> CommandResult:
        calls.append(tuple(argv))
        return gws(argv, input=input)

    slow = msgspec.structs.replace(GW, keepalive_s=25, peer_keepalive_s=11)
    async with run_controller(gateway=slow, gateway_runner=runner) as rc:
        tokens = await login(rc, "alice", "alice-password")
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            await c.enroll(new_device().enroll_request())
    sets = [a for a in calls if a[:2] == ("wg", "set")]
    assert sets
    assert all(a[-2:] == ("persistent-keepalive", "11") for a in sets)
    assert GatewayConfig(public_key="k", endpoint="e:1").peer_keepalive_s == 5


def test_a_short_client_keepalive_needs_the_gateway_to_keep_alive_as_often() -> None:
    # Clients read a keepalive of at most 10 s as the gateway's promise (2k + 1 s of
    # silence = a dead gateway): a gateway that sends nothing would be failed over.
    default = GatewayConfig(public_key="k", endpoint="e:1")
    assert (default.keepalive_s, default.peer_keepalive_s) == (5, 5)
    for bad in ({"peer_keepalive_s": 0}, {"peer_keepalive_s": 6}):
        with pytest.raises((ValueError, msgspec.ValidationError), match="peer_keepalive_s"):
            msgspec.convert({"public_key": "k", "endpoint": "e:1", **bad}, GatewayConfig)
    # a long client keepalive promises nothing: the gateway may keep alive as it likes
    msgspec.convert(
        {"public_key": "k", "endpoint": "e:1", "keepalive_s": 25, "peer_keepalive_s": 0},
        GatewayConfig,
    )


# --- split DNS suffixes ---------------------------------------------------------------


def _config(**fields: object) -> ControllerConfig:
    base = {"admin_token_sha256": "0" * 64, "keys_dir": "/nonexistent"}
    return msgspec.convert({**base, **fields}, ControllerConfig)


def _res(*hosts: str) -> Resource:
    return Resource(id="r", name="R", hosts=hosts)


def test_suffixes_derived_from_resource_host_names() -> None:
    assert derive_dns_suffixes(
        [
            _res("wiki.corp.example", "*.eu.corp.example", "10.0.0.1"),
            _res("payroll.internal", "*", "git.dev.example.org", "fd00::1"),
            _res("*.lab.example"),
        ]
    ) == ("corp.example", "dev.example.org", "lab.example", "payroll.internal")
    assert derive_dns_suffixes([Resource(id="n", name="N", cidrs=("10.0.0.0/8",))]) == ()


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"tunnel_dns": ["10.0.0.53"], "tunnel_dns_suffixes": ["com"]}, "top-level"),
        ({"tunnel_dns": ["10.0.0.53"], "tunnel_dns_suffixes": ["Corp.Example"]}, "lower-case"),
        ({"tunnel_dns": ["10.0.0.53"], "tunnel_dns_suffixes": ["a.b", "a.b"]}, "twice"),
        ({"tunnel_dns": ["10.0.0.53"], "tunnel_dns_suffixes": ["x.y\n"]}, "lower-case"),
        ({"tunnel_dns_suffixes": ["corp.example"]}, "needs tunnel_dns"),
        ({"tunnel_dns": ["dns.corp.example"]}, "not an IP address"),
    ],
)
def test_suffix_settings_are_validated(fields: dict[str, object], match: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=match):
        _config(**fields)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"tunnel_dns": ["10.77.0.53"]}, ("corp.example",)),
        (
            {"tunnel_dns": ["10.77.0.53"], "tunnel_dns_suffixes": ["corp.example", "lab.example"]},
            ("corp.example", "lab.example"),
        ),
        ({"tunnel_dns": ["10.77.0.53"], "tunnel_dns_suffixes": []}, ()),
        ({}, ()),  # no tunnel DNS: no split DNS
    ],
)
async def test_every_tunnel_spec_carries_dns_and_suffixes(
    overrides: dict[str, object], expected: tuple[str, ...]
) -> None:
    async with run_controller(
        gateway=GW, gateways=(GW2,), gateway_runner=Gateways(), **overrides
    ) as rc:
        await _policy(rc)
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = await c.enroll(keys.enroll_request())
            bundle = _decode(rc, (await c.fetch_bundle(dev.device_id)).bundle)
    specs = [bundle.tunnel, *bundle.gateways]
    assert len(specs) == 2
    for spec in specs:
        assert spec is not None
        assert spec.suffixes() == tuple(expected)
        assert spec.dns == tuple(overrides.get("tunnel_dns", ()))  # type: ignore[arg-type]


async def test_the_gateway_is_updated_before_clients_hear_of_the_change() -> None:
    gws = Gateways()
    async with run_controller(gateway=GW, gateway_runner=gws) as rc:
        await _policy(rc)
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = await c.enroll(keys.enroll_request())
            await _report(c, keys, dev.device_id)
        addr = dev.address.split("/")[0]
        seen: list[dict[str, set[str]]] = []
        async with rc.service.events.subscribe(dev.device_id) as queue:
            real_publish = rc.service.events.publish

            def publish(*args: object, **kw: object) -> None:
                seen.append(gws.grants())  # what the gateway enforces as the event leaves
                real_publish(*args, **kw)  # type: ignore[arg-type]

            rc.service.events.publish = publish  # type: ignore[method-assign]
            assert await _admin(rc, "DELETE", "/v1/admin/rules/eng-wiki") == 204
            event = await queue.get()
        assert event.type == "policy_changed"
        assert seen == [{}]
        assert addr not in gws.grants()


async def test_new_token_groups_reach_the_gateway_with_the_next_bundle() -> None:
    from controller.tokens import Identity

    gws = Gateways()
    async with run_controller(gateway=GW, gateway_runner=gws) as rc:
        await _policy(rc)
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = await c.enroll(keys.enroll_request())
            await _report(c, keys, dev.device_id)
        addr = dev.address.split("/")[0]
        assert gws.grants() == {addr: {"10.20.0.0/24"}}
        # The IdP now puts alice in "ops" too: her next authenticated call says so.
        seen = Identity(
            issuer=rc.issuer,
            subject="alice",
            user_id="alice@example.com",
            email="alice@example.com",
            groups=("engineering", "ops"),
            jti=None,
        )
        rc.service.bundle(seen, dev.device_id)
        assert gws.grants() == {addr: {"10.20.0.0/24", "10.30.0.0/24", "10.31.0.7"}}
        rc.service.reconcile_gateway()  # and it stays: the identity is stored
        assert gws.grants() == {addr: {"10.20.0.0/24", "10.30.0.0/24", "10.31.0.7"}}
