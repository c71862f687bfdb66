"""The engine's handle on the tunnel: a thin async facade over the helper's IPC client.

The engine never runs WireGuard itself: it passes the bundle's ``TunnelSpec`` (with this
device's private key filled in) to the privileged helper through :class:`TunnelClient`
and keeps the connection open for as long as it wants the tunnel — the helper brings the
tunnel down when that connection ends (app crash included) unless always-on is managed.

Errors (all from ``wg_backends.errors``, base ``WgError``, each with the employee's
words): ``HelperUnavailable`` (no helper, connection lost, timeout: code
``helper_unavailable``), ``HelperRefused`` (the helper runs and said no: code
``helper_refused``, the protocol's reason in ``helper_code``: ``unauthorized``, ``busy``,
``bad_spec``, ``backend``, ``not_up``, ...), ``SpecError`` (invalid spec or key, raised
before anything is sent), ``ProtocolError``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wg_backends.errors import HelperRefused, ProtocolError, TunnelStateError
from wg_backends.helper.client import DEFAULT_SOCKET, HelperClient
from wg_backends.helper.protocol import PROTOCOL_VERSION
from wg_backends.helper.sockpool import MarkedSockets
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus

__all__ = [
    "DEFAULT_SOCKET",
    "HELPER_SOCKET_ENV",
    "Enforcement",
    "HelperInfo",
    "MarkedSockets",
    "TunnelClient",
    "TunnelSpec",
    "TunnelStatus",
    "helper_socket",
]


@dataclass(frozen=True, slots=True)
class HelperInfo:
    """What ``hello`` tells about the helper."""

    helper: str
    version: str
    protocol: int
    backend: str
    #: this account's WireGuard public key as the helper keeps it (None: an older helper)
    device_key: str | None = None
    #: the helper takes only signed bundles (the organisation's trust anchors are managed)
    signed_policy: bool = False
    #: this account's relay key (base64url of the raw Ed25519 public key) as the helper
    #: keeps it: the controller issues the relay client certificate to it (issue 21).
    #: None: a helper without relays, which must not be sent a certificate either
    relay_key: str | None = None


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What the helper enforces for the owned tunnel: the ``mark`` of the decider's own
    sockets, the ``ranges`` (the tunnel's AllowedIPs, from the helper's record) whose
    traffic other than the decider's is rejected, and the ``redirect_port`` of the
    transparent listeners the helper holds (the owner's TCP to the ranges goes there;
    take them with ``MarkedSockets.listeners()``), ``None`` for the kill switch only."""

    mark: int
    ranges: tuple[str, ...]
    redirect_port: int | None = None


#: Environment variable naming the helper's socket (test beds, non-default installs).
HELPER_SOCKET_ENV = "RUSTRONAUT_HELPER_SOCKET"


def helper_socket(option: Path | None = None) -> Path:
    """The helper socket: ``option``, else ``$RUSTRONAUT_HELPER_SOCKET`` (empty counts as
    unset), else the default. The engine and ``rustronaut tunnel`` both use this rule,
    so the CLI talks to the helper the running engine uses."""
    return option or Path(os.environ.get(HELPER_SOCKET_ENV) or DEFAULT_SOCKET)


def _cert(relay_cert: str | None) -> dict[str, str]:
    """The ``relay_cert`` keyword, only when there is one: a request without it is the
    one every helper understands (an older one refuses unknown fields)."""
    return {} if relay_cert is None else {"relay_cert": relay_cert}


class TunnelClient:
    """One tunnel through the helper. Methods run on the engine's event loop; not reentrant.

    ``up`` makes this client the tunnel's owner; ``down`` and ``close`` give it up.
    """

    def __init__(
        self,
        socket_path: Path = DEFAULT_SOCKET,
        *,
        timeout: float = 30.0,
        client: HelperClient | None = None,
    ) -> None:
        self._client = client or HelperClient(socket_path, timeout=timeout)
        self._interface: str | None = None

    @property
    def interface(self) -> str | None:
        """The interface this client brought up and has not brought down, if any."""
        return self._interface

    async def hello(self) -> HelperInfo:
        """Connect and check the helper speaks our protocol. Raises ``ProtocolError`` if not."""
        raw = await self._client.hello()
        info = HelperInfo(
            helper=str(raw.get("helper", "")),
            version=str(raw.get("version", "")),
            protocol=int(raw.get("protocol", 0)),
            backend=str(raw.get("backend", "")),
            device_key=key if isinstance(key := raw.get("device_key"), str) else None,
            signed_policy=raw.get("signed_policy") is True,
            relay_key=key if isinstance(key := raw.get("relay_key"), str) else None,
        )
        if info.protocol != PROTOCOL_VERSION:
            raise ProtocolError(f"helper speaks protocol {info.protocol}, we need 1")
        return info

    async def up(self, spec: TunnelSpec, *, relay_cert: str | None = None) -> TunnelStatus:
        """Bring ``spec`` up (private key required) and keep owning it. All-or-nothing.

        Bringing up a different interface first brings the current one down.
        ``relay_cert``: this account's relay client certificate (PEM) for the spec's
        relays; only for a helper that answers a ``relay_key`` in ``hello``.
        """
        spec.validate(require_private_key=True)
        if self._interface is not None and self._interface != spec.interface:
            await self.down()
        status = await self._client.up(spec, **_cert(relay_cert))
        self._interface = spec.interface
        return status

    async def up_bundle(
        self,
        bundle: str,
        profile: str,
        *,
        endorsements: Sequence[str] = (),
        device_id: str | None = None,
        relay_cert: str | None = None,
    ) -> TunnelStatus:
        """Bring up the tunnel of ``profile`` from the signed ``bundle``: the helper
        verifies it with the organisation's anchors and adds this account's device key
        (see ``HelperClient.up_bundle``). Keeps owning it, like :meth:`up`."""
        status = await self._client.up_bundle(
            bundle, profile, endorsements=endorsements, device_id=device_id, **_cert(relay_cert)
        )
        self._interface = status.interface
        return status

    async def update_bundle(
        self,
        bundle: str,
        profile: str,
        *,
        endorsements: Sequence[str] = (),
        device_id: str | None = None,
        relay_cert: str | None = None,
    ) -> TunnelStatus:
        """:meth:`update` with the spec of ``profile`` in the signed ``bundle``."""
        self._owned()
        return await self._client.update_bundle(
            bundle, profile, endorsements=endorsements, device_id=device_id, **_cert(relay_cert)
        )

    async def down(self, *, break_glass_reason: str | None = None) -> None:
        """Bring the owned tunnel down. Idempotent (no tunnel, or already gone: no error).

        Under managed always-on the helper refuses unless ``break_glass_reason`` (the
        employee's reason, logged by the helper) is given: ``HelperRefused`` (always_on).
        """
        interface, self._interface = self._interface, None
        if interface is None:
            return
        try:
            await self._client.down(interface, break_glass_reason=break_glass_reason)
        except HelperRefused as exc:
            if exc.helper_code != "not_up":
                self._interface = interface
                raise

    def _owned(self) -> str:
        if self._interface is None:
            raise TunnelStateError("no tunnel is up through this client")
        return self._interface

    async def update(self, spec: TunnelSpec, *, relay_cert: str | None = None) -> TunnelStatus:
        """Apply ``spec`` to the owned tunnel without taking it down (the handshake
        survives; enforcement follows the new ranges). ``spec.interface`` must be the owned
        interface, else ``TunnelStateError``; ``HelperRefused`` (``unsupported``) when the
        backend cannot update in place — the caller then falls back to ``up``."""
        spec.validate(require_private_key=True)
        if spec.interface != self._owned():
            raise TunnelStateError(
                f"update of {spec.interface} but this client owns {self._interface}"
            )
        return await self._client.update(spec, **_cert(relay_cert))

    async def enforce(
        self, redirect_port: int | None, *, block_when_down: bool = False
    ) -> Enforcement:
        """Kill switch for the owned tunnel and, with ``redirect_port``, transparent mode:
        the helper opens and holds listeners at that port (another free one when it is
        taken: ``Enforcement.redirect_port`` says which) and redirects the owner's TCP to
        the ranges there. The decider must serve the helper's listeners
        (``marked_sockets().listeners()`` → ``ProxyThread.adopt_transparent``), never bind
        the port itself. ``None``: the kill switch only (transparent mode off). Raises
        ``TunnelStateError`` without a tunnel, ``HelperRefused`` (``unsupported`` on an OS
        or backend that cannot enforce)."""
        result = await self._client.enforce(
            self._owned(), redirect_port, block_when_down=block_when_down
        )
        port = result.get("redirect_port")
        return Enforcement(
            mark=int(result["mark"]),
            ranges=tuple(result["ranges"]),
            redirect_port=port if isinstance(port, int) else None,
        )

    async def release(self) -> None:
        """Remove the owned tunnel's enforcement (the tunnel stays). No tunnel: no-op."""
        if self._interface is not None:
            await self._client.release(self._interface)

    def marked_sockets(self, *, batch: int = 64, low: int = 16) -> MarkedSockets:
        """A pool of the owned tunnel's marked sockets (its own helper connection; close
        it when done). Raises ``TunnelStateError`` without a tunnel."""
        return MarkedSockets(self._client.socket_path, self._owned(), batch=batch, low=low)

    async def status(self) -> TunnelStatus:
        """Live status of the owned tunnel; ``up=False`` (backend "") when there is none."""
        if self._interface is None:
            return TunnelStatus(interface="", up=False, backend="")
        return await self._client.status(self._interface)

    async def close(self) -> None:
        """Drop the connection; the helper then removes the tunnel unless always-on. Idempotent."""
        self._interface = None
        await self._client.close()
