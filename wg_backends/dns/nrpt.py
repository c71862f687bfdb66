"""Windows: Name Resolution Policy Table rules (``Add-DnsClientNrptRule``).

One rule per suffix with the namespaces ``.<suffix>`` (the leading dot: every name under
it) and ``<suffix>`` (the name itself), the tunnel's servers, and the comment
``Rustronaut <interface>``, by which the rules are found and removed again — from the
interface name alone, so a crashed helper's rules are cleaned at the next start. Rules
are added to the local (non-GPO) table; a GPO's rule for the same namespace wins, which
is the administrator's call. The DNS client cache is flushed after a change so earlier
answers from the LAN's servers are not served from it.

Every value in the scripts is validated before (IP literals, LDH suffixes, interface
names of ``[A-Za-z0-9_+.-]``) and single-quoted with quotes doubled anyway.
"""

from __future__ import annotations

import contextlib

from wg_backends.errors import CommandError
from wg_backends.runner import CommandRunner

__all__ = [
    "COMMENT_PREFIX",
    "add_script",
    "apply_nrpt",
    "powershell",
    "remove_script",
    "revert_nrpt",
]

COMMENT_PREFIX = "Rustronaut "


def powershell(script: str) -> list[str]:
    """Argv running ``script`` in Windows PowerShell without profile or prompts."""
    return [
        "powershell.exe",
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-Command",
        script,
    ]


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def remove_script(interface: str) -> str:
    """PowerShell removing every NRPT rule commented ``Rustronaut <interface>``."""
    return (
        "Get-DnsClientNrptRule | Where-Object { $_.Comment -eq "
        + _q(COMMENT_PREFIX + interface)
        + " } | Remove-DnsClientNrptRule -Force"
    )


def add_script(interface: str, servers: tuple[str, ...], suffixes: tuple[str, ...]) -> str:
    """PowerShell replacing this interface's rules by one per suffix; stops on an error."""
    comment = _q(COMMENT_PREFIX + interface)
    names = ",".join(_q(s) for s in servers)
    parts = ["$ErrorActionPreference = 'Stop'", remove_script(interface)]
    parts += [
        f"Add-DnsClientNrptRule -Namespace {_q('.' + s)},{_q(s)} -NameServers {names} "
        f"-Comment {comment}"
        for s in suffixes
    ]
    parts.append("Clear-DnsClientCache")
    return "; ".join(parts)


def apply_nrpt(
    runner: CommandRunner, interface: str, servers: tuple[str, ...], suffixes: tuple[str, ...]
) -> None:
    """Add the rules; on failure remove whatever was added and raise ``CommandError``."""
    try:
        runner(powershell(add_script(interface, servers, suffixes)), timeout=60)
    except CommandError:
        revert_nrpt(runner, interface)
        raise


def revert_nrpt(runner: CommandRunner, interface: str) -> None:
    """Remove this interface's rules and flush the cache. Never raises."""
    script = remove_script(interface) + "; Clear-DnsClientCache"
    with contextlib.suppress(CommandError):  # best effort: never mask the caller's error
        runner(powershell(script), check=False, timeout=60)
