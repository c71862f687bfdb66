#!/usr/bin/env python3
"""Screenshots of the admin console (``docs/screenshots/console-<page>.png``).

Everything in the pictures is real except the devices' hardware: the script runs the
reference controller on loopback with its development OIDC provider and the console
enabled, seeds the demo company's policy (``controller.demo.harness.company_policy``,
plus a git server for engineering), and enrolls a few simulated devices **through the
controller's real device API** — real enrollment, posture reports and decision batches
signed with each device's key, exactly what the desktop client sends. One laptop has its
firewall off (a posture failure), one employee reports a break-glass. Then Debian's
headless Chromium (Selenium, ``tests/e2e/console_browser.py``) signs the demo IT admin
in through the provider's login form and photographs each page at 1366×900: overview,
devices, device detail, users, policy, policy diff (with a pending draft made in the
browser), live (decisions sent while the page is open arrive as rows), what-if (with an
answer) and audit; overview and live also dark (``prefers-color-scheme: dark``).

Run (no root needed; chromium + chromium-driver from Debian, selenium from the dev extra):

    .venv/bin/python scripts/console-screenshots.py [--out docs/screenshots] [--no-dark]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages and tests.e2e


import msgspec  # noqa: E402

from controller.config import DEFAULT_USERS, DemoUser  # noqa: E402
from controller.demo.harness import company_policy  # noqa: E402
from controller.testing import RunningController, run_controller  # noqa: E402
from core.wire.policy import FactCondition, Resource, Rule  # noqa: E402
from core.wire.posture import FactValue  # noqa: E402
from core.wire.telemetry import DecisionEvent  # noqa: E402
from tests.e2e import console_browser as cb  # noqa: E402

ADMIN = next(u for u in DEFAULT_USERS if "rustronaut-admins" in u.groups)
CAROL = DemoUser(
    username="carol",
    password="carol-password",  # noqa: S106 - demo credential
    email="carol@example.com",
    name="Carol Example",
    groups=("finance",),
)


def _event(
    at: float, host: str, port: int, effect: str, resource: str | None, rule: str | None, why: str
) -> DecisionEvent:
    app = "/usr/bin/firefox" if port in (80, 443) else "/usr/bin/ssh"
    return DecisionEvent(
        at=at,
        app=app,
        host=host,
        port=port,
        effect="allow" if effect == "allow" else "deny",
        rule=rule,
        resource=resource,
        reason=why,
        risk=10 if effect == "allow" else 55,
    )


WIKI_OK = (
    "wiki.corp.example",
    80,
    "allow",
    "wiki",
    "engineering-wiki",
    "allowed by rule engineering-wiki",
)
GIT_OK = (
    "git.corp.example",
    443,
    "allow",
    "git",
    "engineering-git",
    "allowed by rule engineering-git",
)
PAY_OK = (
    "payroll.corp.example",
    80,
    "allow",
    "payroll",
    "finance-payroll",
    "allowed by rule finance-payroll",
)
PAY_NO = (
    "payroll.corp.example",
    80,
    "deny",
    "payroll",
    None,
    "Payroll needs group finance — you are in engineering",
)
WIKI_NO_FW = ("wiki.corp.example", 80, "deny", "wiki", None, "Corp Wiki needs the firewall on")
GIT_NO = ("git.corp.example", 22, "deny", "git", None, "port 22 is not part of Git (443 only)")
PAY_NO_BOB = (*PAY_NO[:5], "Payroll needs group finance — you are in sales")
CRM_OK = ("crm.corp.example", 443, "allow", "crm", "sales-crm", "allowed by rule sales-crm")
UNKNOWN = ("198.51.100.23", 8443, "deny", None, None, "no resource covers 198.51.100.23:8443")


#: each laptop's posture facts
_FACTS: dict[str, dict[str, FactValue]] = {
    "alice-thinkpad": {"os.name": "linux", "os.distro": "debian", "os.version": "12",
                       "firewall.enabled": True, "disk.encrypted": True,
                       "screen_lock.enabled": True},
    # the posture failure: the firewall is off, so nothing alice may use is reachable
    "alice-old-laptop": {"os.name": "windows", "os.version": "10.0.19045",
                         "firewall.enabled": False, "disk.encrypted": False},
    "bob-macbook": {"os.name": "macos", "os.version": "14.4.1", "firewall.enabled": True,
                    "disk.encrypted": True},
    "carol-desktop": {"os.name": "windows", "os.version": "10.0.22631",
                      "firewall.enabled": True, "disk.encrypted": True},
}  # fmt: skip


async def seed(rc: RunningController) -> dict[str, cb.SimDevice]:
    """The demo company's policy, four laptops with posture, half an hour of decisions
    and a break-glass report. Returns the devices by name."""
    resources, rules = company_policy()
    resources += [
        Resource(id="git", name="Git", hosts=("git.corp.example",), ports=(443,)),
        Resource(id="crm", name="CRM", hosts=("crm.corp.example",), ports=(443,)),
    ]
    rules += [
        Rule(
            id="engineering-git",
            effect="allow",
            resources=("git",),
            priority=10,
            conditions=FactCondition(fact="user.groups", op="eq", value="engineering"),
            description="Engineers push and pull code.",
        ),
        Rule(
            id="sales-crm",
            effect="allow",
            resources=("crm",),
            priority=10,
            conditions=FactCondition(fact="user.groups", op="eq", value="sales"),
            description="Sales works in the CRM.",
        ),
    ]
    for resource in resources:
        rc.service.put_resource(resource)
    for rule in rules:
        rc.service.put_rule(rule)
    users = {u.username: u for u in rc.users}
    devices = {
        d.name: d
        for d in [
            await cb.enroll_device(rc, users["alice"], "alice-thinkpad", "linux"),
            await cb.enroll_device(rc, users["alice"], "alice-old-laptop", "windows"),
            await cb.enroll_device(rc, users["bob"], "bob-macbook", "macos"),
            await cb.enroll_device(rc, users["carol"], "carol-desktop", "windows"),
        ]
    }
    for name, reported in _FACTS.items():
        await devices[name].posture(reported)
        # and fetch its policy bundle, as the client does after each report
        await devices[name].client.fetch_bundle(devices[name].device_id)
    # half an hour of traffic, a little more each minute, so the charts have a shape
    now = time.time()
    plan: list[tuple[str, tuple[Any, ...], int]] = [
        ("alice-thinkpad", WIKI_OK, 3),
        ("alice-thinkpad", GIT_OK, 4),
        ("alice-thinkpad", PAY_NO, 1),
        ("alice-old-laptop", WIKI_NO_FW, 2),
        ("bob-macbook", PAY_NO_BOB, 1),
        ("bob-macbook", UNKNOWN, 1),
        ("bob-macbook", CRM_OK, 3),
        ("carol-desktop", PAY_OK, 2),
        ("alice-thinkpad", GIT_NO, 1),
    ]
    for name, what, per_minute in plan:
        events = [
            _event(now - 60 * minute - 7 * i - 3, *what)
            for minute in range(30, 0, -1)
            for i in range(per_minute + (minute % 3 == 0))
        ]
        for start in range(0, len(events), 200):
            await devices[name].decide(events[start : start + 200])
    await devices["alice-old-laptop"].client.report_break_glass(
        devices["alice-old-laptop"].device_id,
        "Presenting at a customer site; their guest Wi-Fi blocks the tunnel.",
    )
    return devices


# --- the browser side (blocking: run in a thread, the controller serves on the loop) ----


@dataclass
class Shooter:
    """Takes the pictures: one browser, signed in as the IT admin."""

    driver: Any
    base: str
    out: Path
    taken: list[Path] = field(default_factory=list)

    def open(self, path: str, ready: str) -> None:
        self.driver.get(self.base + "/console" + path)
        cb.wait_css(self.driver, ready, within=15)
        time.sleep(0.4)  # charts and fonts settle

    def shot(self, name: str) -> None:
        path = self.out / f"console-{name}.png"
        self.driver.save_screenshot(str(path))
        self.taken.append(path)
        print(f"  ✔ {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    def page(self, name: str, path: str, ready: str) -> None:
        self.open(path, ready)
        self.shot(name)


async def run(out: Path, dark: bool) -> list[Path]:
    """Start the controller, seed it, take every picture; the files written."""
    with tempfile.TemporaryDirectory(prefix="rtc-console-shots-") as tmp:
        async with run_controller(
            Path(tmp), users=(*DEFAULT_USERS, CAROL), console={}, telemetry_batches_per_min=1000
        ) as rc:
            devices = await seed(rc)
            try:
                return await _shoot(rc, devices, out, dark)
            finally:
                for device in devices.values():
                    await device.client.aclose()


async def _shoot(
    rc: RunningController, devices: dict[str, cb.SimDevice], out: Path, dark: bool
) -> list[Path]:
    thinkpad, old_laptop = devices["alice-thinkpad"], devices["alice-old-laptop"]
    _, company_rules = company_policy()
    firewall = next(r for r in company_rules if r.id == "engineering-wiki").conditions
    with cb.chromium() as driver:
        shooter = Shooter(driver, rc.base_url.rstrip("/"), out)
        thread = asyncio.to_thread
        await thread(cb.sign_in, driver, rc.base_url, ADMIN.username, ADMIN.password)

        # first, what an admin did earlier (it shows in the audit log and the overview):
        # git now needs the firewall too, published; a posture re-check asked of a laptop
        def git_needs_firewall(rule: dict[str, Any]) -> None:
            rule["conditions"] = msgspec.to_builtins(firewall)
            rule["description"] = "Engineers push and pull code from a device with a firewall."

        await thread(cb.edit_rule, driver, rc.base_url, "engineering-git", git_needs_firewall)
        await thread(cb.publish, driver, rc.base_url)
        await old_laptop.posture(_FACTS["alice-old-laptop"])  # under the new rule
        await thread(shooter.open, f"/devices/{old_laptop.device_id}", "form#recheck")
        await thread(_click, driver, "form#recheck button")
        await thread(shooter.open, "/users", "form.groups")
        await thread(_set_groups, driver, "carol", "payroll-approvers")

        await thread(shooter.page, "overview", "/", "#whoami")
        await thread(shooter.page, "devices", "/devices", "table#devices tbody tr")
        await thread(shooter.page, "device", f"/devices/{thinkpad.device_id}", "table#posture")
        await thread(shooter.page, "users", "/users", "#whoami")
        await thread(shooter.page, "policy", "/policy", "table#rules")
        await thread(
            cb.what_if,
            driver,
            rc.base_url,
            lambda v, t: "alice" in (v + t).lower(),
            thinkpad.device_id,
            "payroll",
        )
        await asyncio.sleep(0.3)
        await thread(shooter.shot, "whatif")

        # live: rows arrive while the page is open
        await thread(shooter.open, "/live", "table#feed")
        await thread(
            cb.wait_until,
            lambda: cb.wait_css(driver, "#feed-status").text.strip() == "live",
            10,
            "live",
        )
        await _trickle(devices, rounds=6)
        await thread(cb.wait_css, driver, "table#feed tbody tr[data-effect=deny]", 10)
        await asyncio.sleep(0.5)
        await thread(shooter.shot, "live")
        if dark:
            await thread(cb.set_dark, driver, True)
            await thread(shooter.shot, "live-dark")
            await thread(shooter.page, "overview-dark", "/", "#whoami")
            await thread(cb.set_dark, driver, False)

        # policy diff: a draft made in the browser, not published (sales gains the wiki)
        def sales_wiki(rule: dict[str, Any]) -> None:
            rule["resources"] = [*rule.get("resources", []), "wiki"]
            rule["description"] = "Sales works in the CRM and reads the wiki."

        await thread(cb.edit_rule, driver, rc.base_url, "sales-crm", sales_wiki)
        await thread(shooter.page, "policy-diff", "/policy/diff", "#diff")
        await thread(shooter.page, "audit", "/audit", "table#audit tbody tr")
        return list(shooter.taken)


def _click(driver: Any, selector: str) -> None:
    """Click ``selector`` and wait for the page it leads to."""
    old = cb.wait_css(driver, selector)
    old.click()
    cb.wait_until(lambda: not _attached(old), 10, f"the page after {selector}")


def _set_groups(driver: Any, user: str, groups: str) -> None:
    """On the users page, give ``user`` these managed groups (one per line) and save."""
    from selenium.webdriver.common.by import By

    box = cb.wait_css(driver, f'form.groups textarea[aria-label*="{user}"]')
    box.clear()
    box.send_keys(groups)
    button = box.find_element(By.XPATH, "./ancestor::form").find_element(
        By.CSS_SELECTOR, "button[type=submit]"
    )
    button.click()
    cb.wait_until(lambda: not _attached(button), 10, "the groups saved")


def _attached(element: Any) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return False
    return True


async def _trickle(devices: dict[str, cb.SimDevice], rounds: int) -> None:
    """A few seconds of live decisions from the laptops, as they would come in."""
    for n in range(rounds):
        now = time.time()
        await devices["alice-thinkpad"].decide(
            [_event(now, *WIKI_OK), _event(now + 0.1, *GIT_OK)]
            + ([_event(now + 0.2, *PAY_NO)] if n % 2 == 0 else [])
        )
        await devices["bob-macbook"].decide(
            [_event(now + 0.3, *PAY_NO_BOB), _event(now + 0.35, *CRM_OK)]
        )
        if n % 3 == 1:
            await devices["carol-desktop"].decide([_event(now + 0.4, *PAY_OK)])
            await devices["alice-old-laptop"].decide([_event(now + 0.5, *WIKI_NO_FW)])
        await asyncio.sleep(0.4)


def main(argv: Sequence[str] | None = None) -> int:
    """Take the screenshots; 0 when all were written, 1 otherwise (the reason printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--no-dark", action="store_true", help="light shots only")
    args = parser.parse_args(argv)
    reason = cb.missing()
    if reason:
        print(f"cannot take the console screenshots: {reason}", file=sys.stderr)
        return 1
    print("Admin console screenshots (real controller, Debian's headless Chromium):")
    args.out.mkdir(parents=True, exist_ok=True)
    taken = asyncio.run(run(args.out.resolve(), dark=not args.no_dark))
    print(f"{len(taken)} screenshots written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
