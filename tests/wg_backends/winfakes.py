"""Fakes for what cannot run on Linux: the Win32 named-pipe calls and pywin32 modules.

``FakePipes`` implements ``winpipe.PipeApi`` over socketpairs, with the Windows
behaviours the transport relies on: ``FILE_FLAG_FIRST_PIPE_INSTANCE`` failing on a
squatted name, ``ConnectNamedPipe`` blocking until a client opens the pipe, a client
failing when no instance exists, and ``CancelIoEx`` aborting a pending call
(``ERROR_OPERATION_ABORTED``). Identities are whatever the test says the next client is.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from wg_backends.helper.transport import WindowsCaller

GROUP_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1105"
MEMBER = WindowsCaller(4242, USER_SID, frozenset({GROUP_SID, "S-1-5-4", "S-1-5-11"}))
STRANGER = WindowsCaller(4343, "S-1-5-21-1-2-3-1200", frozenset({"S-1-5-4", "S-1-5-11"}))


def _aborted() -> OSError:
    err = OSError("ERROR_OPERATION_ABORTED")
    err.winerror = 995  # type: ignore[attr-defined]
    return err


@dataclass(eq=False)
class FakeHandle:
    name: str
    sock: socket.socket | None = None
    identity: WindowsCaller | Exception | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    closed: bool = False
    read_any: bool = False


@dataclass
class FakePipes:
    groups: dict[str, str] = field(default_factory=lambda: {"Rustronaut Users": GROUP_SID})
    squatted: set[str] = field(default_factory=set)
    next_identity: WindowsCaller | Exception = MEMBER
    created: list[tuple[str, str, bool]] = field(default_factory=list)
    closed: list[tuple[FakeHandle, bool]] = field(default_factory=list)
    _waiting: dict[str, queue.Queue[tuple[socket.socket, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _q(self, name: str) -> queue.Queue[tuple[socket.socket, Any]]:
        with self._lock:
            return self._waiting.setdefault(name, queue.Queue())

    def group_sid(self, name: str) -> str:
        if name not in self.groups:
            err = OSError(f"LookupAccountName: no mapping for {name!r}")
            err.winerror = 1332  # type: ignore[attr-defined]
            raise err
        return self.groups[name]

    def create(self, name: str, sddl: str, *, first: bool) -> FakeHandle:
        if first and name in self.squatted:
            err = OSError("CreateNamedPipe: access denied")
            err.winerror = 5  # type: ignore[attr-defined]
            raise err
        self.created.append((name, sddl, first))
        self._q(name)
        return FakeHandle(name)

    def connect(self, handle: FakeHandle) -> None:
        q = self._q(handle.name)
        while not handle.cancelled.is_set():
            try:
                handle.sock, handle.identity = q.get(timeout=0.02)
                return
            except queue.Empty:
                continue
        handle.cancelled.clear()
        raise _aborted()

    def identify(self, handle: FakeHandle) -> WindowsCaller:
        if not handle.read_any:  # as Windows: no impersonation before a read
            err = OSError("ImpersonateNamedPipeClient: ERROR_CANNOT_IMPERSONATE")
            err.winerror = 1368  # type: ignore[attr-defined]
            raise err
        if isinstance(handle.identity, Exception):
            raise handle.identity
        assert handle.identity is not None
        return handle.identity

    def read(self, handle: FakeHandle, n: int) -> bytes:
        assert handle.sock is not None
        if handle.cancelled.is_set():
            handle.cancelled.clear()
            raise _aborted()
        data = handle.sock.recv(n)
        if handle.cancelled.is_set():
            handle.cancelled.clear()
            raise _aborted()
        handle.read_any = handle.read_any or bool(data)
        return data

    def write(self, handle: FakeHandle, data: bytes) -> None:
        assert handle.sock is not None
        handle.sock.sendall(data)

    def cancel(self, handle: FakeHandle) -> None:
        handle.cancelled.set()
        if handle.sock is not None:  # wake a blocked recv, as CancelIoEx does
            with contextlib.suppress(OSError):
                handle.sock.shutdown(socket.SHUT_RD)

    def close(self, handle: FakeHandle, *, server: bool) -> None:
        handle.closed = True
        self.closed.append((handle, server))
        if handle.sock is not None:
            handle.sock.close()

    def open_client(self, name: str, timeout: float) -> FakeHandle:
        with self._lock:
            exists = name in self._waiting
        if not exists:
            err = FileNotFoundError(f"CreateFile {name}: the system cannot find the file")
            err.winerror = 2  # type: ignore[attr-defined]
            raise err
        server_end, client_end = socket.socketpair()
        self._q(name).put((server_end, self.next_identity))
        return FakeHandle(name, client_end)


class Recorder:
    """A fake module: every attribute not set is a recording function."""

    def __init__(self, name: str, log: list[tuple[Any, ...]], **attrs: Any) -> None:
        self._name = name
        self._log = log
        self.__dict__.update(attrs)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)

        def call(*args: Any, **kw: Any) -> None:
            self._log.append((f"{self._name}.{attr}", *args, *kw.values()))

        return call


class FakeWinError(Exception):
    """Stands in for ``pywintypes.error`` (winerror, funcname, strerror)."""

    def __init__(self, winerror: int, funcname: str = "", strerror: str = "") -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror = winerror
        self.funcname = funcname
        self.strerror = strerror
