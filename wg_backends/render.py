"""Render a :class:`TunnelSpec` into a wg-quick config and write it safely.

The renderer writes only the keys it knows (``PrivateKey``, ``Address``, ``DNS``, ``MTU``;
``PublicKey``, ``PresharedKey``, ``Endpoint``, ``AllowedIPs``, ``PersistentKeepalive``),
from values re-serialised out of parsed ``ipaddress`` objects, never a hook key
(``PreUp``/``PostUp``/``PreDown``/``PostDown``/``SaveConfig``/``Table``/``FwMark``). The
spec has already refused newlines, ``=``, ``#`` and control characters, and
:func:`render_wg_quick` checks its own output line by line again as a last guard.

A spec with ``dns_suffixes`` (split DNS) gets no ``DNS =`` line: wg-quick would make the
servers the resolvers of the whole system; the backend applies the suffixes itself
(:mod:`wg_backends.dns`). :func:`render_wg_set` renders the same spec for ``wg syncconf``
(no ``Address``/``DNS``/``MTU``: those are wg-quick's, not ``wg``'s).

Config files are written 0600, atomically (temporary file + fsync + rename), only into a
directory owned by the current user and writable by nobody else.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

from wg_backends.errors import SpecError
from wg_backends.spec import TunnelSpec, parse_endpoint

__all__ = [
    "ALLOWED_KEYS",
    "check_private_dir",
    "remove_config",
    "render_wg_quick",
    "render_wg_set",
    "write_config",
    "write_private_file",
]

ALLOWED_KEYS = frozenset(
    {
        "PrivateKey",
        "Address",
        "DNS",
        "MTU",
        "PublicKey",
        "PresharedKey",
        "Endpoint",
        "AllowedIPs",
        "PersistentKeepalive",
    }
)
# ``wg setconf``/``syncconf`` keys: the device's own, without wg-quick's extensions.
_WG_SET_KEYS = frozenset(
    {
        "PrivateKey",
        "ListenPort",
        "FwMark",
        "PublicKey",
        "PresharedKey",
        "Endpoint",
        "AllowedIPs",
        "PersistentKeepalive",
    }
)
_LINE = re.compile(r"(?:\[(?:Interface|Peer)\]|([A-Za-z]+) = [A-Za-z0-9+/=.:,\[\] -]+|)")


def render_wg_quick(spec: TunnelSpec) -> str:
    """Return the wg-quick config text of ``spec``.

    Raises :class:`SpecError` when the spec has no private key. Pure and deterministic.
    """
    spec.validate(require_private_key=True)
    assert spec.private_key is not None
    lines = ["[Interface]", f"PrivateKey = {spec.private_key}"]
    lines.append("Address = " + ", ".join(str(i) for i in spec.interfaces()))
    if spec.dns and not spec.suffixes():  # split DNS is applied per OS, never globally
        lines.append("DNS = " + ", ".join(str(a) for a in spec.dns_servers()))
    if spec.mtu is not None:
        lines.append(f"MTU = {int(spec.mtu)}")
    return _finish(spec, lines, ALLOWED_KEYS)


def render_wg_set(
    spec: TunnelSpec, *, listen_port: int | None = None, fwmark: int | None = None
) -> str:
    """Return the ``wg setconf``/``syncconf`` text of ``spec`` (what ``wg-quick strip`` gives).

    ``listen_port`` and ``fwmark`` are the live device's (read by the caller): ``setconf``
    and ``syncconf`` reset both to 0 when the file omits them, which would move the socket
    and break wg-quick's full-tunnel policy routing. Raises :class:`SpecError` without a
    private key or for an out-of-range port or mark. Pure and deterministic.
    """
    spec.validate(require_private_key=True)
    assert spec.private_key is not None
    lines = ["[Interface]", f"PrivateKey = {spec.private_key}"]
    if listen_port is not None:
        if not (isinstance(listen_port, int) and 0 <= listen_port <= 65535):
            raise SpecError(f"render: listen port {listen_port!r} outside 0-65535")
        lines.append(f"ListenPort = {listen_port}")
    if fwmark is not None:
        if not (isinstance(fwmark, int) and 0 <= fwmark <= 0xFFFFFFFF):
            raise SpecError(f"render: fwmark {fwmark!r} outside 0-0xffffffff")
        lines.append(f"FwMark = {fwmark}")
    return _finish(spec, lines, _WG_SET_KEYS)


def _finish(spec: TunnelSpec, lines: list[str], allowed: frozenset[str]) -> str:
    """Append the peers to ``lines``, check every line's grammar and key, join."""
    for peer in spec.peers:
        host, port = parse_endpoint(peer.endpoint)
        endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines += ["", "[Peer]", f"PublicKey = {peer.public_key}"]
        if peer.preshared_key is not None:
            lines.append(f"PresharedKey = {peer.preshared_key}")
        lines.append(f"Endpoint = {endpoint}")
        lines.append("AllowedIPs = " + ", ".join(str(n) for n in peer.networks()))
        if peer.persistent_keepalive is not None:
            lines.append(f"PersistentKeepalive = {int(peer.persistent_keepalive)}")
    for line in lines:  # last guard: the output grammar is tiny, check it
        m = _LINE.fullmatch(line)
        if m is None or (m.group(1) is not None and m.group(1) not in allowed):
            raise SpecError(f"render: refusing to write line {line[:60]!r}")
    return "\n".join(lines) + "\n"


def check_private_dir(directory: Path) -> None:
    """Create ``directory`` (0700) if needed and check it is ours and not writable by others.

    Raises ``PermissionError`` if it is owned by someone else or
    group/other-writable, or is a symlink. Idempotent.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(directory)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{directory} is not a real directory")
    if not hasattr(os, "geteuid"):
        return  # Windows: the directory's ACL (admins + SYSTEM only) is set by the installer
    if st.st_uid != os.geteuid():
        raise PermissionError(f"{directory} is owned by uid {st.st_uid}, not {os.geteuid()}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"{directory} is writable by group or others")


def write_config(spec: TunnelSpec, directory: Path) -> Path:
    """Render ``spec`` and write ``<directory>/<interface>.conf`` 0600, atomically.

    Nothing is written if rendering fails. Raises :class:`SpecError` or ``OSError``
    (including ``PermissionError`` from :func:`check_private_dir`). Idempotent: rewriting
    the same spec yields the same file.
    """
    return write_private_file(directory, f"{spec.interface}.conf", render_wg_quick(spec))


def write_private_file(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``<directory>/<name>`` 0600, atomically (temp file, fsync, rename).

    ``directory`` is created/checked with :func:`check_private_dir`; ``name`` must be a
    plain file name. Raises ``OSError`` (``PermissionError`` for an unsafe directory) or
    ``ValueError`` for a name with a path separator. Nothing is left behind on failure.
    """
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ValueError(f"not a plain file name: {name!r}")
    check_private_dir(directory)
    final = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return final


def remove_config(directory: Path, interface: str) -> None:
    """Remove ``<directory>/<interface>.conf`` if present. Idempotent."""
    with contextlib.suppress(FileNotFoundError):
        (directory / f"{interface}.conf").unlink()
