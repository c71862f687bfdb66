"""``PolicyEngine``: the ``Decider`` the proxy calls on every connection.

Holds the compiled current bundle, the device's facts and a ``RiskTracker``; answers
``decide(request)`` in microseconds, deny by default, never raising. Recent decisions
are kept in an LRU keyed by (app, destination, risk score, hour); the LRU is emptied
when the bundle or the facts change, so a posture change takes effect on the next
connection. ``decide`` feeds the risk tracker (behavioural signals); ``explain`` does
not (CLI/UI "why?"). Not thread-safe: call from one thread (the engine's event loop).

Facts seen by conditions: the ones given to :meth:`PolicyEngine.set_facts` (``posture.*``
from ``core.wire.posture.facts_for_policy``, plus any extra), and the engine's own:
``user.subject``, ``user.email``, ``user.groups`` (from the bundle), ``time.hour``
(0–23) and ``time.weekday`` (0 = Monday … 6 = Sunday) in the device's local time, and
``risk`` (0–100).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from core.policy.api import AccessRequest, AppIdentity, Decision, Effect, Unmet
from core.policy.compiled import CompiledPolicy, Outcome, compile_bundle, evaluate
from core.policy.conditions import UNKNOWN_VALUE, Facts
from core.policy.explain import plain_reason, unmet_for
from core.policy.risk import RiskTracker
from core.policy.store import PolicyStore
from core.wire.policy import PolicyBundle, Resource

__all__ = [
    "PolicyEngine",
    "Reachability",
    "allowed_networks",
    "base_facts",
    "reachable_resources",
]

_log = logging.getLogger(__name__)
_NO_MATCH = Outcome(None, None, (), frozenset())


def base_facts(
    bundle: PolicyBundle, facts: Mapping[str, object], now: float, risk: int
) -> dict[str, object]:
    """The full fact mapping a decision sees: ``facts`` plus user, time and risk facts."""
    lt = time.localtime(now)
    merged: dict[str, object] = dict(facts)
    merged["user.subject"] = bundle.user.subject
    merged["user.email"] = bundle.user.email or UNKNOWN_VALUE
    merged["user.groups"] = list(bundle.user.groups)
    merged["time.hour"] = lt.tm_hour
    merged["time.weekday"] = lt.tm_wday
    merged["risk"] = risk
    return merged


def _confidence(needed: frozenset[str], facts: Facts, stale: frozenset[str]) -> float:
    if not needed:
        return 1.0
    good = 0
    for name in needed:
        v = facts.get(name, UNKNOWN_VALUE)
        if v is not UNKNOWN_VALUE and v is not None and name not in stale:
            good += 1
    return round(good / len(needed), 3)


def _app_label(app: AppIdentity | None) -> str:
    if app is None:
        return "any app"
    return app.name or app.exe or "an unidentified app"


def _resource_label(res: Resource) -> str:
    return res.name or res.id


def _decision(
    cp: CompiledPolicy,
    out: Outcome,
    request_app: AppIdentity | None,
    dest: AccessRequest | str,
    matched: list[int],
    facts: Facts,
    risk: int,
    confidence: float,
    signals: tuple[str, ...],
) -> Decision:
    rule = out.rule
    res_idx = out.resource if out.resource is not None else (matched[0] if matched else None)
    resource = cp.resources[res_idx] if res_idx is not None else None
    res_id = resource.id if resource is not None else None
    if rule is not None and not rule.deny:
        desc = f": {rule.rule.description}" if rule.rule.description else ""
        return Decision(
            Effect.ALLOW,
            rule.rule.id,
            f"allowed by rule {rule.rule.id}{desc}",
            res_id,
            (),
            risk,
            confidence,
            signals,
        )
    unmet = unmet_for(out.failed, rule, facts, risk)
    if rule is not None:
        desc = f": {rule.rule.description}" if rule.rule.description else ""
        reason = f"denied by rule {rule.rule.id}{desc}"
        return Decision(Effect.DENY, rule.rule.id, reason, res_id, unmet, risk, confidence, signals)
    if resource is None:
        if isinstance(dest, AccessRequest):
            dest = f"{dest.host}:{dest.port}/{dest.protocol}"
        reason = f"no resource in the policy covers {dest}"
    elif unmet:
        reason = f"{_resource_label(resource)} {plain_reason(unmet)}"
    else:
        reason = f"no rule allows {_app_label(request_app)} to reach {_resource_label(resource)}"
    return Decision(Effect.DENY, None, reason, res_id, unmet, risk, confidence, signals)


class PolicyEngine:
    """Decides connections against the current bundle. Implements ``Decider``.

    Give it a ``PolicyStore`` to follow (it subscribes and recompiles on every change)
    or call :meth:`load` directly. ``clock`` returns unix seconds. ``record`` makes
    ``decide`` feed the risk tracker. Thread-safe: the proxy decides on its own thread
    while the engine loads bundles and facts on the UI's.
    """

    def __init__(
        self,
        store: PolicyStore | None = None,
        *,
        tracker: RiskTracker | None = None,
        clock: Callable[[], float] = time.time,
        record: bool = True,
        cache_size: int = 4096,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.tracker = tracker or RiskTracker(clock=clock)
        self.record = record
        self._cache: OrderedDict[tuple[object, ...], Decision] = OrderedDict()
        self._cache_size = cache_size
        self._conf_cache: dict[frozenset[str], float] = {}
        self._allows: dict[tuple[object, ...], Decision] = {}
        self._compiled: CompiledPolicy | None = None
        self._facts: dict[str, object] = {}
        self._stale: frozenset[str] = frozenset()
        self._merged: dict[str, object] = {}
        self._hour_until = 0.0
        self._hour_key = (0, 0)
        self._required: tuple[CompiledPolicy, frozenset[str]] | None = None
        self.store = store
        if store is not None:
            store.subscribe(self.load)
            self.load(store.held)

    # -- inputs ------------------------------------------------------------------------

    @property
    def bundle(self) -> PolicyBundle | None:
        """The bundle in use (possibly expired: decisions then deny)."""
        return self._compiled.bundle if self._compiled is not None else None

    def load(self, bundle: PolicyBundle | None) -> None:
        """Use ``bundle`` (already verified) from now on; None denies everything.

        Compiles it (≈ 20 ms for 10,000 rules), re-weights risk, empties the LRU.
        Raises ``ValueError`` only for a bundle that skipped ``decode_bundle``.
        """
        compiled = compile_bundle(bundle) if bundle is not None else None  # outside the lock
        with self._lock:
            self._compiled = compiled
            if bundle is not None:
                self.tracker.configure(bundle.risk)
            self._rebuild()

    def set_facts(self, facts: Mapping[str, object], *, stale: Iterable[str] = ()) -> None:
        """Replace the device facts (``posture.*`` …). A value ``UNKNOWN_VALUE`` (or an
        absent name) is unknown; names in ``stale`` are known but old (lower confidence).
        Empties the LRU and updates posture risk. Idempotent."""
        with self._lock:
            self._set_facts(dict(facts), frozenset(stale))

    def update_facts(self, changes: Mapping[str, object]) -> None:
        """Merge ``changes`` into the facts (a posture diff); see :meth:`set_facts`."""
        with self._lock:
            self._set_facts({**self._facts, **changes}, self._stale - set(changes))

    def _set_facts(self, facts: dict[str, object], stale: frozenset[str]) -> None:
        self._facts = facts
        self._stale = stale
        self.tracker.set_posture(facts)
        self._rebuild()

    def _rebuild(self) -> None:
        self._cache.clear()
        self._conf_cache.clear()
        self._allows.clear()
        self._hour_until = 0.0
        cp = self._compiled
        if cp is not None:
            self._merged = base_facts(cp.bundle, self._facts, self._clock(), 0)

    # -- decisions ---------------------------------------------------------------------

    def decide(self, request: AccessRequest) -> Decision:
        """Decide ``request`` (cached when possible) and feed the risk tracker.

        Never raises: an internal error is a deny naming it. Microseconds.
        """
        with self._lock:
            try:
                now = self._clock()
                decision = self._decide(request, now, use_cache=True)
                if self.record:
                    self.tracker.observe(request, decision, now)
                return decision
            except Exception as exc:
                _log.exception("policy evaluation failed")
                return Decision(
                    Effect.DENY, None, f"internal policy error ({type(exc).__name__}); denied"
                )

    def explain(self, request: AccessRequest) -> Decision:
        """Decide without the cache and without feeding risk (``policy explain``).
        Never raises."""
        with self._lock:
            try:
                return self._decide(request, self._clock(), use_cache=False)
            except Exception as exc:
                _log.exception("policy evaluation failed")
                return Decision(
                    Effect.DENY, None, f"internal policy error ({type(exc).__name__}); denied"
                )

    def _decide(self, request: AccessRequest, now: float, *, use_cache: bool) -> Decision:
        cp = self._compiled
        if cp is None:
            return Decision(Effect.DENY, None, "no valid policy: sign in and connect first")
        if now >= cp.expires_at:
            return Decision(
                Effect.DENY, None, "the policy has expired: reconnect to the controller"
            )
        risk = int(self.tracker.score(now) + 0.5)
        if now >= self._hour_until:
            lt = time.localtime(now)
            self._hour_key = (lt.tm_hour, lt.tm_wday)
            self._merged["time.hour"], self._merged["time.weekday"] = self._hour_key
            self._hour_until = now + 3600 - (lt.tm_min * 60 + lt.tm_sec)
        app = request.app
        cache = self._cache
        if use_cache:
            key = (
                app.exe,
                app.name,
                app.sha256,
                request.host,
                request.port,
                request.protocol,
                request.addresses,
                risk,
                self._hour_key,
            )
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return hit
        facts = self._merged
        facts["risk"] = risk
        matched = cp.match(request.host, request.port, request.protocol, request.addresses)
        out = evaluate(cp.rules_for(matched), app, facts, risk) if matched else _NO_MATCH
        signals = self._signals(now) if risk else ()
        confidence = self._confidence(out.needed, facts)
        rule = out.rule
        if rule is not None and not rule.deny:
            # Allows are the hot path: one shared Decision per (rule, resource, risk...).
            memo_key = (rule.order[2], out.resource, risk, confidence, signals)
            decision = self._allows.get(memo_key)
            if decision is None:
                decision = self._allows[memo_key] = _decision(
                    cp, out, app, request, matched, facts, risk, confidence, signals
                )
        else:
            decision = _decision(cp, out, app, request, matched, facts, risk, confidence, signals)
        if use_cache:
            cache[key] = decision
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return decision

    def _confidence(self, needed: frozenset[str], facts: Facts) -> float:
        # Facts only change in set_facts (which empties this memo); time and risk facts
        # are always known, so the share for a given set of names is stable until then.
        conf = self._conf_cache.get(needed)
        if conf is None:
            conf = self._conf_cache[needed] = _confidence(needed, facts, self._stale)
        return conf

    def _signals(self, now: float) -> tuple[str, ...]:
        return self.tracker.active(now)

    def required_facts(self) -> frozenset[str] | None:
        """The ``posture.*`` fact names any rule of the current bundle reads (in its
        conditions or profiles), without the prefix: what the posture view calls "required
        by your policy". None without a bundle. Compiles every rule once per bundle."""
        with self._lock:
            cp = self._compiled
            if cp is None:
                return None
            if self._required is None or self._required[0] is not cp:
                names: set[str] = set()
                for pos in range(len(cp.bundle.rules)):
                    names.update(cp.rule(pos).facts)
                required = frozenset(
                    n.removeprefix("posture.") for n in names if n.startswith("posture.")
                )
                self._required = (cp, required)
            return self._required[1]

    def reachable(self, app: AppIdentity | None = None) -> tuple[Reachability, ...]:
        """``reachable_resources`` for the current bundle, facts and risk (status view)."""
        with self._lock:
            b = self.bundle
            if b is None:
                return ()
            now = self._clock()
            return reachable_resources(
                b, self._facts, app=app, now=now, risk=int(self.tracker.score(now) + 0.5)
            )


@dataclass(frozen=True, slots=True)
class Reachability:
    """Whether a resource may be reached now, by which rule, or what is missing."""

    resource: Resource
    allowed: bool
    rule_id: str | None
    reason: str
    unmet: tuple[Unmet, ...]


def reachable_resources(
    bundle: PolicyBundle | CompiledPolicy,
    facts: Mapping[str, object],
    *,
    app: AppIdentity | None = None,
    now: float | None = None,
    risk: int = 0,
) -> tuple[Reachability, ...]:
    """For each resource of ``bundle``: may this device reach it with these ``facts``?

    ``facts`` are the device facts (``posture.*``, as from ``facts_for_policy``); user,
    time (at ``now``, default the current time) and ``risk`` facts are added. ``app``
    None asks "for some app": app-specific allows count, app-specific denies do not.
    The controller uses it to narrow a gateway's allowed IPs (see
    :func:`allowed_networks`) and to show status. Pure; any thread; never raises for a
    valid bundle.
    """
    cp = bundle if isinstance(bundle, CompiledPolicy) else compile_bundle(bundle)
    now = time.time() if now is None else now
    merged = base_facts(cp.bundle, facts, now, risk)
    out: list[Reachability] = []
    for i, res in enumerate(cp.resources):
        rules = cp.rules_for([i])
        outcome = evaluate(rules, app, merged, risk)
        d = _decision(cp, outcome, app, res.id, [i], merged, risk, 1.0, ())
        out.append(Reachability(res, d.allowed, d.rule_id, d.reason, d.unmet))
    return tuple(out)


def allowed_networks(
    reach: Iterable[Reachability],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of the reachable resources: their CIDRs and IP-literal hosts (as
    /32 or /128), collapsed. Names (and wildcards) are not included: resolve them
    separately if the gateway filters by IP."""
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for r in reach:
        if not r.allowed:
            continue
        nets.extend(ipaddress.ip_network(c) for c in r.resource.cidrs)
        for host in r.resource.hosts:
            try:
                nets.append(ipaddress.ip_network(host))
            except ValueError:
                continue
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))
