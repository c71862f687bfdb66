"""The settings window: the effective settings, with managed ones locked.

By default it shows only what an employee is expected to touch (the keys whose
``core.settings.model.SettingSpec.advanced`` is False: connect automatically,
notifications, start at login, signing out at the provider). Everything else — the
controller, sign-in provider, always-on and break-glass, ports, TLS pins, trust
anchors… — is under "Advanced", collapsed; an advanced setting that IT manages is not
shown at all (nothing there for the employee to do). Rows are labelled with the setting's
title, never its key, and a refused value is explained in words with the title.

A managed (MDM) setting is shown with its value, a disabled editor and "Set by your
organization (Org) · Get help"; it cannot be edited here. A user setting is applied as
soon as it is edited, through ``Actions.set_setting`` (in the background: the engine may
be in the agent); if the engine refuses the value, its words are shown next to it and the
editor returns to the value still in force. The window re-reads the settings on every
``SETTINGS`` event (a change from the CLI, another window, or managed settings).
"Start at login" is the per-user autostart entry (``app.autostart``). GUI thread only.
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QSize
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.actions import refusal_words, support_url
from app.plain import clean
from app.widgets import (
    accessible,
    caption,
    heading,
    managed_label,
    muted,
    plain_tip,
    text,
    window_setup,
)
from core.i18n import translate
from core.settings.model import SPECS

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.api import SettingView

__all__ = ["SettingsWindow", "field_error", "is_advanced", "label_for", "title_for"]

_ACRONYMS = {
    "sha256": "SHA-256",
    "url": "URL",
    "oidc": "OIDC",
    "id": "ID",
    "tls": "TLS",
    "dns": "DNS",
    "mtu": "MTU",
}


def label_for(key: str) -> str:
    """``"oidc_client_id"`` → ``"OIDC client ID"``."""
    words = [_ACRONYMS.get(w, w) for w in key.replace("-", "_").split("_") if w]
    if not words:
        return key
    first = words[0] if words[0].isupper() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def title_for(key: str, title: str = "") -> str:
    """The words for setting ``key``: the engine's title (already in its language), else
    the model's in the installed language, else one made from the key ("proxy_port" →
    "Local proxy port")."""
    if title:
        return title
    spec = SPECS.get(key)
    if spec is None:
        return label_for(key)
    # The model's title is English; ``SettingSpec.label`` translates it in this context.
    return translate("core.settings.model", spec.title)


def is_advanced(key: str) -> bool:
    """True unless ``key`` is one an employee is expected to change (unknown keys: True)."""
    spec = SPECS.get(key)
    return spec.advanced if spec is not None else True


#: The settings model's refusal: "proxy_port: expected <what>, got <kind> <value>".
_EXPECTED = re.compile(r"^(?P<key>[A-Za-z0-9_]+): expected (?P<what>.+?), got (?P<got>.+)$")


def field_error(key: str, words: str, title: str = "") -> str:
    """The engine's refusal of a value for ``key`` in words, with the setting's title in
    place of its key: "Local proxy port must be a whole number from 1024 to 65535, not
    80." (the next step, on its own line, is kept)."""
    name = title_for(key, title)
    head, sep, rest = words.partition("\n")
    m = _EXPECTED.match(head)
    if m is not None and m["key"] == key:
        kind, _, value = m["got"].partition(" ")
        head = translate(
            "app.windows.settings", "{setting} must be {expected}, not {value}."
        ).format(setting=name, expected=m["what"], value=value or kind)
    else:
        head = re.sub(rf"(?<![\w'])'?{re.escape(key)}'?(?![\w])", name, head)
        if head.startswith(f"{name}: "):
            head = f"{name} {head.removeprefix(f'{name}: ')}"
    return head + sep + rest


class SettingsWindow(QWidget):
    """Effective settings; ``editors`` maps each key to its editor widget (for tests).

    ``advanced_toggle`` shows or hides ``advanced_box`` (kept across refreshes); ``rows``
    maps each key to the widgets of its row.
    """

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, translate("app.windows.settings", "Settings"), "settings-window")
        self._bridge = bridge
        self._actions = actions
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self._values: dict[str, object] = {}
        self.rows: dict[str, tuple[QWidget, ...]] = {}
        self._settings: list[SettingView] = []
        self._show_advanced = False

        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        lay = QVBoxLayout(self)
        lay.addWidget(heading(translate("app.windows.settings", "Settings")))
        lay.addWidget(self._scroll, 1)
        self.resize(self.sizeHint().expandedTo(QSize(640, 560)))
        self.pending: dict[str, asyncio.Task[str | None]] = {}
        self._stale = False
        bridge.settings_changed.connect(self._settings_changed)
        self.rebuild()

    def _settings_changed(self) -> None:
        # While a change of ours is on its way, rebuilding would drop the editor whose
        # answer is awaited: rebuild once the last answer is in.
        if self.pending:
            self._stale = True
        else:
            self.rebuild()

    def showEvent(self, event: QShowEvent) -> None:
        """Re-read the settings each time the window is shown (MDM may have changed)."""
        self.rebuild()
        super().showEvent(event)

    def rebuild(self) -> None:
        """Recreate every row from ``engine.settings()``."""
        self._stale = False
        body = QWidget()
        self.editors.clear()
        self.errors.clear()
        lay = QVBoxLayout(body)
        org = self._bridge.snapshot.organization
        help_url = support_url(self._actions.engine)
        engine = self._actions.engine
        try:
            settings = list(engine.settings()) if engine is not None else []
        except Exception as exc:
            lay.addWidget(
                text(
                    translate(
                        "app.windows.settings", "Could not read the settings: {error}"
                    ).format(error=clean(str(exc)))
                )
            )
            settings = []
        self._settings = settings

        self.rows.clear()
        box = QGroupBox(translate("app.windows.settings", "Your settings"))
        form = self._form(box)
        self.advanced_box = QGroupBox(translate("app.windows.settings", "Advanced"))
        advanced = self._form(self.advanced_box)
        shown_advanced = 0
        for s in settings:
            label, cell = self._label(s), self._row(s, org, help_url)
            self.rows[s.key] = (label, cell)
            if not is_advanced(s.key):
                form.addRow(label, cell)
                continue
            advanced.addRow(label, cell)
            # Set by IT: nothing for the employee to do there, so not shown at all.
            visible = not s.locked
            advanced.setRowVisible(cell, visible)
            shown_advanced += visible
        if form.rowCount():
            lay.addWidget(box)
        self.advanced_toggle = QPushButton()
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setChecked(self._show_advanced)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        self._toggle_advanced(self._show_advanced)
        if shown_advanced:
            lay.addWidget(self.advanced_toggle)
            lay.addWidget(self.advanced_box)
        else:
            self.advanced_toggle.hide()
            self.advanced_box.hide()
            self.advanced_box.setParent(body)

        # The engine may own "autostart" as a setting (then Actions syncs the entry and
        # this separate checkbox would say the same thing twice).
        has_autostart_setting = any(s.key == "autostart" for s in settings)
        local = QGroupBox(translate("app.windows.settings", "This computer"))
        lform = QFormLayout(local)
        self.autostart = QCheckBox(
            translate("app.windows.settings", "Start Rustronaut when I log in")
        )
        accessible(self.autostart, translate("app.windows.settings", "Start at login"))
        auto = self._actions.autostart
        self.autostart.setEnabled(auto is not None)
        self.autostart.setChecked(bool(auto and auto.enabled()))
        self.autostart_error = muted()
        self.autostart_error.hide()
        self.autostart.toggled.connect(self._toggle_autostart)
        lform.addRow(self.autostart)
        lform.addRow(self.autostart_error)
        lay.addWidget(local)
        local.setVisible(not has_autostart_setting)
        if org or help_url:
            who = org or translate("app.windows.settings", "your organization")
            lay.addWidget(
                muted(
                    translate(
                        "app.windows.settings",
                        "Settings with a padlock are managed by {organization}.",
                    ).format(organization=who)
                )
            )
        lay.addStretch(1)
        self._scroll.setWidget(body)  # deletes the previous body and its editors

    @staticmethod
    def _form(box: QGroupBox) -> QFormLayout:
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # Each title above its editor, description and error: every row gets the whole
        # width, so a field error in words never squeezes or clips a row.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        return form

    def _toggle_advanced(self, on: bool) -> None:
        self._show_advanced = on
        self.advanced_toggle.setText(
            translate("app.windows.settings", "Hide advanced settings")
            if on
            else translate("app.windows.settings", "Show advanced settings")
        )
        self.advanced_box.setVisible(on)

    def _label(self, s: SettingView) -> QLabel:
        label = caption(
            translate("app.windows.settings", "{setting}:").format(
                setting=clean(title_for(s.key, s.title))
            )
        )
        label.setWordWrap(True)
        return label

    def _row(self, s: SettingView, org: str | None, help_url: str | None) -> QWidget:
        self._values[s.key] = s.value
        editor = self._editor(s)
        description = clean(s.description)
        accessible(editor, clean(title_for(s.key, s.title)), description)
        editor.setToolTip(plain_tip(description))
        if s.locked:
            editor.setEnabled(False)
            editor.setAccessibleDescription(
                translate("app.windows.settings", "Set by your organization. {description}").format(
                    description=description
                )
            )
        self.editors[s.key] = editor
        cell = QWidget()
        v = QVBoxLayout(cell)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(editor)
        if s.locked:
            v.addWidget(managed_label(org, help_url))
        elif description:
            v.addWidget(muted(description))
        err = muted()
        err.setStyleSheet("color: #b91c1c;")
        err.hide()
        self.errors[s.key] = err
        v.addWidget(err)
        return cell

    def _editor(self, s: SettingView) -> QWidget:
        key, value = s.key, s.value
        auto = self._actions.autostart
        if key == "autostart" and s.source == "default" and auto is not None:
            # Not chosen yet: its default is not in force (never switched on silently), so
            # the box shows whether this computer really starts Rustronaut at login.
            try:
                value = auto.enabled()
            except OSError:
                value = False
            self._values[key] = value
        if isinstance(value, bool):
            box = QCheckBox(translate("app.windows.settings", "On"))
            box.setChecked(value)
            box.toggled.connect(lambda on, k=key: self._apply(k, bool(on)))
            return box
        if isinstance(value, int):
            spin = QSpinBox()
            spin.setRange(-(2**31), 2**31 - 1)
            spin.setValue(value)
            spin.editingFinished.connect(lambda k=key, w=spin: self._apply(k, w.value()))
            return spin
        if isinstance(value, list | tuple):
            shown = (
                ", ".join(str(v) for v in value)
                if value
                else translate("app.windows.settings", "(none)")
            )
        else:
            shown = "" if value is None else str(value)
        editable = isinstance(value, str | None) and not s.locked
        # A value the employee cannot edit is shown escaped; an editable one is their own
        # and must round-trip unchanged.
        line = QLineEdit(shown if editable else clean(shown))
        if not isinstance(value, str | None):
            # Lists (pins, required processes) are set by IT in managed settings, not here.
            line.setReadOnly(True)
        else:
            line.editingFinished.connect(lambda k=key, w=line: self._apply(k, w.text()))
        return line

    def _apply(self, key: str, value: object) -> None:
        if value == self._values.get(key):
            return
        task = self._actions.set_setting(key, value)
        self.pending[key] = task
        task.add_done_callback(functools.partial(self._applied, key, value))

    def _applied(self, key: str, value: object, task: asyncio.Task[str | None]) -> None:
        if self.pending.get(key) is task:
            del self.pending[key]
        if task.cancelled() or not shiboken6.isValid(self):
            return  # the window went away meanwhile
        exc = task.exception()
        error = refusal_words(exc) if exc is not None else task.result()
        if error is None and self._stale and not self.pending:
            self.rebuild()  # someone else changed settings meanwhile: show them all anew
            return
        label = self.errors.get(key)
        if label is None or not shiboken6.isValid(label):
            return  # rebuilt meanwhile: the rows show the engine's values
        if error is None:
            self._values[key] = value
            label.hide()
            return
        title = next((st.title for st in self._settings if st.key == key), "")
        label.setText(field_error(key, error, title))  # refusal_words: already escaped
        label.show()
        self._restore(key)

    def _restore(self, key: str) -> None:
        """Put the editor back to the value still in force (signals blocked)."""
        editor, value = self.editors[key], self._values.get(key)
        editor.blockSignals(True)
        try:
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QSpinBox) and isinstance(value, int):
                editor.setValue(value)
            elif isinstance(editor, QLineEdit):
                editor.setText("" if value is None else str(value))
        finally:
            editor.blockSignals(False)

    def _toggle_autostart(self, on: bool) -> None:
        error = self._actions.set_autostart(on)
        self.autostart_error.setText(error or "")
        self.autostart_error.setVisible(error is not None)
        if error is not None:
            self.autostart.blockSignals(True)
            self.autostart.setChecked(not on)
            self.autostart.blockSignals(False)
