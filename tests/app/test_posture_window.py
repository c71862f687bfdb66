"""The posture window at its default size (issue 18, Deliver 4): human labels; checks
the policy requires apart from facts shown for information, which are never counted;
pass / fail / unknown and the fix readable without resizing."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtWidgets import QApplication

from core.engine.state import PostureItem, SessionState
from tests.app.test_main_window import fully_visible
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui

FIREWALL_FIX = "Turn on the firewall: sudo ufw enable (or: sudo systemctl enable --now firewalld)"
POSTURE = (
    PostureItem("firewall.enabled", "Firewall", "Off", "fail", FIREWALL_FIX, required=True),
    PostureItem("disk.encrypted", "Disk encryption", "On", "pass", required=True),
    PostureItem(
        "av.running",
        "Antivirus",
        "Could not be checked (no antivirus service found: clamav-daemon, falcon-sensor)",
        "unknown",
        "Start the antivirus/EDR agent IT installed (e.g. sudo systemctl start "
        "clamav-daemon), or ask IT to install it",
        required=True,
    ),
    PostureItem("device.hostname", "Computer name", "ada-laptop", "pass", required=False),
    PostureItem("os.kernel", "Kernel version", "6.1.0-18-amd64", "pass", required=False),
    PostureItem("secure_boot.enabled", "Secure Boot", "Off", "fail", required=False),
    PostureItem("mdm.enrolled", "Device management", "Not enrolled", "fail", required=False),
    PostureItem("updates.auto", "Automatic updates", "Off", "fail", required=False),
)


def _window(make_app, posture: tuple[PostureItem, ...] = POSTURE):
    engine = ScriptedEngine(demo_snapshot(SessionState.DEGRADED, posture=posture))
    w = make_app(engine).actions.show_window("posture")
    QApplication.processEvents()
    return engine, w


def rows(tree) -> list[list[str]]:
    return [
        [tree.topLevelItem(i).text(c) for c in range(tree.columnCount())]
        for i in range(tree.topLevelItemCount())
    ]


async def test_only_required_checks_count(make_app) -> None:
    _engine, w = _window(make_app)
    # 4 informational facts fail or pass: none of them counts (was "5 checks need attention")
    assert w.summary.text() == "1 check needs attention · 1 of 3 pass"
    assert w.required_box.title() == "Required by your policy"
    assert [r[0] for r in rows(w.table)] == ["Firewall", "Disk encryption", "Antivirus"]
    assert w.info_box.title() == "For your information"
    assert rows(w.info) == [
        ["Computer name", "ada-laptop"],
        ["Kernel version", "6.1.0-18-amd64"],
        ["Secure Boot", "Off"],
        ["Device management", "Not enrolled"],
        ["Automatic updates", "Off"],
    ]


async def test_status_and_fix_are_readable_at_the_default_size(make_app) -> None:
    _engine, w = _window(make_app)
    default = w.size()
    header = w.table.header()
    metrics = w.table.fontMetrics()
    right = header.sectionViewportPosition(2) + header.sectionSize(2)
    assert right <= w.table.viewport().width(), "Status is off-screen"
    for row in rows(w.table):
        assert header.sectionSize(2) >= metrics.horizontalAdvance(row[2]), row[2]
        assert header.sectionSize(0) >= metrics.horizontalAdvance(row[0]), row[0]
    # The first check needing attention is explained in full below the list.
    assert w.detail.text() == f"Firewall: ✕ Fail — Off\nHow to fix: {FIREWALL_FIX}"
    fully_visible(w.detail, w)
    fully_visible(w.summary, w)
    # The unknown one, selected: its long value and fix wrap, whole.
    w.table.setCurrentItem(w.table.topLevelItem(2))
    assert w.detail.text().startswith("Antivirus: ? Unknown — Could not be checked (no ")
    assert "How to fix: Start the antivirus/EDR agent" in w.detail.text()
    QApplication.processEvents()
    fully_visible(w.detail, w)
    assert w.size() == default


async def test_no_required_checks_is_said_plainly(make_app) -> None:
    _engine, w = _window(make_app, tuple(p for p in POSTURE if not p.required))
    assert w.summary.text() == "Your policy requires no device checks"
    assert w.required_box.isHidden()
    assert not w.info_box.isHidden()


async def test_all_good_counts_required_checks_only(make_app) -> None:
    fixed = tuple(
        dataclasses.replace(p, status="pass", value="On", fix="") for p in POSTURE if p.required
    )
    _engine, w = _window(make_app, fixed + POSTURE[3:])
    assert w.summary.text() == "All good · 3 of 3 checks pass"
    assert w.detail.text() == "Firewall: ✓ Pass — On"
