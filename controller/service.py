"""The controller's logic, free of HTTP: enroll, posture, bundles, revoke, admin edits.

``ControllerService`` owns the storage, the signing key ring, the event hub and the
optional gateway. The web layer (``controller.app``) authenticates, parses bodies and
calls these methods; they raise ``controller.errors.ApiError`` subclasses for refusals
and never leave partial state behind (storage calls are single transactions).
All methods run on the event loop thread.

Access on the gateway follows the device's lease: the expiry of the last bundle it
fetched (one bundle lifetime of grace after enrolling). ``run_expiry`` re-checks the
gateway every second, so the peer of a device that stopped refreshing is removed on
time — whatever the device's clock says — and comes back when it fetches a bundle.

Each gateway also filters per device (``controller.gateway_filter``): a device's tunnel
address is forwarded only to the networks of the resources its user may reach now, under
the current rules, with the posture facts it last reported (none before its first
report). The grants are recomputed and applied (one ``nft -f -`` transaction per gateway)
whenever a rule, resource, group membership, device or posture report changes, at start
and on every ``run_expiry`` tick (time-bound rules, retries of a failed gateway). The
user's subject, email and token groups are remembered from their last authenticated call
(``Storage.set_identity``) so rules can be evaluated without a token.

Relays (issue 21): each tunnel spec of a bundle lists, signed with it, the configured relays
that serve its gateway; with every bundle an active device with a registered relay key gets
a fresh client certificate from the relay CA (``keys_dir/relay-ca.*``), issued to that key
only; relays admit devices from ``relay_devices()``. The constructor raises
``ConfigError`` for an unsafe relay token file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.config import (
    ControllerConfig,
    GatewayConfig,
    read_relay_token,
    relay_token_matches,
)
from controller.drafts import DraftError, Policy, PolicyDiff, check_policy
from controller.drafts import diff as policy_diff
from controller.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    Unprocessable,
)
from controller.events import EventHub
from controller.gateway import FilterError, Gateway, GatewayError
from controller.gateway_filter import render_filter
from controller.keys import SigningKeyRing
from controller.ratelimit import RateLimiter
from controller.reach import allowed_ips, reachable
from controller.relayca import RelayCA
from controller.storage import (
    AuditEntry,
    ConflictError,
    DecisionEntry,
    DeviceRecord,
    NotFoundError,
    PoolExhaustedError,
    Storage,
)
from controller.tokens import Identity
from core.controlplane.models import (
    AuditRecord,
    BundleResponse,
    DeviceInfo,
    Enrollment,
    EnrollRequest,
    GatewayInfo,
    NonceResponse,
    PostureResult,
)
from core.wire.policy import PolicyBundle, Resource, Rule, UserInfo, sign_bundle
from core.wire.posture import PostureReportError, decode_report, facts_for_policy, verify_report
from core.wire.signing import b64url_decode
from core.wire.telemetry import (
    BatchError,
    BatchTooLargeError,
    DecisionAck,
    DecisionBatch,
    DecisionRecord,
    verify_batch,
)
from wg_backends.errors import SpecError
from wg_backends.spec import PeerSpec, RelaySpec, TunnelSpec, validate_dns_suffix

__all__ = ["ControllerService", "PolicyEffect"]

_log = logging.getLogger(__name__)

#: decision rows are pruned to ``telemetry_max_rows`` at most this often (seconds)
PRUNE_EVERY_S = 1.0
#: how long a device record is reused for its decision batches (seconds)
TELEMETRY_DEVICE_TTL_S = 5.0


class ControllerService:
    """See the module docstring. ``clock`` returns Unix seconds (tests inject one)."""

    def __init__(
        self,
        config: ControllerConfig,
        storage: Storage,
        keys: SigningKeyRing,
        *,
        gateway: Gateway | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.storage = storage
        self.keys = keys
        self.events = EventHub()
        self.gateway = gateway
        self.clock = clock
        gw = config.gateway
        # The pool's first host is the gateway's by convention, configured or not.
        first = next(config.pool_network.hosts())
        host_prefix = "/32" if first.version == 4 else "/128"
        reserved = {f"{first}{host_prefix}"}
        if gw:
            gw_ip = ipaddress.ip_interface(gw.address).ip
            reserved.add(f"{gw_ip}{'/32' if gw_ip.version == 4 else '/128'}")
        self._reserved = frozenset(reserved)
        self._sweep_failing = False
        self._filter_failing = False
        #: the last filter script every gateway accepted, and when (service clock)
        self._filter_applied: tuple[str, float] | None = None
        #: set every wanted peer once (its keepalive too), on the first reconcile
        self._peers_forced = False
        self._identities: dict[str, tuple[str, str, list[str]]] | None = None
        #: decision-telemetry batches per device (per instance: each replica counts its own)
        self._telemetry_rate = RateLimiter(config.telemetry_batches_per_min)
        self._pruned_at = float("-inf")
        #: device records for decision batches: device id → (monotonic time, record)
        self._telemetry_devices: dict[str, tuple[float, DeviceRecord]] = {}
        #: called on the loop thread after each new batch is stored, with its rows (record
        #: ids set) and the device (the console's live feed); must not block or raise
        self.decision_listeners: list[Callable[[list[DecisionEntry], DeviceRecord], None]] = []
        #: the relays' bearer token (issue 21); read once: ``ConfigError`` here if unsafe
        self._relay_token = read_relay_token(config)
        #: the relay CA (keys_dir/relay-ca.*), made at start when relays are configured:
        #: a relay's ``client_ca_file`` must exist before any device fetches a bundle
        self._relay_ca = RelayCA.load_or_create(Path(config.keys_dir)) if config.relays else None
        #: relays already reported as left out of a tunnel spec (logged once each)
        self._relays_skipped: set[tuple[str, str]] = set()

    def now(self) -> int:
        """The service clock in whole seconds."""
        return int(self.clock())

    # policy -------------------------------------------------------------------------
    def resources(self) -> list[Resource]:
        """The stored resources as wire models."""
        return [msgspec.convert(r, Resource) for r in self.storage.list_resources()]

    def rules(self) -> list[Rule]:
        """The stored rules as wire models."""
        return [msgspec.convert(r, Rule) for r in self.storage.list_rules()]

    def policy_version(self) -> int:
        """The policy version: bumped by every change of resources, rules or groups."""
        return self.storage.policy_version()

    def put_resource(self, resource: Resource) -> None:
        """Insert/replace a resource and tell every device the policy changed."""
        self.storage.apply_policy(
            expected_version=None, put_resources={resource.id: msgspec.to_builtins(resource)}
        )
        self._policy_changed(f"resource {resource.id} updated")

    def delete_resource(self, resource_id: str) -> None:
        """Remove a resource (refused while a rule names it)."""
        users = [r.id for r in self.rules() if resource_id in r.resources]
        if users:
            raise Conflict(f"resource {resource_id!r} is used by rules {users}")
        try:
            self.storage.apply_policy(expected_version=None, delete_resources=[resource_id])
        except NotFoundError as exc:
            raise NotFound(str(exc)) from exc
        self._policy_changed(f"resource {resource_id} removed")

    def put_rule(self, rule: Rule) -> None:
        """Insert/replace a rule (its resources must exist)."""
        known = {r.id for r in self.resources()}
        missing = [r for r in rule.resources if r != "*" and r not in known]
        if missing:
            raise Unprocessable(f"rule {rule.id!r} names unknown resources {missing}")
        self.storage.apply_policy(
            expected_version=None, put_rules={rule.id: msgspec.to_builtins(rule)}
        )
        self._policy_changed(f"rule {rule.id} updated")

    def delete_rule(self, rule_id: str) -> None:
        """Remove a rule."""
        try:
            self.storage.apply_policy(expected_version=None, delete_rules=[rule_id])
        except NotFoundError as exc:
            raise NotFound(str(exc)) from exc
        self._policy_changed(f"rule {rule_id} removed")

    def set_user_groups(self, user_id: str, groups: list[str]) -> None:
        """Replace a user's admin-managed groups; devices and gateways follow at once."""
        self.storage.set_user_groups(user_id, groups)
        # Groups decide rules too: a draft reviewed before this must be reviewed again.
        self.storage.bump_policy_version()
        self._policy_changed(f"groups of {user_id} changed")

    def publish_policy(self, *, expected_version: int, after: Policy) -> PolicyDiff:
        """Make ``after`` the published policy, atomically, if the policy is still at
        ``expected_version``; returns what changed.

        ``after`` is checked as a client checks a bundle (``drafts.check_policy``:
        ``Unprocessable`` when refused). Only the differences from the stored policy are
        written, with the version bump, in one storage transaction; a version that moved
        is ``Conflict`` ("the policy changed since you started editing: review the new
        diff") and writes nothing. Then gateways are reconciled and every device told
        (``policy_changed``), so each fetches a new signed bundle. An empty diff changes
        nothing (no bump, no event).
        """
        try:
            check_policy(after)
        except DraftError as exc:
            raise Unprocessable(str(exc)) from exc
        before = Policy.of(self.resources(), self.rules())
        changes = policy_diff(before, after)
        if changes.empty:
            if self.storage.policy_version() != expected_version:
                raise Conflict(_POLICY_MOVED)
            return changes
        gone = {(c.kind, c.item_id) for c in changes.changes if c.action == "removed"}
        kept = [c for c in changes.changes if c.action != "removed"]
        try:
            self.storage.apply_policy(
                expected_version=expected_version,
                put_resources={
                    c.item_id: msgspec.to_builtins(after.resources[c.item_id])
                    for c in kept
                    if c.kind == "resource"
                },
                delete_resources=[i for k, i in sorted(gone) if k == "resource"],
                put_rules={
                    c.item_id: msgspec.to_builtins(after.rules[c.item_id])
                    for c in kept
                    if c.kind == "rule"
                },
                delete_rules=[i for k, i in sorted(gone) if k == "rule"],
            )
        except ConflictError as exc:
            raise Conflict(_POLICY_MOVED) from exc
        except NotFoundError as exc:  # only after a concurrent change, which bumps first
            raise Conflict(_POLICY_MOVED) from exc
        self._policy_changed(f"policy published: {changes.summary()}")
        return changes

    def policy_effect(self, after: Policy, *, limit: int = 500) -> list[PolicyEffect]:
        """Which active devices (with a posture report; at most ``limit``) would gain or
        lose which resources if ``after`` were published, under their last posture facts
        and their users' current groups. Nothing is stored. For the console's diff."""
        self._identities = self.storage.list_identities()
        now = self.now()
        resources, rules = list(after.resources.values()), list(after.rules.values())
        live_resources, live_rules = self.resources(), self.rules()
        users: dict[str, UserInfo] = {}
        out: list[PolicyEffect] = []
        for dev in self.storage.list_devices():
            if len(out) >= limit:
                break
            if dev.status != "active" or dev.posture_at is None:
                continue
            user = users.get(dev.user_id) or users.setdefault(
                dev.user_id, self._stored_user(dev.user_id)
            )
            before = set(self._reachable_now(dev, user, live_resources, live_rules))
            then = set(
                reachable(
                    device_id=dev.device_id,
                    user=user,
                    resources=resources,
                    rules=rules,
                    facts=dev.posture or {},
                    now=now,
                )
            )
            if before != then:
                out.append(
                    PolicyEffect(
                        user_id=dev.user_id,
                        device_id=dev.device_id,
                        device_name=dev.name,
                        gained=tuple(sorted(then - before)),
                        lost=tuple(sorted(before - then)),
                    )
                )
        return out

    def preview_bundle(
        self,
        device_id: str,
        *,
        resources: list[Resource] | None = None,
        rules: list[Rule] | None = None,
    ) -> PolicyBundle:
        """The bundle the device would get now (unsigned; no version used, no lease,
        nothing stored): for the console's what-if. ``resources``/``rules`` replace the
        published ones (a draft). The user is as the gateway filter sees them: their
        last token's identity plus the admin-managed groups. ``NotFound`` for no device.
        """
        try:
            dev = self.storage.get_device(device_id)
        except NotFoundError as exc:
            raise NotFound(f"no device {device_id!r}") from exc
        self._identities = self.storage.list_identities()  # another replica may know more
        res = self.resources() if resources is None else resources
        return self._compose_bundle(
            dev,
            self._stored_user(dev.user_id),
            res,
            self.rules() if rules is None else rules,
            version=max(1, dev.bundle_version),
        )

    def _policy_changed(self, detail: str) -> None:
        # The gateways first: a withdrawal is enforced there before any client hears of it.
        self.reconcile_gateway()
        self.events.publish("policy_changed", None, detail)

    # devices ------------------------------------------------------------------------
    def _remember(self, identity: Identity) -> bool:
        """Keep who the user is (for the gateway filter); written only when it changed
        (then True: the user's grants may have changed with their token's groups)."""
        known = self._known_identities()
        entry = (identity.subject, identity.email, sorted(set(identity.groups)))
        if known.get(identity.user_id) == entry:
            return False
        self.storage.set_identity(identity.user_id, *entry)
        known[identity.user_id] = entry
        return True

    def _known_identities(self) -> dict[str, tuple[str, str, list[str]]]:
        if self._identities is None:
            self._identities = self.storage.list_identities()
        return self._identities

    def _stored_user(self, user_id: str) -> UserInfo:
        """The user as last seen in a token, plus the admin-managed groups. A user never
        seen since this was recorded: subject = the user id, no token groups."""
        subject, email, groups = self._known_identities().get(
            user_id, (user_id, user_id if "@" in user_id else "", [])
        )
        stored = self.storage.get_user_groups(user_id) or []
        return UserInfo(subject=subject, email=email, groups=tuple(sorted({*groups, *stored})))

    def _reachable_now(
        self,
        dev: DeviceRecord,
        user: UserInfo,
        resources: list[Resource],
        rules: list[Rule],
    ) -> list[str]:
        """What the device may reach under today's rules with its last posture facts;
        nothing before its first posture report."""
        if dev.posture_at is None:
            return list(dev.reachable)
        return reachable(
            device_id=dev.device_id,
            user=user,
            resources=resources,
            rules=rules,
            facts=dev.posture or {},
            now=self.now(),
        )

    def _device_for(self, identity: Identity, device_id: str) -> DeviceRecord:
        self._remember(identity)
        try:
            dev = self.storage.get_device(device_id)
        except NotFoundError as exc:
            raise NotFound(f"no device {device_id!r}") from exc
        if dev.user_id != identity.user_id:
            # Same answer as a missing device: do not reveal other users' device ids.
            raise NotFound(f"no device {device_id!r}")
        if dev.status != "active":
            raise Forbidden(f"device {device_id!r} has been revoked")
        return dev

    def device(self, identity: Identity, device_id: str) -> DeviceRecord:
        """The caller's active device; ``NotFound``/``Forbidden`` otherwise."""
        return self._device_for(identity, device_id)

    def _telemetry_device(self, identity: Identity, device_id: str) -> DeviceRecord:
        """``_device_for`` with a short cache, for decision batches only: a database round
        trip per batch was a fifth of a replica's ingest time (bench_console). A device
        revoked here leaves the cache at once; one revoked through another replica may
        still report decisions for ``TELEMETRY_DEVICE_TTL_S`` (its tunnel, bundle and
        posture are cut as before: they never use this cache)."""
        now = time.monotonic()
        hit = self._telemetry_devices.get(device_id)
        if hit is not None and now - hit[0] < TELEMETRY_DEVICE_TTL_S:
            dev = hit[1]
            if dev.user_id == identity.user_id:
                self._remember(identity)
                return dev
        dev = self._device_for(identity, device_id)
        if len(self._telemetry_devices) >= 100_000:
            self._telemetry_devices.clear()
        self._telemetry_devices[device_id] = (now, dev)
        return dev

    def enroll(self, identity: Identity, req: EnrollRequest) -> Enrollment:
        """Register a device for the token's user; refuses a key already enrolled."""
        try:
            raw = b64url_decode(req.signing_key)
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise Unprocessable(f"signing_key is not an Ed25519 public key: {exc}") from exc
        if req.relay_key is not None:
            _relay_key_bytes(req.relay_key)
        device_id = "dev_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
        try:
            dev = self.storage.enroll_device(
                device_id=device_id,
                user_id=identity.user_id,
                name=req.name,
                platform=req.platform,
                wg_public_key=req.wg_public_key,
                signing_key=req.signing_key,
                pool=self.config.pool_network,
                reserved=self._reserved,
                now=self.now(),
                relay_key=req.relay_key,
            )
        except ConflictError as exc:
            raise Conflict(str(exc)) from exc
        except PoolExhaustedError as exc:
            raise Unavailable(str(exc)) from exc
        self._remember(identity)
        # One bundle lifetime to fetch a first bundle; after that the lease is the bundle's.
        dev = self._lease(dev, self.now() + self.config.bundle_ttl_s)
        self._gateway_add(dev)
        gw = self.config.gateway
        return Enrollment(
            device_id=dev.device_id,
            user=dev.user_id,
            address=dev.address or "",
            created_at=dev.created_at,
            gateway=GatewayInfo(public_key=gw.public_key, endpoint=gw.endpoint) if gw else None,
        )

    def set_relay_key(self, identity: Identity, device_id: str, relay_key: str) -> None:
        """Register (replace) the caller's device's relay key (issue 21): the helper's
        Ed25519 public key that the device's relay certificates are issued to.

        Ownership as for every device call (another user's or a missing device:
        ``NotFound``; revoked: ``Forbidden``); not a raw Ed25519 key: ``Unprocessable``.
        Nothing is stored on any refusal. The relays see the new key on their next poll
        of ``/v1/relay/devices`` (and drop streams authenticated with the old one).
        """
        self._device_for(identity, device_id)
        _relay_key_bytes(relay_key)
        try:
            self.storage.set_relay_key(device_id, relay_key)
        except NotFoundError as exc:  # revoked between the check and the write
            raise Forbidden(f"device {device_id!r} has been revoked") from exc

    def relay_devices(self) -> dict[str, str]:
        """``device id -> relay key`` of every active device with a relay key: the
        directory relays admit streams by (``GET /v1/relay/devices``)."""
        return self.storage.relay_devices()

    def relay_token_ok(self, presented: str) -> bool:
        """Whether ``presented`` is the relays' bearer token (constant time; always
        False when no relay token is configured)."""
        return relay_token_matches(self._relay_token, presented)

    def relay_cert(self, dev: DeviceRecord) -> str | None:
        """A fresh relay client certificate (PEM) for an active device with a relay key
        when relays are configured, else None. Issued only to the key the device
        registered, never for a revoked device."""
        ca = self._relay_ca
        if ca is None or dev.relay_key is None or dev.status != "active":
            return None
        return ca.issue(dev.device_id, _relay_key_bytes(dev.relay_key), now=self.clock())

    def revoke(self, device_id: str) -> DeviceRecord:
        """Revoke a device: address released, peer removed, event sent. Idempotent."""
        self._telemetry_devices.pop(device_id, None)
        try:
            before = self.storage.revoke_device(device_id, now=self.now())
        except NotFoundError as exc:
            raise NotFound(str(exc)) from exc
        if before.status == "active":
            self._gateway_remove(before)
            self.reconcile_gateway()
            self.events.publish("device_revoked", device_id, "revoked by an administrator")
        return self.storage.get_device(device_id)

    def list_devices(self) -> list[DeviceInfo]:
        """Every device (admin view)."""
        return [_info(d) for d in self.storage.list_devices()]

    # audit --------------------------------------------------------------------------
    def report_break_glass(self, identity: Identity, device_id: str, reason: str) -> AuditRecord:
        """Record that the user bypassed always-on on their device, and why.

        The device must be the caller's (another user's or a missing one: ``NotFound``);
        a revoked device may still report, since the record matters more then. The
        reason is stripped; empty or with control characters other than tab/newline is
        ``Unprocessable``. Not idempotent: every call is one record.
        """
        try:
            dev = self.storage.get_device(device_id)
        except NotFoundError as exc:
            raise NotFound(f"no device {device_id!r}") from exc
        if dev.user_id != identity.user_id:
            raise NotFound(f"no device {device_id!r}")
        text = reason.strip()
        if not text:
            raise Unprocessable("the break-glass reason is empty")
        if any((ord(c) < 32 and c not in "\t\n") or ord(c) == 127 for c in text):
            raise Unprocessable("the break-glass reason contains control characters")
        # Time-ordered id (nanoseconds, then randomness): records of one second keep
        # their order in listings.
        entry = AuditEntry(
            record_id=f"{time.time_ns():016x}{secrets.token_hex(4)}",
            at=self.now(),
            kind="break_glass",
            user_id=identity.user_id,
            device_id=device_id,
            detail=text,
        )
        self.storage.add_audit(entry)
        _log.warning("break-glass disconnect on %s by %s", device_id, identity.user_id)
        return _audit(entry)

    def audit(self, *, device_id: str | None = None, limit: int = 1000) -> list[AuditRecord]:
        """The newest ``limit`` audit records (of one device when given), oldest first."""
        return [_audit(e) for e in self.storage.list_audit(device_id=device_id, limit=limit)]

    # decision telemetry -------------------------------------------------------------
    def submit_decisions(self, identity: Identity, device_id: str, token: str) -> DecisionAck:
        """Verify a signed decision batch and store it once.

        In order: the device is the caller's and active (``NotFound``/``Forbidden``), the
        device's batch rate (``TooManyRequests`` with ``Retry-After``; before the costlier
        checks, so a flood is cheap to refuse), size (``PayloadTooLarge``), signature by
        the device's registered key, schema, device id and ``iat`` window
        (``Unprocessable``). A ``seq`` not above the last stored is answered as a
        duplicate and stores nothing. Nothing is stored on any refusal.
        """
        dev = self._telemetry_device(identity, device_id)
        wait = self._telemetry_rate.allow(device_id)
        if wait is not None:
            raise TooManyRequests(
                "too many decision batches from this device; slow down",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        key = Ed25519PublicKey.from_public_bytes(b64url_decode(dev.signing_key))
        try:
            batch = verify_batch(
                token,
                key,
                device_id=device_id,
                now=self.clock(),
                max_age_s=self.config.telemetry_max_age_s,
            )
        except BatchTooLargeError as exc:
            raise PayloadTooLarge(str(exc)) from exc
        except BatchError as exc:
            raise Unprocessable(f"decision batch refused: {exc}") from exc
        entries = _decision_entries(batch, dev.user_id)
        # Record ids only when someone listens (the live feed shows them).
        ids: list[int] | None = [] if self.decision_listeners else None
        if not self.storage.store_decisions(device_id, batch.seq, entries, ids=ids):
            return DecisionAck(seq=batch.seq, duplicate=True, stored=0)
        now = time.monotonic()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            # At most once a second: the cap may be passed by a second of ingest, and a
            # batch does not pay for a second transaction.
            self._pruned_at = now
            self.storage.prune_decisions(self.config.telemetry_max_rows)
        if ids is not None and entries:
            stored = [
                dataclasses.replace(e, record_id=i) for e, i in zip(entries, ids, strict=True)
            ]
            for listener in list(self.decision_listeners):
                try:
                    listener(stored, dev)
                except Exception:  # a broken listener must not fail the device's upload
                    _log.exception("decision listener failed")
        return DecisionAck(seq=batch.seq, duplicate=False, stored=len(entries))

    def decisions(
        self,
        *,
        user_id: str | None = None,
        device_id: str | None = None,
        resource: str | None = None,
        effect: str | None = None,
        limit: int = 100,
    ) -> list[DecisionRecord]:
        """The newest ``limit`` stored decisions matching the filters, newest first."""
        rows = self.storage.list_decisions(
            user_id=user_id, device_id=device_id, resource=resource, effect=effect, limit=limit
        )
        return [
            DecisionRecord(
                record_id=e.record_id,
                device_id=e.device_id,
                user=e.user_id,
                seq=e.seq,
                kind=e.kind,  # type: ignore[arg-type]
                at=e.at,
                effect=e.effect,  # type: ignore[arg-type]
                count=e.count,
                app=e.app,
                host=e.host,
                ip=e.ip,
                port=e.port,
                rule=e.rule,
                resource=e.resource,
                code=e.code,
                reason=e.reason,
                risk=e.risk,
                dropped=e.dropped,
            )
            for e in rows
        ]

    # posture ------------------------------------------------------------------------
    def issue_nonce(self, identity: Identity, device_id: str) -> NonceResponse:
        """A fresh single-use nonce for the device's next posture report."""
        self._device_for(identity, device_id)
        nonce = secrets.token_urlsafe(24)
        expires = self.now() + self.config.nonce_ttl_s
        self.storage.add_nonce(nonce, device_id, expires)
        return NonceResponse(nonce=nonce, expires_at=expires)

    def submit_posture(self, identity: Identity, device_id: str, token: str) -> PostureResult:
        """Verify a signed report (signature, device, single-use nonce, age) and store it."""
        dev = self._device_for(identity, device_id)
        key = Ed25519PublicKey.from_public_bytes(b64url_decode(dev.signing_key))
        # The nonce is read from the (not yet trusted) payload only to look it up; it is
        # consumed before verification so a replay with any signature fails the same way.
        try:
            claimed = decode_report(b64url_decode(token.split(".")[1])).nonce
        except (PostureReportError, ValueError, IndexError) as exc:
            raise Unprocessable(f"posture report refused: {exc}") from exc
        if not self.storage.take_nonce(claimed, device_id, self.now()):
            raise Unprocessable("posture report nonce is unknown, used or expired (replay?)")
        try:
            report = verify_report(
                token,
                key,
                device_id=device_id,
                expected_nonce=claimed,
                now=self.clock(),
                max_age_s=self.config.posture_max_age_s,
            )
        except PostureReportError as exc:
            raise Unprocessable(f"posture report refused: {exc}") from exc
        facts = facts_for_policy(report)
        reachable_ids = reachable(
            device_id=device_id,
            user=self._user_info(identity),
            resources=self.resources(),
            rules=self.rules(),
            facts=facts,
            now=self.now(),
        )
        self.storage.record_posture(
            device_id, posture=facts, reachable=reachable_ids, now=self.now()
        )
        dev = self.storage.get_device(device_id)
        if reachable_ids or self._filtering():
            self._gateway_add(dev)  # with a filter, its grants (maybe none) are the fence
        else:
            self._gateway_remove(dev)
        self.reconcile_gateway()  # the filter follows the new facts
        return PostureResult(
            accepted=True,
            reachable=reachable_ids,
            checked_at=self.now(),
            bundle_version=dev.bundle_version,
        )

    def _user_info(self, identity: Identity) -> UserInfo:
        return UserInfo(
            subject=identity.subject, email=identity.email, groups=self._groups(identity)
        )

    def _groups(self, identity: Identity) -> tuple[str, ...]:
        stored = self.storage.get_user_groups(identity.user_id)
        return tuple(sorted(set(identity.groups) | set(stored or ())))

    # bundle -------------------------------------------------------------------------
    def bundle(self, identity: Identity, device_id: str) -> BundleResponse:
        """Build and sign a bundle for the device with the next version."""
        dev = self._device_for(identity, device_id)
        resources = self.resources()
        rules = self.rules()
        user = self._user_info(identity)
        # Today's rules, not those of its last posture report: a grant routes at once.
        now_reachable = self._reachable_now(dev, user, resources, rules)
        if now_reachable != list(dev.reachable):
            self.storage.set_reachable(device_id, now_reachable)
            dev = dataclasses.replace(dev, reachable=tuple(now_reachable))
            self.reconcile_gateway()  # e.g. new token groups: the gateway follows at once
        version = self.storage.next_bundle_version(device_id)
        now = self.now()
        bundle = self._compose_bundle(dev, user, resources, rules, version=version)
        kid, key = self.keys.current
        token = sign_bundle(bundle, key, kid=kid)
        lapsed = dev.lease_until is not None and now >= dev.lease_until
        dev = self._lease(dev, bundle.expires_at)
        if lapsed and (self._filtering() or not _posture_failed(dev)):
            self._gateway_add(dev)  # it refreshed: back on the gateway at once
            self.reconcile_gateway()  # and its grants with it
        return BundleResponse(
            bundle=token,
            version=version,
            expires_at=bundle.expires_at,
            relay_cert=self.relay_cert(dev),
        )

    def _compose_bundle(
        self,
        dev: DeviceRecord,
        user: UserInfo,
        resources: list[Resource],
        rules: list[Rule],
        *,
        version: int,
    ) -> PolicyBundle:
        """The unsigned bundle for ``dev`` (shared by ``bundle`` and ``preview_bundle``,
        so the console's what-if sees exactly what the device would get)."""
        now = self.now()
        return PolicyBundle(
            version=version,
            device_id=dev.device_id,
            issued_at=now,
            expires_at=now + self.config.bundle_ttl_s,
            user=user,
            resources=tuple(resources),
            rules=tuple(rules),
            tunnel=self._tunnel(dev, resources),
            gateways=self._failover_tunnels(dev, resources),
        )

    def _lease(self, dev: DeviceRecord, until: int) -> DeviceRecord:
        self.storage.set_lease(dev.device_id, until)
        return dataclasses.replace(dev, lease_until=until)

    def _failover_tunnels(
        self, dev: DeviceRecord, resources: list[Resource]
    ) -> tuple[TunnelSpec, ...]:
        # The first gateway is the bundle's ``tunnel``; the others are failover choices.
        specs = (self._tunnel(dev, resources, gw) for gw in self.config.all_gateways[1:])
        return tuple(s for s in specs if s is not None)

    def _tunnel(
        self, dev: DeviceRecord, resources: list[Resource], gw: GatewayConfig | None = None
    ) -> TunnelSpec | None:
        gw = gw or (self.config.all_gateways or (None,))[0]
        if gw is None or dev.address is None:
            return None
        gw_host = str(ipaddress.ip_interface(gw.address).ip)
        prefix = "/32" if ":" not in gw_host else "/128"
        # The tunnel's DNS servers are reached through the tunnel (the client resolves
        # the company's names itself, from the decider's marked sockets).
        dns_hosts = {f"{a}/{128 if ':' in a else 32}" for a in self.config.tunnel_dns}
        allowed = sorted({gw_host + prefix, *dns_hosts, *allowed_ips(resources, dev.reachable)})
        return TunnelSpec(
            interface=self.config.tunnel_interface,
            addresses=(dev.address,),
            peers=(
                PeerSpec(
                    public_key=gw.public_key,
                    endpoint=gw.endpoint,
                    allowed_ips=tuple(allowed),
                    persistent_keepalive=gw.keepalive_s,
                ),
            ),
            dns=self.config.tunnel_dns,
            dns_suffixes=self.dns_suffixes(resources) if self.config.tunnel_dns else (),
            mtu=self.config.tunnel_mtu,
            relays=self._relays_for(gw, allowed),
        )

    def _relays_for(self, gw: GatewayConfig, allowed: list[str]) -> tuple[RelaySpec, ...]:
        """The relays serving ``gw`` (config order) that the tunnel can use: a relay
        whose address the tunnel's routes cover would be reached through the tunnel it
        carries, so it is left out (logged once) rather than failing the bundle."""
        nets = [ipaddress.ip_network(a, strict=False) for a in allowed]
        out: list[RelaySpec] = []
        for relay in self.config.relays:
            if not relay.serves(gw.endpoint):
                continue
            spec = relay.spec()
            host, _port = spec.address()
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ip = None  # a host name: the client checks what it resolves to
            covering = next((n for n in nets if ip is not None and ip in n), None)
            if covering is not None:
                if (relay.name, str(covering)) not in self._relays_skipped:
                    self._relays_skipped.add((relay.name, str(covering)))
                    _log.warning(
                        "relay %s (%s) is inside the tunnel's route %s to gateway %s: "
                        "left out of that tunnel spec",
                        relay.name,
                        ip,
                        covering,
                        gw.endpoint,
                    )
                continue
            out.append(spec)
        return tuple(out)

    def dns_suffixes(self, resources: list[Resource]) -> tuple[str, ...]:
        """The split-DNS suffixes of the tunnel: ``tunnel_dns_suffixes`` when configured,
        else the zones of the resources' host names (``wiki.corp.example`` and
        ``*.corp.example`` → ``corp.example``; a name whose zone is a top-level domain,
        ``payroll.internal``, is its own suffix), sorted, at most 32."""
        if self.config.tunnel_dns_suffixes is not None:
            return self.config.tunnel_dns_suffixes
        return derive_dns_suffixes(resources)

    # gateway ------------------------------------------------------------------------
    def reconcile_gateway(self) -> None:
        """Make the gateways' peers and filters match the stored state. Idempotent.

        Active devices that have not failed posture and whose lease (last bundle's
        expiry) has not passed are peers (allowed IP: their address); every other peer
        of the interface is removed. Each peer's reachable resources are recomputed
        under today's rules from its last posture facts (stored when they changed, so
        a device whose every grant was withdrawn leaves the gateway), and the filter is
        re-applied when the grants changed, peers had to be restored (a re-created
        interface), the last attempt failed, or ``_FILTER_REFRESH_S`` passed. Called at
        start, after every change and every second by ``run_expiry``. A device without
        a lease yet gets one bundle lifetime. ``wg``/``nft`` failures are logged, never
        raised (the API keeps serving); the next call retries.
        """
        if self.gateway is None:
            return
        now = self.now()
        try:
            resources = self.resources()
            rules = self.rules()
        except (msgspec.ValidationError, ValueError):
            # A row no admin API call could have written: leave the gateways as they are.
            if not self._sweep_failing:
                _log.exception("gateway: the stored policy is invalid; gateways left as they are")
            self._sweep_failing = True
            return
        # Re-read: another instance sharing the database may have seen the user since.
        self._identities = self.storage.list_identities()
        users: dict[str, UserInfo] = {}
        want: dict[str, str] = {}
        grants: dict[str, list[str]] = {}
        expired: dict[str, str] = {}
        for d in self.storage.list_devices():
            address = d.address
            if d.status != "active" or not address:
                continue
            if d.posture_at is not None:
                user = users.get(d.user_id) or users.setdefault(
                    d.user_id, self._stored_user(d.user_id)
                )
                ids = self._reachable_now(d, user, resources, rules)
                if ids != list(d.reachable):
                    self.storage.set_reachable(d.device_id, ids)
                    d = dataclasses.replace(d, reachable=tuple(ids))
            if _posture_failed(d) and not self._filtering():
                # Without a filter the only fence is the peer itself. With one, the peer
                # stays (its grants are empty): access that comes back works at once over
                # the same WireGuard session, and the client's tunnel stays "connected".
                continue
            if d.lease_until is None:
                d = self._lease(d, now + self.config.bundle_ttl_s)
            if d.lease_until is not None and now >= d.lease_until:
                expired[d.wg_public_key] = d.device_id
            else:
                want[d.wg_public_key] = address
                grants[address] = allowed_ips(resources, d.reachable)
        restored = False
        try:
            have = self.gateway.peers()
            for key in have.keys() - want.keys():
                self.gateway.remove_peer(key)
                if key in expired:
                    _log.info(
                        "gateway: %s has not refreshed its expired policy; peer removed",
                        expired[key],
                    )
            for key, address in want.items():
                if have.get(key) != [address] or not self._peers_forced:
                    restored = True  # a lost peer: the filter may be gone with it
                    self.gateway.set_peer(key, [str(address)])
            self._peers_forced = True
        except GatewayError:
            if not self._sweep_failing:
                _log.exception("gateway: reconcile failed")
            self._sweep_failing = True
        else:
            self._sweep_failing = False
        self._apply_filter(grants, force=restored)

    def _filtering(self) -> bool:
        """Whether every gateway filters per device (then a peer with no grants stays)."""
        gateways = self.config.all_gateways
        return bool(gateways) and all(g.filter for g in gateways)

    def _always_open(self) -> list[str]:
        """Destinations every device may reach: the gateways' tunnel addresses (the
        client's probe) and the tunnel's DNS servers."""
        out = [str(ipaddress.ip_interface(g.address).ip) for g in self.config.all_gateways]
        return out + list(self.config.tunnel_dns)

    def _apply_filter(self, grants: dict[str, list[str]], *, force: bool) -> None:
        if self.gateway is None:
            return
        try:  # validated before any gateway is touched; also what "unchanged" compares
            wanted = render_filter("x", grants, self._always_open())
        except FilterError:
            _log.exception("gateway: the grants are invalid; the current filter stays")
            return
        last = self._filter_applied
        fresh = last is not None and self.clock() - last[1] < _FILTER_REFRESH_S
        if last is not None and last[0] == wanted and fresh and not force:
            return
        try:
            self.gateway.apply_filter(grants, self._always_open())
        except (GatewayError, FilterError):
            if not self._filter_failing:
                _log.exception("gateway: applying the filter failed; retrying every second")
            self._filter_failing = True
            self._filter_applied = None
        else:
            if self._filter_failing:
                _log.warning("gateway: filter applied again")
            self._filter_failing = False
            self._filter_applied = (wanted, self.clock())

    async def run_expiry(self, interval_s: float = 1.0) -> None:
        """Reconcile the gateway every ``interval_s`` seconds until cancelled, so an
        expired device's peer goes within seconds without any call from the device."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.reconcile_gateway()
            except Exception:  # the sweep must outlive any one bad tick (storage down)
                _log.exception("gateway: reconcile tick failed")

    def _gateway_add(self, dev: DeviceRecord) -> None:
        if self.gateway is None or dev.address is None or dev.status != "active":
            return
        if dev.lease_until is not None and self.now() >= dev.lease_until:
            return  # its policy has expired: back only after it fetches a new bundle
        try:
            self.gateway.set_peer(dev.wg_public_key, [dev.address])
        except GatewayError:
            _log.exception("gateway: could not add peer for %s", dev.device_id)

    def _gateway_remove(self, dev: DeviceRecord) -> None:
        if self.gateway is None:
            return
        try:
            self.gateway.remove_peer(dev.wg_public_key)
        except GatewayError:
            _log.exception("gateway: could not remove peer for %s", dev.device_id)


#: Why a publish over a newer policy is refused (the console shows it as is).
_POLICY_MOVED = "the policy changed since you started editing: review the new diff"

#: Re-apply an unchanged filter this often, so a gateway that lost it converges.
_FILTER_REFRESH_S = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyEffect:
    """What publishing a policy would change for one device (``policy_effect``)."""

    user_id: str
    device_id: str
    device_name: str
    gained: tuple[str, ...]
    lost: tuple[str, ...]


def derive_dns_suffixes(resources: list[Resource]) -> tuple[str, ...]:
    """The zones of the resources' DNS host names (see ``ControllerService.dns_suffixes``);
    names that would not be valid suffixes are skipped."""
    out: set[str] = set()
    for resource in resources:
        for host in resource.hosts:
            name = host.removeprefix("*.").rstrip(".").lower()
            if host == "*" or not name or _is_ip(name):
                continue
            zone = name if host.startswith("*.") else name.partition(".")[2]
            if zone.count(".") < 1:
                zone = name  # a TLD would send all of its names into the tunnel
            try:
                out.add(validate_dns_suffix(zone))
            except SpecError:
                continue
    # A suffix under another one adds nothing (corp.example covers eu.corp.example).
    kept = sorted(s for s in out if not any(s.endswith("." + o) for o in out))
    return tuple(kept[:32])


def _relay_key_bytes(relay_key: str) -> bytes:
    """The 32 raw bytes of a base64url Ed25519 public key; ``Unprocessable`` if not one."""
    try:
        raw = b64url_decode(relay_key)
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise Unprocessable(f"relay_key is not an Ed25519 public key: {exc}") from exc
    return raw


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _posture_failed(d: DeviceRecord) -> bool:
    """Its last posture report left nothing reachable (the peer stays off)."""
    return bool(d.posture_at) and not d.reachable


def _info(d: DeviceRecord) -> DeviceInfo:
    return DeviceInfo(
        device_id=d.device_id,
        user=d.user_id,
        name=d.name,
        platform=d.platform,  # type: ignore[arg-type]
        wg_public_key=d.wg_public_key,
        address=d.address,
        status=d.status,  # type: ignore[arg-type]
        created_at=d.created_at,
        posture_at=d.posture_at,
        reachable=list(d.reachable),
    )


def _decision_entries(batch: DecisionBatch, user_id: str) -> list[DecisionEntry]:
    """The rows of a verified batch; the batch's ``dropped`` rides on its first row."""
    out = [
        DecisionEntry(
            device_id=batch.device_id,
            user_id=user_id,
            seq=batch.seq,
            kind="event",
            at=e.at,
            effect=e.effect,
            app=e.app,
            host=e.host,
            ip=e.ip,
            port=e.port,
            rule=e.rule,
            resource=e.resource,
            code=e.code,
            reason=e.reason,
            risk=e.risk,
        )
        for e in batch.events
    ]
    out += [
        DecisionEntry(
            device_id=batch.device_id,
            user_id=user_id,
            seq=batch.seq,
            kind="count",
            at=float(c.minute),
            effect=c.effect,
            count=c.count,
            resource=c.resource,
        )
        for c in batch.counts
    ]
    if out and batch.dropped:
        out[0] = dataclasses.replace(out[0], dropped=batch.dropped)
    return out


def _audit(e: AuditEntry) -> AuditRecord:
    return AuditRecord(
        record_id=e.record_id,
        at=e.at,
        kind=e.kind,  # type: ignore[arg-type]
        user=e.user_id,
        device_id=e.device_id,
        reason=e.detail,
    )
