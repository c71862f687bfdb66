"""Tray benchmark: cold start to tray icon visible, and idle RSS.

Run: ``.venv/bin/python -m tests.bench.bench_tray [--runs 7]``

Each run is a fresh process on a private Xvfb with ``trayer`` (a real XEmbed tray), so
"visible" means the icon is docked (has a geometry in the tray), not merely ``show()``
called. Clock: from just before the parent spawns the process to the child's report.
Idle RSS is read 2 s after the icon appears, with the scripted engine in a connected
state. Peers in the same run: a bare PySide6 ``QSystemTrayIcon`` (the floor any Qt tray
pays) and ``python -c pass`` (the interpreter). Targets: ≤ 1.0 s and ≤ 120 MB.
Without Xvfb/trayer it falls back to offscreen (no tray: time to the main window).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tests.fakes.xdisplay import XDisplay, available

ROOT = Path(__file__).resolve().parents[2]

COMMON = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QTimer
    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")
    def idle_then_quit(quit):
        # Idle RSS: 2 s after everything (UI, engine) is loaded.
        QTimer.singleShot(2000, lambda: (print("rss", rss_mb(), flush=True), quit()))
    def watch(visible, mode):
        def poll():
            if visible():
                print("visible", time.time(), mode, flush=True)
                timer.stop()
        timer = QTimer()
        timer.timeout.connect(poll)
        timer.start(2)
        watch.timers = [*getattr(watch, "timers", []), timer]
    def docked(icon):
        return icon.isVisible() and icon.geometry().width() > 0
    """
)

APP = COMMON + textwrap.dedent(
    """
    import app.main as m
    seen_tray = []
    def demo():
        from tests.fakes.scripted_engine import ScriptedEngine
        from core.engine.state import SessionState
        return ScriptedEngine.demo(SessionState.CONNECTED)
    def on_tray(icon):
        seen_tray.append(icon)
        watch(lambda: docked(icon), "tray")
    def on_ready(a):
        if not seen_tray:  # no tray: time to the main window instead
            watch(lambda: a.actions.windows.get("main") is not None, "window")
        idle_then_quit(a.actions.quit)
    sys.exit(m.run(["--autostart"], engine_factory=demo, instance_name={name!r},
                   on_tray=on_tray, on_ready=on_ready))
    """
)

PEER = COMMON + textwrap.dedent(
    """
    from PySide6.QtGui import QIcon, QPixmap, QColor
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon
    app = QApplication([])
    pm = QPixmap(22, 22); pm.fill(QColor("#16a34a"))
    icon = QSystemTrayIcon(QIcon(pm)); icon.show()
    watch(lambda: docked(icon), "tray")
    idle_then_quit(app.quit)
    sys.exit(app.exec())
    """
)


def _one(code: str, env: dict[str, str]) -> tuple[float, float, str]:
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    visible = rss = float("nan")
    mode = "?"
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts[0] == "visible":
            visible, mode = float(parts[1]) - t0, parts[2]
        elif parts[0] == "rss":
            rss = float(parts[1])
    if visible != visible:  # NaN: the child failed
        raise RuntimeError(f"run failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return visible, rss, mode


def _python_floor(env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rt-bench-"))
    use_x = available(tray=True)
    x = XDisplay(tray=True) if use_x else None
    try:
        if x is not None:
            x.start()
            env = x.env()
        else:
            import os

            env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        env["XDG_CONFIG_HOME"] = str(tmp / "config")
        env["XDG_RUNTIME_DIR"] = str(tmp)
        app_code = APP.format(name=str(tmp / "bench.sock"))
        results: dict[str, list[tuple[float, float, str]]] = {
            "rustronaut-tray": [],
            "bare Qt tray": [],
        }
        _one(app_code, env)  # warm the page cache once; cold *process*, warm disk
        for _ in range(args.runs):
            results["rustronaut-tray"].append(_one(app_code, env))
            results["bare Qt tray"].append(_one(PEER, env))
        floor = _python_floor(env, args.runs)
    finally:
        if x is not None:
            x.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    mode = results["rustronaut-tray"][0][2]
    print(
        f"tray benchmark: {args.runs} runs, display={'Xvfb+trayer' if use_x else 'offscreen'}, "
        f"visible = {'icon docked in tray' if mode == 'tray' else 'main window shown'}"
    )
    print(f"{'':18} {'start→visible (median)':>24} {'idle RSS (median)':>18}")
    med = {}
    for name, rows in results.items():
        t = statistics.median(r[0] for r in rows)
        m = statistics.median(r[1] for r in rows)
        med[name] = (t, m)
        print(f"{name:18} {t * 1000:>21.0f} ms {m:>15.1f} MB")
    print(f"{'python -c pass':18} {floor * 1000:>21.0f} ms")
    (at, am), (pt, pm) = med["rustronaut-tray"], med["bare Qt tray"]
    print(f"ratio vs bare Qt tray: time ×{at / pt:.2f}, RSS ×{am / pm:.2f}")
    print(
        f"targets: start ≤ 1000 ms → {'met' if at <= 1.0 else 'MISSED'}; "
        f"RSS ≤ 120 MB → {'met' if am <= 120 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
