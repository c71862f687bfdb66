"""The tray and main window say when the tunnel travels over a relay (issue 21), why, and
what happens next — and still name the gateway, never the helper's local bridge."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from app.presenter import menu_model, state_label, tooltip, transport_label, transport_line
from core.engine.state import SessionState, TunnelView
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot

from .test_main_window import fully_visible

pytestmark = pytest.mark.ui

WHY = (
    "This network blocks WireGuard's UDP. Your traffic is carried over an encrypted relay; "
    "it may be slower. We switch back automatically."
)


def _tunnel(kind: str, state: str, reason: str, relay: str | None = None) -> TunnelView:
    return TunnelView(
        "rt0",
        "gw.corp.example:51820",
        2.0,
        1000,
        2000,
        transport=kind,
        relay=relay,
        transport_state=state,
        transport_reason=reason,
        transport_since=1.0,
    )


RELAY = _tunnel("relay", "relay", "udp_blocked", "relay1")


def test_the_state_line_tooltip_and_menu_name_the_relay_and_why() -> None:
    snap = demo_snapshot(SessionState.CONNECTED, tunnel=RELAY)
    assert state_label(snap) == "Connected via relay relay1"
    assert transport_line(snap) == WHY
    assert transport_label(RELAY) == "Encrypted relay relay1"
    assert tooltip(snap).splitlines()[0] == "Rustronaut — Connected via relay relay1"
    menu = menu_model(snap)
    assert menu[0].text == "Connected via relay relay1"
    rows = [e.text for e in menu[1:4]]
    assert " ".join(rows) == WHY  # wrapped, in full, right under the header
    assert all(len(r) <= 60 for r in rows)


@pytest.mark.parametrize(
    ("tunnel", "label", "line"),
    [
        (TunnelView("rt0", "gw:1", 1.0, 0, 0), "Connected", None),  # no relays at all
        (_tunnel("udp", "direct", "udp_ok"), "Connected", None),
        (_tunnel("udp", "direct", "udp_back"), "Connected", None),  # back: nothing to explain
        (
            _tunnel("relay", "relay", "udp_silent", "eu-1"),
            "Connected via relay eu-1",
            "WireGuard's UDP stopped getting through on this network. Your traffic is carried "
            "over an encrypted relay; it may be slower. We switch back automatically.",
        ),
        (
            _tunnel("udp", "no_path", "relays_down"),
            "Connected",
            "This network lets neither WireGuard's UDP nor a relay through. Try another "
            "network (a phone hotspot, for example); if it keeps happening, contact IT.",
        ),
    ],
)
def test_transport_words(tunnel: TunnelView, label: str, line: str | None) -> None:
    snap = demo_snapshot(SessionState.CONNECTED, tunnel=tunnel)
    assert state_label(snap) == label
    assert transport_line(snap) == line


def test_not_connected_says_nothing_about_a_relay() -> None:
    snap = demo_snapshot(SessionState.DISCONNECTED, tunnel=RELAY)
    assert transport_line(snap) is None
    assert state_label(snap) == "Not connected"


async def test_the_main_window_shows_the_relay_and_the_reason_in_full(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED, tunnel=RELAY))
    app = make_app(engine)
    w = app.actions.show_window("main")
    QApplication.processEvents()
    assert w.state_line.text() == "Connected via relay relay1"
    assert w.gateway.text() == "gw.corp.example:51820 (rt0)"  # the gateway, not the bridge
    assert w.transport.text() == "Encrypted relay relay1"
    assert w.transport_why.text() == WHY
    fully_visible(w.transport_why, w)

    # UDP is back: the reason goes, the row says so
    engine.set_state(SessionState.CONNECTED, tunnel=_tunnel("udp", "direct", "udp_back"))
    QApplication.processEvents()
    assert w.transport.text() == "Direct (UDP)"
    assert not w.transport_why.isVisibleTo(w)
    assert w.state_line.text() == "Connected"


async def test_a_hostile_relay_name_is_shown_as_text(make_app) -> None:
    evil = _tunnel("relay", "relay", "udp_blocked", "<b>relay</b>\x1b[2J")
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED, tunnel=evil))
    app = make_app(engine)
    w = app.actions.show_window("main")
    QApplication.processEvents()
    assert "<b>relay</b>" in w.transport.text()
    assert "\x1b" not in w.transport.text()
    assert "\x1b" not in w.state_line.text()
