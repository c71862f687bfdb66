"""The break-glass dialog: disconnecting under managed always-on needs a stated reason.

The dialog is opened with ``open()`` (window-modal, no nested event loop, so the engine
keeps running). "Disconnect" stays disabled until the reason has at least
``MIN_REASON`` non-blank characters; accepting emits ``reason_given(str)``, which
``Actions`` forwards to ``engine.disconnect(break_glass_reason=...)``. The engine records
and reports the reason; the dialog only collects it. GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.widgets import accessible, heading, managed_label, muted, text, window_setup

__all__ = ["MIN_REASON", "BreakGlassDialog"]

#: Shortest reason accepted (after trimming), so "x" is not a reason.
MIN_REASON = 10


class BreakGlassDialog(QDialog):
    """Asks why the employee must disconnect despite always-on."""

    reason_given = Signal(str)

    def __init__(
        self,
        organization: str | None,
        support_url: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        window_setup(self, "Disconnect", "breakglass-dialog")
        org = organization or "Your organization"
        self.reason = QPlainTextEdit()
        self.reason.setPlaceholderText("For example: the hotel Wi-Fi portal needs the VPN off")
        self.reason.setTabChangesFocus(True)  # Tab moves on instead of typing a tab
        # A few lines are enough for a reason; measured in lines so it scales with the font.
        lines = self.reason.fontMetrics().lineSpacing()
        self.reason.setMaximumHeight(lines * 6 + 12)
        accessible(self.reason, "Reason", "Why you need to disconnect")
        label = QLabel("&Reason:")
        label.setBuddy(self.reason)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Cancel | QDialogButtonBox.StandardButton.Ok
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("&Disconnect")
        accessible(self.ok, "Disconnect")
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
        lay.addWidget(heading("Disconnect anyway?"))
        lay.addWidget(
            text(
                f"{org} keeps Rustronaut always connected to protect your work. "
                "Disconnecting is recorded and reported, together with your reason."
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
