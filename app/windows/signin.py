"""The sign-in window: start the browser flow, show progress, offer the device code.

While the engine is in ``signing_in`` the window shows a busy bar and what to do in the
browser. With the device-code fallback, the engine reports the code in an event whose
``details`` carry ``user_code`` and ``verification_uri`` (optionally
``verification_uri_complete``); the window shows them large and copyable. A failure shows
the error's title, detail and next step with "Try again". GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import icons
from app.plain import clean_details
from app.widgets import accessible, heading, link_label, muted, set_link, text, window_setup
from core.engine.state import SessionState

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import Event, Snapshot

__all__ = ["SignInWindow"]


class SignInWindow(QWidget):
    """Sign-in progress and fallbacks."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, "Sign in", "signin-window")
        self._actions = actions
        self._user_code = ""

        logo = QLabel()
        logo.setPixmap(icons.icon(icons.APP_ICON).pixmap(64, 64))
        logo.setAccessibleName("Rustronaut logo")
        self.title = heading("Sign in to Rustronaut")
        self.body = text()
        top = QHBoxLayout()
        top.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.addWidget(self.title)
        col.addWidget(self.body)
        top.addLayout(col, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator: the browser flow has no steps to count
        self.progress.setTextVisible(False)
        accessible(self.progress, "Signing in", "Waiting for the browser sign-in to finish")

        self.code_box = QGroupBox("Sign in on another device")
        self.code_hint = text(selectable=True)
        # A link only for an https verification URI; the URI itself is shown as text.
        self.code_link = link_label("Open the sign-in page", None)
        self.code = QLabel()
        self.code.setTextFormat(Qt.TextFormat.PlainText)
        font = QFont("DejaVu Sans Mono")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSizeF(max(font.pointSizeF(), 10.0) * 2)
        font.setBold(True)
        self.code.setFont(font)
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.code.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.copy = QPushButton("&Copy code")
        accessible(self.copy, "Copy code", "Copy the sign-in code to the clipboard")
        self.copy.clicked.connect(self._copy_code)
        cl = QVBoxLayout(self.code_box)
        cl.addWidget(self.code_hint)
        cl.addWidget(self.code_link)
        cl.addWidget(self.code)
        cl.addWidget(self.copy, 0, Qt.AlignmentFlag.AlignRight)
        self.code_box.hide()

        self.error_box = QGroupBox("Sign-in failed")
        self.error_text = text(selectable=True)
        QVBoxLayout(self.error_box).addWidget(self.error_text)
        self.error_box.hide()

        self.browser = QPushButton("Sign in with &browser")
        self.browser.setDefault(True)
        self.browser.setProperty("primary", True)
        accessible(self.browser, "Sign in with browser", "Opens your web browser to sign in")
        self.browser.clicked.connect(lambda: actions.sign_in())
        self.device = QPushButton("Use a &code instead")
        accessible(
            self.device, "Use a code instead", "Sign in on another device with a one-time code"
        )
        self.device.clicked.connect(lambda: actions.sign_in(device_code=True))
        self.close_button = QPushButton("C&lose")
        accessible(self.close_button, "Close")
        self.close_button.clicked.connect(self.close)
        self.footer = muted("Your password is entered only on your organization's sign-in page.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.device)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.browser)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.code_box)
        lay.addWidget(self.error_box)
        lay.addStretch(1)
        lay.addWidget(self.footer)
        lay.addLayout(buttons)
        self.resize(self.sizeHint().expandedTo(QSize(560, 340)))

        bridge.snapshot_changed.connect(self.on_snapshot)
        bridge.engine_event.connect(self.on_event)
        self.on_snapshot(bridge.snapshot)

    def on_event(self, event: Event) -> None:
        """Pick up the device code when the engine announces it.

        The code and the URI come from the provider: shown as escaped plain text; the
        URI is a link only when it is a valid https URL (``app.widgets.link_label``).
        """
        raw = event.details
        if not raw.get("user_code"):
            return
        shown = clean_details(raw)
        uri = shown.get("verification_uri", "")
        full = shown.get("verification_uri_complete", "")
        self.code_hint.setText(f"On a phone or computer, open {uri or full} and enter:")
        # The complete URI (code filled in) when valid, else the plain one, else none.
        set_link(self.code_link, raw.get("verification_uri_complete") or None)
        if not self.code_link.property("link_url"):
            set_link(self.code_link, raw.get("verification_uri") or None)
        code = shown["user_code"]
        self._user_code = code  # what is copied is what is shown: no control characters
        self.code.setText(code)
        self.code.setAccessibleName(f"Sign-in code {' '.join(code)}")
        self.code_box.show()

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw from snapshot ``s``."""
        busy = s.state is SessionState.SIGNING_IN
        signed_in = s.user is not None and s.state not in {
            SessionState.SIGNED_OUT,
            SessionState.SIGNING_IN,
        }
        self.progress.setVisible(busy)
        self.browser.setEnabled(not busy and not signed_in)
        self.device.setEnabled(not busy and not signed_in)
        if not busy:
            self.code_box.hide()
            self._user_code = ""
        if signed_in:
            self.title.setText("You're signed in")
            self.body.setText(f"Signed in as {s.user}. You can close this window.")
            self.browser.hide()
            self.device.hide()
            self.close_button.setDefault(True)
        elif busy:
            self.title.setText("Finish signing in")
            self.body.setText(
                "Complete sign-in in your browser. This window updates when you are done."
                if not self._user_code
                else "Enter the code below on another device."
            )
        else:
            self.title.setText("Sign in to Rustronaut")
            self.body.setText(
                "Sign in with your work account to reach your organization's resources. "
                "Your browser opens for sign-in; if this device has no browser, use a code."
            )
            self.browser.show()
            self.device.show()
            self.browser.setText("Sign in with &browser" if s.error is None else "Try &again")
        if s.error is not None and not busy:
            self.error_box.setTitle(s.error.title)
            self.error_text.setText(f"{s.error.detail}\n\nWhat to do: {s.error.next_step}")
            self.error_box.show()
        else:
            self.error_box.hide()

    def _copy_code(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None and self._user_code:
            clipboard.setText(self._user_code)
