"""One whole session on the bed: controller, helper and client, started and watched.

``session(bed)`` is an async context manager used by the demo and the end-to-end tests:
it runs the reference controller (with its development OIDC provider) on the host's
loopback with the bed's gateway, seeds a small company policy, starts the real privileged
helper and the real client (engine + proxy, signed in by the robot browser) inside the
client namespace, and yields a ``Session`` to drive and observe them. Leaving the context
stops the client and helper; the bed's ``close`` removes the rest.

On a bed with the onboarding side (``make_bed(onboarding=True)``), ``onboard(bed, texts)``
runs the real onboarding window (offscreen) in the client namespace on the client's
empty profile, and ``session(bed, onboarding=EMAIL)`` starts from that profile: the
controller serves HTTPS at ``https://acme.example`` (through the bed's front), nothing
managed is written, the window finds the controller from the email and saves it, and
only then are the helper and the client started, the client reading the saved address.

On a bed with relays (``make_bed(relays=N)``, issue 21) the controller lists them
(``relays``, ``relay_token_file``), the relays start once it serves and stop with the
session, and the helper and client trust the bed's test CA (``SSL_CERT_FILE``).
``Session.helper_status`` / ``transport`` / ``wait_transport`` read the helper's own
status (which transport carries the tunnel and why); ``cli`` runs the ``rustronaut`` CLI
in the client namespace against the running engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from controller.config import ControllerConfig, GatewayConfig
from controller.demo.bed import (
    DNS_ADDR,
    DNS_SUFFIX,
    GW2_TUN,
    ONBOARDING_DOMAIN,
    POOL,
    RESOURCES,
    Bed,
    ns_pids,
    run,
)
from controller.testing import RunningController, run_controller
from core.engine.localapi.client import RemoteEngine
from core.engine.state import Snapshot
from core.policy.trust import PIN_FILE_NAME
from core.wire.policy import AllOf, FactCondition, PortRange, Resource, Rule
from wg_backends.helper.client import HelperClient
from wg_backends.status import TransportStatus, TunnelStatus

__all__ = ["ONBOARDING_EMAIL", "Session", "company_policy", "onboard", "session", "write_managed"]

ROOT = Path(__file__).resolve().parents[2]
#: Moves the client's managed directory; honoured by test builds only (the bed is one).
MANAGED_DIR_ENV = "RUSTRONAUT_MANAGED_DIR"
DEMO_USER = "alice"
#: What the employee types into the onboarding window on an onboarding bed.
ONBOARDING_EMAIL = f"{DEMO_USER}@{ONBOARDING_DOMAIN}"

#: The onboarding window, driven as an employee would (offscreen, in the client namespace):
#: ``<JSON list of what to type> <1: choose Use when found>``; prints one JSON list with,
#: per text, what the window showed and what the profile holds afterwards.
_ONBOARD = r"""
import asyncio, json, sys
import qasync
from PySide6.QtWidgets import QApplication
from app.main import needs_onboarding
from app.windows.onboarding import OnboardingWindow, Stage
from core.settings import load
texts, confirm = json.loads(sys.argv[1]), sys.argv[2] == "1"
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
async def main():
    rows = []
    for typed in texts:
        row = {"typed": typed, "empty_before": needs_onboarding()}
        window = OnboardingWindow()
        saved = []
        window.confirmed.connect(saved.append)
        window.show()
        window.field.setText(typed)
        window.find_button.click()
        async with asyncio.timeout(40):
            while window.stage is Stage.LOOKING:
                await asyncio.sleep(0.02)
        row.update(stage=window.stage.value, status=window.status.text(),
                   next_step=window.next_step.text() if window.next_step.isVisible() else "",
                   url=window.found_url.text() if window.found else None,
                   how=window.found_how.text() if window.found else None)
        if window.stage is Stage.FOUND and confirm:
            window.use_button.click()
        window.close()
        row.update(saved=saved[0] if saved else None, controller_url=load().controller_url)
        rows.append(row)
    print(json.dumps(rows), flush=True)
with qasync.QEventLoop(app) as loop:
    loop.run_until_complete(main())
"""


def _demo_password(rc: RunningController) -> str:
    return next(u.password for u in rc.users if u.username == DEMO_USER)


def company_policy() -> tuple[list[Resource], list[Rule]]:
    """The demo company: engineers reach the wiki on port 80 while their firewall is on;
    payroll is for the finance group only."""
    wiki_ip, _ = RESOURCES["wiki.corp.example"]
    payroll_ip, _ = RESOURCES["payroll.corp.example"]
    resources = [
        Resource(
            id="wiki",
            name="Corp Wiki",
            hosts=("wiki.corp.example",),
            cidrs=(f"{wiki_ip}/32",),
            ports=(80, PortRange(8000, 8099)),
        ),
        Resource(
            id="payroll",
            name="Payroll",
            hosts=("payroll.corp.example",),
            cidrs=(f"{payroll_ip}/32",),
            ports=(80,),
        ),
    ]
    rules = [
        Rule(
            id="engineering-wiki",
            effect="allow",
            resources=("wiki",),
            priority=10,
            conditions=AllOf(
                of=(
                    FactCondition(fact="user.groups", op="eq", value="engineering"),
                    FactCondition(
                        fact="posture.firewall.enabled",
                        op="eq",
                        value=True,
                        remediation="Turn on the firewall: sudo ufw enable",
                    ),
                )
            ),
            description="Engineers may read the wiki from a device with a firewall.",
        ),
        Rule(
            id="finance-payroll",
            effect="allow",
            resources=("payroll",),
            priority=10,
            conditions=FactCondition(fact="user.groups", op="eq", value="finance"),
            description="Only finance may open payroll.",
        ),
    ]
    return resources, rules


@dataclass
class Session:
    """A running client in the bed, with handles to observe and disturb it."""

    bed: Bed
    controller: RunningController
    client: subprocess.Popen[bytes]
    helper: subprocess.Popen[bytes]
    control_socket: Path
    proxy_port: int
    #: what the onboarding window did (``session(onboarding=...)``), else None
    onboarding: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    #: the helper's socket (for ``helper_status``)
    helper_socket: Path | None = None
    #: the client's profile directory (XDG dirs) and environment (for ``cli``)
    state_dir: Path | None = None
    client_environ: dict[str, str] = field(default_factory=dict)

    async def helper_status(self) -> TunnelStatus:
        """The client tunnel's status as the helper reports it (``up=False``: none)."""
        if self.helper_socket is None:
            raise RuntimeError("no helper socket")
        async with HelperClient(self.helper_socket, timeout=10) as helper:
            return await helper.status(self.bed.client_if)

    async def transport(self) -> TransportStatus | None:
        """How the helper carries the tunnel right now (None: no relays in the spec, or
        no tunnel)."""
        return (await self.helper_status()).transport

    async def wait_transport(
        self,
        kind: str,
        *,
        within: float = 30,
        relay: str | None = None,
        other_than: str | None = None,
    ) -> TransportStatus:
        """Poll the helper until the transport is ``kind`` ("udp" or "relay"), on relay
        ``relay`` or on any relay but ``other_than`` if given. Raises ``TimeoutError``
        naming the last transport seen."""
        deadline = time.monotonic() + within
        last: TransportStatus | None = None
        while True:
            with contextlib.suppress(Exception):  # the helper may be busy or restarting
                last = await self.transport()
            if (
                last is not None
                and last.kind == kind
                and (relay is None or last.relay == relay)
                and (other_than is None or last.relay != other_than)
            ):
                return last
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"transport did not become {kind!r} (relay={relay}, other than "
                    f"{other_than}) within {within} s; last: {last}"
                )
            await asyncio.sleep(0.1)

    def cli(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run ``rustronaut ARGS`` in the client namespace, on the client's profile (so
        ``status`` asks the running engine)."""
        code = "import sys; from core.cli.main import main; sys.exit(main())"
        return subprocess.run(
            ["ip", "netns", "exec", self.bed.client_ns, sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.client_environ or None,
            timeout=timeout,
            check=False,
        )

    async def _read(self) -> None:
        # An asyncio pipe reader, not a thread: the client's pipe stays open as long as the
        # keyring session's daemons live, and a thread blocked on it would hang the loop's
        # shutdown. This task is cancelled when the session ends.
        assert self.client.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self.client.stdout
        )
        try:
            while line := await reader.readline():
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))
        finally:
            transport.close()

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 30
    ) -> dict[str, Any]:
        """The first event (seen so far or arriving within ``within`` s) matching ``predicate``."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(event):
                    return event
            if self.client.poll() is not None:
                raise RuntimeError(f"the client exited with {self.client.returncode}")
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no matching event in {within} s; last: {self.events[-3:]}")

    async def snapshot(self) -> Snapshot:
        """The engine's snapshot through its local API."""
        engine = await RemoteEngine.attach(self.control_socket, client="demo")
        try:
            return engine.snapshot
        finally:
            await engine.stop()

    async def status(self) -> dict[str, Any]:
        """The engine's snapshot as plain JSON values."""
        snapshot: dict[str, Any] = msgspec.to_builtins(await self.snapshot())
        return snapshot

    async def wait_state(self, *states: str, within: float = 30) -> dict[str, Any]:
        """Poll the snapshot until its state is one of ``states``."""
        deadline = time.monotonic() + within
        snap: dict[str, Any] = {}
        while time.monotonic() < deadline:
            snap = await self.status()
            if snap["state"] in states:
                return snap
            await asyncio.sleep(0.1)
        raise TimeoutError(
            f"state stayed {snap.get('state')!r}, wanted {states}: {snap.get('error')}"
        )

    def curl(
        self,
        url: str,
        *,
        socks: bool = True,
        timeout: float = 5,
        direct: bool = False,
        exe: str = "curl",
        uid: int | None = None,
        gid: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Fetch ``url`` with curl inside the client namespace: through the proxy's SOCKS5
        (``socks``, host name resolved by the proxy) or HTTP listener (``socks=False``),
        or with no proxy settings at all (``direct``: what transparent mode must catch).
        ``exe`` runs another curl binary (a copy elsewhere); ``uid``/``gid`` run it as
        another local account (``setpriv``). The last output line is the HTTP status."""
        if direct:
            via: list[str] = ["--noproxy", "*"]
        elif socks:
            via = ["--socks5-hostname", f"127.0.0.1:{self.proxy_port}"]
        else:
            via = ["--proxy", f"http://127.0.0.1:{self.proxy_port}"]
        argv = [exe, "-sS", "--max-time", str(timeout), *via, *extra, "-w", "\n%{http_code}", url]
        return run(
            [*_as_user(uid, gid), *argv],
            ns=self.bed.client_ns,
            check=False,
            timeout=timeout + 10,
        )

    def udp_send(
        self, address: str, port: int, *, uid: int | None = None, gid: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Send one UDP datagram to ``address:port`` from the client namespace with no
        proxy involved (a raw path around the decider), as root or as ``uid``."""
        code = (
            "import socket,sys;s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] "
            "else socket.AF_INET,socket.SOCK_DGRAM);"
            "s.sendto(b'rustronaut-probe',(sys.argv[1],int(sys.argv[2])))"
        )
        return run(
            [*_as_user(uid, gid), "/usr/bin/python3", "-I", "-c", code, address, str(port)],
            ns=self.bed.client_ns,
            check=False,
        )

    def latest_handshake(self) -> int:
        """The client tunnel's latest-handshake time (Unix s; 0 = none yet), from ``wg``."""
        out = run(
            ["wg", "show", self.bed.client_if, "latest-handshakes"], ns=self.bed.client_ns
        ).stdout.split()
        return max((int(x) for x in out[1::2]), default=0)

    async def admin(self, method: str, path: str, body: object = None) -> httpx.Response:
        """Call the controller's admin API; raises ``RuntimeError`` on an error status."""
        async with httpx.AsyncClient(base_url=self.controller.base_url) as http:
            r = await http.request(
                method,
                path,
                json=body,
                headers={"Authorization": f"Bearer {self.controller.admin_token}"},
            )
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r

    def engine_pid(self) -> int:
        """The pid of the engine's process (inside the client namespace)."""
        pid = _engine_pid(self.bed)
        if pid is None:
            raise RuntimeError("the engine is not running")
        return pid

    def cut_controller(self) -> None:
        """Make the controller unreachable from the client (a network partition)."""
        self.bed.unbridge_controller()

    def tunnel_exists(self) -> bool:
        """Does the client's WireGuard interface exist in the client namespace?"""
        return (
            run(
                ["ip", "link", "show", self.bed.client_if], ns=self.bed.client_ns, check=False
            ).returncode
            == 0
        )


def _as_user(uid: int | None, gid: int | None) -> list[str]:
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={gid if gid is not None else uid}",
            "--init-groups"]  # fmt: skip


def _dns_overrides(split_dns: bool) -> dict[str, Any]:
    """The controller settings that announce the bed's company DNS server and suffix.
    The suffix setting is passed only once the controller has it (added for issue 15)."""
    if not split_dns:
        return {}
    fields = ControllerConfig.__struct_fields__
    out: dict[str, Any] = {"tunnel_dns": (DNS_ADDR,)}
    for name in ("tunnel_dns_suffixes", "dns_suffixes"):
        if name in fields:
            out[name] = (DNS_SUFFIX,)
            break
    return out


def _relay_overrides(bed: Bed) -> dict[str, Any]:
    """The controller settings that list the bed's relays (none without relays)."""
    if not bed.relays:
        return {}
    if "relays" not in ControllerConfig.__struct_fields__:
        raise RuntimeError("this controller has no 'relays' setting (issue 21)")
    return {"relays": bed.relay_configs(), "relay_token_file": str(bed.relay_token_file)}


def _trust_env(bed: Bed) -> dict[str, str]:
    """The bed's test CA as the OS trust store, when the bed has one (relays' TLS)."""
    return {"SSL_CERT_FILE": str(bed.ca_file)} if bed.relays else {}


def _profile_env(bed: Bed, state: Path, health: str | None = None) -> dict[str, str]:
    """The environment of a client process on an onboarding bed's empty profile: its own
    XDG directories, an empty managed directory (nothing managed), and the bed's test CA
    as the OS trust store."""
    managed = bed.workdir / "managed-empty"
    managed.mkdir(mode=0o755, exist_ok=True)
    return {
        **_env(state, health),
        MANAGED_DIR_ENV: str(managed),
        "SSL_CERT_FILE": str(bed.ca_file),
        "QT_QPA_PLATFORM": "offscreen",
    }


async def onboard(
    bed: Bed, texts: list[str], *, confirm: bool = True, state: Path | None = None
) -> list[dict[str, Any]]:
    """Type each of ``texts`` into the real onboarding window in the client namespace,
    in turn, on the client's profile (``state``: the one ``session`` uses by default),
    choosing "Use this controller" when one is found and ``confirm``. Returns, per text,
    the window's stage, status and next step, the address found and saved, and the
    profile's ``controller_url`` afterwards. Raises ``RuntimeError`` if the window's
    process fails."""
    state = state or bed.workdir / "client"
    (state / "run").mkdir(parents=True, mode=0o700, exist_ok=True)
    argv = [sys.executable, "-c", _ONBOARD, json.dumps(texts), "1" if confirm else "0"]
    proc = await asyncio.to_thread(
        subprocess.run,
        ["ip", "netns", "exec", bed.client_ns, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_profile_env(bed, state),
        timeout=60 + 45 * len(texts),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"the onboarding window's process exited {proc.returncode}: {proc.stderr[-2000:]}"
        )
    rows: list[dict[str, Any]] = json.loads(lines[-1])
    return rows


def _env(state: Path, health: str | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_", "RUSTRONAUT_"))
    }
    if health:
        env["RUSTRONAUT_TUNNEL_HEALTH"] = health
    for name in ("CONFIG", "DATA", "CACHE", "STATE"):
        env[f"XDG_{name}_HOME"] = str(state / name.lower())
    env["XDG_RUNTIME_DIR"] = str(state / "run")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_managed(directory: Path, anchor: str, settings: dict[str, Any] | None = None) -> Path:
    """The bed's managed settings, as an installer would write them: the controller's
    policy root as the client's only trust anchor (root-owned 0755 dir, 0644 file), plus
    any other managed ``settings`` (e.g. ``{"telemetry_level": "full"}``)."""
    directory.mkdir(mode=0o755, exist_ok=True)
    os.chmod(directory, 0o755)  # noqa: S103 (as /etc/rustronaut: readable, root-written)
    path = directory / "managed.json"
    path.write_text(json.dumps({**(settings or {}), "policy_trust_anchors": [anchor]}))
    os.chmod(path, 0o644)
    return directory


@asynccontextmanager
async def session(
    bed: Bed,
    *,
    bundle_ttl_s: int = 3600,
    proxy_port: int = 9080,
    firewall: bool = True,
    extra_resources: list[Resource] | None = None,
    extra_rules: list[Rule] | None = None,
    health: str | None = None,
    split_dns: bool = False,
    onboarding: str | None = None,
    managed_settings: dict[str, Any] | None = None,
    client_env: dict[str, str] | None = None,
    controller_options: dict[str, Any] | None = None,
    helper_env: dict[str, str] | None = None,
) -> AsyncIterator[Session]:
    """Run controller + helper + client on ``bed``; see the module docstring.

    ``onboarding`` (an onboarding bed only): start from an empty profile instead of a
    configured one; the onboarding window is given this text (``ONBOARDING_EMAIL``) and
    must find and save the controller (else ``RuntimeError``); its result is
    ``Session.onboarding``. No managed settings are written: the client pins the
    controller's policy root on first use.

    ``split_dns`` has the controller announce the bed's company DNS server (10.243.0.53)
    and its suffix ``corp.example`` in the bundle (for the client's own resolver).

    A bed with a second gateway has the controller announce both (failover order: 1, 2).
    ``health`` = "interval,grace,stale" seconds overrides the engine's tunnel health
    timings (``core.engine.wiring.health_timings``), e.g. to show a failover quickly.

    ``managed_settings`` are written with the trust anchor (not on an onboarding bed);
    ``client_env`` is added to the client's environment (e.g.
    ``RUSTRONAUT_TELEMETRY_INTERVAL``); ``controller_options`` are passed on to
    ``run_controller`` (``users``, or ``ControllerConfig`` fields such as ``console``).
    ``helper_env`` is added to the helper's environment (e.g.
    ``RUSTRONAUT_RELAY_TIMINGS="3,5,3"``). A bed with relays has the controller list them
    and starts them once it serves (see the module docstring).
    """
    if onboarding is not None and not bed.onboarding:
        raise RuntimeError("onboarding needs a bed with its public side: make_bed(onboarding=True)")
    bed.firewall(firewall)
    state = bed.workdir / "client"
    (state / "run").mkdir(parents=True, mode=0o700, exist_ok=True)
    gateway = GatewayConfig(
        public_key=bed.gw_public,
        endpoint=bed.gateway_endpoint,
        interface=bed.gateway_if,
        address="10.242.0.1/24",
    )
    more: tuple[GatewayConfig, ...] = ()
    if bed.second_gateway:
        more = (
            GatewayConfig(
                public_key=bed.gw2_public,
                endpoint=bed.gateway2_endpoint,
                interface=bed.gateway2_if,
                address=GW2_TUN,
            ),
        )
    async with run_controller(
        bed.workdir / "controller",
        gateway=gateway,
        gateway_runner=bed.gateway_runner,
        pool=POOL,
        tunnel_interface=bed.client_if,
        bundle_ttl_s=bundle_ttl_s,
        posture_max_age_s=60,
        gateways=more,
        public_url=f"https://{ONBOARDING_DOMAIN}" if onboarding is not None else None,
        tls=bed.site_cert if onboarding is not None else None,
        **_dns_overrides(split_dns),
        **_relay_overrides(bed),
        **(controller_options or {}),
    ) as rc:
        resources, rules = company_policy()
        for resource in resources + (extra_resources or []):
            rc.service.put_resource(resource)
        for rule in rules + (extra_rules or []):
            rc.service.put_rule(rule)
        port = int(rc.base_url.rsplit(":", 1)[1])
        await asyncio.to_thread(bed.bridge_controller, port)
        await asyncio.to_thread(bed.start_relays, port)
        onboarded: dict[str, Any] | None = None
        if onboarding is None:
            managed = write_managed(
                bed.workdir / "managed", rc.service.keys.root_public(), managed_settings
            )
            env = {**_env(state, health), MANAGED_DIR_ENV: str(managed)}
            controller_args = ["--controller", rc.base_url]
        else:
            await asyncio.to_thread(bed.front_controller, rc.tls_port)
            (onboarded,) = await onboard(bed, [onboarding], state=state)
            if onboarded["saved"] is None:
                raise RuntimeError(f"the onboarding did not save a controller: {onboarded}")
            env = _profile_env(bed, state, health)
            managed = Path(env[MANAGED_DIR_ENV])
            controller_args = []  # the client reads the address the onboarding saved
        helper_socket = bed.workdir / "helper" / "helper.sock"
        helper = bed.spawn(
            [
                sys.executable,
                "-I",
                "-m",
                "wg_backends.helper",
                "--socket",
                str(helper_socket),
                "--state-dir",
                str(bed.workdir / "helper" / "state"),
                "--config-dir",
                str(bed.workdir / "helper" / "conf"),
                "--managed-dir",
                str(managed),
                "--allow-uid",
                str(os.getuid()),
            ],
            ns=bed.client_ns,
            cwd=ROOT,
            env={**_env(state), **_trust_env(bed), **(helper_env or {})},
        )
        await asyncio.to_thread(_wait_path, helper_socket, helper)
        control_socket = state / "run" / "rustronaut" / "engine.sock"
        client = bed.spawn(
            [
                "bash",
                str(ROOT / "scripts" / "with-keyring.sh"),
                sys.executable,
                "-m",
                "controller.demo.client",
                *controller_args,
                "--helper-socket",
                str(helper_socket),
                "--control-socket",
                str(control_socket),
                "--user",
                DEMO_USER,
                "--password",
                _demo_password(rc),
                "--proxy-port",
                str(proxy_port),
            ],
            ns=bed.client_ns,
            cwd=ROOT,
            env={**env, **_trust_env(bed), **(client_env or {})},
            stdout=subprocess.PIPE,
        )
        s = Session(
            bed,
            rc,
            client,
            helper,
            control_socket,
            proxy_port,
            onboarding=onboarded,
            helper_socket=helper_socket,
            state_dir=state,
            client_environ={**env, **_trust_env(bed), **(client_env or {})},
        )
        s._reader = asyncio.ensure_future(s._read())
        try:
            await s.wait_event(lambda e: e.get("kind") == "ready", within=60)
            pin = state / "data" / "rustronaut" / PIN_FILE_NAME
            if pin.exists() and onboarding is None:
                raise RuntimeError(
                    f"the client pinned a policy root on first use ({pin}): "
                    "the managed policy_trust_anchors were not applied"
                )
            yield s
        finally:
            _terminate_engine(bed)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(client.wait, 15)
            if s._reader is not None:
                s._reader.cancel()
                with contextlib.suppress(BaseException):
                    await s._reader
            await asyncio.to_thread(bed.stop_relays)


def _engine_pid(bed: Bed) -> int | None:
    for pid in ns_pids(bed.client_ns):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # The wrappers (bash, dbus-run-session) carry the same words; the engine is the
        # Python process running the module.
        if "python" in Path(cmdline[0].decode()).name and b"controller.demo.client" in cmdline:
            return pid
    return None


def _terminate_engine(bed: Bed) -> None:
    # The client runs under ip netns exec → with-keyring.sh → dbus-run-session, none of
    # which forward SIGTERM: signal the engine's own process so it shuts down cleanly.
    pid = _engine_pid(bed)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _wait_path(path: Path, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the helper exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"the helper did not create {path}")
