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
from core.i18n import QT_TRANSLATE_NOOP, translate
from core.settings.model import SPECS

if TYPE_CHECKING:
    from app.actions import Actions
    from app.bridge import EngineBridge
    from core.engine.api import EngineAPI
    from core.engine.state import Snapshot

__all__ = ["AboutWindow", "telemetry_text", "versions"]

#: Words among the version names (the others are product names, never translated).
_VERSION_LABELS = {"System": QT_TRANSLATE_NOOP("app.windows.about", "System")}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return translate("app.windows.about", "unknown")


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


def telemetry_text(engine: EngineAPI | None) -> str:
    """What this device tells the organization about its access decisions, in words
    (the ``telemetry_level`` and ``telemetry_hash_app`` settings; their defaults when
    the engine does not say)."""
    level, hashed = SPECS["telemetry_level"].default, SPECS["telemetry_hash_app"].default
    try:
        items = engine.settings() if engine is not None else []
    except Exception:  # the engine cannot answer now: show the defaults
        items = []
    for item in items:
        if item.key == "telemetry_level" and item.value in ("off", "counts", "full"):
            level = item.value
        elif item.key == "telemetry_hash_app" and isinstance(item.value, bool):
            hashed = item.value
    if level == "off":
        return translate("app.windows.about", "Off: nothing about your connections is sent")
    if level == "counts":
        return translate(
            "app.windows.about",
            "Counts only: how many connections to each resource were allowed or denied",
        )
    if hashed:
        return translate(
            "app.windows.about",
            "Every decision: time, destination, rule and reason; apps only as a hash",
        )
    return translate("app.windows.about", "Every decision: time, app, destination, rule and reason")


class AboutWindow(QWidget):
    """Versions, support and diagnostics export."""

    def __init__(self, bridge: EngineBridge, actions: Actions) -> None:
        super().__init__()
        window_setup(self, translate("app.windows.about", "About"), "about-window")
        self._actions = actions
        logo = QLabel()
        logo.setPixmap(icons.icon(icons.APP_ICON).pixmap(64, 64))
        logo.setAccessibleName(translate("app.windows.about", "Rustronaut logo"))
        title = heading("Rustronaut")
        tagline = muted(translate("app.windows.about", "Zero-trust access to your work resources"))
        top = QHBoxLayout()
        top.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.addWidget(title)
        col.addWidget(tagline)
        top.addLayout(col, 1)

        self._versions = versions()
        vbox = QGroupBox(translate("app.windows.about", "Versions"))
        form = QFormLayout(vbox)
        for k, v in self._versions.items():
            name = translate("app.windows.about", _VERSION_LABELS[k]) if k in _VERSION_LABELS else k
            form.addRow(
                caption(translate("app.windows.about", "{name}:").format(name=name)),
                text(v, selectable=True),
            )
        self.policy = text(selectable=True)
        self.device = text(selectable=True)
        self.session = text(selectable=True)
        form.addRow(caption(translate("app.windows.about", "Policy:")), self.policy)
        form.addRow(caption(translate("app.windows.about", "Device:")), self.device)
        form.addRow(caption(translate("app.windows.about", "Session:")), self.session)
        self.telemetry = text(selectable=True)
        form.addRow(caption(translate("app.windows.about", "Reports to IT:")), self.telemetry)

        sbox = QGroupBox(translate("app.windows.about", "Support"))
        sl = QVBoxLayout(sbox)
        self.support = text(selectable=True)
        # The support URL is shown as text; a link opens it only when it is https.
        self.support_link = link_label("Open the help page", None)
        sl.addWidget(self.support)
        sl.addWidget(self.support_link)

        dbox = QGroupBox(translate("app.windows.about", "Diagnostics"))
        dl = QVBoxLayout(dbox)
        dl.addWidget(
            text(
                translate(
                    "app.windows.about",
                    "Save a diagnostics file for your support team. It holds logs and "
                    "settings, never your passwords, tokens or keys.",
                )
            )
        )
        self.save = QPushButton(translate("app.windows.about", "&Save diagnostics…"))
        accessible(
            self.save,
            translate("app.windows.about", "Save diagnostics"),
            translate("app.windows.about", "Write the diagnostics zip to Downloads"),
        )
        self.save.clicked.connect(self._save)
        self.copy = QPushButton(translate("app.windows.about", "&Copy versions"))
        accessible(
            self.copy,
            translate("app.windows.about", "Copy versions"),
            translate("app.windows.about", "Copy the version list to the clipboard"),
        )
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
        self.policy.setText(
            translate("app.windows.about", "version {version}").format(version=s.policy_version)
            if s.policy_version
            else translate("app.windows.about", "none yet")
        )
        self.device.setText(s.device_id or translate("app.windows.about", "not registered"))
        url = support_url(self._actions.engine)
        org = s.organization or translate("app.windows.about", "your organization")
        if url:
            self.support.setText(
                translate("app.windows.about", "Need help? Contact {org}: {url}").format(
                    org=org, url=clean(url)
                )
            )
        else:
            self.support.setText(
                translate("app.windows.about", "Need help? Contact the IT team of {org}.").format(
                    org=org
                )
            )
        set_link(self.support_link, url)
        self.telemetry.setText(telemetry_text(self._actions.engine))

    def _save(self) -> None:
        self.save.setEnabled(False)
        self.result.setText(translate("app.windows.about", "Saving diagnostics…"))
        self.result.show()
        self._actions.collect_diagnostics()

    def _saved(self, path: str) -> None:
        self.save.setEnabled(True)
        self.result.setText(
            translate("app.windows.about", "Saved to {path}").format(path=clean(path))
        )
        self.result.show()

    def _failed(self, message: str) -> None:
        self.save.setEnabled(True)
        self.result.setText(clean(message))
        self.result.show()

    def _copy(self) -> None:
        clipboard = QGuiApplication.clipboard()
        # For the support team, like the logs: the names stay English.
        body = "\n".join(f"{k}: {v}" for k, v in self._versions.items())
        body += f"\nPolicy: {self.policy.text()}\nDevice: {self.device.text()}"
        body += f"\nPlatform: {sys.platform}"
        if clipboard is not None:
            clipboard.setText(body)
