"""The engine's ports backed by the real parts of ``core`` (see ``core.engine.ports``).

One adapter per port: sign-in (``core.auth``), device keys and enrollment (keyring +
a small record), the control plane (``core.controlplane``), posture (``core.posture``),
policy (``core.policy``), the helper (``core.tunnel``) and the proxy (``core.proxy``).
``core.engine.wiring.build_engine`` assembles them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import os
import platform
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from core import __version__
from core.aio import spawn
from core.auth import (
    DEVICE_SIGNING_KEY,
    WIREGUARD_PRIVATE_KEY,
    ProviderUnreachable,
    SecretStore,
    Session,
)
from core.controlplane import ControllerUnreachableError, ControlPlaneClient, PinMismatchError
from core.controlplane.models import Discovery, EnrollRequest
from core.engine.ports import (
    BundleInfo,
    ControlEvent,
    Enrollment,
    PostureFacts,
    SignedTunnel,
    TunnelPath,
    UserInfo,
)
from core.engine.route import DeciderRoute, parse_ranges
from core.engine.state import PostureItem, ResourceView, TunnelView
from core.i18n import translate
from core.paths import ensure_private_dir
from core.policy import PolicyEngine, PolicyStore, RiskTracker
from core.policy.api import Decider
from core.policy.engine import Reachability
from core.policy.explain import plain_reason
from core.policy.floor import FLOOR_KEY_NAME, RollbackFloor
from core.policy.trust import DiscoveredKeys, PolicyTrust
from core.posture import (
    CollectContext,
    FactChange,
    PostureConfig,
    PostureMonitor,
    SubprocessRunner,
    collect,
    collectors_for,
    current_os,
    remediation,
    signed_report,
)
from core.settings import EffectiveSettings
from core.tunnel import MarkedSockets, TunnelClient
from core.wire.posture import Fact, FactWords, fact_words, facts_for_policy
from core.wire.signing import b64url, public_key_from_jwk
from core.wire.telemetry import DecisionBatch, sign_batch
from wg_backends.errors import HelperRefused, TunnelStateError
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus

if TYPE_CHECKING:
    from core.proxy.model import ProxyCounters, ProxyEvent
    from core.proxy.thread import ProxyThread

__all__ = [
    "AuthAdapter",
    "ControlAdapter",
    "ControllerDiscovery",
    "DeviceAdapter",
    "KeyringFloorKey",
    "PolicyAdapter",
    "PostureAdapter",
    "ProxyAdapter",
    "TunnelAdapter",
    "tunnel_view",
    "write_private",
]

_log = logging.getLogger(__name__)


def write_private(path: Path, data: bytes) -> None:
    ensure_private_dir(path.parent)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- discovery
class ControllerDiscovery:
    """The controller's discovery document, fetched or from the 0600 cache."""

    def __init__(self, client: ControlPlaneClient, cache: Path) -> None:
        self._client = client
        self._cache = cache
        self.doc: Discovery | None = None

    async def get(self) -> Discovery:
        try:
            self.doc = await self._client.discovery()
            write_private(self._cache, msgspec.json.encode(self.doc))
        except Exception:
            if self.doc is None and self._cache.is_file():
                self.doc = msgspec.json.decode(self._cache.read_bytes(), type=Discovery)
                _log.info("controller unreachable; using the cached discovery document")
            if self.doc is None:
                raise
        return self.doc

    def keys(self) -> DiscoveredKeys:
        """What discovery claims about policy keys; untrusted until ``PolicyTrust`` has
        chained them to an anchor."""
        if self.doc is None:
            return DiscoveredKeys()
        return DiscoveredKeys(
            signing={
                k.kid: public_key_from_jwk(msgspec.to_builtins(k))
                for k in self.doc.policy_keys.keys
            },
            roots=tuple(public_key_from_jwk(msgspec.to_builtins(k)) for k in self.doc.policy_roots),
            endorsements=tuple(self.doc.policy_endorsements),
        )


class KeyringFloorKey:
    """The rollback floor's MAC key in the keyring (``core.policy.floor.KeyAccess``)."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def get(self) -> bytes | None:
        value = self._store.get(FLOOR_KEY_NAME)
        return None if value is None else base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))

    def create(self, key: bytes) -> None:
        self._store.set(FLOOR_KEY_NAME, b64url(key))


# -------------------------------------------------------------------------------- auth
class AuthAdapter:
    """``AuthPort`` over ``core.auth.Session``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def user(self) -> UserInfo | None:
        claims = self._session.identity
        if claims is None:
            return None
        return UserInfo(
            subject=claims.sub,
            email=claims.email or claims.preferred_username or claims.sub,
            name=claims.display_name,
        )

    def session_expires_at(self) -> float | None:
        return self._session.session_expires_at

    def session_renewable(self) -> bool | None:
        return self._session.renewable

    async def sign_in(
        self,
        *,
        device_code: bool,
        on_prompt: Callable[[str, str, str | None], None],
        open_url: Callable[[str], object] | None = None,
    ) -> UserInfo:
        if device_code:
            await self._session.login_device(on_prompt)
        else:
            await self._session.login_browser(open_url=open_url)
        user = self.user()
        assert user is not None
        return user

    async def sign_out(self) -> None:
        await self._session.logout()


# ------------------------------------------------------------------------------ device
class DeviceAdapter:
    """``DevicePort``: keys made here and kept in the keyring; a small enrollment record."""

    def __init__(
        self,
        store: SecretStore,
        client: ControlPlaneClient,
        record: Path,
        *,
        helper_key: Callable[[], Awaitable[str | None]] | None = None,
        relay_key: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._record = record
        # The WireGuard public key the helper keeps for this account, when it verifies
        # policy itself (then it adds its own key to the tunnel; None: ours is used).
        self._helper_key = helper_key
        # The helper's relay key for this account (issue 21; None: a helper without
        # relays). Only its public half is ever seen here.
        self._relay_key = relay_key
        self._cached: Enrollment | None = None
        self._loaded = False

    def enrollment(self) -> Enrollment | None:
        if not self._loaded:
            self._loaded = True
            try:
                data = json.loads(self._record.read_text())
                self._cached = Enrollment(
                    device_id=str(data["device_id"]), address=str(data["address"])
                )
            except FileNotFoundError:
                self._cached = None
            except (ValueError, KeyError, TypeError):
                _log.warning("enrollment record %s is unreadable; enrolling again", self._record)
                self._cached = None
        return self._cached

    def _raw_key(self, name: str, *, clamp: bool = False) -> bytes:
        """The 32-byte private key stored as ``name``, made here on first use (32 random
        bytes; clamped as ``wg genkey`` does for the X25519 WireGuard key). The keyring is
        the only place it is kept."""
        text = self._store.get(name)
        if text is not None:
            return base64.b64decode(text)
        raw = bytearray(os.urandom(32))
        if clamp:
            raw[0] &= 248
            raw[31] = (raw[31] & 127) | 64
        self._store.set(name, base64.b64encode(raw).decode())
        return bytes(raw)

    def _wg_key(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._raw_key(WIREGUARD_PRIVATE_KEY, clamp=True))

    def _signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._raw_key(DEVICE_SIGNING_KEY))

    async def _held_key(self) -> str | None:
        """The helper's key for this account when it verifies policy; None when it does
        not, or cannot be asked now (then our own key is used: ``key_changed`` notices
        the difference once the helper answers)."""
        if self._helper_key is None:
            return None
        try:
            return await self._helper_key()
        except Exception as exc:
            _log.info("the helper cannot be asked for its device key now: %s", exc)
            return None

    async def _held_relay_key(self) -> str | None:
        """The helper's relay key for this account; None when it has none or cannot be
        asked now (relays are then simply not offered to this device)."""
        if self._relay_key is None:
            return None
        try:
            return await self._relay_key()
        except Exception as exc:
            _log.info("the helper cannot be asked for its relay key now: %s", exc)
            return None

    def _read_record(self) -> dict[str, object]:
        try:
            data = json.loads(self._record.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def register_relay_key(self) -> None:
        enrollment = self.enrollment()
        if enrollment is None:
            return
        key = await self._held_relay_key()
        if key is None:
            return
        record = self._read_record()
        if record.get("relay_key") == key:
            return
        try:
            await self._client.put_relay_key(enrollment.device_id, key)
        except Exception as exc:
            # Relays are a fallback: without the key the tunnel still runs over UDP.
            _log.warning("could not register the relay key (tried again later): %s", exc)
            return
        _log.info("registered the helper's relay key with the controller")
        record["relay_key"] = key
        write_private(self._record, json.dumps(record).encode())

    async def key_changed(self) -> bool:
        held = await self._held_key()
        if held is None:
            return False
        try:
            recorded = json.loads(self._record.read_text()).get("wg_public_key")
        except (OSError, ValueError, AttributeError):
            return False
        return bool(recorded != held)

    async def enroll(self) -> Enrollment:
        held = await self._held_key()
        wg_pub = (
            base64.b64decode(held)
            if held
            else self._wg_key()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        sign_pub = (
            self._signing_key()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        relay_key = await self._held_relay_key()
        answer = await self._client.enroll(
            EnrollRequest(
                name=(socket.gethostname() or "device")[:64],
                platform=_platform(),
                wg_public_key=base64.b64encode(wg_pub).decode(),
                signing_key=b64url(sign_pub),
                relay_key=relay_key,
            )
        )
        record: dict[str, object] = {
            "device_id": answer.device_id,
            "address": answer.address,
            "at": time.time(),
            "wg_public_key": base64.b64encode(wg_pub).decode(),
        }
        if relay_key is not None:
            record["relay_key"] = relay_key
        write_private(self._record, json.dumps(record).encode())
        self._cached = Enrollment(device_id=answer.device_id, address=answer.address)
        self._loaded = True
        return self._cached

    def forget(self) -> None:
        self._record.unlink(missing_ok=True)
        self._cached = None
        self._loaded = True

    def sign_posture(self, facts: PostureFacts, nonce: str, device_id: str) -> str:
        # The one report builder (facts ordered by name), shared with `rustronaut posture`.
        return signed_report(
            facts, self._signing_key(), device_id=device_id, nonce=nonce, now=time.time()
        )

    def sign_decisions(self, batch: DecisionBatch) -> str:
        """The decision-telemetry batch signed with the device key (``core.telemetry``)."""
        return sign_batch(batch, self._signing_key())

    def wg_private_key(self) -> str:
        return base64.b64encode(self._raw_key(WIREGUARD_PRIVATE_KEY, clamp=True)).decode()


def _platform() -> Literal["linux", "windows", "macos"]:
    system = platform.system()
    if system == "Windows":
        return "windows"
    return "macos" if system == "Darwin" else "linux"


# ----------------------------------------------------------------------------- control
@contextlib.contextmanager
def _offline_as_connection_error() -> Iterator[None]:
    """The engine treats ``ConnectionError`` as "offline: keep the cached bundle, retry".

    A wrong TLS pin is not "offline": it stays an error the employee is told about.
    """
    try:
        yield
    except PinMismatchError:
        raise
    except (ControllerUnreachableError, ProviderUnreachable) as exc:
        raise ConnectionError(str(exc)) from exc


class ControlAdapter:
    """``ControlPort`` over ``ControlPlaneClient`` (device id from the enrollment)."""

    def __init__(self, client: ControlPlaneClient, device: DeviceAdapter) -> None:
        self._client = client
        self._device = device
        self._relay_cert: str | None = None

    def _device_id(self) -> str:
        enrollment = self._device.enrollment()
        if enrollment is None:
            raise RuntimeError("this device is not enrolled")
        return enrollment.device_id

    async def posture_nonce(self) -> str:
        with _offline_as_connection_error():
            return (await self._client.posture_nonce(self._device_id())).nonce

    async def submit_posture(self, token: str) -> None:
        with _offline_as_connection_error():
            await self._client.submit_posture(self._device_id(), token)

    async def fetch_bundle(self) -> str:
        with _offline_as_connection_error():
            answer = await self._client.fetch_bundle(self._device_id())
        if answer.relay_cert is not None:
            self._relay_cert = answer.relay_cert
        return answer.bundle

    def relay_cert(self) -> str | None:
        return self._relay_cert

    async def events(self) -> AsyncIterator[ControlEvent]:
        with _offline_as_connection_error():
            async for event in self._client.events(self._device_id()):
                yield ControlEvent(
                    kind=str(event.type), data={"detail": event.detail, "at": event.at}
                )

    def clock_skew_s(self) -> float | None:
        # Measured by the control-plane client from the controller's answers (issue 17).
        return self._client.clock_skew_s

    async def report_break_glass(self, reason: str) -> None:
        with _offline_as_connection_error():
            await self._client.report_break_glass(self._device_id(), reason)


# ----------------------------------------------------------------------------- posture
class PostureAdapter:
    """``PosturePort`` over the platform's collectors and ``PostureMonitor``."""

    def __init__(self, settings: EffectiveSettings) -> None:
        self._os = current_os()
        self._collectors = collectors_for(self._os)
        self._ctx = CollectContext(
            runner=SubprocessRunner(),
            config=PostureConfig.create(
                processes=settings.posture_required_processes,
                files=settings.posture_required_files,
                client_version=__version__,
            ),
        )
        self._full_s = float(settings.posture_interval_minutes * 60)
        self._watch_s = float(settings.posture_watch_seconds)
        self._monitor: PostureMonitor | None = None
        self.failing: frozenset[str] = frozenset()
        #: fact names the policy reads (set by ``PolicyAdapter.resources``); None before
        #: a policy is held: then the security checks count, descriptive facts do not
        self.required: frozenset[str] | None = None

    async def collect(self) -> dict[str, Fact]:
        return await collect(self._collectors, self._ctx)

    def start(self, on_change: Callable[[PostureFacts], None]) -> None:
        if self._monitor is not None:
            return

        def changed(_changes: tuple[FactChange, ...]) -> None:
            assert monitor is not None
            on_change(dict(monitor.facts))

        monitor = PostureMonitor(
            self._collectors,
            full_interval_s=self._full_s,
            watch_interval_s=self._watch_s,
            on_change=changed,
            context=self._ctx,
        )
        self._monitor = monitor
        spawn(monitor.start(), name="posture-monitor-start")

    async def stop(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            await monitor.stop()

    def items(self, facts: PostureFacts) -> tuple[PostureItem, ...]:
        """Each fact by its human label (``fact_words``), required ones (what the policy
        reads) first; a fix only where a required check does not pass."""
        out = []
        for name, fact in sorted(facts.items()):
            words = fact_words(name)
            required = (
                name in self.required if self.required is not None else not words.informational
            )
            if not fact.known:
                value = (
                    translate("core.engine.adapters", "Could not be checked ({reason})").format(
                        reason=fact.reason
                    )
                    if fact.reason
                    else translate("core.engine.adapters", "Could not be checked")
                )
                status = "unknown"
            elif fact.value is False or name in self.failing:
                status, value = "fail", _show(fact.value, words)
            else:
                status, value = "pass", _show(fact.value, words)
            fix = remediation(name, self._os) if status != "pass" and required else ""
            out.append(
                PostureItem(
                    name=name,
                    label=words.label,
                    value=value,
                    status=status,
                    fix=fix,
                    required=required,
                )
            )
        out.sort(key=lambda p: not p.required)  # stable: by name within each group
        return tuple(out)

    def policy_facts(self, facts: PostureFacts) -> dict[str, object]:
        return facts_for_policy(facts)


def _show(value: object, words: FactWords | None = None) -> str:
    if isinstance(value, bool):
        if words is not None:
            return words.yes.capitalize() if value else words.no.capitalize()
        return (
            translate("core.engine.adapters", "yes")
            if value
            else translate("core.engine.adapters", "no")
        )
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or translate("core.engine.adapters", "none")
    return str(value)


# ------------------------------------------------------------------------------ policy
class PolicyAdapter:
    """``PolicyPort`` over ``PolicyStore`` + ``PolicyEngine`` + ``RiskTracker``."""

    def __init__(
        self,
        keys: Callable[[], DiscoveredKeys],
        cache: Path,
        *,
        trust: PolicyTrust,
        floor: RollbackFloor | None = None,
    ) -> None:
        self._keys = keys
        self._cache = cache
        self._trust = trust
        self._floor = floor
        self._store: PolicyStore | None = None
        self._store_device: str | None = None
        self._tracker = RiskTracker()
        self._engine = PolicyEngine(tracker=self._tracker)
        self._posture: PostureAdapter | None = None

    def bind_posture(self, posture: PostureAdapter) -> None:
        """Let the posture view mark facts that block resources as failing."""
        self._posture = posture

    @property
    def decider(self) -> Decider:
        return self._engine

    @property
    def trust_notice(self) -> str | None:
        """Set when policy trust rests on a first-use pin (no anchors configured): the
        engine shows it to the user. None on a managed device."""
        return self._trust.notice

    def _store_for(self, device_id: str) -> PolicyStore:
        # Only keys that chain to a trust anchor; raises TrustError (a PolicyError) when
        # none does, and then the held bundle stays untouched.
        keys = self._trust.signing_keys(self._keys())
        if self._store is None or self._store_device != device_id:
            self._store = PolicyStore(
                device_id=device_id, keys=keys, cache_path=self._cache, floor=self._floor
            )
            self._store_device = device_id
        else:
            self._store.set_keys(keys)
        return self._store

    def accept(self, token: str, *, device_id: str) -> BundleInfo:
        store = self._store_for(device_id)
        store.update(token)
        self._engine.load(store.current())
        info = self.held()
        assert info is not None
        return info

    def load_cached(self, *, device_id: str) -> BundleInfo | None:
        try:
            store = self._store_for(device_id)  # TrustError, logged: no cached policy
            store.load_cache()
        except Exception as exc:
            _log.warning("cached policy unusable: %s", exc)
            return None
        self._engine.load(store.current())
        return self.held()

    def held(self) -> BundleInfo | None:
        bundle = self._store.current() if self._store else None
        if bundle is None:
            if self._engine.bundle is not None:
                self._engine.load(None)  # expired: every decision denies from now on
            return None
        return BundleInfo(bundle.version, float(bundle.expires_at), len(bundle.resources))

    def clear(self) -> None:
        if self._store is not None:
            self._store.clear()
        self._engine.load(None)
        if self._posture is not None:
            self._posture.required = None  # no policy: back to the default checks

    def set_facts(self, facts: Mapping[str, object]) -> None:
        self._engine.set_facts(facts)
        self._tracker.set_posture(facts)

    def resources(self) -> tuple[ResourceView, ...]:
        views = []
        failing: set[str] = set()
        for r in self._engine.reachable():
            # each distinct fix once (two rules may need the same thing)
            fix = "; ".join(dict.fromkeys(u.remediation for u in r.unmet if u.remediation))
            device_facts = [u.fact for u in r.unmet if u.fact.startswith(("posture.", "risk"))]
            failing.update(f.removeprefix("posture.") for f in device_facts)
            views.append(
                ResourceView(
                    name=r.resource.name or r.resource.id,
                    address=", ".join((*r.resource.hosts, *r.resource.cidrs)),
                    reachable=r.allowed,
                    reason="" if r.allowed else _plain_reason(r),
                    fix=fix,
                    fixable=bool(device_facts) and not r.allowed,
                )
            )
        if self._posture is not None:
            self._posture.failing = frozenset(failing)
            self._posture.required = self._engine.required_facts()
        return tuple(views)

    def tunnel_spec(self) -> TunnelSpec | None:
        bundle = self._store.current() if self._store else None
        return bundle.tunnel if bundle is not None else None

    def tunnel_specs(self) -> tuple[TunnelSpec, ...]:
        """The bundle's ``tunnel`` then its failover ``gateways`` (none without a bundle)."""
        bundle = self._store.current() if self._store else None
        if bundle is None:
            return ()
        first = (bundle.tunnel,) if bundle.tunnel is not None else ()
        return first + tuple(bundle.gateways)

    def signed(self) -> tuple[str, tuple[str, ...]] | None:
        store = self._store
        if store is None or store.current() is None or store.token is None:
            return None
        return store.token, self._keys().endorsements

    def pac_targets(self) -> tuple[str, ...]:
        bundle = self._store.current() if self._store else None
        if bundle is None:
            return ()
        out: list[str] = []
        for r in bundle.resources:
            out.extend(r.hosts)
            out.extend(r.cidrs)
        return tuple(dict.fromkeys(out))

    def risk(self) -> tuple[int, tuple[str, ...]]:
        """The score and what adds to it, by human label ("Antivirus not running")."""
        snap = self._tracker.snapshot()
        return snap.score, snap.active_labels


def _plain_reason(r: Reachability) -> str:
    """Why a resource is blocked, for the employee and without its name (it is shown
    beside it): "Needs the firewall on — it is off; needs group Finance — …"."""
    text = plain_reason(r.unmet) if r.unmet else r.reason
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------------------------ tunnel
class TunnelAdapter:
    """``TunnelPort`` over the helper client; owns the pool of marked sockets of the
    tunnel it enforces (the decider's only way into the tunnel)."""

    def __init__(self, client: TunnelClient) -> None:
        self._client = client
        self._pool: MarkedSockets | None = None
        # The gateway the applied spec names: in relay mode WireGuard's peer endpoint is
        # the helper's local bridge, which must never be shown as the gateway.
        self._gateway = ""
        # The helper re-creates the WireGuard peer when it moves to or from a relay, and a
        # new peer's counters start at zero: the shown traffic keeps counting across that.
        self._rx = _Counter()
        self._tx = _Counter()

    async def _helper_takes(
        self, signed: SignedTunnel | None, relay_cert: str | None
    ) -> tuple[SignedTunnel | None, str | None]:
        """What the helper takes: ``signed`` when it verifies policy itself (then with
        its own device key; else None: the spec we built), and ``relay_cert`` when it has
        a relay key (an older helper refuses a request with a field it does not know)."""
        if signed is None and relay_cert is None:
            return None, None
        info = await self._client.hello()
        return (
            signed if info.signed_policy else None,
            relay_cert if info.relay_key is not None else None,
        )

    async def _apply(
        self, verb: str, spec: TunnelSpec, signed: SignedTunnel | None, relay_cert: str | None
    ) -> None:
        bundle, cert = await self._helper_takes(signed, relay_cert)
        up = verb == "up"
        if bundle is None:
            plain = self._client.up if up else self._client.update
            await plain(spec, relay_cert=cert)
        else:
            verified = self._client.up_bundle if up else self._client.update_bundle
            await verified(
                bundle.token,
                bundle.profile,
                endorsements=bundle.endorsements,
                device_id=bundle.device_id,
                relay_cert=cert,
            )
        self._gateway = _gateway_of(spec)
        if up:
            self._rx, self._tx = _Counter(), _Counter()

    async def up(
        self,
        spec: TunnelSpec,
        signed: SignedTunnel | None = None,
        *,
        relay_cert: str | None = None,
    ) -> None:
        await self._apply("up", spec, signed, relay_cert)

    async def update(
        self,
        spec: TunnelSpec,
        signed: SignedTunnel | None = None,
        *,
        relay_cert: str | None = None,
    ) -> None:
        try:
            await self._apply("update", spec, signed, relay_cert)
        except TunnelStateError as exc:
            # Not the interface this client owns: the engine replaces the tunnel instead.
            raise HelperRefused("bad_request", str(exc)) from exc

    async def enforce(self, redirect_port: int | None) -> TunnelPath | None:
        try:
            done = await self._client.enforce(redirect_port)
        except HelperRefused as exc:
            if exc.helper_code in {"unsupported", "bad_request"}:
                # Another OS, or a helper from before enforcement: the proxy keeps the
                # OS's routes and the snapshot says there is no kill switch.
                _log.warning("the helper cannot fence the tunnel: %s", exc)
                self._close_pool()
                return None
            raise
        interface = self._client.interface or ""
        pool = self._pool
        if pool is None or pool.interface != interface:
            self._close_pool()
            pool = self._pool = self._client.marked_sockets()
        listeners: tuple[socket.socket, ...] = ()
        if done.redirect_port is not None:
            # The helper made (and holds) the listening sockets on the port it redirects
            # to: copies come over the pool's own connection (SCM_RIGHTS).
            listeners = tuple(await asyncio.to_thread(pool.listeners))
        return TunnelPath(
            interface=interface,
            ranges=parse_ranges(done.ranges),
            take=pool.take,
            transparent=done.redirect_port is not None,
            flush=pool.flush,
            redirect_port=done.redirect_port,
            listeners=listeners,
        )

    async def release(self) -> None:
        self._close_pool()
        try:
            await self._client.release()
        except Exception as exc:
            _log.warning("could not remove the tunnel's fence: %s", exc)

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def down(self, *, break_glass_reason: str | None = None) -> None:
        self._close_pool()
        await self._client.down(break_glass_reason=break_glass_reason)

    async def status(self) -> TunnelView | None:
        if self._client.interface is None:
            return None
        status = await self._client.status()
        if not status.up:
            return None
        view = tunnel_view(status, self._gateway)
        return replace(
            view,
            rx_bytes=self._rx.total(view.rx_bytes),
            tx_bytes=self._tx.total(view.tx_bytes),
        )


class _Counter:
    """A byte counter that may restart at zero, kept monotonic: each restart adds the
    last value seen to a base."""

    __slots__ = ("_base", "_last")

    def __init__(self) -> None:
        self._base = 0
        self._last = 0

    def total(self, value: int) -> int:
        if value < self._last:
            self._base += self._last
        self._last = value
        return self._base + value


def _gateway_of(spec: TunnelSpec) -> str:
    endpoint = spec.peers[0].endpoint if spec.peers else None
    return str(endpoint or "")


def tunnel_view(status: TunnelStatus, gateway: str) -> TunnelView:
    """The helper's status of an up tunnel as shown. ``gateway``: the endpoint the applied
    spec names, shown whenever WireGuard's own endpoint is not the gateway's (a tunnel on
    a relay, or moving: its peer endpoint is the helper's local bridge). Pure."""
    transport = status.transport
    endpoint = status.endpoint or ""
    if transport is not None and (transport.kind != "udp" or _loopback(endpoint)):
        endpoint = gateway
    view = TunnelView(
        interface=status.interface,
        gateway=endpoint or gateway,
        handshake_age_s=status.handshake_age,
        rx_bytes=status.rx_bytes,
        tx_bytes=status.tx_bytes,
    )
    if transport is None:
        return view
    return replace(
        view,
        transport="relay" if transport.kind == "relay" else "udp",
        relay=transport.relay if transport.kind == "relay" else None,
        transport_state=transport.state,
        transport_reason=transport.reason,
        transport_since=transport.since,
    )


def _loopback(endpoint: str) -> bool:
    host = endpoint.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------- proxy
class ProxyAdapter:
    """``ProxyPort`` over a ``ProxyServer`` on its own thread (``ProxyThread``): the
    proxy's connection rate does not depend on the UI's loop, nor the UI on the proxy's
    load. Decisions come back to the engine's loop as events. It dials only through the
    tunnel's marked sockets and resolves company names through the tunnel's DNS
    (``DeciderRoute``, swapped by the engine as tunnels come and go)."""

    def __init__(self, decider: Decider) -> None:
        self._decider = decider
        self._route = DeciderRoute()
        self._callbacks: list[Callable[[ProxyEvent], None]] = []
        self._server = self._make()
        self._address: str | None = None

    def _make(self) -> ProxyThread:
        from core.proxy import ProxyServer
        from core.proxy.dial import Dialer, plain_socket, tunnel_opener
        from core.proxy.thread import ProxyThread

        route = self._route
        through_tunnel = tunnel_opener(route.take)

        def opener(family: int) -> socket.socket:
            if route.unfenced:  # a helper that cannot fence: the OS's routes, said so
                return plain_socket(family)
            return through_tunnel(family)

        server = ProxyServer(  # the signed-in OS account only
            self._decider,
            resolver=route.resolve,
            connector=Dialer(opener),  # a Dialer: the proxy connects with callbacks
            reverse=route.reverse,
            ranges=route.ranges,
        )
        thread = ProxyThread(server)
        for callback in self._callbacks:
            thread.subscribe(callback)
        return thread

    def subscribe(self, callback: Callable[[ProxyEvent], None]) -> None:
        self._callbacks.append(callback)
        self._server.subscribe(callback)

    async def start(self, port: int, transparent_port: int | None = None) -> str:
        # The transparent listeners are the helper's (adopted in ``set_path``): a port
        # the decider bound itself could be taken first by another local account.
        if self._address is None:
            bound = await self._server.start(port)
            host, real_port = bound[0]
            self._address = f"{host}:{real_port}"
        return self._address

    def set_path(self, path: TunnelPath | None, spec: TunnelSpec | None) -> None:
        # A tunnel the helper cannot fence (path None while a spec is applied): the
        # proxy keeps the OS's routes; no tunnel at all: it refuses.
        self._route.set(path, spec, unfenced=path is None and spec is not None)
        if self._address is None:
            for sock in path.listeners if path is not None else ():
                sock.close()  # not serving: the helper keeps its own copies
            return
        if path is not None and path.listeners:
            self._server.adopt_transparent(path.listeners)
        else:
            self._server.drop_transparent()

    async def stop(self) -> None:
        await self._server.stop()
        self._address = None

    def reevaluate(self) -> None:
        self._server.reevaluate()

    def set_pac_targets(self, targets: tuple[str, ...]) -> None:
        self._server.set_pac_targets(targets)

    def counters(self) -> ProxyCounters:
        return self._server.counters()
