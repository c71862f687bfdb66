"""Per-tunnel enforcement rules: transparent redirect to the decider, and the kill switch.

:class:`Enforcement` is the typed model (built by the helper from its own record of the
tunnel); :class:`Firewall` is what the helper drives. Linux: :class:`NftFirewall`
(nftables, applied for real); macOS: :class:`PfFirewall` (pf anchors through the
injected runner); Windows: :func:`render_filters` (WinDivert filters, rendering only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wg_backends.firewall.model import (
    MARK_BASE,
    Enforcement,
    block_table_name,
    interface_of_table,
    literal_endpoints,
    mark_for,
    split_ranges,
    table_name,
)
from wg_backends.firewall.nft import NftFirewall, render_block, render_enforcement
from wg_backends.firewall.pf import PfFirewall, anchor_name, render_anchor
from wg_backends.firewall.windivert import render_filters

__all__ = [
    "MARK_BASE",
    "Enforcement",
    "Firewall",
    "NftFirewall",
    "PfFirewall",
    "anchor_name",
    "block_table_name",
    "interface_of_table",
    "literal_endpoints",
    "mark_for",
    "render_anchor",
    "render_block",
    "render_enforcement",
    "render_filters",
    "split_ranges",
    "table_name",
]


class Firewall(Protocol):
    """What the helper drives. Blocking; raises ``WgError`` subclasses when refused."""

    name: str

    def apply(self, enf: Enforcement) -> None:
        """Install or atomically replace ``enf`` (and end any always-on block)."""
        ...

    def remove(self, interface: str) -> None:
        """Remove ``interface``'s rules. Idempotent."""
        ...


class BlockingFirewall(Firewall, Protocol):
    """A firewall that can also hold the always-on block and reconcile at start."""

    def block(
        self,
        ranges: Sequence[str],
        *,
        endpoints: Sequence[str] = (),
        relay_endpoints: Sequence[str] = (),
    ) -> None: ...

    def unblock(self) -> None: ...

    def reconcile(self, live: Sequence[str], *, keep_block: bool) -> list[str]: ...
