"""The sign-in window: start the browser flow, show progress, offer the device code.

While the engine is in ``signing_in`` the window shows a busy bar and what to do in the
browser. With the device-code fallback, the engine reports the code in an event whose
``details`` carry ``user_code`` and ``verification_uri`` (optionally
``verification_uri_complete``); the window shows them large and copyable. A failure shows
the error's title, detail and next step with "Try again" (``error_words``: a class name in
front of a message is dropped). GUI thread only.

While a browser sign-in waits, the page it opened (``Actions.sign_in_page``) can be
opened again or copied, and the attempt cancelled: the engine's ``sign_out`` abandons a
running sign-in. "Use a code instead" works at any time: a waiting browser attempt is
abandoned first (the engine runs one sign-in at a time), then the device code starts.
A renewal (signed in, signing in again) is not cancelled here: ``sign_out`` would end the
session too; nor is any attempt under always-on, where the engine refuses a sign-out
without a break-glass reason (the attempt then runs to its end or its time limit).
Keyboard: Enter presses the default button of the moment, Escape cancels a waiting
attempt, else closes the window.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QGuiApplication, QKeyEvent
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
from core.i18n import translate

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import ErrorInfo, Event, Snapshot

__all__ = ["SignInWindow", "error_words"]

#: An exception's class name in front of its message ("LoginTimeout: No answer …"): a
#: name the employee cannot act on, dropped so the message itself reads as words.
_CLASS_NAME = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+: ")


def error_words(error: ErrorInfo) -> tuple[str, str]:
    """The box title and text for a sign-in failure: what happened, then what to do.

    Pure. The engine's words are kept; only a class name in front of a message
    (``SomethingError: …``) is dropped.
    """
    detail = _CLASS_NAME.sub("", error.detail)
    words = translate("app.windows.signin", "{detail}\n\nWhat to do: {next_step}").format(
        detail=detail, next_step=error.next_step
    )
    return error.title, words


class SignInWindow(QWidget):
    """Sign-in progress and fallbacks (see the module docstring)."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, translate("app.windows.signin", "Sign in"), "signin-window")
        self._bridge = bridge
        self._actions = actions
        self._user_code = ""
        self._url = ""  # the page the running browser attempt opened
        self._switching: asyncio.Task[None] | None = None  # browser → code, under way

        logo = QLabel()
        logo.setPixmap(icons.icon(icons.APP_ICON).pixmap(64, 64))
        logo.setAccessibleName(translate("app.windows.signin", "Rustronaut logo"))
        self.title = heading(translate("app.windows.signin", "Sign in to Rustronaut"))
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
        accessible(
            self.progress,
            translate("app.windows.signin", "Signing in"),
            translate("app.windows.signin", "Waiting for the browser sign-in to finish"),
        )

        self.link_box = QGroupBox(translate("app.windows.signin", "Browser did not open?"))
        self.link_hint = text(
            translate(
                "app.windows.signin",
                "Open the sign-in page again, or copy its link and paste it into your browser.",
            )
        )
        self.copy_link = QPushButton(translate("app.windows.signin", "Cop&y link"))
        accessible(
            self.copy_link,
            translate("app.windows.signin", "Copy link"),
            translate("app.windows.signin", "Copy the sign-in page's link to the clipboard"),
        )
        self.copy_link.clicked.connect(self._copy_link)
        self.open_again = QPushButton(translate("app.windows.signin", "&Open again"))
        accessible(
            self.open_again,
            translate("app.windows.signin", "Open again"),
            translate("app.windows.signin", "Open the sign-in page in your browser again"),
        )
        self.open_again.clicked.connect(self._open_again)
        self.note = muted()
        link_buttons = QHBoxLayout()
        link_buttons.addWidget(self.note, 1)
        link_buttons.addWidget(self.copy_link)
        link_buttons.addWidget(self.open_again)
        ll = QVBoxLayout(self.link_box)
        ll.addWidget(self.link_hint)
        ll.addLayout(link_buttons)
        self.link_box.hide()

        self.code_box = QGroupBox(translate("app.windows.signin", "Sign in on another device"))
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
        self.copy = QPushButton(translate("app.windows.signin", "&Copy code"))
        accessible(
            self.copy,
            translate("app.windows.signin", "Copy code"),
            translate("app.windows.signin", "Copy the sign-in code to the clipboard"),
        )
        self.copy.clicked.connect(self._copy_code)
        cl = QVBoxLayout(self.code_box)
        cl.addWidget(self.code_hint)
        cl.addWidget(self.code_link)
        cl.addWidget(self.code)
        cl.addWidget(self.copy, 0, Qt.AlignmentFlag.AlignRight)
        self.code_box.hide()

        self.error_box = QGroupBox(translate("app.windows.signin", "Sign-in failed"))
        self.error_text = text(selectable=True)
        QVBoxLayout(self.error_box).addWidget(self.error_text)
        self.error_box.hide()

        self.browser = QPushButton(translate("app.windows.signin", "Sign in with &browser"))
        self.browser.setProperty("primary", True)
        accessible(
            self.browser,
            translate("app.windows.signin", "Sign in with browser"),
            translate("app.windows.signin", "Opens your web browser to sign in"),
        )
        self.browser.clicked.connect(lambda: actions.sign_in())
        self.device = QPushButton(translate("app.windows.signin", "Use a &code instead"))
        accessible(
            self.device,
            translate("app.windows.signin", "Use a code instead"),
            translate("app.windows.signin", "Sign in on another device with a one-time code"),
        )
        self.device.clicked.connect(self._use_code)
        self.cancel = QPushButton(translate("app.windows.signin", "Cancel sign-&in"))
        accessible(
            self.cancel,
            translate("app.windows.signin", "Cancel sign-in"),
            translate("app.windows.signin", "Stop waiting for this sign-in"),
        )
        self.cancel.clicked.connect(self._cancel)
        self.close_button = QPushButton(translate("app.windows.signin", "C&lose"))
        accessible(self.close_button, translate("app.windows.signin", "Close"))
        self.close_button.clicked.connect(self.close)
        self.footer = muted(
            translate(
                "app.windows.signin",
                "Your password is entered only on your organization's sign-in page.",
            )
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.device)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.browser)
        self._default = self.browser
        self._make_default(self.browser)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.link_box)
        lay.addWidget(self.code_box)
        lay.addWidget(self.error_box)
        lay.addStretch(1)
        lay.addWidget(self.footer)
        lay.addLayout(buttons)
        # Room for the tallest state (waiting, with the link box) at the default size.
        self.resize(self.sizeHint().expandedTo(QSize(600, 420)))

        actions.sign_in_page.connect(self.on_sign_in_page)
        bridge.snapshot_changed.connect(self.on_snapshot)
        bridge.engine_event.connect(self.on_event)
        self.on_snapshot(bridge.snapshot)

    # -- what the engine and the actions say -------------------------------------------
    def on_sign_in_page(self, url: str) -> None:
        """A browser sign-in opened ``url``: offer it again (Open again, Copy link)."""
        self._url = url
        self.note.clear()
        self.on_snapshot(self._bridge.snapshot)

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
        self.code_hint.setText(
            translate(
                "app.windows.signin", "On a phone or computer, open {page} and enter:"
            ).format(page=uri or full)
        )
        # The complete URI (code filled in) when valid, else the plain one, else none.
        set_link(self.code_link, raw.get("verification_uri_complete") or None)
        if not self.code_link.property("link_url"):
            set_link(self.code_link, raw.get("verification_uri") or None)
        code = shown["user_code"]
        self._user_code = code  # what is copied is what is shown: no control characters
        self._url = ""  # the code replaces any browser page
        self.code.setText(code)
        self.code.setAccessibleName(
            translate("app.windows.signin", "Sign-in code {code}").format(code=" ".join(code))
        )
        self.on_snapshot(self._bridge.snapshot)

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw from snapshot ``s`` (and the page or code of the running attempt)."""
        busy = s.state is SessionState.SIGNING_IN
        signed_in = s.user is not None and s.state not in {
            SessionState.SIGNED_OUT,
            SessionState.SIGNING_IN,
        }
        if not busy:
            self._user_code = ""
            self._url = ""
        switching = self._switching is not None and not self._switching.done()
        # Only a first sign-in is cancelled here: for a renewal sign_out ends the session.
        # (Under always-on too: nothing is kept up before the first sign-in, so the engine
        # asks no break-glass reason to abandon it.)
        cancellable = busy and s.user is None and not switching
        self.progress.setVisible(busy or switching)
        self.code_box.setVisible(busy and bool(self._user_code))
        self.link_box.setVisible(busy and bool(self._url) and not self._user_code)
        self.cancel.setVisible(cancellable)
        self.browser.setEnabled(not busy and not signed_in and not switching)
        self.device.setEnabled(
            not signed_in and not switching and not self._user_code and (not busy or cancellable)
        )
        if signed_in:
            self.title.setText(translate("app.windows.signin", "You're signed in"))
            self.body.setText(
                translate(
                    "app.windows.signin", "Signed in as {user}. You can close this window."
                ).format(user=s.user)
            )
            self.browser.hide()
            self.device.hide()
            self._make_default(self.close_button)
        elif busy or switching:
            self.title.setText(translate("app.windows.signin", "Finish signing in"))
            self.body.setText(
                translate("app.windows.signin", "Enter the code below on another device.")
                if self._user_code
                else translate(
                    "app.windows.signin",
                    "Complete sign-in in your browser. This window updates when you are done.",
                )
            )
            self.browser.hide()  # nothing to start while an attempt runs
            self.device.setVisible(not self._user_code)
            if self._user_code:
                self._make_default(self.copy)
            elif self._url:
                self._make_default(self.open_again)
            else:
                self._make_default(self.close_button)
        else:
            self.title.setText(translate("app.windows.signin", "Sign in to Rustronaut"))
            self.body.setText(
                translate(
                    "app.windows.signin",
                    "Sign in with your work account to reach your organization's resources. "
                    "Your browser opens for sign-in; if this device has no browser, use a code.",
                )
            )
            self.browser.show()
            self.device.show()
            self.browser.setText(
                translate("app.windows.signin", "Sign in with &browser")
                if s.error is None
                else translate("app.windows.signin", "Try &again")
            )
            self._make_default(self.browser)
        if s.error is not None and not busy and not switching:
            title, words = error_words(s.error)
            self.error_box.setTitle(title)
            self.error_text.setText(words)
            self.error_box.show()
        else:
            self.error_box.hide()

    # -- the employee's intents -----------------------------------------------------
    def _cancel(self) -> None:
        # The engine's sign_out abandons a running sign-in; no session exists to end.
        self._actions.sign_out_with_reason(None)

    def _use_code(self) -> None:
        s = self._bridge.snapshot
        if s.state is not SessionState.SIGNING_IN:
            self._actions.sign_in(device_code=True)
            return
        # The engine runs one sign-in at a time: abandon the browser one first.
        abandon = self._actions.sign_out_with_reason(None)
        if abandon is None:
            return
        self._switching = abandon
        abandon.add_done_callback(self._abandoned)
        self.on_snapshot(s)

    def _abandoned(self, task: asyncio.Task[None]) -> None:
        self._switching = None
        # A refused cancel (e.g. always-on) left the attempt running: no second sign-in.
        if not task.cancelled() and self._bridge.snapshot.state is not SessionState.SIGNING_IN:
            self._actions.sign_in(device_code=True)
        self.on_snapshot(self._bridge.snapshot)

    def _copy_link(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None and self._url:
            clipboard.setText(self._url)
            self.note.setText(
                translate(
                    "app.windows.signin", "Link copied. Paste it into your browser's address bar."
                )
            )

    def _open_again(self) -> None:
        if self._url:
            self._actions.open_url(self._url)

    def _copy_code(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None and self._user_code:
            clipboard.setText(self._user_code)

    # -- keyboard ---------------------------------------------------------------------
    def _make_default(self, button: QPushButton) -> None:
        """``button`` is the one Enter presses (and is drawn as such)."""
        for b in (self.browser, self.open_again, self.copy, self.close_button):
            b.setDefault(b is button)
        self._default = button

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter presses the default button; Escape cancels a waiting sign-in, else closes.

        A plain window has no dialog's default-button handling, so it is done here.
        """
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self._default.isVisible() and self._default.isEnabled():
                self._default.click()
            event.accept()
        elif key == Qt.Key.Key_Escape:
            if self.cancel.isVisible() and self.cancel.isEnabled():
                self.cancel.click()
            else:
                self.close()
            event.accept()
        else:
            super().keyPressEvent(event)
