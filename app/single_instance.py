"""One tray per user: the first instance listens on a local socket, later ones knock.

``SingleInstance.acquire()`` tries to reach a running instance on the per-user name; if
one answers, it delivers its message and returns False (the caller exits). Otherwise it
listens (removing a stale socket a crashed instance left behind) and returns True.

The protocol is one line each way:

- ``raise``: come forward. ``activated`` fires and ``raise_window`` (when set) is
  called; the answer is ``shown`` when it returned True (its window is on screen), else
  ``no``. The later launch reads it into ``brought_forward``, so it says "brought
  forward" only when the window really was (an instance still starting has none).
- ``{"type": "join", "link": "rustronaut://join?…"}`` (JSON, so a link holding control
  characters cannot break the framing): a join link the desktop opened with a later
  launch. ``on_join(link)`` (when set) decides what to do with it and returns the
  :class:`JoinAnswer` sent back (``opened``, ``told`` or ``refused``); ``no`` while the
  first instance cannot take links yet. The link is data from anywhere (a web page can
  open it): ``on_join`` validates it; here only the framing is checked.

Anything else (an unknown message, a line longer than :data:`MAX_LINE` bytes, a peer of
another account) is answered ``refused`` and hung up on, and logged: the first instance
never buffers more than one short line per connection, holds at most
:data:`MAX_CONNECTIONS` at once and drops a connection that says nothing within
:data:`IDLE_MS`.

The name includes the user id and lives in ``$XDG_RUNTIME_DIR`` when set (a 0700
per-user directory); the socket is user-only (``UserAccessOption``) and, on Linux and
macOS, each peer's uid from the kernel must be ours, so other accounts can neither block
nor poke our instance. GUI thread.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

__all__ = [
    "IDLE_MS",
    "MAX_CONNECTIONS",
    "MAX_LINE",
    "JoinAnswer",
    "SingleInstance",
    "default_name",
    "join_message",
]

_log = logging.getLogger(__name__)

_MESSAGE = b"raise\n"
_SHOWN = b"shown\n"
_NOT_SHOWN = b"no\n"
_REFUSED = b"refused\n"

#: The longest line either end reads (a join link is at most 1,024 characters).
MAX_LINE = 4096
#: Connections the first instance holds at once; more are hung up on at once.
MAX_CONNECTIONS = 8
#: A connection that has not sent its line by then is hung up on.
IDLE_MS = 2000
#: The longest link a later launch forwards (longer ones are cut one past the limit,
#: so the first instance still sees, and refuses, an over-long link).
_LINK_LIMIT = 1024


class JoinAnswer(enum.Enum):
    """What the running instance did with a forwarded join link."""

    OPENED = "opened"  # the onboarding shows the controller it names, for confirmation
    TOLD = "told"  # not used (a controller is set, or IT manages it); a notification says so
    REFUSED = "refused"  # not valid (or not allowed); a notification says why
    NOT_READY = "no"  # the running instance is still starting and cannot take it yet


def join_message(link: str) -> bytes:
    """The line a later launch sends to forward ``link`` (bounded, one line)."""
    body = json.dumps({"type": "join", "link": link[: _LINK_LIMIT + 1]})
    return body.encode("utf-8") + b"\n"


def default_name() -> str:
    """The per-user server name (a socket path on Unix, a pipe name on Windows)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return str(Path(runtime) / "rustronaut-tray.sock")
    return f"rustronaut-tray-{uid}"


def _peer_uid(conn: QLocalSocket) -> int | None:
    """The uid of the process at the other end (None where the OS cannot say)."""
    if sys.platform not in ("linux", "darwin"):
        return None  # a Windows pipe: UserAccessOption already limits it to this user
    from wg_backends.helper.transport import peer_cred

    fd = int(conn.socketDescriptor())
    if fd < 0:
        return None
    dup = socket.fromfd(fd, socket.AF_UNIX, socket.SOCK_STREAM)  # a copy: Qt keeps its fd
    try:
        return peer_cred(dup).uid
    finally:
        dup.close()


class SingleInstance(QObject):
    """The instance lock; ``activated`` fires when a later launch asks us to come forward.

    ``raise_window`` (set by the app once its windows exist) shows the main window and
    returns True when it is on screen. ``on_join(link)`` (set by the app once it can
    onboard) handles a join link a later launch forwarded. After a failed ``acquire``,
    ``brought_forward`` says whether the running instance's window came forward and
    ``answer`` holds its answer line (``None`` when it gave none).
    """

    activated = Signal()
    #: A message was refused (unknown, too long, or from another account): the reason.
    refused = Signal(str)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or default_name()
        self._server: QLocalServer | None = None
        # Each open connection and its line so far (None once answered: read no more).
        self._conns: dict[QLocalSocket, bytearray | None] = {}
        self.raise_window: Callable[[], bool] | None = None
        self.on_join: Callable[[str], JoinAnswer] | None = None
        self.brought_forward = False
        self.answer: str | None = None

    def acquire(self, timeout_ms: int = 500, *, link: str | None = None) -> bool:
        """True if we are the first instance (now listening); False if another answered.

        With ``link``, a running instance is handed that join link instead of asked to
        come forward (its answer in ``answer``: a :class:`JoinAnswer` value). Idempotent
        once acquired. Raises ``RuntimeError`` if the name can be neither reached nor
        listened on (e.g. the directory is not writable).
        """
        if self._server is not None:
            return True
        message = _MESSAGE if link is None else join_message(link)
        if self._knock(message, timeout_ms):
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # Nobody answered, so the socket is stale (a crashed instance): remove, retry.
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                raise RuntimeError(f"cannot listen on {self.name}: {server.errorString()}")
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def release(self) -> None:
        """Stop listening (at quit). Idempotent."""
        for conn in list(self._conns):
            self._drop(conn)
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None

    def _knock(self, message: bytes, timeout_ms: int) -> bool:
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(message)
        sock.waitForBytesWritten(timeout_ms)
        # An older instance hangs up without answering: then nothing is claimed.
        if sock.waitForReadyRead(timeout_ms):
            line = bytes(sock.readLine(64).data())
            self.answer = line.strip().decode("ascii", "replace") or None
            self.brought_forward = line == _SHOWN
        sock.disconnectFromServer()
        return True

    def _on_connection(self) -> None:
        if self._server is None:
            return
        while self._server.hasPendingConnections():
            conn = self._server.nextPendingConnection()
            if len(self._conns) >= MAX_CONNECTIONS:
                _log.warning("single instance: too many connections at once; one refused")
                conn.abort()
                conn.deleteLater()
                continue
            try:
                uid = _peer_uid(conn)
            except OSError as exc:
                _log.warning("single instance: the peer's identity is unknown (%s)", exc)
                uid = -1
            if uid is not None and uid != os.getuid():
                self._refuse(conn, f"a process of another account (uid {uid}) knocked")
                conn.deleteLater()
                continue
            self._conns[conn] = bytearray()
            conn.setReadBufferSize(MAX_LINE + 1)  # Qt buffers no more than we would read
            conn.readyRead.connect(self._on_ready_read)
            conn.disconnected.connect(self._on_disconnected)
            # Say something soon or be hung up on: a silent peer must not hold a slot.
            QTimer.singleShot(IDLE_MS, conn, lambda c=conn: self._drop(c))

    def _on_ready_read(self) -> None:
        conn = self.sender()
        if not isinstance(conn, QLocalSocket) or conn not in self._conns:
            return
        buf = self._conns[conn]
        if buf is None:  # answered: whatever else it sends is never read
            return
        # Never more than one line of MAX_LINE bytes per connection: a peer cannot make
        # us buffer more, and the rest of what it sends is never read.
        buf += bytes(conn.read(MAX_LINE + 1 - len(buf)).data())
        line, newline, _ = bytes(buf).partition(b"\n")
        if not newline:
            if len(buf) > MAX_LINE:
                self._refuse(conn, "a message longer than a line")
            return
        if line + b"\n" == _MESSAGE:
            self._answer(conn, _SHOWN if self._raise() else _NOT_SHOWN)
            return
        link = _join_link(line)
        if link is None:
            self._refuse(conn, "an unknown message")
            return
        answer = JoinAnswer.NOT_READY
        if self.on_join is not None:
            try:
                answer = self.on_join(link)
            except Exception:  # a forwarded link must never take the running app down
                _log.exception("single instance: the join link could not be handled")
                answer = JoinAnswer.REFUSED
        self._answer(conn, answer.value.encode("ascii") + b"\n")

    def _raise(self) -> bool:
        self.activated.emit()
        if self.raise_window is None:
            return False
        try:
            return self.raise_window()
        except Exception:  # the knock must never take the running app down
            _log.exception("single instance: the window could not come forward")
            return False

    def _refuse(self, conn: QLocalSocket, why: str) -> None:
        _log.warning("single instance: refused %s", why)
        self.refused.emit(why)
        self._answer(conn, _REFUSED)

    def _answer(self, conn: QLocalSocket, line: bytes) -> None:
        conn.write(line)
        # Closes once the answer is written; ``disconnected`` then drops the connection.
        conn.disconnectFromServer()
        if conn in self._conns:
            self._conns[conn] = None

    def _on_disconnected(self) -> None:
        conn = self.sender()
        if isinstance(conn, QLocalSocket):
            self._drop(conn)

    def _drop(self, conn: QLocalSocket) -> None:
        if conn not in self._conns:
            return
        del self._conns[conn]
        conn.readyRead.disconnect(self._on_ready_read)
        conn.disconnected.disconnect(self._on_disconnected)
        conn.abort()
        conn.deleteLater()  # never delete directly: Qt may still be inside its signal


def _join_link(line: bytes) -> str | None:
    """The link of a well-formed join message, else None (the link itself unchecked)."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or set(message) != {"type", "link"}:
        return None
    link = message["link"]
    if message["type"] != "join" or not isinstance(link, str):
        return None
    return link
