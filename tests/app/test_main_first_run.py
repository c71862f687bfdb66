"""``app.main.run``'s remaining first-run pieces (issue 18), each in a real child process
(offscreen, an empty profile in a temporary XDG tree), as ``test_onboarding_run`` does:

- the tray speaks the system's language (``RUSTRONAUT_LANG`` overrides);
- a join link opened while the tray runs reaches it: the onboarding shows the controller,
  or words say why the link is not used; hostile links are refused with words;
- a tray started at login opens the sign-in once the employee finished onboarding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from app.tray_app import NO_TRAY_NOTICE

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
LINK = "rustronaut://join?controller=https://zt.example.com"

CHILD = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import core.i18n as ci
    import app.main as m
    from app.windows.onboarding import OnboardingWindow, Stage
    from tests.fakes.scripted_engine import ScriptedEngine

    cfg = json.loads(sys.argv[1])
    if cfg.get("i18n_dir"):  # the tiny catalogue of the test
        ci.i18n_dir = lambda: Path(cfg["i18n_dir"])
    if cfg.get("controller"):
        from core.settings import set_user
        set_user("controller_url", cfg["controller"])
    mode, name = cfg["mode"], cfg["name"]
    holder = []

    def say(*parts):
        print(*parts, flush=True)

    def later(fn, ms=20):
        QTimer.singleShot(ms, fn)

    def second(link, then):
        # A later launch, as the desktop's URL handler makes it.
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, app.main as m; sys.exit(m.run([sys.argv[1]], instance_name=sys.argv[2]))",
             link, name],
            stdout=subprocess.PIPE, text=True)
        def wait():
            if proc.poll() is None:
                return later(wait)
            say("second", proc.returncode, proc.stdout.read().strip())
            then()
        later(wait)

    def onboarding():
        return [w for w in QApplication.topLevelWidgets()
                if isinstance(w, OnboardingWindow) and w.isVisible()]

    def on_ready(a):
        holder.append(a)
        if mode == "language":
            say("language", ci.installed_language())
            say("notice", a.actions.windows["main"].notice.text())
            return a.actions.quit()
        if mode == "onboard":
            return later(onboard)
        if mode == "own-link":  # this launch itself carried the link
            return later(own)
        later(lambda: tell(list(cfg["links"])))

    def own():
        box = holder[0].actions.windows.get("told")
        if box is None or not box.isVisible():
            return later(own)
        say("told", box.windowTitle(), "|", box.text().replace(chr(10), " "))
        holder[0].actions.quit()

    def onboard():
        if not onboarding():
            return later(onboard)
        second(cfg["links"][0], found)

    def found():
        w = onboarding()[0]
        if w.stage is not Stage.FOUND:
            return later(found)
        say("found", w.found_url.text())
        w.use_button.click()
        later(signed_in)

    def signed_in():
        a = holder[0]
        if a.engine_task is None or not a.engine_task.done():
            return later(signed_in)
        window = a.actions.windows.get("signin")
        say("signin shown", bool(window and window.isVisible()))
        a.actions.quit()

    def tell(links):
        if not links:
            return holder[0].actions.quit()
        def told():
            box = holder[0].actions.windows.get("told")
            if box is None or not box.isVisible():
                return later(told)
            say("told", box.windowTitle(), "|", box.text().replace(chr(10), " "))
            box.close()
            holder[0].actions.windows.pop("told")
            tell(links[1:])
        second(links[0], told)

    rc = m.run(cfg.get("argv", []), engine_factory=ScriptedEngine, instance_name=name,
               on_ready=on_ready, onboarding=lambda: mode == "onboard")
    say("exit", rc)
    sys.exit(rc)
    """
)


def _run(tmp_path: Path, lang: str = "en", **cfg: object) -> list[str]:
    cfg["name"] = str(tmp_path / "i.sock")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "RUSTRONAUT_MANAGED_DIR": str(tmp_path / "managed"),
        "RUSTRONAUT_LANG": lang,
        "PYTHONPATH": str(ROOT),  # the child imports tests.fakes
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[-1] == "exit 0"
    return lines


# ------------------------------------------------------------------------ language
def test_the_tray_speaks_the_language_asked_for(tmp_path: Path) -> None:
    """``RUSTRONAUT_LANG=de`` and a German catalogue: the tray's words are German."""
    folder = tmp_path / "i18n"
    folder.mkdir()
    (folder / "rustronaut_de.ts").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n'
        '<TS version="2.1" language="de_DE"><context><name>app.tray_app</name>'
        f"<message><source>{escape(NO_TRAY_NOTICE)}</source>"
        "<translation>Keine Taskleiste gefunden.</translation></message>"
        "</context></TS>\n",
        encoding="utf-8",
    )
    lines = _run(tmp_path, "de", mode="language", i18n_dir=str(folder), argv=["--autostart"])
    assert "language de" in lines
    assert "notice Keine Taskleiste gefunden." in lines


def test_english_needs_no_catalogue(tmp_path: Path) -> None:
    lines = _run(tmp_path, "en", mode="language", i18n_dir=str(tmp_path), argv=["--autostart"])
    assert "language en" in lines
    assert f"notice {NO_TRAY_NOTICE}" in lines


# ------------------------------------------------------------- join links, onboarding
def test_a_join_link_opened_during_onboarding_fills_it_in_then_sign_in_opens(
    tmp_path: Path,
) -> None:
    """Started at login (``--autostart``: no window of its own), onboarding on show; the
    desktop opens a join link with a later launch. The running tray's onboarding shows
    the controller for confirmation, the later launch exits 0, and once the employee
    confirms, the sign-in opens even though the tray was started at login."""
    lines = _run(tmp_path, mode="onboard", links=[LINK], argv=["--autostart"])
    assert "second 0 Rustronaut is already running; it opened the join link for you." in lines
    assert "found https://zt.example.com" in lines
    assert "signin shown True" in lines
    saved = json.loads((tmp_path / "config" / "rustronaut" / "settings.json").read_text())
    assert saved["controller_url"] == "https://zt.example.com"


HOSTILE = [
    "rustronaut://join?controller=http://zt.example.com",  # not https
    "rustronaut://join?controller=https://zt.example.com\x1b[31m\nFORGED",  # control chars
    "rustronaut://join?controller=https://" + "a" * 5000 + ".example.com",  # over-long
    "rustronaut://join?controller=https://zt.example.com&token=secret",  # more than a link
]


def test_a_join_link_when_already_set_up_is_told_and_hostile_ones_refused(
    tmp_path: Path,
) -> None:
    lines = _run(
        tmp_path,
        mode="configured",
        controller="https://old.example.com",
        links=[LINK, "rustronaut://join?controller=https://old.example.com", *HOSTILE],
        argv=["--autostart"],
    )
    told = [ln for ln in lines if ln.startswith("told ")]
    seconds = [ln for ln in lines if ln.startswith("second ")]
    assert len(told) == len(seconds) == 2 + len(HOSTILE), lines
    # A valid link: not used, and the notification says which controller is in use.
    assert seconds[0] == (
        "second 0 Rustronaut is already running and did not use the join link; it shows why."
    )
    assert told[0] == (
        "told Rustronaut is already set up | Rustronaut already uses the controller "
        "https://old.example.com, so the join link for https://zt.example.com was not "
        "used. To change organisation, ask IT."
    )
    assert told[1] == (
        "told Rustronaut is already set up | Rustronaut already uses the controller this "
        "link names: https://old.example.com"
    )
    # Hostile links: refused, in words, and the later launch says so (exit 1).
    for said, box in zip(seconds[2:], told[2:], strict=True):
        assert said.startswith("second 1 Rustronaut is already running and refused"), said
        assert box.startswith("told Join link not used | "), box
        assert "\x1b" not in box
    assert "only uses https://" in told[2]
    assert "This join link is not valid" in told[3]
    assert "This join link is not valid" in told[4]
    saved = json.loads((tmp_path / "config" / "rustronaut" / "settings.json").read_text())
    assert saved["controller_url"] == "https://old.example.com"  # nothing was changed


def test_a_join_link_at_start_when_already_set_up_says_so(tmp_path: Path) -> None:
    """The desktop starts the tray with a join link, but a controller is already set: the
    link is not used, and the employee is told (before, only the log said so)."""
    lines = _run(
        tmp_path,
        mode="own-link",
        controller="https://old.example.com",
        argv=["--autostart", LINK],
    )
    assert (
        "told Rustronaut is already set up | Rustronaut already uses the controller "
        "https://old.example.com, so the join link for https://zt.example.com was not "
        "used. To change organisation, ask IT." in lines
    )


def test_a_join_link_under_managed_settings_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """IT manages the settings (the controller among them): the link changes nothing."""
    from types import SimpleNamespace

    import app.main as app_main
    import core.settings
    from app.single_instance import JoinAnswer

    managed = SimpleNamespace(
        controller_url="https://it.example.com",
        managed=SimpleNamespace(values={"controller_url": "https://it.example.com"}),
        managed_rejected=None,
    )
    monkeypatch.setattr(core.settings, "load", lambda: managed)
    answer, title, words = app_main._already_set_up(LINK)
    assert answer is JoinAnswer.TOLD
    assert title == "Rustronaut is already set up"
    assert words == (
        "Your organisation manages Rustronaut's settings, so the join link was not used."
    )
