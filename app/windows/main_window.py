"""The main window: who is signed in, this device, the tunnel and every resource.

Renders the snapshot only; the primary button changes with the state (Sign in /
Connect / Disconnect) and goes through ``Actions``. Below the resources, a details pane
shows the selected resource (at first, the first blocked one) in full, wrapped: its
address with a Copy address button, why it is blocked and how to fix it — never cut off
at the window's default width. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QGuiApplication
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
    transport_label,
    transport_line,
    trust_line,
)
from app.widgets import (
    accessible,
    caption,
    heading,
    mnemonic_safe,
    muted,
    plain_tip,
    status_colour,
    text,
    tint,
    window_setup,
)
from core.engine.state import ResourceView, SessionState
from core.i18n import QT_TRANSLATE_NOOP, translate

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import Snapshot

__all__ = ["MainWindow"]

_STATUS_TEXT = {
    ResourceStatus.REACHABLE: QT_TRANSLATE_NOOP("app.windows.main_window", "Reachable"),
    ResourceStatus.BLOCKED: QT_TRANSLATE_NOOP("app.windows.main_window", "Blocked"),
    ResourceStatus.NOT_CONNECTED: QT_TRANSLATE_NOOP("app.windows.main_window", "Not connected"),
}
_STATUS_COLOUR = {
    ResourceStatus.REACHABLE: "ok",
    ResourceStatus.BLOCKED: "fail",
    ResourceStatus.NOT_CONNECTED: "unknown",
}
#: The status with a shape, for the details pane (colour is never the only signal).
_STATUS_SHAPE = {
    ResourceStatus.REACHABLE: QT_TRANSLATE_NOOP("app.windows.main_window", "✓ Reachable"),
    ResourceStatus.BLOCKED: QT_TRANSLATE_NOOP("app.windows.main_window", "✕ Blocked"),
    ResourceStatus.NOT_CONNECTED: QT_TRANSLATE_NOOP("app.windows.main_window", "– Not connected"),
}
_STATUS_ROLE = Qt.ItemDataRole.UserRole + 1  # the colour key kept on the status cell
_INDEX_ROLE = Qt.ItemDataRole.UserRole + 2  # the row's index in the shown resources
_ADDRESS_CHARS = 26  # the Address column's width in characters (longer ones elide)


class MainWindow(QWidget):
    """Overview window ("Open Rustronaut")."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, "Rustronaut", "main-window")
        self._actions = actions
        self._bridge = bridge
        self._primary_action: Action | None = None

        self.state_icon = QLabel()
        self.state_icon.setAccessibleName(
            translate("app.windows.main_window", "Connection state icon")
        )
        self.state_line = heading("")
        self.who = text()
        self.session = muted()  # when the sign-in ends and whether it renews
        accessible(self.session, translate("app.windows.main_window", "Sign-in"))
        self.clock = text()  # this computer's clock is off: the cause of many failures
        accessible(self.clock, translate("app.windows.main_window", "Clock"))
        self.notice = muted()  # why the window opened (e.g. no system tray)
        self.notice.hide()
        self.managed = text(selectable=True)  # the organization's settings were rejected
        accessible(self.managed, translate("app.windows.main_window", "Managed configuration"))
        self.managed.hide()
        self.controller_problem = text(selectable=True)  # outage: the last policy holds
        accessible(self.controller_problem, translate("app.windows.main_window", "Controller"))
        self.controller_problem.hide()
        self.trust = text(selectable=True)  # keys trusted on first use (development setup)
        accessible(self.trust, translate("app.windows.main_window", "Policy trust"))
        self.trust.hide()
        self.error_box = QGroupBox(translate("app.windows.main_window", "Problem"))
        self.error_text = text(selectable=True)
        lay_err = QVBoxLayout(self.error_box)
        lay_err.addWidget(self.error_text)
        # BLOCKED: the tunnel is up but nothing passes; the fix is the whole message.
        self.fix_box = QGroupBox(translate("app.windows.main_window", "Access blocked"))
        self.fix_text = text(selectable=True)
        accessible(self.fix_text, translate("app.windows.main_window", "How to fix access"))
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
        for label, description, action in (
            (
                translate("app.windows.main_window", "&Posture"),
                translate("app.windows.main_window", "Open the Posture window"),
                Action.POSTURE,
            ),
            (
                translate("app.windows.main_window", "&Activity"),
                translate("app.windows.main_window", "Open the Activity window"),
                Action.ACTIVITY,
            ),
            (
                translate("app.windows.main_window", "S&ettings"),
                translate("app.windows.main_window", "Open the Settings window"),
                Action.SETTINGS,
            ),
        ):
            b = QPushButton(label)
            accessible(b, label.replace("&", ""), description)
            b.clicked.connect(lambda _=False, a=action: actions.run(a))
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.tunnel_box = QGroupBox(translate("app.windows.main_window", "Tunnel"))
        form = QFormLayout(self.tunnel_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.gateway = text(selectable=True)
        self.handshake = text()
        self.traffic = text()
        self.device = text(selectable=True)
        self.access = text()
        self.access.setWordWrap(True)
        # How WireGuard's packets travel (UDP, or a relay when the network blocks UDP)
        # and, when not plain UDP, why and what happens next, in full.
        self.transport = text()
        accessible(self.transport, translate("app.windows.main_window", "Transport"))
        self.transport_why = text()
        self.transport_why.setWordWrap(True)
        accessible(self.transport_why, translate("app.windows.main_window", "Why this transport"))
        self.transport_why.hide()
        transport_col = QVBoxLayout()
        transport_col.addWidget(self.transport)
        transport_col.addWidget(self.transport_why)
        form.addRow(caption(translate("app.windows.main_window", "Apps:")), self.access)
        form.addRow(caption(translate("app.windows.main_window", "Gateway:")), self.gateway)
        form.addRow(caption(translate("app.windows.main_window", "Transport:")), transport_col)
        form.addRow(
            caption(translate("app.windows.main_window", "Last handshake:")), self.handshake
        )
        form.addRow(caption(translate("app.windows.main_window", "Traffic:")), self.traffic)
        form.addRow(caption(translate("app.windows.main_window", "Device:")), self.device)
        # Captions on their value's first line: beside a field of several lines (the
        # transport and its why, a wrapped Apps line) QFormLayout gives the caption a box
        # taller than its text, where a vertically centred caption sits below that line.
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and isinstance(cap := item.widget(), QLabel):
                cap.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        res_box = QGroupBox(translate("app.windows.main_window", "Resources"))
        self.resources = QTreeWidget()
        self.resources.setHeaderLabels(
            [
                translate("app.windows.main_window", "Resource"),
                translate("app.windows.main_window", "Address"),
                translate("app.windows.main_window", "Status"),
                translate("app.windows.main_window", "Why / how to fix"),
            ]
        )
        self.resources.setRootIsDecorated(False)
        self.resources.setAlternatingRowColors(True)
        self.resources.setWordWrap(True)
        header = self.resources.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # A long address list must not push Status off-screen: it elides (the details
        # pane shows it whole, with Copy address).
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, self.fontMetrics().horizontalAdvance("x" * _ADDRESS_CHARS))
        header.setStretchLastSection(True)
        accessible(
            self.resources,
            translate("app.windows.main_window", "Resources"),
            translate("app.windows.main_window", "Each resource, whether it is reachable, and why"),
        )
        self.resources.currentItemChanged.connect(lambda *_: self._show_detail())
        lay_res = QVBoxLayout(res_box)
        lay_res.addWidget(self.resources)
        self._shown: list[tuple[ResourceView, ResourceStatus]] = []
        self._fixes: tuple[str, ...] = ()  # the fixes the BLOCKED box lists

        # The selected resource in full: the reason and fix wrap instead of being cut off.
        self.detail_box = QGroupBox(translate("app.windows.main_window", "Selected resource"))
        self.detail_status = text()
        accessible(self.detail_status, translate("app.windows.main_window", "Resource status"))
        self.detail_address = text(selectable=True)
        accessible(self.detail_address, translate("app.windows.main_window", "Resource address"))
        self.copy_address = QPushButton(translate("app.windows.main_window", "Cop&y address"))
        accessible(
            self.copy_address,
            translate("app.windows.main_window", "Copy address"),
            translate("app.windows.main_window", "Copy the resource's address"),
        )
        self.copy_address.clicked.connect(self._copy_address)
        self.detail_why = text(selectable=True)
        accessible(self.detail_why, translate("app.windows.main_window", "Why"))
        self.detail_fix = text(selectable=True)
        accessible(self.detail_fix, translate("app.windows.main_window", "How to fix"))
        address_row = QHBoxLayout()
        address_row.addWidget(self.detail_address, 1)
        address_row.addWidget(self.copy_address, 0, Qt.AlignmentFlag.AlignTop)
        lay_detail = QVBoxLayout(self.detail_box)
        lay_detail.addWidget(self.detail_status)
        lay_detail.addLayout(address_row)
        lay_detail.addWidget(self.detail_why)
        lay_detail.addWidget(self.detail_fix)

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
        root.addWidget(self.detail_box)
        # Fits a 1366×768 screen: the resource list gives up height before anything else.
        size = self.sizeHint().expandedTo(QSize(760, 600))
        self.resize(size.boundedTo(QSize(size.width(), 680)))

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
        self.state_line.setAccessibleName(
            translate("app.windows.main_window", "State: {state}").format(state=label)
        )
        if lost:
            # Nothing the last snapshot said can be vouched for now: show none of it.
            self.who.setText(
                translate(
                    "app.windows.main_window",
                    "Your session is unknown until Rustronaut runs again.",
                )
            )
        elif s.user and s.organization:
            self.who.setText(
                translate(
                    "app.windows.main_window", "Signed in as {user} at {organization}"
                ).format(user=s.user, organization=s.organization)
            )
        elif s.user:
            self.who.setText(
                translate("app.windows.main_window", "Signed in as {user}").format(user=s.user)
            )
        else:
            self.who.setText(
                translate(
                    "app.windows.main_window",
                    "Not signed in. Sign in with your work account to reach resources.",
                )
            )
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
            self.error_box.setTitle(
                translate("app.windows.main_window", "Rustronaut is not running")
            )
            self.error_text.setText(
                translate(
                    "app.windows.main_window",
                    "The Rustronaut service this window showed has stopped.\n\n"
                    "What to do: {next_step}",
                ).format(next_step=translate("app.presenter", LOST_NEXT_STEP))
            )
            self.error_box.show()
        elif s.error is not None:
            self.error_box.setTitle(mnemonic_safe(s.error.title))
            self.error_text.setText(
                translate("app.windows.main_window", "{detail}\n\nWhat to do: {next_step}").format(
                    detail=s.error.detail, next_step=next_step(s)
                )
            )
            self.error_box.show()
        else:
            self.error_box.hide()
        self._fixes = ()
        if s.state is SessionState.BLOCKED and not lost:
            fixes = self._fixes = blocked_fixes(s)
            self.fix_text.setText(
                translate(
                    "app.windows.main_window",
                    "Connected, but every resource is blocked until this device is fixed.",
                )
                + "\n\n"
                + (
                    "\n".join(
                        translate("app.windows.main_window", "To fix: {fix}").format(fix=fix)
                        for fix in fixes
                    )
                    if fixes
                    else translate("app.windows.main_window", "See each resource below for why.")
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
        self.gateway.setText(
            f"{t.gateway} ({t.interface})"
            if t
            else translate("app.windows.main_window", _STATUS_TEXT[ResourceStatus.NOT_CONNECTED])
        )
        self.handshake.setText(format_age(t.handshake_age_s) if t else "—")
        self.transport.setText(transport_label(t))
        why = transport_line(s) if t is not None else None
        self.transport_why.setText(why or "")
        self.transport_why.setVisible(why is not None)
        self.traffic.setText(
            translate("app.windows.main_window", "↓ {received} received · ↑ {sent} sent").format(
                received=format_bytes(t.rx_bytes), sent=format_bytes(t.tx_bytes)
            )
            if t
            else "—"
        )
        self.device.setText(
            "—"
            if lost
            else s.device_id or translate("app.windows.main_window", "Not registered yet")
        )
        self.access.setText("—" if lost or t is None else access_line(s))

        self.resources.clear()
        self._shown = []
        first: QTreeWidgetItem | None = None
        if lost:
            self.resources.addTopLevelItem(
                QTreeWidgetItem(
                    [
                        translate("app.windows.main_window", "Unknown"),
                        "",
                        "",
                        translate(
                            "app.windows.main_window", "Restart Rustronaut to see your resources"
                        ),
                    ]
                )
            )
        for r in () if lost else s.resources:
            status = resource_status(s, r)
            if status is ResourceStatus.BLOCKED:
                why = " — ".join(x for x in (r.reason, r.fix) if x)
            elif status is ResourceStatus.NOT_CONNECTED:
                why = translate("app.windows.main_window", "Connect to reach it")
            else:
                why = ""
            item = QTreeWidgetItem(
                [r.name, r.address, translate("app.windows.main_window", _STATUS_TEXT[status]), why]
            )
            item.setData(2, _STATUS_ROLE, _STATUS_COLOUR[status])
            item.setToolTip(1, plain_tip(r.address))
            item.setToolTip(3, plain_tip(why))
            self.resources.addTopLevelItem(item)
            item.setData(0, _INDEX_ROLE, len(self._shown))
            self._shown.append((r, status))
            if first is None and status is ResourceStatus.BLOCKED:
                first = item
        if not s.resources and not lost:
            self.resources.addTopLevelItem(
                QTreeWidgetItem(
                    [
                        translate("app.windows.main_window", "No resources yet"),
                        "",
                        "",
                        translate("app.windows.main_window", "Connect to load your policy"),
                    ]
                )
            )
        self._recolour()
        if self._shown:
            current = first or self.resources.topLevelItem(0)
            if current is not None:
                self.resources.setCurrentItem(current)
        self._show_detail()
        self._fit()

    def _fit(self) -> None:
        """Grow (never shrink) the window when wrapped text needs more height than it
        has, within the screen: the reason and fix are never squeezed out of sight."""
        layout = self.layout()
        screen = self.screen()
        if layout is None or screen is None:
            return
        layout.activate()
        need = layout.totalHeightForWidth(self.width())
        if need > self.height():
            room = screen.availableGeometry().height() - 40  # the title bar
            self.resize(self.width(), max(self.height(), min(need, room)))

    def _selected(self) -> tuple[ResourceView, ResourceStatus] | None:
        item = self.resources.currentItem()
        index = item.data(0, _INDEX_ROLE) if item is not None else None
        return self._shown[index] if isinstance(index, int) else None

    def _show_detail(self) -> None:
        """Fill the details pane from the selected resource (hidden when none)."""
        shown = self._selected()
        if shown is None:
            self.detail_box.hide()
            return
        r, status = shown
        self.detail_box.setTitle(mnemonic_safe(r.name))
        self.detail_status.setText(translate("app.windows.main_window", _STATUS_SHAPE[status]))
        tint(self.detail_status, status_colour(_STATUS_COLOUR[status], self.palette()))
        self.detail_address.setText(
            translate("app.windows.main_window", "Address: {address}").format(address=r.address)
            if r.address
            else ""
        )
        self.detail_address.setVisible(bool(r.address))
        self.copy_address.setVisible(bool(r.address))
        if status is ResourceStatus.BLOCKED:
            why = r.reason or translate(
                "app.windows.main_window", "Your organization's policy does not allow it."
            )
            # BLOCKED lists every fix in the box above: not twice on one screen.
            fix = "" if not self.fix_box.isHidden() and r.fix in self._fixes else r.fix
        elif status is ResourceStatus.NOT_CONNECTED:
            why = translate("app.windows.main_window", "Rustronaut is not connected.")
            fix = translate("app.windows.main_window", "Connect to reach it.")
        else:
            why, fix = "", ""
        self.detail_why.setText(
            translate("app.windows.main_window", "Why: {why}").format(why=why) if why else ""
        )
        self.detail_why.setVisible(bool(why))
        self.detail_fix.setText(
            translate("app.windows.main_window", "How to fix: {fix}").format(fix=fix) if fix else ""
        )
        self.detail_fix.setVisible(bool(fix))
        self.detail_box.show()

    def _copy_address(self) -> None:
        shown = self._selected()
        if shown is not None and shown[0].address:
            QGuiApplication.clipboard().setText(shown[0].address)

    def _recolour(self) -> None:
        palette = self.resources.palette()
        for i in range(self.resources.topLevelItemCount()):
            item = self.resources.topLevelItem(i)
            if item is None:
                continue
            key = item.data(2, _STATUS_ROLE)
            if key:
                item.setForeground(2, status_colour(str(key), palette))
        tint(self.clock, status_colour("warn", self.palette()))

    def changeEvent(self, event: QEvent) -> None:
        """Status colours follow the theme (light or dark) when it changes."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self._recolour()
            self._show_detail()

    def _on_primary(self) -> None:
        if self._primary_action is Action.SIGN_IN:
            self._actions.show_window("signin")
        elif self._primary_action is not None:
            self._actions.run(self._primary_action)
