"""The transport state machine, driven step by step: an injected runner that records the
exact ``wg`` command lines and answers ``wg show dump`` text, an injected clock, stand-in
relay streams (the TLS client itself is tested against a real TLS relay in
``test_client_bridge.py``). The bridge is real (loopback UDP)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from wg_backends.relay.client import ProbeResult, RelayError
from wg_backends.relay.supervisor import Supervisor, Timings, quiet_after
from wg_backends.runner import CommandResult
from wg_backends.spec import PeerSpec, RelaySpec, TunnelSpec, silent_after

PUB = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
PSK = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="
OURS = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM="
WALL0 = 1_800_000_000.0


def make_spec(*, keepalive: int | None = 5, psk: str | None = PSK) -> TunnelSpec:
    return TunnelSpec(
        interface="rt0",
        addresses=("10.9.0.2/32",),
        peers=(
            PeerSpec(
                public_key=PUB,
                endpoint="127.0.0.1:51999",
                allowed_ips=("10.9.0.0/24",),
                preshared_key=psk,
                persistent_keepalive=keepalive,
            ),
        ),
        relays=(
            RelaySpec(name="r1", endpoint="127.0.0.1:4431", server_name="r1.test"),
            RelaySpec(name="r2", endpoint="127.0.0.1:4432", server_name="r2.test"),
        ),
    )


class Runner:
    """Records argv; answers ``wg show dump`` with the current peer counters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.handshake = 0
        self.rx = 0
        self.endpoint = "127.0.0.1:51999"

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        argv = tuple(argv)
        out = ""
        if argv[1] == "show":
            out = (
                f"(hidden)\t{OURS}\t40000\toff\n"
                f"{PUB}\t(hidden)\t{self.endpoint}\t10.9.0.0/24\t{self.handshake}\t{self.rx}\t0\t5\n"
            )
        else:
            self.calls.append(argv)
            if "preshared-key" in argv:  # the key file exists while wg reads it, 0600
                path = Path(argv[argv.index("preshared-key") + 1])
                assert path.stat().st_mode & 0o777 == 0o600
                assert path.read_text() == PSK + "\n"
        return CommandResult(argv, 0, out, "")


class FakeStream:
    def __init__(self, relay: RelaySpec, now: list[float]) -> None:
        self.relay = relay
        self.on_data: Callable[[bytes], None] = lambda _d: None
        self.on_close: Callable[[str], None] = lambda _r: None
        self._now = now
        self.last_pong = now[0]
        self.rtt_ms: float | None = 3.0
        self.load = 1
        self.closed = False
        self.sent: list[bytes] = []

    def start(self) -> None:
        pass

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_close("closed")


class World:
    def __init__(self, tmp: Path, *, context: bool = True, keepalive: int | None = 5) -> None:
        self.now = [100.0]
        self.runner = Runner()
        self.rtts = {"r1": 20.0, "r2": 5.0}
        self.down: set[str] = set()
        self.streams: list[FakeStream] = []
        self.sup = Supervisor(
            make_spec(keepalive=keepalive),
            self.runner,
            device="rt0",
            context=ssl.create_default_context() if context else None,
            workdir=tmp,
            timings=Timings(3.0, 15.0, 3.0),
            prober=self.prober,
            opener=cast(Any, self.opener),  # FakeStream stands in for RelayStream
            clock=lambda: self.now[0],
            wall=lambda: WALL0 + self.now[0],
        )

    async def prober(self, relay: RelaySpec) -> ProbeResult:
        if relay.name in self.down:
            raise RelayError("down")
        return ProbeResult(self.rtts[relay.name], 0)

    async def opener(self, relay: RelaySpec, gateway: str) -> FakeStream:
        assert gateway == "127.0.0.1:51999"  # the spec's first peer endpoint
        if relay.name in self.down:
            raise RelayError("down")
        stream = FakeStream(relay, self.now)
        self.streams.append(stream)
        return stream

    async def tick(self, seconds: float = 1.0) -> None:
        self.now[0] += seconds
        for s in self.streams:
            if not s.closed:
                s.last_pong = self.now[0]  # healthy streams answer their PINGs
        await self.sup.step()


def wg(*args: str) -> tuple[str, ...]:
    return ("wg", "set", "rt0", "peer", PUB, *args)


async def test_no_handshake_over_udp_moves_to_the_fastest_relay_with_the_whole_peer(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    sup = w.sup
    assert (sup.status().kind, sup.status().state) == ("udp", "trying")
    await w.tick()
    await w.tick()
    assert w.runner.calls == []  # within the grace
    await w.tick()
    st = sup.status()
    assert (st.kind, st.state, st.reason, st.relay) == ("relay", "relay", "udp_blocked", "r2")
    assert sup.bridge is not None
    port = sup.bridge.port
    remove, add = w.runner.calls
    assert remove == wg("remove")
    assert add[:-1] == wg(
        "endpoint", f"127.0.0.1:{port}", "allowed-ips", "10.9.0.0/24",
        "persistent-keepalive", "5", "preshared-key",
    )  # fmt: skip
    assert not os.listdir(tmp_path)  # the preshared-key file is gone again
    assert {r.name: r.rtt_ms for r in st.relays} == {"r1": 20.0, "r2": 5.0}
    await sup.close()


async def test_a_dead_relay_hands_over_to_the_next_and_then_no_path(tmp_path: Path) -> None:
    w = World(tmp_path)
    sup = w.sup
    for _ in range(3):
        await w.tick()
    assert sup.relay == "r2"
    w.runner.handshake = int(WALL0 + w.now[0])
    await w.tick()  # handshake through the relay: confirmed
    w.runner.calls.clear()
    w.streams[-1].close()  # r2 dies (EOF)
    await w.tick()
    st = sup.status()
    assert (st.kind, st.reason, st.relay) == ("relay", "relay_failed", "r1")
    assert w.runner.calls == []  # same bridge, same endpoint: only the stream changed
    assert sup.bridge is not None
    assert cast(Any, sup.bridge.stream) is w.streams[-1]
    # r1 stops answering PINGs: after 3 s it is dropped; r2 is down too: no path.
    w.down = {"r1", "r2"}
    w.streams[-1].last_pong = w.now[0]
    w.streams[-1].closed = True  # stop the fake from answering
    for _ in range(4):
        w.now[0] += 1.0
        await sup.step()
    st = sup.status()
    assert (st.kind, st.state, st.reason) == ("udp", "no_path", "relays_down")
    assert w.runner.calls[-1] == wg("endpoint", "127.0.0.1:51999")  # back on the gateway
    assert cast(Any, sup).bridge is None  # (mypy narrowed it earlier)
    # No endless switching: nothing happens until the retry period.
    w.runner.calls.clear()
    for _ in range(10):
        await w.tick()
    assert w.runner.calls == []
    assert sup.status().state == "no_path"
    await sup.close()


async def test_udp_back_switches_with_a_plain_endpoint_change(tmp_path: Path) -> None:
    w = World(tmp_path)
    sup = w.sup
    for _ in range(3):
        await w.tick()
    bridge = sup.bridge
    assert bridge is not None
    w.runner.handshake = int(WALL0 + w.now[0])  # the handshake went through the relay
    w.runner.calls.clear()
    # The retry window opens after udp_retry: keepalive lowered, the bridge probes.
    for _ in range(15):
        await w.tick()
    assert bridge.probing
    # The peer re-created (a handshake at once, answered by the gateway over whichever path
    # its first copy took) with a 1 s keepalive for the window.
    assert w.runner.calls[0] == wg("remove")
    assert w.runner.calls[1][:-1] == wg(
        "endpoint", f"127.0.0.1:{bridge.port}", "allowed-ips", "10.9.0.0/24",
        "persistent-keepalive", "1", "preshared-key",
    )  # fmt: skip
    w.runner.calls.clear()
    sup._on_udp_back()  # what the bridge calls when the gateway answers the probe socket
    await w.tick()
    st = sup.status()
    assert (st.kind, st.state, st.reason, st.relay) == ("udp", "direct", "udp_back", None)
    assert w.runner.calls == [wg("endpoint", "127.0.0.1:51999", "persistent-keepalive", "1")]
    assert not bridge.delivering  # late relay packets are dropped, not delivered
    bridge._from_relay(b"late")
    assert bridge.dropped_late == 1
    w.runner.calls.clear()
    for _ in range(3):  # after the drain the spec's keepalive is back
        await w.tick()
    assert w.runner.calls == [wg("persistent-keepalive", "5")]
    await sup.close()


async def test_a_silent_udp_path_falls_back(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.runner.handshake = int(WALL0 + 100)
    w.runner.rx = 100
    await w.tick()
    assert (w.sup.status().state, w.sup.status().reason) == ("direct", "udp_ok")
    for _ in range(6):  # k + 1 = 6 s without a received byte is still fine
        await w.tick()
    assert w.sup.status().kind == "udp"
    await w.tick()
    assert (w.sup.status().kind, w.sup.status().reason) == ("relay", "udp_silent")
    await w.sup.close()


async def test_without_a_certificate_the_state_says_so(tmp_path: Path) -> None:
    w = World(tmp_path, context=False)
    for _ in range(3):
        await w.tick()
    st = w.sup.status()
    assert (st.state, st.reason) == ("no_path", "no_certificate")
    assert w.runner.calls == []
    assert w.streams == []


def test_silent_after_is_the_engines_rule_and_the_helper_leaves_sooner() -> None:
    assert silent_after(make_spec(keepalive=5)) == 11.0
    assert quiet_after(make_spec(keepalive=5)) == 6.0  # one keepalive missed
    assert quiet_after(make_spec(keepalive=25)) is None
    assert silent_after(make_spec(keepalive=25)) is None
    assert silent_after(make_spec(keepalive=None)) is None


def test_timings_from_the_environment() -> None:
    assert Timings.from_env({"RUSTRONAUT_RELAY_TIMINGS": "1,2,0.5"}) == Timings(1.0, 2.0, 0.5)
    assert Timings.from_env({"RUSTRONAUT_RELAY_TIMINGS": "x"}) == Timings()
    assert Timings.from_env({}) == Timings()
