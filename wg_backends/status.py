"""One typed tunnel status for every backend, and the parser of ``wg show <if> dump``.

``wg show <if> dump`` is the same on Linux, macOS and Windows (``wg.exe``): one
tab-separated line for the interface (private key, public key, listen port, fwmark) and
one per peer (public key, preshared key, endpoint, allowed IPs, latest handshake, rx, tx,
keepalive). The parser drops the private and preshared keys at once: they never enter a
status object, a log or an IPC answer.
"""

from __future__ import annotations

import time

import msgspec

from wg_backends.errors import BackendError

__all__ = ["PeerStatus", "RelayHealth", "TransportStatus", "TunnelStatus", "parse_wg_dump"]


class PeerStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One peer's live counters. ``latest_handshake`` is a Unix time, None if never."""

    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int | None
    handshake_age: float | None
    rx_bytes: int
    tx_bytes: int
    persistent_keepalive: int | None


class RelayHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One relay as the helper last measured it (``rtt_ms``/``load`` None: not yet)."""

    name: str
    healthy: bool
    rtt_ms: float | None = None
    load: int | None = None


class TransportStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the tunnel's WireGuard packets travel (issue 21), for a spec with relays.

    ``kind``: ``udp`` (straight to the gateway) or ``relay`` (over the TLS relay named
    ``relay``). ``state``: ``direct``, ``relay``, ``trying`` (a change is being tried) or
    ``no_path`` (neither UDP nor any relay works). ``reason``: why, as a code —
    ``udp_ok``, ``udp_blocked``, ``udp_silent``, ``relay_failed``, ``udp_back``,
    ``no_certificate``, ``relays_down``; ``detail``: English text for logs (the UI
    words it from the code). ``since``: Unix time of the last change.
    """

    kind: str
    state: str
    reason: str
    since: float
    relay: str | None = None
    detail: str = ""
    relays: tuple[RelayHealth, ...] = ()


class TunnelStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A tunnel as a backend sees it. ``up`` False means no such tunnel (other fields empty).

    ``state`` carries a backend's own word for it (e.g. NetworkManager's ``activated``,
    a Windows service's ``RUNNING``) for diagnostics.
    """

    interface: str
    up: bool
    backend: str
    public_key: str | None = None
    listen_port: int | None = None
    peers: tuple[PeerStatus, ...] = ()
    state: str = ""
    #: Set by the helper for a tunnel whose spec has relays (None: plain UDP, no choice).
    transport: TransportStatus | None = None

    @property
    def rx_bytes(self) -> int:
        """Bytes received over all peers."""
        return sum(p.rx_bytes for p in self.peers)

    @property
    def tx_bytes(self) -> int:
        """Bytes sent over all peers."""
        return sum(p.tx_bytes for p in self.peers)

    @property
    def handshake_age(self) -> float | None:
        """Seconds since the most recent handshake with any peer; None if never."""
        ages = [p.handshake_age for p in self.peers if p.handshake_age is not None]
        return min(ages) if ages else None

    @property
    def endpoint(self) -> str | None:
        """The first peer's current endpoint (the gateway), if known."""
        return next((p.endpoint for p in self.peers if p.endpoint), None)


def _int(field: str, value: str) -> int:
    if not value.isdigit():
        raise BackendError(f"wg dump: {field} {value!r} is not a number")
    return int(value)


def parse_wg_dump(
    text: str, *, interface: str, backend: str, now: float | None = None
) -> TunnelStatus:
    """Parse ``wg show <interface> dump`` output. Raises :class:`BackendError` if malformed.

    ``now`` (Unix time) is used to compute handshake ages; defaults to ``time.time()``.
    Pure; callable from any thread.
    """
    now = time.time() if now is None else now
    lines = [ln.rstrip("\r") for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise BackendError("wg dump: empty output")
    head = lines[0].split("\t")
    if len(head) != 4:
        raise BackendError(f"wg dump: interface line has {len(head)} fields, expected 4")
    _private, public, port, _fwmark = head
    peers: list[PeerStatus] = []
    for line in lines[1:]:
        f = line.split("\t")
        if len(f) != 8:
            raise BackendError(f"wg dump: peer line has {len(f)} fields, expected 8")
        pub, _psk, endpoint, allowed, hs, rx, tx, ka = f
        handshake = _int("latest-handshake", hs) or None
        peers.append(
            PeerStatus(
                public_key=pub,
                endpoint=None if endpoint == "(none)" else endpoint,
                allowed_ips=() if allowed == "(none)" else tuple(allowed.split(",")),
                latest_handshake=handshake,
                handshake_age=None if handshake is None else max(0.0, now - handshake),
                rx_bytes=_int("transfer-rx", rx),
                tx_bytes=_int("transfer-tx", tx),
                persistent_keepalive=None if ka == "off" else _int("keepalive", ka),
            )
        )
    return TunnelStatus(
        interface=interface,
        up=True,
        backend=backend,
        public_key=None if public == "(none)" else public,
        listen_port=_int("listen-port", port) if port != "0" else None,
        peers=tuple(peers),
    )
