"""The tray (offscreen, real widgets) on the whole product in network namespaces: the
engine in its own process with the controller, the helper, WireGuard and the proxy
(controller/demo/bed.py), the tray a client of its local API like ``rustronaut``.

What the issue's "done when" asks of the tray: it shows the session ``status --json``
shows; the firewall going off shows "Connected — access blocked" with the fix; quitting
the tray leaves tunnel and proxy up; a killed helper is an error with a next step and a
notification within 5 s; ``rustronaut logout`` shows as signed out within 1 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from PySide6.QtWidgets import QTreeWidget

import app.main as app_main
from app.presenter import IconKind
from controller.demo.bed import Bed, make_bed, run
from controller.demo.harness import Session, session
from core.engine.state import SessionState, Snapshot

pytestmark = [
    pytest.mark.ui,
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.netns,
    pytest.mark.timeout(240),
]

ROOT = Path(__file__).resolve().parents[2]
WIKI = "http://wiki.corp.example/"


@pytest.fixture
def bed() -> Iterator[Bed]:
    with make_bed() as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


async def until(pred: Callable[[], object], timeout: float, what: str = "") -> float:
    """Let the loop run until ``pred()``; returns how long it took (fails after ``timeout``)."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None
    return time.monotonic() - start


async def cli(s: Session, *args: str) -> tuple[int, str, str]:
    """``rustronaut <args>`` against the session's engine (its local API socket)."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(s.control_socket.parent.parent)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core.cli.main", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _ok(s: Session) -> bool:
    return s.curl(WIKI, timeout=3).stdout.endswith("200")


def _column(tree: QTreeWidget, col: int) -> list[str]:
    items = (tree.topLevelItem(i) for i in range(tree.topLevelItemCount()))
    return [it.text(col) for it in items if it is not None]


async def test_the_tray_on_the_real_product(bed: Bed, make_app) -> None:
    async def no_build() -> object:
        raise AssertionError("the tray must attach to the running engine, not build one")

    async with session(bed) as s:
        await s.wait_state("connected", "degraded")
        link = await app_main.make_engine(path=s.control_socket, build=no_build)
        app = make_app(link)
        app.start(tray_available=True)
        tray = app.tray

        # The session `rustronaut status --json` shows.
        rc, out, err = await cli(s, "status", "--json")
        assert rc == 0, err
        shown = msgspec.json.decode(out, type=Snapshot)
        here = app.bridge.snapshot
        assert (shown.state, shown.user, shown.device_id) == (here.state, here.user, here.device_id)
        assert tray.icon_kind in {IconKind.CONNECTED, IconKind.DEGRADED}
        assert any(t.endswith("Corp Wiki — reachable") for t, _ in tray.entries())

        # Firewall off: every resource needs it → "Connected — access blocked" with the fix.
        bed.firewall(False)
        await until(lambda: tray.icon_kind is IconKind.BLOCKED, 5, "blocked")
        fixes = [t for t, _ in tray.entries() if t.startswith("To fix:")]
        assert fixes
        assert any("firewall" in t.lower() for t in fixes), fixes
        main = app.actions.show_window("main")
        assert main.fix_box.isVisibleTo(main)
        assert "firewall" in main.fix_text.text().lower()
        assert "Reachable" not in _column(main.resources, 2)
        bed.firewall(True)
        await until(
            lambda: tray.icon_kind in {IconKind.CONNECTED, IconKind.DEGRADED}, 10, "restored"
        )

        # Quitting the tray leaves tunnel and proxy up; status still says connected.
        quits: list[bool] = []
        app.actions.quit_requested.connect(lambda: quits.append(True))
        tray.action("Quit").trigger()
        await until(lambda: quits, 5, "quit")
        app.shutdown()
        assert s.tunnel_exists()
        assert await asyncio.to_thread(_ok, s)
        rc, out, err = await cli(s, "status", "--json")
        assert rc == 0, err
        assert msgspec.json.decode(out, type=Snapshot).state in {
            SessionState.CONNECTED,
            SessionState.DEGRADED,
        }

        # A tray started again attaches to the same session.
        again = make_app(await app_main.make_engine(path=s.control_socket, build=no_build))
        again.start(tray_available=True)
        tray = again.tray
        assert tray.icon_kind in {IconKind.CONNECTED, IconKind.DEGRADED}

        # The helper is killed: an error with a next step, and a notification, within 5 s.
        s.helper.kill()
        took = await until(lambda: tray.icon_kind is IconKind.ERROR, 5, "helper lost")
        err_info = again.bridge.snapshot.error
        assert err_info is not None
        assert err_info.next_step
        assert tray.entries()[1][0] == err_info.next_step
        assert [n.title for n in tray.notifier.shown if n.severity == "critical"] == [
            err_info.title
        ]
        print(f"helper loss shown {took:.2f} s after kill -9")

        # `rustronaut logout` → the tray shows signed out within 1 s.
        rc, out, err = await cli(s, "logout")
        assert rc == 0, err
        took = await until(lambda: tray.icon_kind is IconKind.SIGNED_OUT, 1.0, "signed out")
        assert ("Sign in…", True) in tray.entries()
        print(f"logout shown in the tray {took:.2f} s after the CLI returned")
