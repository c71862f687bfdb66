"""Per tunnel: whether WireGuard's packets go straight over UDP or over a relay, and when
to change (issue 21).

One :class:`Supervisor` per tunnel whose spec lists relays, on the helper's event loop.
Every second it reads ``wg show <dev> dump`` through the injected runner and acts:

- **UDP** (WireGuard talks to the gateway itself, no Python on the path): no handshake
  within ``udp_grace`` s of the start → relay (``udp_blocked``); a keepalive missed
  while up (``k + 1`` s without a received byte for a promised keepalive ``k`` ≤ 10:
  sooner than the engine's ``2k + 1``, so the relay carries the tunnel before the engine
  calls the gateway silent) → relay (``udp_silent``).
- **Falling back**: every relay of the spec is probed in parallel (2 s), ranked by
  :mod:`~wg_backends.relay.choose`, and the device's stream opened to the best one; the
  :class:`~wg_backends.relay.bridge.Bridge` binds a loopback port connected to
  WireGuard's listen port and the peer is re-created pointing at it with its whole
  config from the spec (``wg set … peer K remove`` then ``wg set … peer K endpoint
  127.0.0.1:<bridge> allowed-ips … persistent-keepalive … [preshared-key <0600 file>]``):
  a new peer with a keepalive makes WireGuard handshake at once instead of in 5 s.
- **Relay**: PING every second on the stream; no PONG for 3 s, EOF or ERROR → the next
  relay (``relay_failed``; the bridge and WireGuard's endpoint stay, only the stream
  changes). No handshake through the relay within ``udp_grace`` s (when the spec has a
  keepalive) counts as that relay failing. Relays are re-probed every 30 s for the
  status. Every ``udp_retry`` s, for ``probe_window`` s, the bridge also sends each
  datagram straight to the gateway (its probe socket) and the keepalive is lowered to
  1 s so an idle tunnel sends something; an answer from the gateway means UDP works:
  ``wg set … endpoint <gateway>``, the bridge stops delivering relay traffic (a late
  packet would pull WireGuard back), and closes after a short drain (``udp_back``).
- **Bounded**: once UDP and every relay failed in this round, the state is ``no_path``
  (``relays_down``) with WireGuard pointed at the gateway again; no more switching until
  the spec is re-applied or ``4 × udp_retry`` s pass (the engine measures its own grace
  from ``transport.since`` and may choose another gateway).

Timings come from ``RUSTRONAUT_RELAY_TIMINGS="udp_grace,udp_retry,probe_window"``
(seconds; default ``3,15,3``). Tests drive :meth:`Supervisor.step` with an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wg_backends.errors import BackendError, WgError
from wg_backends.relay.bridge import Bridge
from wg_backends.relay.choose import Measure, rank
from wg_backends.relay.client import ProbeResult, RelayError, RelayStream, open_stream, probe
from wg_backends.runner import CommandRunner
from wg_backends.spec import PeerSpec, RelaySpec, TunnelSpec, parse_endpoint, silent_after
from wg_backends.status import PeerStatus, RelayHealth, TransportStatus, parse_wg_dump

__all__ = ["Supervisor", "Timings", "quiet_after"]

_log = logging.getLogger("rustronaut.helper.relay")

PING_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 2.0
REMEASURE_S = 30.0
DRAIN_S = 3.0


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds: ``udp_grace`` (no handshake → relay), ``udp_retry`` (how often UDP is
    tried again while on a relay), ``probe_window`` (how long each try lasts)."""

    udp_grace: float = 3.0
    udp_retry: float = 15.0
    probe_window: float = 3.0

    @classmethod
    def from_env(cls, environ: Any = None) -> Timings:
        """From ``RUSTRONAUT_RELAY_TIMINGS``; the defaults when unset or malformed."""
        raw = (os.environ if environ is None else environ).get("RUSTRONAUT_RELAY_TIMINGS", "")
        try:
            grace, retry, window = (float(x) for x in raw.split(","))
        except ValueError:
            return cls()
        if not (0 < grace <= 600 and 0 < retry <= 3600 and 0 < window <= 600):
            return cls()
        return cls(grace, retry, window)


def quiet_after(spec: TunnelSpec) -> float | None:
    """Seconds without a received byte after which the helper leaves UDP: ``k + 1`` for
    the shortest promised keepalive ``k`` (one keepalive missed). Sooner than the
    engine's ``2k + 1`` on purpose: the relay must carry the tunnel before the engine
    calls the gateway silent, and a false alarm costs little — UDP is tried again in the
    background without a blackout. None without a promise. Pure."""
    limit = silent_after(spec)
    return None if limit is None else (limit - 1.0) / 2.0 + 1.0


Prober = Callable[[RelaySpec], Awaitable[ProbeResult]]
Opener = Callable[[RelaySpec, str], Awaitable[RelayStream]]


class Supervisor:
    """The transport of one tunnel. ``start()`` runs :meth:`step` every second on the
    loop; ``close()`` stops it and puts WireGuard back on the gateway's endpoint.

    ``context``: the TLS context for relays (None: no relay certificate, the state is
    ``no_certificate`` when UDP fails). ``device``: the name ``wg`` acts on. ``prober``
    and ``opener`` default to the real TLS client; ``clock``/``wall`` to monotonic and
    Unix time. ``workdir``: a private (0700) directory for the preshared-key file.
    """

    def __init__(
        self,
        spec: TunnelSpec,
        runner: CommandRunner,
        *,
        device: str,
        context: ssl.SSLContext | None,
        workdir: Path,
        timings: Timings | None = None,
        wg: str = "wg",
        mark: int | None = None,
        supported: bool = True,
        prober: Prober | None = None,
        opener: Opener | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.peer: PeerSpec = spec.peers[0]
        self.relays = spec.relay_list()
        self._run = runner
        self.device = device
        self.context = context
        self.workdir = workdir
        self.timings = timings or Timings.from_env()
        self._wg = wg
        self.mark = mark
        self.supported = supported
        self._clock = clock
        self._wall = wall
        self._rng = rng
        self._prober: Prober = prober or self._probe_real
        self._opener: Opener = opener or self._open_real
        # State
        self.kind = "udp"
        self.state = "trying"
        self.reason = "udp_ok"
        self.detail = "waiting for the first handshake over UDP"
        self.since = wall()
        self.relay: str | None = None
        self.health: dict[str, Measure] = {}
        self.bridge: Bridge | None = None
        self.stream: RelayStream | None = None
        self._mode = "udp"  # udp | relay | no_path
        self._confirmed = False
        self._mode_at = clock()
        self._last_rx = -1
        self._rx_at = clock()
        self._failed: set[str] = set()
        self._stream_lost: str | None = None
        self._udp_back = False
        self._next_retry = 0.0
        self._window_end: float | None = None
        self._next_measure = 0.0
        self._task: asyncio.Task[None] | None = None
        self._draining: list[asyncio.TimerHandle] = []
        self._gateway_addr: tuple[str, int] | None = None
        self._restore_ka_at: float | None = None

    # ----- status ---------------------------------------------------------------------

    def status(self) -> TransportStatus:
        """The transport as the helper reports it in ``TunnelStatus.transport``."""
        relays = tuple(
            RelayHealth(
                name=r.name,
                healthy=m.healthy if (m := self.health.get(r.name)) else False,
                rtt_ms=None if m is None or m.rtt_ms is None else round(m.rtt_ms, 2),
                load=None if m is None else m.load,
            )
            for r in self.relays
        )
        return TransportStatus(
            kind=self.kind,
            state=self.state,
            reason=self.reason,
            since=self.since,
            relay=self.relay,
            detail=self.detail,
            relays=relays,
        )

    def _set(self, kind: str, state: str, reason: str, detail: str, relay: str | None) -> None:
        if (kind, state, reason, relay) != (self.kind, self.state, self.reason, self.relay):
            self.since = self._wall()
            _log.info(
                "%s transport: %s/%s (%s) %s", self.spec.interface, kind, state, reason, detail
            )
        self.kind, self.state, self.reason, self.detail, self.relay = (
            kind, state, reason, detail, relay,
        )  # fmt: skip

    # ----- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`step` every second until :meth:`close`."""
        if not self.supported:
            self._mode = "no_path"
            self._set("udp", "no_path", "relays_down", "not supported on this backend", None)
            return
        self._task = asyncio.create_task(self._loop(), name=f"relay-supervisor-{self.device}")

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep supervising: one bad read must not end it
                _log.error("%s transport step: %s", self.spec.interface, exc)
            await asyncio.sleep(1.0)

    async def close(self, *, restore: bool = True) -> None:
        """Stop; with ``restore`` and a relay in use, WireGuard goes back to the gateway
        endpoint (the tunnel stays). Idempotent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for handle in self._draining:
            handle.cancel()
        self._draining.clear()
        if self.bridge is not None:
            if restore and self._mode == "relay":
                with contextlib.suppress(WgError, OSError):
                    await self._wg_set(["endpoint", self.peer.endpoint])
            self.bridge.close()
            self.bridge = None
        self.stream = None

    def adopt(self, old: Supervisor) -> bool:
        """Take over ``old``'s relay path when the gateway and its key did not change (an
        ``update``): the bridge and stream move here, and :meth:`step` re-points
        WireGuard at the bridge (``wg syncconf`` put the gateway endpoint back). Whether
        anything was taken. ``old`` must not be used afterwards (``close`` it: a no-op)."""
        same = (old.peer.public_key, old.peer.endpoint) == (
            self.peer.public_key,
            self.peer.endpoint,
        )
        if not same or old._mode != "relay" or old.bridge is None:
            return False
        if old._task is not None:
            old._task.cancel()
            old._task = None
        self.bridge, old.bridge = old.bridge, None
        self.stream, old.stream = old.stream, None
        self.bridge.on_udp_back = self._on_udp_back
        if self.stream is not None:
            self.stream.on_close = self._on_stream_closed
        self._mode = "relay"
        self._confirmed = True
        self._mode_at = self._clock()
        self.health = dict(old.health)
        self._next_retry = old._next_retry
        self._next_measure = old._next_measure
        self._gateway_addr = old._gateway_addr
        self.kind, self.state, self.reason, self.detail, self.relay, self.since = (
            old.kind, old.state, old.reason, old.detail, old.relay, old.since,
        )  # fmt: skip
        self._repoint = True
        return True

    _repoint = False

    # ----- the state machine ------------------------------------------------------------

    async def step(self) -> None:
        """One tick: read WireGuard's counters, decide, act."""
        now = self._clock()
        dump = await asyncio.to_thread(
            self._run, [self._wg, "show", self.device, "dump"], timeout=10
        )
        status = parse_wg_dump(dump.stdout, interface=self.device, backend="wg", now=self._wall())
        peer = next((p for p in status.peers if p.public_key == self.peer.public_key), None)
        if peer is None:
            return  # not (yet) configured: nothing to judge
        if peer.rx_bytes != self._last_rx:
            self._last_rx = peer.rx_bytes
            self._rx_at = now
        if self._mode == "udp":
            await self._step_udp(now, peer, status.listen_port)
        elif self._mode == "relay":
            await self._step_relay(now, peer, status.listen_port)
        else:
            await self._step_no_path(now, peer, status.listen_port)

    async def _step_udp(self, now: float, peer: PeerStatus, port: int | None) -> None:
        if self._restore_ka_at is not None and now >= self._restore_ka_at:
            self._restore_ka_at = None
            await self._restore_keepalive()
        if not self._confirmed:
            if peer.latest_handshake is not None:
                self._confirmed = True
                self._set("udp", "direct", self.reason if self._udp_back else "udp_ok",
                          "WireGuard talks to the gateway over UDP", None)  # fmt: skip
            elif now - self._mode_at >= self.timings.udp_grace:
                await self._fall_back(now, "udp_blocked", port)
            return
        limit = quiet_after(self.spec)
        if limit is not None and now - self._rx_at > limit:
            await self._fall_back(now, "udp_silent", port)

    async def _step_relay(self, now: float, peer: PeerStatus, port: int | None) -> None:
        bridge = self.bridge
        assert bridge is not None
        if self._repoint:  # adopted after an update: syncconf set the gateway endpoint
            self._repoint = False
            await self._wg_set(["endpoint", f"127.0.0.1:{bridge.port}"])
        if self._udp_back:
            await self._back_to_udp(now)
            return
        stream = self.stream
        lost = self._stream_lost
        if stream is not None and lost is None and now - stream.last_pong > PING_TIMEOUT_S:
            lost = "no answer to PING"
            stream.close()
        if lost is None and not self._confirmed and self.peer.persistent_keepalive:
            if peer.latest_handshake is not None:
                self._confirmed = True
                self._failed.clear()  # a round ends when a path works
            elif now - self._mode_at >= self.timings.udp_grace + 2.0:
                lost = "no handshake through the relay"
                if stream is not None:
                    stream.close()
        if lost is not None or self.stream is None:
            failed = self.relay
            self._stream_lost = None
            self.stream = None
            if failed is not None:
                self._failed.add(failed)
                self._mark(failed, healthy=False)
            _log.warning("%s: relay %s failed (%s)", self.spec.interface, failed, lost)
            if not await self._next_relay(now, "relay_failed", port):
                await self._give_up(now)
            return
        if stream is not None:
            self._mark(stream.relay.name, healthy=True, rtt=stream.rtt_ms, load=stream.load)
        # Retry UDP in the background.
        if self._window_end is not None and now >= self._window_end:
            self._window_end = None
            bridge.probing = False
            await self._restore_keepalive()
            self._next_retry = now + self.timings.udp_retry
        elif self._window_end is None and now >= self._next_retry:
            self._window_end = now + self.timings.probe_window
            bridge.probing = True
            # Something must come back from the gateway during the window, even on an idle
            # tunnel (a keepalive is never answered): the peer is re-created, which starts
            # a handshake at once; its initiation goes both ways and the gateway answers
            # the first copy. The session's keys change; connections inside the tunnel
            # only see a packet in flight lost at worst (TCP retransmits).
            await self._recreate_peer(f"127.0.0.1:{bridge.port}", keepalive=1)
        if now >= self._next_measure:
            self._next_measure = now + REMEASURE_S
            await self._measure(exclude=(self.relay,) if self.relay else ())

    async def _step_no_path(self, now: float, peer: PeerStatus, port: int | None) -> None:
        if not self.supported:
            return
        if (
            peer.latest_handshake is not None
            and now - self._rx_at < 1.5
            and self._handshake_new(peer)
        ):
            self._enter_udp(now, confirmed=True)
            self._set("udp", "direct", "udp_ok", "UDP works again", None)
            return
        if now - self._mode_at >= 4 * self.timings.udp_retry:
            self._failed.clear()
            await self._fall_back(now, "udp_blocked", port)

    def _handshake_new(self, peer: PeerStatus) -> bool:
        return peer.latest_handshake is not None and peer.latest_handshake >= self._no_path_wall

    _no_path_wall = 0.0

    # ----- transitions ------------------------------------------------------------------

    def _enter_udp(self, now: float, *, confirmed: bool) -> None:
        self._mode = "udp"
        self._mode_at = now
        self._confirmed = confirmed
        self._rx_at = now

    async def _fall_back(self, now: float, reason: str, port: int | None) -> None:
        if not self.relays:
            return
        if self.context is None:
            self._mode = "no_path"
            self._mode_at = now
            self._no_path_wall = self._wall()
            self._set("udp", "no_path", "no_certificate",
                      "UDP fails and the helper has no relay certificate", None)  # fmt: skip
            return
        self._failed.add("<udp>")
        self._set("udp", "trying", reason, "UDP fails; trying the relays", None)
        await self._measure()
        if not await self._next_relay(now, reason, port):
            await self._give_up(now)

    async def _measure(self, exclude: Sequence[str] = ()) -> None:
        async def one(relay: RelaySpec) -> Measure:
            try:
                result = await asyncio.wait_for(self._prober(relay), PROBE_TIMEOUT_S)
            except (RelayError, TimeoutError, OSError) as exc:
                _log.info("%s: relay %s probe failed: %s", self.spec.interface, relay.name, exc)
                return Measure(relay.name, False)
            return Measure(relay.name, True, result.rtt_ms, result.load)

        todo = [r for r in self.relays if r.name not in exclude]
        for m in await asyncio.gather(*(one(r) for r in todo)):
            self.health[m.name] = m

    def _mark(
        self, name: str, *, healthy: bool, rtt: float | None = None, load: int | None = None
    ) -> None:
        old = self.health.get(name)
        if healthy:
            rtt = rtt if rtt is not None else (old.rtt_ms if old else None)
            self.health[name] = Measure(name, True, rtt, load)
        else:
            self.health[name] = Measure(name, False)

    async def _next_relay(self, now: float, reason: str, port: int | None) -> bool:
        """Open the best relay not failed in this round; whether one is in use now."""
        order = rank(list(self.health.values()), exclude=self._failed, rng=self._rng)
        for name in order:
            relay = next(r for r in self.relays if r.name == name)
            try:
                stream = await self._opener(relay, self.peer.endpoint)
            except (RelayError, OSError) as exc:
                _log.warning("%s: relay %s: %s", self.spec.interface, name, exc)
                self._failed.add(name)
                self._mark(name, healthy=False)
                continue
            try:
                await self._use(now, relay, stream, reason, port)
            except (WgError, OSError) as exc:
                stream.close()
                _log.error("%s: cannot switch to relay %s: %s", self.spec.interface, name, exc)
                return False
            return True
        return False

    async def _use(
        self, now: float, relay: RelaySpec, stream: RelayStream, reason: str, port: int | None
    ) -> None:
        stream.on_close = self._on_stream_closed
        new_bridge = self.bridge is None
        if new_bridge:
            if port is None:
                raise BackendError("WireGuard has no listen port")
            bridge = Bridge(
                port, await self._gateway(), mark=self.mark, on_udp_back=self._on_udp_back
            )
            await bridge.open()
            self.bridge = bridge
        assert self.bridge is not None
        self.bridge.attach(stream)
        self.stream = stream
        stream.start()
        if new_bridge:
            try:
                await self._recreate_peer(f"127.0.0.1:{self.bridge.port}")
            except BaseException:
                self.bridge.close()
                self.bridge = None
                self.stream = None
                raise
            self._confirmed = False
            self._next_retry = now + self.timings.udp_retry
            self._next_measure = now + REMEASURE_S
        else:
            self._confirmed = False  # a handshake through this relay is awaited again
        self._mode = "relay"
        self._mode_at = now
        self._window_end = None
        self._udp_back = False
        self._set("relay", "relay", reason, f"carried over relay {relay.name}", relay.name)

    async def _give_up(self, now: float) -> None:
        if self.bridge is not None:
            with contextlib.suppress(WgError, OSError):
                await self._wg_set(["endpoint", self.peer.endpoint])
            self.bridge.close()
            self.bridge = None
        self.stream = None
        self._mode = "no_path"
        self._mode_at = now
        self._no_path_wall = self._wall()
        self._set("udp", "no_path", "relays_down", "neither UDP nor any relay works", None)

    def _on_stream_closed(self, why: str) -> None:
        if self._mode == "relay" and self._stream_lost is None:
            self._stream_lost = why

    def _on_udp_back(self) -> None:
        self._udp_back = True

    async def _back_to_udp(self, now: float) -> None:
        bridge = self.bridge
        assert bridge is not None
        # The session is alive: a plain endpoint change, then nothing from the bridge may
        # reach WireGuard again (a late packet would pull it back to the bridge). A 1 s
        # keepalive for the drain makes the gateway roam to WireGuard's own port at once.
        bridge.stop_delivery()
        await self._wg_set(["endpoint", self.peer.endpoint, "persistent-keepalive", "1"])
        self._restore_ka_at = now + DRAIN_S
        self.bridge = None
        self.stream = None
        loop = asyncio.get_running_loop()
        # Drain: the gateway may still answer on the probe socket until it roams to
        # WireGuard's own port; those datagrams are still delivered until the close.
        self._draining.append(loop.call_later(DRAIN_S, bridge.close))
        self._failed.clear()
        self._enter_udp(now, confirmed=True)
        self._set("udp", "direct", "udp_back", "UDP works again", None)

    # ----- WireGuard ---------------------------------------------------------------------

    async def _wg_set(self, args: list[str]) -> None:
        argv = [self._wg, "set", self.device, "peer", self.peer.public_key, *args]
        await asyncio.to_thread(self._run, argv, timeout=10)

    async def _restore_keepalive(self) -> None:
        await self._wg_set(["persistent-keepalive", str(self.peer.persistent_keepalive or 0)])

    async def _recreate_peer(self, endpoint: str, *, keepalive: int | None = None) -> None:
        """The peer removed and added again with its whole config and ``endpoint``: a new
        peer with a keepalive handshakes at once (WireGuard would wait up to 5 s)."""
        peer = self.peer
        await self._wg_set(["remove"])
        args = [
            "endpoint", endpoint,
            "allowed-ips", ",".join(peer.allowed_ips),
            "persistent-keepalive", str(keepalive or peer.persistent_keepalive or 0),
        ]  # fmt: skip
        if peer.preshared_key is None:
            await self._wg_set(args)
            return
        fd, path = tempfile.mkstemp(prefix=".psk-", dir=self.workdir)  # 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(peer.preshared_key + "\n")
            await self._wg_set([*args, "preshared-key", path])
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    async def _gateway(self) -> tuple[str, int]:
        if self._gateway_addr is None:
            host, port = parse_endpoint(self.peer.endpoint)
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            if not infos:
                raise OSError(f"cannot resolve {host}")
            addr = infos[0][4]
            self._gateway_addr = (str(addr[0]), int(addr[1]))
        return self._gateway_addr

    # ----- the real TLS client ----------------------------------------------------------

    async def _probe_real(self, relay: RelaySpec) -> ProbeResult:
        assert self.context is not None
        return await probe(relay, self.context, limit_s=PROBE_TIMEOUT_S, mark=self.mark)

    async def _open_real(self, relay: RelaySpec, gateway: str) -> RelayStream:
        assert self.context is not None
        return await open_stream(relay, self.context, gateway, limit_s=3.0, mark=self.mark)
