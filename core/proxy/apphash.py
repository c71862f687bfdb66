"""The SHA-256 of a connecting app's executable, for policy rules pinned to a hash.

A rule may name ``apps: [{sha256: …}]``; it can only match when the proxy fills in
``AppIdentity.sha256``. Hashing a browser's 200 MB binary costs a fraction of a second,
so ``AppHasher`` hashes each file once and remembers the digest by the file's identity
— (device, inode, size, mtime, ctime) from one ``stat`` — so a busy app costs one stat per
connection. ctime is part of the key because a user can reset mtime with ``utime`` after
rewriting a file, but not ctime. Hashing runs in a worker thread (never on the proxy's
loop), one hash per file at a time however many connections ask.

On Linux the running image is hashed through ``/proc/<pid>/exe``: what the process
actually executes, even when the path now names another file (or none: "(deleted)").
Elsewhere the path the peer lookup found is hashed. A file that cannot be stat'ed, opened
or read, that is not a regular file, that is larger than ``max_bytes`` or that changes
while it is read leaves the digest unknown (None): the policy then cannot match allow
rules pinned to a hash and treats deny rules pinned to one as matching (fail closed).

``rules_need_hash(decider)`` says whether the decider's policy names a hash at all, so
the proxy pays nothing when no rule does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import sys
from collections import OrderedDict
from typing import Any

__all__ = ["AppHasher", "FileKey", "rules_need_hash"]

_log = logging.getLogger(__name__)

FileKey = tuple[int, int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): a file's identity and version."""

_CHUNK = 1 << 20


def _key(st: os.stat_result) -> FileKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def rules_need_hash(decider: object) -> bool:
    """Whether ``decider``'s policy has a rule pinned to an executable's hash.

    A decider may say so itself (a ``needs_app_hash`` attribute: bool or method);
    otherwise its ``bundle`` (``core.policy.engine.PolicyEngine``) is searched for an
    ``apps`` entry with ``sha256``. A decider that offers neither needs no hash.
    """
    said = getattr(decider, "needs_app_hash", None)
    if said is not None:
        return bool(said() if callable(said) else said)
    bundle: Any = getattr(decider, "bundle", None)
    if bundle is None:
        return False
    return any(
        getattr(match, "sha256", None)
        for rule in getattr(bundle, "rules", ())
        for match in rule.apps
    )


def hash_file(path: str, max_bytes: int) -> tuple[FileKey, str] | None:
    """(identity, hex SHA-256) of the regular file ``path``; None when it cannot be read,
    is not a regular file, is larger than ``max_bytes`` or changed while being read."""
    try:
        # O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        with open(fd, "rb", buffering=0, closefd=True) as f:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode) or before.st_size > max_bytes:
                return None
            digest = hashlib.file_digest(f, "sha256").hexdigest()
            after = os.fstat(fd)
    except (OSError, ValueError):
        return None
    if _key(before) != _key(after):
        return None  # being rewritten: no digest names what runs
    return _key(before), digest


class AppHasher:
    """Digests of executables, cached by file identity. Loop thread only (hashing itself
    runs in the loop's default executor). Never raises.

    ``max_entries`` bounds the cache (least recently used forgotten first); files above
    ``max_bytes`` are not hashed (their digest stays unknown).
    """

    def __init__(
        self,
        *,
        max_entries: int = 512,
        max_bytes: int = 2 << 30,
        proc: str | None = "/proc" if sys.platform.startswith("linux") else None,
    ) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._proc = proc
        self._cache: OrderedDict[FileKey, str] = OrderedDict()
        self._inflight: dict[FileKey, asyncio.Future[str | None]] = {}
        self.hashed = 0  # files actually read (the benchmark and tests look at it)

    def path_of(self, pid: int | None, exe: str) -> str | None:
        """The path to stat and hash: the running image on Linux, else ``exe``."""
        if self._proc is not None and pid:
            return f"{self._proc}/{pid}/exe"
        return exe or None

    def cached(self, pid: int | None, exe: str) -> tuple[str | None, FileKey | None]:
        """One ``stat``: (digest, None) on a cache hit, (None, key) when the file must be
        hashed, (None, None) when it cannot be stat'ed (the digest stays unknown)."""
        path = self.path_of(pid, exe)
        if path is None:
            return None, None
        try:
            key = _key(os.stat(path))
        except (OSError, ValueError):
            return None, None
        digest = self._cache.get(key)
        if digest is not None:
            self._cache.move_to_end(key)
            return digest, None
        return None, key

    async def sha256(self, pid: int | None, exe: str) -> str | None:
        """The hex SHA-256 of the app's executable, or None when it cannot be known."""
        digest, key = self.cached(pid, exe)
        if digest is not None or key is None:
            return digest
        path = self.path_of(pid, exe)
        assert path is not None
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        pending = self._inflight[key] = loop.create_future()
        result: str | None = None
        try:
            found = await loop.run_in_executor(None, hash_file, path, self._max_bytes)
            self.hashed += 1
            if found is not None and found[0] == key:
                result = found[1]
                self._cache[key] = result
                if len(self._cache) > self._max_entries:
                    self._cache.popitem(last=False)
            elif found is None:
                _log.info("cannot hash %s: its digest stays unknown", path)
        finally:
            del self._inflight[key]
            if not pending.done():
                pending.set_result(result)
        return result
