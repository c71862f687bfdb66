"""The engine's words go through core.i18n: with a marking translator installed, every
title, detail and next step ``explain`` gives, the notices the tray shows and the status
words come out marked; codes and event details stay data. ``rustronaut agent`` installs
the system language's .ts translations; the other commands stay English."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core import i18n
from core.auth.errors import LoginTimeout, describe_skew
from core.cli.main import main
from core.controlplane.errors import (
    CaptivePortalError,
    ControllerUnreachableError,
    ProxyFailedError,
)
from core.engine.errors import (
    HelperLostError,
    ReasonTooShortError,
    SignInRequiredError,
    explain,
)
from core.engine.localapi.errors import EngineNotRunningError
from core.engine.state import (
    POSTURE_STATUS_WORDS,
    EventKind,
    PostureItem,
    posture_status_word,
    posture_summary,
)
from core.errors import GENERIC_NEXT_STEP, translated
from core.policy.errors import BundleExpiredError
from core.posture.errors import PostureConfigError
from core.proxy.errors import ProxyStartError
from core.settings.errors import SettingLockedError
from tests.core.engine.test_engine import make

pytestmark = pytest.mark.unit


def _mark(context: str, text: str, disambiguation: str | None, n: int) -> str:
    return "«" + text + "»"


def _marked(text: str) -> bool:
    return text.startswith("«") and "»" in text


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    i18n.install(None)
    yield
    i18n.install(None)


@pytest.fixture
def marking() -> list[tuple[str, str]]:
    """Install the marking translator; the (context, text) pairs it was asked for."""
    asked: list[tuple[str, str]] = []

    def mark(context: str, text: str, disambiguation: str | None, n: int) -> str:
        asked.append((context, text))
        return _mark(context, text, disambiguation, n)

    i18n.install(mark, "xx")
    return asked


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as exc:
        return exc


# ---------------------------------------------------------------------------- explain
_RAISED_AFTER_INSTALL: list[tuple[str, Callable[[], BaseException]]] = [
    ("helper lost", lambda: HelperLostError()),
    ("reason too short", lambda: ReasonTooShortError()),
    (
        "controller refused",
        lambda: _chained(ControllerUnreachableError("x"), ConnectionRefusedError()),
    ),
    ("dns", lambda: _chained(ControllerUnreachableError("x"), socket.gaierror(-2, "nope"))),
    ("tls", lambda: ssl.SSLCertVerificationError(1, "certificate verify failed")),
    ("local file", lambda: PermissionError(13, "Permission denied", "/x/y")),
    ("unknown", lambda: RuntimeError("boom")),
]


@pytest.mark.parametrize(
    "make_error", [m for _, m in _RAISED_AFTER_INSTALL], ids=[n for n, _ in _RAISED_AFTER_INSTALL]
)
def test_explain_gives_title_detail_and_next_step_in_the_installed_language(
    marking: list[tuple[str, str]], make_error: Callable[[], BaseException]
) -> None:
    info = explain(make_error(), during=i18n.translate("core.engine.reactions", "connecting"))
    assert _marked(info.title), info
    assert _marked(info.detail), info
    assert _marked(info.next_step), info
    assert info.code
    assert not _marked(info.code)


@pytest.mark.parametrize(
    ("error", "context"),
    [
        (SignInRequiredError("You are not signed in."), "core.engine.errors"),
        (LoginTimeout("no answer"), "core.auth.errors"),
        (BundleExpiredError("expired at noon"), "core.policy.errors"),
        (SettingLockedError("set by IT", key="proxy_port"), "core.settings.errors"),
        (ProxyStartError("port 9080 is in use"), "core.proxy.errors"),
        (PostureConfigError("bad interval"), "core.posture.errors"),
        (EngineNotRunningError("no agent"), "core.engine.localapi.errors"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v,
)
def test_package_errors_raised_before_the_language_is_installed_are_explained_in_it(
    error: BaseException, context: str, marking: list[tuple[str, str]]
) -> None:
    # made at collection, in English: shown after the language is installed
    title, next_step = getattr(error, "title"), getattr(error, "next_step")  # noqa: B009
    assert not _marked(title)
    info = explain(error, during="connecting")
    assert info.title == f"«{title}»"
    assert info.next_step == f"«{next_step}»"
    assert (context, title) in marking  # the context of the module that marked it
    assert info.detail == str(error.args[0])  # the raiser's words, as given


def test_package_errors_raised_after_install_carry_their_words_marked_once(
    marking: list[tuple[str, str]],
) -> None:
    error = SettingLockedError("set by IT")
    assert error.title == f"«{SettingLockedError.title}»"
    assert error.next_step == f"«{SettingLockedError.next_step}»"
    info = explain(error, during="connecting")
    assert info.title == error.title  # not «« »»
    assert info.next_step == error.next_step
    assert translated(error, "title") == error.title
    auth = LoginTimeout("no answer")
    assert auth.next_step == f"«{LoginTimeout.default_next_step}»"


def test_words_made_at_runtime_are_marked(marking: list[tuple[str, str]]) -> None:
    proxy = ProxyFailedError("x", proxy="http://proxy:3128", source="PAC")
    assert _marked(proxy.detail)
    assert "http://proxy:3128" in proxy.detail
    assert _marked(proxy.next_step)
    portal = CaptivePortalError("x", portal_url="http://portal.example/login")
    assert _marked(portal.detail)
    assert portal.detail.endswith("http://portal.example/login»")
    assert (
        describe_skew(600)
        == "«This computer's clock is 10 minutes off the identity provider's (ahead)»"
    )
    assert (
        describe_skew(-60)
        == "«This computer's clock is 1 minute off the identity provider's (behind)»"
    )


def test_without_a_translation_the_english_words_are_unchanged() -> None:
    info = explain(RuntimeError("boom"), during="connecting")
    assert info.title == "Problem while connecting"
    assert info.detail == "Something unexpected went wrong: boom"
    assert info.next_step == GENERIC_NEXT_STEP
    short = ReasonTooShortError()
    assert short.next_step == ReasonTooShortError.next_step
    assert str(short) == "Your organization requires a reason of at least 10 characters."
    assert (
        describe_skew(60) == "This computer's clock is 1 minute off the identity provider's (ahead)"
    )
    assert describe_skew(-180) == (
        "This computer's clock is 3 minutes off the identity provider's (behind)"
    )


# ----------------------------------------------------------------------- status words
def _item(status: str, required: bool = True) -> PostureItem:
    return PostureItem(name=status, label=status, value="", status=status, required=required)


def test_posture_words_and_summary_in_the_installed_language(
    marking: list[tuple[str, str]],
) -> None:
    assert posture_status_word("pass") == "«✓ Pass»"
    assert posture_status_word("something new") == "«? Unknown»"
    assert ("core.engine.state", POSTURE_STATUS_WORDS["fail"]) not in marking
    posture_status_word("fail")
    assert ("core.engine.state", POSTURE_STATUS_WORDS["fail"]) in marking
    two_failed = (_item("fail"), _item("fail"), _item("pass"))
    assert posture_summary(two_failed) == "«2 checks need attention · 1 of 3 pass»"
    assert posture_summary(()) == "«No posture checks yet»"


@pytest.mark.parametrize(
    ("statuses", "words"),
    [
        ((), "No posture checks yet"),
        ((("pass", False),), "Your policy requires no device checks"),
        ((("fail", True), ("pass", True), ("pass", True)), "1 check needs attention · 2 of 3 pass"),
        ((("fail", True), ("fail", True)), "2 checks need attention · 0 of 2 pass"),
        ((("unknown", True), ("pass", True)), "1 check could not be made · 1 of 2 pass"),
        ((("unknown", True), ("unknown", True)), "2 checks could not be made · 0 of 2 pass"),
        ((("pass", True), ("pass", False)), "All good · 1 of 1 checks pass"),
    ],
)
def test_posture_summary_english_is_unchanged(
    statuses: tuple[tuple[str, bool], ...], words: str
) -> None:
    assert posture_summary(tuple(_item(s, r) for s, r in statuses)) == words


# ---------------------------------------------------------------------- engine events
async def test_the_notices_of_a_connect_are_in_the_installed_language(
    marking: list[tuple[str, str]],
) -> None:
    rig = make(auto_connect=False)
    await rig.engine.start()
    await rig.engine.connect()
    notices = [e for e in rig.events if e.kind is EventKind.NOTICE]
    assert notices
    assert all(_marked(e.message) for e in notices)
    connected = [e for e in notices if e.details.get("notice") == "connected"]
    assert [e.message for e in connected] == ["«Connected»"]
    await rig.engine.stop()


async def test_an_engine_error_event_has_marked_words_and_plain_codes(
    marking: list[tuple[str, str]],
) -> None:
    rig = make(user=False)
    await rig.engine.start()
    await rig.engine.connect()
    prompt = [e for e in rig.events if e.details.get("action") == "sign_in"]
    assert prompt
    assert prompt[-1].message.startswith("«Sign-in needed: ")
    assert _marked(prompt[-1].details["next"])
    assert prompt[-1].details["action"] == "sign_in"  # data stays data
    await rig.engine.stop()


# ------------------------------------------------------------------ rustronaut agent
_DE_TS = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de" sourcelanguage="en">
<context>
    <name>core.engine.errors</name>
    <message>
        <source>Sign-in needed</source>
        <translation>Anmeldung nötig</translation>
    </message>
</context>
</TS>
"""


@pytest.fixture
def german(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rustronaut_de.ts").write_text(_DE_TS, "utf-8")
    monkeypatch.setattr(i18n, "i18n_dir", lambda: tmp_path)
    monkeypatch.setenv(i18n.LANG_ENV, "de")
    return tmp_path


def test_rustronaut_agent_installs_the_system_languages_translations(
    german: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    async def fake_run_agent(**_: object) -> None:
        seen.append(explain(SignInRequiredError("x"), during="connecting").title)

    monkeypatch.setattr("core.engine.localapi.agent.run_agent", fake_run_agent)
    assert main(["agent"]) == 0
    assert seen == ["Anmeldung nötig"]
    assert i18n.installed_language() == "de"
    assert "rustronaut agent: language de" in capsys.readouterr().err  # the CLI's English


def test_rustronaut_agent_in_english_installs_nothing(
    german: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(i18n.LANG_ENV, "en")
    seen: list[str] = []

    async def fake_run_agent(**_: object) -> None:
        seen.append(explain(SignInRequiredError("x"), during="connecting").title)

    monkeypatch.setattr("core.engine.localapi.agent.run_agent", fake_run_agent)
    assert main(["agent"]) == 0
    assert seen == ["Sign-in needed"]
    assert i18n.installed_language() == "en"


def test_other_commands_stay_english(german: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert i18n.installed_language() == "en"
    assert capsys.readouterr().out
