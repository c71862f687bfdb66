"""About and diagnostics: versions, the organization's support link, the diagnostics zip.

"Save diagnostics" asks the engine for its redacted zip (in the background) into the
Downloads folder and shows where it went; the employee sends that file to support.
GUI thread only.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import icons
from app.actions import support_url
from app.plain import clean
from app.presenter import owner_text
from app.widgets import (
    accessible,
    caption,
    heading,
    link_label,
    muted,
    set_link,
    text,
    window_setup,
)

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.state import Snapshot

__all__ = ["AboutWindow", "versions"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """Component versions shown in About and copied for support."""
    import PySide6

    return {
        "Rustronaut": _version("rustronaut-client"),
        "Python": platform.python_version(),
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "qasync": _version("qasync"),
        "System": f"{platform.system()} {platform.release()} ({platform.machine()})",
    }


class AboutWindow(QWidget):
    """Versions, support and diagnostics export."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, "About", "about-window")
        self._actions = actions
        logo = QLabel()
        logo.setPixmap(icons.icon(icons.APP_ICON).pixmap(64, 64))
        logo.setAccessibleName("Rustronaut logo")
        title = heading("Rustronaut")
        tagline = muted("Zero-trust access to your work resources")
        top = QHBoxLayout()
        top.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.addWidget(title)
        col.addWidget(tagline)
        top.addLayout(col, 1)

        self._versions = versions()
        vbox = QGroupBox("Versions")
        form = QFormLayout(vbox)
        for k, v in self._versions.items():
            form.addRow(caption(f"{k}:"), text(v, selectable=True))
        self.policy = text(selectable=True)
        self.device = text(selectable=True)
        self.session = text(selectable=True)
        form.addRow(caption("Policy:"), self.policy)
        form.addRow(caption("Device:"), self.device)
        form.addRow(caption("Session:"), self.session)

        sbox = QGroupBox("Support")
        sl = QVBoxLayout(sbox)
        self.support = text(selectable=True)
        # The support URL is shown as text; a link opens it only when it is https.
        self.support_link = link_label("Open the help page", None)
        sl.addWidget(self.support)
        sl.addWidget(self.support_link)

        dbox = QGroupBox("Diagnostics")
        dl = QVBoxLayout(dbox)
        dl.addWidget(
            text(
                "Save a diagnostics file for your support team. It holds logs and "
                "settings, never your passwords, tokens or keys."
            )
        )
        self.save = QPushButton("&Save diagnostics…")
        accessible(self.save, "Save diagnostics", "Write the diagnostics zip to Downloads")
        self.save.clicked.connect(self._save)
        self.copy = QPushButton("&Copy versions")
        accessible(self.copy, "Copy versions", "Copy the version list to the clipboard")
        self.copy.clicked.connect(self._copy)
        row = QHBoxLayout()
        row.addWidget(self.save)
        row.addWidget(self.copy)
        row.addStretch(1)
        dl.addLayout(row)
        self.result = text(selectable=True)
        self.result.hide()
        dl.addWidget(self.result)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(vbox)
        lay.addWidget(sbox)
        lay.addWidget(dbox)
        lay.addStretch(1)
        self.resize(self.sizeHint().expandedTo(QSize(560, 520)))

        actions.diagnostics_saved.connect(self._saved)
        actions.diagnostics_failed.connect(self._failed)
        bridge.snapshot_changed.connect(self.on_snapshot)
        self.on_snapshot(bridge.snapshot)

    def on_snapshot(self, s: Snapshot) -> None:
        """Redraw from snapshot ``s`` (and how the engine is held: ``Actions.link``)."""
        link = self._actions.link
        self.session.setText(owner_text(link.hosted_by if link is not None else None))
        self.policy.setText(f"version {s.policy_version}" if s.policy_version else "none yet")
        self.device.setText(s.device_id or "not registered")
        url = support_url(self._actions.engine)
        org = s.organization or "your organization"
        if url:
            self.support.setText(f"Need help? Contact {org}: {clean(url)}")
        else:
            self.support.setText(f"Need help? Contact the IT team of {org}.")
        set_link(self.support_link, url)

    def _save(self) -> None:
        self.save.setEnabled(False)
        self.result.setText("Saving diagnostics…")
        self.result.show()
        self._actions.collect_diagnostics()

    def _saved(self, path: str) -> None:
        self.save.setEnabled(True)
        self.result.setText(f"Saved to {clean(path)}")
        self.result.show()

    def _failed(self, message: str) -> None:
        self.save.setEnabled(True)
        self.result.setText(clean(message))
        self.result.show()

    def _copy(self) -> None:
        clipboard = QGuiApplication.clipboard()
        body = "\n".join(f"{k}: {v}" for k, v in self._versions.items())
        body += f"\nPolicy: {self.policy.text()}\nDevice: {self.device.text()}"
        body += f"\nPlatform: {sys.platform}"
        if clipboard is not None:
            clipboard.setText(body)
