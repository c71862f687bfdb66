"""The sign-in window while the employee waits for the browser (issue #18, deliver 2).

Real widgets offscreen against the scripted engine, extended here by an engine whose
sign-in waits until it is approved, abandoned by ``sign_out`` (as the real engine's
``_cancel_sign_in`` does) or timed out with the real engine's words for ``LoginTimeout``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget

from core.auth.errors import LoginTimeout
from core.engine.errors import explain
from core.engine.state import ErrorInfo, EventKind, SessionState, Snapshot
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = pytest.mark.ui

URL = "https://login.corp.example/authorize?state=s1"


class WaitingEngine(ScriptedEngine):
    """A sign-in that waits for ``approve()``, ``time_out()`` or a ``sign_out``.

    Like the real engine: one attempt at a time (a second ``sign_in`` joins the running
    one); ``sign_out`` abandons a running attempt and leaves the engine signed out.
    """

    def __init__(self) -> None:
        super().__init__(settings=demo_settings())
        self._attempt: asyncio.Future[ErrorInfo | None] | None = None

    async def sign_in(
        self, *, device_code: bool = False, open_url: Callable[[str], None] | None = None
    ) -> None:
        self.calls.append(("sign_in", {"device_code": device_code}))
        if self._attempt is not None and not self._attempt.done():
            await asyncio.shield(self._attempt)  # joins the running attempt
            return
        attempt = self._attempt = asyncio.get_running_loop().create_future()
        self.set_state(SessionState.SIGNING_IN, error=None)
        if device_code:
            self.emit(
                EventKind.NOTICE,
                details={
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://login.corp.example/device",
                },
            )
        elif open_url is not None:
            open_url(URL)
        try:
            error = await attempt
        except asyncio.CancelledError:
            if attempt.cancelled():  # abandoned by sign_out: not this caller's failure
                return
            raise
        if error is None:
            self.publish(self.signed_in_snapshot)
        else:
            self.publish(
                dataclasses.replace(self.snapshot, state=SessionState.ERROR, error=error),
                EventKind.ERROR,
                message=error.title,
            )

    async def sign_out(self, *, break_glass_reason: str | None = None) -> None:
        self.calls.append(("sign_out", {"break_glass_reason": break_glass_reason}))
        if self._attempt is not None and not self._attempt.done():
            self._attempt.cancel()
        self.publish(Snapshot(state=SessionState.SIGNED_OUT))

    def approve(self) -> None:
        assert self._attempt is not None
        self._attempt.set_result(None)

    def time_out(self, error: ErrorInfo) -> None:
        assert self._attempt is not None
        self._attempt.set_result(error)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    """Poll ``pred`` on the running loop (Qt keeps running) until it holds."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


@pytest.fixture
def waiting() -> WaitingEngine:
    return WaitingEngine()


async def open_waiting(make_app, engine: WaitingEngine):  # type: ignore[no-untyped-def]
    """The app and its sign-in window, with a browser sign-in waiting for the browser."""
    app = make_app(engine)
    w = app.actions.show_window("signin")
    w.browser.click()
    await until(lambda: engine.snapshot.state is SessionState.SIGNING_IN)
    await until(lambda: w.open_again.isVisible())
    return app, w


def plain(button: QAbstractButton) -> str:
    return button.text().replace("&", "")


def visible_buttons(w: QWidget) -> list[str]:
    return [plain(b) for b in w.findChildren(QAbstractButton) if b.isVisible()]


# -- while waiting for the browser ------------------------------------------------------


async def test_waiting_offers_cancel_copy_open_again_and_a_code(make_app, waiting) -> None:
    app, w = await open_waiting(make_app, waiting)
    shown = visible_buttons(w)
    for words in ("Cancel sign-in", "Copy link", "Open again", "Use a code instead"):
        assert words in shown
    assert w.cancel.isEnabled()
    assert w.copy_link.isEnabled()
    assert w.open_again.isEnabled()
    assert w.device.isEnabled()  # "Use a code instead" at any time, also while waiting
    assert app.opened == [URL]


async def test_copy_link_puts_the_sign_in_page_on_the_clipboard(make_app, waiting) -> None:
    _app, w = await open_waiting(make_app, waiting)
    QApplication.clipboard().setText("")
    w.copy_link.click()
    assert QApplication.clipboard().text() == URL
    assert w.note.text() == "Link copied. Paste it into your browser's address bar."


async def test_open_again_opens_the_same_page(make_app, waiting) -> None:
    app, w = await open_waiting(make_app, waiting)
    w.open_again.click()
    assert app.opened == [URL, URL]
    assert waiting.names() == ["sign_in"]  # the same attempt: no new sign-in


async def test_cancel_abandons_the_attempt(make_app, waiting) -> None:
    _app, w = await open_waiting(make_app, waiting)
    w.cancel.click()
    await until(lambda: waiting.snapshot.state is SessionState.SIGNED_OUT)
    assert waiting.names() == ["sign_in", "sign_out"]
    await until(lambda: w.browser.isVisible() and w.browser.isEnabled())
    assert w.title.text() == "Sign in to Rustronaut"
    assert not w.progress.isVisible()
    assert not w.cancel.isVisible()
    assert not w.open_again.isVisible()
    assert w.error_box.isHidden()  # cancelled on purpose: no failure shown
    assert w.isVisible()  # the employee may still choose a code or try again


async def test_escape_cancels_a_waiting_sign_in(make_app, waiting) -> None:
    _app, w = await open_waiting(make_app, waiting)
    QTest.keyClick(w, Qt.Key.Key_Escape)
    await until(lambda: waiting.snapshot.state is SessionState.SIGNED_OUT)
    assert waiting.names() == ["sign_in", "sign_out"]


async def test_escape_closes_the_window_when_nothing_is_running(make_app, waiting) -> None:
    app = make_app(waiting)
    w = app.actions.show_window("signin")
    QTest.keyClick(w, Qt.Key.Key_Escape)
    assert not w.isVisible()
    assert waiting.names() == []


async def test_use_a_code_while_waiting_switches_to_the_device_code(make_app, waiting) -> None:
    """The engine runs one sign-in at a time: the browser attempt is abandoned first,
    then the device-code sign-in starts and its code is shown."""
    _app, w = await open_waiting(make_app, waiting)
    w.device.click()
    await until(lambda: not w.code_box.isHidden())
    assert waiting.names() == ["sign_in", "sign_out", "sign_in"]
    assert [c[1]["device_code"] for c in waiting.calls if c[0] == "sign_in"] == [False, True]
    assert w.code.text() == "WDJB-MJHT"
    assert not w.open_again.isVisible()
    assert not w.copy_link.isVisible()
    waiting.approve()
    await until(lambda: w.title.text() == "You're signed in")


async def test_use_a_code_when_signed_out_starts_the_device_code(make_app, waiting) -> None:
    app = make_app(waiting)
    w = app.actions.show_window("signin")
    w.device.click()
    await until(lambda: not w.code_box.isHidden())
    assert waiting.names() == ["sign_in"]
    assert app.opened == []  # no browser page for the device code


async def test_a_renewal_offers_the_page_but_no_cancel(make_app, waiting) -> None:
    """Signing in again while signed in: sign_out would end the session, so the window
    offers no Cancel and no switch to a code; Escape only closes it."""
    waiting.publish(demo_snapshot(SessionState.CONNECTED))
    app = make_app(waiting)
    w = app.actions.show_window("signin")
    app.actions.extend_session()
    await until(lambda: w.open_again.isVisible())
    assert w.title.text() == "Finish signing in"
    assert not w.cancel.isVisible()
    assert not w.device.isEnabled()
    QTest.keyClick(w, Qt.Key.Key_Escape)
    assert not w.isVisible()
    assert waiting.names() == ["sign_in"]


# -- keyboard ---------------------------------------------------------------------------


async def test_enter_presses_sign_in_with_browser(make_app, waiting) -> None:
    app = make_app(waiting)
    w = app.actions.show_window("signin")
    assert w.browser.isDefault()
    QTest.keyClick(w, Qt.Key.Key_Return)
    await until(lambda: waiting.snapshot.state is SessionState.SIGNING_IN)
    assert [c[1]["device_code"] for c in waiting.calls] == [False]


async def test_enter_while_waiting_opens_the_page_again(make_app, waiting) -> None:
    app, w = await open_waiting(make_app, waiting)
    assert w.open_again.isDefault()
    QTest.keyClick(w, Qt.Key.Key_Enter)
    assert app.opened == [URL, URL]


async def test_enter_after_sign_in_closes_the_window(make_app, waiting) -> None:
    _app, w = await open_waiting(make_app, waiting)
    waiting.approve()
    await until(lambda: w.title.text() == "You're signed in")
    assert w.close_button.isDefault()
    QTest.keyClick(w, Qt.Key.Key_Return)
    assert not w.isVisible()


# -- the five-minute timeout ------------------------------------------------------------

TIMEOUT = explain(
    LoginTimeout("No answer from the browser within 300 seconds."), during="signing in"
)
#: The shape the employee saw in issue 18: the class name in front of the message.
RAW_TIMEOUT = ErrorInfo(
    "Problem while signing in",
    "Something unexpected went wrong: LoginTimeout: No answer from the browser within 300 seconds.",
    "Try again.",
    "internal",
)


@pytest.mark.parametrize("error", [TIMEOUT, RAW_TIMEOUT], ids=["engine-words", "class-name"])
async def test_timeout_shows_words_and_try_again(make_app, waiting, error) -> None:
    _app, w = await open_waiting(make_app, waiting)
    waiting.time_out(error)
    await until(lambda: not w.error_box.isHidden())
    shown = "\n".join([w.error_box.title(), w.error_text.text(), w.title.text(), w.body.text()])
    assert "LoginTimeout" not in shown
    assert "Error" not in shown.replace("error", "")
    assert "No answer from the browser within 300 seconds." in w.error_text.text()
    assert "What to do:" in w.error_text.text()
    assert plain(w.browser) == "Try again"
    assert w.browser.isDefault()
    assert w.browser.isEnabled()
    assert not w.cancel.isVisible()
    assert not w.open_again.isVisible()
    QTest.keyClick(w, Qt.Key.Key_Return)  # Enter tries again
    await until(lambda: waiting.snapshot.state is SessionState.SIGNING_IN)
    assert w.error_box.isHidden()
    assert [c[1]["device_code"] for c in waiting.calls] == [False, False]


def test_sign_in_error_words_drop_a_class_name() -> None:
    from app.windows.signin import error_words

    title, body = error_words(RAW_TIMEOUT)
    assert title == "Problem while signing in"
    assert body == (
        "Something unexpected went wrong: No answer from the browser within 300 seconds."
        "\n\nWhat to do: Try again."
    )
    assert error_words(TIMEOUT) == (
        "Sign-in took too long",
        "No answer from the browser within 300 seconds.\n\n"
        "What to do: Sign in again and finish the login in the browser in time.",
    )
    # Words with a colon that are not a class name stay as they are.
    info = ErrorInfo("Sign-in failed", "Provider said: access denied", "Ask IT.", "x")
    assert error_words(info)[1] == "Provider said: access denied\n\nWhat to do: Ask IT."


# -- every key text fully visible at the default size ------------------------------------


def clipped(w: QWidget) -> list[str]:
    """Visible labels and buttons whose text does not fit their widget (a wrapped label
    needs ``heightForWidth`` at its width; anything else its text's advance)."""
    QApplication.processEvents()
    bad: list[str] = []
    for label in w.findChildren(QLabel):
        if not label.isVisible() or not label.text():
            continue  # hidden, or the logo (a pixmap)
        if label.textFormat() is Qt.TextFormat.RichText:
            continue  # the link: checked by its plain words below
        margins = label.contentsMargins()
        width = label.width() - margins.left() - margins.right()
        if label.wordWrap():
            if label.heightForWidth(label.width()) > label.height():
                bad.append(label.text())
        elif label.fontMetrics().horizontalAdvance(label.text()) > width:
            bad.append(label.text())
        if label.mapTo(w, label.rect().bottomRight()).y() > w.height():
            bad.append(label.text())
    for button in w.findChildren(QAbstractButton):
        if not button.isVisible():
            continue
        advance = button.fontMetrics().horizontalAdvance(plain(button))
        if advance > button.width() - 8 or button.mapTo(w, button.rect().bottomRight()).x() > (
            w.width()
        ):
            bad.append(plain(button))
    return bad


async def test_every_text_is_fully_visible_in_each_state(make_app, waiting) -> None:
    app = make_app(waiting)
    w = app.actions.show_window("signin")
    size = w.size()
    assert clipped(w) == []
    w.browser.click()
    await until(lambda: w.open_again.isVisible())
    assert clipped(w) == []
    w.device.click()
    await until(lambda: not w.code_box.isHidden())
    assert clipped(w) == []
    waiting.time_out(TIMEOUT)
    await until(lambda: not w.error_box.isHidden())
    assert clipped(w) == []
    w.browser.click()  # Try again, then the browser answers
    await until(lambda: w.open_again.isVisible())
    waiting.approve()
    await until(lambda: w.title.text() == "You're signed in")
    assert clipped(w) == []
    assert w.size() == size  # the default size holds every state


# -- against the real engine --------------------------------------------------------------


class SlowBrowserRig:
    """The real ``Engine`` on the test ports, its browser sign-in waiting for ``release``
    (then failing with ``fail_with``, if set); a device-code sign-in finishes at once."""

    def __init__(self, **config: object) -> None:
        from core.engine.engine import Engine, EngineConfig
        from tests.app.test_real_engine import _ports

        p = _ports()
        rig = self
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

        class SlowAuth(p.Auth):  # type: ignore[misc, name-defined]
            async def sign_in(self, *, device_code, on_prompt, open_url=None):  # type: ignore[no-untyped-def]
                if not device_code:
                    if open_url is not None:
                        open_url(REAL_URL)
                    await rig.release.wait()
                    if rig.fail_with is not None:
                        raise rig.fail_with
                return await super().sign_in(
                    device_code=device_code, on_prompt=on_prompt, open_url=None
                )

        self.auth = SlowAuth(None)
        self.engine = Engine(
            auth=self.auth,
            device=p.Device(),
            control=p.Control(),
            posture=p.Posture(),
            policy=p.Policy(lambda: 1_000_000.0),
            tunnel=p.Tunnel(),
            proxy=p.Proxy(),
            config=EngineConfig(auto_connect=False, **config),  # type: ignore[arg-type]
            clock=lambda: 1_000_000.0,
        )


REAL_URL = "https://idp.example/authorize?state=slow"


@pytest.fixture
async def slow():  # type: ignore[no-untyped-def]
    rig = SlowBrowserRig()
    yield rig
    rig.release.set()
    await rig.engine.stop()


async def real_waiting(make_app, slow: SlowBrowserRig):  # type: ignore[no-untyped-def]
    app = make_app(slow.engine)
    app.start(tray_available=True)
    await until(lambda: slow.engine.snapshot.state is SessionState.SIGNED_OUT)
    w = app.actions.show_window("signin")
    w.browser.click()
    await until(lambda: w.open_again.isVisible())
    return app, w


async def test_real_engine_cancel_abandons_the_browser_sign_in(make_app, slow) -> None:
    app, w = await real_waiting(make_app, slow)
    assert app.opened == [REAL_URL]
    w.copy_link.click()
    assert QApplication.clipboard().text() == REAL_URL
    w.cancel.click()
    await until(lambda: slow.engine.snapshot.state is SessionState.SIGNED_OUT)
    await until(lambda: w.browser.isEnabled())
    assert w.error_box.isHidden()
    assert slow.engine.snapshot.user is None


async def test_real_engine_switches_a_waiting_browser_sign_in_to_a_code(make_app, slow) -> None:
    _app, w = await real_waiting(make_app, slow)
    w.device.click()
    await until(lambda: slow.engine.snapshot.user is not None, timeout=5.0)
    assert slow.auth.sign_ins == 1  # the browser attempt never finished; the code did
    await until(lambda: w.title.text() == "You're signed in")


async def test_real_engine_timeout_reads_as_words(make_app, slow) -> None:
    _app, w = await real_waiting(make_app, slow)
    slow.fail_with = LoginTimeout("No answer from the browser within 300 seconds.")
    slow.release.set()
    await until(lambda: not w.error_box.isHidden())
    assert w.error_box.title() == "Sign-in took too long"
    assert "LoginTimeout" not in w.error_text.text()
    assert plain(w.browser) == "Try again"
    assert w.browser.isDefault()


async def test_always_on_still_lets_a_first_sign_in_be_cancelled(make_app) -> None:
    """Under always-on nothing is kept up before the first sign-in: Cancel and the switch
    to a code are offered, and cancelling asks for no break-glass reason."""
    rig = SlowBrowserRig(always_on=True)
    try:
        app, w = await real_waiting(make_app, rig)
        assert rig.engine.snapshot.always_on
        assert w.cancel.isVisible()
        assert w.device.isEnabled()
        w.cancel.click()
        await until(lambda: rig.engine.snapshot.state is SessionState.SIGNED_OUT)
        assert app.tray.notifier.shown == [] or all(
            "reason" not in str(n).lower() for n in app.tray.notifier.shown
        )
    finally:
        rig.release.set()
        await rig.engine.stop()


async def test_without_a_browser_the_link_can_still_be_copied(make_app, waiting) -> None:
    """Offscreen no browser opens: the tray says so, and the window keeps the link."""
    from app.actions import NO_BROWSER

    app = make_app(waiting)
    app.actions.open_url = app.actions._open_in_browser  # the real default (QDesktopServices)
    w = app.actions.show_window("signin")
    w.browser.click()
    await until(lambda: any(n.body == NO_BROWSER for n in app.tray.notifier.shown))
    await until(lambda: w.copy_link.isVisible())
    w.copy_link.click()
    assert QApplication.clipboard().text() == URL
