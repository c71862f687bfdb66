"""The main window: who is signed in, this device, the tunnel and every resource.

Renders the snapshot only; the primary button changes with the state (Sign in /
Connect / Disconnect) and goes through ``Actions``. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import icons
from app.presenter import (
    CONNECTED_STATES,
    LOST_NEXT_STEP,
    Action,
    ResourceStatus,
    access_line,
    blocked_fixes,
    clock_line,
    controller_line,
    format_age,
    format_bytes,
    icon_for,
    managed_line,
    menu_model,
    next_step,
    resource_status,
    session_line,
    state_label,
    trust_line,
)
from app.widgets import (
    STATUS_COLOURS,
    accessible,
    caption,
    heading,
    mnemonic_safe,
    muted,
    plain_tip,
    text,
    window_setup,
)
from core.engine.state import SessionState

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import Snapshot

__all__ = ["MainWindow"]

_STATUS_TEXT = {
    ResourceStatus.REACHABLE: "Reachable",
    ResourceStatus.BLOCKED: "Blocked",
    ResourceStatus.NOT_CONNECTED: "Not connected",
}
_STATUS_COLOUR = {
    ResourceStatus.REACHABLE: "ok",
    ResourceStatus.BLOCKED: "fail",
    ResourceStatus.NOT_CONNECTED: "unknown",
}


class MainWindow(QWidget):
    """Overview window ("Open Rustronaut")."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, "Rustronaut", "main-window")
        self._actions = actions
        self._bridge = bridge
        self._primary_action: Action | None = None

        self.state_icon = QLabel()
        self.state_icon.setAccessibleName("Connection state icon")
        self.state_line = heading("")
        self.who = text()
        self.session = muted()  # when the sign-in ends and whether it renews
        accessible(self.session, "Sign-in")
        self.clock = text()  # this computer's clock is off: the cause of many failures
        palette = self.clock.palette()
        palette.setColor(self.clock.foregroundRole(), STATUS_COLOURS["warn"])
        self.clock.setPalette(palette)
        accessible(self.clock, "Clock")
        self.notice = muted()  # why the window opened (e.g. no system tray)
        self.notice.hide()
        self.managed = text(selectable=True)  # the organization's settings were rejected
        accessible(self.managed, "Managed configuration")
        self.managed.hide()
        self.controller_problem = text(selectable=True)  # outage: the last policy holds
        accessible(self.controller_problem, "Controller")
        self.controller_problem.hide()
        self.trust = text(selectable=True)  # keys trusted on first use (development setup)
        accessible(self.trust, "Policy trust")
        self.trust.hide()
        self.error_box = QGroupBox("Problem")
        self.error_text = text(selectable=True)
        lay_err = QVBoxLayout(self.error_box)
        lay_err.addWidget(self.error_text)
        # BLOCKED: the tunnel is up but nothing passes; the fix is the whole message.
        self.fix_box = QGroupBox("Access blocked")
        self.fix_text = text(selectable=True)
        accessible(self.fix_text, "How to fix access")
        lay_fix = QVBoxLayout(self.fix_box)
        lay_fix.addWidget(self.fix_text)

        top = QHBoxLayout()
        top.addWidget(self.state_icon, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.addWidget(self.state_line)
        col.addWidget(self.who)
        col.addWidget(self.session)
        col.addWidget(self.clock)
        top.addLayout(col, 1)

        self.primary = QPushButton()
        self.primary.setDefault(True)
        self.primary.setProperty("primary", True)
        self.primary.clicked.connect(self._on_primary)
        buttons = QHBoxLayout()
        buttons.addWidget(self.primary)
        for label, action in (
            ("&Posture", Action.POSTURE),
            ("&Activity", Action.ACTIVITY),
            ("S&ettings", Action.SETTINGS),
        ):
            b = QPushButton(label)
            accessible(b, label.replace("&", ""), f"Open the {label.replace('&', '')} window")
            b.clicked.connect(lambda _=False, a=action: actions.run(a))
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.tunnel_box = QGroupBox("Tunnel")
        form = QFormLayout(self.tunnel_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.gateway = text(selectable=True)
        self.handshake = text()
        self.traffic = text()
        self.device = text(selectable=True)
        self.access = text()
        self.access.setWordWrap(True)
        form.addRow(caption("Apps:"), self.access)
        form.addRow(caption("Gateway:"), self.gateway)
        form.addRow(caption("Last handshake:"), self.handshake)
        form.addRow(caption("Traffic:"), self.traffic)
        form.addRow(caption("Device:"), self.device)

        res_box = QGroupBox("Resources")
        self.resources = QTreeWidget()
        self.resources.setHeaderLabels(["Resource", "Address", "Status", "Why / how to fix"])
        self.resources.setRootIsDecorated(False)
        self.resources.setAlternatingRowColors(True)
        self.resources.setWordWrap(True)
        self.resources.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.resources.header().setStretchLastSection(True)
        accessible(self.resources, "Resources", "Each resource, whether it is reachable, and why")
        lay_res = QVBoxLayout(res_box)
        lay_res.addWidget(self.resources)

        root = QVBoxLayout(self)
        root.addLayout(top)
        root.addWidget(self.notice)
        root.addWidget(self.managed)
        root.addWidget(self.controller_problem)
        root.addWidget(self.trust)
        root.addWidget(self.error_box)
        root.addWidget(self.fix_box)
        root.addLayout(buttons)
        root.addWidget(self.tunnel_box)
        root.addWidget(res_box, 1)
        self.resize(self.sizeHint().expandedTo(QSize(720, 480)))

        bridge.snapshot_changed.connect(self.on_snapshot)
        self.on_snapshot(bridge.snapshot)

    def show_notice(self, message: str) -> None:
        """Show a one-line notice above the content (e.g. why there is no tray icon)."""
        self.notice.setText(message)
        self.notice.setVisible(bool(message))

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw from snapshot ``s``."""
        starting, lost = self._bridge.starting, self._bridge.lost
        kind = icon_for(s.state, starting=starting, lost=lost)
        self.state_icon.setPixmap(icons.icon(kind).pixmap(48, 48))
        label = state_label(s, starting=starting, lost=lost)
        self.state_line.setText(label)
        self.state_line.setAccessibleName(f"State: {label}")
        if lost:
            # Nothing the last snapshot said can be vouched for now: show none of it.
            self.who.setText("Your session is unknown until Rustronaut runs again.")
        elif s.user:
            org = f" at {s.organization}" if s.organization else ""
            self.who.setText(f"Signed in as {s.user}{org}")
        else:
            self.who.setText("Not signed in. Sign in with your work account to reach resources.")
        session = None if lost else session_line(s)
        self.session.setText(session or "")
        self.session.setVisible(session is not None)
        clock = None if lost else clock_line(s)
        self.clock.setText(clock or "")
        self.clock.setVisible(clock is not None)
        managed = None if lost else managed_line(s)
        self.managed.setText(managed or "")
        self.managed.setVisible(managed is not None)
        for shown, line in (
            (self.controller_problem, None if lost else controller_line(s)),
            (self.trust, None if lost else trust_line(s)),
        ):
            shown.setText(line or "")
            shown.setVisible(line is not None)
        if lost:
            self.error_box.setTitle("Rustronaut is not running")
            self.error_text.setText(
                "The Rustronaut service this window showed has stopped.\n\n"
                f"What to do: {LOST_NEXT_STEP}"
            )
            self.error_box.show()
        elif s.error is not None:
            self.error_box.setTitle(mnemonic_safe(s.error.title))
            self.error_text.setText(f"{s.error.detail}\n\nWhat to do: {next_step(s)}")
            self.error_box.show()
        else:
            self.error_box.hide()
        if s.state is SessionState.BLOCKED and not lost:
            fixes = blocked_fixes(s)
            self.fix_text.setText(
                "Connected, but every resource is blocked until this device is fixed.\n\n"
                + (
                    "\n".join(f"To fix: {fix}" for fix in fixes)
                    if fixes
                    else "See each resource below for why."
                )
            )
            self.fix_box.show()
        else:
            self.fix_box.hide()

        # The primary button is the first Restart/Sign in/Connect/Disconnect of the menu.
        primary = next(
            (
                e
                for e in menu_model(s, starting=starting, lost=lost)
                if e.action in {Action.RESTART, Action.SIGN_IN, Action.CONNECT, Action.DISCONNECT}
            ),
            None,
        )
        if primary is None:
            self.primary.hide()
            self._primary_action = None
        else:
            self.primary.show()
            self.primary.setText(primary.text)
            self.primary.setEnabled(primary.enabled)
            self._primary_action = primary.action
            accessible(self.primary, primary.text.rstrip("…"))

        connected = s.state in CONNECTED_STATES or s.state is SessionState.OFFLINE
        t = s.tunnel if connected and not lost else None
        self.gateway.setText(f"{t.gateway} ({t.interface})" if t else "Not connected")
        self.handshake.setText(format_age(t.handshake_age_s) if t else "—")
        self.traffic.setText(
            f"↓ {format_bytes(t.rx_bytes)} received · ↑ {format_bytes(t.tx_bytes)} sent"
            if t
            else "—"
        )
        self.device.setText("—" if lost else s.device_id or "Not registered yet")
        self.access.setText("—" if lost or t is None else access_line(s))

        self.resources.clear()
        if lost:
            self.resources.addTopLevelItem(
                QTreeWidgetItem(["Unknown", "", "", "Restart Rustronaut to see your resources"])
            )
            return
        for r in s.resources:
            status = resource_status(s, r)
            if status is ResourceStatus.BLOCKED:
                why = " — ".join(x for x in (r.reason, r.fix) if x)
            elif status is ResourceStatus.NOT_CONNECTED:
                why = "Connect to reach it"
            else:
                why = ""
            item = QTreeWidgetItem([r.name, r.address, _STATUS_TEXT[status], why])
            item.setForeground(2, STATUS_COLOURS[_STATUS_COLOUR[status]])
            item.setToolTip(3, plain_tip(why))
            self.resources.addTopLevelItem(item)
        if not s.resources:
            self.resources.addTopLevelItem(
                QTreeWidgetItem(["No resources yet", "", "", "Connect to load your policy"])
            )

    def _on_primary(self) -> None:
        if self._primary_action is Action.SIGN_IN:
            self._actions.show_window("signin")
        elif self._primary_action is not None:
            self._actions.run(self._primary_action)
