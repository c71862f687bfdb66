"""The README's demo: controller, sign-in, policy, WireGuard tunnel and proxy, all real.

Builds the namespace test bed, runs the reference controller with its development OIDC
provider, the privileged helper and the client; signs the demo user in without a browser,
connects, and shows a request through the proxy reaching an allowed resource and being
refused (with its reason) for a denied one, then posture drift withdrawing and restoring
access. Every line it prints is an observed result; any unexpected outcome makes it exit
non-zero. With a terminal it then waits so you can try things by hand; it always cleans up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from controller.demo.bed import RESOURCES, make_bed
from controller.demo.harness import Session, session
from core.cli.commands.session import format_status

GREEN, RED, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[2m", "\033[1m", "\033[0m"


class Demo:
    """Prints steps and keeps score."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.failures: list[str] = []
        self.t0 = time.monotonic()

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def step(self, text: str) -> None:
        print(self._c(BOLD, f"\n▸ {text}"), flush=True)

    def ok(self, text: str) -> None:
        print(f"  {self._c(GREEN, '✔')} {text}", flush=True)

    def refused(self, text: str) -> None:
        print(f"  {self._c(GREEN, '✔')} {text}", flush=True)

    def info(self, text: str) -> None:
        print(self._c(DIM, f"    {text}"), flush=True)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        print(f"  {self._c(RED, '✘')} {text}", flush=True)


def _body(result: object) -> tuple[bool, str, str]:
    out = getattr(result, "stdout", "")
    code = out.rsplit("\n", 1)[-1] if out else ""
    body = out.rsplit("\n", 1)[0] if "\n" in out else ""
    return getattr(result, "returncode", 1) == 0 and code == "200", code, body


async def _timed(predicate: Callable[[], bool], within: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if await asyncio.to_thread(predicate):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    return None


async def _decision(s: Session, destination: str) -> dict[str, object] | None:
    """The proxy's decision event for ``destination`` (it follows the answer by a few
    tens of ms: events leave the proxy's thread in batches)."""
    try:
        return await s.wait_event(
            lambda e: e.get("kind") == "decision" and e.get("destination") == destination,
            within=3,
        )
    except TimeoutError:
        return None


async def _transparent_decision(s: Session, seen: int) -> dict[str, object] | None:
    """The decision event for a connection redirected from a plain app (its destination
    is the resource's address, or its name when the decider maps one)."""
    addr = RESOURCES["wiki.corp.example"][0]
    try:
        return await s.wait_event(
            lambda e: (
                e.get("kind") == "decision"
                and str(e.get("app", "")).endswith("curl")
                and str(e.get("destination", "")).startswith((addr, "wiki.corp.example"))
                and s.events.index(e) >= seen
            ),
            within=3,
        )
    except TimeoutError:
        return None


async def run(args: argparse.Namespace) -> int:
    d = Demo(color=sys.stdout.isatty())
    print(d._c(BOLD, "Rustronaut Client — end-to-end demo (everything real, on this machine)"))
    d.step("Test bed: client, gateway and resource namespaces with a real WireGuard gateway")
    with make_bed() as bed:
        d.ok(f"namespaces {bed.client_ns}, {bed.gateway_ns}, {bed.server_ns}")
        d.info(
            f"gateway WireGuard {bed.gateway_if} on {bed.gateway_endpoint} "
            "(wg-quick + wireguard-go)"
        )
        for name, (addr, title) in RESOURCES.items():
            d.info(f"{title}: http://{name}/ ({addr}) behind the gateway")
        d.step("Controller + development OIDC provider, privileged helper, client engine")
        started = time.monotonic()
        async with session(bed, proxy_port=args.proxy_port) as s:
            d.ok(f"controller on {s.controller.base_url} (issuer {s.controller.issuer})")
            d.info("policy: engineers may read the Corp Wiki while their firewall is on;")
            d.info("        Payroll is for the finance group only")
            snap = await s.wait_state("connected", "degraded", within=30)
            took = time.monotonic() - started
            seen = [e["state"] for e in s.events if e.get("kind") == "state"]
            path = " → ".join(dict.fromkeys(seen))
            d.ok(f"signed in as {snap['user']} (robot browser on the dev provider's login page)")
            d.info(f"engine states: {path}")
            d.ok(
                f"{snap['state']} in {took:.1f} s: tunnel {snap['tunnel']['interface']} to "
                f"{snap['tunnel']['gateway']}, proxy on {snap['proxy_address']}, "
                f"policy v{snap['policy_version']}"
            )

            d.step(f"Requests through the proxy (curl --socks5-hostname 127.0.0.1:{s.proxy_port})")
            wiki = "wiki.corp.example"
            ok, code, body = _body(await asyncio.to_thread(s.curl, f"http://{wiki}/"))
            decision = await _decision(s, f"{wiki}:80")
            if ok and decision and decision.get("effect") == "allow":
                d.ok(f"http://{wiki}/ → {code}: {body.strip()[:80]}")
                d.info(f"decision: allow by rule {decision['rule']} — {decision['message']}")
            else:
                d.fail(f"http://{wiki}/ should be allowed, got {code or 'no answer'} {decision}")
            payroll = "payroll.corp.example"
            ok, code, _ = _body(await asyncio.to_thread(s.curl, f"http://{payroll}/"))
            decision = await _decision(s, f"{payroll}:80")
            if not ok and decision and decision.get("effect") == "deny":
                d.refused(f"http://{payroll}/ → refused: {decision['message']}")
                fix = next(
                    (r["fix"] for r in (await s.status())["resources"] if r["name"] == "Payroll"),
                    "",
                )
                if fix:
                    d.info(f"how to fix: {fix}")
            else:
                d.fail(f"http://{payroll}/ should be refused, got {code} {decision}")

            access = (await s.status()).get("access") or {}
            if access.get("mode") == "transparent":
                d.step("Transparent mode: plain curl, no proxy settings at all")
                before = len(s.events)
                ok, code, body = _body(
                    await asyncio.to_thread(s.curl, f"http://{wiki}/", direct=True)
                )
                decision = await _transparent_decision(s, before)
                if ok and decision and decision.get("effect") == "allow":
                    d.ok(f"curl http://{wiki}/ → {code}: caught and decided, no settings needed")
                    d.info(f"Activity: {decision['app']} → {decision['destination']}: allow")
                else:
                    d.fail(
                        f"plain curl to the wiki should be caught and allowed: {code} {decision}"
                    )
            else:
                d.info(f"access mode {access.get('mode', 'proxy')}: apps use the proxy settings")

            d.step("Continuous verification: the firewall goes off, then on again")
            bed.firewall(False)
            gone = await _timed(lambda: not _body(s.curl(f"http://{wiki}/", timeout=2))[0], 10)
            if gone is None:
                d.fail("access to the wiki was not withdrawn within 10 s")
            else:
                status = await s.status()
                fix = next((r["fix"] for r in status["resources"] if r["name"] == "Corp Wiki"), "")
                d.ok(f"access to the wiki withdrawn {gone:.1f} s after the firewall went off")
                d.info(f"state {status['state']}; how to fix: {fix}")
            bed.firewall(True)
            back = await _timed(lambda: _body(s.curl(f"http://{wiki}/", timeout=2))[0], 15)
            if back is None:
                d.fail("access was not restored within 15 s of the firewall coming back")
            else:
                d.ok(f"access restored {back:.1f} s after the firewall came back")

            d.step("rustronaut status (the running engine's view, through its control socket)")
            # The new policy re-applied the tunnel: show the status once its handshake is back.
            with contextlib.suppress(TimeoutError):
                await s.wait_state("connected", "degraded", within=15)
            for line in format_status(await s.snapshot()).splitlines():
                print(f"    {line}")

            if args.hold and sys.stdin.isatty() and not os.environ.get("CI"):
                d.step("Try it yourself (Ctrl-C or Enter to stop and clean up)")
                lines = try_it_lines(
                    client_ns=bed.client_ns,
                    proxy_port=s.proxy_port,
                    wiki=wiki,
                    payroll=payroll,
                    runtime_dir=s.control_socket.parent.parent,
                )
                print("\n".join(f"    {line}" for line in lines))
                await _wait_for_enter_or_ctrl_c()
        d.step("Cleaning up")
    d.ok("namespaces, interfaces, processes and files removed")
    if d.failures:
        print(d._c(RED, f"\nDemo FAILED: {len(d.failures)} check(s) did not hold."))
        return 1
    print(d._c(GREEN, "\nDemo passed: every step above was observed, not assumed."))
    return 0


def try_it_lines(
    *,
    client_ns: str,
    proxy_port: int,
    wiki: str,
    payroll: str,
    runtime_dir: Path,
    sudo: bool | None = None,
    python: Path | None = None,
) -> list[str]:
    """The "try it yourself" commands, each runnable as printed in another terminal.

    ``rustronaut`` is named by its full path (the venv's script beside ``python``, else
    ``python -m core.cli.main``): the venv is not on PATH. ``sudo`` (default: when the
    demo was started with sudo) prefixes every line, as the bed needs root.
    """
    python = python or Path(sys.executable)
    script = python.parent / "rustronaut"
    if script.exists():
        cli = shlex.quote(str(script))
    else:
        root = Path(__file__).resolve().parents[2]
        cli = f"PYTHONPATH={shlex.quote(str(root))} {shlex.quote(str(python))} -m core.cli.main"
    prefix = "sudo " if (bool(os.environ.get("SUDO_USER")) if sudo is None else sudo) else ""
    ns = f"ip netns exec {shlex.quote(client_ns)}"
    runtime = shlex.quote(f"XDG_RUNTIME_DIR={runtime_dir}")
    return [
        f"{prefix}{ns} curl --socks5-hostname 127.0.0.1:{proxy_port} http://{wiki}/",
        f"{prefix}{ns} curl -x http://127.0.0.1:{proxy_port} http://{payroll}/",
        f"{prefix}{runtime} {cli} status",
        f"{prefix}{ns} wg show",
    ]


async def _wait_for_enter_or_ctrl_c() -> None:
    # Not a thread on stdin: a thread blocked in readline would keep the process alive.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await stop.wait()
    finally:
        loop.remove_reader(sys.stdin.fileno())
        loop.remove_signal_handler(signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Run the demo (root, Linux)."""
    p = argparse.ArgumentParser(prog="python -m controller.demo", description=__doc__)
    p.add_argument("--proxy-port", type=int, default=9080)
    p.add_argument("--no-hold", dest="hold", action="store_false", help="do not wait at the end")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("The demo needs root (network namespaces and WireGuard): sudo bash scripts/demo.sh")
        return 2
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
