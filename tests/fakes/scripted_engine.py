"""A small in-test engine implementing ``EngineAPI`` with scripted snapshots.

Used by the UI tests, the tray benchmark and the screenshot script until the real
``core.engine.engine.Engine`` is wired to the test controller. Every call is recorded in
``calls``; a call can be held on ``gate`` (an ``asyncio.Event``) to prove the UI keeps
running while the engine works. Never shipped: it lives under tests/.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from core.engine.api import MIN_REASON_LENGTH, Setting
from core.engine.errors import AlwaysOnError
from core.engine.state import (
    AccessView,
    ErrorInfo,
    Event,
    EventKind,
    PostureItem,
    ResourceView,
    SessionState,
    Snapshot,
    TunnelView,
)
from core.policy.api import Decision, Effect
from core.settings.errors import SettingLockedError, SettingValueError

RESOURCES = (
    ResourceView("Git server", "git.corp.example:443", True),
    ResourceView("Wiki", "wiki.corp.example:443", True),
    ResourceView(
        "Payroll",
        "payroll.corp.example:443",
        False,
        "Disk encryption is off",
        "Turn on disk encryption in System Settings",
    ),
    ResourceView("Build farm", "10.20.0.0/16", True),
)

POSTURE = (
    PostureItem("os_version", "Operating system", "Debian 12.8", "pass"),
    PostureItem("firewall", "Firewall", "active (nftables)", "pass"),
    PostureItem(
        "disk_encryption",
        "Disk encryption",
        "off",
        "fail",
        "Turn on disk encryption (LUKS) and restart.",
    ),
    PostureItem("screen_lock", "Screen lock", "after 5 min", "pass"),
    PostureItem("edr", "Endpoint protection", "not reported", "unknown", "Start the EDR agent."),
)


def demo_snapshot(state: SessionState = SessionState.DEGRADED, **changes: object) -> Snapshot:
    """A realistic signed-in snapshot."""
    base = Snapshot(
        state=state,
        user="ada@corp.example",
        device_id="dev-7f3a9c2e",
        organization="Example Corp",
        resources=RESOURCES,
        posture=POSTURE,
        tunnel=TunnelView("rt0", "gw.corp.example:51820", 12.0, 48_234_112, 3_502_331),
        risk=35,
        risk_signals=("new app → resource pair", "posture: disk encryption off"),
        always_on=False,
        session_expires_at=time.time() + 8 * 3600,
        policy_version=42,
        policy_expires_at=time.time() + 3600,
        proxy_address="127.0.0.1:1080",
        access=AccessView(
            mode="transparent",
            fenced=True,
            proxy_address="127.0.0.1:1080",
            transparent_address="127.0.0.1:9082",
            dns_suffixes=("corp.example",),
        ),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def demo_settings(*, managed: bool = True) -> list[Setting]:
    src = "managed" if managed else "user"
    return [
        Setting("controller_url", "https://access.corp.example", src, managed, "Controller"),
        Setting("oidc_issuer", "https://login.corp.example", src, managed, "Sign-in provider"),
        Setting("always_on", True, src, managed, "Keep the connection on at all times"),
        Setting("auto_connect", True, "user", False, "Connect after sign-in"),
        Setting("proxy_port", 1080, "default", False, "Local proxy port"),
        Setting("log_level", "info", "default", False, "How much to log"),
        Setting("support_url", "https://help.corp.example", src, managed, "Where to get help"),
        Setting("tls_pin_sha256", ("pin1", "pin2"), src, managed, "Controller TLS pins"),
        Setting("allow_break_glass", True, src, managed, "Allow break-glass disconnects"),
        Setting("autostart", True, "default", False, "Start the tray app at login"),
        Setting("notifications", True, "default", False, "Show desktop notifications"),
    ]


class ScriptedEngine:
    """``EngineAPI`` with scripted behaviour; see the module docstring."""

    def __init__(
        self,
        snapshot: Snapshot | None = None,
        settings: list[Setting] | None = None,
    ) -> None:
        self._snapshot = snapshot or Snapshot()
        self._subscribers: list[Callable[[Event], None]] = []
        self._settings = {s.key: s for s in (settings if settings is not None else [])}
        self.calls: list[tuple[str, dict[str, object]]] = []
        self.gate: asyncio.Event | None = None
        self.raise_next: Exception | None = None
        self.started = False
        self.stopped = False
        self.sign_in_url = "https://login.corp.example/authorize?state=s1"
        self._lost_callbacks: list[Callable[[], None]] = []
        self.signed_in_snapshot = demo_snapshot(SessionState.CONNECTED)

    @classmethod
    def demo(cls, state: SessionState = SessionState.DEGRADED) -> ScriptedEngine:
        return cls(demo_snapshot(state), demo_settings())

    # -- EngineAPI -----------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def settings(self) -> list[Setting]:
        return list(self._settings.values())

    async def set_setting(self, key: str, value: object) -> None:
        await self._call("set_setting", key=key, value=value)
        current = self._settings.get(key)
        if current is None:
            raise KeyError(f"unknown setting {key!r}")
        if current.locked:
            raise SettingLockedError(f"{key} is set by your organization")
        if type(value) is not type(current.value):
            raise SettingValueError(f"{key} must be a {type(current.value).__name__}")
        if key == "proxy_port" and not (1024 <= int(value) <= 65535):  # type: ignore[call-overload]
            raise SettingValueError("proxy_port must be between 1024 and 65535")
        self._settings[key] = dataclasses.replace(current, value=value, source="user")
        self.emit(EventKind.SETTINGS, message=f"Setting '{key}' changed")

    def set_managed(self, key: str, value: object) -> None:
        """IT changes a managed setting (as the agent would announce it)."""
        current = self._settings[key]
        self._settings[key] = dataclasses.replace(
            current, value=value, source="managed", locked=True
        )
        self.emit(EventKind.SETTINGS, message=f"Setting '{key}' changed")

    async def _call(self, name: str, **kwargs: object) -> None:
        self.calls.append((name, kwargs))
        if self.gate is not None:
            await self.gate.wait()
        if self.raise_next is not None:
            exc, self.raise_next = self.raise_next, None
            raise exc

    async def start(self) -> None:
        await self._call("start")
        self.started = True

    async def sign_in(
        self, *, device_code: bool = False, open_url: Callable[[str], None] | None = None
    ) -> None:
        self.set_state(SessionState.SIGNING_IN)
        if open_url is not None and not device_code:
            open_url(self.sign_in_url)
        if device_code:
            self.emit(
                EventKind.NOTICE,
                details={
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://login.corp.example/device",
                },
            )
        await self._call("sign_in", device_code=device_code, open_url=open_url)
        self.publish(self.signed_in_snapshot)

    async def sign_out(self, *, break_glass_reason: str | None = None) -> None:
        await self._call("sign_out", break_glass_reason=break_glass_reason)
        self._always_on_gate(break_glass_reason)
        self.publish(Snapshot())

    async def connect(self) -> None:
        self.set_state(SessionState.CONNECTING)
        await self._call("connect")
        self.set_state(SessionState.CONNECTED)

    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        await self._call("disconnect", break_glass_reason=break_glass_reason)
        self._always_on_gate(break_glass_reason)
        self.publish(
            dataclasses.replace(self._snapshot, state=SessionState.DISCONNECTED, tunnel=None)
        )

    async def recheck_posture(self) -> None:
        await self._call("recheck_posture")

    async def collect_diagnostics(self, destination: Path) -> Path:
        await self._call("collect_diagnostics", destination=destination)
        path = destination / "rustronaut-diagnostics.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("state.txt", str(self._snapshot.state))
        return path

    async def stop(self) -> None:
        self.calls.append(("stop", {}))
        self.stopped = True

    def _always_on_gate(self, reason: str | None) -> None:
        """Refuse like the engine: always-on needs a long enough reason, if allowed at all."""
        if not self._snapshot.always_on:
            return
        allowed = self._settings.get("allow_break_glass")
        if allowed is not None and allowed.value is False:
            raise AlwaysOnError("Your organization does not allow disconnecting.")
        if reason is None or len(reason.strip()) < MIN_REASON_LENGTH:
            raise AlwaysOnError(
                f"Always-on is on: a reason of at least {MIN_REASON_LENGTH} characters is needed."
            )

    # -- RemoteEngine's extra: the engine went away ----------------------------------
    def on_lost(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._lost_callbacks.append(callback)
        return lambda: self._lost_callbacks.remove(callback)

    def lose(self) -> None:
        """The agent went away: tell ``on_lost`` subscribers."""
        for cb in list(self._lost_callbacks):
            cb()

    # -- scripting -----------------------------------------------------------------
    def publish(
        self, snapshot: Snapshot, kind: EventKind = EventKind.STATE, **fields: object
    ) -> None:
        """Replace the snapshot and emit an event carrying it."""
        self._snapshot = snapshot
        self.emit(kind, **fields)

    def set_state(self, state: SessionState, **changes: object) -> None:
        self.publish(dataclasses.replace(self._snapshot, state=state, **changes))  # type: ignore[arg-type]

    def fail(self, title: str, detail: str, next_step: str) -> None:
        err = ErrorInfo(title, detail, next_step)
        self.publish(
            dataclasses.replace(self._snapshot, state=SessionState.ERROR, error=err),
            EventKind.ERROR,
            message=title,
        )

    def emit(self, kind: EventKind, **fields: object) -> Event:
        event = Event(kind=kind, snapshot=self._snapshot, time=time.time(), **fields)  # type: ignore[arg-type]
        for cb in list(self._subscribers):
            cb(event)
        return event

    def decide(
        self,
        app: str,
        destination: str,
        allowed: bool,
        rule: str | None,
        reason: str,
        risk: int = 0,
        signals: tuple[str, ...] = (),
    ) -> Event:
        d = Decision(
            Effect.ALLOW if allowed else Effect.DENY, rule, reason, risk=risk, signals=signals
        )
        return self.emit(EventKind.DECISION, decision=d, app=app, destination=destination)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)


DEMO_DECISIONS = (
    ("/usr/bin/git", "git.corp.example:443", True, "eng-git", "Engineering may use Git"),
    ("/usr/lib/firefox/firefox", "wiki.corp.example:443", True, "all-wiki", "Everyone: wiki"),
    (
        "/usr/bin/curl",
        "payroll.corp.example:443",
        False,
        "payroll-posture",
        "Disk encryption is off",
    ),
    ("/usr/bin/ssh", "10.20.4.17:22", True, "eng-build", "Engineering: build farm"),
    ("/opt/unknown/agent", "db.corp.example:5432", False, None, "No rule allows this app"),
    ("/usr/lib/firefox/firefox", "hr.corp.example:443", False, "hr-only", "HR group only"),
)
