"""The tunnel in use: which of the bundle's gateways, since when, and what its handshake says.

``Gateways`` owns the tunnel side of the session. It lists the bundle's gateways
(``tunnel`` then the failover ``gateways``), applies one with this device's WireGuard key,
re-applies the gateway in use when a new bundle changed it, hands the helper the device's
relay certificate with every up and update (and updates the tunnel for a certificate
only when the held one is due: ``core.engine.relaycert``), and turns the tunnel's status
into a ``core.engine.health.Health`` and, via ``core.engine.health.plan``, into the next
``Step`` (stay, re-probe, switch). It changes no session state: ``core.engine.live``
carries steps out and the engine turns results into facts.

Imports: the ports, ``core.engine.health``, ``core.engine.config`` and
``core.engine.errors``; never the engine. Threading: the engine's loop only. Errors: the
tunnel port's errors propagate from ``apply``/``bring_up``/``sync``; ``down`` and
``await_handshake`` never raise; ``specs`` raises ``NoGatewayError`` without a gateway.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from core.engine.config import EngineConfig
from core.engine.errors import NoGatewayError
from core.engine.health import (
    Action,
    Health,
    Step,
    assess,
    gateway_label,
    grace_start,
    plan,
    silent_after,
)
from core.engine.ports import (
    DevicePort,
    PolicyPort,
    ProxyPort,
    SignedTunnel,
    TunnelPath,
    TunnelPort,
)
from core.engine.relaycert import cert_due
from core.engine.state import TunnelView
from core.i18n import translate
from wg_backends.errors import HelperRefused
from wg_backends.helper.bundles import profile_for
from wg_backends.spec import TunnelSpec

__all__ = ["PROBE_AFTER_S", "PROBE_WAIT_S", "Gateways"]

_log = logging.getLogger(__name__)

#: Seconds without a received byte before a tunnel without a keepalive promise is probed.
PROBE_AFTER_S = 7.0
#: Seconds a probe may go unanswered before the gateway counts as silent.
PROBE_WAIT_S = 4.0
#: Extra silence allowed on UDP when the spec has relays: the helper notices the same
#: silence (same keepalive rule, checked every second) and moves to a relay; the engine
#: must not fail over to another gateway before it has had the chance.
RELAY_SLACK_S = 5.0


def _probe_query(name: str) -> bytes:
    """A DNS query for ``name``'s SOA, in wire format (any answer, even NXDOMAIN, is
    bytes back through the tunnel)."""
    import dns.message
    import dns.rdatatype

    return bytes(dns.message.make_query(name, dns.rdatatype.SOA).to_wire())


class Gateways:
    """The gateway in use (an index into ``specs()``), the ones that failed in this
    round, when the tunnel was last applied and with which spec."""

    def __init__(
        self,
        *,
        tunnel: TunnelPort,
        policy: PolicyPort,
        device: DevicePort,
        proxy: ProxyPort,
        config: Callable[[], EngineConfig],
        clock: Callable[[], float],
        relay_cert: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._tunnel = tunnel
        # The latest relay certificate from the controller, and the one the helper got.
        self._relay_cert = relay_cert
        self._cert_given: str | None = None
        self._policy = policy
        self._device = device
        self._proxy = proxy
        self._config = config
        self._clock = clock
        self._index = 0
        self._failed: frozenset[int] = frozenset()
        self._up_at: float | None = None
        self._applied: TunnelSpec | None = None
        self._path: TunnelPath | None = None
        # The receive counter's last value and when it last moved (silence detection).
        self._rx: int | None = None
        self._rx_moved_at = 0.0
        # When the last probe went through the tunnel (None: none outstanding).
        self._probe_at: float | None = None

    def specs(self) -> list[TunnelSpec]:
        """The bundle's tunnel specs in order: ``tunnel`` then the failover ``gateways``."""
        listed = [s for s in self._policy.tunnel_specs() if s is not None]
        if listed:
            return listed
        spec = self._policy.tunnel_spec()
        if spec is None:
            raise NoGatewayError(
                translate(
                    "core.engine.gateways",
                    "The policy for this device names no gateway to connect to.",
                )
            )
        return [spec]

    def current(self) -> TunnelSpec:
        """The spec of the gateway in use (the first one again if the bundle shrank)."""
        specs = self.specs()
        if self._index >= len(specs):
            self.reset()
        return specs[self._index]

    def reset(self) -> None:
        """Start over with the preferred (first) gateway and a new round."""
        self._index, self._failed = 0, frozenset()

    @property
    def applied(self) -> bool:
        """Whether this engine brought a tunnel up that it has not taken down."""
        return self._up_at is not None

    @property
    def path(self) -> TunnelPath | None:
        """The decider's way into the tunnel (None: no tunnel, or the helper cannot fence)."""
        return self._path

    async def apply(self, spec: TunnelSpec) -> None:
        """Bring the tunnel up with ``spec`` and this device's key, then have the helper
        fence it and redirect to the decider (port errors raise)."""
        if self._path is not None:
            self._path.flush()  # the interface is replaced: its bound sockets are stale
        cert = self._relay_cert()
        await self._tunnel.up(
            spec.with_private_key(self._device.wg_private_key()), self._signed(), relay_cert=cert
        )
        self._cert_given = cert
        self._applied = spec
        self._up_at = self._clock()
        self._rx, self._rx_moved_at = None, self._up_at
        self._probe_at = None
        await self._enforce(spec)

    def _signed(self) -> SignedTunnel | None:
        """The gateway in use as the signed bundle names it (for a verifying helper)."""
        held = self._policy.signed()
        if held is None:
            return None
        token, endorsements = held
        enrollment = self._device.enrollment()
        return SignedTunnel(
            token=token,
            endorsements=endorsements,
            device_id=enrollment.device_id if enrollment is not None else None,
            profile=profile_for(self._index, has_tunnel=self._policy.tunnel_spec() is not None),
        )

    async def reenforce(self) -> None:
        """Fence the applied tunnel again (the transparent setting changed)."""
        if self._applied is not None:
            await self._enforce(self._applied)

    async def _enforce(self, spec: TunnelSpec) -> None:
        config = self._config()
        port = config.transparent_port if config.transparent else None
        self._path = await self._tunnel.enforce(port)
        self._proxy.set_path(self._path, spec)

    async def bring_up(self) -> None:
        """Apply the gateway in use (its first handshake is awaited by health ticks)."""
        await self.apply(self.current())

    async def down(self, *, break_glass_reason: str | None = None) -> bool:
        """Take the tunnel down; whether it went. A failure is logged, never raised.

        Under managed always-on the helper keeps the tunnel unless the employee's
        ``break_glass_reason`` comes along: then access is withdrawn by the engine's own
        means (no policy, proxy stopped) while the tunnel stays.
        """
        try:
            await self._tunnel.down(break_glass_reason=break_glass_reason)
        except HelperRefused as exc:
            if exc.helper_code != "always_on":
                _log.warning("tunnel down refused by the helper: %s", exc)
                return False
            _log.info("the helper keeps the tunnel up under managed always-on")
            return False
        except Exception:
            _log.exception("tunnel down failed")
            return False
        finally:
            self._up_at = None
            self._applied = None
            self._cert_given = None
            self._path = None
            self._proxy.set_path(None, None)
        return True

    async def sync(self) -> bool:
        """Re-apply the gateway in use when a new bundle changed its spec (routes, peers).

        Returns whether it re-applied. The controller narrows what the gateway accepts as
        posture changes; re-applying also makes WireGuard handshake afresh at once instead
        of after its ~15 s rekey timeout, so restored access is restored in about a
        second. The caller makes sure the tunnel is up and a bundle is held.
        """
        spec = self.current()
        if spec == self._applied:
            return False
        applied = self._applied
        if applied is not None and applied.interface == spec.interface:
            # In place: peers and routes change, the handshake (and every connection
            # through the tunnel) survives, and the state stays "connected".
            _log.info("policy changed the tunnel; updating it in place")
            cert = self._relay_cert()
            try:
                await self._tunnel.update(
                    spec.with_private_key(self._device.wg_private_key()),
                    self._signed(),
                    relay_cert=cert,
                )
            except HelperRefused as exc:
                # An older helper, or a change it cannot make in place (split ↔ full
                # tunnel): replace the tunnel instead.
                _log.warning("in-place update refused (%s); re-applying the tunnel", exc)
                await self.apply(spec)
                return True
            self._applied = spec
            self._cert_given = cert
            await self._enforce(spec)  # the fenced ranges follow the new routes
            return True
        # Another interface: the helper replaces the tunnel (no down first: under
        # always-on it would refuse a down nobody asked for).
        _log.info("policy changed the tunnel's interface; re-applying it")
        await self.apply(spec)
        return True

    async def renew_cert(self, view: TunnelView | None) -> bool:
        """Hand the helper the latest relay certificate when the one it holds is due
        (``core.engine.relaycert.cert_due``), or at once when the helper says it has no
        usable one (``no_certificate``): an in-place update of the applied spec, so the
        handshake and every connection survive. Whether it updated. Never raises (a
        failure is logged; the next tick tries again)."""
        applied = self._applied
        if applied is None or view is None:
            return False
        latest = self._relay_cert()
        refused = view.transport_reason == "no_certificate" and latest is not None
        if not (refused and latest != self._cert_given) and not cert_due(
            self._cert_given, latest, now=self._clock()
        ):
            return False
        try:
            await self._tunnel.update(
                applied.with_private_key(self._device.wg_private_key()),
                self._signed(),
                relay_cert=latest,
            )
        except Exception as exc:
            _log.warning("could not hand the helper the new relay certificate: %s", exc)
            return False
        _log.info("handed the helper a new relay certificate")
        self._cert_given = latest
        return True

    def health(self, view: TunnelView | None) -> Health | None:
        """What ``view``'s handshake says about the gateway in use (None: no tunnel)."""
        if view is None or self._up_at is None:
            return None
        now = self._clock()
        if view.rx_bytes != self._rx:
            self._rx, self._rx_moved_at = view.rx_bytes, now
        config = self._config()
        applied = self._applied
        silent_s = None if applied is None else silent_after(applied)
        # A tunnel with relays: the helper may have moved it (to a relay, to another
        # relay, back to UDP); a new path needs its own handshake and its own silence.
        start = grace_start(self._up_at, view.transport_state, view.transport_since)
        if silent_s is not None and view.transport_state == "direct":
            silent_s += RELAY_SLACK_S
        quiet = now - max(self._rx_moved_at, start)
        health = assess(
            view.handshake_age_s,
            now - start,
            grace_s=config.first_handshake_grace_s,
            stale_s=config.handshake_stale_s,
            rx_quiet_s=quiet,
            silent_s=silent_s,
        )
        if silent_s is not None or health not in (Health.FRESH, Health.STALE):
            return health  # the gateway's keepalive tells (or no handshake to test yet)
        # No keepalive promise: ask something behind the gateway (its DNS server, always
        # open to devices) and expect bytes back within PROBE_WAIT_S.
        if self._probe_at is not None and self._probe_at < self._rx_moved_at:
            self._probe_at = None  # answered
        if self._probe_at is not None and now - self._probe_at >= PROBE_WAIT_S:
            return Health.SILENT
        if self._probe_at is None and quiet >= PROBE_AFTER_S and self._probe(applied):
            self._probe_at = now
        return health

    def _probe(self, spec: TunnelSpec | None) -> bool:
        """Send one DNS query through the tunnel (a marked socket) to the spec's first
        DNS server; whether it went. The answer shows in the receive counter."""
        path = self._path
        servers = spec.dns_servers() if spec is not None else ()
        if path is None or not servers:
            return False
        server = str(servers[0])
        name = (spec.suffixes() or ("rustronaut-probe.invalid",))[0] if spec else ""
        try:
            sock = path.take(socket.AF_INET6 if ":" in server else socket.AF_INET, "udp")
        except Exception as exc:  # no tunnel socket: the next tick's status tells
            _log.debug("no socket for a tunnel probe: %s", exc)
            return False
        with sock:
            try:
                sock.setblocking(False)
                sock.sendto(_probe_query(name), (server, 53))
            except OSError as exc:
                _log.debug("tunnel probe not sent: %s", exc)
                return False
        return True

    def rx_quiet_s(self) -> float | None:
        """How long nothing came back through the tunnel (None: no tunnel)."""
        return None if self._up_at is None else self._clock() - self._rx_moved_at

    def plan(self, health: Health) -> Step | None:
        """The step to carry out for ``health`` (None: stay). Remembers the failed set."""
        try:
            count = len(self.specs())
        except NoGatewayError:
            return None  # no bundle: nothing to switch between
        step = plan(health, current=self._index, count=count, failed=self._failed)
        self._failed = step.failed
        return None if step.action is Action.STAY else step

    def select(self, index: int) -> tuple[TunnelSpec, str, str] | None:
        """Make gateway ``index`` the one in use; its spec, the previous gateway's label
        and its own (None when the bundle no longer has it)."""
        specs = self.specs()
        if index >= len(specs):
            return None
        old_index, self._index = self._index, index
        old = gateway_label(specs[old_index], old_index) if old_index < len(specs) else "?"
        return specs[index], old, gateway_label(specs[index], index)

    @property
    def index(self) -> int:
        """The index of the gateway in use."""
        return self._index

    def interfaces(self, shown: TunnelView | None) -> set[str]:
        """The tunnel's own interfaces: ``shown``'s and every gateway's in the bundle.

        The tunnel's interface coming and going is not a change of network.
        """
        names = {shown.interface} if shown else set()
        if self._policy.held() is not None:
            try:
                specs = self.specs()
            except NoGatewayError:
                specs = []
            names |= {s.interface for s in specs}
        return names
