"""Debian's headless Chromium, driven by Selenium through Debian's chromedriver.

Used by the console's browser test (``tests/e2e/test_console_browser.py``) and the
screenshot script (``scripts/console-screenshots.py``). ``chromium(...)`` is a context
manager yielding a ``webdriver.Chrome`` on a fresh profile (a new ``--user-data-dir``
each time: no cookie or cache leaks between tests); ``missing()`` says why the browser
cannot run here (the caller skips locally and fails under CI). Selenium Manager never
runs: both paths are given and ``SE_OFFLINE`` is set, so nothing is ever downloaded.

The helpers below wait the way a person would look at the page: ``wait_css`` for an
element, ``wait_until`` for any condition, ``sign_in`` for the whole OpenID round trip
through the controller's development provider, ``csp_violations`` for the browser
console's Content-Security-Policy reports.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from core.controlplane import BearerAuth, ControlPlaneClient
from core.controlplane.models import EnrollRequest
from core.wire.posture import Fact, FactValue, PostureReport, sign_report
from core.wire.signing import b64url
from core.wire.telemetry import DecisionBatch, DecisionEvent, sign_batch

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "SimDevice",
    "choose",
    "chromium",
    "csp_violations",
    "edit_rule",
    "enroll_device",
    "missing",
    "publish",
    "set_dark",
    "sign_in",
    "wait_css",
    "wait_until",
    "what_if",
]

#: Debian's packages (``scripts/apt/console.txt``: chromium, chromium-driver)
CHROMIUM = Path(os.environ.get("RUSTRONAUT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("RUSTRONAUT_CHROMEDRIVER", "/usr/bin/chromedriver"))
WINDOW = (1366, 900)

T = TypeVar("T")


def missing() -> str | None:
    """Why the browser cannot run here (a reason to skip, or fail under CI), or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"needs {path} (apt: {package}; scripts/apt/console.txt)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip: the dev extra)"
    return None


@contextlib.contextmanager
def chromium(*, dark: bool = False, window: tuple[int, int] = WINDOW) -> Iterator[Any]:
    """A headless Chromium on a fresh profile; quit (and the profile removed) on exit.

    ``dark`` starts it preferring the dark colour scheme (``prefers-color-scheme: dark``).
    The browser's console log is kept (``get_log("browser")``) for CSP checks. Raises
    ``RuntimeError`` when the browser is missing (see ``missing``).
    """
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try the network
    from selenium import webdriver

    profile = tempfile.mkdtemp(prefix="rtc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run its sandbox as root
    if dark:
        options.add_argument("--force-dark-mode")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(30)
        _fit_viewport(driver, window)
        if dark:
            set_dark(driver, True)
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _fit_viewport(driver: Any, size: tuple[int, int]) -> None:
    """Make the page's viewport (what a screenshot shows) exactly ``size``: headless
    Chromium's ``--window-size`` includes the window's own (invisible) frame."""
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    extra_w, extra_h = size[0] - int(inner[0]), size[1] - int(inner[1])
    if extra_w or extra_h:
        driver.set_window_size(size[0] + extra_w, size[1] + extra_h)


def set_dark(driver: Any, dark: bool) -> None:
    """Emulate ``prefers-color-scheme`` (DevTools ``Emulation.setEmulatedMedia``)."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
    )


def wait_until(
    condition: Callable[[], T | None], within: float = 10, what: str = "", step: float = 0.1
) -> T:
    """Poll ``condition`` until it returns something truthy (returned); ``TimeoutError``
    naming ``what`` otherwise. Selenium's stale/missing-element errors count as "not yet"."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except WebDriverException as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within} s: {what or condition!r} ({last})")
        time.sleep(step)


def wait_css(driver: Any, selector: str, within: float = 10) -> Any:
    """The first element matching the CSS ``selector``, waiting up to ``within`` s."""
    from selenium.webdriver.common.by import By

    def find() -> Any:
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        return found[0] if found else None

    return wait_until(find, within, f"element {selector!r} on {driver.current_url}")


def sign_in(
    driver: Any, base_url: str, username: str, password: str, start: str = "/console/"
) -> None:
    """Open the console at ``start`` (a fresh browser lands on the sign-in page), follow
    ``a#signin`` to the development provider's login form, sign in as ``username`` and
    wait for the console to show who is signed in (``#whoami``). Raises ``TimeoutError``
    when any step does not happen."""
    from selenium.webdriver.common.by import By

    driver.get(base_url.rstrip("/") + start)
    wait_css(driver, "a#signin").click()
    wait_css(driver, "input[name=username]").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
    form = driver.find_element(By.CSS_SELECTOR, "input[name=password]").find_element(
        By.XPATH, "./ancestor::form"
    )
    form.submit()

    def signed_in() -> bool:
        if driver.find_elements(By.CSS_SELECTOR, "#whoami"):
            return True
        # the "Signed in" page continues by itself (meta refresh); click if it lingers
        links = driver.find_elements(By.CSS_SELECTOR, "a#continue")
        if links and "/console/callback" in driver.current_url:
            with contextlib.suppress(Exception):
                links[0].click()
        return False

    wait_until(signed_in, 15, f"signed in (at {driver.current_url})", step=0.5)


def choose(select: Any, wanted: Callable[[str, str], bool]) -> str:
    """Pick the first option of the ``select`` element whose (value, text) satisfies
    ``wanted``; its value. ``AssertionError`` listing the options when none does."""
    from selenium.webdriver.support.select import Select

    menu = Select(select)
    for option in menu.options:
        value, text = option.get_attribute("value") or "", option.text
        if value and wanted(value, text):
            menu.select_by_value(value)
            return value
    shown = [(o.get_attribute("value"), o.text) for o in menu.options]
    raise AssertionError(f"no matching option in {shown}")


def what_if(
    driver: Any, base_url: str, user: Callable[[str, str], bool], device_id: str, resource: str
) -> tuple[str, str]:
    """Ask the what-if page (``form#whatif``, a GET form) whether the user chosen by
    ``user`` (option value, text) on ``device_id`` reaches ``resource``: choose the user
    (the page lists that user's devices once asked), then the device and the resource.
    The answer's ``data-effect`` and text."""
    from selenium.webdriver.common.by import By

    def form() -> Any:
        return wait_css(driver, "form#whatif")

    def device_listed() -> bool:
        select = form().find_element(By.NAME, "device")
        return any(
            o.get_attribute("value") == device_id
            for o in select.find_elements(By.TAG_NAME, "option")
        )

    driver.get(base_url.rstrip("/") + "/console/whatif")
    choose(form().find_element(By.NAME, "user"), user)
    if not device_listed():
        form().find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
        wait_until(device_listed, 10, f"device {device_id} offered for the chosen user")
    choose(form().find_element(By.NAME, "device"), lambda v, t: v == device_id)
    choose(form().find_element(By.NAME, "resource"), lambda v, t: v == resource)
    form().find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()

    def answered() -> Any:
        # the GET form's answer is a new page whose address names what was asked
        if f"resource={resource}" not in driver.current_url:
            return None
        found = driver.find_elements(By.CSS_SELECTOR, "#whatif-result[data-effect]")
        return found[0] if found else None

    result = wait_until(answered, 10, "the what-if answer")
    return str(result.get_attribute("data-effect")), str(result.text)


def edit_rule(
    driver: Any, base_url: str, rule_id: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """On the policy page, open ``rule_id``'s editor, apply ``change`` to its JSON and
    save it to the draft. ``AssertionError`` with the page's ``.form-error`` when the
    console refuses the edit."""
    from selenium.webdriver.common.by import By

    driver.get(base_url.rstrip("/") + "/console/policy")
    row = wait_css(driver, f'table#rules tr[data-id="{rule_id}"]')
    row.find_element(By.CSS_SELECTOR, "a.edit, a").click()
    editor = wait_css(driver, "form#rule-edit textarea[name=body]")
    wait_until(lambda: rule_id in (editor.get_attribute("value") or ""), 10, "the rule loaded")
    body = json.loads(editor.get_attribute("value") or "{}")
    change(body)
    # set the whole text at once, as pasting would (typing a long JSON key by key is slow)
    driver.execute_script("arguments[0].value = arguments[1];", editor, json.dumps(body, indent=2))
    editing = driver.current_url
    wait_css(driver, "#save-draft").click()
    wait_until(
        lambda: (
            driver.current_url != editing
            or any(e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, ".form-error"))
        ),
        10,
        "the draft saved",
    )
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".form-error") if e.text]
    assert not errors, errors


def publish(driver: Any, base_url: str) -> str:
    """Open the policy diff, publish the draft (``form#publish``) and wait for the
    console to confirm; the diff's text as it was published."""
    from selenium.webdriver.common.by import By

    driver.get(base_url.rstrip("/") + "/console/policy/diff")
    diff = str(wait_css(driver, "#diff").text)
    wait_css(driver, "form#publish").find_element(
        By.CSS_SELECTOR, "button, input[type=submit]"
    ).click()
    wait_until(
        lambda: (
            not driver.find_elements(By.CSS_SELECTOR, "form#publish")
            and "/console/policy" in driver.current_url
        ),
        10,
        "the publish confirmed",
    )
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".form-error") if e.text]
    assert not errors, errors
    return diff


def csp_violations(driver: Any) -> list[str]:
    """The browser console's Content-Security-Policy messages since the last call
    (reading the log empties it)."""
    return [
        str(entry.get("message", ""))
        for entry in driver.get_log("browser")
        if "Content Security Policy" in str(entry.get("message", ""))
    ]


# --- simulated devices: what a client sends, through the controller's real device API ---


@dataclass
class SimDevice:
    """A simulated laptop enrolled through the device API, with its own keys."""

    name: str
    user: str
    device_id: str
    signing: Ed25519PrivateKey
    client: ControlPlaneClient
    seq: int = 0

    async def posture(self, facts: dict[str, FactValue]) -> None:
        """Send a signed posture report with these facts (plus host name and client
        version)."""
        now = time.time()
        nonce = await self.client.posture_nonce(self.device_id)
        values: dict[str, FactValue] = {
            "client.version": "1.4.0",
            "device.hostname": self.name,
            **facts,
        }
        report = PostureReport(
            device_id=self.device_id,
            nonce=nonce.nonce,
            issued_at=now,
            facts=tuple(Fact.of(name, value, now) for name, value in values.items()),
        )
        await self.client.submit_posture(self.device_id, sign_report(report, self.signing))

    async def decide(self, events: Sequence[DecisionEvent]) -> None:
        """Send these decisions as one signed batch (level ``full``)."""
        self.seq += 1
        batch = DecisionBatch(
            device_id=self.device_id,
            seq=self.seq,
            iat=time.time(),
            level="full",
            events=tuple(events),
        )
        await self.client.submit_decisions(self.device_id, sign_batch(batch, self.signing))


async def enroll_device(rc: Any, user: Any, name: str, platform: str = "linux") -> SimDevice:
    """Sign ``user`` (a ``DemoUser``) in at ``rc`` (a ``RunningController``) and enroll
    a new simulated device called ``name`` through the device API."""
    from controller.testing import login

    tokens = await login(rc, user.username, user.password)
    signing = Ed25519PrivateKey.generate()
    wg = X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    client = ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None)
    enrolled = await client.enroll(
        EnrollRequest(
            name=name,
            platform=platform,  # type: ignore[arg-type]
            wg_public_key=base64.b64encode(wg.public_key().public_bytes(*raw)).decode(),
            signing_key=b64url(signing.public_key().public_bytes(*raw)),
        )
    )
    return SimDevice(name, enrolled.user, enrolled.device_id, signing, client)
