"""The helper's ``install_update`` verb: verify, download, re-check, install (issue 19).

The client finds a newer release (``core.update``) and hands the helper the signed
manifest token, nothing else. The helper trusts only what it reads itself:

1. its managed settings (:func:`read_update_managed`, the same root-owned files and
   registry key as :mod:`wg_backends.helper.managed`): ``auto_update`` (false: refused,
   ``update_disabled``), ``update_pin_version``, ``update_keys`` (none: refused);
2. the manifest, verified with those keys (:mod:`wg_backends.signed.update_manifest`):
   signature, validity window, this platform's file; then the version against the
   installed one and the highest manifest version ever seen (:class:`UpdateFloor`, in
   the helper's 0700 state directory, raised by every verified manifest);
3. the download, streamed into ``<state_dir>/updates/`` (0700, the helper's own) as a
   0600 file, refused as soon as it exceeds the announced size or when its SHA-256
   differs;
4. right before the installer runs: the managed keys read again, the manifest verified
   again (it may have expired meanwhile), the stored file re-opened without following
   links, checked to be the helper's regular 0600 file of the announced size and hash.

Then the installer is started (NSIS ``/S`` on Windows, ``installer -pkg … -target /``
on macOS) through the injected launcher, *detached* and not waited for
(:func:`launch_detached`): the installer stops this very helper (the NSIS script stops
the service before it replaces its files; the macOS preinstall boots the daemon out,
and launchd kills the job's process group), so a helper waiting for its installer would
hold the files it replaces and be killed with it. The answer therefore means "verified
and started"; the stored file stays for the installer to read and is removed at the
next ``install_update``. Linux is refused (apt/dnf update it). One install at a time
(``update_busy``). Blocking: the server calls :meth:`HelperUpdates.install` in a worker
thread. Every refusal is :class:`UpdateRefused` with a stable code.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import platform as _platform
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wg_backends import __version__
from wg_backends.helper import managed
from wg_backends.render import check_private_dir
from wg_backends.signed.anchors import MAX_ANCHORS, parse_anchor
from wg_backends.signed.update_manifest import (
    UpdateRefused,
    VerifiedManifest,
    check_version,
    file_sha256,
    install_argv,
    parse_version,
    platform_key,
    verify_manifest,
)

__all__ = [
    "FLOOR_FILE_NAME",
    "HelperUpdates",
    "Launcher",
    "UpdateFloor",
    "UpdateManaged",
    "UpdateRefused",
    "detached_options",
    "launch_detached",
    "read_update_managed",
]

_log = logging.getLogger("rustronaut.helper")
FLOOR_FILE_NAME = "update-floor.json"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
Launcher = Callable[[Sequence[str]], object]
"""Starts a command without waiting for it (raises ``OSError`` when it cannot)."""


@dataclass(frozen=True, slots=True)
class UpdateManaged:
    """What the helper takes from managed settings about updates (defaults: unmanaged)."""

    auto_update: bool = True
    update_pin_version: str = ""
    update_keys: tuple[str, ...] = ()


def _keys(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise managed.ManagedFileError("update_keys is not a list of strings")
    if len(value) > MAX_ANCHORS:
        raise managed.ManagedFileError(f"update_keys lists more than {MAX_ANCHORS} keys")
    for index, key in enumerate(value):
        try:
            parse_anchor(key)
        except ValueError as exc:
            raise managed.ManagedFileError(f"update_keys[{index}]: {exc}") from None
    return tuple(value)


def _update_values(doc: dict[str, Any]) -> dict[str, Any]:
    """The update keys of one managed document; ``ManagedFileError`` on a wrong type."""
    out: dict[str, Any] = {}
    if "auto_update" in doc:
        if not isinstance(doc["auto_update"], bool):
            raise managed.ManagedFileError("auto_update is not true or false")
        out["auto_update"] = doc["auto_update"]
    if "update_pin_version" in doc:
        pin = doc["update_pin_version"]
        if not isinstance(pin, str):
            raise managed.ManagedFileError("update_pin_version is not a string")
        if pin:
            try:
                parse_version(pin)
            except ValueError as exc:
                raise managed.ManagedFileError(f"update_pin_version: {exc}") from None
        out["update_pin_version"] = pin
    if "update_keys" in doc:
        out["update_keys"] = _keys(doc["update_keys"])
    return out


def _read_doc(path: Path) -> dict[str, Any] | None:
    """One managed file as a JSON object, with :func:`managed.read_file`'s checks (root
    owned, not group/other writable, regular, no symlink, size, no duplicate keys)."""
    if managed.read_file(path) is None:  # every check of the helper's reader first
        return None
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise managed.ManagedFileError("not a regular file")
        managed._trusted(st, "the file")
        data = fh.read(managed.MAX_MANAGED + 1)
    try:
        doc = json.loads(data.decode("utf-8-sig"), object_pairs_hook=managed._no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise managed.ManagedFileError(f"unreadable: {exc}") from None
    return doc if isinstance(doc, dict) else None


RegistryQuery = Callable[[str, str, str], object]


def _registry_values(query: RegistryQuery) -> dict[str, Any]:  # Windows policy key
    from wg_backends.helper.state import POLICY_KEY

    doc: dict[str, Any] = {}
    for name, kind in (
        ("auto_update", "REG_DWORD"),
        ("update_pin_version", "REG_SZ"),
        ("update_keys", "REG_MULTI_SZ"),
    ):
        try:
            value = query(POLICY_KEY, name, kind)
        except (OSError, ImportError) as exc:
            _log.warning("managed %s unreadable, ignored: %s", name, exc)
            continue
        if value is None:
            continue
        if kind == "REG_DWORD" and value in (0, 1):
            value = bool(value)
        try:
            doc.update(_update_values({name: value}))
        except managed.ManagedFileError as exc:
            _log.warning("managed %s in the registry ignored: %s", name, exc)
    return doc


def read_update_managed(
    managed_dir: Path | None = None, *, registry: RegistryQuery | None = None
) -> UpdateManaged:
    """The update settings as the helper sees them now. Never raises (problems logged).

    Files as :func:`managed.read` reads them (``managed.json`` then ``managed.d/*.json``,
    later files override key by key; a bad file counts as absent). On Windows without a
    managed directory, the policy registry key is read (``registry``: a query like
    :func:`managed.registry_query`).
    """
    values: dict[str, Any] = {}
    if managed_dir is None and (registry is not None or sys.platform == "win32"):
        values = _registry_values(registry or managed.registry_query)
    else:
        for path in managed._files(managed_dir or managed.DEFAULT_MANAGED_DIR):
            try:
                doc = _read_doc(path)
                if doc:
                    values.update(_update_values(doc))
            except (managed.ManagedFileError, OSError) as exc:
                _log.warning("managed file %s ignored for updates: %s", path, exc)
    return UpdateManaged(**values)


class UpdateFloor:
    """The highest manifest version ever verified, ``<state_dir>/update-floor.json``
    (0600 in the helper's 0700 directory: no user can lower it). An unreadable file, or
    one that is not the helper's regular file, refuses every update (``update_rollback``)
    rather than being replaced. Written atomically; only ever raised."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / FLOOR_FILE_NAME

    def read(self) -> str | None:
        """The floor (None: no manifest verified yet). Raises ``UpdateRefused``."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UpdateRefused("update_rollback", f"update floor unreadable: {exc}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or (
                hasattr(os, "geteuid") and st.st_uid != os.geteuid()
            ):
                raise UpdateRefused("update_rollback", f"update floor {self.path} is not ours")
            data = fh.read(4096)
        try:
            version = json.loads(data)["version"]
            parse_version(version)
        except (ValueError, KeyError, TypeError):
            raise UpdateRefused(
                "update_rollback", f"update floor {self.path} is unreadable; not replaced"
            ) from None
        return str(version)

    def advance(self, version: str) -> None:
        """Raise the floor to ``version`` (no-op when not higher). Raises ``UpdateRefused``."""
        current = self.read()
        if current is not None and parse_version(version) <= parse_version(current):
            return
        try:
            check_private_dir(self.dir)
            fd, tmp = tempfile.mkstemp(prefix=".update-floor-", dir=self.dir)  # 0600
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(json.dumps({"version": version}).encode())
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise UpdateRefused("update_rollback", f"update floor not written: {exc}") from None


def detached_options(sys_platform: str = sys.platform) -> dict[str, Any]:
    """``subprocess.Popen`` options that start the installer on its own: on Windows a
    detached process in a new process group (outside the service's console and Ctrl
    events), elsewhere a new session (outside the launchd job's process group). No
    inherited descriptors (not the helper's socket), no output. Pure."""
    options: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "close_fds": True,
    }
    if sys_platform == "win32":
        options["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS, NEW_GROUP
    else:
        options["start_new_session"] = True
    return options


def launch_detached(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` (an absolute program path) with :func:`detached_options`; does not
    wait. Raises ``OSError``."""
    return subprocess.Popen(list(argv), **detached_options())


def _opener() -> urllib.request.OpenerDirector:
    """http and https (verified with the system's CAs), redirects, proxies from the
    service's environment; nothing else (no ``file:``, no ``ftp:``)."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class HelperUpdates:
    """The helper's updater (see the module docstring). Attributes are seams for tests:
    ``launch`` (starts the installer), ``platform`` (manifest key), ``installed``
    (version), ``clock``, ``opener`` (urllib), ``read_managed``, ``before_install``
    (called with the stored file's path between download and re-check)."""

    def __init__(self, state_dir: Path, *, managed_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self.dir = state_dir / "updates"
        self.launch: Launcher = launch_detached
        self.platform = platform_key(sys.platform, _platform.machine())
        self.installed = __version__
        self.clock: Callable[[], float] = time.time
        self.opener: Callable[[], urllib.request.OpenerDirector] = _opener
        self.floor = UpdateFloor(state_dir)
        self.read_managed: Callable[[], UpdateManaged] = lambda: read_update_managed(managed_dir)
        self.before_install: Callable[[Path], None] = lambda _path: None
        self._lock = threading.Lock()

    def install(self, token: str) -> dict[str, Any]:
        """Verify ``token``, download its installer, re-check it and start it. Blocking.

        Returns ``{"version": str, "platform": str, "argv": [...]}`` once the installer
        has started (it then stops and replaces this helper). Raises
        :class:`UpdateRefused`; a refused file is removed at once, a started one at the
        next call.
        """
        if not self._lock.acquire(blocking=False):
            raise UpdateRefused("update_busy", "an update is already being installed")
        try:
            verified = self._verified(token)
            self._sweep()
            path = self._download(verified)
            try:
                self.before_install(path)
                self._verified(token)  # keys re-read, signature and expiry checked again
                self._recheck(path, verified)
                argv = install_argv(verified.platform, str(path))
                _log.warning("installing update %s: %s", verified.version, " ".join(argv))
                try:
                    self.launch(argv)
                except Exception as exc:
                    raise UpdateRefused(
                        "update_install", f"the installer did not start: {exc}"
                    ) from None
            except BaseException:
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
            return {"version": verified.version, "platform": verified.platform, "argv": list(argv)}
        finally:
            self._lock.release()

    def _sweep(self) -> None:
        """Remove installers left by earlier updates (started, so no longer needed)."""
        with contextlib.suppress(OSError):
            for old in self.dir.iterdir():
                if old.is_file() or old.is_symlink():
                    with contextlib.suppress(OSError):
                        old.unlink()

    def _verified(self, token: str) -> VerifiedManifest:
        settings = self.read_managed()
        if not settings.auto_update:
            raise UpdateRefused("update_disabled", "updates are turned off by your organisation")
        verified = verify_manifest(
            token, settings.update_keys, now=self.clock(), platform=self.platform
        )
        install_argv(verified.platform, "")  # Linux: refused before any download
        try:
            check_version(
                verified.version,
                installed=self.installed,
                floor=self.floor.read(),
                pin=settings.update_pin_version or None,
            )
        except UpdateRefused as exc:
            if exc.code == "update_current":
                self.floor.advance(verified.version)
            raise
        # The floor: the highest manifest verified and acceptable (a manifest refused by
        # a pin does not raise it, or the pinned version would become a rollback).
        self.floor.advance(verified.version)
        return verified

    def _target(self, verified: VerifiedManifest) -> Path:
        suffix = ".exe" if verified.platform.startswith("windows-") else ".pkg"
        return self.dir / f"rustronaut-{verified.version}-{verified.platform}{suffix}"

    def _download(self, verified: VerifiedManifest) -> Path:
        """Stream the file into a new 0600 file in the helper's own directory."""
        file = verified.file
        try:
            check_private_dir(self.state_dir)
            check_private_dir(self.dir)
        except OSError as exc:
            raise UpdateRefused("update_download", f"no private download dir: {exc}") from None
        target = self._target(verified)
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=self.dir)  # 0600, unique
        try:
            with os.fdopen(fd, "wb") as out:
                digest = self._fetch(file.url, file.size, out)
                out.flush()
                os.fsync(out.fileno())
            if digest != file.sha256:
                raise UpdateRefused("update_hash", "the downloaded installer's SHA-256 differs")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def _fetch(self, url: str, size: int, out: Any) -> str:
        """Stream ``url`` into ``out``; the SHA-256 of what came. Standard library only
        (the frozen helper carries no httpx): http(s) and redirects between them, no
        ``file:``/``ftp:`` handler at all."""
        digest = hashlib.sha256()
        got = 0
        try:
            with self.opener().open(url, timeout=30.0) as response:
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > size:
                    raise UpdateRefused(
                        "update_size", f"download announces {length} bytes, over {size}"
                    )
                while chunk := response.read(1024 * 1024):
                    got += len(chunk)
                    if got > size:
                        raise UpdateRefused("update_size", f"download is larger than {size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise UpdateRefused("update_download", f"download answered HTTP {exc.code}") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise UpdateRefused("update_download", f"download failed: {exc}") from None
        if got != size:
            raise UpdateRefused("update_size", f"download is {got} bytes, not {size}")
        return digest.hexdigest()

    def _recheck(self, path: Path, verified: VerifiedManifest) -> None:
        """The stored file, right before it runs: ours, regular, 0600, size and hash."""
        try:
            check_private_dir(self.dir)
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
        except OSError as exc:
            raise UpdateRefused("update_hash", f"the stored installer is gone: {exc}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise UpdateRefused("update_hash", "the stored installer is not a regular file")
            if hasattr(os, "geteuid") and (
                st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_nlink != 1
            ):
                raise UpdateRefused("update_hash", "the stored installer is not the helper's own")
            digest, size = file_sha256(fh, verified.file.size)
        if size != verified.file.size or digest != verified.file.sha256:
            raise UpdateRefused("update_hash", "the stored installer changed after its download")
