"""Split DNS for the operating system: names under the tunnel's suffixes go to its servers.

A :class:`~wg_backends.spec.TunnelSpec` with ``dns_suffixes`` never takes over the
system's DNS (wg-quick gets no ``DNS =`` line); the backend calls :func:`apply_split_dns`
after the tunnel is up and the OS's own resolver is configured per platform:

============  =======================================================================
``resolved``  systemd-resolved runs: per-link servers, ``~suffix`` routing-only domains,
              ``default-route false`` (:mod:`wg_backends.dns.resolved`).
``resolvconf``  no resolved, a ``resolvconf``: a record with the servers and a ``search``
              line — global, glibc has no per-domain servers (:mod:`.resolvconf`).
``none``      neither: the system resolver is left alone and the record says so; the
              client's own resolver still resolves company names through the tunnel.
``macos-resolver``  ``/etc/resolver/<suffix>`` files marked as ours (:mod:`.macos`).
``nrpt``      Windows NRPT rules commented ``Rustronaut <interface>`` (:mod:`.nrpt`).
``networkmanager``  NetworkManager applies it from the connection's ``ipv4.dns``,
              ``ipv4.dns-search ~suffix`` and ``ipv4.dns-priority`` (set by that backend).
============  =======================================================================

What was applied is a :class:`DnsRecord`, saved next to the tunnel's config
(:func:`save_record`); :func:`revert_recorded` undoes it from the record alone and
:func:`revert_interface` from the interface name alone (for a lost record after a
crash): both are idempotent and never raise.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import msgspec

from wg_backends.dns.macos import RESOLVER_DIR, remove_resolver_files, write_resolver_files
from wg_backends.dns.nrpt import apply_nrpt, revert_nrpt
from wg_backends.dns.resolvconf import (
    INTERFACE_ORDER,
    apply_resolvconf,
    record_name,
    resolvconf_present,
    revert_resolvconf,
)
from wg_backends.dns.resolved import (
    RESOLVED_SOCKET,
    apply_resolved,
    resolved_running,
    revert_resolved,
)
from wg_backends.errors import BackendError, CommandError
from wg_backends.render import write_private_file
from wg_backends.runner import CommandRunner
from wg_backends.spec import TunnelSpec

__all__ = [
    "METHODS",
    "DnsPaths",
    "DnsRecord",
    "apply_split_dns",
    "choose_linux_method",
    "load_record",
    "record_key",
    "remove_record",
    "revert_interface",
    "revert_recorded",
    "save_record",
    "spec_key",
]

METHODS = ("resolved", "resolvconf", "none", "macos-resolver", "nrpt", "networkmanager")
NO_SYSTEM_DNS = (
    "neither systemd-resolved nor resolvconf is available: the system resolver was left "
    "alone; apps that resolve names themselves do not see the company's names, the "
    "client's own resolver does"
)


class DnsPaths(msgspec.Struct, frozen=True):
    """Where the OS keeps its DNS configuration (tests point these into a temp dir)."""

    resolved_socket: Path = RESOLVED_SOCKET
    interface_order: Path = INTERFACE_ORDER
    resolver_dir: Path = RESOLVER_DIR


class DnsRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What :func:`apply_split_dns` did for one tunnel.

    ``method``: one of :data:`METHODS`. ``name``: the resolvconf record's name.
    ``applied``: the suffixes configured (for ``macos-resolver`` the files written);
    ``skipped``: suffixes left out (a foreign ``/etc/resolver`` file of that name).
    ``note``: why the system's DNS was not (fully) changed, for diagnostics.
    """

    interface: str
    method: str
    servers: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    name: str = ""
    note: str = ""


def choose_linux_method(runner: CommandRunner, paths: DnsPaths | None = None) -> str:
    """``resolved``, ``resolvconf`` or ``none`` for this Linux system. Never raises."""
    paths = paths or DnsPaths()
    if resolved_running(runner, paths.resolved_socket):
        return "resolved"
    if resolvconf_present(runner):
        return "resolvconf"
    return "none"


def apply_split_dns(
    runner: CommandRunner,
    spec: TunnelSpec,
    *,
    platform: str = sys.platform,
    paths: DnsPaths | None = None,
) -> DnsRecord:
    """Configure the OS resolver for ``spec``'s suffixes; return the record. Blocking.

    All-or-nothing: on failure whatever was changed is reverted and
    :class:`BackendError` raised. A spec without suffixes is a ``ValueError`` (global
    DNS belongs to wg-quick's ``DNS =``).
    """
    if not spec.suffixes():
        raise ValueError("apply_split_dns: the spec has no dns_suffixes")
    paths = paths or DnsPaths()
    iface = spec.interface
    servers = tuple(str(a) for a in spec.dns_servers())
    suffixes = spec.suffixes()
    if platform == "darwin":
        try:
            written, skipped = write_resolver_files(iface, servers, suffixes, paths.resolver_dir)
        except OSError as exc:
            raise BackendError(f"cannot write {paths.resolver_dir}: {exc}") from None
        note = (
            f"not ours, left alone: {', '.join(skipped)}" if skipped else ""
        )  # another VPN's or IT's file wins over ours; the client's resolver still works
        return DnsRecord(
            iface, "macos-resolver", servers, tuple(written), tuple(skipped), note=note
        )
    if platform == "win32":
        apply_nrpt(runner, iface, servers, suffixes)
        return DnsRecord(iface, "nrpt", servers, suffixes)
    method = choose_linux_method(runner, paths)
    if method == "resolved":
        apply_resolved(runner, iface, servers, suffixes)
        return DnsRecord(iface, method, servers, suffixes)
    if method == "resolvconf":
        name = record_name(iface, paths.interface_order)
        try:
            apply_resolvconf(runner, name, servers, suffixes)
        except CommandError:
            revert_resolvconf(runner, name)
            raise
        return DnsRecord(iface, method, servers, suffixes, name=name)
    return DnsRecord(iface, "none", servers, (), suffixes, note=NO_SYSTEM_DNS)


def revert_recorded(
    runner: CommandRunner, record: DnsRecord, *, paths: DnsPaths | None = None
) -> None:
    """Undo what ``record`` says was applied. Idempotent; never raises."""
    paths = paths or DnsPaths()
    iface = record.interface
    if record.method == "resolved":
        revert_resolved(runner, iface)
    elif record.method == "resolvconf":
        revert_resolvconf(runner, record.name or record_name(iface, paths.interface_order))
    elif record.method == "macos-resolver":
        remove_resolver_files(iface, record.applied, paths.resolver_dir)
    elif record.method == "nrpt":
        revert_nrpt(runner, iface)
    # "none": nothing was changed; "networkmanager": deleting the connection removes it


def revert_interface(
    runner: CommandRunner,
    interface: str,
    *,
    platform: str = sys.platform,
    paths: DnsPaths | None = None,
    resolvconf: bool = True,
) -> None:
    """Undo split DNS of ``interface`` without a record (after a crash). Never raises.

    Linux: ``resolvectl revert`` where resolved runs and ``resolvconf -d`` where a
    ``resolvconf`` exists (both are no-ops for a link without settings); macOS: every
    ``/etc/resolver`` file marked for this interface; Windows: its NRPT rules.
    ``resolvconf=False`` skips the resolvconf record (a caller that removed it already).
    """
    paths = paths or DnsPaths()
    if platform == "darwin":
        remove_resolver_files(interface, None, paths.resolver_dir)
    elif platform == "win32":
        revert_nrpt(runner, interface)
    else:
        if resolved_running(runner, paths.resolved_socket):
            revert_resolved(runner, interface)
        if resolvconf and resolvconf_present(runner):
            revert_resolvconf(runner, record_name(interface, paths.interface_order))


def record_key(record: DnsRecord | None) -> tuple[tuple[str, ...], frozenset[str]] | None:
    """What a record asked for (servers, suffixes), to tell whether a new spec changes it."""
    if record is None:
        return None
    return record.servers, frozenset(record.applied + record.skipped)


def spec_key(spec: TunnelSpec) -> tuple[tuple[str, ...], frozenset[str]] | None:
    """:func:`record_key` of what ``spec`` asks for (``None`` without split DNS)."""
    if not spec.suffixes():
        return None
    return tuple(str(a) for a in spec.dns_servers()), frozenset(spec.suffixes())


def _record_file(interface: str) -> str:
    return f"{interface}.dns.json"


def save_record(directory: Path, record: DnsRecord) -> Path:
    """Write ``<directory>/<interface>.dns.json`` 0600, atomically. Raises ``OSError``."""
    text = msgspec.json.encode(record).decode("ascii")
    return write_private_file(directory, _record_file(record.interface), text)


def load_record(directory: Path, interface: str) -> DnsRecord | None:
    """The saved record of ``interface``; ``None`` if missing or unreadable. Never raises."""
    try:
        data = (directory / _record_file(interface)).read_bytes()
        record = msgspec.json.decode(data, type=DnsRecord)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return record if record.interface == interface and record.method in METHODS else None


def remove_record(directory: Path, interface: str) -> None:
    """Remove the saved record of ``interface`` if present. Never raises."""
    with contextlib.suppress(OSError):
        (directory / _record_file(interface)).unlink()
