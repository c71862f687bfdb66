"""The words of policy, posture, settings, onboarding and the proxy's pages go through
``core.i18n`` (issue 18, deliverable 8): with a translator installed that marks every text
it is asked for («…»), what the employee reads comes out marked, the data in it (group
names, versions, keys, a rule's id) does not, and the block page escapes a translation as
it escapes everything else."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from core import i18n
from core.controlplane.onboard import InputError, LookupFailedError, parse_join_link
from core.policy.engine import PolicyEngine
from core.policy.risk import risk_label
from core.proxy.answers import HttpAnswer
from core.settings.errors import SettingValueError
from core.settings.model import SPECS
from core.wire.posture import fact_words
from tests.core.policy.helpers import NOW, bundle, fact, req, rule

pytestmark = pytest.mark.unit

# ``core.posture`` re-exports the function under the module's name: take the module.
remediation = importlib.import_module("core.posture.remediation").remediation


def _mark(context: str, text: str, disambiguation: str | None, n: int) -> str:
    del context, disambiguation, n
    return "«" + text + "»"


@pytest.fixture
def marked() -> Iterator[None]:
    """Every translated text comes back as «text»; English again afterwards."""
    i18n.install(_mark, "xx")
    try:
        yield
    finally:
        i18n.install(None)


def _denied(condition: object, **facts: object) -> tuple[str, str, str]:
    e = PolicyEngine(clock=lambda: NOW, record=False)
    e.load(bundle(rule("r1", conditions=condition)))  # type: ignore[arg-type]
    e.set_facts({k.replace("__", "."): v for k, v in facts.items()})
    d = e.decide(req())
    assert not d.allowed
    assert d.unmet
    return d.reason, d.unmet[0].plain, d.unmet[0].remediation


def test_a_denied_decisions_explanation_is_translated(marked: None) -> None:
    reason, plain, fix = _denied(
        fact("posture.firewall.enabled", "eq", True), posture__firewall__enabled=False
    )
    # "{need} — {now}", "needs {subject} {state}", "it is {value}" and the fact's words.
    assert plain == "««needs «the firewall» «on»» — «it is «off»»»"
    assert plain in reason
    assert fix == "«Turn on the firewall in your system's security settings.»"


def test_group_names_are_data_and_stay_as_they_are(marked: None) -> None:
    _, plain, _ = _denied(fact("user.groups", "eq", "Finance"))
    assert plain == "«needs group Finance — you are in «eng and staff»»"  # req() groups
    assert "«Finance" not in plain


def test_an_unknown_posture_fact_reads_could_not_be_checked(marked: None) -> None:
    _, plain, fix = _denied(fact("posture.firewall.enabled", "eq", True))
    assert plain == "««needs «the firewall» «on»» — «it could not be checked»»"
    assert fix.startswith("«Turn on the firewall")
    assert fix.endswith(
        " «If it is already so, re-run the device check (posture could not be read).»"
    )


def test_a_posture_items_label_and_fix_are_translated(marked: None) -> None:
    words = fact_words("posture.firewall.enabled")
    assert (words.label, words.subject, words.yes, words.no) == (
        "«Firewall»",
        "«the firewall»",
        "«on»",
        "«off»",
    )
    assert fact_words("process.falcon.running").label == "«Program “falcon”»"
    assert fact_words("file./etc/agent.present").no == "«missing»"
    assert remediation("firewall.enabled", "linux") == (
        "«Turn on the firewall: sudo ufw enable (or: sudo systemctl enable --now firewalld)»"
    )
    assert remediation("process.falcon.running", "linux") == (
        "«Start “falcon” (it must be running), or ask IT to install it»"
    )
    assert risk_label("posture.av.running") == "««Antivirus» «not running»»"
    assert risk_label("deny_streak") == "«Many connections refused in a row»"


def test_a_settings_words_are_translated_and_its_key_is_not(marked: None) -> None:
    spec = SPECS["proxy_port"]
    assert spec.label() == "«Local proxy port»"
    assert spec.help().startswith("«Loopback TCP port")
    assert spec.category_label() == "«Connection»"
    # The model itself stays English: the MDM templates are generated from it.
    assert spec.title == "Local proxy port"
    with pytest.raises(SettingValueError) as info:
        spec.validate(80)
    assert str(info.value) == (
        "proxy_port: expected «a whole number from 1024 to 65535», got number 80"
    )
    with pytest.raises(SettingValueError) as info:
        SPECS["controller_url"].validate("http://controller.example.com")
    assert "«http:// is allowed only for loopback; use https://»" in str(info.value)


def test_the_block_page_is_translated_and_the_reason_is_not(marked: None) -> None:
    body = HttpAnswer(tunnel=True).deny("Git needs group Finance", "allow-git")
    text = body.decode()
    assert text.startswith("HTTP/1.1 403")
    assert "<title>«Rustronaut: «Access blocked»»</title>" in text
    assert "<h1>«Access blocked»</h1>" in text
    assert "<p>Git needs group Finance</p>" in text
    assert "<p>«Rule:» <code>allow-git</code></p>" in text
    failure = HttpAnswer(tunnel=False).failure(TimeoutError()).decode()
    assert "«Cannot reach destination»" in failure
    assert "«the destination did not answer in time»" in failure


def test_the_block_page_escapes_a_translation() -> None:
    i18n.install(lambda c, t, d, n: "<script>x</script>" + t, "xx")
    try:
        text = HttpAnswer(tunnel=True).deny("a <b> reason", "r&1").decode()
    finally:
        i18n.install(None)
    assert "<script>" not in text
    assert "<h1>&lt;script&gt;x&lt;/script&gt;Access blocked</h1>" in text
    assert "<p>&lt;script&gt;x&lt;/script&gt;Rule:" in text
    assert "<p>a &lt;b&gt; reason</p>" in text
    assert "<code>r&amp;1</code>" in text


def test_onboarding_errors_are_translated(marked: None) -> None:
    with pytest.raises(InputError) as info:
        parse_join_link("rustronaut://nope")
    err = info.value
    assert err.title == "«That does not look like a work email or an address»"
    assert err.next_step.startswith("«Type your work email")
    assert str(err).startswith("«This join link is not valid.")
    assert LookupFailedError("x").title == "«Rustronaut could not look up your organisation»"


def test_english_when_no_translator_is_installed() -> None:
    assert i18n.installed_language() == "en"
    assert fact_words("firewall.enabled").label == "Firewall"
    assert SPECS["proxy_port"].label() == "Local proxy port"
    assert InputError("x").title == "That does not look like a work email or an address"
    assert b"<h1>Access blocked</h1>" in HttpAnswer(tunnel=True).deny("r", None)
