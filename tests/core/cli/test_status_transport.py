"""``rustronaut status`` says how the tunnel travels (issue 21): UDP or which relay, why,
and since when; ``--json`` carries the same fields (the snapshot as the local API does)."""

from __future__ import annotations

import json
import time

import pytest

from core.cli.commands.session import format_status, snapshot_json, transport_words
from core.engine.state import SessionState, Snapshot, TunnelView

pytestmark = pytest.mark.unit

SINCE = 1_900_000_000.0
AT = time.strftime("%H:%M:%S", time.localtime(SINCE))


def _tunnel(
    kind: str = "", state: str = "", reason: str = "", relay: str | None = None
) -> TunnelView:
    return TunnelView(
        "rt0",
        "gw.example:51820",
        3.0,
        100,
        200,
        transport=kind,
        relay=relay,
        transport_state=state,
        transport_reason=reason,
        transport_since=SINCE if kind else None,
    )


@pytest.mark.parametrize(
    ("tunnel", "line"),
    [
        (_tunnel(), None),  # no relays in the spec: no Transport line
        (_tunnel("udp", "direct", "udp_ok"), "UDP (direct)"),
        (
            _tunnel("relay", "relay", "udp_blocked", "relay1"),
            f"relay relay1 — this network blocks UDP (since {AT})",
        ),
        (
            _tunnel("relay", "relay", "relay_failed", "relay2"),
            f"relay relay2 — the previous relay stopped answering (since {AT})",
        ),
        (_tunnel("udp", "direct", "udp_back"), "UDP (direct) — UDP works again"),
        (
            _tunnel("udp", "no_path", "relays_down"),
            f"none — neither UDP nor any relay gets through (no relay answers) (since {AT})",
        ),
        # a relay name is controller data: control characters never reach the terminal
        (
            _tunnel("relay", "relay", "udp_blocked", "evil\x1b[2J\u202e"),
            f"relay evil\\x1b[2J\\u202e — this network blocks UDP (since {AT})",
        ),
    ],
)
def test_transport_words(tunnel: TunnelView, line: str | None) -> None:
    assert transport_words(tunnel) == line


def test_status_prints_the_transport_under_the_tunnel_and_names_the_gateway() -> None:
    snap = Snapshot(
        state=SessionState.CONNECTED, tunnel=_tunnel("relay", "relay", "udp_blocked", "relay1")
    )
    lines = format_status(snap, now=SINCE).splitlines()
    tunnel = next(i for i, ln in enumerate(lines) if ln.startswith("Tunnel:"))
    assert "gw.example:51820" in lines[tunnel]
    assert "127.0.0.1" not in lines[tunnel]
    assert lines[tunnel + 1] == f"Transport: relay relay1 — this network blocks UDP (since {AT})"


def test_status_json_has_the_transport_fields() -> None:
    snap = Snapshot(
        state=SessionState.CONNECTED, tunnel=_tunnel("relay", "relay", "udp_blocked", "relay1")
    )
    tunnel = json.loads(snapshot_json(snap))["tunnel"]
    assert tunnel["transport"] == "relay"
    assert tunnel["relay"] == "relay1"
    assert tunnel["transport_reason"] == "udp_blocked"
    assert tunnel["transport_state"] == "relay"
    assert tunnel["transport_since"] == SINCE
    assert tunnel["gateway"] == "gw.example:51820"
