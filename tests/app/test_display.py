"""The real thing on a real X display: Xvfb with trayer as the XEmbed system tray.

Runs ``app.main.run`` in a child process (a fresh QApplication on the xcb platform) and
checks what an employee would see: the icon docks in the tray at once reading
"Starting…", then follows the engine; the menu pops up with the engine's state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakes.xdisplay import XDisplay, available

pytestmark = [pytest.mark.ui, pytest.mark.display]

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QSystemTrayIcon
    import app.main as m
    report = {{}}
    def demo():
        from tests.fakes.scripted_engine import ScriptedEngine
        from core.engine.state import SessionState
        return ScriptedEngine.demo(SessionState.DEGRADED)
    def on_tray(icon):
        report["tray_available"] = QSystemTrayIcon.isSystemTrayAvailable()
        report["early_tooltip"] = icon.toolTip()
        def poll():
            if icon.geometry().width() > 0:
                report["docked_size"] = [icon.geometry().width(), icon.geometry().height()]
                timer.stop()
        timer = QTimer()
        timer.timeout.connect(poll)
        timer.start(5)
        on_tray.timer = timer
    def on_ready(a):
        def check():
            if a.bridge.starting:
                return
            poll.stop()
            report["tooltip"] = a.tray.icon.toolTip()
            report["icon_kind"] = str(a.tray.icon_kind)
            a.tray.menu.popup(a.tray.icon.geometry().bottomLeft())
            shown = QTimer()  # report once the menu is on screen (at most 5 s)
            shown.timeout.connect(lambda: when_shown(a, shown))
            shown.start(10)
            check.shown = shown
        poll = QTimer()
        poll.timeout.connect(check)
        poll.start(10)
        on_ready.poll = poll
    def when_shown(a, timer):
        timer.count = getattr(timer, "count", 0) + 1
        if a.tray.menu.isVisible() or timer.count > 500:
            timer.stop()
            finish(a)
    def finish(a):
        report["menu_visible"] = a.tray.menu.isVisible()
        report["menu_first"] = a.tray.menu.actions()[0].text()
        a.tray.menu.hide()
        print(json.dumps(report), flush=True)
        a.actions.quit()
    sys.exit(m.run(["--autostart"], engine_factory=demo, instance_name={name!r},
                   on_tray=on_tray, on_ready=on_ready))
    """
)


@pytest.mark.skipif(not available(tray=True), reason="needs Xvfb and trayer")
def test_tray_docks_in_a_real_tray_and_follows_the_engine(tmp_path: Path) -> None:
    code = CHILD.format(name=str(tmp_path / "i.sock"))
    with XDisplay(tray=True) as x:
        env = {**x.env(), "XDG_CONFIG_HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["tray_available"] is True
    assert report["early_tooltip"] == "Rustronaut — Starting…"
    w, h = report["docked_size"]
    assert w > 0
    assert h > 0
    assert report["icon_kind"] == "degraded"
    assert report["tooltip"].startswith("Rustronaut — Connected — some access blocked")
    assert report["menu_visible"] is True
    assert report["menu_first"] == "Connected — some access blocked"


@pytest.mark.skipif(
    not available(tray=True) or shutil.which("import") is None,
    reason="needs Xvfb, trayer, imagemagick",
)
def test_screenshot_script_renders_every_window(tmp_path: Path) -> None:
    from PySide6.QtGui import QImage

    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {
        "tray-menu.png", "main.png", "posture.png", "activity.png", "settings.png",
        "signin.png", "about.png", "breakglass.png",
    } <= names  # fmt: skip
    for name in names:
        image = QImage(str(tmp_path / name))
        assert image.width() >= 400, name
        assert image.height() >= 200, name
