"""The helper's crash-safe record of what it made, and its reading of managed settings.

The state file (``<state_dir>/state.json``, 0600 in a root-owned 0700 directory; by
default ``/var/lib/rustronaut/helper``, which systemd keeps across restarts, unlike the
runtime directory) lists the interfaces the helper brought up: with which backend, for
whom (uid or SID, and pid) and what a clean-up needs that only the live tunnel knows
(wg-quick's fwmark routing table). It is written *before* a backend is asked to bring a
tunnel up, and completed after, so that after a crash or power loss the next start can
remove whatever a dead helper left behind from the record alone. Every change is a
read-modify-write under a lock (a thread lock plus ``flock`` on ``.state.lock``),
written to a unique temporary file, fsynced and renamed over the old one.

``always_on`` comes from the helper's own strict reader of the managed settings
(:mod:`wg_backends.helper.managed`), because ``wg_backends`` must not import ``core``
and must never take such a setting from an IPC caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from wg_backends.render import check_private_dir

__all__ = [
    "DEFAULT_MANAGED_DIR",
    "POLICY_KEY",
    "StateFile",
    "TunnelRecord",
    "read_always_on",
    "read_always_on_registry",
]

_log = logging.getLogger(__name__)
DEFAULT_MANAGED_DIR = Path("/etc/rustronaut")
# Windows: Group Policy / Intune write managed settings here (installers/mdm/windows/*.admx).
POLICY_KEY = r"SOFTWARE\Policies\Rustronaut\Client"


class TunnelRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One tunnel this helper made.

    ``owner_uid`` / ``owner_sid`` / ``owner_pid``: the caller that brought it up (``-1`` /
    ``""`` when unknown, e.g. records of an older helper). ``table``: wg-quick's fwmark
    routing table of a full tunnel (its ``ip rule``s and nft table are removed by it even
    when the interface and config are gone).

    What the helper enforces comes from here, never from a caller: ``allowed_ips``,
    ``dns`` and ``endpoints`` are the spec it brought up (kept current by ``update``);
    ``relay_endpoints`` are its relays' addresses as the helper resolved them when it
    checked the routes (literal ``address:port`` / ``[v6]:port``: the TCP pairs the
    enforcement lets through; records of an older helper have none);
    ``enforced`` is set while the tunnel is enforced (``enforce``; records of an older
    helper have only ``redirect_port``), ``redirect_port`` is the port of the
    transparent listeners the helper holds (0: kill switch only), and
    ``block_when_down`` asks for the always-on block table if the tunnel goes away
    without a deliberate ``down``. A clean-up removes the rules from the record alone.
    """

    interface: str
    backend: str
    owner_uid: int = -1
    owner_sid: str = ""
    owner_pid: int = -1
    table: int | None = None
    allowed_ips: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    redirect_port: int = 0
    block_when_down: bool = False
    enforced: bool = False
    relay_endpoints: tuple[str, ...] = ()

    @property
    def is_enforced(self) -> bool:
        """Whether the helper installed rules for this tunnel (with or without redirect)."""
        return self.enforced or self.redirect_port > 0


class _State(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tunnels: tuple[TunnelRecord, ...] = ()


class StateFile:
    """Load and atomically rewrite the state file. Safe from several threads at once."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / "state.json"
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # The thread lock orders this process's workers; flock keeps a second helper
        # process (a misconfigured duplicate) from interleaving its writes.
        with self._lock:
            check_private_dir(self.dir)
            fd = os.open(self.dir / ".state.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    import fcntl  # Unix only; the Windows service is a single process
                except ImportError:  # pragma: no cover - Windows
                    fcntl = None  # type: ignore[assignment]
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def load(self) -> tuple[TunnelRecord, ...]:
        """The recorded tunnels; an unreadable or corrupt file counts as empty (logged)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ()
        try:
            return msgspec.json.decode(data, type=_State).tunnels
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _log.warning("ignoring corrupt state file %s: %s", self.path, exc)
            return ()

    def save(self, tunnels: tuple[TunnelRecord, ...]) -> None:
        """Replace the record atomically (unique temp file, fsync, rename). Raises ``OSError``."""
        with self._locked():
            self._write(tunnels)

    def _write(self, tunnels: tuple[TunnelRecord, ...]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msgspec.json.encode(_State(tunnels=tunnels)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def update(
        self, change: Callable[[tuple[TunnelRecord, ...]], tuple[TunnelRecord, ...]]
    ) -> tuple[TunnelRecord, ...]:
        """Apply ``change`` to the records under the lock and save; returns the new records."""
        with self._locked():
            new = change(self.load())
            self._write(new)
            return new

    def add(self, record: TunnelRecord) -> None:
        """Record ``record`` (replacing one of the same interface). Idempotent."""
        self.update(lambda ts: (*(t for t in ts if t.interface != record.interface), record))

    def remove(self, interface: str) -> None:
        """Forget ``interface``. Idempotent."""
        self.update(lambda ts: tuple(t for t in ts if t.interface != interface))

    def get(self, interface: str) -> TunnelRecord | None:
        """The record of ``interface``, if any."""
        return next((t for t in self.load() if t.interface == interface), None)


def read_always_on(managed_dir: Path | None = None) -> bool:
    """Whether managed settings force always-on. Never raises: bad files are logged, skipped.

    ``managed_dir`` defaults to ``/etc/rustronaut`` (never taken from the environment);
    on Windows, without one, the policy registry key is read instead
    (:func:`read_always_on_registry`). Files are read by the strict reader of
    :mod:`wg_backends.helper.managed` (root-owned, not group/other-writable).
    """
    if managed_dir is None and sys.platform == "win32":
        return read_always_on_registry()
    from wg_backends.helper import managed  # imports this module lazily too

    return managed.read(managed_dir or DEFAULT_MANAGED_DIR).always_on


RegistryQuery = Callable[[str, str], object]


def read_always_on_registry(query: RegistryQuery | None = None) -> bool:
    """``always_on`` from ``HKLM\\SOFTWARE\\Policies\\Rustronaut\\Client`` (REG_DWORD 0/1).

    ``query(key_path, value_name)`` returns the value's data, ``None`` when the key or
    value is missing, or a non-int for another registry type; it defaults to ``winreg``
    (imported only then, so Windows only). Never raises: anything but 0/1 is logged and
    counts as ``False``.
    """
    try:
        value = (query or _winreg_query)(POLICY_KEY, "always_on")
    except (OSError, ImportError) as exc:
        _log.warning("managed always_on unreadable, ignored: %s", exc)
        return False
    if value is None:
        return False
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value == 1
    _log.warning("managed always_on in the registry is not a DWORD 0/1, ignored: %r", value)
    return False


def _winreg_query(key_path: str, name: str) -> object:  # pragma: no cover - Windows only
    from wg_backends.helper.managed import registry_query

    return registry_query(key_path, name, "REG_DWORD")
