"""The posture window: every device check with pass / fail / unknown and the fix.

"Check again" asks the engine to re-collect (in the background); the list redraws when
the new snapshot arrives. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets import STATUS_COLOURS, accessible, heading, muted, plain_tip, window_setup

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import Snapshot

__all__ = ["STATUS_TEXT", "PostureWindow"]

#: Status word and colour key per posture status.
STATUS_TEXT = {
    "pass": ("✓ Pass", "ok"),
    "fail": ("✕ Fail", "fail"),
    "unknown": ("? Unknown", "unknown"),
}


class PostureWindow(QWidget):
    """Device posture checks."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, "Device posture", "posture-window")
        self.summary = heading("", level=2)
        self.hint = muted(
            "Your organization checks these before granting access. Fix any failed item, "
            "then choose Check again."
        )
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Check", "Value", "Status", "How to fix"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)
        self.table.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.header().setStretchLastSection(True)
        accessible(self.table, "Posture checks", "Each device check, its result and how to fix it")
        self.recheck = QPushButton("&Check again")
        accessible(self.recheck, "Check again", "Collect the device posture again now")
        self.recheck.clicked.connect(actions.recheck_posture)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.recheck)

        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.hint)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        self.resize(self.sizeHint().expandedTo(QSize(680, 400)))
        bridge.snapshot_changed.connect(self.on_snapshot)
        self.on_snapshot(bridge.snapshot)

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw from snapshot ``s``."""
        self.table.clear()
        passed = sum(1 for p in s.posture if p.status == "pass")
        failed = sum(1 for p in s.posture if p.status == "fail")
        if not s.posture:
            self.summary.setText("No posture checks yet")
        elif failed:
            total = len(s.posture)
            need = "1 check needs" if failed == 1 else f"{failed} checks need"
            self.summary.setText(f"{need} attention · {passed} of {total} pass")
        else:
            self.summary.setText(f"All good · {passed} of {len(s.posture)} checks pass")
        for p in s.posture:
            word, colour = STATUS_TEXT.get(p.status, STATUS_TEXT["unknown"])
            item = QTreeWidgetItem([p.label, p.value, word, p.fix if p.status != "pass" else ""])
            item.setForeground(2, STATUS_COLOURS[colour])
            item.setToolTip(3, plain_tip(p.fix))
            self.table.addTopLevelItem(item)
