"""The admin console in a real browser, against the real client on the test bed.

Debian's headless Chromium, driven by Selenium through Debian's chromedriver
(``tests/e2e/console_browser.py``), talks to the bed's controller on the host's loopback
(``http://127.0.0.1:<port>``: a secure context, so the ``__Host-`` Secure session cookie
works over plain http there). The client runs in its namespace with the managed
telemetry level ``full`` and a short send interval (``RUSTRONAUT_TELEMETRY_INTERVAL``),
so its decisions reach the live feed within about a second.

One flow, the issue's "Done when": an admin signs in through the OpenID provider (the
controller's development provider), watches a decision the real client makes appear in
the live feed (an allowed one and a denied one), asks the what-if page, edits a rule,
sees the diff, publishes, and the client receives the new bundle: its policy version
rises and the wiki it could reach is now refused while payroll opens. Along the way: a
device's hostile strings (HTML, script) show as text in the feed, the publish is in the
audit log, and signing out ends the session. No page may log a Content-Security-Policy
violation.

Selenium is blocking and the controller serves on this test's event loop: every browser
step runs in a worker thread (``asyncio.to_thread``), never on the loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.demo.bed import Bed, make_bed, run
from controller.demo.harness import session
from core.wire.telemetry import DecisionEvent
from tests.e2e import console_browser as cb

ROOT = Path(__file__).resolve().parents[2]
WIKI = "http://wiki.corp.example/"
PAYROLL = "http://payroll.corp.example/"
ADMIN = ("it-admin", "it-admin-password")  # the dev provider's demo IT administrator
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: what a hostile (or compromised) device might put in its decision reports
HOSTILE_APP = '<img src=x onerror="window.__pwned=true"><b>bold</b>'
HOSTILE_HOST = "<script>document.title='pwned'</script>.corp.example"
#: how the session runs for this test: console on, decisions reported in full, quickly
CONSOLE_SESSION: dict[str, Any] = {
    "managed_settings": {"telemetry_level": "full", "telemetry_hash_app": False},
    "client_env": {"RUSTRONAUT_TELEMETRY_INTERVAL": "0.3"},
    "controller_options": {"console": {}},
}


@pytest.fixture
def bed() -> Iterator[Bed]:
    with make_bed() as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = cb.missing()
    if reason:
        if IN_CI:
            pytest.fail(f"CI must run this test but the machine cannot: {reason}", pytrace=False)
        pytest.skip(reason)
    with cb.chromium() as driver:
        yield driver


def _ok(result: object) -> bool:
    return getattr(result, "returncode", 1) == 0 and getattr(result, "stdout", "").endswith("200")


def _css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


class Console:
    """The browser's steps (blocking; run them in a thread), with the CSP messages seen."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.root = base_url.rstrip("/")
        self.base = self.root + "/console"
        self.csp: list[str] = []

    def open(self, path: str, ready: str) -> None:
        self.driver.get(self.base + path)
        cb.wait_css(self.driver, ready)
        self.csp += cb.csp_violations(self.driver)

    def sign_in(self) -> str:
        """Sign in from the console's front page; who the console says is signed in.
        The admin lands on the overview."""
        cb.sign_in(self.driver, self.root, *ADMIN)
        cb.wait_css(self.driver, 'nav#nav a[data-page="overview"][aria-current="page"]')
        self.csp += cb.csp_violations(self.driver)
        return str(cb.wait_css(self.driver, "#whoami").text)

    def sign_out(self) -> bool:
        """Sign out (``form#signout``); True when the session is gone: the sign-in page
        shows, and a console page asks to sign in again."""
        cb.wait_css(self.driver, "form#signout button").click()
        cb.wait_css(self.driver, "a#signin")
        self.driver.get(self.base + "/live")
        cb.wait_css(self.driver, "a#signin")
        self.csp += cb.csp_violations(self.driver)
        return not _css(self.driver, "#whoami")

    def open_live(self) -> None:
        """Go to the live feed through the navigation; wait for its socket to open."""
        cb.wait_css(self.driver, 'nav#nav a[data-page="live"]').click()
        cb.wait_css(self.driver, "table#feed")
        self.csp += cb.csp_violations(self.driver)
        cb.wait_until(
            lambda: cb.wait_css(self.driver, "#feed-status").text.strip().lower() == "live",
            10,
            "the live feed's socket to open",
        )

    def feed_row(self, selector: str, within: float = 20) -> dict[str, str]:
        """The first live-feed row matching ``selector`` (attributes + text)."""
        row = cb.wait_css(self.driver, f"table#feed tbody tr{selector}", within)
        return {
            "text": str(row.text),
            **{
                k: str(row.get_attribute(f"data-{k}") or "")
                for k in ("effect", "user", "device", "resource")
            },
        }

    def what_if(self, device_id: str, resource: str) -> tuple[str, str]:
        """Ask the what-if page about alice on ``device_id`` reaching ``resource``."""
        alice: Callable[[str, str], bool] = lambda v, t: "alice" in (v + t).lower()  # noqa: E731
        answer = cb.what_if(self.driver, self.root, alice, device_id, resource)
        self.csp += cb.csp_violations(self.driver)
        return answer

    def edit_rule(self, rule_id: str, change: Callable[[dict[str, Any]], None]) -> str:
        """Edit ``rule_id`` in the browser, save the draft; the diff page's text."""
        cb.edit_rule(self.driver, self.root, rule_id, change)
        self.csp += cb.csp_violations(self.driver)
        self.open("/policy/diff", "#diff")
        return str(cb.wait_css(self.driver, "#diff").text)

    def publish(self) -> None:
        cb.publish(self.driver, self.root)
        self.csp += cb.csp_violations(self.driver)

    def nothing_injected(self) -> bool:
        """No element came from a device's string, and none of its script ran."""
        return (
            not _css(self.driver, "table#feed img, table#feed script, table#feed b")
            and self.driver.title != "pwned"
            and not self.driver.execute_script("return window.__pwned === true")
        )

    def page_text(self) -> str:
        return str(self.driver.find_element("tag name", "body").text).lower()


async def _until(predicate: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.netns
@pytest.mark.timeout(240)
async def test_admin_watches_asks_edits_and_the_client_follows(bed: Bed, browser: Any) -> None:
    started = time.monotonic()
    async with session(bed, **CONSOLE_SESSION) as s:
        snap = await s.wait_state("connected", "degraded")
        device_id, version = snap["device_id"], snap["policy_version"]
        web = Console(browser, s.controller.base_url)
        thread = asyncio.to_thread

        # 1. sign in through the organisation's OpenID provider (the dev provider's form)
        who = await thread(web.sign_in)
        assert "admin" in who.lower(), who

        # 2. the live feed shows what the real client decides, as it decides it
        await thread(web.open_live)
        assert _ok(await thread(s.curl, WIKI))
        assert not _ok(await thread(s.curl, PAYROLL))
        allowed = await thread(web.feed_row, '[data-effect="allow"][data-resource="wiki"]')
        assert allowed["device"] == device_id, allowed
        assert "alice" in (allowed["user"] + allowed["text"]).lower()
        assert "engineering-wiki" in allowed["text"], allowed
        denied = await thread(web.feed_row, '[data-effect="deny"][data-resource="payroll"]')
        assert denied["device"] == device_id, denied
        assert "finance" in denied["text"], denied  # the reason the employee was shown

        # hostile strings from a device are shown as text, never run or parsed as HTML
        bob = next(u for u in s.controller.users if u.username == "bob")
        rogue = await cb.enroll_device(s.controller, bob, "bobs laptop")
        try:
            await rogue.decide([
                DecisionEvent(at=time.time(), app=HOSTILE_APP, host=HOSTILE_HOST, port=443,
                              effect="deny", reason=HOSTILE_APP)
            ])  # fmt: skip
        finally:
            await rogue.client.aclose()
        shown = await thread(web.feed_row, f'[data-device="{rogue.device_id}"]')
        assert HOSTILE_APP in shown["text"], shown
        assert HOSTILE_HOST in shown["text"], shown
        assert await thread(web.nothing_injected), "a device's string became HTML"

        # 3. what-if: the same engine as the client, with this device's facts
        effect, why = await thread(web.what_if, device_id, "wiki")
        assert effect == "allow", why
        effect, why = await thread(web.what_if, device_id, "payroll")
        assert effect == "deny", why

        # 4. edit a rule: engineers now get payroll instead of the wiki; diff; publish
        def to_payroll(rule: dict[str, Any]) -> None:
            rule["resources"] = ["payroll"]

        diff = await thread(web.edit_rule, "engineering-wiki", to_payroll)
        assert "payroll" in diff, diff
        await thread(web.publish)

        # 5. the client receives the new bundle and enforces it
        deadline = time.monotonic() + 20
        while True:
            fresh = await s.status()
            reach = {r["name"]: r["reachable"] for r in fresh["resources"]}
            if reach.get("Payroll") and not reach.get("Corp Wiki"):
                break
            assert time.monotonic() < deadline, f"the client kept its old policy: {reach}"
            await asyncio.sleep(0.2)
        assert fresh["policy_version"] > version, (fresh["policy_version"], version)
        await thread(web.open_live)
        await _until(lambda: not _ok(s.curl(WIKI, timeout=2)), 10, "the wiki refused")
        await _until(lambda: _ok(s.curl(PAYROLL, timeout=2)), 10, "payroll reachable")
        refused = await thread(web.feed_row, '[data-effect="deny"][data-resource="wiki"]')
        assert refused["device"] == device_id, refused

        # 6. the change is in the audit log; no page broke the Content-Security-Policy
        await thread(web.open, "/audit", "table#audit tbody tr")
        assert "engineering-wiki" in (await thread(web.page_text)), "publish not audited"
        assert await thread(web.sign_out)
        assert not web.csp, web.csp
        print(f"console flow on the bed: {time.monotonic() - started:.1f} s")


#: the pages ``scripts/console-screenshots.py`` photographs (docs/screenshots/console-*.png)
PAGES = ("overview", "devices", "device", "users", "policy", "policy-diff", "live", "whatif",
         "audit", "overview-dark", "live-dark")  # fmt: skip


@pytest.mark.unit
def test_every_console_page_is_photographed_and_every_shown_shot_exists() -> None:
    shots = ROOT / "docs" / "screenshots"
    for page in PAGES:
        assert (shots / f"console-{page}.png").is_file(), page
    for doc in ("docs/console.md", "docs/screenshots/README.md", "README.md"):
        shown = set(re.findall(r"(console-[\w-]+\.png)", (ROOT / doc).read_text()))
        assert shown, doc
        for name in shown:
            assert (shots / name).is_file(), f"{doc} shows {name}, which is missing"
    script = (ROOT / "scripts" / "console-screenshots.py").read_text()
    for page in PAGES:
        assert f'"{page}"' in script, f"the script does not photograph {page}"
