"""The state derivation table."""

from __future__ import annotations

import pytest

from core.engine.machine import SessionFacts, derive
from core.engine.state import SessionState as S

pytestmark = pytest.mark.unit

READY = {
    "signed_in": True,
    "want_connected": True,
    "bundle_valid": True,
    "tunnel_up": True,
    "handshake_ok": True,
    "usable_resources": 1,
}


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        ({}, S.SIGNED_OUT),
        ({"busy": S.SIGNING_IN}, S.SIGNING_IN),
        ({**READY, "busy": S.DISCONNECTING}, S.DISCONNECTING),
        ({**READY, "failed": True}, S.ERROR),
        ({"signed_in": True}, S.DISCONNECTED),
        ({**READY, "bundle_valid": False}, S.CONNECTING),
        ({**READY, "bundle_valid": False, "controller_reachable": False}, S.OFFLINE),
        ({**READY, "tunnel_up": False}, S.CONNECTING),
        ({**READY, "handshake_ok": False}, S.CONNECTING),
        ({**READY, "handshake_ok": False, "controller_reachable": False}, S.CONNECTING),
        ({**READY, "controller_reachable": False}, S.OFFLINE),
        ({**READY, "blocked_resources": 2}, S.DEGRADED),
        ({**READY, "blocked_resources": 2, "usable_resources": 1}, S.DEGRADED),
        # every resource blocked by something fixable: its own state, whatever the handshake
        ({**READY, "blocked_resources": 2, "usable_resources": 0}, S.BLOCKED),
        (
            {**READY, "blocked_resources": 1, "usable_resources": 0, "handshake_ok": False},
            S.BLOCKED,
        ),
        (
            {**READY, "blocked_resources": 1, "usable_resources": 0, "tunnel_up": False},
            S.CONNECTING,
        ),
        ({**READY, "blocked_resources": 1, "failed": True}, S.ERROR),
        (READY, S.CONNECTED),
        ({**READY, "signed_in": False}, S.SIGNED_OUT),
        ({**READY, "want_connected": False}, S.DISCONNECTED),
        # a gateway that went silent after the session was connected: "reconnecting"
        ({**READY, "handshake_ok": False, "reconnecting": True}, S.RECONNECTING),
        ({**READY, "tunnel_up": False, "reconnecting": True}, S.RECONNECTING),
        ({**READY, "reconnecting": True}, S.CONNECTED),  # a handshake again: over
        ({**READY, "handshake_ok": False, "reconnecting": True, "failed": True}, S.ERROR),
    ],
)
def test_derive(facts: dict[str, object], state: S) -> None:
    assert derive(SessionFacts(**facts)) is state  # type: ignore[arg-type]


def test_never_connected_without_bundle_tunnel_and_handshake() -> None:
    """Exhaustively: CONNECTED/DEGRADED imply a valid bundle, a tunnel and a live handshake."""
    import itertools

    names = ["signed_in", "want_connected", "bundle_valid", "tunnel_up", "handshake_ok"]
    for values in itertools.product([False, True], repeat=len(names)):
        for reachable in (False, True):
            f = SessionFacts(
                **dict(zip(names, values, strict=True)), controller_reachable=reachable
            )
            if derive(f) in (S.CONNECTED, S.DEGRADED):
                assert f.bundle_valid
                assert f.tunnel_up
                assert f.handshake_ok
