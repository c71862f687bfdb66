"""macOS: one pf anchor per enforced tunnel, ``com.rustronaut/<iface>``.

Transparent redirect of locally originated TCP is done the way transparent proxies do it
on macOS (mitmproxy, sshuttle): a ``pass out … route-to (lo0 127.0.0.1)`` rule sends the
owner's connections to the ranges onto the loopback interface, where an ``rdr`` rule
rewrites them to the decider's listener (the original destination is then read from pf's
state table with ``DIOCNATLOOK``). The decider's own connections are excluded by group:
the decider runs with the helper-configured ``decider_gid`` as its effective group, and
only that group may send into the tunnel interface (macOS has no ``SO_MARK``, so the
``sockets`` verb is refused there). ``block return`` rules are the kill switch. The
gateway's literal endpoints (UDP) and the relays' resolved address+port pairs (TCP) pass
first, quick, so a ``/0`` tunnel still reaches its gateway and, over TCP, its relays —
those exact pairs only, never redirected. With IPv6 ranges, neighbour discovery out of
any other interface passes too (a ``::/0`` block would cut the LAN's neighbour look-ups).

The main ruleset must reference the anchors (``rdr-anchor "com.rustronaut/*"`` and
``anchor "com.rustronaut/*"``, installed with the helper); rules are loaded with
``pfctl -a <anchor> -f <file>`` and pf is enabled with a reference (``pfctl -E``, token
released with ``pfctl -X``) so other users of pf are not switched off on release.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from wg_backends.firewall.model import Enforcement
from wg_backends.runner import CommandRunner

__all__ = ["ANCHOR_ROOT", "PfFirewall", "anchor_name", "render_anchor"]

ANCHOR_ROOT = "com.rustronaut"
_TOKEN = re.compile(r"Token\s*:\s*(\d+)")


def anchor_name(interface: str) -> str:
    """The pf anchor of ``interface`` (interface names carry no ``/`` or space)."""
    return f"{ANCHOR_ROOT}/{interface}"


def _set(items: Sequence[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def render_anchor(enf: Enforcement, *, decider_gid: int) -> str:
    """The anchor's rules for ``enf``; exact text is tested."""
    rdr: list[str] = []
    rules = ["pass out quick on lo0 all"]
    dns = (*enf.dns4, *enf.dns6)
    if dns:
        rules.append(f"pass out quick proto {{ tcp udp }} from any to {_set(dns)} port 53")
    for host, port in enf.endpoints:
        rules.append(f"pass out quick proto udp from any to {host} port {port}")
    for host, port in enf.relay_endpoints:
        rules.append(f"pass out quick proto tcp from any to {host} port {port}")
    if enf.ranges6:  # neighbour discovery on the LAN (never into the tunnel)
        rules.append(
            f"pass out quick on ! {enf.interface} inet6 proto icmp6 all "
            "icmp6-type { routersol, neighbrsol, neighbradv }"
        )
    for af, loop, ranges in (("inet", "127.0.0.1", enf.ranges4), ("inet6", "::1", enf.ranges6)):
        if not ranges or enf.redirect_port is None:
            continue  # no redirect (kill switch only): the owner's TCP is blocked below
        rdr.append(
            f"rdr pass on lo0 {af} proto tcp from any to {_set(ranges)} -> {loop} "
            f"port {enf.redirect_port}"
        )
        rules.append(
            f"pass out quick on ! lo0 route-to (lo0 {loop}) {af} proto tcp from any to "
            f"{_set(ranges)} user {enf.owner_uid} group != {decider_gid} keep state"
        )
    rules.append(f"pass out quick on {enf.interface} all group {decider_gid} keep state")
    for ranges in (enf.ranges4, enf.ranges6):
        if ranges:
            rules.append(f"block return out quick log from any to {_set(ranges)}")
    rules.append(f"block return out quick log on {enf.interface} all")
    return "\n".join((*rdr, *rules)) + "\n"


class PfFirewall:
    """Loads anchors with ``pfctl`` through the injected runner (blocking)."""

    name = "pf"

    def __init__(
        self, runner: CommandRunner, *, decider_gid: int, workdir: Path | None = None
    ) -> None:
        self._run = runner
        self._gid = decider_gid
        self._workdir = workdir
        self._tokens: dict[str, str] = {}

    def apply(self, enf: Enforcement) -> None:
        """Load (replace) ``enf``'s anchor and hold a pf enable reference for it."""
        fd, path = tempfile.mkstemp(prefix=".pf.", suffix=".rules", dir=self._workdir)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(render_anchor(enf, decider_gid=self._gid))
            self._run(["pfctl", "-a", anchor_name(enf.interface), "-f", path])
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if enf.interface not in self._tokens:
            res = self._run(["pfctl", "-E"])
            m = _TOKEN.search(res.stderr + res.stdout)
            if m:
                self._tokens[enf.interface] = m.group(1)

    def remove(self, interface: str) -> None:
        """Flush ``interface``'s anchor and release its pf reference. Idempotent."""
        self._run(["pfctl", "-a", anchor_name(interface), "-F", "all"], check=False)
        token = self._tokens.pop(interface, None)
        if token is not None:
            self._run(["pfctl", "-X", token], check=False)
