"""The live log of policy decisions behind the Activity window.

``ActivityModel`` is a table model fed by ``EngineBridge.decision`` from start-up on, so
decisions made before the window is first opened are not lost; it keeps the newest
``limit`` rows (a ring: memory stays flat on a busy machine). ``ActivityFilter`` narrows
by free text (app, destination, rule, reason) and by effect. Our own words (column titles,
"Allowed"/"Denied") are in the installed language (``core.i18n``, context
``app.activity_model``); the decisions' data is shown as given. GUI thread only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QGuiApplication

from app.plain import clean
from app.widgets import plain_tip, status_colour
from core.engine.state import Event
from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = ["COLUMNS", "ActivityFilter", "ActivityModel", "ActivityRow"]

#: Column titles (English; ``headerData`` shows them translated).
COLUMNS = (
    QT_TRANSLATE_NOOP("app.activity_model", "Time"),
    QT_TRANSLATE_NOOP("app.activity_model", "App"),
    QT_TRANSLATE_NOOP("app.activity_model", "Destination"),
    QT_TRANSLATE_NOOP("app.activity_model", "Decision"),
    QT_TRANSLATE_NOOP("app.activity_model", "Rule"),
    QT_TRANSLATE_NOOP("app.activity_model", "Reason"),
)

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One decision as displayed."""

    time: float
    app: str
    destination: str
    allowed: bool
    rule: str
    reason: str
    risk: int
    signals: tuple[str, ...]

    @classmethod
    def from_event(cls, event: Event) -> ActivityRow:
        """Build from a DECISION event (a missing decision is shown as a deny).

        App, destination, rule, reason and signals may come from a local program (a SOCKS
        host name) or the controller: every one is escaped (``app.plain.clean``).
        """
        d = event.decision
        return cls(
            time=event.time,
            app=clean(event.app) or translate("app.activity_model", "unknown app"),
            destination=clean(event.destination) or "?",
            allowed=bool(d and d.allowed),
            rule=(
                clean(d.rule_id)
                if d and d.rule_id
                else translate("app.activity_model", "default deny")
            ),
            reason=clean((d.reason if d else event.message) or ""),
            risk=d.risk if d else 0,
            signals=tuple(clean(x) for x in d.signals) if d else (),
        )

    def cells(self) -> tuple[str, ...]:
        """Display strings, in ``COLUMNS`` order."""
        return (
            time.strftime("%H:%M:%S", time.localtime(self.time)),
            self.app,
            self.destination,
            translate("app.activity_model", "Allowed")
            if self.allowed
            else translate("app.activity_model", "Denied"),
            self.rule,
            self.reason,
        )


class ActivityModel(QAbstractTableModel):
    """Decisions, oldest first, capped at ``limit`` rows."""

    def __init__(self, limit: int = 5000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ActivityRow] = []
        self._limit = limit

    @property
    def rows(self) -> tuple[ActivityRow, ...]:
        """A copy of the rows, oldest first."""
        return tuple(self._rows)

    def add_event(self, event: Event) -> None:
        """Slot for ``EngineBridge.decision``: append one row (drop the oldest if full)."""
        if len(self._rows) >= self._limit:
            self.beginRemoveRows(QModelIndex(), 0, 0)
            del self._rows[0]
            self.endRemoveRows()
        n = len(self._rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self._rows.append(ActivityRow.from_event(event))
        self.endInsertRows()

    def clear(self) -> None:
        """Forget every row."""
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Qt: rows under the root."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Qt: fixed columns."""
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """Qt: cell text, colour for the decision column, full reason as tooltip."""
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return row.cells()[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 3:
            # readable in light and dark themes alike (the application's palette now)
            palette = QGuiApplication.palette()
            return QBrush(status_colour("ok" if row.allowed else "fail", palette))
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = ""
            if row.signals:
                extra = "\n" + translate("app.activity_model", "Risk {risk}: {signals}").format(
                    risk=row.risk, signals=", ".join(row.signals)
                )
            return plain_tip(f"{row.reason}{extra}")
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        """Qt: column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return translate("app.activity_model", COLUMNS[section])
        return None


class ActivityFilter(QSortFilterProxyModel):
    """Filter rows by text (case-insensitive, any column) and effect ("all"/"allowed"/"denied")."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._effect = "all"

    def set_text(self, value: str) -> None:
        """Show only rows containing ``value`` (any column)."""
        self.beginFilterChange()
        self._text = value.strip().lower()
        self.endFilterChange()

    def set_effect(self, value: str) -> None:
        """ "all", "allowed" or "denied"; raises ValueError otherwise."""
        if value not in ("all", "allowed", "denied"):
            raise ValueError(f"effect filter must be all, allowed or denied, not {value!r}")
        self.beginFilterChange()
        self._effect = value
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        """Qt: the filter itself."""
        model = self.sourceModel()
        row = model.data(model.index(source_row, 0, source_parent), Qt.ItemDataRole.UserRole)
        if not isinstance(row, ActivityRow):
            return False
        if self._effect == "allowed" and not row.allowed:
            return False
        if self._effect == "denied" and row.allowed:
            return False
        if self._text:
            return any(self._text in cell.lower() for cell in row.cells())
        return True
