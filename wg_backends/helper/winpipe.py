"""The helper's Windows transport: a named pipe with a tight ACL and token-based callers.

``\\\\.\\pipe\\rustronaut-helper`` is created by the helper (running as LocalSystem) with
:func:`pipe_sddl`: deny NETWORK logons, full control for SYSTEM and Administrators,
read/write (but **not** ``FILE_CREATE_PIPE_INSTANCE``, so no user can add a squatting
instance) for the local group "Rustronaut Users" and any ``--allow-sid``. The first
instance uses ``FILE_FLAG_FIRST_PIPE_INSTANCE`` so a pre-existing pipe of that name
(someone squatting it before the service started) makes the helper fail to start instead
of sharing the name; every instance uses ``PIPE_REJECT_REMOTE_CLIENTS``. The caller's
identity comes from its token (``ImpersonateNamedPipeClient`` → ``TokenUser`` and
``TokenGroups``, then ``RevertToSelf``), pid from ``GetNamedPipeClientProcessId`` (logs
only); :func:`authorise` decides from that data. Windows allows impersonation only after
the server has read from the pipe, so the listener reads the caller's first bytes
(unparsed), identifies it, and gives the server the connection with those bytes put
back. The framing, limits and timeouts are the server's, identical to the Unix socket.

All Win32 calls go through the small :class:`PipeApi` seam. :class:`PyWin32PipeApi`
implements it with pywin32, imported lazily (only when a Windows listener or client
starts), so this module imports on Linux and everything above the seam is tested there
with a fake. The pipe handles are synchronous; blocking calls run in worker threads and a
pending call is aborted with ``CancelIoEx`` when the connection is closed or times out.

Errors: ``OSError`` (with ``winerror`` when Windows gave one) from the seam; the client
maps them to ``wg_backends.errors.HelperUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from wg_backends.helper.transport import Caller, ConnectionHandler, WindowsCaller

__all__ = [
    "CLIENT_ACCESS",
    "DEFAULT_GROUP",
    "PIPE_NAME",
    "Decision",
    "NamedPipeListener",
    "PipeApi",
    "PipeConnection",
    "PyWin32PipeApi",
    "authorise",
    "caller_from_token",
    "decide",
    "open_pipe",
    "pipe_sddl",
]

_log = logging.getLogger("rustronaut.helper")
T = TypeVar("T")

PIPE_NAME: Final = r"\\.\pipe\rustronaut-helper"
DEFAULT_GROUP: Final = "Rustronaut Users"
SID_SYSTEM: Final = "S-1-5-18"
SID_ADMINISTRATORS: Final = "S-1-5-32-544"
SID_NETWORK: Final = "S-1-5-2"  # present in the token of every network logon

# FILE_GENERIC_READ | FILE_GENERIC_WRITE without FILE_APPEND_DATA (0x4), which on a pipe
# is FILE_CREATE_PIPE_INSTANCE: users may talk to the helper but never add an instance.
CLIENT_ACCESS: Final = 0x0012019B
SE_GROUP_ENABLED: Final = 0x00000004
SE_GROUP_USE_FOR_DENY_ONLY: Final = 0x00000010
ERROR_PIPE_CONNECTED: Final = 535
ERROR_PIPE_BUSY: Final = 231
ERROR_BROKEN_PIPE: Final = 109
ERROR_NO_DATA: Final = 232
ERROR_PIPE_NOT_CONNECTED: Final = 233
ERROR_OPERATION_ABORTED: Final = 995
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: Final = 1063

_SID = re.compile(r"S-1-\d{1,13}(-\d{1,10}){1,15}")
_BUFSIZE = 65536


def _in_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run a blocking Win32 call on its own daemon thread; a future on the running loop.

    Daemon threads (not an executor): a call Windows never completes (a ``ReadFile`` that
    ``CancelIoEx`` could not abort) must not keep the service process from exiting. Calls
    are few (a handful per request), so a thread each is cheap.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not fut.done():
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def work() -> None:
        try:
            result: Any = fn(*args)
            ok = True
        except BaseException as exc:  # handed to the awaiting coroutine
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # loop already closed: nobody waits
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=work, name="helper-pipe", daemon=True).start()
    return fut


def _check_sid(sid: str) -> str:
    if not _SID.fullmatch(sid):
        raise ValueError(f"not a string SID: {sid!r}")
    return sid


def pipe_sddl(group_sid: str | None, allowed_sids: Iterable[str] = ()) -> str:
    """The pipe's security descriptor as SDDL. Raises ``ValueError`` for a malformed SID.

    ``D:P`` (protected DACL, nothing inherited); the deny ACE comes first (canonical
    order). Extra SIDs are sorted so the string is stable.
    """
    aces = ["(D;;GA;;;NU)", "(A;;GA;;;SY)", "(A;;GA;;;BA)"]
    extra = ({_check_sid(group_sid)} if group_sid else set()) | {
        _check_sid(s) for s in allowed_sids
    }
    aces += [f"(A;;0x{CLIENT_ACCESS:08x};;;{sid})" for sid in sorted(extra)]
    return "D:P" + "".join(aces)


def caller_from_token(pid: int, user_sid: str, groups: Iterable[tuple[str, int]]) -> WindowsCaller:
    """A :class:`WindowsCaller` from token data: ``groups`` are ``(sid, attributes)``.

    Only groups with ``SE_GROUP_ENABLED`` and without ``SE_GROUP_USE_FOR_DENY_ONLY``
    count; deny-only ones are kept apart (a non-elevated admin's Administrators group).
    """
    enabled, deny = set(), set()
    for sid, attrs in groups:
        if attrs & SE_GROUP_USE_FOR_DENY_ONLY:
            deny.add(sid)
        elif attrs & SE_GROUP_ENABLED:
            enabled.add(sid)
    return WindowsCaller(pid, user_sid, frozenset(enabled), frozenset(deny))


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorisation answer and why (for the log)."""

    allowed: bool
    reason: str


def decide(caller: Caller, *, group_sid: str | None, allowed_sids: Iterable[str] = ()) -> Decision:
    """Whether a pipe caller may use the helper. Pure; never raises.

    Refused: anything that is not a :class:`WindowsCaller`, an unknown identity, a
    network logon. Allowed: SYSTEM, an *enabled* Administrators group (elevated), the
    configured group (enabled), or a user SID given with ``--allow-sid``.
    """
    if not isinstance(caller, WindowsCaller) or not caller.user_sid:
        return Decision(False, "unknown caller")
    if SID_NETWORK in caller.groups or SID_NETWORK in caller.deny_only:
        return Decision(False, "network logon")
    if caller.user_sid == SID_SYSTEM:
        return Decision(True, "system")
    if SID_ADMINISTRATORS in caller.groups:
        return Decision(True, "administrators")
    if group_sid is not None and group_sid in caller.groups:
        return Decision(True, "group")
    if caller.user_sid in set(allowed_sids):
        return Decision(True, "allowed sid")
    return Decision(False, "not in the helper's group")


def authorise(caller: Caller, *, group_sid: str | None, allowed_sids: Iterable[str] = ()) -> bool:
    """``decide(...).allowed``."""
    return decide(caller, group_sid=group_sid, allowed_sids=allowed_sids).allowed


class PipeApi(Protocol):
    """The Win32 calls the transport needs. Blocking; called from worker threads.

    Every method raises ``OSError`` on failure. Handles are opaque.
    """

    def group_sid(self, name: str) -> str:
        """The string SID of a local group (``LookupAccountName``)."""
        ...

    def create(self, name: str, sddl: str, *, first: bool) -> Any:
        """A new server instance of pipe ``name`` secured by ``sddl``."""
        ...

    def connect(self, handle: Any) -> None:
        """Wait for a client on a server instance (``ConnectNamedPipe``)."""
        ...

    def identify(self, handle: Any) -> WindowsCaller:
        """The connected client's identity from its token."""
        ...

    def read(self, handle: Any, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` when the other end closed."""
        ...

    def write(self, handle: Any, data: bytes) -> None:
        """Write all of ``data``."""
        ...

    def cancel(self, handle: Any) -> None:
        """Abort calls pending on ``handle`` in other threads (``CancelIoEx``). Never raises."""
        ...

    def close(self, handle: Any, *, server: bool) -> None:
        """Disconnect (server side) and close the handle. Never raises."""
        ...

    def open_client(self, name: str, timeout: float) -> Any:
        """Open the client end of pipe ``name``, waiting up to ``timeout`` if busy."""
        ...


class PipeConnection:
    """A :class:`~wg_backends.helper.transport.Connection` over one pipe handle.

    Used by both ends. Calls run in worker threads; ``close`` cancels a pending call
    and the handle is closed once no call is using it. Methods run on the loop thread.
    """

    def __init__(
        self,
        api: PipeApi,
        handle: Any,
        identity: Caller,
        *,
        server: bool,
    ) -> None:
        self._api = api
        self._h = handle
        self._identity = identity
        self._server = server
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False
        self._handle_closed = False
        self._prefetched = b""

    def identify_as(self, identity: Caller, prefetched: bytes) -> None:
        """Set the caller's identity and put back bytes already read (listener only)."""
        self._identity = identity
        self._prefetched = prefetched

    @property
    def identity(self) -> Caller:
        """The caller (server side) or a placeholder (client side)."""
        return self._identity

    @property
    def closing(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise ConnectionResetError("pipe closed")
            self._pending += 1
        try:
            return fn(self._h, *args)
        finally:
            if self._release():
                self._api.close(self._h, server=self._server)

    def _release(self) -> bool:
        """One call finished; True if it was the last user of a closed handle."""
        with self._lock:
            self._pending -= 1
            last = self._closed and self._pending == 0 and not self._handle_closed
            if last:
                self._handle_closed = True
            return last

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        fut = _in_thread(self._call, fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # A timeout (wait_for) or shutdown: abort the blocking call so the handle is
            # free for the next one (synchronous handles serialise their I/O).
            self._api.cancel(self._h)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await fut
            raise

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of stream or after ``close``."""
        if self._prefetched:
            data, self._prefetched = self._prefetched[:n], self._prefetched[n:]
            return data
        try:
            return await self._run(self._api.read, n)
        except OSError:
            if self._closed:
                return b""
            raise

    async def write(self, data: bytes) -> None:
        """Write all of ``data``. Raises ``OSError`` / ``ConnectionError``."""
        await self._run(self._api.write, data)

    def close(self) -> None:
        """Close: cancel a pending call; the handle closes when it returns. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            now = self._pending == 0 and not self._handle_closed
            if now:
                self._handle_closed = True
        if now:
            self._api.close(self._h, server=self._server)
        else:
            self._api.cancel(self._h)

    async def wait_closed(self) -> None:
        """Nothing to wait for beyond ``close`` (kept for the stream-like interface)."""


async def open_pipe(
    name: str = PIPE_NAME, api: PipeApi | None = None, wait: float = 30.0
) -> PipeConnection:
    """Connect to the helper's pipe (client side), waiting up to ``wait`` s while busy.

    Raises ``OSError`` (no such pipe, access denied, busy) or ``ImportError`` (no pywin32).
    """
    api = api or PyWin32PipeApi.load()
    handle = await _in_thread(api.open_client, name, wait)
    return PipeConnection(api, handle, WindowsCaller(-1, ""), server=False)


class NamedPipeListener:
    """The helper's named-pipe listener (see the module docstring).

    ``api`` defaults to :class:`PyWin32PipeApi` (loaded at ``start``). At most
    ``max_connections`` callers at a time; more wait in ``WaitNamedPipe``. A caller must
    send its first bytes within ``first_read_timeout`` seconds (it is identified then).
    Methods run on the loop thread.
    """

    def __init__(
        self,
        name: str = PIPE_NAME,
        *,
        group: str | None = DEFAULT_GROUP,
        allowed_sids: Iterable[str] = (),
        api: PipeApi | None = None,
        max_connections: int = 16,
        first_read_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.group = group
        self.allowed_sids = frozenset(allowed_sids)
        self.group_sid: str | None = None
        self.sddl = ""
        self._api = api
        self._slots = asyncio.Semaphore(max_connections)
        self.first_read_timeout = first_read_timeout
        self._accepting: asyncio.Task[None] | None = None
        self._pending: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def address(self) -> str:
        """The pipe name."""
        return self.name

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    async def _thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await _in_thread(fn, *args)

    async def start(self, handler: ConnectionHandler) -> None:
        """Resolve the group, build the ACL, create the first instance, start accepting.

        Raises ``OSError`` (pipe name taken, unknown group) or ``ImportError`` (no pywin32).
        """
        api = self._api = self._api or PyWin32PipeApi.load()
        if self.group is not None:
            self.group_sid = await self._thread(api.group_sid, self.group)
        self.sddl = pipe_sddl(self.group_sid, self.allowed_sids)
        first = await self._thread(lambda: api.create(self.name, self.sddl, first=True))
        self._accepting = asyncio.ensure_future(self._accept(api, first, handler))

    async def _accept(self, api: PipeApi, handle: Any, handler: ConnectionHandler) -> None:
        while not self._closed:
            await self._slots.acquire()
            try:
                if handle is None:
                    handle = await self._thread(
                        lambda: api.create(self.name, self.sddl, first=False)
                    )
                self._pending = handle
                await self._thread(api.connect, handle)
            except (OSError, asyncio.CancelledError) as exc:
                self._slots.release()
                if handle is not None:
                    api.close(handle, server=True)
                if self._closed or isinstance(exc, asyncio.CancelledError):
                    return
                _log.error("named pipe accept failed: %s", exc)
                await asyncio.sleep(0.5)  # do not spin on a persistent error
                handle = None
                continue
            finally:
                self._pending = None
            if self.closed:  # woken by close(): no new connection now
                self._slots.release()
                api.close(handle, server=True)
                return
            task = asyncio.ensure_future(self._serve(api, handle, handler))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            handle = None

    async def _serve(self, api: PipeApi, handle: Any, handler: ConnectionHandler) -> None:
        conn = PipeConnection(api, handle, WindowsCaller(-1, ""), server=True)
        try:
            # Windows lets a server impersonate its pipe client only after reading from
            # the pipe (ERROR_CANNOT_IMPERSONATE): read the first bytes (not parsed), then
            # identify, then hand the connection with those bytes put back to the server,
            # which authorises before decoding anything.
            try:
                first = await asyncio.wait_for(conn.read(_BUFSIZE), self.first_read_timeout)
            except (OSError, TimeoutError) as exc:
                _log.info("pipe client sent nothing (%s); dropped", type(exc).__name__)
                return
            if not first:
                return
            try:
                identity: Caller = await self._thread(api.identify, handle)
            except OSError as exc:  # cannot tell who it is: refused by every rule
                _log.warning("cannot identify pipe client: %s", exc)
                identity = WindowsCaller(-1, "")
            conn.identify_as(identity, first)
            await handler(conn)
        finally:
            conn.close()
            self._slots.release()

    async def serve_forever(self) -> None:
        """Serve until cancelled or closed."""
        assert self._accepting is not None, "start() first"
        await asyncio.shield(self._accepting)

    async def close(self) -> None:
        """Stop accepting; connections are closed by the server. Idempotent."""
        if self._closed:
            return
        self._closed = True
        api = self._api
        pending = self._pending
        if api is not None and pending is not None:
            api.cancel(pending)  # unblocks ConnectNamedPipe in its worker thread
        if self._accepting is not None and pending is None:
            # Not blocked in ConnectNamedPipe (waiting for a free slot, or between calls).
            self._accepting.cancel()
        if self._accepting is not None:
            done, _ = await asyncio.wait({self._accepting}, timeout=2)
            if not done and api is not None:
                # The cancel did not reach ConnectNamedPipe: complete it by connecting to
                # our own pipe (the loop then sees _closed and drops that connection).
                with contextlib.suppress(Exception):
                    own = await asyncio.wait_for(_in_thread(api.open_client, self.name, 1.0), 3)
                    api.close(own, server=False)
                done, _ = await asyncio.wait({self._accepting}, timeout=3)
            if not done:
                self._accepting.cancel()


class PyWin32PipeApi:
    """:class:`PipeApi` with pywin32 (``pywin32>=306``). Windows only; not run on Linux.

    ``modules`` maps ``win32pipe``, ``win32file``, ``win32security``, ``win32api``,
    ``pywintypes`` to the modules (injected in tests).
    """

    def __init__(self, modules: dict[str, Any]) -> None:
        self.m = modules

    @classmethod
    def load(cls) -> PyWin32PipeApi:
        """Import pywin32. Raises ``ImportError`` when it is missing (not Windows)."""
        import importlib

        names = ("win32pipe", "win32file", "win32security", "win32api", "pywintypes")
        return cls({n: importlib.import_module(n) for n in names})

    def _oserror(self, exc: Any) -> OSError:
        winerror = getattr(exc, "winerror", None)
        err = OSError(f"{getattr(exc, 'funcname', '')}: {getattr(exc, 'strerror', exc)}")
        err.winerror = winerror  # type: ignore[attr-defined]
        return err

    def _wrap(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except self.m["pywintypes"].error as exc:
            raise self._oserror(exc) from None

    def group_sid(self, name: str) -> str:
        """``LookupAccountName`` on the local machine."""
        sec = self.m["win32security"]
        sid, _domain, _kind = self._wrap(sec.LookupAccountName, None, name)
        return str(sec.ConvertSidToStringSid(sid))

    def create(self, name: str, sddl: str, *, first: bool) -> Any:
        """``CreateNamedPipe``: duplex byte pipe, remote clients rejected."""
        pipe, sec, f = self.m["win32pipe"], self.m["win32security"], self.m["win32file"]
        sa = sec.SECURITY_ATTRIBUTES()
        sa.SECURITY_DESCRIPTOR = self._wrap(
            sec.ConvertStringSecurityDescriptorToSecurityDescriptor, sddl, sec.SDDL_REVISION_1
        )
        first_flag = getattr(f, "FILE_FLAG_FIRST_PIPE_INSTANCE", 0x00080000)
        mode = pipe.PIPE_ACCESS_DUPLEX | (first_flag if first else 0)
        kind = pipe.PIPE_TYPE_BYTE | pipe.PIPE_READMODE_BYTE | pipe.PIPE_WAIT
        kind |= 0x00000008  # PIPE_REJECT_REMOTE_CLIENTS (not exported by every pywin32)
        return self._wrap(
            pipe.CreateNamedPipe,
            name,
            mode,
            kind,
            pipe.PIPE_UNLIMITED_INSTANCES,
            _BUFSIZE,
            _BUFSIZE,
            0,
            sa,
        )

    def connect(self, handle: Any) -> None:
        """``ConnectNamedPipe``; a client that connected first is fine."""
        try:
            self.m["win32pipe"].ConnectNamedPipe(handle, None)
        except self.m["pywintypes"].error as exc:
            if getattr(exc, "winerror", None) != ERROR_PIPE_CONNECTED:
                raise self._oserror(exc) from None

    def identify(self, handle: Any) -> WindowsCaller:
        """Impersonate the client, read its token's user and groups, revert (always)."""
        pipe, sec, api = self.m["win32pipe"], self.m["win32security"], self.m["win32api"]
        pid = int(self._wrap(pipe.GetNamedPipeClientProcessId, handle))
        self._wrap(sec.ImpersonateNamedPipeClient, handle)  # win32security, not win32pipe
        try:
            token = self._wrap(sec.OpenThreadToken, api.GetCurrentThread(), sec.TOKEN_QUERY, True)
            user_sid, _attrs = self._wrap(sec.GetTokenInformation, token, sec.TokenUser)
            groups = self._wrap(sec.GetTokenInformation, token, sec.TokenGroups)
        finally:
            sec.RevertToSelf()  # never keep running as the caller
        return caller_from_token(
            pid,
            str(sec.ConvertSidToStringSid(user_sid)),
            ((str(sec.ConvertSidToStringSid(s)), int(a)) for s, a in groups),
        )

    def read(self, handle: Any, n: int) -> bytes:
        """``ReadFile``; a broken/closed pipe is end of stream."""
        try:
            _rc, data = self.m["win32file"].ReadFile(handle, n, None)
        except self.m["pywintypes"].error as exc:
            if getattr(exc, "winerror", None) in (ERROR_BROKEN_PIPE, ERROR_PIPE_NOT_CONNECTED):
                return b""
            raise self._oserror(exc) from None
        return bytes(data)

    def write(self, handle: Any, data: bytes) -> None:
        """``WriteFile`` until everything is written."""
        view = memoryview(data)
        while view:
            _rc, n = self._wrap(self.m["win32file"].WriteFile, handle, bytes(view), None)
            view = view[n:]

    def cancel(self, handle: Any) -> None:
        """``CancelIoEx(handle, NULL)`` through ctypes (pywin32 only wraps ``CancelIo``)."""
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.windll.kernel32.CancelIoEx(int(handle), None)  # type: ignore[attr-defined]

    def close(self, handle: Any, *, server: bool) -> None:
        """``DisconnectNamedPipe`` (server) then ``CloseHandle``; errors ignored."""
        if server:
            with contextlib.suppress(Exception):
                self.m["win32pipe"].DisconnectNamedPipe(handle)
        with contextlib.suppress(Exception):
            self.m["win32file"].CloseHandle(handle)

    def open_client(self, name: str, timeout: float) -> Any:
        """``CreateFile`` with :data:`CLIENT_ACCESS` and identification-level SQOS."""
        f, pipe = self.m["win32file"], self.m["win32pipe"]
        # SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION: a squatting server could learn
        # who we are but never act as us.
        flags = 0x00100000 | 0x00010000
        for _ in range(2):
            try:
                return f.CreateFile(name, CLIENT_ACCESS, 0, None, f.OPEN_EXISTING, flags, None)
            except self.m["pywintypes"].error as exc:
                if getattr(exc, "winerror", None) != ERROR_PIPE_BUSY:
                    raise self._oserror(exc) from None
                self._wrap(pipe.WaitNamedPipe, name, int(timeout * 1000))
        raise OSError(f"{name} stayed busy")
