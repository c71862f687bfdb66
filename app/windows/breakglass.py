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

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.widgets import accessible, caption, heading, managed_label, muted, text, window_setup
from core.engine.api import MIN_REASON_LENGTH
from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = ["MIN_REASON", "BreakGlassDialog", "Exit"]

#: Shortest reason accepted (after trimming), so "x" is not a reason: one minimum for the
#: GUI, the CLI and the local API.
MIN_REASON = MIN_REASON_LENGTH


@dataclass(frozen=True, slots=True)
class _Words:
    """The dialog's words for one exit, marked for translation (translated where shown).

    ``body`` is whole sentences with an ``{org}`` placeholder, so a translation may
    order them freely.
    """

    window: str
    heading: str
    body: str
    ok: str
    placeholder: str
    why: str


class Exit(Enum):
    """Which way out of the always-on session the reason is for."""

    DISCONNECT = _Words(
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Disconnect"),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Disconnect anyway?"),
        QT_TRANSLATE_NOOP(
            "app.windows.breakglass",
            "{org} keeps Rustronaut always connected to protect your work. Disconnecting "
            "is recorded and reported, together with your reason.",
        ),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "&Disconnect"),
        QT_TRANSLATE_NOOP(
            "app.windows.breakglass", "For example: the hotel Wi-Fi portal needs the VPN off"
        ),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Why you need to disconnect"),
    )
    SIGN_OUT = _Words(
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Sign out"),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Sign out anyway?"),
        QT_TRANSLATE_NOOP(
            "app.windows.breakglass",
            "{org} keeps Rustronaut always connected to protect your work. Signing out "
            "disconnects this device; it is recorded and reported, together with your "
            "reason.",
        ),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "&Sign out"),
        QT_TRANSLATE_NOOP(
            "app.windows.breakglass", "For example: handing this laptop to IT for repair"
        ),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Why you need to sign out"),
    )
    QUIT = _Words(
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Quit"),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Quit and disconnect?"),
        QT_TRANSLATE_NOOP(
            "app.windows.breakglass",
            "{org} keeps Rustronaut always connected to protect your work. Rustronaut runs "
            "inside this app here, so quitting disconnects; it is recorded and reported, "
            "together with your reason.",
        ),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "&Quit"),
        QT_TRANSLATE_NOOP(
            "app.windows.breakglass", "For example: the video call drops while connected"
        ),
        QT_TRANSLATE_NOOP("app.windows.breakglass", "Why you need to quit"),
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
        window_setup(self, translate("app.windows.breakglass", words.window), "breakglass-dialog")
        org = organization or translate("app.windows.breakglass", "Your organization")
        self.reason = QPlainTextEdit()
        self.reason.setPlaceholderText(translate("app.windows.breakglass", words.placeholder))
        self.reason.setTabChangesFocus(True)  # Tab moves on instead of typing a tab
        # A few lines are enough for a reason; measured in lines so it scales with the font.
        lines = self.reason.fontMetrics().lineSpacing()
        self.reason.setMaximumHeight(lines * 6 + 12)
        accessible(
            self.reason,
            translate("app.windows.breakglass", "Reason"),
            translate("app.windows.breakglass", words.why),
        )
        label = caption(translate("app.windows.breakglass", "&Reason:"), self.reason)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Cancel | QDialogButtonBox.StandardButton.Ok
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok = translate("app.windows.breakglass", words.ok)
        self.ok.setText(ok)
        accessible(self.ok, ok.replace("&", ""))
        self.ok.setEnabled(False)
        # Enter must never disconnect by accident: the safe choice is the default.
        self.ok.setAutoDefault(False)
        self.ok.setDefault(False)
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setText(translate("app.windows.breakglass", "Stay &connected"))
        accessible(cancel, translate("app.windows.breakglass", "Stay connected"))
        cancel.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._validate)
        self.hint = muted(
            translate(
                "app.windows.breakglass",
                "At least %n characters. {org} will see this reason.",
                None,
                MIN_REASON,
            ).format(org=org)
        )

        lay = QVBoxLayout(self)
        lay.addWidget(heading(translate("app.windows.breakglass", words.heading)))
        lay.addWidget(text(translate("app.windows.breakglass", words.body).format(org=org)))
        lay.addWidget(managed_label(organization, support_url))
        lay.addWidget(label)
        lay.addWidget(self.reason)
        lay.addWidget(self.hint)
        lay.addWidget(self.buttons)
        # Wide enough that the sentences read as sentences, not a column of words.
        self.resize(self.sizeHint().expandedTo(QSize(520, 0)))
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
