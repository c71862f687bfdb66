"""The tray icon: icon, tooltip and menu as functions of the engine's snapshot.

``Tray`` owns one ``QSystemTrayIcon`` and its ``QMenu``. On every snapshot change it sets
the icon (``presenter.icon_for``), the tooltip (``presenter.tooltip``) and, only when
``presenter.menu_model`` really changed, rebuilds the menu, so a stream of decision events
costs no menu churn. Menu entries call ``Actions.run`` and nothing else. Qt talks
StatusNotifierItem over D-Bus where a host exists (KDE, GNOME + AppIndicator) and falls
back to XEmbed; ``available()`` says whether any tray exists at all. GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app import icons
from app.actions import Actions
from app.bridge import EngineBridge
from app.notify import (
    Notice,
    Notifier,
    RateLimiter,
    diagnostics_failed_notice,
    diagnostics_notice,
    lost_notice,
)
from app.presenter import Action, IconKind, MenuEntry, icon_for, menu_model, tooltip
from app.widgets import mnemonic_safe, plain_tip
from core.engine.state import Snapshot
from core.i18n import translate

__all__ = ["Tray"]


class Tray(QObject):
    """The tray icon and menu; ``show()`` makes it visible."""

    def __init__(
        self,
        bridge: EngineBridge,
        actions: Actions,
        *,
        limiter: RateLimiter | None = None,
        icon: QSystemTrayIcon | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._actions = actions
        self._bridge = bridge
        # Adopt the icon start-up already showed, if any, so it never disappears.
        self.icon = icon if icon is not None else QSystemTrayIcon()
        self.icon.setParent(self)
        self.menu = QMenu()
        self.menu.setAccessibleName(translate("app.tray", "Rustronaut menu"))
        self.menu.setTitle("Rustronaut")
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.notifier = Notifier(
            self.icon,
            actions.run,
            limiter,
            initial=bridge.snapshot,
            enabled=lambda: actions.notifications_enabled,
        )
        # A refused intent is feedback on something the employee just did: always shown.
        actions.action_failed.connect(
            lambda title, message: self.notifier.show(
                Notice("failed:" + title, title, message, "critical")
            )
        )
        # "Collect diagnostics…" is feedback on something the employee just did: where the
        # file went (click: show it in its folder), or why nothing was saved.
        actions.diagnostics_saved.connect(lambda path: self.notifier.show(diagnostics_notice(path)))
        actions.diagnostics_failed.connect(
            lambda message: self.notifier.show(diagnostics_failed_notice(message))
        )
        self._model: tuple[MenuEntry, ...] | None = None
        self.icon_kind: IconKind | None = None
        self.rebuilds = 0  # how many times the menu was rebuilt (tests check churn)
        bridge.snapshot_changed.connect(self.on_snapshot)
        # A settings change (e.g. IT forbids break-glass) may change the menu too.
        actions.prefs_changed.connect(lambda: self.on_snapshot(self._bridge.snapshot))
        bridge.engine_event.connect(self.notifier.on_event)
        bridge.attached.connect(lambda engine: self.notifier.set_baseline(engine.snapshot))
        bridge.lost_changed.connect(self._lost_changed)
        self.on_snapshot(bridge.snapshot)

    def _lost_changed(self, lost: bool) -> None:
        if lost:  # said in the language of the moment, not of start-up
            self.notifier.offer(lost_notice())

    @staticmethod
    def available() -> bool:
        """True if the desktop has a system tray (SNI host or XEmbed tray)."""
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        """Make the icon visible."""
        self.icon.show()

    def hide(self) -> None:
        """Remove the icon (at quit)."""
        self.icon.hide()

    def on_snapshot(self, s: Snapshot) -> None:
        """Update icon, tooltip and (if changed) menu from snapshot ``s``."""
        starting, lost = self._bridge.starting, self._bridge.lost
        kind = icon_for(s.state, starting=starting, lost=lost)
        if kind is not self.icon_kind:
            self.icon_kind = kind
            self.icon.setIcon(icons.icon(kind))
        self.icon.setToolTip(plain_tip(tooltip(s, starting=starting, lost=lost)))
        model = menu_model(
            s, starting=starting, lost=lost, break_glass=self._actions.break_glass_allowed
        )
        if model != self._model:
            self._model = model
            self._build(model)

    def _build(self, model: tuple[MenuEntry, ...]) -> None:
        self.rebuilds += 1
        self.menu.clear()
        self._fill(self.menu, model)

    def _fill(self, menu: QMenu, entries: tuple[MenuEntry, ...]) -> None:
        for e in entries:
            if e.kind == "separator":
                menu.addSeparator()
            elif e.kind == "submenu":
                sub = menu.addMenu(mnemonic_safe(e.text))
                sub.setAccessibleName(e.text)
                if e.tooltip:
                    sub.menuAction().setToolTip(plain_tip(e.tooltip))
                self._fill(sub, e.children)
            else:
                # Entries carry resource names, reasons and fixes: "&" is shown, not a
                # shortcut, and a tooltip is never guessed to be rich text.
                qa = QAction(mnemonic_safe(e.text), menu)
                qa.setEnabled(e.enabled and e.kind == "action")
                if e.tooltip:
                    qa.setToolTip(plain_tip(e.tooltip))
                if e.action is not None:
                    qa.setData(str(e.action))
                    qa.triggered.connect(lambda _=False, a=e.action: self._actions.run(a))
                menu.addAction(qa)
        menu.setToolTipsVisible(True)

    def entries(self, menu: QMenu | None = None) -> list[tuple[str, bool]]:
        """(text, enabled) of every non-separator row, submenus flattened with "▸ "."""
        out: list[tuple[str, bool]] = []
        for qa in (menu or self.menu).actions():
            if qa.isSeparator():
                continue
            sub = qa.menu()
            shown = qa.text().replace("&&", "&")
            if isinstance(sub, QMenu):
                out.append((shown, True))
                out.extend((f"▸ {t}", en) for t, en in self.entries(sub))
            else:
                out.append((shown, qa.isEnabled()))
        return out

    def action(self, text: str) -> QAction:
        """The top-level menu action labelled ``text``; raises ``KeyError`` if absent."""
        for qa in self.menu.actions():
            if qa.text().replace("&&", "&") == text:
                return qa
        raise KeyError(text)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # Left click (SNI "Activate" / XEmbed click) opens the main window; the context
        # menu is shown by Qt itself on right click.
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self._actions.run(Action.OPEN_MAIN)
