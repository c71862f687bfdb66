"""Builds the real engine: each port backed by its part of ``core``.

``build_engine`` reads the effective settings, learns the controller's discovery
document (OIDC issuer and client id, policy-signing keys) and wires sign-in
(``core.auth``), the control plane (``core.controlplane``), device keys in the keyring,
posture (``core.posture``), the policy engine (``core.policy``), the helper client
(``core.tunnel``) and the proxy (``core.proxy``) to one ``Engine``; on Windows and macOS
the signed-update schedule (``core.update``) runs with it.

The discovery document is cached (0600, data dir) after every successful fetch so the
client can verify its cached bundle and run offline; it comes only from the controller
URL in settings — never from a controller answer or over IPC (DESIGN §7.6).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from core.auth import (
    OidcClient,
    OidcConfig,
    OpenUrl,
    SecretStore,
    Session,
)
from core.controlplane import (
    AuthenticationError,
    ControlPlaneClient,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
)
from core.engine.adapters import (
    AuthAdapter,
    ControlAdapter,
    ControllerDiscovery,
    DeviceAdapter,
    KeyringFloorKey,
    PolicyAdapter,
    PostureAdapter,
    ProxyAdapter,
    TunnelAdapter,
)
from core.engine.api import Setting
from core.engine.engine import Engine, EngineConfig
from core.engine.netwatch import NetworkWatch
from core.i18n import QT_TRANSLATE_NOOP, translate
from core.paths import data_dir
from core.policy.floor import FLOOR_FILE_NAME, RollbackFloor
from core.policy.trust import PIN_FILE_NAME, PolicyTrust
from core.settings import EffectiveSettings, SettingsWatcher, load, set_user
from core.telemetry import BatchRefused, RetryLater, Submit, TelemetryQueue, TelemetrySender
from core.tunnel import TunnelClient
from core.tunnel import helper_socket as helper_socket_path
from core.update import HelperInstaller, SeenFloor, UpdateConfig, Updater
from core.update.floor import FLOOR_FILE_NAME as UPDATE_FLOOR_FILE
from core.update.schedule import Report, UpdateSchedule, applies
from core.wire.telemetry import DecisionAck

__all__ = [
    "EngineSetupError",
    "build_engine",
    "controller_pins",
    "decision_submitter",
    "engine_config",
    "policy_trust",
    "raise_fd_limit",
    "settings_view",
    "telemetry_sender",
]

_log = logging.getLogger(__name__)
#: "interval,grace,stale" seconds of the tunnel health check (EngineConfig fields
#: health_interval_s, first_handshake_grace_s, handshake_stale_s). Not a user setting:
#: the end-to-end test bed shortens them to show a gateway failover in seconds.
_HEALTH_ENV = "RUSTRONAUT_TUNNEL_HEALTH"
#: Seconds between decision-telemetry sends (``TelemetrySender.interval_s``, default 10).
#: Not a user setting: the console's browser test shortens it so a decision reaches the
#: live feed in about a second.
_TELEMETRY_INTERVAL_ENV = "RUSTRONAUT_TELEMETRY_INTERVAL"


class EngineSetupError(RuntimeError):
    """The client is not configured well enough to start (message says what to set).

    Carries its words (``core.errors.UserFacing``), so ``explain`` and the CLI show them.
    """

    title = QT_TRANSLATE_NOOP("core.engine.wiring", "Rustronaut is not configured")
    user_message = QT_TRANSLATE_NOOP("core.engine.wiring", "Rustronaut is not configured.")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.wiring",
        "Ask IT to set the controller URL, or run: rustronaut config set controller_url URL",
    )
    code = "setting_invalid"

    @property
    def detail(self) -> str:
        """The message: what is missing."""
        return str(self) or translate("core.engine.wiring", self.user_message)


def engine_config(settings: EffectiveSettings) -> EngineConfig:
    """The engine's part of the settings (plus ``$RUSTRONAUT_TUNNEL_HEALTH`` timings)."""
    return EngineConfig(
        proxy_port=settings.proxy_port,
        transparent=settings.transparent,
        transparent_port=settings.transparent_port,
        auto_connect=settings.auto_connect,
        always_on=settings.always_on,
        allow_break_glass=settings.allow_break_glass,
        organization=settings.organization_name or None,
        managed_rejected=settings.managed_rejected,
        **health_timings(os.environ.get(_HEALTH_ENV, "")),
    )


def health_timings(text: str) -> dict[str, float]:
    """Parse "interval,grace,stale" (seconds, each > 0) into EngineConfig fields.

    Empty → ``{}`` (the defaults). Anything malformed is logged and ignored (the
    defaults stay), never raised: a bad test knob must not stop the client.
    """
    if not text.strip():
        return {}
    try:
        interval, grace, stale = (float(part) for part in text.split(","))
    except ValueError:
        _log.warning("ignoring %s=%r: expected interval,grace,stale seconds", _HEALTH_ENV, text)
        return {}
    if min(interval, grace, stale) <= 0:
        _log.warning("ignoring %s=%r: every value must be > 0", _HEALTH_ENV, text)
        return {}
    return {
        "health_interval_s": interval,
        "first_handshake_grace_s": grace,
        "handshake_stale_s": stale,
    }


def raise_fd_limit() -> int | None:
    """Raise this process's soft limit on open files to the hard limit; the new soft limit.

    The proxy sizes its connection cap from it: at a desktop's default 1,024 it would serve
    only about 220 connections at once. Never raises; None where there is no such limit.
    """
    try:
        import resource
    except ImportError:  # Windows: no per-process descriptor limit of this kind
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = max(soft, 1 << 20)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError) as exc:
        _log.warning("could not raise the open-file limit: %s", exc)
        return None


def policy_trust(settings: EffectiveSettings, state: Path) -> PolicyTrust:
    """Trust in the policy's keys: the managed anchors, else a first-use pin in ``state``.

    Never a first-use pin while the organization's managed settings are rejected: that
    is a managed device whose anchors did not arrive, not a development setup, and a
    controller met now must not become its root of trust.
    """
    pin = None if settings.managed_rejected else state / PIN_FILE_NAME
    return PolicyTrust(settings.policy_trust_anchors, pin_path=pin)


def controller_pins(settings: EffectiveSettings) -> tuple[str, ...] | None:
    """Every configured SPKI pin (a backup pin must work as well as the first), or None."""
    return tuple(settings.tls_pin_sha256) or None


# ------------------------------------------------------------------------------- build
def _update_schedule(
    watcher: SettingsWatcher, socket_path: Path, report: Report
) -> UpdateSchedule | None:
    """Signed updates (``core.update``) on Windows and macOS: checked with the settings
    of the moment, installed through the helper. None where the OS updates the client."""
    if not applies():
        return None

    def make() -> Updater:
        return Updater(
            UpdateConfig.from_settings(watcher.current),
            HelperInstaller.at(socket_path),
            SeenFloor(data_dir() / UPDATE_FLOOR_FILE),
        )

    return UpdateSchedule(make, report)


def decision_submitter(client: ControlPlaneClient) -> Submit:
    """``core.telemetry``'s submit seam over the control-plane client (its TLS pins,
    proxy and bearer token): 429 and 401/403/404 mean "later" (busy; signed out, revoked
    or enrolled again), 400/413/422 "never" (the batch is dropped and counted); anything
    else "offline"."""

    async def submit(device_id: str, token: str) -> DecisionAck:
        try:
            return await client.submit_decisions(device_id, token)
        except RateLimitedError as exc:
            raise RetryLater(str(exc), exc.retry_after) from exc
        except (AuthenticationError, ForbiddenError, NotFoundError) as exc:
            raise RetryLater(str(exc)) from exc
        except RejectedError as exc:
            raise BatchRefused(str(exc)) from exc

    return submit


def telemetry_sender(
    watcher: SettingsWatcher,
    device: DeviceAdapter,
    client: ControlPlaneClient,
    state: Path,
) -> TelemetrySender | None:
    """The decision-telemetry sender (queue in ``state``), or None when the level is
    ``off`` (nothing is recorded, no task runs). Level and app hashing follow the
    settings live; batches are dated by the controller's clock (``clock_skew_s``) so a
    computer whose clock is off is not refused as stale."""
    settings = watcher.current
    if settings.telemetry_level == "off":
        return None

    def device_id() -> str | None:
        enrollment = device.enrollment()
        return enrollment.device_id if enrollment is not None else None

    return TelemetrySender(
        TelemetryQueue(state),
        level=lambda: watcher.current.telemetry_level,
        device_id=device_id,
        sign=device.sign_decisions,
        submit=decision_submitter(client),
        hash_apps=lambda: bool(watcher.current.telemetry_hash_app),
        salt=settings.controller_url,
        clock=lambda: time.time() - (client.clock_skew_s or 0.0),
        interval_s=_telemetry_interval(os.environ.get(_TELEMETRY_INTERVAL_ENV, "")),
    )


def _telemetry_interval(text: str, default: float = 10.0) -> float:
    """The sender's interval from ``$RUSTRONAUT_TELEMETRY_INTERVAL`` (0.1..3600 s), else
    ``default``; a malformed value is logged and ignored, never raised."""
    if not text.strip():
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0.1 <= seconds <= 3600:
        _log.warning("ignoring %s=%r: expected seconds in 0.1..3600", _TELEMETRY_INTERVAL_ENV, text)
        return default
    return seconds


async def _set_user_setting(watcher: SettingsWatcher, key: str, value: object) -> None:
    set_user(key, value, settings=watcher.current)
    await watcher.poll()  # apply the user's change at once (and show it to every front end)


def settings_view(settings: EffectiveSettings) -> list[Setting]:
    """The effective settings as front ends show them (plain, serialisable values)."""
    return [
        Setting(
            key=i.key,
            value=i.value,
            source=str(i.source),
            locked=i.locked,
            description=i.description,
            title=i.title,
            origin=i.origin,
        )
        for i in settings.items()
    ]


async def build_engine(
    settings: EffectiveSettings | None = None,
    *,
    open_url: OpenUrl | None = None,
    helper_socket: Path | None = None,
    state_dir: Path | None = None,
) -> Engine:
    """Wire the real engine. Raises ``EngineSetupError`` when no controller is configured.

    Contacts the controller once for its discovery document (falls back to the cached one
    when offline). ``helper_socket`` defaults to ``$RUSTRONAUT_HELPER_SOCKET`` or
    ``/run/rustronaut/helper.sock``.
    """
    settings = settings or load()
    raise_fd_limit()
    if not settings.controller_url:
        raise EngineSetupError(translate("core.engine.wiring", "No controller URL is set."))
    state = state_dir or data_dir()
    pin = controller_pins(settings)
    plain = ControlPlaneClient(settings.controller_url, spki_pin=pin)
    discovery = ControllerDiscovery(plain, state / "discovery.json")
    doc = await discovery.get()
    issuer = settings.oidc_issuer or doc.issuer
    client_id = (
        settings.oidc_client_id if settings.source("oidc_client_id") != "default" else doc.client_id
    )
    store = SecretStore()
    oidc = OidcClient(OidcConfig(issuer=issuer, client_id=client_id), open_url=open_url)
    session = Session(oidc, store, end_provider_session=settings.end_provider_session)
    try:
        await session.load()
    except Exception as exc:
        _log.warning("stored sign-in unusable: %s", exc)
    control_client = ControlPlaneClient(settings.controller_url, auth=session.auth(), spki_pin=pin)
    socket_path = helper_socket_path(helper_socket)
    tunnel_client = TunnelClient(socket_path)

    async def helper_key() -> str | None:
        # A helper that verifies policy itself uses its own key for this account: the
        # device is enrolled with that one (the private half never leaves the helper).
        info = await tunnel_client.hello()
        return info.device_key if info.signed_policy else None

    async def relay_key() -> str | None:
        # The helper keeps the relay key (issue 21): only its public half comes here.
        return (await tunnel_client.hello()).relay_key

    device = DeviceAdapter(
        store,
        control_client,
        state / "enrollment.json",
        helper_key=helper_key,
        relay_key=relay_key,
    )
    posture = PostureAdapter(settings)
    policy = PolicyAdapter(
        discovery.keys,
        state / "policy-bundle.json",
        trust=policy_trust(settings, state),
        floor=RollbackFloor(state / FLOOR_FILE_NAME, KeyringFloorKey(store)),
    )
    policy.bind_posture(posture)
    proxy = ProxyAdapter(policy.decider)
    watcher = SettingsWatcher(initial=settings)
    updates = _update_schedule(watcher, socket_path, lambda text, d: engine.announce(text, d))
    telemetry = telemetry_sender(watcher, device, control_client, state)
    engine = Engine(
        auth=AuthAdapter(session),
        device=device,
        control=ControlAdapter(control_client, device),
        posture=posture,
        policy=policy,
        tunnel=TunnelAdapter(tunnel_client),
        proxy=proxy,
        config=engine_config(settings),
        settings_view=lambda: settings_view(watcher.current),
        settings_setter=lambda key, value: _set_user_setting(watcher, key, value),
        settings_watcher=watcher,
        network=NetworkWatch(),
        updates=updates,
        telemetry=telemetry,
    )
    watcher.subscribe(lambda new: engine.reconfigure(engine_config(new)))
    proxy.subscribe(
        lambda event: engine.record_decision_event(
            app=event.app.exe or event.app.name or "unknown app",
            # Refused at accept (another account, unidentified): no request was read.
            destination=event.destination or "(refused before its request)",
            effect=str(event.effect),
            rule=event.rule,
            reason=event.reason,
        )
    )
    if telemetry is not None:
        sender = telemetry
        proxy.subscribe(
            lambda event: sender.record(
                at=event.time,
                app=event.app.exe or event.app.name or "unknown app",
                destination=event.destination,
                effect=str(event.effect),
                rule=event.rule,
                resource=event.resource,
                code=str(event.kind),
                reason=event.reason,
                risk=policy.risk()[0],
            )
        )
    return engine
