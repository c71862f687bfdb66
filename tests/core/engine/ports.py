"""In-memory ports for the engine's logic tests.

These stand in for the controller, helper and proxy so the engine's state rules can be
driven step by step (revocation, drift, offline, expiry) in milliseconds; the real parts
are exercised together in tests/e2e. Each records what the engine asked of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from core.engine.ports import BundleInfo, ControlEvent, Enrollment, TunnelPath, UserInfo
from core.engine.state import PostureItem, ResourceView, TunnelView
from core.policy.api import AccessRequest, Decision, Effect
from core.policy.errors import BundleSignatureError, RollbackError

ALICE = UserInfo(subject="u1", email="alice@example.com", groups=("engineering",))


class Auth:
    def __init__(self, user: UserInfo | None = None) -> None:
        self._user = user
        self.expires_at: float | None = None
        self.sign_ins = 0
        self.fail_with: Exception | None = None

    def user(self) -> UserInfo | None:
        return self._user

    def session_expires_at(self) -> float | None:
        return self.expires_at

    def session_renewable(self) -> bool | None:
        return None if self._user is None else True

    async def sign_in(
        self,
        *,
        device_code: bool,
        on_prompt: Callable[[str, str, str | None], None],
        open_url: Callable[[str], None] | None = None,
    ) -> UserInfo:
        self.sign_ins += 1
        if open_url is not None and not device_code:
            open_url("https://idp.example/authorize?state=1")
        if device_code:
            on_prompt(
                "ABCD-EFGH",
                "https://idp.example/device",
                "https://idp.example/device?user_code=ABCD-EFGH",
            )
        if self.fail_with:
            raise self.fail_with
        self._user = ALICE
        return ALICE

    async def sign_out(self) -> None:
        self._user = None


class Device:
    def __init__(self) -> None:
        self._enrollment: Enrollment | None = None
        self.enrolls = 0
        #: every set of facts signed, as given (collected and client-stated)
        self.signed: list[dict[str, Any]] = []
        #: the helper now keeps another device key than the enrolled one (once)
        self.key_was_changed = False
        #: calls of ``register_relay_key`` (the real one is tested against the controller)
        self.relay_key_registrations = 0

    def enrollment(self) -> Enrollment | None:
        return self._enrollment

    async def key_changed(self) -> bool:
        changed, self.key_was_changed = self.key_was_changed, False
        return changed

    async def enroll(self) -> Enrollment:
        self.enrolls += 1
        self._enrollment = Enrollment(device_id="dev-1", address="100.64.0.2/32")
        return self._enrollment

    def forget(self) -> None:
        self._enrollment = None

    async def register_relay_key(self) -> None:
        self.relay_key_registrations += 1

    def sign_posture(self, facts: Any, nonce: str, device_id: str) -> str:
        self.signed.append(dict(facts))
        collected = sorted((k, v) for k, v in facts.items() if not k.startswith("client."))
        return f"signed:{nonce}:{device_id}:{collected}"

    def wg_private_key(self) -> str:
        return "PRIVATE"


class Control:
    def __init__(self) -> None:
        self.reachable = True
        self.reports: list[str] = []
        self.bundle = "bundle-v1"
        self.queue: asyncio.Queue[ControlEvent] = asyncio.Queue()
        self.break_glass: list[str] = []
        self.skew: float | None = None
        #: the relay certificate the latest bundle answer carried
        self.cert: str | None = None

    def _check(self) -> None:
        if not self.reachable:
            raise httpx.ConnectError("connection refused")

    async def posture_nonce(self) -> str:
        self._check()
        return "nonce-1"

    async def submit_posture(self, token: str) -> None:
        self._check()
        self.reports.append(token)

    async def fetch_bundle(self) -> str:
        self._check()
        return self.bundle

    async def events(self) -> AsyncIterator[ControlEvent]:
        self._check()
        while True:
            event = await self.queue.get()
            self._check()
            yield event

    async def report_break_glass(self, reason: str) -> None:
        self.break_glass.append(reason)

    def relay_cert(self) -> str | None:
        return self.cert

    def clock_skew_s(self) -> float | None:
        return self.skew


class Posture:
    def __init__(self) -> None:
        self.facts: dict[str, object] = {"firewall.enabled": True}
        self.on_change: Callable[[Any], None] | None = None

    async def collect(self) -> Any:
        return dict(self.facts)

    def start(self, on_change: Callable[[Any], None]) -> None:
        self.on_change = on_change

    async def stop(self) -> None:
        self.on_change = None

    def items(self, facts: Any) -> tuple[PostureItem, ...]:
        return tuple(
            PostureItem(name=k, label=k, value=str(v), status="pass" if v else "fail")
            for k, v in facts.items()
        )

    def policy_facts(self, facts: Any) -> dict[str, object]:
        return {f"posture.{k}": v for k, v in facts.items()}

    def drift(self, **facts: object) -> None:
        self.facts.update(facts)
        assert self.on_change is not None, "posture monitor not started"
        self.on_change(dict(self.facts))


class _TableDecider:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def decide(self, request: AccessRequest) -> Decision:
        if self._policy.held() is None:
            return Decision(Effect.DENY, None, "no valid policy")
        if request.host == "wiki.corp" and self._policy.facts.get("posture.firewall.enabled"):
            return Decision(Effect.ALLOW, "r-wiki", "engineering may use the wiki")
        return Decision(Effect.DENY, None, "no rule allows this")


class Policy:
    """Accepts bundles named 'bundle-vN'; anything else is refused."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._held: BundleInfo | None = None
        self.cached: BundleInfo | None = None
        self.facts: dict[str, object] = {}
        self.lifetime = 3600.0
        #: endpoints of the bundle's gateways, in order (``tunnel`` then ``gateways``)
        self.gateways: tuple[str, ...] = ("gw.example:51820",)
        self._decider = _TableDecider(self)
        #: a resource every user may always reach (so a blocked wiki only degrades)
        self.open_resource = False
        #: set while the keys are trusted on first use (no anchors configured)
        self.trust_notice: str | None = None

    @property
    def decider(self) -> _TableDecider:
        return self._decider

    def accept(self, token: str, *, device_id: str) -> BundleInfo:
        if not token.startswith("bundle-v"):
            raise BundleSignatureError("bundle signature does not verify")
        version = int(token.removeprefix("bundle-v"))
        if self._held and version < self._held.version:
            raise RollbackError("older bundle refused")
        self._held = BundleInfo(version, self._clock() + self.lifetime, 1)
        self.cached = self._held
        return self._held

    def load_cached(self, *, device_id: str) -> BundleInfo | None:
        if self.cached and self.cached.expires_at > self._clock():
            self._held = self.cached
        return self.held()

    def held(self) -> BundleInfo | None:
        if self._held and self._held.expires_at <= self._clock():
            self._held = None
        return self._held

    def clear(self) -> None:
        self._held = self.cached = None

    def set_facts(self, facts: Mapping[str, object]) -> None:
        self.facts = dict(facts)

    def resources(self) -> tuple[ResourceView, ...]:
        ok = bool(self.facts.get("posture.firewall.enabled"))
        extra = (ResourceView(name="status", address="status.corp", reachable=True),)
        return (
            *(extra if self.open_resource else ()),
            ResourceView(
                name="wiki",
                address="wiki.corp",
                reachable=ok,
                reason="" if ok else "firewall is off",
                fix="" if ok else "sudo ufw enable",
                fixable=not ok,
            ),
            ResourceView(
                name="payroll",
                address="payroll.corp",
                reachable=False,
                reason="not in the finance group",
                fix="Ask IT for access",
            ),
        )

    def tunnel_spec(self) -> Any:
        return _Spec(self.gateways[0])

    def tunnel_specs(self) -> tuple[Any, ...]:
        return tuple(_Spec(e) for e in self.gateways)

    def pac_targets(self) -> tuple[str, ...]:
        return ("wiki.corp",)

    def signed(self) -> tuple[str, tuple[str, ...]] | None:
        held = self.held()
        return (f"bundle-v{held.version}", ("endorsement",)) if held else None

    def risk(self) -> tuple[int, tuple[str, ...]]:
        return (0, ())


class _Peer:
    persistent_keepalive: int | None = None

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Peer) and other.endpoint == self.endpoint


class _Spec:
    interface = "rt0"

    def __init__(self, endpoint: str = "gw.example:51820", private_key: str | None = None) -> None:
        self.peers = (_Peer(endpoint),)
        self.private_key = private_key

    @property
    def endpoint(self) -> str:
        return self.peers[0].endpoint

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Spec) and other.endpoint == self.endpoint

    def with_private_key(self, key: str) -> _Spec:
        return _Spec(self.endpoint, key)

    def suffixes(self) -> tuple[str, ...]:
        return ()

    def dns_servers(self) -> tuple[str, ...]:
        return ()


class Tunnel:
    """A WireGuard stand-in: a live gateway's handshake age is ``handshake_age``; a dead
    one (``dead``) never handshakes after ``up``, and a handshake made before it died
    ages with ``clock``, as ``wg show`` would report it."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self.clock = clock
        self.up_specs: list[Any] = []
        self.is_up = False
        self.handshake_age: float | None = 1.0
        self.fail_up: Exception | None = None
        self.dead: set[str] = set()
        self._last_handshake: float | None = None
        #: the helper process is gone: every call fails as the real client does
        self.helper_gone = False
        #: the helper enforces managed always-on itself: a down needs a reason
        self.always_on = False
        #: every down that went, with the reason it carried
        self.downs: list[str | None] = []
        #: specs changed in place (``update``), and the redirect ports ``enforce`` got
        self.updates: list[Any] = []
        self.enforced: list[int | None] = []
        #: what a verifying helper got with each up/update (None: no signed bundle)
        self.signed: list[Any] = []
        self.releases = 0
        #: the helper cannot fence (another OS): ``enforce`` answers None
        self.no_fence = False
        #: the gateway stops replying (receive counter frozen) but the handshake stays
        self.silent = False
        self._rx = 10
        #: the relay certificate each up/update carried
        self.certs: list[str | None] = []
        #: the helper's transport for a spec with relays (None: plain UDP), as
        #: (kind, state, reason, since, relay)
        self.transport: tuple[str, str, str, float, str | None] | None = None

    def _helper(self) -> None:
        if self.helper_gone:
            from wg_backends.errors import HelperUnavailable

            raise HelperUnavailable("connection refused: /run/rustronaut/helper.sock")

    def helper_restarted(self) -> None:
        """The helper came back without our tunnel (systemd restarted it)."""
        self.helper_gone = False
        self.is_up = False

    @property
    def endpoint(self) -> str:
        return getattr(self.up_specs[-1], "endpoint", "gw.example:51820")

    def kill(self, endpoint: str) -> None:
        """The gateway stops answering; its last handshake was ``handshake_age`` ago."""
        self.dead.add(endpoint)
        if self.is_up and self.endpoint == endpoint and self.handshake_age is not None:
            self._last_handshake = self.clock() - self.handshake_age

    async def up(self, spec: Any, signed: Any = None, *, relay_cert: str | None = None) -> None:
        self._helper()
        self.signed.append(signed)
        self.certs.append(relay_cert)
        if self.fail_up:
            raise self.fail_up
        self.up_specs.append(spec)
        self.is_up = True
        self._last_handshake = None  # a fresh interface has no handshake yet

    async def down(self, *, break_glass_reason: str | None = None) -> None:
        self._helper()
        if self.always_on and break_glass_reason is None:
            from wg_backends.errors import HelperRefused

            raise HelperRefused("always_on", "managed always-on keeps the tunnel up")
        self.downs.append(break_glass_reason)
        self.is_up = False

    async def update(self, spec: Any, signed: Any = None, *, relay_cert: str | None = None) -> None:
        self._helper()
        self.signed.append(signed)
        self.certs.append(relay_cert)
        if self.fail_up:
            raise self.fail_up
        self.updates.append(spec)
        self.up_specs.append(spec)  # the spec in force; the handshake is untouched

    async def enforce(self, redirect_port: int | None) -> TunnelPath | None:
        self._helper()
        self.enforced.append(redirect_port)
        if self.no_fence:
            return None

        def take(family: int, kind: str) -> socket.socket:
            raise OSError("no sockets in the fake tunnel")

        return TunnelPath(
            interface="rt0",
            ranges=(ipaddress.ip_network("10.243.0.0/24"),),
            take=take,
            transparent=redirect_port is not None,
        )

    async def release(self) -> None:
        self.releases += 1

    async def status(self) -> TunnelView | None:
        self._helper()
        if not self.is_up:
            return None
        if self.endpoint in self.dead:
            last = self._last_handshake
            age = None if last is None else self.clock() - last
        else:
            age = self.handshake_age
            if not self.silent:
                # a live gateway's keepalives keep arriving
                self._rx = 10 + int(self.clock() * 10)
        if self.transport is None:
            return TunnelView("rt0", self.endpoint, age, self._rx, 20)
        kind, state, reason, since, relay = self.transport
        return TunnelView(
            "rt0",
            self.endpoint,
            age,
            self._rx,
            20,
            transport=kind,
            relay=relay,
            transport_state=state,
            transport_reason=reason,
            transport_since=since,
        )


class Proxy:
    def __init__(self) -> None:
        self.running = False
        self.reevaluations = 0
        self.pac: tuple[str, ...] = ()
        self.transparent_port: int | None = None
        #: every path the engine gave (None: no tunnel)
        self.paths: list[TunnelPath | None] = []

    async def start(self, port: int, transparent_port: int | None = None) -> str:
        self.running = True
        self.transparent_port = transparent_port
        return f"127.0.0.1:{port}"

    def set_path(self, path: TunnelPath | None, spec: Any) -> None:
        self.paths.append(path)

    async def stop(self) -> None:
        self.running = False

    def reevaluate(self) -> None:
        self.reevaluations += 1

    def set_pac_targets(self, targets: tuple[str, ...]) -> None:
        self.pac = targets


class ManualTicks:
    """The engine's time, moved by hand: ``sleep`` waits until ``advance`` passes its
    deadline; ``now`` reads the test's wall ``clock``; ``elapsed`` counts the advances
    (plus ``slept``, a suspend only this clock sees)."""

    def __init__(self, clock: Any) -> None:
        self._clock = clock  # has a float ``now`` that advancing moves too
        self.mono = 0.0
        self.slept = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def now(self) -> float:
        return float(self._clock.now)

    def elapsed(self) -> float:
        return self.mono + self.slept

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        self._sleepers.append((self.mono + max(seconds, 0.0), self._seq, future))
        try:
            await future
        finally:
            self._sleepers = [s for s in self._sleepers if s[2] is not future]

    def pending(self) -> int:
        return sum(1 for s in self._sleepers if not s[2].done())

    async def advance(self, seconds: float, settle: Callable[[], Any]) -> None:
        """Move time forward, waking each sleeper at its deadline in order, and let the
        engine handle what each wake-up posts (``settle``) before the next."""
        target = self.mono + seconds
        while True:
            due = sorted(s for s in self._sleepers if s[0] <= target and not s[2].done())
            if not due:
                break
            deadline, _, future = due[0]
            self._move(deadline)
            future.set_result(None)
            await settle()
        self._move(target)
        await settle()

    def _move(self, to: float) -> None:
        if to > self.mono:
            self._clock.now += to - self.mono
            self.mono = to
