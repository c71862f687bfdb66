"""Policy engine benchmark: decision latency at 10 / 1,000 / 10,000 rules vs cedarpy.

Run: ``.venv/bin/python -m tests.bench.bench_policy``  (about a minute; prints a table)

Bundles are generated like real ones: per resource an exact host, a team wildcard
domain and a /24, a couple of ports; baseline allow rules (priority 0) requiring a
group, disk encryption, a firewall and a screen-lock timeout; every 10th resource also
gets an explicit deny (priority 10) for contractors or on high risk. Most rules name one
of three shared posture profiles (``profiles``); every 10th carries its own terms.
Because every deny sits above every allow, Cedar's forbid-overrides semantics is the
same, so cedarpy evaluates an equivalent policy set (translated by
``tests/core/policy/cedar.py``) on the
same requests in the same run; both answers are compared.

Measured (median over requests, each timed in a tight batch):
  * decision  — ``PolicyEngine.explain`` (no cache, no risk recording: a cold decision)
  * cached    — ``PolicyEngine.decide`` on a warm LRU (``record=False``)
  * proxy     — ``PolicyEngine.decide`` warm, recording into the RiskTracker (the proxy path)
  * cedar     — ``cedarpy.is_authorized`` with a pre-parsed PolicySet
  * verify+load — ``verify_bundle`` + ``PolicyEngine.load`` of the signed bundle
Targets (issue 6): decision ≤ 10 µs and ≤ 2× from 10 to 10,000 rules; cached ≤ 2 µs;
verify+load(10k) ≤ 100 ms; ≥ 10× cedar at 10 rules and ≥ 100× at 1,000.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

import cedarpy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.policy.api import AccessRequest, AppIdentity
from core.policy.compiled import compile_bundle
from core.policy.engine import PolicyEngine
from core.policy.verify import verify_bundle
from core.wire.policy import (
    BUNDLE_TYP,
    AllOf,
    Condition,
    FactCondition,
    PolicyBundle,
    RefOf,
    Resource,
    Rule,
    UserInfo,
    decode_bundle,
    encode_bundle,
    sign_bundle,
)
from core.wire.signing import verify
from tests.core.policy import cedar

ROOT = Path(__file__).resolve().parents[2]
SIZES = (10, 1_000, 10_000)
N_REQUESTS = 60
BATCH = 300
CEDAR_BATCH = {10: 200, 1_000: 20, 10_000: 3}
GROUPS = ("eng", "ops", "sales", "finance", "support", "contractors")
FACTS = {
    "posture.disk.encrypted": True,
    "posture.firewall.enabled": True,
    "posture.screen_lock.timeout_s": 300,
    "posture.os.name": "linux",
}
NOW = time.time()
PROFILES: dict[str, Condition] = {
    "managed": AllOf(
        of=(
            FactCondition(fact="posture.disk.encrypted", op="eq", value=True),
            FactCondition(fact="posture.firewall.enabled", op="eq", value=True),
            FactCondition(fact="posture.screen_lock.timeout_s", op="lte", value=900),
        )
    ),
    "basic": FactCondition(fact="posture.firewall.enabled", op="eq", value=True),
    "desktop-os": AllOf(
        of=(
            FactCondition(fact="posture.os.name", op="in", value=["linux", "macos", "windows"]),
            FactCondition(fact="posture.disk.encrypted", op="eq", value=True),
        )
    ),
}
PROFILE_NAMES = sorted(PROFILES)


def make_bundle(n_rules: int, rng: random.Random) -> PolicyBundle:
    n_res = max(1, n_rules * 9 // 10)
    resources = []
    for i in range(n_res):
        team = f"team{i % 97}"
        resources.append(
            Resource(
                id=f"res{i}",
                name=f"Service {i}",
                hosts=(f"svc{i}.corp.example", f"*.app{i}.{team}.corp.example"),
                cidrs=(f"10.{i // 256 % 256}.{i % 256}.0/24",),
                ports=(443, 8000 + i % 100),
            )
        )
    rules = []
    for i in range(n_res):
        group = FactCondition(fact="user.groups", op="in", value=[rng.choice(GROUPS[:5]), "eng"])
        if i % 10 == 9:  # some rules carry their own posture terms
            posture: Condition = AllOf(
                of=(
                    FactCondition(fact="posture.disk.encrypted", op="eq", value=True),
                    FactCondition(fact="posture.screen_lock.timeout_s", op="lte", value=900),
                )
            )
        else:  # most name a shared posture profile, as IT writes them
            posture = RefOf(profile=PROFILE_NAMES[i % len(PROFILE_NAMES)])
        rules.append(
            Rule(
                id=f"allow{i}",
                effect="allow",
                resources=(f"res{i}",),
                priority=0,
                conditions=AllOf(of=(group, posture)),
                max_risk=70,
            )
        )
    i = 0
    while len(rules) < n_rules:
        res = f"res{(i * 10) % n_res}"
        cond = (
            FactCondition(fact="user.groups", op="eq", value="contractors")
            if i % 2 == 0
            else FactCondition(fact="risk", op="gte", value=80)
        )
        rules.append(
            Rule(id=f"deny{i}", effect="deny", resources=(res,), priority=10, conditions=cond)
        )
        i += 1
    return PolicyBundle(
        version=1,
        device_id="bench-device",
        issued_at=int(NOW) - 60,
        expires_at=int(NOW) + 86_400,
        user=UserInfo(subject="alice", email="alice@corp.example", groups=("eng", "staff")),
        resources=tuple(resources),
        rules=tuple(rules),
        profiles=PROFILES,
    )


def make_requests(bundle: PolicyBundle, rng: random.Random) -> list[AccessRequest]:
    app = AppIdentity(pid=1, uid=1000, exe="/usr/bin/git", name="git")
    n_res = len(bundle.resources)
    out = []
    for k in range(N_REQUESTS):
        i = rng.randrange(n_res)
        kind = k % 4
        if kind == 0:
            host, port = f"svc{i}.corp.example", 443
        elif kind == 1:
            host, port = f"build.app{i}.team{i % 97}.corp.example", 8000 + i % 100
        elif kind == 2:
            host, port = f"10.{i // 256 % 256}.{i % 256}.{rng.randrange(1, 255)}", 443
        else:
            host, port = f"unknown{i}.example.org", 443  # default deny
        out.append(AccessRequest(app=app, host=host, port=port))
    return out


def per_call_us(fn, arg, batch: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter_ns()
    for _ in range(batch):
        fn(arg)
    return (time.perf_counter_ns() - start) / batch / 1000


def median_us(fn, requests: list[AccessRequest], batch: int) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(per_call_us(fn, r, batch) for r in requests)


def main() -> None:
    rng = random.Random(6)
    key = Ed25519PrivateKey.generate()
    keys = {"bench": key.public_key()}
    rows = []
    for n in SIZES:
        bundle = make_bundle(n, rng)
        requests = make_requests(bundle, rng)
        token = sign_bundle(bundle, key, "bench")
        loads, load_cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            verified = verify_bundle(token, keys, device_id="bench-device", now=time.time())
            engine = PolicyEngine(record=False)
            engine.load(verified)
            engine.set_facts(FACTS)
            loads.append((time.perf_counter() - t0) * 1000)
            load_cpu.append((time.process_time() - c0) * 1000)
        decision = median_us(engine.explain, requests, BATCH)
        for r in requests:
            engine.decide(r)
        cached = median_us(engine.decide, requests, BATCH)
        proxy_engine = PolicyEngine(record=True)
        proxy_engine.load(verified)
        proxy_engine.set_facts(FACTS)
        for r in requests:
            proxy_engine.decide(r)
        proxy = median_us(proxy_engine.decide, requests, BATCH)

        policy_set = cedarpy.PolicySet.from_str(cedar.policies(bundle))
        entities = cedarpy.Entities.from_json_str("[]")
        facts = {**FACTS, "user.groups": list(bundle.user.groups), "user.email": bundle.user.email}
        agree = 0
        cedar_reqs = []
        for r in requests:
            ours = engine.explain(r)
            req = cedar.request_dict(cedar.context(r, facts, ours.risk))
            cedar_reqs.append(req)
            theirs = cedarpy.is_authorized(req, policy_set, entities)
            agree += ours.allowed == theirs.allowed
        sample = cedar_reqs[:: max(1, len(cedar_reqs) // 12)]

        def cedar_call(q: dict[str, object], ps=policy_set, ents=entities) -> object:  # type: ignore[no-untyped-def]
            return cedarpy.is_authorized(q, ps, ents)

        cedar_us = statistics.median(per_call_us(cedar_call, q, CEDAR_BATCH[n]) for q in sample)
        allowed = sum(engine.explain(r).allowed for r in requests)
        rows.append(
            (
                n,
                decision,
                cached,
                proxy,
                cedar_us,
                statistics.median(loads),
                statistics.median(load_cpu),
                agree,
                allowed,
                len(token),
            )
        )
        print(f"  done {n:>6} rules", file=sys.stderr)

    print()
    print(f"policy decisions, median of {N_REQUESTS} requests (µs per call); ratio = cedar / ours")
    print(
        f"{'rules':>7} {'decision':>9} {'cached':>8} {'proxy':>8} {'cedarpy':>10} "
        f"{'×cedar':>8} {'×cedar(cached)':>15} {'verify+load wall/cpu':>22} {'token':>9} "
        f"{'agree':>7} {'allowed':>8}"
    )
    for n, d, c, p, ce, load, cpu, agree, allowed, size in rows:
        print(
            f"{n:>7} {d:>9.2f} {c:>8.2f} {p:>8.2f} {ce:>10.1f} {ce / d:>8.0f} {ce / c:>15.0f} "
            f"{load:>11.1f} / {cpu:>5.1f} ms {size / 1e6:>7.2f}MB {agree:>3}/{N_REQUESTS} "
            f"{allowed:>8}"
        )
    first, last = rows[0], rows[-1]
    print()
    print(
        f"flatness: decision at {last[0]} rules / at {first[0]} rules = {last[1] / first[1]:.2f}x"
    )
    print(
        f"cached decision at {last[0]} rules: {last[2]:.2f} µs; "
        f"verify+load {last[5]:.1f} ms wall, {last[6]:.1f} ms cpu"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    stages = load_stages(SIZES[-1], key, keys)
    print(
        f"verify+load stages at {SIZES[-1]} rules (cpu ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in stages)
    )


def load_stages(n: int, key: Ed25519PrivateKey, keys: dict[str, object]) -> list[tuple[str, float]]:
    """Where verify+load time goes: JWS signature check, schema decode, compile."""
    bundle = make_bundle(n, random.Random(6))
    token = sign_bundle(bundle, key, "bench")
    payload = encode_bundle(bundle)

    def best(fn) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(5):
            c0 = time.process_time()
            fn()
            times.append((time.process_time() - c0) * 1000)
        return min(times)

    return [
        (
            "signature (Ed25519)",
            best(lambda: verify(token, keys, typ=BUNDLE_TYP, max_size=1 << 26)),
        ),
        ("decode+validate", best(lambda: decode_bundle(payload))),
        ("compile+index", best(lambda: compile_bundle(bundle))),
    ]


if __name__ == "__main__":
    main()
