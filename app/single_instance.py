"""One tray per user: the first instance listens on a local socket, later ones knock.

``SingleInstance.acquire()`` tries to reach a running instance on the per-user name; if
one answers, it sends ``raise`` and returns False (the caller exits). Otherwise it
listens (removing a stale socket a crashed instance left behind) and returns True; each
later knock emits ``activated`` and, when ``raise_window`` is set, calls it: the first
instance answers ``shown`` if it returned True (its window is on screen), else ``no``.
The second instance reads that answer (``brought_forward``), so it says "brought
forward" only when the window really was (an instance still starting has no window).

The name includes the user id and lives in ``$XDG_RUNTIME_DIR`` when set (a 0700
per-user directory), so other users can neither block nor poke our instance. GUI thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

__all__ = ["SingleInstance", "default_name"]

_MESSAGE = b"raise\n"
_SHOWN = b"shown\n"
_NOT_SHOWN = b"no\n"


def default_name() -> str:
    """The per-user server name (a socket path on Unix, a pipe name on Windows)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return str(Path(runtime) / "rustronaut-tray.sock")
    return f"rustronaut-tray-{uid}"


class SingleInstance(QObject):
    """The instance lock; ``activated`` fires when a second launch asks us to come forward.

    ``raise_window`` (set by the app once its windows exist) shows the main window and
    returns True when it is on screen. ``brought_forward`` is, after a failed
    ``acquire``, whether the running instance said its window came forward.
    """

    activated = Signal()

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or default_name()
        self._server: QLocalServer | None = None
        self._conns: set[QLocalSocket] = set()
        self.raise_window: Callable[[], bool] | None = None
        self.brought_forward = False

    def acquire(self, timeout_ms: int = 500) -> bool:
        """True if we are the first instance (now listening); False if another answered.

        Idempotent once acquired. Raises ``RuntimeError`` if the name can be neither
        reached nor listened on (e.g. the directory is not writable).
        """
        if self._server is not None:
            return True
        if self._knock(timeout_ms):
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

    def _knock(self, timeout_ms: int) -> bool:
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(_MESSAGE)
        sock.waitForBytesWritten(timeout_ms)
        # An older instance hangs up without answering: then nothing is claimed.
        if sock.waitForReadyRead(timeout_ms):
            self.brought_forward = bytes(sock.read(len(_SHOWN)).data()) == _SHOWN
        sock.disconnectFromServer()
        return True

    def _on_connection(self) -> None:
        if self._server is None:
            return
        while self._server.hasPendingConnections():
            conn = self._server.nextPendingConnection()
            self._conns.add(conn)
            conn.readyRead.connect(self._on_ready_read)
            conn.disconnected.connect(self._on_disconnected)

    def _on_ready_read(self) -> None:
        conn = self.sender()
        if not isinstance(conn, QLocalSocket) or conn not in self._conns:
            return
        # Read at most one short line; the only known message is "raise". Anything else is
        # ignored, and each knock gets one read, so a peer cannot make us buffer.
        data = bytes(conn.read(len(_MESSAGE)).data())
        if data != _MESSAGE:
            self._drop(conn)
            return
        self.activated.emit()
        shown = False
        if self.raise_window is not None:
            try:
                shown = self.raise_window()
            except Exception:  # the knock must never take the running app down
                shown = False
        conn.write(_SHOWN if shown else _NOT_SHOWN)
        # Closes once the answer is written; ``disconnected`` then drops the connection.
        conn.disconnectFromServer()

    def _on_disconnected(self) -> None:
        conn = self.sender()
        if isinstance(conn, QLocalSocket):
            self._drop(conn)

    def _drop(self, conn: QLocalSocket) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        conn.readyRead.disconnect(self._on_ready_read)
        conn.disconnected.disconnect(self._on_disconnected)
        conn.abort()
        conn.deleteLater()  # never delete directly: Qt may still be inside its signal
