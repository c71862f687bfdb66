"""Small building blocks shared by the windows: headings, wrapped labels, status colours.

Everything here sizes itself from the font (no pixel widths), so windows stay legible at
200 % scale; every interactive widget gets an accessible name. GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from app import icons

__all__ = [
    "STATUS_COLOURS",
    "accessible",
    "heading",
    "managed_label",
    "managed_note",
    "muted",
    "separator",
    "text",
    "window_setup",
]

#: Foreground colours for status words; dark enough for 4.5:1 contrast on light bases.
STATUS_COLOURS = {
    "ok": QColor("#15803d"),
    "fail": QColor("#b91c1c"),
    "warn": QColor("#b45309"),
    "unknown": QColor("#4b5563"),
}


def accessible(widget: QWidget, name: str, description: str = "") -> QWidget:
    """Set the accessible name (and description) screen readers announce; returns widget."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


def heading(value: str, *, level: int = 1) -> QLabel:
    """A bold heading; level 1 is 1.4× the base font, level 2 is 1.1×."""
    label = QLabel(value)
    font = QFont(label.font())
    font.setBold(True)
    base = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
    font.setPointSizeF(base * (1.4 if level == 1 else 1.1))
    label.setFont(font)
    label.setWordWrap(True)
    label.setAccessibleName(value)
    return label


def text(value: str = "", *, selectable: bool = False, rich: bool = False) -> QLabel:
    """A word-wrapping label; ``rich`` enables links that open in the browser."""
    label = QLabel(value)
    label.setWordWrap(True)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setOpenExternalLinks(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    elif selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    else:
        label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def muted(value: str = "") -> QLabel:
    """A secondary (greyed) wrapping label."""
    label = text(value)
    label.setForegroundRole(label.foregroundRole())
    label.setStyleSheet("color: palette(placeholder-text);")
    return label


def managed_note(organization: str | None, support_url: str | None) -> str:
    """Rich text for a locked item: "Set by your organization (Acme) · Get help"."""
    org = f" ({_escape(organization)})" if organization else ""
    link = f' · <a href="{_escape(support_url)}">Get help</a>' if support_url else ""
    return f"Set by your organization{org}{link}"


def managed_label(organization: str | None, support_url: str | None) -> QWidget:
    """A padlock and :func:`managed_note`, as one row (the padlock scales with the font)."""
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lock = QLabel()
    size = max(12, row.fontMetrics().height())
    lock.setPixmap(icons.icon(icons.LOCK_ICON).pixmap(size, size))
    lock.setAccessibleName("Locked")
    note = text(managed_note(organization, support_url), rich=True)
    note.setAccessibleName(
        "Set by your organization" + (f" ({organization})" if organization else "")
    )
    lay.addWidget(lock, 0, Qt.AlignmentFlag.AlignTop)
    lay.addWidget(note, 1)
    return row


def separator() -> QFrame:
    """A horizontal rule."""
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def window_setup(widget: QWidget, title: str, object_name: str) -> None:
    """Title, icon, object name and accessible name for a top-level window."""
    widget.setWindowTitle(f"{title} — Rustronaut" if title != "Rustronaut" else title)
    widget.setObjectName(object_name)
    widget.setAccessibleName(title)
    widget.setWindowIcon(icons.icon(icons.APP_ICON))
    widget.setStyleSheet(WINDOW_STYLE)


#: Shared look: roomier table rows, and locked (disabled) fields keep readable text.
WINDOW_STYLE = """
QTreeView::item, QTableView::item { padding: 3px 6px; }
QHeaderView::section {
    padding: 4px 6px; border: none; background: palette(button);
    border-bottom: 1px solid palette(mid); border-right: 1px solid palette(midlight);
}
QLineEdit:disabled, QSpinBox:disabled { color: palette(text); background: palette(window); }
QPushButton[primary="true"] { font-weight: bold; }
"""


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
