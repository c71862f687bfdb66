"""The break-glass dialog: leaving a managed always-on session needs a stated reason.

One dialog for every exit (Disconnect, Sign out, Quit when the tray hosts the engine),
chosen by ``Exit``. It is opened with ``open()`` (window-modal, no nested event loop, so
the engine keeps running). The OK button stays disabled until the reason has at least
``MIN_REASON`` (``core.engine.api.MIN_REASON_LENGTH``, the same minimum as the CLI and
the local API) non-blank characters; accepting emits ``reason_given(str)``, which
``Actions`` passes to the engine as ``break_glass_reason=``. The engine records and
reports the reason; the dialog only collects it. GUI thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.widgets import accessible, caption, heading, managed_label, muted, text, window_setup
from core.engine.api import MIN_REASON_LENGTH

__all__ = ["MIN_REASON", "BreakGlassDialog", "Exit"]

#: Shortest reason accepted (after trimming), so "x" is not a reason: one minimum for the
#: GUI, the CLI and the local API.
MIN_REASON = MIN_REASON_LENGTH


@dataclass(frozen=True, slots=True)
class _Words:
    window: str
    heading: str
    consequence: str
    ok: str
    placeholder: str


class Exit(Enum):
    """Which way out of the always-on session the reason is for."""

    DISCONNECT = _Words(
        "Disconnect",
        "Disconnect anyway?",
        "Disconnecting",
        "&Disconnect",
        "For example: the hotel Wi-Fi portal needs the VPN off",
    )
    SIGN_OUT = _Words(
        "Sign out",
        "Sign out anyway?",
        "Signing out disconnects this device; it",
        "&Sign out",
        "For example: handing this laptop to IT for repair",
    )
    QUIT = _Words(
        "Quit",
        "Quit and disconnect?",
        "Rustronaut runs inside this app here, so quitting disconnects; it",
        "&Quit",
        "For example: the video call drops while connected",
    )


class BreakGlassDialog(QDialog):
    """Asks why the employee must disconnect despite always-on."""

    reason_given = Signal(str)

    def __init__(
        self,
        organization: str | None,
        support_url: str | None,
        parent: QWidget | None = None,
        *,
        exit: Exit = Exit.DISCONNECT,
    ) -> None:
        super().__init__(parent)
        words = exit.value
        self.exit = exit
        window_setup(self, words.window, "breakglass-dialog")
        org = organization or "Your organization"
        self.reason = QPlainTextEdit()
        self.reason.setPlaceholderText(words.placeholder)
        self.reason.setTabChangesFocus(True)  # Tab moves on instead of typing a tab
        # A few lines are enough for a reason; measured in lines so it scales with the font.
        lines = self.reason.fontMetrics().lineSpacing()
        self.reason.setMaximumHeight(lines * 6 + 12)
        accessible(self.reason, "Reason", f"Why you need to {words.window.lower()}")
        label = caption("&Reason:", self.reason)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Cancel | QDialogButtonBox.StandardButton.Ok
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText(words.ok)
        accessible(self.ok, words.ok.replace("&", ""))
        self.ok.setEnabled(False)
        # Enter must never disconnect by accident: the safe choice is the default.
        self.ok.setAutoDefault(False)
        self.ok.setDefault(False)
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setText("Stay &connected")
        accessible(cancel, "Stay connected")
        cancel.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._validate)
        self.hint = muted(f"At least {MIN_REASON} characters. {org} will see this reason.")

        lay = QVBoxLayout(self)
        lay.addWidget(heading(words.heading))
        lay.addWidget(
            text(
                f"{org} keeps Rustronaut always connected to protect your work. "
                f"{words.consequence} is recorded and reported, together with your reason."
            )
        )
        lay.addWidget(managed_label(organization, support_url))
        lay.addWidget(label)
        lay.addWidget(self.reason)
        lay.addWidget(self.hint)
        lay.addWidget(self.buttons)
        self.reason.setFocus()

    def reason_text(self) -> str:
        """The reason as entered, trimmed."""
        return self.reason.toPlainText().strip()

    def _validate(self) -> None:
        self.ok.setEnabled(len(self.reason_text()) >= MIN_REASON)

    def accept(self) -> None:
        """Emit ``reason_given`` and close; ignored while the reason is too short."""
        reason = self.reason_text()
        if len(reason) < MIN_REASON:
            return
        self.reason_given.emit(reason)
        super().accept()
