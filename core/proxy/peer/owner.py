"""Which account a process runs as, comparable the way each OS allows.

The proxy serves only the signed-in user's processes. POSIX systems (Linux, macOS) name
the account by uid. Windows has no uid: an account is a security identifier (SID,
"S-1-5-21-…"), read from the process token, or — when the token cannot be read — the
"DOMAIN\\user" name psutil reports, which Windows compares case-insensitively.
``Owner.same_account`` compares the strongest identity both sides have; when they
share none the answer is "unknown" and the proxy refuses (fail closed).

``current_owner()`` is the host's own identity, computed per OS; its Windows sources
(psutil and the SID reader) are injectable so the logic is tested on any OS.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Owner", "SidReader", "current_owner", "load_psutil", "uid_owner", "windows_sid"]

SidReader = Callable[[int], str | None]
"""Maps a pid to its token's user SID ("S-1-5-…"), None when it cannot be read."""


@dataclass(frozen=True, slots=True)
class Owner:
    """An account identity: ``uid`` (POSIX), ``sid`` and/or ``name`` (Windows).

    Any field may be None (unknown). ``name`` is "DOMAIN\\user" as the OS spells it;
    comparisons ignore its case, as Windows does.
    """

    uid: int | None = None
    sid: str | None = None
    name: str | None = None

    def same_account(self, other: Owner) -> bool | None:
        """Whether both are the same account, by the strongest identity both have
        (uid, then SID, then name). None when they have no identity in common."""
        if self is other:
            return True
        if self.uid is not None and other.uid is not None:
            return self.uid == other.uid
        if self.sid is not None and other.sid is not None:
            return self.sid.upper() == other.sid.upper()
        if self.name is not None and other.name is not None:
            return self.name.casefold() == other.name.casefold()
        return None

    @property
    def known(self) -> bool:
        """Whether any identity is known."""
        return self.uid is not None or self.sid is not None or self.name is not None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.uid is not None:
            parts.append(f"uid {self.uid}")
        if self.name is not None:
            parts.append(f"user {self.name}")
        if self.sid is not None:
            parts.append(f"SID {self.sid}")
        return ", ".join(parts) or "unknown owner"


@functools.lru_cache(maxsize=256)
def uid_owner(uid: int) -> Owner:
    """The ``Owner`` of ``uid``, cached: peers of the host's own uid get the very object
    the server holds, so the per-connection check is an identity test."""
    return Owner(uid=uid)


def current_owner(
    platform: str = sys.platform,
    *,
    psutil: Any = None,
    sid_of: SidReader | None = None,
    pid: int | None = None,
) -> Owner:
    """The account this process runs as, in the identity ``platform`` provides.

    POSIX: the real uid. Windows: the token's SID (``sid_of``, default ``windows_sid``)
    and the "DOMAIN\\user" name from ``psutil.Process(pid).username()``; either may be
    missing when unreadable. ``psutil`` (a module-like object) and ``pid`` default to the
    real psutil and this process. Never raises; an Owner with no identity makes every
    connection refused.
    """
    if not platform.startswith("win"):
        return uid_owner(os.getuid())
    pid = os.getpid() if pid is None else pid
    sid = (sid_of or windows_sid)(pid)
    name: str | None
    try:
        name = str(load_psutil(psutil).Process(pid).username())
    except Exception:  # psutil missing or the token unreadable: the SID may still do
        name = None
    return Owner(sid=sid, name=name)


def load_psutil(psutil: Any = None) -> Any:
    """``psutil`` when given (a test double), else the real module (imported lazily:
    Linux never needs it on the connection path)."""
    if psutil is not None:
        return psutil
    import psutil as real

    return real


def windows_sid(pid: int) -> str | None:
    """The user SID of ``pid``'s access token ("S-1-5-21-…"), None when unreadable.

    Uses only ctypes (advapi32). Another user's process usually cannot be opened
    without administrator rights: None then, and the caller falls back to the name.
    Always None off Windows. Never raises.
    """
    if sys.platform == "win32":
        try:
            return _read_token_sid(pid)
        except OSError:
            return None
    else:
        return None


if sys.platform == "win32":  # mypy checks this only when run for Windows
    import ctypes
    from ctypes import wintypes

    _PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    _TOKEN_QUERY = 0x0008
    _TOKEN_USER = 1  # TOKEN_INFORMATION_CLASS.TokenUser

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
    _kernel32.OpenProcess.restype = wintypes.HANDLE
    _kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    _kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    _kernel32.LocalFree.argtypes = (wintypes.HLOCAL,)
    _advapi32.OpenProcessToken.argtypes = (
        wintypes.HANDLE,
        wintypes.DWORD,
        ctypes.POINTER(wintypes.HANDLE),
    )
    _advapi32.GetTokenInformation.argtypes = (
        wintypes.HANDLE,
        ctypes.c_int,
        ctypes.c_void_p,
        wintypes.DWORD,
        ctypes.POINTER(wintypes.DWORD),
    )
    _advapi32.ConvertSidToStringSidW.argtypes = (ctypes.c_void_p, ctypes.POINTER(wintypes.LPWSTR))

    def _read_token_sid(pid: int) -> str | None:
        process = _kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not process:
            return None
        try:
            token = wintypes.HANDLE()
            if not _advapi32.OpenProcessToken(process, _TOKEN_QUERY, ctypes.byref(token)):
                return None
            try:
                size = wintypes.DWORD()
                _advapi32.GetTokenInformation(token, _TOKEN_USER, None, 0, ctypes.byref(size))
                if not size.value:
                    return None
                buf = ctypes.create_string_buffer(size.value)
                if not _advapi32.GetTokenInformation(
                    token, _TOKEN_USER, buf, size, ctypes.byref(size)
                ):
                    return None
                # TOKEN_USER starts with SID_AND_ATTRIBUTES, whose first field is the PSID.
                psid = ctypes.cast(buf, ctypes.POINTER(ctypes.c_void_p))[0]
                text = wintypes.LPWSTR()
                if not _advapi32.ConvertSidToStringSidW(psid, ctypes.byref(text)):
                    return None
                try:
                    return text.value
                finally:
                    _kernel32.LocalFree(text)
            finally:
                _kernel32.CloseHandle(token)
        finally:
            _kernel32.CloseHandle(process)
