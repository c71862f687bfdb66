"""The activity window: live policy decisions, filterable, with the current risk score.

Shows ``Actions.activity`` (recorded since start-up) through an ``ActivityFilter``; new
rows scroll into view unless the employee scrolled up. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.activity_model import ActivityFilter
from app.widgets import accessible, caption, heading, muted, window_setup
from core.i18n import translate

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import Snapshot

__all__ = ["ActivityWindow", "risk_text"]


def risk_text(score: int, signals: tuple[str, ...]) -> str:
    """ "Risk 35 / 100 (elevated): new app → resource, burst of denials"."""
    if score < 30:
        level = translate("app.windows.activity", "low")
    elif score < 70:
        level = translate("app.windows.activity", "elevated")
    else:
        level = translate("app.windows.activity", "high")
    if not signals:
        return translate("app.windows.activity", "Risk {score} / 100 ({level})").format(
            score=score, level=level
        )
    return translate("app.windows.activity", "Risk {score} / 100 ({level}): {signals}").format(
        score=score,
        level=level,
        signals=translate("app.windows.activity", ", ", "between risk signals").join(signals),
    )


class ActivityWindow(QWidget):
    """Decisions as they happen."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, translate("app.windows.activity", "Activity"), "activity-window")
        self.model = actions.activity
        self.proxy = ActivityFilter(self)
        self.proxy.setSourceModel(self.model)

        self.risk = heading("", level=2)
        self.hint = muted(
            translate(
                "app.windows.activity",
                "Every connection your apps made through Rustronaut, and why it was allowed "
                "or denied.",
            )
        )

        self.search = QLineEdit()
        self.search.setPlaceholderText(
            translate("app.windows.activity", "Filter by app, destination, rule or reason")
        )
        self.search.setClearButtonEnabled(True)
        accessible(
            self.search,
            translate("app.windows.activity", "Filter"),
            translate("app.windows.activity", "Show only decisions containing this text"),
        )
        self.search.textChanged.connect(self.proxy.set_text)
        self.effect = QComboBox()
        for label, key in (
            (translate("app.windows.activity", "All decisions"), "all"),
            (translate("app.windows.activity", "Allowed"), "allowed"),
            (translate("app.windows.activity", "Denied"), "denied"),
        ):
            self.effect.addItem(label, key)
        accessible(
            self.effect,
            translate("app.windows.activity", "Decision filter"),
            translate("app.windows.activity", "Show all, allowed or denied decisions"),
        )
        self.effect.currentIndexChanged.connect(
            lambda _i: self.proxy.set_effect(str(self.effect.currentData()))
        )
        self.clear = QPushButton(translate("app.windows.activity", "C&lear"))
        accessible(
            self.clear,
            translate("app.windows.activity", "Clear"),
            translate("app.windows.activity", "Forget the decisions shown"),
        )
        self.clear.clicked.connect(self.model.clear)
        filters = QHBoxLayout()
        find = caption(translate("app.windows.activity", "&Find:"), self.search)
        filters.addWidget(find)
        filters.addWidget(self.search, 1)
        filters.addWidget(self.effect)
        filters.addWidget(self.clear)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        accessible(
            self.table,
            translate("app.windows.activity", "Decisions"),
            translate("app.windows.activity", "Time, app, destination, decision, rule and reason"),
        )
        self.count = muted()

        lay = QVBoxLayout(self)
        lay.addWidget(self.risk)
        lay.addWidget(self.hint)
        lay.addLayout(filters)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.count)
        self.resize(self.sizeHint().expandedTo(QSize(900, 480)))

        self.proxy.rowsInserted.connect(self._follow)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        bridge.snapshot_changed.connect(self.on_snapshot)
        self.on_snapshot(bridge.snapshot)
        self._update_count()

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw the risk line from snapshot ``s``."""
        self.risk.setText(risk_text(s.risk, s.risk_signals))

    def _follow(self) -> None:
        bar = self.table.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self._update_count()
        if at_bottom:
            self.table.scrollToBottom()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count.setText(
            translate("app.windows.activity", "%n decisions", None, total)
            if shown == total
            else translate(
                "app.windows.activity", "{shown} of %n decisions shown", None, total
            ).format(shown=shown)
        )
