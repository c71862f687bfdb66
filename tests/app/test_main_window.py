"""The main window at its default size (issue 18, Deliver 3): a blocked resource's reason
and fix are shown in full in a details pane that wraps (not cut off in a column, not only
in a tooltip), its address can be copied, and the status column stays on screen."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from core.engine.state import ResourceView, SessionState
from tests.fakes.scripted_engine import RESOURCES, ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui

REASON = (
    "Needs the firewall on — it is off; needs disk encryption on — it is off; needs group "
    "Finance or Payroll — you are in Engineering and Support"
)
FIX = (
    "Turn on the firewall: sudo ufw enable (or: sudo systemctl enable --now firewalld); "
    "Encrypt the system disk: Linux full-disk encryption (LUKS) is chosen at install time — "
    "reinstall with disk encryption or ask IT.; Ask IT for access: your account is not in a "
    "group this needs."
)
PAYROLL = ResourceView("Payroll", "payroll.corp.example:443", False, REASON, FIX, fixable=True)


def fully_visible(label: QLabel, window: QWidget) -> None:
    """``label`` shows all of its text inside ``window``: not clipped, not elided."""
    assert label.isVisibleTo(window), label.text()[:40]
    rect = QRect(label.mapTo(window, QPoint(0, 0)), label.size())
    assert window.rect().contains(rect), f"{label.text()[:40]!r} outside the window"
    assert label.width() >= label.minimumSizeHint().width() - 1, label.text()[:40]
    if label.wordWrap():
        need = label.heightForWidth(label.width())
        assert label.height() >= need - 1, f"{label.text()[:40]!r}: {label.height()} < {need}"
    else:
        assert label.width() >= label.fontMetrics().horizontalAdvance(label.text())


def _window(make_app, **changes: object):
    resources = (RESOURCES[0], PAYROLL, *RESOURCES[2:])
    engine = ScriptedEngine(demo_snapshot(SessionState.DEGRADED, resources=resources, **changes))
    app = make_app(engine)
    w = app.actions.show_window("main")
    QApplication.processEvents()
    return engine, w


async def test_a_blocked_resource_is_explained_in_full_at_the_default_size(make_app) -> None:
    _engine, w = _window(make_app)
    default = w.size()
    assert w.detail_box.title() == "Payroll"  # the first blocked resource, unasked
    assert w.detail_status.text() == "✕ Blocked"
    assert w.detail_why.text() == f"Why: {REASON}"
    assert w.detail_fix.text() == f"How to fix: {FIX}"
    assert w.size() == default
    for label in (w.detail_status, w.detail_address, w.detail_why, w.detail_fix):
        fully_visible(label, w)
    assert w.state_line.text()
    fully_visible(w.state_line, w)


async def test_the_status_column_is_on_screen_at_the_default_size(make_app) -> None:
    long_address = ResourceView("Data lake", ", ".join(f"10.{i}.0.0/16" for i in range(12)), True)
    _engine, w = _window(make_app)
    w.on_snapshot(dataclasses.replace(w._bridge.snapshot, resources=(PAYROLL, long_address)))
    header = w.resources.header()
    right = header.sectionViewportPosition(2) + header.sectionSize(2)
    assert right <= w.resources.viewport().width()
    metrics = w.resources.fontMetrics()
    for i in range(w.resources.topLevelItemCount()):
        word = w.resources.topLevelItem(i).text(2)
        assert header.sectionSize(2) >= metrics.horizontalAdvance(word), word


async def test_copy_address_puts_the_selected_resources_address_on_the_clipboard(
    make_app,
) -> None:
    _engine, w = _window(make_app)
    QGuiApplication.clipboard().clear()
    w.copy_address.click()
    assert QGuiApplication.clipboard().text() == "payroll.corp.example:443"
    w.resources.setCurrentItem(w.resources.topLevelItem(3))  # Build farm
    assert w.detail_box.title() == "Build farm"
    assert w.detail_status.text() == "✓ Reachable"
    assert w.detail_why.isHidden()
    w.copy_address.click()
    assert QGuiApplication.clipboard().text() == "10.20.0.0/16"


async def test_the_pane_follows_the_snapshot(make_app) -> None:
    engine, w = _window(make_app)
    fixed = tuple(dataclasses.replace(r, reachable=True, reason="", fix="") for r in RESOURCES)
    engine.publish(dataclasses.replace(engine.snapshot, resources=fixed))
    assert w.detail_box.title() == "Git server"  # nothing blocked: the first one
    assert w.detail_fix.isHidden()
    engine.publish(dataclasses.replace(engine.snapshot, state=SessionState.DISCONNECTED))
    assert w.detail_status.text() == "– Not connected"
    assert w.detail_fix.text() == "How to fix: Connect to reach it."


async def test_no_resources_hides_the_pane(make_app) -> None:
    engine = ScriptedEngine()
    w = make_app(engine).actions.show_window("main")
    assert w.detail_box.isHidden()


async def test_blocked_state_shows_the_fix_box_and_the_pane_in_full(make_app) -> None:
    blocked = tuple(
        dataclasses.replace(PAYROLL, name=name, address=f"{name.lower()}.corp.example:443")
        for name in ("Payroll", "Git", "Wiki", "Builds")
    )
    engine = ScriptedEngine(
        demo_snapshot(SessionState.BLOCKED, resources=blocked, clock_skew_s=900.0)
    )
    w = make_app(engine).actions.show_window("main")
    QApplication.processEvents()
    assert w.height() <= w.screen().availableGeometry().height()
    assert not w.fix_box.isHidden()
    assert f"To fix: {FIX}" in w.fix_text.text()
    assert w.detail_fix.isHidden()  # the same fix is in the box just above
    for label in (w.fix_text, w.detail_status, w.detail_why):
        fully_visible(label, w)
