"""The unprivileged side's asyncio client of the helper.

One :class:`HelperClient` holds one connection: a Unix socket on Linux/macOS, the named
pipe ``\\\\.\\pipe\\rustronaut-helper`` on Windows (``winpipe``; or anywhere when a
``pipe_api`` is injected, as the tests do). Keep it open while a tunnel is wanted:
the helper treats the connection that brought a tunnel up as its owner and brings the
tunnel down when that connection ends (unless always-on is managed). Requests on one
client are serialised; each has a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from wg_backends.errors import HelperRefused, HelperUnavailable, ProtocolError
from wg_backends.helper import protocol as p
from wg_backends.helper.transport import StreamConnection
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus

if TYPE_CHECKING:
    from wg_backends.helper.winpipe import PipeApi, PipeConnection

__all__ = ["DEFAULT_SOCKET", "HelperClient"]


DEFAULT_SOCKET = Path("/run/rustronaut/helper.sock")


class HelperClient:
    """Async client. Use ``async with HelperClient(path) as c:`` or ``connect()``/``close()``.

    Every method must be awaited on the loop that connected. Raises
    :class:`HelperUnavailable` (cannot connect, connection lost, timeout),
    :class:`HelperRefused` (the helper's error answer), :class:`ProtocolError`.
    """

    def __init__(
        self,
        socket_path: Path = DEFAULT_SOCKET,
        *,
        timeout: float = 30.0,
        pipe_name: str | None = None,
        pipe_api: PipeApi | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        # Windows (or an injected pipe API): the pipe; ``socket_path`` is then unused.
        self._use_pipe = pipe_api is not None or sys.platform == "win32"
        self.pipe_name = pipe_name
        self._pipe_api = pipe_api
        self._conn: StreamConnection | PipeConnection | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._decoder = p.FrameDecoder()

    @property
    def connected(self) -> bool:
        """Whether a connection is open. Turns ``False`` by itself once the helper has
        closed it (helper stopped or restarted; Unix socket), so a caller can poll it
        cheaply to notice a restart and bring its tunnel up again."""
        return self._conn is not None and not self._conn.closing

    @property
    def address(self) -> str:
        """The socket path or pipe name this client connects to."""
        if self._use_pipe:
            from wg_backends.helper.winpipe import PIPE_NAME

            return self.pipe_name or PIPE_NAME
        return str(self.socket_path)

    async def _open(self) -> StreamConnection | PipeConnection:
        if self._use_pipe:
            from wg_backends.helper.winpipe import open_pipe

            return await open_pipe(self.address, self._pipe_api, self.timeout)
        reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        return StreamConnection(reader, writer)

    async def connect(self) -> None:
        """Open the connection. Idempotent. Raises :class:`HelperUnavailable`."""
        if self.connected:
            return
        try:
            self._conn = await asyncio.wait_for(self._open(), self.timeout)
        except (OSError, TimeoutError, ImportError) as exc:
            raise HelperUnavailable(f"helper not reachable at {self.address}: {exc}") from None
        self._decoder = p.FrameDecoder()

    async def close(self) -> None:
        """Close the connection (the helper then drops tunnels this client owns). Idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def __aenter__(self) -> HelperClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(self, msg: p.Request) -> dict[str, Any]:
        async with self._lock:
            await self.connect()
            assert self._conn is not None
            try:
                await self._conn.write(p.encode(msg))
                reply = await asyncio.wait_for(self._read_reply(), self.timeout)
            except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
                await self.close()
                raise HelperUnavailable(f"lost the helper: {exc or type(exc).__name__}") from None
            except ProtocolError:
                await self.close()
                raise
        if isinstance(reply, p.ErrorReply):
            raise HelperRefused(reply.code, reply.message)
        if reply.id != msg.id:
            raise ProtocolError(f"reply id {reply.id} does not match request {msg.id}")
        return reply.result

    async def _read_reply(self) -> p.Reply:
        assert self._conn is not None
        while True:
            for body in self._decoder.feed(b""):
                return p.decode_reply(body)
            data = await self._conn.read(65536)
            if not data:
                raise ConnectionError("helper closed the connection")
            for body in self._decoder.feed(data):
                return p.decode_reply(body)

    async def hello(self) -> dict[str, Any]:
        """The helper's identity: ``helper``, ``version``, ``protocol``, ``backend``,
        ``uid`` (``sid`` on Windows), ``device_key``: this account's WireGuard public
        key, kept by the helper (None if it cannot be used; older helpers omit it), and
        ``signed_policy``: True when the helper takes only signed bundles (managed trust
        anchors: use :meth:`up_bundle`), False when it takes a caller-built spec."""
        return await self._request(p.Hello(id=next(self._ids)))

    async def device_key(self) -> str:
        """This account's WireGuard public key (base64) as the helper keeps it: the key
        to enroll the device with when tunnels come from signed bundles. Raises
        :class:`ProtocolError` if the helper has none to give (older or broken)."""
        key = (await self.hello()).get("device_key")
        if not isinstance(key, str):
            raise ProtocolError("the helper answered no device key")
        return key

    async def up_bundle(
        self,
        bundle: str,
        profile: str,
        *,
        endorsements: Sequence[str] = (),
        device_id: str | None = None,
        relay_cert: str | None = None,
    ) -> TunnelStatus:
        """Bring up the tunnel of ``profile`` (``"tunnel"`` or ``"gateway:<n>"``, see
        ``wg_backends.helper.bundles.profile_for``) from the signed policy ``bundle``
        (the JWS compact string as the controller sent it), relaying ``endorsements``
        (the controller's key endorsement statements). The helper verifies the bundle
        with the organisation's anchors and adds this account's device key; this
        connection owns the tunnel.

        Raises :class:`HelperRefused`: ``bad_bundle`` (signature, anchors, canonical form,
        expiry, device, rollback, profile — the message says which), ``bad_spec`` (routes),
        ``busy``, ``not_owner``, ``backend``.

        ``relay_cert``: the controller's client certificate (PEM) for this account's relay
        key (``hello``'s ``relay_key``), used when UDP is blocked and the spec lists relays.
        """
        return await self._signed(p.Up, bundle, profile, endorsements, device_id, relay_cert)

    async def update_bundle(
        self,
        bundle: str,
        profile: str,
        *,
        endorsements: Sequence[str] = (),
        device_id: str | None = None,
        relay_cert: str | None = None,
    ) -> TunnelStatus:
        """Like :meth:`update` with the spec of ``profile`` in the signed ``bundle``
        (verified by the helper, as :meth:`up_bundle`); the tunnel stays up."""
        return await self._signed(p.Update, bundle, profile, endorsements, device_id, relay_cert)

    async def _signed(
        self,
        kind: type[p.Up] | type[p.Update],
        bundle: str,
        profile: str,
        endorsements: Sequence[str],
        device_id: str | None,
        relay_cert: str | None,
    ) -> TunnelStatus:
        fields: dict[str, Any] = {"bundle": bundle, "profile": profile}
        if endorsements:
            fields["endorsements"] = tuple(endorsements)
        if device_id is not None:
            fields["device_id"] = device_id
        if relay_cert is not None:
            fields["relay_cert"] = relay_cert
        result = await self._request(kind(id=next(self._ids), **fields))
        return msgspec.convert(result["status"], TunnelStatus)

    async def up(self, spec: TunnelSpec, *, relay_cert: str | None = None) -> TunnelStatus:
        """Bring ``spec`` up (must carry the private key); this connection owns it.
        ``relay_cert``: as for :meth:`up_bundle`."""
        msg = p.Up(id=next(self._ids), spec=spec)
        if relay_cert is not None:
            msg = p.Up(id=msg.id, spec=spec, relay_cert=relay_cert)
        result = await self._request(msg)
        return msgspec.convert(result["status"], TunnelStatus)

    async def down(self, interface: str, *, break_glass_reason: str | None = None) -> None:
        """Bring ``interface`` down.

        Under managed always-on the helper refuses a plain ``down`` (``always_on``): pass
        the employee's ``break_glass_reason`` to use the break-glass path (the helper logs
        it). Raises :class:`HelperRefused`: ``not_up`` if unknown, ``not_owner`` if another
        account brought it up, ``always_on``, ``bad_request`` for an empty reason.
        """
        if break_glass_reason is None:
            msg = p.Down(id=next(self._ids), interface=interface)
        else:
            msg = p.Down(
                id=next(self._ids), interface=interface, break_glass=True, reason=break_glass_reason
            )
        await self._request(msg)

    async def update(self, spec: TunnelSpec, *, relay_cert: str | None = None) -> TunnelStatus:
        """Apply ``spec`` to its (owned) tunnel without taking it down; the new status.

        Raises :class:`HelperRefused`: ``not_up``, ``not_owner``, ``bad_spec``,
        ``unsupported`` (the backend cannot update in place), ``backend``.
        ``relay_cert``: as for :meth:`up_bundle`.
        """
        msg = p.Update(id=next(self._ids), spec=spec)
        if relay_cert is not None:
            msg = p.Update(id=msg.id, spec=spec, relay_cert=relay_cert)
        result = await self._request(msg)
        return msgspec.convert(result["status"], TunnelStatus)

    async def enforce(
        self, interface: str, redirect_port: int | None, *, block_when_down: bool = False
    ) -> dict[str, Any]:
        """Enforce ``interface``: only sockets with the returned ``mark`` may use the
        tunnel (the kill switch) and, with a ``redirect_port``, the owner's TCP to its
        ranges goes to the transparent listeners the helper holds on loopback (at that
        port, or another free one when it is taken: the answer's ``redirect_port``).
        Returns ``{"mark": int, "ranges": [cidr, ...], "redirect_port": int | None}``
        (ranges from the helper's own record). Raises :class:`HelperRefused`
        (``not_up``, ``not_owner``, ``unsupported``, ...)."""
        msg = p.Enforce(id=next(self._ids), interface=interface, redirect_port=redirect_port)
        if block_when_down:
            msg = p.Enforce(
                id=msg.id, interface=interface, redirect_port=redirect_port, block_when_down=True
            )
        result = await self._request(msg)
        mark, ranges = result.get("mark"), result.get("ranges")
        if type(mark) is not int or not isinstance(ranges, list):
            raise ProtocolError("enforce answer lacks mark/ranges")
        port = result.get("redirect_port")
        if redirect_port is None and port is not None:
            raise ProtocolError("enforce answer redirects although no redirect was asked")
        if redirect_port is not None and not (type(port) is int and 1 <= port <= 65535):
            raise ProtocolError("enforce answer lacks the redirect port really used")
        return {"mark": mark, "ranges": [str(r) for r in ranges], "redirect_port": port}

    async def install_update(self, manifest: str) -> dict[str, Any]:
        """Ask the helper to install the release the signed update ``manifest`` names.

        The helper verifies it with its own managed keys, downloads and re-checks the
        installer and starts it detached; the answer (``version``, ``platform``, ``argv``)
        means "verified and started". Refusals raise with an ``update_*`` code."""
        return await self._request(p.InstallUpdate(id=next(self._ids), manifest=manifest))

    async def release(self, interface: str) -> None:
        """Remove ``interface``'s enforcement (the tunnel stays up)."""
        await self._request(p.Release(id=next(self._ids), interface=interface))

    async def status(self, interface: str) -> TunnelStatus:
        """Live status of ``interface`` (``up=False`` if the helper has no such tunnel)."""
        result = await self._request(p.Status(id=next(self._ids), interface=interface))
        return msgspec.convert(result["status"], TunnelStatus)
