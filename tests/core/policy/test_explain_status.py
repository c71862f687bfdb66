"""``rustronaut status`` says what the windows say (issue 18, Deliver 3 and 4): blocked
resources with the requirement and the current value, the checks the policy requires with
the posture window's words (informational facts not counted), risk by human label."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli.commands.session import format_status
from core.engine.state import PostureItem, SessionState, Snapshot
from tests.core.policy.test_explain_views import FACTS, _adapters

pytestmark = pytest.mark.unit


def test_status_names_requirements_checks_and_risk_in_words(tmp_path: Path) -> None:
    policy, posture = _adapters(tmp_path)
    policy.set_facts({"posture.firewall.enabled": False, "posture.av.running": False})
    resources = policy.resources()
    risk, signals = policy.risk()
    snap = Snapshot(
        state=SessionState.BLOCKED,
        user="ada@corp.example",
        resources=resources,
        posture=posture.items(FACTS),
        risk=risk,
        risk_signals=signals,
    )
    text = format_status(snap, now=0)
    assert (
        "  ✘ Git (git.corp.example, *.git.corp.example) — Needs the firewall on — it is off; "
        "needs group Finance — you are in Engineering (fix: Turn on the firewall" in text
    )
    assert "does not meet yet" not in text
    assert "Risk:      35/100 (Antivirus not running, Firewall off)" in text
    assert "posture." not in text
    assert "deny_streak" not in text
    # Only the firewall is required by this policy: Secure Boot (unknown) and the
    # computer's name are for information and are not counted or listed.
    assert "Checks:    1 check needs attention · 0 of 1 pass" in text
    assert "  ✕ Fail: Firewall — Off" in text
    assert "    fix: Turn on the firewall" in text
    assert "Secure Boot" not in text
    assert "Computer name" not in text


def test_status_unknown_required_check_reads_like_the_window() -> None:
    snap = Snapshot(
        posture=(
            PostureItem(
                "av.running",
                "Antivirus",
                "Could not be checked (no service found)",
                "unknown",
                "Start the antivirus",
            ),
            PostureItem("device.hostname", "Computer name", "ada", "pass", required=False),
        )
    )
    text = format_status(snap, now=0)
    assert "Checks:    1 check could not be made · 0 of 1 pass" in text
    assert "  ? Unknown: Antivirus — Could not be checked (no service found)" in text
    assert "    fix: Start the antivirus" in text
