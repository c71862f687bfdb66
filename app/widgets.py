"""Small building blocks shared by the windows: headings, wrapped labels, status colours,
tooltips and links that keep text as text.

Everything here sizes itself from the font (no pixel widths), so windows stay legible at
200 % scale; every interactive widget gets an accessible name.

Text is text (DESIGN §7.8): every label is ``Qt.PlainText`` (Qt would otherwise guess
rich text from a leading tag); tooltips, which Qt always guesses, go through ``plain_tip``;
the only rich labels are the fixed link captions of ``link_label`` (``TRUSTED_RICH_TEXTS``),
whose link is a fixed token: the URL opened is the validated one kept by the label, never
one read from text (``core.text.https_link``). Our own words (link captions, the managed
note) are in the installed language (``core.i18n``, context ``app.widgets``). GUI thread
only.
"""

from __future__ import annotations

import html
import logging
from typing import Literal, get_args

from PySide6 import QtGui
from PySide6.QtCore import QEvent, QObject, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QFont, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app import icons
from core.i18n import QT_TRANSLATE_NOOP, translate
from core.text import https_link

__all__ = [
    "DARK_STATUS_COLOURS",
    "STATUS_COLOURS",
    "TRUSTED_RICH_TEXTS",
    "LinkCaption",
    "accessible",
    "caption",
    "heading",
    "is_dark",
    "link_label",
    "managed_label",
    "managed_note",
    "mnemonic_safe",
    "muted",
    "open_url",
    "plain_tip",
    "separator",
    "set_link",
    "status_colour",
    "text",
    "tint",
    "trusted_rich_texts",
    "window_setup",
]

_log = logging.getLogger(__name__)

#: The captions a link may have: fixed words of ours, never a string from elsewhere.
LinkCaption = Literal["Get help", "Open the help page", "Open the sign-in page"]

#: The same captions, marked for translation (``link_label`` shows them translated).
_CAPTIONS = (
    QT_TRANSLATE_NOOP("app.widgets", "Get help"),
    QT_TRANSLATE_NOOP("app.widgets", "Open the help page"),
    QT_TRANSLATE_NOOP("app.widgets", "Open the sign-in page"),
)

#: The link's target in the label's text: a token, not the URL (Qt never opens it).
_LINK_TARGET = "#open"


def _link_html(words: str) -> str:
    return f'<a href="{_LINK_TARGET}">{html.escape(words)}</a>'


#: Every rich text a label may hold: the fixed link captions. Anything else is plain.
#: (English; :func:`trusted_rich_texts` adds them in the installed language.)
TRUSTED_RICH_TEXTS = frozenset(_link_html(c) for c in get_args(LinkCaption))


def trusted_rich_texts() -> frozenset[str]:
    """``TRUSTED_RICH_TEXTS`` and the same captions in the installed language (our own
    shipped translations, escaped like the English ones)."""
    ours = (translate("app.widgets", c) for c in get_args(LinkCaption))
    return TRUSTED_RICH_TEXTS | frozenset(_link_html(c) for c in ours)


#: Foreground colours for status words on light backgrounds: each at least 4.5:1 (WCAG
#: AA) against white and the light alternate-row greys (tests/app/test_contrast.py).
STATUS_COLOURS = {
    "ok": QColor("#166534"),
    "fail": QColor("#b91c1c"),
    "warn": QColor("#92400e"),
    "unknown": QColor("#4b5563"),
}

#: The same statuses on dark backgrounds (dark themes): light tints, each at least 4.5:1
#: against the dark bases and alternate rows of the common desktop themes.
DARK_STATUS_COLOURS = {
    "ok": QColor("#4ade80"),
    "fail": QColor("#fca5a5"),
    "warn": QColor("#fcd34d"),
    "unknown": QColor("#d1d5db"),
}


def is_dark(palette: QPalette) -> bool:
    """Whether ``palette`` draws text on a dark background (a dark theme)."""
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def status_colour(key: str, palette: QPalette) -> QColor:
    """The colour of status ``key`` ("ok", "fail", "warn", "unknown") readable on
    ``palette``'s background, light or dark theme (4.5:1 or more). Status words carry a
    word and a shape too ("✕ Fail"): the colour is never the only signal."""
    table = DARK_STATUS_COLOURS if is_dark(palette) else STATUS_COLOURS
    return QColor(table.get(key, table["unknown"]))


def accessible(widget: QWidget, name: str, description: str = "") -> QWidget:
    """Set the accessible name (and description) screen readers announce; returns widget."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


def heading(value: str, *, level: int = 1) -> QLabel:
    """A bold heading; level 1 is 1.4× the base font, level 2 is 1.1×."""
    label = QLabel(value)
    label.setTextFormat(Qt.TextFormat.PlainText)
    font = QFont(label.font())
    font.setBold(True)
    base = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
    font.setPointSizeF(base * (1.4 if level == 1 else 1.1))
    label.setFont(font)
    label.setWordWrap(True)
    label.setAccessibleName(value)
    return label


def text(value: str = "", *, selectable: bool = False) -> QLabel:
    """A word-wrapping plain-text label (``selectable``: the text can be copied)."""
    label = QLabel(value)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def caption(value: str, buddy: QWidget | None = None) -> QLabel:
    """A plain-text row caption ("Gateway:"); with ``buddy``, its ``&`` mnemonic focuses it."""
    label = QLabel(value)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if buddy is not None:
        label.setBuddy(buddy)
    return label


def plain_tip(value: str) -> str:
    """``value`` as a tooltip that shows exactly these characters.

    Qt shows a tooltip as rich text whenever ``Qt.mightBeRichText`` guesses so (a tag
    near the start, ``&lt;``): such a text is converted into HTML that displays it
    literally; any other text is returned unchanged (some tray hosts show markup as is).
    """
    if value and QtGui.Qt.mightBeRichText(value):
        return QtGui.Qt.convertFromPlainText(value, Qt.WhiteSpaceMode.WhiteSpacePre)
    return value


def mnemonic_safe(value: str) -> str:
    """``value`` for a menu entry, button or group title: ``&`` shown, not a shortcut."""
    return value.replace("&", "&&")


def open_url(url: str) -> bool:
    """Open ``url`` in the desktop's browser if it is a valid link (``https_link``);
    False when it is not, or nothing could open it."""
    link = https_link(url)
    if link is None:
        _log.warning("refused to open a link that is not an https URL")
        return False
    return bool(QDesktopServices.openUrl(QUrl(link, QUrl.ParsingMode.StrictMode)))


def link_label(words: LinkCaption, url: str | None) -> QLabel:
    """A link reading ``words`` that opens ``url`` — hidden unless ``url`` is a valid link.

    The label's text is one of :func:`trusted_rich_texts` (``words`` in the installed
    language); Qt opens nothing itself (``openExternalLinks`` off): a click calls
    ``open_url`` with the URL validated here.
    """
    shown = translate("app.widgets", words)
    label = QLabel(_link_html(shown))
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setOpenExternalLinks(False)
    label.setTextInteractionFlags(
        Qt.TextInteractionFlag.LinksAccessibleByMouse
        | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
    )
    label.setAccessibleName(shown)
    set_link(label, url)
    label.linkActivated.connect(lambda _token: _follow(label))
    return label


def set_link(label: QLabel, url: str | None) -> None:
    """Point ``link_label``'s ``label`` at ``url`` (hidden unless it is a valid link)."""
    link = https_link(url)
    label.setProperty("link_url", link or "")
    label.setToolTip(plain_tip(link or ""))
    label.setVisible(link is not None)


def _follow(label: QLabel) -> None:
    link = label.property("link_url")
    if isinstance(link, str) and link:
        open_url(link)


def muted(value: str = "") -> QLabel:
    """A secondary (greyed) wrapping label."""
    label = text(value)
    label.setForegroundRole(label.foregroundRole())
    label.setStyleSheet("color: palette(placeholder-text);")
    return label


def managed_note(organization: str | None) -> str:
    """Plain text for a locked item: "Set by your organization (Acme)"."""
    if organization:
        return translate("app.widgets", "Set by your organization ({organization})").format(
            organization=organization
        )
    return translate("app.widgets", "Set by your organization")


def managed_label(organization: str | None, support_url: str | None) -> QWidget:
    """A padlock, :func:`managed_note` and a "Get help" link when ``support_url`` is a
    valid link, as one row (the padlock scales with the font)."""
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lock = QLabel()
    size = max(12, row.fontMetrics().height())
    lock.setPixmap(icons.icon(icons.LOCK_ICON).pixmap(size, size))
    lock.setAccessibleName(translate("app.widgets", "Locked"))
    note = text(managed_note(organization))
    note.setAccessibleName(managed_note(organization))
    words = QVBoxLayout()
    words.setContentsMargins(0, 0, 0, 0)
    words.addWidget(note)
    words.addWidget(link_label("Get help", support_url))
    lay.addWidget(lock, 0, Qt.AlignmentFlag.AlignTop)
    lay.addLayout(words, 1)
    return row


def separator() -> QFrame:
    """A horizontal rule."""
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def tint(label: QLabel, colour: QColor) -> None:
    """Draw ``label``'s text in ``colour`` (a :func:`status_colour`). A style sheet of
    its own, not a palette: the window re-polishes on a theme change, and a palette set
    before it would be replaced by the old one."""
    label.setStyleSheet(f"color: {colour.name()};")


class _FollowTheme(QObject):
    """Re-applies a window's style sheet when the desktop's palette changes.

    Widgets a style sheet rule names (the tables) keep the palette they were polished
    with: without this, switching to a dark theme leaves white tables behind (and status
    colours chosen for the old background)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ApplicationPaletteChange and isinstance(watched, QWidget):
            watched.setStyleSheet(watched.styleSheet())
        return False


def window_setup(widget: QWidget, title: str, object_name: str) -> None:
    """Title, icon, object name and accessible name for a top-level window; its look
    follows the desktop's light or dark theme when that changes."""
    if title != "Rustronaut":
        widget.setWindowTitle(translate("app.widgets", "{title} — Rustronaut").format(title=title))
    else:
        widget.setWindowTitle(title)
    widget.setObjectName(object_name)
    widget.setAccessibleName(title)
    widget.setWindowIcon(icons.icon(icons.APP_ICON))
    widget.setStyleSheet(WINDOW_STYLE)
    widget.installEventFilter(_FollowTheme(widget))


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
