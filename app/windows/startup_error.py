"""The start-up failure window: the reason in words, a next step, Retry and Quit.

``app.main`` shows it whenever the engine cannot be reached or built (no network, the
controller unreachable, a bad configuration), instead of a message that only quits.
Retry emits :attr:`StartupErrorWindow.retry_requested` (``app.main`` builds again);
Quit, or closing the window, emits :attr:`StartupErrorWindow.quit_requested`. The words
may quote the controller or the agent: every part is cleaned plain text, and an errno
(``[Errno 111]``) never reaches the employee (:func:`plain_reason`). Non-modal (no nested
event loop). GUI thread only.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

from app.plain import clean
from app.widgets import window_setup
from core.i18n import translate

__all__ = ["StartupErrorWindow", "plain_reason"]

_ERRNO = re.compile(r"\s*\[(?:Errno|WinError) -?\d+\]\s*")


def plain_reason(text: str) -> str:
    """``text`` cleaned to one plain line with any ``[Errno N]`` marker removed."""
    return clean(_ERRNO.sub(" ", text).strip())


class StartupErrorWindow(QMessageBox):
    """Why Rustronaut could not start, what to do, and Retry.

    ``text()`` is the reason then the next step (plain text, one blank line apart); the
    buttons are Retry (default) and Quit.
    """

    retry_requested = Signal()
    quit_requested = Signal()

    def __init__(self, reason: str, next_step: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        window_setup(self, "Rustronaut", "startup-error-window")
        self.setIcon(QMessageBox.Icon.Critical)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.retry_button = self.addButton(
            translate("app.windows.startup_error", "&Retry"), QMessageBox.ButtonRole.AcceptRole
        )
        self.quit_button = self.addButton(
            translate("app.windows.startup_error", "&Quit"), QMessageBox.ButtonRole.RejectRole
        )
        self.setDefaultButton(self.retry_button)
        self.setEscapeButton(self.quit_button)
        self.set_reason(reason, next_step)
        self.finished.connect(self._finished)

    def set_reason(self, reason: str, next_step: str) -> None:
        """Show another reason (e.g. after a Retry failed again)."""
        self.reason = plain_reason(reason)
        self.next_step = plain_reason(next_step)
        self.setText(f"{self.reason}\n\n{self.next_step}" if self.next_step else self.reason)

    def _finished(self, _result: int) -> None:
        clicked: QAbstractButton | None = self.clickedButton()
        if clicked is self.retry_button:
            self.retry_requested.emit()
        else:
            self.quit_requested.emit()
