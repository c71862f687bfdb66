"""The first-run onboarding window and the start-up error window, real widgets offscreen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from app.windows.onboarding import PROMPT, OnboardingWindow, Stage
from app.windows.startup_error import StartupErrorWindow, plain_reason
from controller.testing import run_controller
from core.controlplane.onboard import Found, FoundBy, LookupFailedError, RecordRefusedError
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.ui

CTL = "https://zt.example.com"


def fully_visible(window: QWidget, label: QLabel) -> None:
    """``label`` is shown, inside the window, and tall and wide enough for all its text."""
    assert label.isVisible(), label.text()
    top_left = label.mapTo(window, label.rect().topLeft())
    bottom_right = label.mapTo(window, label.rect().bottomRight())
    assert window.rect().contains(top_left), label.text()
    assert window.rect().contains(bottom_right), label.text()
    if label.wordWrap():
        assert label.height() >= label.heightForWidth(label.width()), label.text()
    else:
        assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width(), label.text()


@pytest.fixture(autouse=True)
def _keep_running(qapp):  # type: ignore[no-untyped-def]
    """As in the tray app: closing the last window must not stop the (qasync) loop."""
    before = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    yield
    qapp.setQuitOnLastWindowClosed(before)


def _show(qtbot, window: QWidget) -> QWidget:  # type: ignore[no-untyped-def]
    qtbot.addWidget(window)
    window.resize(window.sizeHint())  # the default size
    window.show()  # no qtbot.wait* here: async tests run on the qasync loop already
    return window


async def _settled(window: OnboardingWindow) -> None:
    await async_wait_until(lambda: window.stage is not Stage.LOOKING, what="the lookup")


async def test_an_email_finds_the_controller_and_use_saves_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    asked: list[str] = []
    saved: list[str] = []

    async def find(typed: str) -> Found:
        asked.append(typed)
        return Found(CTL, FoundBy.WEB, "example.com")

    window = OnboardingWindow(find=find, save=saved.append)
    _show(qtbot, window)
    assert window.prompt.text() == PROMPT
    fully_visible(window, window.prompt)
    window.field.setText("alice@example.com")
    qtbot.keyClick(window.field, Qt.Key.Key_Return)  # Enter looks up
    await _settled(window)
    assert asked == ["alice@example.com"]
    assert window.stage is Stage.FOUND
    assert window.found_url.text() == CTL
    assert window.found_how.text() == "Published by example.com on its web site."
    for label in (window.status, window.found_title, window.found_url, window.found_how):
        fully_visible(window, label)
    confirmed: list[str] = []
    window.confirmed.connect(confirmed.append)
    qtbot.keyClick(window, Qt.Key.Key_Return)  # Enter uses the controller on show
    assert confirmed == [CTL]
    assert saved == [CTL]


async def test_change_goes_back_and_keeps_what_was_typed(qtbot) -> None:  # type: ignore[no-untyped-def]
    async def find(typed: str) -> Found:
        return Found(CTL, FoundBy.DNS, "example.com")

    window = OnboardingWindow(find=find, save=lambda url: None)
    _show(qtbot, window)
    window.field.setText("example.com")
    window.find_button.click()
    await _settled(window)
    window.change_button.click()
    assert window.stage is Stage.ASK
    assert window.field.text() == "example.com"
    assert window.field.isEnabled()
    assert not window.use_button.isVisible()


@pytest.mark.parametrize(
    "error",
    [
        RecordRefusedError(
            "example.com answered with a redirect to 'https://evil.example/'; Rustronaut "
            "does not follow redirects when looking for a controller."
        ),
        LookupFailedError("Rustronaut could not reach example.com or its DNS records."),
    ],
)
async def test_a_refused_or_failed_lookup_is_shown_in_words(qtbot, error: Exception) -> None:  # type: ignore[no-untyped-def]
    async def find(typed: str) -> Found:
        raise error

    window = OnboardingWindow(find=find, save=lambda url: pytest.fail("nothing to save"))
    _show(qtbot, window)
    window.field.setText("example.com")
    window.find_button.click()
    await _settled(window)
    assert window.stage is Stage.FAILED
    assert window.status.text() == str(error)
    assert window.next_step.text() == error.next_step  # type: ignore[attr-defined]
    assert not window.use_button.isVisible()
    assert window.field.isEnabled()  # edit and try again
    fully_visible(window, window.status)
    fully_visible(window, window.next_step)


async def test_a_failed_save_is_shown_and_nothing_is_confirmed(qtbot) -> None:  # type: ignore[no-untyped-def]
    from core.settings import SettingLockedError

    async def find(typed: str) -> Found:
        return Found(CTL, FoundBy.WEB, "example.com")

    def save(url: str) -> None:
        raise SettingLockedError("controller_url is set by your organization", key="k")

    window = OnboardingWindow(find=find, save=save)
    _show(qtbot, window)
    window.field.setText("example.com")
    window.find_button.click()
    await _settled(window)
    confirmed: list[str] = []
    window.confirmed.connect(confirmed.append)
    window.use_button.click()
    assert confirmed == []
    assert window.stage is Stage.FAILED
    assert "set by your organization" in window.status.text()


async def test_a_join_link_opens_on_the_controller_to_confirm(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = OnboardingWindow(link=f"rustronaut://join?controller={CTL}", save=lambda u: None)
    _show(qtbot, window)
    await _settled(window)
    assert window.stage is Stage.FOUND
    assert window.found_url.text() == CTL
    assert window.found_how.text() == "Named by the join link you opened."


async def test_a_hostile_join_link_is_refused(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = OnboardingWindow(
        link="rustronaut://join?controller=http://evil.example", save=lambda u: None
    )
    _show(qtbot, window)
    await _settled(window)
    assert window.stage is Stage.FAILED
    assert "not secure" in window.status.text()


async def test_closing_without_confirming_says_closed(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = OnboardingWindow(save=lambda u: None)
    _show(qtbot, window)
    closed: list[bool] = []
    window.closed.connect(lambda: closed.append(True))
    window.close()
    assert closed == [True]


async def test_the_reference_controller_is_found_and_saved(
    qtbot, tmp_env: None, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """From an empty profile: the controller's address typed, found over real HTTP on
    loopback, confirmed, and saved as the user's controller_url (as ``config set`` does)."""
    from core.paths import user_settings_file
    from core.settings import load

    async with run_controller() as ctl:
        window = OnboardingWindow()
        _show(qtbot, window)
        window.field.setText(ctl.base_url)
        window.find_button.click()
        await async_wait_until(lambda: window.stage is not Stage.LOOKING, timeout=15)
        assert window.stage is Stage.FOUND, window.status.text()
        assert window.found_url.text() == ctl.base_url
        confirmed: list[str] = []
        window.confirmed.connect(confirmed.append)
        window.use_button.click()
        assert confirmed == [ctl.base_url]
    assert load().controller_url == ctl.base_url
    assert load().source("controller_url") == "user"
    assert json.loads(user_settings_file().read_text())["controller_url"] == ctl.base_url


# ----------------------------------------------------------------------- start-up error
def test_plain_reason_drops_errno_and_escapes() -> None:
    assert plain_reason("could not connect: [Errno 111] Connection refused") == (
        "could not connect: Connection refused"
    )
    assert plain_reason("a\nb") == "a\\nb"


def test_the_start_up_error_shows_words_and_retry(qtbot) -> None:  # type: ignore[no-untyped-def]
    box = StartupErrorWindow(
        "Rustronaut could not reach your organisation's controller.",
        "Check your network connection, then choose Retry. If it keeps failing, tell IT.",
    )
    qtbot.addWidget(box)
    box.open()
    qtbot.waitExposed(box)
    assert box.textFormat() == Qt.TextFormat.PlainText
    assert box.defaultButton() is box.retry_button
    label = next(w for w in box.findChildren(QLabel) if w.text() == box.text())
    fully_visible(box, label)
    with qtbot.waitSignal(box.retry_requested):
        box.retry_button.click()


def test_the_start_up_error_quit(qtbot) -> None:  # type: ignore[no-untyped-def]
    box = StartupErrorWindow("Rustronaut could not start: bad config.", "Tell IT.")
    qtbot.addWidget(box)
    box.open()
    with qtbot.waitSignal(box.quit_requested):
        box.quit_button.click()
