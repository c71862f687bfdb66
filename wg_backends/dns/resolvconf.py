"""``resolvconf`` (openresolv or Debian's): the fallback where systemd-resolved is absent.

glibc's resolver has no per-domain servers, so this is *global*: the record makes the
tunnel's servers the system's resolvers (``-m 0 -x``: first and exclusive, as wg-quick
does for its ``DNS =``) and adds the suffixes as ``search`` domains. Company names still
resolve only inside the tunnel; other names then also go to the company's servers — the
documented price of a system without resolved. The record is named like wg-quick's
(``<prefix><interface>``, the prefix from Debian's ``interface-order``), so either's
clean-up finds it.

``resolvconf -a`` reads the record on stdin; the command runner has none by design, so
a fixed ``sh -c`` script feeds it from its positional arguments (never interpolated into
the script): ``sh -c 'n=$1; shift; printf "%s\\n" "$@" | resolvconf -a "$n" -m 0 -x'``.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from wg_backends.errors import CommandError
from wg_backends.runner import CommandRunner

__all__ = [
    "FEED_SCRIPT",
    "INTERFACE_ORDER",
    "apply_resolvconf",
    "record_lines",
    "record_name",
    "resolvconf_present",
    "revert_resolvconf",
]

INTERFACE_ORDER = Path("/etc/resolvconf/interface-order")
FEED_SCRIPT = 'n="$1"; shift; printf \'%s\\n\' "$@" | resolvconf -a "$n" -m 0 -x'
_PREFIX_LINE = re.compile(r"([A-Za-z0-9-]+)\*")


def record_name(interface: str, order_file: Path = INTERFACE_ORDER) -> str:
    """The record name wg-quick would use: ``<first "name*" of interface-order>.<if>``."""
    with contextlib.suppress(OSError, UnicodeError):
        for line in order_file.read_text().splitlines():
            m = _PREFIX_LINE.fullmatch(line.strip())
            if m:
                return f"{m.group(1)}.{interface}"
    return interface


def record_lines(servers: tuple[str, ...], suffixes: tuple[str, ...]) -> list[str]:
    """The record's resolv.conf lines (validated values only: IP literals, LDH names)."""
    lines = [f"nameserver {s}" for s in servers]
    if suffixes:
        lines.append("search " + " ".join(suffixes))
    return lines


def resolvconf_present(runner: CommandRunner) -> bool:
    """Whether a ``resolvconf`` program can be run. Never raises."""
    try:
        res = runner(["resolvconf", "--version"], check=False, timeout=10)
    except CommandError:
        return False
    return res.returncode != 127


def apply_resolvconf(
    runner: CommandRunner, name: str, servers: tuple[str, ...], suffixes: tuple[str, ...]
) -> None:
    """Add (or replace) the record ``name``. Raises :class:`CommandError`."""
    runner(["sh", "-c", FEED_SCRIPT, "sh", name, *record_lines(servers, suffixes)], timeout=15)


def revert_resolvconf(runner: CommandRunner, name: str) -> None:
    """``resolvconf -d <name> -f``: remove the record if present. Never raises."""
    with contextlib.suppress(CommandError):
        runner(["resolvconf", "-d", name, "-f"], check=False, timeout=15)
