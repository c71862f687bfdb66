"""What the engine needs from each part, as small protocols (the engine's seams).

``core.engine.wiring`` builds the real implementations (auth, control plane, posture,
policy, helper client, proxy); tests may pass their own. Each port hides one part's
details so the engine reads as the session's story, not as glue.

Errors a port raises are mapped to user messages in one place (``core.engine.errors``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from core.engine.state import PostureItem, ResourceView, TunnelView
from core.policy.api import Decider
from core.wire.posture import Fact
from wg_backends.spec import TunnelSpec

__all__ = [
    "AuthPort",
    "BundleInfo",
    "ControlEvent",
    "ControlPort",
    "DevicePort",
    "Enrollment",
    "PolicyPort",
    "PostureFacts",
    "PosturePort",
    "ProxyPort",
    "SignedTunnel",
    "TunnelPath",
    "TunnelPort",
    "UserInfo",
]

#: A network the tunnel carries (the tunnel's AllowedIPs).
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


#: One posture collection: fact name → fact (what the device signs and reports).
PostureFacts = Mapping[str, Fact]


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The signed-in user."""

    subject: str
    email: str
    name: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Enrollment:
    """This device's registration with the controller."""

    device_id: str
    address: str = ""


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """The held, verified policy bundle, summarised."""

    version: int
    expires_at: float
    resources: int


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """A controller event: "policy_changed", "device_revoked", "posture_recheck", ..."""

    kind: str
    data: Mapping[str, object]


class AuthPort(Protocol):
    """Sign-in and tokens."""

    def user(self) -> UserInfo | None:
        """The user of the stored session, or None. No network."""
        ...

    def session_expires_at(self) -> float | None:
        """When the sign-in itself ends (refresh token/session), if known."""
        ...

    def session_renewable(self) -> bool | None:
        """Whether the sign-in renews itself (holds a refresh token); None: signed out."""
        ...

    async def sign_in(
        self,
        *,
        device_code: bool,
        on_prompt: Callable[[str, str, str | None], None],
        open_url: Callable[[str], object] | None = None,
    ) -> UserInfo:
        """Run the browser or device flow; ``on_prompt(user_code, verification_uri,
        verification_uri_complete)`` for the device flow (the last one is None when the
        provider has no page with the code filled in),
        ``open_url`` (when given) opens the browser flow's page instead of the default."""
        ...

    async def sign_out(self) -> None:
        """Revoke (where offered) and forget the tokens. Idempotent."""
        ...


class DevicePort(Protocol):
    """This device's keys and enrollment record (keys stay on the device)."""

    def enrollment(self) -> Enrollment | None:
        """The stored enrollment, if any."""
        ...

    async def enroll(self) -> Enrollment:
        """Make keys if needed, register the public halves, store the record."""
        ...

    async def key_changed(self) -> bool:
        """Whether the tunnel's WireGuard key is no longer the one enrolled (a helper that
        verifies policy now keeps its own): then the device must enroll again."""
        ...

    def forget(self) -> None:
        """Drop the enrollment record (after revocation)."""
        ...

    async def register_relay_key(self) -> None:
        """Make sure the controller knows the helper's relay key (issue 21): a device
        enrolled before relays, or whose helper's key changed, registers it (not a
        re-enrollment). Never raises: a failure is logged and tried again at the next
        call; it never blocks the tunnel."""
        ...

    def sign_posture(self, facts: PostureFacts, nonce: str, device_id: str) -> str:
        """Sign a posture report with the device key."""
        ...

    def wg_private_key(self) -> str:
        """The WireGuard private key (base64), for the helper only."""
        ...


class ControlPort(Protocol):
    """The controller's API."""

    async def posture_nonce(self) -> str:
        """A fresh single-use nonce for the next report."""
        ...

    async def submit_posture(self, token: str) -> None:
        """Send a signed posture report."""
        ...

    async def fetch_bundle(self) -> str:
        """The signed policy bundle (JWS) for this device."""
        ...

    def relay_cert(self) -> str | None:
        """The relay client certificate (PEM) that came with the latest bundle answer
        that had one (None: none yet, or the deployment has no relays)."""
        ...

    def events(self) -> AsyncIterator[ControlEvent]:
        """The live event stream; ends or raises when the connection drops."""
        ...

    async def report_break_glass(self, reason: str) -> None:
        """Tell the controller why always-on was broken."""
        ...

    def clock_skew_s(self) -> float | None:
        """This computer's clock minus the controller's, as last measured (None: unknown)."""
        ...


class PosturePort(Protocol):
    """Posture collection and its watchers."""

    async def collect(self) -> PostureFacts:
        """A full collection (the facts the device signs)."""
        ...

    def start(self, on_change: Callable[[PostureFacts], None]) -> None:
        """Start the scheduler; ``on_change(facts)`` on drift."""
        ...

    async def stop(self) -> None:
        """Stop the scheduler. Idempotent."""
        ...

    def items(self, facts: PostureFacts) -> tuple[PostureItem, ...]:
        """The facts as the UI lists them."""
        ...

    def policy_facts(self, facts: PostureFacts) -> dict[str, object]:
        """The facts as the policy engine names them (``posture.*``)."""
        ...


class PolicyPort(Protocol):
    """The held bundle and decisions."""

    @property
    def decider(self) -> Decider:
        """Decides proxy connections against the held bundle (deny when none)."""
        ...

    def accept(self, token: str, *, device_id: str) -> BundleInfo:
        """Verify and hold a new bundle; raises and keeps the old one when invalid."""
        ...

    def load_cached(self, *, device_id: str) -> BundleInfo | None:
        """Load the last valid bundle from disk if still valid."""
        ...

    def held(self) -> BundleInfo | None:
        """The held bundle, or None (also None once it has expired)."""
        ...

    def clear(self) -> None:
        """Drop the held and cached bundle (revocation, sign-out)."""
        ...

    def set_facts(self, facts: Mapping[str, object]) -> None:
        """Replace the facts decisions are made on."""
        ...

    def resources(self) -> tuple[ResourceView, ...]:
        """Every resource with reachable/blocked and why, for the current facts."""
        ...

    def tunnel_spec(self) -> TunnelSpec | None:
        """The bundle's first tunnel spec (without the private key)."""
        ...

    def tunnel_specs(self) -> tuple[TunnelSpec, ...]:
        """Every gateway's tunnel spec in order: ``tunnel`` then the failover gateways."""
        ...

    def signed(self) -> tuple[str, tuple[str, ...]] | None:
        """The held bundle as signed (JWS) and the endorsements chaining its key to the
        anchors, for a helper that verifies policy itself; None without a bundle."""
        ...

    def pac_targets(self) -> tuple[str, ...]:
        """Hosts and CIDRs the proxy's PAC file lists."""
        ...

    @property
    def trust_notice(self) -> str | None:
        """Set while the signing keys are trusted on first use (no anchors configured)."""
        ...

    def risk(self) -> tuple[int, tuple[str, ...]]:
        """Current risk score and its signals."""
        ...


@dataclass(frozen=True, slots=True)
class SignedTunnel:
    """A tunnel as the helper takes it when it verifies policy itself: the signed bundle
    as the controller sent it, the endorsements that chain its key to the anchors, this
    device's id and the ``profile`` ("tunnel" or "gateway:<n>") to bring up."""

    token: str
    endorsements: tuple[str, ...]
    device_id: str | None
    profile: str


@dataclass(frozen=True, slots=True)
class TunnelPath:
    """The decider's way into the tunnel, once the helper enforces it.

    ``take(family, kind)`` hands out an unconnected socket the helper marked and bound to
    the tunnel (only such sockets may send into it: the kill switch); it raises ``OSError``
    (``NoTunnelSockets``) when there is no tunnel. ``ranges`` are the networks the tunnel
    carries (what the helper redirects and fences); ``transparent`` whether apps'
    connections to them are redirected to the decider.
    """

    interface: str
    ranges: tuple[Network, ...]
    take: Callable[[int, str], socket.socket]
    transparent: bool
    #: drop pooled sockets (the tunnel's interface was replaced)
    flush: Callable[[], None] = lambda: None
    #: the port the helper redirects to, and its listening sockets on it (made and held
    #: by the helper, so no other account can bind the port): the decider serves them
    redirect_port: int | None = None
    listeners: tuple[socket.socket, ...] = ()


class TunnelPort(Protocol):
    """The privileged helper."""

    async def up(
        self,
        spec: TunnelSpec,
        signed: SignedTunnel | None = None,
        *,
        relay_cert: str | None = None,
    ) -> None:
        """Bring the tunnel up (all or nothing). A helper that verifies policy itself
        gets ``signed`` instead of ``spec`` (and adds its own device key).
        ``relay_cert``: the device's relay client certificate (PEM) for the spec's
        relays; a helper without relays never gets it."""
        ...

    async def update(
        self,
        spec: TunnelSpec,
        signed: SignedTunnel | None = None,
        *,
        relay_cert: str | None = None,
    ) -> None:
        """Change the live tunnel in place (peers, routes, DNS, relay certificate): no
        down, the handshake survives. Same interface as the tunnel up; raises like ``up``."""
        ...

    async def enforce(self, redirect_port: int | None) -> TunnelPath | None:
        """Have the helper fence the tunnel (only marked sockets may send into it) and,
        with ``redirect_port``, redirect apps' TCP to its ranges there. None where the
        helper cannot (another OS, an older helper): the proxy then uses the OS's routes."""
        ...

    async def release(self) -> None:
        """Remove the fence and redirect. Idempotent; never raises."""
        ...

    async def down(self, *, break_glass_reason: str | None = None) -> None:
        """Bring it down. Idempotent. Under managed always-on the helper itself refuses
        unless the employee's break-glass reason comes along."""
        ...

    async def status(self) -> TunnelView | None:
        """The tunnel's health, or None when down."""
        ...


class ProxyPort(Protocol):
    """The local policy-checked proxy."""

    async def start(self, port: int, transparent_port: int | None = None) -> str:
        """Listen on loopback (and, with ``transparent_port``, for redirected
        connections); returns "host:port" of the proxy port. Idempotent."""
        ...

    def set_path(self, path: TunnelPath | None, spec: TunnelSpec | None) -> None:
        """Dial only through ``path`` (None: no tunnel, refuse) and resolve company names
        with ``spec``'s DNS servers and suffixes."""
        ...

    async def stop(self) -> None:
        """Close listeners and every relayed connection. Idempotent."""
        ...

    def reevaluate(self) -> None:
        """Re-decide open connections; close those no longer allowed."""
        ...

    def set_pac_targets(self, targets: tuple[str, ...]) -> None:
        """Hosts/CIDRs the PAC file lists."""
        ...
