"""The helper's transport seam: connections, listeners and caller identities.

The server's request handling (``server.HelperServer``) only sees a :class:`Connection`
(``read``/``write``/``close`` plus the caller's ``identity``) handed to it by a
:class:`Listener`. Two listeners exist: :class:`UnixListener` here (Linux and macOS, a
Unix socket, identity from ``SO_PEERCRED`` / ``LOCAL_PEERCRED``) and
``winpipe.NamedPipeListener`` (Windows, a named pipe, identity from the pipe client's
token). Framing, limits, timeouts and authorisation are the same for both because they
live in the server, not here. Nothing in this module imports a Windows-only module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import struct
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "Caller",
    "Connection",
    "ConnectionHandler",
    "Listener",
    "PeerCred",
    "StreamConnection",
    "UnixListener",
    "WindowsCaller",
    "peer_cred",
]


@dataclass(frozen=True, slots=True)
class PeerCred:
    """The OS identity of a Unix-socket caller (``groups``: supplementary, if the OS says)."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WindowsCaller:
    """The identity of a named-pipe caller, read from its (impersonated) access token.

    ``groups`` holds only the *enabled* group SIDs (string form); groups a UAC-filtered
    token carries as deny-only (e.g. Administrators of a non-elevated admin) are in
    ``deny_only`` and never grant anything.
    """

    pid: int
    user_sid: str
    groups: frozenset[str] = frozenset()
    deny_only: frozenset[str] = frozenset()


Caller = PeerCred | WindowsCaller


class Connection(Protocol):
    """One accepted caller. Methods run on the event loop thread."""

    @property
    def identity(self) -> Caller:
        """Who is calling (established before the first byte is read)."""
        ...

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of stream. Raises ``OSError`` on failure."""
        ...

    async def write(self, data: bytes) -> None:
        """Send all of ``data``. Raises ``OSError`` / ``ConnectionError`` on failure."""
        ...

    def close(self) -> None:
        """Close; a pending ``read`` then returns or raises. Idempotent."""
        ...


ConnectionHandler = Callable[[Connection], Awaitable[None]]


class Listener(Protocol):
    """Accepts callers and hands each to the handler. Methods run on the loop thread."""

    @property
    def address(self) -> str:
        """Where it listens (socket path or pipe name), for logs."""
        ...

    async def start(self, handler: ConnectionHandler) -> None:
        """Begin listening. Raises ``OSError`` if the address cannot be taken."""
        ...

    async def serve_forever(self) -> None:
        """Serve until cancelled (``start`` first)."""
        ...

    async def close(self) -> None:
        """Stop accepting (open connections are the server's to close). Idempotent."""
        ...


class StreamConnection:
    """A :class:`Connection` over asyncio streams (the Unix socket; also the client side)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        identity: Caller | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._identity: Caller = identity or PeerCred(-1, -1, -1)

    @property
    def identity(self) -> Caller:
        """The peer's credentials (``PeerCred(-1, -1, -1)`` when unknown)."""
        return self._identity

    @property
    def closing(self) -> bool:
        """Whether ``close`` was called, the transport is closing, or the peer has ended
        the stream (everything it sent has been read): a restarted helper shows here
        without a request having to fail first."""
        return self._writer.is_closing() or self._reader.at_eof()

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of stream."""
        return await self._reader.read(n)

    async def write(self, data: bytes) -> None:
        """Write and drain."""
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        """Close the transport. Idempotent."""
        self._writer.close()

    async def send_fds(self, data: bytes, fds: Sequence[int]) -> None:
        """Send ``data`` with ``fds`` attached (``SCM_RIGHTS``; Unix sockets only).

        The stream's buffer is drained to empty first, so the descriptors travel with the
        first byte of ``data`` and the peer finds them on the frame they belong to.
        Raises ``OSError`` / ``ConnectionError``.
        """
        transport = self._writer.transport
        transport.set_write_buffer_limits(high=0)  # drain() now waits until it is empty
        await self._writer.drain()
        raw = self._writer.get_extra_info("socket")
        if raw is None:
            raise ConnectionError("no socket to pass descriptors on")
        fd = raw.fileno()
        loop = asyncio.get_running_loop()
        sock = socket.socket(fileno=os.dup(fd))  # ours to close; the transport keeps its own
        try:
            while True:
                try:
                    sent = socket.send_fds(sock, [data], list(fds))
                    break
                except BlockingIOError:
                    ready: asyncio.Future[None] = loop.create_future()
                    loop.add_writer(fd, ready.set_result, None)
                    try:
                        await ready
                    finally:
                        loop.remove_writer(fd)
        finally:
            sock.close()
        if sent < len(data):
            await self.write(data[sent:])

    async def wait_closed(self) -> None:
        """Wait until the transport is closed; never raises for an already broken one."""
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()


_SOL_LOCAL, _LOCAL_PEERCRED, _LOCAL_PEERPID = 0, 1, 2  # macOS <sys/un.h>
_XUCRED = struct.Struct("=IIh2x16I")  # struct xucred: version, uid, ngroups, groups[16]
_XUCRED_VERSION = 0


class _SockOpt(Protocol):
    def getsockopt(self, level: int, option: int, buflen: int, /) -> bytes: ...


def peer_cred(sock: _SockOpt, platform: str = sys.platform) -> PeerCred:
    """The peer's identity: ``SO_PEERCRED`` (Linux) or ``LOCAL_PEERCRED`` (macOS).

    ``platform`` exists so the macOS path can be tested anywhere with a fake socket.
    Raises ``OSError`` (the OS refused; also for a malformed/unknown-version ``xucred``)
    or ``AttributeError`` on an OS with neither option.
    """
    if platform == "darwin":
        raw = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, _XUCRED.size)
        if len(raw) < _XUCRED.size:
            raise OSError(f"LOCAL_PEERCRED returned {len(raw)} bytes, expected {_XUCRED.size}")
        version, uid, ngroups, *groups = _XUCRED.unpack(raw[: _XUCRED.size])
        if version != _XUCRED_VERSION:
            raise OSError(f"unknown xucred version {version}")
        pid_raw = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERPID, 4)
        gids = tuple(groups[: max(0, min(ngroups, 16))])
        # cr_groups[0] is the effective gid (BSD convention); the rest are supplementary.
        return PeerCred(struct.unpack("=i", pid_raw[:4])[0], uid, gids[0] if gids else -1, gids)
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCred(pid, uid, gid)


class UnixListener:
    """A Unix stream socket: directory 0755, socket ``mode`` (0660) ``root:<gid>``.

    The socket is bound, chowned and chmodded inside a fresh private (0700) directory
    next to its final path and only then renamed into place, so no ``chown``/``chmod``
    ever acts on a path someone else could swap for a symlink; ``rename`` replaces a
    symlink planted at the path instead of following it. ``mode`` 0666 (used with
    ``--allow-uid``) lets uids outside the group connect; the server's peer check then
    decides alone.
    """

    def __init__(self, path: Path, gid: int | None = None, *, mode: int = 0o660) -> None:
        self.path = path
        self._gid = gid
        self._mode = mode
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> str:
        """The socket path."""
        return str(self.path)

    def _bind(self) -> socket.socket:
        path = self.path
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:  # replace a stale socket or a planted symlink, never another kind of file
            if not (stat.S_ISSOCK(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise OSError(f"{path} exists and is not a socket")
        private = Path(tempfile.mkdtemp(prefix=".helper-sock.", dir=path.parent))  # 0700
        tmp = private / "s"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)  # born 0600 until chowned
            try:
                sock.bind(str(tmp))
            finally:
                os.umask(old)
            os.chown(tmp, 0, self._gid if self._gid is not None else 0, follow_symlinks=False)
            os.chmod(tmp, self._mode)  # in a 0700 directory of ours: nothing to swap
            os.rename(tmp, path)
            sock.listen(128)
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            with contextlib.suppress(OSError):
                private.rmdir()
        return sock

    async def start(self, handler: ConnectionHandler) -> None:
        """Bind (see the class docstring) and listen. Raises ``OSError``."""

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                cred = peer_cred(writer.get_extra_info("socket"))
            except (OSError, AttributeError):
                cred = PeerCred(-1, -1, -1)  # unknown: refused by every rule
            await handler(StreamConnection(reader, writer, cred))

        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(accept, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening and remove the socket file. Idempotent."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
