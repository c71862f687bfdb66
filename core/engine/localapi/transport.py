"""Where the local API listens and how both ends open it, per OS.

- Linux/macOS: a Unix stream socket ``engine.sock`` in ``$XDG_RUNTIME_DIR/rustronaut/``
  (directory 0700, socket 0600); without ``XDG_RUNTIME_DIR``, ``/tmp/rustronaut-<uid>/``,
  refused when that directory is not ours or is open to the group or others (another
  user could have made it first). The server admits a caller only when its uid from the
  kernel (``SO_PEERCRED`` / ``LOCAL_PEERCRED``) is ours; the client checks the same of
  the server, so neither talks to another user's process.
- Windows: the named pipe ``\\\\.\\pipe\\rustronaut-agent-<user SID>`` whose DACL
  (:func:`same_user_sddl`) grants only the user's own SID and denies network logons; the
  server also compares each caller's token user with its own. The pipe plumbing is the
  helper's (``wg_backends.helper.winpipe``), reached through its injectable ``PipeApi``.

The engine lock file (``engine.lock``) sits beside the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from core.engine.localapi.errors import EngineNotRunningError, LocalApiError
from core.i18n import QT_TRANSLATE_NOOP
from wg_backends.helper.transport import (
    Caller,
    Connection,
    ConnectionHandler,
    PeerCred,
    StreamConnection,
    WindowsCaller,
    peer_cred,
)

__all__ = [
    "PIPE_PREFIX",
    "SOCKET_NAME",
    "UnixApiListener",
    "UnixConnection",
    "UnsafeDirectoryError",
    "default_lock_path",
    "default_socket_path",
    "open_client",
    "pipe_name",
    "runtime_dir",
    "same_user_sddl",
    "secure_dir",
]

SOCKET_NAME: Final = "engine.sock"
LOCK_NAME: Final = "engine.lock"
PIPE_PREFIX: Final = r"\\.\pipe\rustronaut-agent-"
_SID = re.compile(r"S-1-\d{1,13}(-\d{1,10}){1,15}")


class UnsafeDirectoryError(LocalApiError):
    """The runtime directory is not private to this user (someone else could reach it)."""

    title = QT_TRANSLATE_NOOP("core.engine.localapi.transport", "Unsafe runtime directory")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.localapi.transport",
        "Remove the directory named here (it is not yours or is open to others) or set "
        "XDG_RUNTIME_DIR, then try again.",
    )
    code = "internal"


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/rustronaut``, else ``/tmp/rustronaut-<uid>`` (not created).

    Windows (lock file only; the API is a named pipe): ``%LOCALAPPDATA%\\Rustronaut\\run``,
    private to the user by the profile's own ACL.
    """
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "Rustronaut" / "run"
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "rustronaut"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(f"/tmp/rustronaut-{uid}")  # noqa: S108 - checked by secure_dir before use


def default_socket_path() -> Path:
    """The local API's socket: ``<runtime dir>/engine.sock``."""
    return runtime_dir() / SOCKET_NAME


def default_lock_path(socket_path: Path | None = None) -> Path:
    """The engine lock file, beside the socket."""
    return (socket_path or default_socket_path()).parent / LOCK_NAME


def secure_dir(path: Path, *, create: bool = True) -> Path:
    """Make sure ``path`` is a directory of ours that only we can enter (0700).

    Created 0700 when missing (and ``create``). An existing one must be a real directory
    (not a symlink), owned by our uid and without group/other permissions; otherwise
    :class:`UnsafeDirectoryError` (never chmod'ed into shape: it might be another user's).
    Raises ``FileNotFoundError`` when missing and not ``create``.
    """
    if create:
        with contextlib.suppress(FileExistsError):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectoryError(f"{path} is not a directory")
    if sys.platform == "win32":
        return path  # modes mean nothing there: the user profile's ACL keeps it private
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UnsafeDirectoryError(f"{path} belongs to uid {st.st_uid}, not to you")
    if st.st_mode & 0o077:
        raise UnsafeDirectoryError(
            f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o})"
        )
    return path


class UnixConnection(StreamConnection):
    """A Unix-socket connection that can also be dropped at once (``abort``)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: Caller
    ) -> None:
        super().__init__(reader, writer, identity)
        self._transport = writer.transport

    def abort(self) -> None:
        """Drop the connection now, discarding unsent data (a peer that stopped reading)."""
        self._transport.abort()


class UnixApiListener:
    """The server's Unix socket: born 0600 in a private directory; callers of our uid only.

    Connections from another uid are closed before a byte is read; ``on_refused`` is told
    (for the log). A stale socket file is replaced; any other kind of file is left alone
    (and ``start`` fails).
    """

    def __init__(
        self,
        path: Path,
        *,
        on_refused: Callable[[Caller], None] | None = None,
        uid: int | None = None,
    ) -> None:
        self.path = path
        self._uid = os.getuid() if uid is None else uid
        self._on_refused = on_refused
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> str:
        """The socket path."""
        return str(self.path)

    async def start(self, handler: ConnectionHandler) -> None:
        """Bind and listen. Raises ``OSError`` / :class:`UnsafeDirectoryError`."""
        secure_dir(self.path.parent)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self.path.unlink()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                cred = peer_cred(writer.get_extra_info("socket"))
            except (OSError, AttributeError):
                cred = PeerCred(-1, -1, -1)  # unknown: refused below
            if cred.uid != self._uid:
                if self._on_refused is not None:
                    self._on_refused(cred)
                writer.close()
                return
            await handler(UnixConnection(reader, writer, cred))

        old = os.umask(0o177)  # the socket is born 0600
        try:
            self._server = await asyncio.start_unix_server(accept, path=str(self.path))
        finally:
            os.umask(old)

    async def close(self) -> None:
        """Stop listening and remove the socket file. Idempotent."""
        if self._server is None:
            return
        self._server.close()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# ------------------------------------------------------------------------------ Windows
def same_user_sddl(user_sid: str) -> str:
    """The agent pipe's security descriptor: only ``user_sid``; network logons denied.

    ``D:P`` (protected: nothing inherited). Full control for the user (the agent runs as
    that user and creates the pipe's further instances); no ACE for SYSTEM,
    Administrators or anyone else. Raises ``ValueError`` for a malformed SID.
    """
    if not _SID.fullmatch(user_sid):
        raise ValueError(f"not a string SID: {user_sid!r}")
    return f"D:P(D;;GA;;;NU)(A;;GA;;;{user_sid})"


def pipe_name(user_sid: str) -> str:
    """The agent's pipe for the user with ``user_sid``."""
    if not _SID.fullmatch(user_sid):
        raise ValueError(f"not a string SID: {user_sid!r}")
    return PIPE_PREFIX + user_sid


def current_user_sid(api: Any = None) -> str:
    """This process's user SID (Windows, pywin32; ``api`` may provide ``user_sid()``)."""
    if api is not None and hasattr(api, "user_sid"):
        return str(api.user_sid())
    import importlib

    sec = importlib.import_module("win32security")
    win32api = importlib.import_module("win32api")
    token = sec.OpenProcessToken(win32api.GetCurrentProcess(), sec.TOKEN_QUERY)
    sid, _attrs = sec.GetTokenInformation(token, sec.TokenUser)
    return str(sec.ConvertSidToStringSid(sid))


class PipeApiListener:
    """The server's named pipe (Windows): same-user DACL and a token check per caller.

    Built on ``wg_backends.helper.winpipe.NamedPipeListener`` (first instance with
    ``FILE_FLAG_FIRST_PIPE_INSTANCE``, remote clients rejected, the caller identified from
    its token after its first bytes), with :func:`same_user_sddl` instead of the helper's
    group ACL.
    """

    def __init__(
        self,
        user_sid: str,
        *,
        api: Any = None,
        name: str | None = None,
        on_refused: Callable[[Caller], None] | None = None,
    ) -> None:
        from wg_backends.helper.winpipe import NamedPipeListener

        self.user_sid = user_sid
        self.sddl = same_user_sddl(user_sid)
        self._on_refused = on_refused
        listener = NamedPipeListener(name or pipe_name(user_sid), group=None, api=api)
        self._listener = listener

    @property
    def address(self) -> str:
        """The pipe name."""
        return self._listener.address

    async def start(self, handler: ConnectionHandler) -> None:
        """Create the first instance with the same-user DACL; start accepting."""
        from wg_backends.helper.winpipe import PyWin32PipeApi

        lst = self._listener
        api = lst._api = lst._api or PyWin32PipeApi.load()
        lst.sddl = self.sddl
        first = await lst._thread(lambda: api.create(lst.name, self.sddl, first=True))

        async def checked(conn: Connection) -> None:
            who = conn.identity
            if not isinstance(who, WindowsCaller) or who.user_sid != self.user_sid:
                if self._on_refused is not None:
                    self._on_refused(who)
                conn.close()
                return
            await handler(conn)

        lst._accepting = asyncio.ensure_future(lst._accept(api, first, checked))

    async def close(self) -> None:
        """Stop accepting. Idempotent."""
        await self._listener.close()


async def open_client(path: Path | None = None, *, pipe_api: Any = None) -> Connection:
    """Connect to the engine's local API. Raises :class:`EngineNotRunningError`.

    Unix: the socket must be in a private directory of ours and the server's uid ours.
    Windows (or when ``pipe_api`` is given): the user's pipe.
    """
    if sys.platform == "win32" or pipe_api is not None:
        from wg_backends.helper.winpipe import open_pipe

        name = str(path) if path is not None else pipe_name(current_user_sid(pipe_api))
        try:
            return await open_pipe(name, pipe_api, wait=2.0)
        except (OSError, ImportError) as exc:
            raise EngineNotRunningError(f"nobody serves {name} ({exc})") from None
    sock = path or default_socket_path()
    try:
        secure_dir(sock.parent, create=False)
        reader, writer = await asyncio.open_unix_connection(str(sock))
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
        raise EngineNotRunningError(f"nobody serves {sock} ({exc.strerror or exc})") from None
    try:
        cred = peer_cred(writer.get_extra_info("socket"))
    except (OSError, AttributeError):
        cred = PeerCred(-1, -1, -1)
    if hasattr(os, "getuid") and cred.uid != os.getuid():
        writer.close()
        raise UnsafeDirectoryError(f"{sock} is served by uid {cred.uid}, not by you")
    return UnixConnection(reader, writer, cred)
