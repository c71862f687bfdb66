"""systemd-resolved: per-link DNS servers and routing-only domains through ``resolvectl``.

For a tunnel ``rtw0`` with servers ``10.77.0.1`` and suffixes ``corp.example``::

    resolvectl dns rtw0 10.77.0.1
    resolvectl domain rtw0 ~corp.example
    resolvectl default-route rtw0 false

``~`` makes each suffix a *routing-only* domain: names under it go to the link's servers,
nothing else does (and it is not added to the search list), and ``default-route false``
keeps resolved from using the link for other names. ``resolvectl revert rtw0`` drops all
of it; resolved also forgets a link's settings when the link disappears. The result is
checked with ``resolvectl status rtw0`` (:func:`parse_resolvectl_status`).

Detection (:func:`resolved_running`): resolved's varlink socket
``/run/systemd/resolve/io.systemd.Resolve`` exists *and* ``resolvectl status`` answers.
"""

from __future__ import annotations

import contextlib
import re
import stat
from pathlib import Path

import msgspec

from wg_backends.errors import BackendError, CommandError
from wg_backends.runner import CommandRunner

__all__ = [
    "RESOLVED_SOCKET",
    "ResolvedLink",
    "apply_resolved",
    "parse_resolvectl_status",
    "resolved_running",
    "revert_resolved",
]

RESOLVED_SOCKET = Path("/run/systemd/resolve/io.systemd.Resolve")
_LINK = re.compile(r"^Link (\d+) \((.+)\)$")
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z .]*?):\s*(.*)$")


class ResolvedLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``Link N (name)`` block of ``resolvectl status``.

    ``default_route``: the ``+DefaultRoute``/``-DefaultRoute`` flag of ``Protocols``
    (``None`` when the line is missing, as with older systemd).
    """

    index: int
    name: str
    servers: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    default_route: bool | None = None


def parse_resolvectl_status(text: str) -> dict[str, ResolvedLink]:
    """Parse ``resolvectl status [link]`` output into its links, by interface name.

    Handles the one-line lists of systemd ≥ 247 and the continuation lines of older
    versions (further servers on lines of their own). The ``Global`` block is skipped.
    Pure; never raises on odd input (unknown lines are ignored).
    """
    links: dict[str, ResolvedLink] = {}
    current: dict[str, object] | None = None
    last_key = ""

    def flush() -> None:
        if current is not None:
            link = ResolvedLink(**current)  # type: ignore[arg-type]
            links[link.name] = link

    for raw in text.splitlines():
        line = raw.rstrip()
        m = _LINK.match(line)
        if m:
            flush()
            current = {"index": int(m.group(1)), "name": m.group(2)}
            last_key = ""
            continue
        if line == "Global" or not line.strip():
            if line == "Global":
                flush()
                current = None
            last_key = ""
            continue
        if current is None:
            continue
        f = _FIELD.match(line)
        if f:
            key, value = f.group(1).strip(), f.group(2).split()
            last_key = key
        elif last_key in {"DNS Servers", "DNS Domain"}:
            key, value = last_key, line.split()  # an older version's continuation line
        else:
            continue
        if key == "DNS Servers":
            current["servers"] = (*current.get("servers", ()), *value)  # type: ignore[misc]
        elif key == "DNS Domain":
            current["domains"] = (*current.get("domains", ()), *value)  # type: ignore[misc]
        elif key == "Protocols":
            if "+DefaultRoute" in value:
                current["default_route"] = True
            elif "-DefaultRoute" in value:
                current["default_route"] = False
    flush()
    return links


def resolved_running(runner: CommandRunner, socket: Path = RESOLVED_SOCKET) -> bool:
    """Whether systemd-resolved runs here: its socket exists and ``resolvectl`` answers.

    Never raises.
    """
    try:
        if not stat.S_ISSOCK(socket.stat().st_mode):
            return False
    except OSError:
        return False
    try:
        res = runner(["resolvectl", "--no-pager", "status"], check=False, timeout=10)
    except CommandError:
        return False
    return res.returncode == 0


def apply_resolved(
    runner: CommandRunner, interface: str, servers: tuple[str, ...], suffixes: tuple[str, ...]
) -> None:
    """Give ``interface`` its servers and routing-only domains; check; all-or-nothing.

    Raises :class:`BackendError` (after ``resolvectl revert``) when a command fails or
    ``resolvectl status`` does not show the result.
    """
    try:
        runner(["resolvectl", "dns", interface, *servers], timeout=15)
        runner(["resolvectl", "domain", interface, *(f"~{s}" for s in suffixes)], timeout=15)
        runner(["resolvectl", "default-route", interface, "false"], timeout=15)
        res = runner(["resolvectl", "--no-pager", "status", interface], timeout=15)
        link = parse_resolvectl_status(res.stdout).get(interface)
        want = {f"~{s}" for s in suffixes}
        if link is None or not set(servers) <= set(link.servers) or set(link.domains) != want:
            raise BackendError(
                f"systemd-resolved did not take the split DNS of {interface}: "
                f"{res.stdout.strip()[:300]!r}"
            )
        if link.default_route:
            raise BackendError(f"systemd-resolved kept {interface} as a default DNS route")
    except BackendError:
        revert_resolved(runner, interface)
        raise


def revert_resolved(runner: CommandRunner, interface: str) -> None:
    """``resolvectl revert <interface>``: drop every per-link setting. Never raises."""
    with contextlib.suppress(CommandError):
        runner(["resolvectl", "revert", interface], check=False, timeout=15)
