"""The posture window: the checks your policy requires, with pass / fail / unknown and the
fix, apart from the facts shown only for your information.

Only required checks count ("1 check needs attention"): a fact the policy does not read
(the computer's name, the OS build) is listed under "For your information" and never
counted. The selected check (at first, the first one needing attention) is explained
below the list in full, wrapped: its status word and shape, its value and how to fix it.
"Check again" asks the engine to re-collect (in the background); the lists redraw when
the new snapshot arrives. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets import accessible, heading, muted, plain_tip, status_colour, text, window_setup
from core.engine.state import POSTURE_STATUS_WORDS, posture_summary
from core.i18n import translate

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import PostureItem, Snapshot

__all__ = ["STATUS_TEXT", "PostureWindow"]

#: Status word (with its shape, so colour is never the only signal) and colour key. The
#: words are ``core.engine.state``'s, English: :func:`_status` translates them.
STATUS_TEXT = {
    "pass": (POSTURE_STATUS_WORDS["pass"], "ok"),
    "fail": (POSTURE_STATUS_WORDS["fail"], "fail"),
    "unknown": (POSTURE_STATUS_WORDS["unknown"], "unknown"),
}

_STATUS_ROLE = Qt.ItemDataRole.UserRole + 1  # the colour key kept on the status cell
_INDEX_ROLE = Qt.ItemDataRole.UserRole + 2  # the row's index in the shown checks
_VALUE_CHARS = 18  # the Value column's width in characters (longer values elide; tooltip)


def _status(status: str) -> tuple[str, str]:
    """The translated status word of ``status`` (unknown for any other) and its colour key."""
    word, colour = STATUS_TEXT.get(status, STATUS_TEXT["unknown"])
    return translate("core.engine.state", word), colour


def _table(headers: list[str], name: str, description: str) -> QTreeWidget:
    tree = QTreeWidget()
    tree.setHeaderLabels(headers)
    tree.setRootIsDecorated(False)
    tree.setAlternatingRowColors(True)
    tree.setWordWrap(True)
    tree.header().setStretchLastSection(True)
    accessible(tree, name, description)
    return tree


class PostureWindow(QWidget):
    """Device posture checks."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, translate("app.windows.posture", "Device posture"), "posture-window")
        self._bridge = bridge
        self._items: list[PostureItem] = []
        self.summary = heading("", level=2)
        self.hint = muted(
            translate(
                "app.windows.posture",
                "Your organization checks these before granting access. Fix any failed item, "
                "then choose Check again.",
            )
        )
        self.table = _table(
            [
                translate("app.windows.posture", "Check"),
                translate("app.windows.posture", "Value"),
                translate("app.windows.posture", "Status"),
                translate("app.windows.posture", "How to fix"),
            ],
            translate("app.windows.posture", "Required checks"),
            translate(
                "app.windows.posture",
                "Each check your policy requires, its result and how to fix it",
            ),
        )
        header = self.table.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        # A long value must not push Status and How to fix off-screen: it elides (its
        # tooltip and the details below show it whole).
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, self.fontMetrics().horizontalAdvance("x" * _VALUE_CHARS))
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.currentItemChanged.connect(lambda *_: self._show_detail())
        self.required_box = QGroupBox(translate("app.windows.posture", "Required by your policy"))
        lay_req = QVBoxLayout(self.required_box)
        lay_req.addWidget(self.table, 1)
        self.detail = text(selectable=True)
        accessible(
            self.detail,
            translate("app.windows.posture", "Selected check"),
            translate("app.windows.posture", "The selected check and how to fix it"),
        )
        lay_req.addWidget(self.detail)

        self.info = _table(
            [translate("app.windows.posture", "Fact"), translate("app.windows.posture", "Value")],
            translate("app.windows.posture", "For your information"),
            translate(
                "app.windows.posture",
                "What Rustronaut knows about this device; your policy does not require these",
            ),
        )
        self.info.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.info_box = QGroupBox(translate("app.windows.posture", "For your information"))
        lay_info = QVBoxLayout(self.info_box)
        lay_info.addWidget(self.info)

        self.recheck = QPushButton(translate("app.windows.posture", "&Check again"))
        accessible(
            self.recheck,
            translate("app.windows.posture", "Check again"),
            translate("app.windows.posture", "Collect the device posture again now"),
        )
        self.recheck.clicked.connect(actions.recheck_posture)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.recheck)

        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.hint)
        lay.addWidget(self.required_box, 3)
        lay.addWidget(self.info_box, 2)
        lay.addLayout(row)
        self.resize(self.sizeHint().expandedTo(QSize(720, 560)))
        bridge.snapshot_changed.connect(self.on_snapshot)
        self.on_snapshot(bridge.snapshot)

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw from snapshot ``s``."""
        self.table.clear()
        self.info.clear()
        self._items = []
        required = [p for p in s.posture if p.required]
        self.summary.setText(posture_summary(s.posture))
        first: QTreeWidgetItem | None = None
        for p in required:
            word, colour = _status(p.status)
            fix = p.fix if p.status != "pass" else ""
            item = QTreeWidgetItem([p.label, p.value, word, fix])
            item.setData(2, _STATUS_ROLE, colour)
            item.setToolTip(1, plain_tip(p.value))
            item.setToolTip(3, plain_tip(fix))
            self.table.addTopLevelItem(item)
            item.setData(0, _INDEX_ROLE, len(self._items))
            self._items.append(p)
            if first is None and p.status != "pass":
                first = item
        for p in s.posture:
            if not p.required:
                item = QTreeWidgetItem([p.label, p.value])
                item.setToolTip(1, plain_tip(p.value))
                self.info.addTopLevelItem(item)
        self.required_box.setVisible(bool(required) or not s.posture)
        self.info_box.setVisible(self.info.topLevelItemCount() > 0)
        self._recolour()
        current = first or self.table.topLevelItem(0)
        if current is not None:
            self.table.setCurrentItem(current)
        self._show_detail()

    def _show_detail(self) -> None:
        item = self.table.currentItem()
        index = item.data(0, _INDEX_ROLE) if item is not None else None
        p = self._items[index] if isinstance(index, int) else None
        if p is None:
            self.detail.setText("")
            self.detail.hide()
            return
        word, _ = _status(p.status)
        lines = [
            translate("app.windows.posture", "{check}: {status} — {value}").format(
                check=p.label, status=word, value=p.value
            )
        ]
        if p.status != "pass" and p.fix:
            lines.append(translate("app.windows.posture", "How to fix: {fix}").format(fix=p.fix))
        self.detail.setText("\n".join(lines))
        self.detail.show()

    def _recolour(self) -> None:
        palette = self.table.palette()
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            if item is None:
                continue
            key = item.data(2, _STATUS_ROLE)
            item.setForeground(2, status_colour(str(key), palette))

    def changeEvent(self, event: QEvent) -> None:
        """Status colours follow the theme (light or dark) when it changes."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self._recolour()
