"""The proxy as the tray runs it, for ``bench_proxy``: ``run_ours`` in a child process.

The decider is a loaded ``PolicyEngine`` as the engine holds it: a signed bundle of
``N_RULES`` rules (``bench_policy.make_bundle``: resources with host names, wildcards,
CIDRs and ports, rules with group and posture conditions, deny rules) plus one resource
for the benchmark's sink (127.0.0.1/32, allowed by a rule with the same kinds of
conditions), verified with ``verify_bundle``, posture facts set, risk recording on.
Peers are identified for real (netlink sock_diag + /proc, ``default_lookup``), and the
connector is a ``Dialer`` over plain sockets, as the engine's proxy adapter builds it
when the helper cannot fence (there is no tunnel here).
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import time
from pathlib import Path
from typing import Any

__all__ = ["N_RULES", "raise_nofile", "run_ours", "tray_policy"]

N_RULES = 1_000
"""Rules of the benchmark's policy (resources: 900 + the sink's)."""


def raise_nofile() -> None:
    """Raise the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tray_policy() -> Any:
    """A loaded ``PolicyEngine`` deciding the sink's 127.0.0.1 as an allowed resource."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from msgspec.structs import replace

    from core.policy.engine import PolicyEngine
    from core.policy.verify import verify_bundle
    from core.wire.policy import AllOf, FactCondition, RefOf, Resource, Rule, sign_bundle
    from tests.bench import bench_policy

    bundle = bench_policy.make_bundle(N_RULES, random.Random(22))
    sink = Resource(
        id="bench-sink",
        name="Benchmark sink",
        hosts=("sink.corp.example",),
        cidrs=("127.0.0.1/32",),
        ports=(),
    )
    allow = Rule(
        id="allow-bench-sink",
        effect="allow",
        resources=("bench-sink",),
        priority=0,
        conditions=AllOf(
            of=(
                FactCondition(fact="user.groups", op="in", value=["eng"]),
                RefOf(profile="managed"),
            )
        ),
        max_risk=70,
    )
    bundle = replace(bundle, resources=(*bundle.resources, sink), rules=(*bundle.rules, allow))
    key = Ed25519PrivateKey.generate()
    token = sign_bundle(bundle, key, "bench")
    verified = verify_bundle(
        token, {"bench": key.public_key()}, device_id=bundle.device_id, now=time.time()
    )
    engine = PolicyEngine()  # records risk, as the engine's
    engine.load(verified)
    engine.set_facts(bench_policy.FACTS)
    return engine


def run_ours(port_file: str, relay: str) -> None:
    """Our ProxyServer on a plain asyncio loop; with "+qasync" on the Qt (qasync) loop the
    tray app runs the engine on; with "+thread" on its own thread (``ProxyThread``, what
    the engine uses) while the Qt loop runs in the main thread, as in the tray."""
    raise_nofile()
    from core.proxy import Limits, ProxyServer
    from core.proxy.dial import Dialer, plain_socket
    from core.proxy.thread import ProxyThread

    threaded = relay.endswith("+thread")
    relay = relay.removesuffix("+thread")
    qt = relay.endswith("+qasync")
    relay = relay.removesuffix("+qasync")
    decider = tray_policy()

    async def main() -> None:
        server = ProxyServer(
            decider,
            host_uid=os.getuid(),
            connector=Dialer(plain_socket),
            limits=Limits(
                relay=relay,  # type: ignore[arg-type]
                max_connections=20000,
                # A/B of threaded bulk relays (0: every relay stays on the proxy's loop thread)
                bulk_threads=int(os.environ.get("BENCH_BULK_THREADS", Limits().bulk_threads)),
            ),
            hosts=("127.0.0.1",),
        )
        runner = ProxyThread(server) if threaded else server
        if threaded:  # events come back to the Qt loop, as in the tray
            runner.subscribe(lambda event: None)
        addrs = await runner.start(0)
        Path(port_file).write_text(str(addrs[0][1]))  # noqa: ASYNC240 - once, at start
        await asyncio.Event().wait()

    if qt:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        import qasync
        from PySide6.QtCore import QCoreApplication

        app = QCoreApplication([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(main())
    else:
        asyncio.run(main())
