"""The tray on the real ``core.engine.engine.Engine`` (its real state machine), with the
engine's own in-memory ports from tests/core/engine standing in for controller, helper
and proxy. What the employee sees must follow what the engine really does."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import pytest

from app.presenter import IconKind
from core.engine.engine import Engine, EngineConfig
from core.engine.state import SessionState

pytestmark = pytest.mark.ui

PORTS = Path(__file__).resolve().parents[1] / "core" / "engine" / "ports.py"


def _ports() -> ModuleType:
    name = "rt_engine_test_ports"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PORTS)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class Rig:
    def __init__(self, *, user: bool, **config: object) -> None:
        p = _ports()
        self.now = 1_000_000.0
        self.auth = p.Auth(p.ALICE if user else None)
        self.control = p.Control()
        self.posture = p.Posture()
        self.policy = p.Policy(lambda: self.now)
        self.tunnel = p.Tunnel()
        self.engine = Engine(
            auth=self.auth,
            device=p.Device(),
            control=self.control,
            posture=self.posture,
            policy=self.policy,
            tunnel=self.tunnel,
            proxy=p.Proxy(),
            config=EngineConfig(
                health_interval_s=0.05, backoff_initial_s=0.02, backoff_max_s=0.1, **config
            ),  # type: ignore[arg-type]
            clock=lambda: self.now,
        )


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Rig]]:
    """Factory for rigs; every engine is stopped at teardown, even when a test fails."""
    made: list[Rig] = []

    def factory(**kwargs: object) -> Rig:
        made.append(Rig(**kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield factory
    for r in made:
        await r.engine.stop()


async def until(
    pred: Callable[[], object], timeout: float = 5.0, msg: Callable[[], object] = lambda: ""
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout} s: {msg()}") from None


async def test_start_connects_and_the_tray_follows(make_app, rig) -> None:
    rig = rig(user=True, organization="Example Corp")
    app = make_app(rig.engine)
    app.start(tray_available=True)
    # Payroll is outside this user's groups: blocked, but that is policy, not a fault.
    await until(lambda: rig.engine.snapshot.state is SessionState.CONNECTED)
    assert app.tray.icon_kind is IconKind.CONNECTED
    tip = app.tray.icon.toolTip().splitlines()
    assert tip[1] == "Signed in as alice@example.com (Example Corp)"
    assert tip[2] == "1 of 2 resources reachable"
    entries = app.tray.entries()
    assert ("▸ ✕ payroll — not in the finance group", True) in entries
    assert ("▸ ✓ wiki — reachable", True) in entries

    # Posture drifts: the firewall goes off, the engine withdraws the wiki at once. Now
    # nothing is reachable, the wiki for something this device can fix: "Connected —
    # access blocked" with the fix, in the menu and the main window (not "Connecting…").
    rig.posture.drift(**{"firewall.enabled": False})
    await until(lambda: ("▸ ✕ wiki — firewall is off", True) in app.tray.entries())
    await until(
        lambda: app.tray.icon_kind is IconKind.BLOCKED,
        msg=lambda: (rig.engine.snapshot.state, app.tray.icon_kind),
    )
    assert rig.engine.snapshot.state is SessionState.BLOCKED
    entries = app.tray.entries()
    assert entries[0] == ("Connected — access blocked", False)
    assert ("To fix: sudo ufw enable", True) in entries
    assert any(n.key == "access-blocked" for n in app.tray.notifier.shown)
    main = app.actions.show_window("main")
    assert main.fix_box.isVisible()
    assert "To fix: sudo ufw enable" in main.fix_text.text()
    assert "firewall is off — sudo ufw enable" in [
        main.resources.topLevelItem(i).text(3) for i in range(main.resources.topLevelItemCount())
    ]
    app.tray.action("Disconnect").trigger()
    await until(lambda: rig.engine.snapshot.state is SessionState.DISCONNECTED)
    assert app.tray.icon_kind is IconKind.DISCONNECTED
    assert not rig.tunnel.is_up


async def test_always_on_break_glass_reaches_the_controller(make_app, rig) -> None:
    rig = rig(user=True, always_on=True, organization="Example Corp")
    app = make_app(rig.engine)
    app.start(tray_available=True)
    await until(lambda: rig.engine.snapshot.state is SessionState.CONNECTED)
    app.tray.action("Disconnect (break-glass)…").trigger()
    dialog = app.actions.windows["breakglass"]
    dialog.reason.setPlainText("Captive portal at the airport")
    dialog.ok.click()
    await until(lambda: rig.control.break_glass == ["Captive portal at the airport"])
    await until(lambda: rig.engine.snapshot.state is SessionState.DISCONNECTED)


async def test_device_code_sign_in_shows_the_engines_code(make_app, rig) -> None:
    rig = rig(user=False, auto_connect=False)
    app = make_app(rig.engine)
    app.start(tray_available=True)
    await until(lambda: rig.engine.snapshot.state is SessionState.SIGNED_OUT)
    assert app.tray.icon_kind is IconKind.SIGNED_OUT
    window = app.actions.show_window("signin")
    codes: list[str] = []
    app.bridge.engine_event.connect(lambda e: codes.append(e.details.get("user_code", "")))
    window.device.click()
    await until(lambda: "ABCD-EFGH" in codes)
    await until(lambda: rig.engine.snapshot.user is not None)
    assert window.title.text() == "You're signed in"


async def test_always_on_sign_out_asks_and_reports_the_reason(make_app, rig) -> None:
    rig = rig(user=True, always_on=True, organization="Example Corp")
    app = make_app(rig.engine)
    app.start(tray_available=True)
    await until(lambda: rig.engine.snapshot.state is SessionState.CONNECTED)
    app.tray.action("Sign out").trigger()
    dialog = app.actions.windows["breakglass"]
    assert rig.engine.snapshot.user is not None  # nothing happens before the reason
    dialog.reason.setPlainText("Laptop goes to IT for repair")
    dialog.ok.click()
    await until(lambda: rig.control.break_glass == ["Laptop goes to IT for repair"])
    await until(lambda: rig.engine.snapshot.state is SessionState.SIGNED_OUT)
    assert app.tray.icon_kind is IconKind.SIGNED_OUT
    assert not rig.tunnel.is_up


async def test_quit_hosting_the_engine_under_always_on_reports_the_reason(make_app, rig) -> None:
    """Where the tray hosts the engine, Quit ends the session: under always-on it asks
    for a reason first, and the engine reports it before the tunnel goes down."""
    rig = rig(user=True, always_on=True, organization="Example Corp")
    app = make_app(rig.engine)
    app.start(tray_available=True)
    await until(lambda: rig.engine.snapshot.state is SessionState.CONNECTED)
    quits: list[bool] = []
    app.actions.quit_requested.connect(lambda: quits.append(True))
    app.tray.action("Quit").trigger()
    dialog = app.actions.windows["breakglass"]
    assert rig.tunnel.is_up  # nothing happens before the reason
    dialog.reason.setPlainText("Done for today, leaving")
    dialog.ok.click()
    await until(lambda: quits)
    assert rig.control.break_glass == ["Done for today, leaving"]
    assert not rig.tunnel.is_up


@pytest.mark.skipif(sys.platform == "win32", reason="Unix socket transport")
async def test_quitting_the_attached_tray_leaves_the_real_engine_connected(
    make_app, rig, tmp_path: Path
) -> None:
    """The real engine served on the local API as the agent serves it; the tray attached
    to it quits (always-on, yet no reason asked): tunnel and session stay up."""
    from app.link import AttachedLink
    from core.engine.localapi.client import RemoteEngine
    from core.engine.localapi.server import LocalApiServer

    rig = rig(user=True, always_on=True, organization="Example Corp")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    server = LocalApiServer(rig.engine, run / "engine.sock", hosted_by="agent")
    await server.start()
    try:
        await rig.engine.start()
        await until(lambda: rig.engine.snapshot.state is SessionState.CONNECTED)
        remote = await RemoteEngine.attach(run / "engine.sock", client="tray")
        app = make_app(AttachedLink(remote))
        app.start(tray_available=True)
        assert app.tray.icon_kind is IconKind.CONNECTED
        quits: list[bool] = []
        app.actions.quit_requested.connect(lambda: quits.append(True))
        app.tray.action("Quit").trigger()
        await until(lambda: quits)
        await until(lambda: server.clients == 0)
        assert "breakglass" not in app.actions.windows
        assert rig.engine.snapshot.state is SessionState.CONNECTED
        assert rig.tunnel.is_up
        assert rig.control.break_glass == []
    finally:
        await server.stop()
