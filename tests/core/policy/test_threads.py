"""The engine decides on the proxy's thread while the engine thread loads facts."""

from __future__ import annotations

import sys
import threading

import pytest

from core.policy.api import AppIdentity
from core.policy.engine import PolicyEngine
from tests.core.policy.helpers import NOW, bundle, fact, req, rule

pytestmark = pytest.mark.unit


def test_decide_on_other_threads_while_facts_and_bundles_change() -> None:
    b = bundle(rule("r", conditions=fact("posture.disk.encrypted", "eq", True)))
    e = PolicyEngine(clock=lambda: NOW, record=True)
    e.load(b)
    e.set_facts({"posture.disk.encrypted": True})
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    stop = threading.Event()
    bad: list[str] = []
    counts = {"allow": 0, "deny": 0}

    def decide(n: int) -> None:
        apps = [
            AppIdentity(pid=i, uid=1000, exe=f"/usr/bin/app{i}", name=f"app{i}") for i in range(50)
        ]
        i = 0
        while not stop.is_set():
            d = e.decide(req(app=apps[(i + n) % len(apps)]))
            i += 1
            if "internal policy error" in d.reason:
                bad.append(d.reason)
            counts["allow" if d.allowed else "deny"] += 1

    workers = [threading.Thread(target=decide, args=(n,)) for n in range(3)]
    try:
        for w in workers:
            w.start()
        for i in range(400):
            e.update_facts({"posture.disk.encrypted": i % 2 == 0})
            if i % 50 == 0:
                e.load(b)
            e.tracker.snapshot()
            e.reachable()
    finally:
        stop.set()
        for w in workers:
            w.join()
        sys.setswitchinterval(old_interval)
    assert bad == []
    assert counts["allow"] > 0  # both states were really seen
    assert counts["deny"] > 0
    # The last facts written are the ones decisions use.
    e.update_facts({"posture.disk.encrypted": False})
    assert not e.decide(req()).allowed
