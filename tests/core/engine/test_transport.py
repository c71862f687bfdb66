"""The tunnel's transport in the engine (issue 21): UDP or a relay, told and shown.

Pure parts as tables (when a relay certificate is due, the helper's status as shown,
which change deserves a notice) and the engine through the in-memory ports: the relay
certificate rides along with every up/update, a new one per bundle fetch causes no
re-apply storm, a due one is handed over in place; a relay fallback is not mistaken for
a dead gateway, while ``no_path`` fails over as before; each change is one notice.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from core.engine.adapters import TunnelAdapter, tunnel_view
from core.engine.inbox import ControlPlaneEvent
from core.engine.relaycert import RENEW_AGE_S, cert_due, cert_window
from core.engine.state import EventKind, TunnelView
from core.engine.state import SessionState as S
from core.engine.transport import transport_notice
from wg_backends.status import PeerStatus, RelayHealth, TransportStatus, TunnelStatus

from .test_engine import Rig, make, until

pytestmark = pytest.mark.unit

DAY = 24 * 3600.0
T0 = 1_900_000_000.0  # "now" for the certificate tables


def _cert(not_before: float, days: float = 7.0) -> str:
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev-1")])
    start = dt.datetime.fromtimestamp(not_before, dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .sign(key, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


FRESH = _cert(T0 - 60)
HOUR_OLD = _cert(T0 - 3600)
DAY_OLD = _cert(T0 - DAY - 1)
ENDING = _cert(T0 - 3600, days=1.5)  # young, but expires within two days
EXPIRED = _cert(T0 - 8 * DAY)
FUTURE = _cert(T0 + 3600)


@pytest.mark.parametrize(
    ("given", "latest", "due"),
    [
        (None, None, False),  # nothing to hand over
        (None, FRESH, True),  # the helper has none: at once
        (FRESH, FRESH, False),  # the same one
        (HOUR_OLD, FRESH, False),  # a newer one alone: no update (rides along later)
        (DAY_OLD, FRESH, True),  # the held one is over a day old
        (ENDING, FRESH, True),  # the held one expires within two days
        (EXPIRED, FRESH, True),
        ("garbage", FRESH, True),  # an unreadable held one is replaced
        (HOUR_OLD, "garbage", False),  # an unreadable new one is never handed over
        (DAY_OLD, EXPIRED, False),  # nor an expired one
        (DAY_OLD, FUTURE, False),  # nor one not valid yet (beyond the clock slack)
        (DAY_OLD, None, False),
    ],
)
def test_cert_due(given: str | None, latest: str | None, due: bool) -> None:
    assert cert_due(given, latest, now=T0) is due


def test_cert_window_reads_the_validity_and_refuses_garbage() -> None:
    window = cert_window(FRESH)
    assert window is not None
    assert window[1] - window[0] == 7 * DAY
    assert cert_window("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----") is None
    assert cert_window("\u00e9") is None
    assert RENEW_AGE_S == DAY


# ----------------------------------------------------------------- the status as shown
def _status(endpoint: str, transport: TransportStatus | None) -> TunnelStatus:
    peer = PeerStatus("K" * 43 + "=", endpoint, ("10.0.0.0/8",), 1000, 3.0, 10, 20, 5)
    return TunnelStatus("rt0", True, "wg-quick", peers=(peer,), transport=transport)


@pytest.mark.parametrize(
    ("endpoint", "transport", "gateway", "kind", "relay"),
    [
        ("198.51.100.1:51820", None, "198.51.100.1:51820", "", None),  # no relays
        (
            "198.51.100.1:51820",
            TransportStatus("udp", "direct", "udp_ok", 5.0),
            "198.51.100.1:51820",
            "udp",
            None,
        ),
        (  # on the relay: WireGuard's endpoint is the local bridge, never shown
            "127.0.0.1:40001",
            TransportStatus("relay", "relay", "udp_blocked", 5.0, relay="relay1"),
            "gw.example:51820",
            "relay",
            "relay1",
        ),
        (  # still pointing at the bridge while moving back: the gateway is named
            "127.0.0.1:40001",
            TransportStatus("udp", "trying", "udp_back", 5.0),
            "gw.example:51820",
            "udp",
            None,
        ),
        (  # a hostile relay name is data, shown as text elsewhere; a udp kind has none
            "198.51.100.1:51820",
            TransportStatus("udp", "direct", "udp_ok", 5.0, relay="x\u202e"),
            "198.51.100.1:51820",
            "udp",
            None,
        ),
    ],
)
def test_tunnel_view_names_the_gateway_and_the_transport(
    endpoint: str, transport: TransportStatus | None, gateway: str, kind: str, relay: str | None
) -> None:
    view = tunnel_view(_status(endpoint, transport), "gw.example:51820")
    assert view.gateway == gateway
    assert view.transport == kind
    assert view.relay == relay
    if transport is not None:
        assert view.transport_reason == transport.reason
        assert view.transport_state == transport.state
        assert view.transport_since == transport.since


def test_tunnel_view_keeps_the_counters_and_ignores_relay_health() -> None:
    transport = TransportStatus(
        "relay", "relay", "udp_blocked", 5.0, relay="r1", relays=(RelayHealth("r1", True, 3.0),)
    )
    view = tunnel_view(_status("127.0.0.1:1", transport), "gw:1")
    assert (view.rx_bytes, view.tx_bytes, view.handshake_age_s) == (10, 20, 3.0)


class _Helper:
    """The helper client's ``status`` answering the given counters in turn."""

    interface = "rt0"

    def __init__(self, counters: list[tuple[int, int]]) -> None:
        self.counters = counters

    async def status(self) -> TunnelStatus:
        rx, tx = self.counters.pop(0)
        peer = PeerStatus("K" * 43 + "=", "127.0.0.1:1", ("10.0.0.0/8",), 1000, 3.0, rx, tx, 5)
        return TunnelStatus("rt0", True, "wg-quick", peers=(peer,))


async def test_traffic_keeps_counting_when_the_helper_recreates_the_peer() -> None:
    # Moving to or from a relay re-creates the WireGuard peer, whose counters restart at 0.
    helper = _Helper([(1500, 1600), (92, 180), (500, 700), (500, 700)])
    adapter = TunnelAdapter(helper)  # type: ignore[arg-type]
    seen = [await adapter.status() for _ in range(4)]
    assert [(v.rx_bytes, v.tx_bytes) for v in seen if v is not None] == [
        (1500, 1600),
        (1592, 1780),
        (2000, 2300),
        (2000, 2300),  # nothing new: the receive counter did not move
    ]


# ------------------------------------------------------------------------ notices
def _view(
    kind: str = "", state: str = "", reason: str = "", relay: str | None = None
) -> TunnelView:
    return TunnelView(
        "rt0",
        "gw:1",
        1.0,
        0,
        0,
        transport=kind,
        relay=relay,
        transport_state=state,
        transport_reason=reason,
        transport_since=1.0,
    )


UDP = _view("udp", "direct", "udp_ok")
BLOCKED = _view("relay", "relay", "udp_blocked", "eu-1")
SILENT = _view("relay", "relay", "udp_silent", "eu-1")
OTHER = _view("relay", "relay", "relay_failed", "eu-2")
BACK = _view("udp", "direct", "udp_back")
NO_PATH = _view("udp", "no_path", "relays_down")


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        (None, None, None),
        (None, _view(), None),  # no relays: nothing to say
        (None, UDP, None),  # the first sight of direct UDP is the normal case
        (UDP, UDP, None),
        (None, BLOCKED, "Connected through relay eu-1: this network blocks UDP"),
        (UDP, BLOCKED, "Connected through relay eu-1: this network blocks UDP"),
        (UDP, SILENT, "Connected through relay eu-1: UDP stopped getting through on this network"),
        (BLOCKED, BLOCKED, None),  # once per change
        (BLOCKED, OTHER, "Relay eu-1 stopped answering: now through relay eu-2"),
        (BLOCKED, BACK, "Back on direct UDP"),
        (UDP, NO_PATH, "This network lets neither WireGuard's UDP nor any relay through"),
        (NO_PATH, NO_PATH, None),
        (NO_PATH, UDP, "Back on direct UDP"),
        (BLOCKED, None, None),  # the tunnel went: the session's own events say so
    ],
)
def test_transport_notice(old: TunnelView | None, new: TunnelView | None, text: str | None) -> None:
    change = transport_notice(old, new)
    assert (change[0] if change else None) == text
    if change is not None and new is not None:
        assert change[1] == new.transport_reason


# ------------------------------------------------------------------- the engine
def _notices(rig: Rig) -> list[str]:
    return [e.message for e in rig.events if e.kind is EventKind.NOTICE]


async def _connected(age: float = 60.0, **config: object) -> Rig:
    rig = make(**config)
    rig.control.cert = cert = _cert(rig.clock.now - age)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert rig.tunnel.certs == [cert]
    return rig


async def test_the_relay_certificate_goes_with_the_up_and_a_new_one_alone_updates_nothing() -> None:
    rig = await _connected()
    assert rig.device.relay_key_registrations == 1  # before the bundle was fetched
    # The controller issues a new certificate with every bundle answer: fetching one
    # (a policy change with the same tunnel) must not touch the tunnel for it.
    for _ in range(3):
        rig.control.cert = _cert(rig.clock.now - 1)
        await rig.engine._dispatch(ControlPlaneEvent(kind="policy_changed"))
        await rig.tick()
    assert rig.tunnel.updates == []
    assert len(rig.tunnel.certs) == 1
    assert rig.device.relay_key_registrations == 4
    await rig.engine.stop()


async def test_a_changed_tunnel_takes_the_latest_certificate_with_its_update() -> None:
    rig = await _connected()
    rig.control.cert = newer = _cert(rig.clock.now - 1)
    rig.policy.gateways = ("gw-new.corp:51820",)
    rig.tunnel.up_specs[-1].__class__.interface = "rt0"  # same interface: in place
    await rig.engine._dispatch(ControlPlaneEvent(kind="policy_changed"))
    await until(lambda: rig.tunnel.endpoint == "gw-new.corp:51820")
    assert rig.tunnel.certs[-1] == newer
    await rig.engine.stop()


async def test_a_held_certificate_over_a_day_old_is_replaced_in_place() -> None:
    rig = await _connected(age=DAY - 10)
    rig.clock.now += 20  # the held one is now over a day old
    rig.control.cert = newer = _cert(rig.clock.now - 1)
    await rig.tick()
    assert rig.tunnel.certs[-1] == newer
    assert len(rig.tunnel.updates) == 1  # an update, not a new tunnel
    assert len(rig.tunnel.up_specs) == 2
    assert rig.tunnel.up_specs[0] == rig.tunnel.up_specs[1]
    await rig.tick()
    assert len(rig.tunnel.updates) == 1  # once
    assert rig.engine.snapshot.state is S.CONNECTED
    await rig.engine.stop()


async def test_a_helper_without_a_usable_certificate_gets_the_latest_at_once() -> None:
    rig = await _connected()
    rig.control.cert = newer = _cert(rig.clock.now - 1)  # e.g. issued to a new relay key
    rig.tunnel.transport = ("udp", "direct", "no_certificate", rig.clock.now, None)
    await rig.tick()
    assert rig.tunnel.certs[-1] == newer
    await rig.tick()
    assert len(rig.tunnel.updates) == 1
    await rig.engine.stop()


async def test_relay_fallback_is_shown_told_once_and_not_a_dead_gateway() -> None:
    rig = make(first_handshake_grace_s=10.0, handshake_stale_s=60.0)
    rig.policy.gateways = ("gw1.corp:51820", "gw2.corp:51820")
    rig.tunnel.transport = ("udp", "direct", "udp_ok", rig.clock.now, None)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    tunnel = rig.engine.snapshot.tunnel
    assert tunnel is not None
    assert (tunnel.transport, tunnel.relay) == ("udp", None)
    assert not [n for n in _notices(rig) if "relay" in n or "UDP" in n]

    # UDP goes: the helper tries relays and lands on one 8 s later; no handshake yet.
    rig.tunnel.kill("gw1.corp:51820")
    rig.clock.now += 8
    rig.tunnel.transport = ("relay", "relay", "udp_blocked", rig.clock.now, "eu-1")
    rig.clock.now += 7  # 15 s after the apply: past the grace counted from the apply
    await rig.tick()
    assert [s.endpoint for s in rig.tunnel.up_specs] == ["gw1.corp:51820"]  # no failover
    tunnel = rig.engine.snapshot.tunnel
    assert tunnel is not None
    assert (tunnel.transport, tunnel.relay, tunnel.transport_reason) == (
        "relay",
        "eu-1",
        "udp_blocked",
    )
    assert tunnel.gateway == "gw1.corp:51820"
    # the handshake comes through the relay
    rig.tunnel.dead.discard("gw1.corp:51820")
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.tick()
    told = [n for n in _notices(rig) if "relay" in n]
    assert told == ["Connected through relay eu-1: this network blocks UDP"]
    notice = next(e for e in rig.events if e.message == told[0])
    assert notice.details["transport"] == "relay"
    assert notice.details["relay"] == "eu-1"
    assert notice.details["reason"] == "udp_blocked"

    # UDP is back: one notice, the snapshot says so
    rig.tunnel.transport = ("udp", "direct", "udp_back", rig.clock.now, None)
    await rig.tick()
    await rig.tick()
    assert _notices(rig).count("Back on direct UDP") == 1
    tunnel = rig.engine.snapshot.tunnel
    assert tunnel is not None
    assert (tunnel.transport, tunnel.relay) == ("udp", None)
    await rig.engine.stop()


async def test_no_path_fails_over_to_the_next_gateway_as_before() -> None:
    rig = make(first_handshake_grace_s=10.0, handshake_stale_s=60.0)
    rig.policy.gateways = ("gw1.corp:51820", "gw2.corp:51820")
    rig.tunnel.dead.add("gw1.corp:51820")
    rig.tunnel.transport = ("udp", "trying", "udp_blocked", rig.clock.now, None)
    await rig.engine.connect()
    rig.clock.now += 8
    rig.tunnel.transport = ("udp", "no_path", "relays_down", rig.clock.now, None)
    rig.clock.now += 3  # 11 s after the apply, 3 s after no_path
    await until(lambda: [s.endpoint for s in rig.tunnel.up_specs][-1:] == ["gw2.corp:51820"])
    assert "This network lets neither WireGuard's UDP nor any relay through" in _notices(rig)
    await rig.engine.stop()
