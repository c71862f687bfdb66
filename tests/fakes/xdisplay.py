"""A private X display for tests, the benchmark and the screenshot script.

``XDisplay`` starts ``Xvfb`` on a free display number and, optionally, ``trayer`` (a real
XEmbed system tray); ``stop()`` ends exactly the processes it started. Test-only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

# X11 fixes these lock/socket paths; they are not temporary files we create.
_X_LOCK = "/tmp/.X{}-lock"
_X_SOCKET = "/tmp/.X11-unix/X{}"

#: trayer's tray manager: an unmapped 10x10 window off screen, made when it takes the tray.
_TRAY_MANAGER = re.compile(r'"trayer": \(\)\s+\d+x\d+\+-\d+\+-\d+')

TRAYER = [
    "trayer",
    "--SetDockType", "true",
    "--edge", "top",
    "--align", "right",
    "--widthtype", "request",
    "--height", "28",
    "--tint", "0x202020",
    "--transparent", "true",
    "--alpha", "0",
]  # fmt: skip


def available(tray: bool = False) -> bool:
    """True if Xvfb (and trayer with xwininfo, if asked) are installed."""
    tools = ("Xvfb", "trayer", "xwininfo") if tray else ("Xvfb",)
    return all(shutil.which(tool) is not None for tool in tools)


class XDisplay:
    """``with XDisplay(tray=True) as d:`` → ``d.display`` is e.g. ``":93"``."""

    def __init__(self, *, tray: bool = False, size: tuple[int, int] = (1280, 800)) -> None:
        self._tray = tray
        self._size = size
        self._procs: list[subprocess.Popen[bytes]] = []
        self.display = ""

    def __enter__(self) -> XDisplay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for a Qt process on this display, with the XEmbed tray and no D-Bus."""
        return {
            **os.environ,
            "DISPLAY": self.display,
            "QT_QPA_PLATFORM": "xcb",
            "DBUS_SESSION_BUS_ADDRESS": "disabled:",
        }

    def start(self) -> None:
        """Start Xvfb (and trayer); raises RuntimeError if the server does not come up."""
        for n in range(90, 160):
            if not Path(_X_LOCK.format(n)).exists() and not Path(_X_SOCKET.format(n)).exists():
                break
        else:
            raise RuntimeError("no free X display number between :90 and :159")
        self.display = f":{n}"
        w, h = self._size
        self._procs.append(
            subprocess.Popen(
                ["Xvfb", self.display, "-screen", "0", f"{w}x{h}x24", "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for _ in range(200):
            if Path(_X_SOCKET.format(n)).exists():
                break
            time.sleep(0.025)
        else:
            self.stop()
            raise RuntimeError(f"Xvfb did not start on {self.display}")
        if self._tray:
            self._procs.append(
                subprocess.Popen(
                    TRAYER,
                    env={**os.environ, "DISPLAY": self.display},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self._wait_for_tray()

    def _wait_for_tray(self) -> None:
        """Wait until trayer's panel and its (invisible) tray manager window exist: it owns
        the _NET_SYSTEM_TRAY selection from then on. A condition, not a guessed delay."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            tree = subprocess.run(
                ["xwininfo", "-root", "-children", "-display", self.display],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            if '("panel" "trayer")' in tree and _TRAY_MANAGER.search(tree):
                return
            time.sleep(0.02)  # polling the X server, not waiting a guessed time
        self.stop()
        raise RuntimeError(f"trayer did not take the system tray on {self.display}")

    def stop(self) -> None:
        """Stop what we started, newest first. Idempotent."""
        while self._procs:
            p = self._procs.pop()
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
