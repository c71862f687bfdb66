"""The first-run window: find the organisation's controller, confirm it, save it.

Shown by ``app.main`` instead of a dead end when no controller is configured and the
organisation manages none. The employee types a work email or the organisation's address
(or the window opens with a join link); ``core.controlplane.onboard.discover`` finds the
controller; the window shows it and where it came from, and only "Use this controller"
saves it (as the user's ``controller_url``, through the ``save`` callable) and emits
:attr:`OnboardingWindow.confirmed`. Failures are shown in words with a next step; the
employee can edit and try again. GUI thread only; the lookup runs as a task on the
qasync loop, and a new lookup (or closing) cancels the previous one.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import icons
from app.plain import clean
from app.widgets import heading, muted, text, window_setup
from core.aio import spawn
from core.controlplane.onboard import Found, discover
from core.errors import UserFacing
from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = ["OnboardingWindow", "Stage", "save_controller_url"]

_log = logging.getLogger(__name__)

#: The question the window asks (also its input's accessible name); English, translated
#: where shown.
PROMPT = QT_TRANSLATE_NOOP(
    "app.windows.onboarding", "Enter your work email or your organisation's address"
)


class Stage(enum.Enum):
    """What the window shows."""

    ASK = "ask"  # the input, waiting for the employee
    LOOKING = "looking"  # a lookup is running
    FOUND = "found"  # a controller to confirm
    FAILED = "failed"  # the lookup or the save failed; words and a next step shown


def save_controller_url(url: str) -> None:
    """Store ``url`` as the user's ``controller_url`` (as ``rustronaut config set`` does).

    Blocking file I/O. Raises ``core.settings`` errors (locked by the organisation,
    invalid, or the file cannot be written); they carry words.
    """
    from core.settings import set_user

    set_user("controller_url", url)


class OnboardingWindow(QWidget):
    """Ask, look up, confirm. ``confirmed(url)`` is emitted once the URL is saved;
    ``closed`` when the employee closes the window without confirming."""

    confirmed = Signal(str)
    closed = Signal()

    def __init__(
        self,
        *,
        find: Callable[[str], Awaitable[Found]] = discover,
        save: Callable[[str], None] = save_controller_url,
        link: str | None = None,
    ) -> None:
        super().__init__()
        window_setup(self, translate("app.windows.onboarding", "Welcome"), "onboarding-window")
        self._find = find
        self._save = save
        self._task: asyncio.Task[None] | None = None
        self._found: Found | None = None
        self._done = False
        self.stage = Stage.ASK

        logo = QLabel()
        logo.setPixmap(icons.icon(icons.APP_ICON).pixmap(64, 64))
        logo.setAccessibleName(translate("app.windows.onboarding", "Rustronaut logo"))
        self.title = heading(translate("app.windows.onboarding", "Welcome to Rustronaut"))
        prompt = translate("app.windows.onboarding", PROMPT)
        self.prompt = text(prompt)
        top = QHBoxLayout()
        top.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.addWidget(self.title)
        col.addWidget(self.prompt)
        top.addLayout(col, 1)

        self.field = QLineEdit()
        self.field.setPlaceholderText(translate("app.windows.onboarding", "name@company.com"))
        self.field.setAccessibleName(prompt)
        self.field.setMaxLength(1024)
        self.field.returnPressed.connect(self.look_up)
        self.find_button = QPushButton(translate("app.windows.onboarding", "&Find"))
        self.find_button.setProperty("primary", True)
        self.find_button.clicked.connect(self.look_up)
        row = QHBoxLayout()
        row.addWidget(self.field, 1)
        row.addWidget(self.find_button)

        self.status = text(selectable=True)
        self.status.setAccessibleName(translate("app.windows.onboarding", "Status"))
        self.next_step = muted()
        self.next_step.setWordWrap(True)
        self.found_title = text(
            translate("app.windows.onboarding", "Your organisation's controller:")
        )
        self.found_url = text(selectable=True)
        self.found_url.setAccessibleName(translate("app.windows.onboarding", "Controller address"))
        bold = self.found_url.font()
        bold.setBold(True)
        self.found_url.setFont(bold)
        self.found_how = muted()
        self.found_how.setWordWrap(True)
        self.use_button = QPushButton(translate("app.windows.onboarding", "&Use this controller"))
        self.use_button.setProperty("primary", True)
        self.use_button.clicked.connect(self.confirm)
        self.change_button = QPushButton(translate("app.windows.onboarding", "&Change"))
        self.change_button.clicked.connect(self.change)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.change_button)
        buttons.addWidget(self.use_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.next_step)
        layout.addWidget(self.found_title)
        layout.addWidget(self.found_url)
        layout.addWidget(self.found_how)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self._show(Stage.ASK)
        self.resize(self.sizeHint().expandedTo(self.minimumSizeHint()))
        if link:
            self.field.setText(link)
            self.look_up()

    def sizeHint(self) -> QSize:
        """Wide enough for an address and a sentence per line."""
        return QSize(520, 340)

    @property
    def found(self) -> Found | None:
        """The controller on show for confirmation, if any."""
        return self._found

    # ----------------------------------------------------------------------- actions
    def look_up(self) -> None:
        """Look up what is typed (cancels a lookup still running)."""
        typed = self.field.text().strip()
        if not typed:
            self._fail(
                translate(
                    "app.windows.onboarding",
                    "Type your work email or your organisation's address first.",
                ),
                "",
            )
            return
        if self._task is not None:
            self._task.cancel()
        self._show(Stage.LOOKING)
        self._task = spawn(self._look_up(typed), name="ui.onboarding.discover")

    async def _look_up(self, typed: str) -> None:
        try:
            found = await self._find(typed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the boundary: every failure shown in words
            self._failed(exc)
            return
        self._found = found
        self._show(Stage.FOUND)

    def confirm(self) -> None:
        """Save the controller on show and emit ``confirmed``; a failure is shown."""
        if self._found is None:
            return
        url = self._found.url
        try:
            self._save(url)
        except Exception as exc:  # the boundary: locked, invalid or unwritable settings
            self._failed(exc)
            return
        _log.info("onboarding: controller %s confirmed and saved", url)
        self._done = True
        self.confirmed.emit(url)
        self.close()

    def change(self) -> None:
        """Back to the input, keeping what was typed."""
        self._found = None
        self._show(Stage.ASK)
        self.field.setFocus()

    # ----------------------------------------------------------------------- view
    def _failed(self, exc: BaseException) -> None:
        _log.warning("onboarding: %s", exc)
        if isinstance(exc, UserFacing):
            self._fail(exc.detail or exc.title, exc.next_step)
        else:
            self._fail(
                str(exc) or translate("app.windows.onboarding", "Rustronaut could not do that."),
                translate("app.windows.onboarding", "Try again."),
            )

    def _fail(self, detail: str, next_step: str) -> None:
        self._found = None
        self._show(Stage.FAILED)
        self.status.setText(clean(detail))
        self.next_step.setText(clean(next_step))
        self.next_step.setVisible(bool(next_step))

    def _show(self, stage: Stage) -> None:
        self.stage = stage
        found = stage is Stage.FOUND and self._found is not None
        looking = stage is Stage.LOOKING
        self.field.setEnabled(not looking and not found)
        self.find_button.setVisible(not found)
        self.find_button.setEnabled(not looking)
        self.find_button.setDefault(not found)
        self.status.setVisible(stage is not Stage.ASK)
        self.next_step.setVisible(False)
        for widget in (self.found_title, self.found_url, self.found_how):
            widget.setVisible(found)
        self.use_button.setVisible(found)
        self.change_button.setVisible(found)
        self.use_button.setDefault(found)
        if looking:
            self.status.setText(
                translate(
                    "app.windows.onboarding",
                    "Looking for your organisation's Rustronaut controller…",
                )
            )
        if found and self._found is not None:
            self.status.setText(
                translate(
                    "app.windows.onboarding",
                    "Check that this is your organisation, then choose Use.",
                )
            )
            self.found_url.setText(clean(self._found.url))
            self.found_how.setText(clean(self._found.how))
            self.use_button.setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter presses the default button of the stage (Find, or Use this controller)."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.stage is Stage.FOUND:
            self.confirm()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel a running lookup; ``closed`` unless the controller was confirmed."""
        if self._task is not None:
            self._task.cancel()
        if not self._done:
            self._done = True
            self.closed.emit()
        super().closeEvent(event)
