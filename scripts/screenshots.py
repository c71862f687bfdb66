"""Render the tray app against the real engine on the test bed to docs/screenshots/*.png.

Usage (root: the test bed makes network namespaces):
``.venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--only relay]``
(``--only relay``: just the relay shots below, in well under a minute.)

What it runs, all of it stopped again at the end:

- its own ``Xvfb`` (a free display number) and ``trayer`` (a real XEmbed system tray);
- the test bed (``controller.demo.bed.make_bed``, with two real mTLS relays) and one
  whole session on it
  (``controller.demo.harness.session``): the reference controller with the demo company's
  policy, the real privileged helper and the real client engine, signed in as the demo
  user ``alice`` (engineering) and connected; payroll is for finance only, so it is
  blocked for her;
- the tray app in this process, attached to that engine over its local API
  (``RemoteEngine.attach(control_socket)``), as it attaches to the agent on a laptop.

Shots, each light and dark (``*-dark.png``: Fusion with a dark palette, what a dark
desktop theme gives Qt), every window at its own default size: onboarding (this
process has no controller configured: the first-run window asking, then having found
the bed's controller by its ``/.well-known/rustronaut`` answer), the main window, the
tray menu with its Resources submenu open (grabbed with ImageMagick's ``import``, since
``QWidget.grab()`` cannot see popup menus), posture, activity (real allow and deny
decisions from curl through the client's proxy), settings, about, and sign-in (the real
engine signed out at the end, showing the device code its OIDC provider gave).
Then the relay state (issue 21): the bed drops the client's UDP (``Bed.block_udp``, a
hotel network), the helper moves the tunnel to a relay, and the main window
(``main-relay``) and the tray menu (``tray-menu-relay``) are shot saying "Connected via
relay", why and what happens next.
Break-glass needs an always-on engine, which the bed
does not manage: that one dialog still uses the test suite's scripted engine.

Needs (apt): xvfb, trayer, imagemagick, fonts-dejavu-core, the xcb libraries in
scripts/apt/ui.txt, and what the end-to-end tests need (wireguard-tools, wireguard-go,
nftables, iproute2, dbus, gnome-keyring; see tests/e2e).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages and tests.fakes

if TYPE_CHECKING:
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication, QWidget

    from app.tray_app import TrayApp
    from controller.demo.harness import Session

#: The two looks shot: light (the style's own palette) and dark.
THEMES = ("light", "dark")

#: The windows shot from the real engine, by ``Actions.show_window`` name.
WINDOWS = ("main", "posture", "activity", "settings", "about")

#: The mTLS relays the bed runs (the relay shots need at least one).
RELAYS = 2

#: What the demo employee types in the first-run window's ask stage.
DEMO_EMAIL = "alice@corp.example"

#: Dark palette colours (role name → hex): a dark desktop theme as Fusion draws it. The
#: base is dark enough for ``app.widgets.is_dark`` and DARK_STATUS_COLOURS' 4.5:1.
DARK_COLOURS = {
    "Window": "#2b2b2b",
    "WindowText": "#e6e6e6",
    "Base": "#1e1e1e",
    "AlternateBase": "#2f2f2f",
    "ToolTipBase": "#3a3a3a",
    "ToolTipText": "#f0f0f0",
    "PlaceholderText": "#9a9a9a",
    "Text": "#e6e6e6",
    "Button": "#353535",
    "ButtonText": "#e6e6e6",
    "BrightText": "#ff6b6b",
    "Light": "#4a4a4a",
    "Midlight": "#3e3e3e",
    "Mid": "#2a2a2a",
    "Dark": "#1a1a1a",
    "Shadow": "#0d0d0d",
    "Highlight": "#3d7bd9",
    "HighlightedText": "#ffffff",
    "Link": "#8ab4f8",
    "LinkVisited": "#c58af9",
}

#: Disabled text in the dark palette (greyed, still legible).
DARK_DISABLED = "#7f7f7f"


def shot_name(name: str, theme: str) -> str:
    """The file name of shot ``name`` in ``theme``: ``main.png``, ``main-dark.png``."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}")
    return f"{name}.png" if theme == "light" else f"{name}-{theme}.png"


def dark_palette() -> QPalette:
    """The dark palette the dark shots use (``app.widgets.is_dark`` says True for it)."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    for role, colour in DARK_COLOURS.items():
        palette.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    for role in ("WindowText", "Text", "ButtonText"):
        palette.setColor(
            QPalette.ColorGroup.Disabled,
            getattr(QPalette.ColorRole, role),
            QColor(DARK_DISABLED),
        )
    return palette


def menu_crop(
    screen: tuple[int, int], submenu_left: int, menu_bottom: int, margin: int = 30
) -> tuple[int, int, int, int]:
    """(width, height, x, y) of the tray menu's shot on a ``screen`` (w, h) root grab:
    from ``margin`` px left of the open submenu to the right edge, from the top (the
    panel with the tray icon) to ``margin`` px below the menu, clamped to the screen."""
    width, height = screen
    left = min(max(0, submenu_left - margin), width - 1)
    bottom = max(1, min(height, menu_bottom + margin))
    return width - left, bottom, left, 0


@dataclass
class Shooter:
    """Grabs into ``out`` and remembers what it wrote."""

    out: Path
    display: str
    tmp: Path
    written: list[Path]

    def grab(self, widget: QWidget, name: str, theme: str) -> Path:
        """Save ``widget.grab()`` (the window at its current size) as shot ``name``."""
        path = self.out / shot_name(name, theme)
        if not widget.grab().save(str(path)):
            raise RuntimeError(f"could not write {path}")
        self.written.append(path)
        return path

    async def grab_root(self, name: str, theme: str, crop: tuple[int, int, int, int]) -> Path:
        """Save the X root window cropped to ``crop`` (w, h, x, y) as shot ``name``."""
        full = self.tmp / "root.png"
        await _run(["import", "-display", self.display, "-window", "root", str(full)])
        path = self.out / shot_name(name, theme)
        w, h, x, y = crop
        await _run(["convert", str(full), "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(path)])
        self.written.append(path)
        return path


async def _run(argv: list[str]) -> None:
    # In a thread: the Qt loop must keep painting the open menu while ImageMagick reads it.
    await asyncio.to_thread(subprocess.run, argv, check=True, timeout=30)


async def _settle(seconds: float = 0.4) -> None:
    # The qasync loop processes Qt events (layout, paint) while this task sleeps; never
    # processEvents() here (it would re-enter the loop from inside a task).
    await asyncio.sleep(seconds)


async def _until(what: str, ready: Callable[[], bool], within: float = 30) -> None:
    """Wait (letting the Qt loop run) until ``ready()``; RuntimeError naming ``what``."""
    deadline = time.monotonic() + within
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _apply_theme(qapp: QApplication, theme: str) -> None:
    # Set before the theme's windows are made: status colours are picked from the
    # palette when a row is filled (app.widgets.status_colour).
    style = qapp.style()
    qapp.setPalette(dark_palette() if theme == "dark" else style.standardPalette())


def _wallpaper(qapp: QApplication) -> QWidget:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QLinearGradient, QPainter
    from PySide6.QtWidgets import QWidget

    class Wallpaper(QWidget):
        def paintEvent(self, _event: object) -> None:
            p = QPainter(self)
            g = QLinearGradient(0, 0, self.width(), self.height())
            g.setColorAt(0, QColor("#1e3a5f"))
            g.setColorAt(1, QColor("#3b6e8f"))
            p.fillRect(self.rect(), g)

    wall = Wallpaper()
    wall.setWindowFlag(Qt.WindowType.X11BypassWindowManagerHint)
    wall.setGeometry(qapp.primaryScreen().geometry())
    wall.show()
    wall.lower()
    return wall


# --------------------------------------------------------------------------- shots
async def _onboarding(shooter: Shooter, theme: str, controller_url: str) -> None:
    """The first-run window asking, then having found the bed's controller."""
    from app.main import needs_onboarding
    from app.windows.onboarding import OnboardingWindow, Stage

    if not await asyncio.to_thread(needs_onboarding):
        raise RuntimeError("screenshots: this process has a controller configured")

    def refuse(url: str) -> None:  # never clicked; nothing may be saved from here
        raise RuntimeError(f"the screenshot script saves no controller ({url})")

    ask = OnboardingWindow(save=refuse)
    ask.show()
    ask.field.setText(DEMO_EMAIL)
    await _settle()
    shooter.grab(ask, "onboarding", theme)
    ask.hide()
    ask.deleteLater()

    # The organisation's address; its /.well-known/rustronaut names the controller.
    found = OnboardingWindow(save=refuse)
    found.show()
    found.field.setText(controller_url)
    found.look_up()
    await _until("the onboarding lookup", lambda: found.stage in (Stage.FOUND, Stage.FAILED))
    if found.stage is not Stage.FOUND:
        raise RuntimeError(f"screenshots: onboarding failed: {found.status.text()}")
    await _settle()
    shooter.grab(found, "onboarding-found", theme)
    found.hide()
    found.deleteLater()


@contextlib.asynccontextmanager
async def _tray(s: Session, tmp: Path) -> AsyncIterator[TrayApp]:
    """The tray app attached to the session's engine (as to the agent), then detached."""
    from app.autostart import XdgAutostart
    from app.link import AttachedLink
    from app.tray_app import TrayApp
    from core.engine.localapi.client import RemoteEngine

    remote = await RemoteEngine.attach(s.control_socket, client="tray")
    link = AttachedLink(remote, remote.hosted_by or "agent")
    tray_app = TrayApp(
        link,
        autostart=XdgAutostart(tmp, ["rustronaut-tray", "--autostart"]),
        open_signin_when_signed_out=False,
        ask_autostart=False,
    )
    tray_app.start()
    try:
        yield tray_app
    finally:
        tray_app.shutdown()
        await link.close()


def _traffic(s: Session) -> list[int]:
    """Real decisions: the wiki (allowed) and payroll (denied) through the client's proxy,
    by SOCKS5 and by HTTP proxying; returns the HTTP statuses."""
    codes = []
    for url in ("http://wiki.corp.example/", "http://payroll.corp.example/"):
        for socks in (True, False):
            result = s.curl(url, socks=socks, timeout=4)
            codes.append(int(result.stdout.rsplit("\n", 1)[-1] or 0))
    return codes


async def _engine_windows(shooter: Shooter, s: Session, theme: str) -> None:
    """Main, posture, activity, settings, about and the tray menu, from the real engine."""
    async with _tray(s, shooter.tmp) as tray_app:
        await _until("the tray's snapshot", lambda: tray_app.bridge.snapshot.user is not None)
        before = tray_app.actions.activity.rowCount()
        await asyncio.to_thread(_traffic, s)
        await _until(
            "the decisions in the activity list",
            lambda: tray_app.actions.activity.rowCount() >= before + 4,
        )
        await _settle(0.8)
        for name in WINDOWS:
            window = tray_app.actions.show_window(name)
            await _settle()
            shooter.grab(window, name, theme)
            window.hide()
        await _tray_menu(shooter, tray_app, theme)


async def _tray_menu(
    shooter: Shooter,
    tray_app: TrayApp,
    theme: str,
    name: str = "tray-menu",
    *,
    submenu: bool = True,
) -> None:
    """The tray menu under the tray icon, shot as ``name``; with ``submenu`` its
    Resources submenu open to the left."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QMenu

    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    screen = qapp.primaryScreen().geometry()
    icon_geo = tray_app.tray.icon.geometry()
    menu = tray_app.tray.menu
    # A notice balloon still up (Qt's own on an XEmbed tray, e.g. "now on a relay") would
    # peek out from behind the menu: the shot is of the menu.
    for widget in qapp.topLevelWidgets():
        if widget.metaObject().className() == "QBalloonTip":
            widget.hide()
    menu.adjustSize()
    anchor = (
        QPoint(icon_geo.right() - menu.sizeHint().width(), icon_geo.bottom() + 4)
        if icon_geo.isValid() and icon_geo.width() > 0
        else QPoint(screen.width() - menu.sizeHint().width() - 40, 34)
    )
    menu.popup(anchor)
    await _settle(0.4)
    if not submenu:
        left = menu.geometry().left()
        crop = menu_crop((screen.width(), screen.height()), left, menu.geometry().bottom())
        await shooter.grab_root(name, theme, crop)
        menu.hide()
        return
    resources = next(a for a in menu.actions() if a.menu() is not None)
    menu.setActiveAction(resources)
    sub = resources.menu()
    assert isinstance(sub, QMenu)
    sub.adjustSize()
    geo = menu.actionGeometry(resources)
    sub_pos = menu.mapToGlobal(geo.topLeft()) - QPoint(sub.sizeHint().width() - 2, 0)
    sub.popup(sub_pos)
    await _settle(0.6)
    crop = menu_crop((screen.width(), screen.height()), sub_pos.x(), menu.geometry().bottom())
    await shooter.grab_root(name, theme, crop)
    sub.hide()
    menu.hide()


async def _on_relay(s: Session) -> str:
    """Drop the client's UDP (a hotel network) and wait until the helper carries the
    tunnel over a relay; the relay's name."""
    await asyncio.to_thread(s.bed.block_udp)
    transport = await s.wait_transport("relay", within=30)
    if transport.relay is None:
        raise RuntimeError(f"screenshots: on a relay, but which one? {transport}")
    return transport.relay


async def _relay_windows(shooter: Shooter, s: Session, theme: str, relay: str) -> None:
    """The main window and the tray menu while the tunnel rides relay ``relay``."""
    from core.engine.state import SessionState

    async with _tray(s, shooter.tmp) as tray_app:

        def on_relay() -> bool:
            snap = tray_app.bridge.snapshot
            tunnel = snap.tunnel
            return (
                snap.state is SessionState.CONNECTED
                and tunnel is not None
                and tunnel.transport == "relay"
                and tunnel.relay == relay
            )

        # The engine reads the helper's status on its own schedule.
        await _until(f"the tray to show relay {relay}", on_relay, within=30)
        await _settle(0.8)
        window = tray_app.actions.show_window("main")
        await _settle()
        shooter.grab(window, "main-relay", theme)
        window.hide()
        await _tray_menu(shooter, tray_app, theme, "tray-menu-relay", submenu=False)


async def _signin(shooter: Shooter, s: Session) -> None:
    """The sign-in window of the real engine, signed out, in the device-code flow: the
    code comes from the controller's OIDC provider (last: the session ends after it)."""
    from PySide6.QtWidgets import QApplication

    from app.windows.signin import SignInWindow
    from core.engine.state import SessionState

    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    async with _tray(s, shooter.tmp) as tray_app:
        engine = tray_app.bridge.engine
        assert engine is not None
        await engine.sign_out()
        await _until("signed out", lambda: tray_app.bridge.snapshot.user is None)
        _apply_theme(qapp, THEMES[0])
        window = tray_app.actions.show_window("signin")
        assert isinstance(window, SignInWindow)
        await _settle()
        window.device.click()
        await _until("the device code", lambda: bool(window.code.text()))
        for theme in THEMES:
            _apply_theme(qapp, theme)  # the window follows the palette: same code shown
            await _settle(0.6)
            shooter.grab(window, "signin", theme)
        # Abandon the code flow before letting go, so no request is left hanging.
        window.cancel.click()
        await _until(
            "the sign-in to be cancelled",
            lambda: tray_app.bridge.snapshot.state is SessionState.SIGNED_OUT,
        )
        window.hide()


async def _breakglass(shooter: Shooter, theme: str) -> None:
    """Break-glass under always-on: the scripted engine (the bed manages no always-on)."""
    import dataclasses

    from app.tray_app import TrayApp
    from app.windows.breakglass import BreakGlassDialog
    from core.engine.api import EngineAPI
    from core.engine.state import SessionState
    from tests.fakes.scripted_engine import ScriptedEngine

    engine = ScriptedEngine.demo(SessionState.CONNECTED)
    # The fake's sign_in is typed a little narrower than EngineAPI's; it is one at run time.
    tray_app = TrayApp(
        cast(EngineAPI, engine), open_signin_when_signed_out=False, ask_autostart=False
    )
    engine.publish(dataclasses.replace(engine.snapshot, always_on=True))
    await _settle(0.2)
    tray_app.actions.disconnect_session()
    dialog = tray_app.actions.windows["breakglass"]
    assert isinstance(dialog, BreakGlassDialog)
    dialog.reason.setPlainText("The hotel's captive portal needs the VPN off to log in.")
    await _settle()
    shooter.grab(dialog, "breakglass", theme)
    dialog.reject()
    tray_app.shutdown()


async def _shoot(out: Path, display: str, only: str | None = None) -> list[Path]:
    from PySide6.QtWidgets import QApplication

    from controller.demo.bed import make_bed
    from controller.demo.harness import session

    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    tmp = Path(tempfile.mkdtemp(prefix="rt-shots-"))
    shooter = Shooter(out, display, tmp, [])
    wall = _wallpaper(qapp)
    try:
        with make_bed(relays=RELAYS) as bed:
            async with session(bed) as s:
                await s.wait_state("connected", "degraded", within=60)
                if only is None:
                    for theme in THEMES:
                        _apply_theme(qapp, theme)
                        await _onboarding(shooter, theme, s.controller.base_url)
                        await _engine_windows(shooter, s, theme)
                        await _breakglass(shooter, theme)
                relay = await _on_relay(s)
                for theme in THEMES:
                    _apply_theme(qapp, theme)
                    await _relay_windows(shooter, s, theme, relay)
                await asyncio.to_thread(bed.allow_udp)  # the hotel network left again
                if only is None:
                    await _signin(shooter, s)
    finally:
        wall.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return shooter.written


@contextlib.contextmanager
def _private_home() -> Iterator[Path]:
    """Empty XDG directories for the tray in this process: no controller configured (so
    onboarding is honest), and nothing of this user's settings read or written."""
    home = Path(tempfile.mkdtemp(prefix="rt-shots-home-"))
    saved = {k: v for k, v in os.environ.items() if k.startswith("XDG_")}
    for name in ("CONFIG", "DATA", "CACHE", "STATE"):
        os.environ[f"XDG_{name}_HOME"] = str(home / name.lower())
    try:
        yield home
    finally:
        for name in ("CONFIG", "DATA", "CACHE", "STATE"):
            os.environ.pop(f"XDG_{name}_HOME", None)
        os.environ.update(saved)
        shutil.rmtree(home, ignore_errors=True)


def _missing_tools() -> list[str]:
    need = ("Xvfb", "trayer", "import", "convert", "ip", "wg", "nft", "curl")
    return [tool for tool in need if shutil.which(tool) is None]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, start the display and take every shot; the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--only",
        choices=("relay",),
        help="take only these shots (relay: main-relay and tray-menu-relay, light and dark)",
    )
    args = parser.parse_args(argv)
    if missing := _missing_tools():
        print(f"screenshots: missing {', '.join(missing)} (see the docstring)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("screenshots: run as root (the test bed makes network namespaces)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    from tests.fakes.xdisplay import XDisplay

    with _private_home(), XDisplay(tray=True) as x:
        env: dict[str, Any] = x.env()
        # The display, xcb, and no D-Bus: Qt uses trayer's XEmbed tray (the harness gives
        # the client its own D-Bus and keyring session).
        os.environ.update(
            {k: env[k] for k in ("DISPLAY", "QT_QPA_PLATFORM", "DBUS_SESSION_BUS_ADDRESS")}
        )
        import qasync
        from PySide6.QtGui import QFont
        from PySide6.QtWidgets import QApplication

        qapp = QApplication(["rustronaut-screenshots"])
        qapp.setApplicationName("Rustronaut")
        qapp.setQuitOnLastWindowClosed(False)
        qapp.setStyle("Fusion")
        qapp.setFont(QFont("DejaVu Sans", 10))
        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        with loop:
            written = loop.run_until_complete(_shoot(args.out, x.display, args.only))
    for p in written:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
