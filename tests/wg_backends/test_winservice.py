"""The Windows service wrapper, on Linux: registration argv against the installer, the
service command line against the helper's parser, and the start/stop sequence with fake
pywin32 modules around a real helper server (fake backend, real Unix socket).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.wg_backends.fakes import FakeBackend, ScriptedRunner
from tests.wg_backends.keys import PRIV, PUB
from tests.wg_backends.winfakes import FakeWinError
from wg_backends.helper import state
from wg_backends.helper import winservice as ws
from wg_backends.helper.__main__ import run_helper
from wg_backends.helper.client import HelperClient
from wg_backends.helper.server import HelperConfig, HelperServer
from wg_backends.helper.state import StateFile
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NSI = ROOT / "installers" / "windows" / "rustronaut.nsi"
PS1 = ROOT / "resources" / "helper" / "register-helper-service.ps1"
INSTDIR, DATA = r"C:\Program Files\Rustronaut", r"C:\ProgramData\Rustronaut"

RUNNING, STOP_PENDING = 4, 3  # win32service values


# ----- registration --------------------------------------------------------------------


def test_sc_argv_are_exact() -> None:
    binpath = (
        '"C:\\Program Files\\Rustronaut\\rustronaut-helper.exe" --backend windows '
        '--state-dir "C:\\ProgramData\\Rustronaut\\helper"'
    )
    assert ws.service_command_line() == binpath
    assert ws.sc_create_argv() == [
        "sc.exe", "create", "RustronautHelper", "binPath=", binpath, "start=", "auto",
        "DisplayName=", "Rustronaut WireGuard helper", "obj=", "LocalSystem",
    ]  # fmt: skip
    assert ws.sc_config_argv(sc="C:\\Windows\\System32\\sc.exe") == [
        "C:\\Windows\\System32\\sc.exe", "config", "RustronautHelper", "binPath=", binpath,
        "start=", "auto", "DisplayName=", "Rustronaut WireGuard helper",
    ]  # fmt: skip
    assert ws.sc_failure_argv() == [
        "sc.exe", "failure", "RustronautHelper", "reset=", "60", "actions=",
        "restart/1000/restart/5000//",
    ]  # fmt: skip
    assert ws.sc_description_argv() == [
        "sc.exe", "description", "RustronautHelper",
        "Brings the Rustronaut WireGuard tunnel up and down for the tray app.",
    ]  # fmt: skip


def test_other_install_dirs_are_quoted_and_trailing_backslashes_dropped() -> None:
    assert ws.service_command_line("D:\\Apps\\Rust ronaut\\", "E:\\Data\\") == (
        '"D:\\Apps\\Rust ronaut\\rustronaut-helper.exe" --backend windows '
        '--state-dir "E:\\Data\\helper"'
    )


def _nsis_define(name: str) -> str:
    m = re.search(rf'^!define {name} "([^"]*)"', NSI.read_text(), re.M)
    assert m, name
    return m.group(1)


def test_the_installer_registers_the_same_service() -> None:
    text = NSI.read_text()
    assert _nsis_define("SERVICE") == ws.SERVICE_NAME
    assert _nsis_define("GROUP") == "Rustronaut Users"
    m = re.search(r"StrCpy \$4 '([^']*)'", text)
    assert m
    nsis = m.group(1).replace("$INSTDIR", INSTDIR).replace("${DATA}", DATA)
    # The installer passes this text to sc.exe as its command line; ours is argv that
    # CreateProcess quoting (list2cmdline) must turn into exactly the same text.
    assert subprocess.list2cmdline(ws.sc_config_argv(INSTDIR, DATA)[3:]) == nsis
    assert "create ${SERVICE} $4 obj= LocalSystem" in text
    assert "failure ${SERVICE} " + subprocess.list2cmdline(ws.sc_failure_argv()[3:]) in text
    assert f'description ${{SERVICE}} "{ws.DESCRIPTION}"' in text


def test_the_powershell_registration_uses_the_same_command_line() -> None:
    text = PS1.read_text()
    assert f'$name = "{ws.SERVICE_NAME}"' in text
    assert f'-DisplayName "{ws.DISPLAY_NAME}"' in text
    assert f'-Description "{ws.DESCRIPTION}"' in text
    assert "rustronaut-helper.exe" in text
    assert "--backend windows --state-dir" in text


def test_the_service_command_line_parses_with_windows_defaults() -> None:
    args = ws.parse_service_args(["--backend", "windows", "--state-dir", DATA + "\\helper"])
    assert args.backend == "windows"
    assert str(args.state_dir).endswith("helper")
    assert args.group == "Rustronaut Users"
    assert args.pipe == "\\\\.\\pipe\\rustronaut-helper"
    assert args.allow_sid == []


def test_the_service_refuses_a_planted_state_dir_before_writing_into_it(tmp_path: Path) -> None:
    """A state directory any user can write (planted before install) is refused by the
    install check before the service opens its log file there (exit 5, nothing written)."""
    planted = tmp_path / "ProgramData-Rustronaut"
    planted.mkdir()
    planted.chmod(0o777)
    main = ws._helper_main(["--backend", "windows", "--state-dir", str(planted)])
    assert asyncio.run(main(asyncio.Event())) == 5
    assert list(planted.iterdir()) == []


# ----- ServiceRunner -------------------------------------------------------------------


def test_runner_stop_before_run_returns_at_once() -> None:
    seen: list[bool] = []

    async def main(stop: asyncio.Event) -> int:
        seen.append(stop.is_set())
        await stop.wait()
        return 0

    r = ws.ServiceRunner(main)
    r.request_stop()
    assert r.run() == 0
    assert seen == [True]
    r.request_stop()  # after run: harmless


def test_runner_stop_from_another_thread() -> None:
    started = threading.Event()

    async def main(stop: asyncio.Event) -> int:
        started.set()
        await stop.wait()
        return 7

    r = ws.ServiceRunner(main)
    t = threading.Thread(target=lambda: (started.wait(5), r.request_stop()))
    t.start()
    assert r.run() == 7
    t.join(5)


# ----- the service class with fake pywin32 --------------------------------------------


class FakeFramework:
    """pywin32's ServiceFramework as far as the SCM contract goes (SvcRun as in pywin32)."""

    def __init__(self, args: Any) -> None:
        self.args = args
        self.statuses: list[tuple[int, int]] = []

    def ReportServiceStatus(self, status: int, waitHint: int = 5000) -> None:
        self.statuses.append((status, waitHint))

    def SvcRun(self) -> None:
        self.ReportServiceStatus(RUNNING)
        self.SvcDoRun()  # type: ignore[attr-defined]
        self.ReportServiceStatus(STOP_PENDING)


class FakeServiceManager:
    def __init__(self, dispatch_error: int | None = None) -> None:
        self.calls: list[Any] = []
        self.messages: list[str] = []
        self.dispatch_error = dispatch_error
        self.cls: Any = None
        self.instance: Any = None
        self.on_running: Any = None

    def Initialize(self) -> None:
        self.calls.append("Initialize")

    def PrepareToHostSingle(self, cls: Any) -> None:
        self.calls.append(("PrepareToHostSingle", cls._svc_name_))
        self.cls = cls

    def StartServiceCtrlDispatcher(self) -> None:
        self.calls.append("StartServiceCtrlDispatcher")
        if self.dispatch_error is not None:
            raise FakeWinError(self.dispatch_error, "StartServiceCtrlDispatcher", "")
        # The SCM starts the service: instance on the dispatcher, SvcRun on a service thread.
        self.instance = self.cls([ws.SERVICE_NAME])
        error: list[BaseException] = []

        def service_thread() -> None:
            try:
                self.instance.SvcRun()
            except BaseException as exc:  # the C framework reports SERVICE_STOPPED + error
                error.append(exc)

        t = threading.Thread(target=service_thread)
        t.start()
        if self.on_running is not None:
            self.on_running(self.instance)
        t.join(30)
        assert not t.is_alive(), "service did not stop"
        if error:
            raise error[0]

    def LogInfoMsg(self, msg: str) -> None:
        self.messages.append(msg)

    def LogErrorMsg(self, msg: str) -> None:
        self.messages.append("ERROR " + msg)


def _modules(sm: FakeServiceManager) -> dict[str, Any]:
    return {
        "win32serviceutil": type("win32serviceutil", (), {"ServiceFramework": FakeFramework}),
        "win32service": type("win32service", (), {"SERVICE_STOP_PENDING": STOP_PENDING}),
        "servicemanager": sm,
        "pywintypes": type("pywintypes", (), {"error": FakeWinError}),
    }


def test_not_started_by_the_scm_means_console_mode() -> None:
    sm = FakeServiceManager(dispatch_error=1063)
    assert not ws.dispatch_service([], _modules(sm), lambda: ws.ServiceRunner(_never))
    assert sm.calls == ["Initialize", ("PrepareToHostSingle", "RustronautHelper"),
                        "StartServiceCtrlDispatcher"]  # fmt: skip


def test_other_dispatcher_errors_are_raised() -> None:
    sm = FakeServiceManager(dispatch_error=5)
    with pytest.raises(FakeWinError):
        ws.dispatch_service([], _modules(sm), lambda: ws.ServiceRunner(_never))


async def _never(stop: asyncio.Event) -> int:
    await stop.wait()
    return 0


def test_bad_service_command_line_fails_before_dispatching() -> None:
    sm = FakeServiceManager()
    with pytest.raises(SystemExit):
        ws.dispatch_service(["--no-such-flag"], _modules(sm))
    assert sm.calls == []


def test_class_metadata() -> None:
    cls = ws.make_service_class(_modules(FakeServiceManager()), lambda: ws.ServiceRunner(_never))
    assert issubclass(cls, FakeFramework)
    assert (cls._svc_name_, cls._svc_display_name_, cls._svc_description_) == (  # type: ignore[attr-defined]
        "RustronautHelper",
        "Rustronaut WireGuard helper",
        ws.DESCRIPTION,
    )


def _spec() -> TunnelSpec:
    return TunnelSpec(
        interface="rtw0",
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        private_key=PRIV,
    )


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rtsvc") as d:  # AF_UNIX paths are short
        yield Path(d)


def _service_run(tmp: Path, *, always_on: bool) -> tuple[FakeServiceManager, FakeBackend]:
    managed = tmp / "managed"
    managed.mkdir()
    (managed / "managed.json").write_text(json.dumps({"always_on": always_on}))
    backend = FakeBackend()
    cfg = HelperConfig(socket_path=tmp / "h.sock", state_dir=tmp / "state", managed_dir=managed)
    up = threading.Event()

    async def helper(stop: asyncio.Event) -> int:
        server = HelperServer(cfg, backend, ScriptedRunner())
        return await run_helper(server, stop, keep_always_on=True)

    def scm(instance: Any) -> None:
        # The tray (a client on its own loop) brings a tunnel up and stays connected;
        # then the SCM sends STOP on its control thread.
        async def tray() -> None:
            for _ in range(500):
                if cfg.socket_path.exists():
                    break
                await asyncio.sleep(0.01)
            client = HelperClient(cfg.socket_path, timeout=5)
            await client.up(_spec())
            up.set()
            instance.SvcStop()
            for _ in range(500):  # the helper closes our connection as it stops
                try:
                    await client.hello()
                except Exception:
                    break
                await asyncio.sleep(0.01)
            await client.close()

        asyncio.run(tray())

    sm = FakeServiceManager()
    sm.on_running = scm
    assert ws.dispatch_service([], _modules(sm), lambda: ws.ServiceRunner(helper))
    assert up.is_set()
    return sm, backend


def test_start_then_stop_brings_the_tunnel_down(short_tmp: Path) -> None:
    sm, backend = _service_run(short_tmp, always_on=False)
    assert sm.instance.statuses == [(RUNNING, 5000), (STOP_PENDING, 30000), (STOP_PENDING, 5000)]
    assert backend.downs == ["rtw0"]
    assert list(StateFile(short_tmp / "state").load()) == []
    assert not (short_tmp / "h.sock").exists()
    assert sm.messages == ["RustronautHelper: starting", "RustronautHelper: stopped"]


def test_stop_keeps_an_always_on_tunnel(short_tmp: Path) -> None:
    sm, backend = _service_run(short_tmp, always_on=True)
    assert sm.instance.statuses[1] == (STOP_PENDING, 30000)
    assert backend.downs == []
    assert [r.interface for r in StateFile(short_tmp / "state").load()] == ["rtw0"]


def test_a_helper_that_cannot_start_fails_the_service() -> None:
    async def broken(stop: asyncio.Event) -> int:
        raise OSError("pipe name taken")

    sm = FakeServiceManager()
    with pytest.raises(OSError, match="pipe name taken"):
        ws.dispatch_service([], _modules(sm), lambda: ws.ServiceRunner(broken))
    assert sm.instance.statuses == [(RUNNING, 5000)]
    assert sm.messages[-1] == "ERROR RustronautHelper: failed: pipe name taken"


def test_a_nonzero_exit_fails_the_service() -> None:
    async def no_backend(stop: asyncio.Event) -> int:
        return 3

    sm = FakeServiceManager()
    with pytest.raises(RuntimeError, match="exited with 3"):
        ws.dispatch_service([], _modules(sm), lambda: ws.ServiceRunner(no_backend))


# ----- always-on from the Windows policy registry --------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, True), (0, False), (None, False), (2, False), ("1", False), (True, False),
     ("<registry type 1>", False)],
)  # fmt: skip
def test_always_on_from_the_registry(value: object, expected: bool) -> None:
    asked: list[tuple[str, str]] = []

    def query(key: str, name: str) -> object:
        asked.append((key, name))
        return value

    assert state.read_always_on_registry(query) is expected
    assert asked == [("SOFTWARE\\Policies\\Rustronaut\\Client", "always_on")]


def test_unreadable_registry_is_not_always_on() -> None:
    def query(key: str, name: str) -> object:
        raise PermissionError("access denied")

    assert state.read_always_on_registry(query) is False


def test_the_policy_key_matches_the_admx() -> None:
    admx = (ROOT / "installers" / "mdm" / "windows" / "rustronaut.admx").read_text()
    assert f'key="{state.POLICY_KEY}" valueName="always_on"' in admx


def test_windows_reads_the_registry_when_no_managed_dir_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RUSTRONAUT_MANAGED_DIR", raising=False)
    monkeypatch.setattr(state, "read_always_on_registry", lambda: True)
    monkeypatch.setattr(state.sys, "platform", "win32")
    assert state.read_always_on() is True
