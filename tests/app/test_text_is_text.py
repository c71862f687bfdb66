"""Text is text (issue 16 item 9): a hostile controller's strings reach every window, the
tray menu, tooltips and notifications as escaped plain text — never as HTML, never with
raw control characters — and only a validated https URL is ever a link.

Every window is built for real (offscreen) around the scripted engine, fed one hostile
snapshot: bold tags, a link styled "reset your password here", an image, an ANSI colour
sequence, a newline that would forge a line and a bidi override, in every string field.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from xml.sax.saxutils import unescape

import pytest
from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QTreeWidget,
    QWidget,
)

import app.widgets
from app.widgets import TRUSTED_RICH_TEXTS
from core.engine.api import Setting
from core.engine.state import (
    ErrorInfo,
    EventKind,
    PostureItem,
    ResourceView,
    SessionState,
    TunnelView,
)
from core.text import safe_line
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = pytest.mark.ui

#: What a hostile controller (or provider, or device) puts in every string it sends.
HOSTILE = (
    '<b>bold</b> <a href="https://evil.example/reset">reset your password here</a> '
    '<img src="file:///etc/passwd"> \x1b[31mred\x1b[0m\nforged: line \u202eevil'
)
#: How it must be shown: the same characters, control ones as visible escapes.
SHOWN = safe_line(HOSTILE)
#: A word of the payload: wherever it is shown, the whole payload must be, escaped.
MARKER = "reset your password here"


def hostile_snapshot(state: SessionState = SessionState.ERROR) -> object:
    return demo_snapshot(
        state,
        user=HOSTILE,
        organization=HOSTILE,
        device_id=HOSTILE,
        resources=(
            ResourceView(HOSTILE, HOSTILE, False, HOSTILE, HOSTILE),
            ResourceView("Wiki " + HOSTILE, HOSTILE, True),
        ),
        posture=(PostureItem("disk", HOSTILE, HOSTILE, "fail", HOSTILE),),
        tunnel=TunnelView(HOSTILE, HOSTILE, 3.0, 1, 2),
        risk=40,
        risk_signals=(HOSTILE,),
        error=ErrorInfo(HOSTILE, HOSTILE, HOSTILE, "controller_error"),
        managed_rejected=HOSTILE,
    )


def hostile_settings(support_url: str = "javascript:alert(document.cookie)") -> list[Setting]:
    out = []
    for s in demo_settings():
        if s.key == "support_url":
            s = dataclasses.replace(s, value=support_url)
        elif s.key == "oidc_issuer":
            s = dataclasses.replace(s, value=HOSTILE, description=HOSTILE)
        out.append(s)
    return out


def hostile_engine(state: SessionState = SessionState.ERROR, **kw: str) -> ScriptedEngine:
    return ScriptedEngine(hostile_snapshot(state), hostile_settings(**kw))  # type: ignore[arg-type]


def tooltip_shown(tip: str) -> str:
    """What Qt's tooltip shows for ``tip``: rich text when Qt guesses it is, else as is."""
    if not tip or not QtGui.Qt.mightBeRichText(tip):
        return tip
    doc = QTextDocument()
    doc.setHtml(tip)
    return doc.toPlainText()


def notification_shown(body: str) -> str:
    """What a freedesktop notification server with body markup shows for ``body``."""
    if sys.platform.startswith(("darwin", "win")):
        return body
    assert "<" not in body, f"markup in a notification body: {body!r}"
    assert ">" not in body, f"markup in a notification body: {body!r}"
    return unescape(body)


def shown_texts(w: QWidget) -> Iterator[tuple[str, str]]:
    """(where, what the employee reads) for everything ``w`` shows."""
    for label in w.findChildren(QLabel):
        if not label.isHidden() or label.text():
            yield f"label {label.objectName() or label.accessibleName()}", label.text()
        yield "label tooltip", tooltip_shown(label.toolTip())
    for box in w.findChildren(QGroupBox):
        yield "group title", box.title().replace("&&", "&")
    for button in w.findChildren(QAbstractButton):
        yield "button", button.text().replace("&&", "&")
        yield "button tooltip", tooltip_shown(button.toolTip())
    for edit in w.findChildren(QLineEdit):
        if edit.isReadOnly() or not edit.isEnabled():
            yield "read-only field", edit.text()
        yield "field tooltip", tooltip_shown(edit.toolTip())
    for tree in w.findChildren(QTreeWidget):
        for i in range(tree.topLevelItemCount()):
            item = tree.topLevelItem(i)
            for c in range(tree.columnCount()):
                yield f"tree cell {c}", item.text(c)
                yield f"tree tooltip {c}", tooltip_shown(item.toolTip(c))
    for table in w.findChildren(QTableView):
        model = table.model()
        for r in range(model.rowCount()):
            for c in range(model.columnCount()):
                index = model.index(r, c)
                yield f"table cell {c}", str(model.data(index, Qt.ItemDataRole.DisplayRole))
                tip = model.data(index, Qt.ItemDataRole.ToolTipRole)
                yield f"table tooltip {c}", tooltip_shown(str(tip or ""))


def assert_text_is_text(found: list[tuple[str, str]]) -> None:
    """Nothing rendered as HTML, nothing with a raw control character; the payload shown."""
    for where, shown in found:
        assert "\x1b" not in shown, (where, shown)
        assert "\u202e" not in shown, (where, shown)
        if MARKER in shown:
            assert SHOWN in shown, f"{where} rendered {shown!r}"
    assert any(SHOWN in shown for _, shown in found), "the hostile strings were not shown"


def assert_labels_plain(w: QWidget) -> None:
    """No label in the widget tree is rich (or guessed rich) unless it is a fixed template."""
    for label in w.findChildren(QLabel):
        if label.textFormat() is Qt.TextFormat.PlainText or label.text() == "":
            continue
        assert label.text() in TRUSTED_RICH_TEXTS, (
            f"label {label.accessibleName()!r} is {label.textFormat()}: {label.text()!r}"
        )


WINDOWS = ("main", "posture", "activity", "settings", "signin", "about", "breakglass")


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("state", [SessionState.ERROR, SessionState.BLOCKED])
async def test_every_window_shows_hostile_strings_as_escaped_plain_text(
    name: str, state: SessionState, make_app: Callable[..., object]
) -> None:
    engine = hostile_engine(state)
    tray_app = make_app(engine)
    engine.decide(HOSTILE, HOSTILE, False, HOSTILE, HOSTILE, risk=60, signals=(HOSTILE,))
    if name == "breakglass":  # always-on: Disconnect asks for a reason, naming the org
        engine.publish(dataclasses.replace(engine.snapshot, always_on=True))
        tray_app.actions.disconnect_session()  # type: ignore[attr-defined]
        w = tray_app.actions.windows["breakglass"]  # type: ignore[attr-defined]
    else:
        w = tray_app.actions.show_window(name)  # type: ignore[attr-defined]
    if name == "signin":
        engine.set_state(SessionState.SIGNING_IN)
        engine.emit(
            EventKind.NOTICE,
            details={"user_code": HOSTILE, "verification_uri": "javascript:alert(1)"},
        )
    found = list(shown_texts(w))
    assert_labels_plain(w)
    assert_text_is_text(found)
    if name == "signin":
        assert w.code.text() == SHOWN
        assert w.code_hint.text() == "On a phone or computer, open javascript:alert(1) and enter:"


async def test_main_window_says_exactly_the_escaped_words(
    make_app: Callable[..., object],
) -> None:
    engine = hostile_engine(SessionState.ERROR)
    w = make_app(engine).actions.show_window("main")  # type: ignore[attr-defined]
    assert w.who.text() == f"Signed in as {SHOWN} at {SHOWN}"
    assert w.state_line.text() == f"Problem: {SHOWN}"
    assert w.error_text.text() == f"{SHOWN}\n\nWhat to do: {SHOWN}"
    assert w.error_box.title().replace("&&", "&") == SHOWN
    assert w.device.text() == SHOWN
    assert w.managed.text() == f"Managed configuration rejected — {SHOWN}"
    row = [w.resources.topLevelItem(0).text(c) for c in range(4)]
    assert row == [SHOWN, SHOWN, "Blocked", f"{SHOWN} — {SHOWN}"]
    assert tooltip_shown(w.resources.topLevelItem(0).toolTip(3)) == f"{SHOWN} — {SHOWN}"


async def test_tray_menu_tooltips_and_notifications_are_plain(
    make_app: Callable[..., object],
) -> None:
    engine = hostile_engine(SessionState.CONNECTED)
    tray_app = make_app(engine)
    shown: list[tuple[str, str]] = []
    tray = tray_app.tray  # type: ignore[attr-defined]
    tray.icon.showMessage = lambda title, body, *_: shown.append((title, body))
    engine.publish(hostile_snapshot(SessionState.BLOCKED))  # access blocked, with the fixes
    engine.fail(HOSTILE, HOSTILE, HOSTILE)  # an error, with the next step
    engine.emit(EventKind.NOTICE, message=HOSTILE)  # the engine's own notice
    engine.publish(hostile_snapshot(SessionState.DEGRADED))
    # A refused intent, in the words of an exception carrying the controller's message.
    tray_app.actions.report_refusal("connect", RuntimeError(HOSTILE))  # type: ignore[attr-defined]

    found: list[tuple[str, str]] = [("tray tooltip", tooltip_shown(tray.icon.toolTip()))]

    def walk(menu: QMenu) -> None:
        for qa in menu.actions():
            found.append(("menu entry", qa.text().replace("&&", "&")))
            if qa.toolTip() != qa.iconText():  # not Qt's fallback (QMenu shows only set ones)
                found.append(("menu tooltip", tooltip_shown(qa.toolTip())))
            if isinstance(qa.menu(), QMenu):
                walk(qa.menu())

    walk(tray.menu)
    assert_text_is_text(found)
    assert any(entry == f"✕ {SHOWN} — {SHOWN}" for _, entry in found)
    assert len(shown) >= 3
    notes = [("notification title", t) for t, _ in shown]
    notes += [("notification body", notification_shown(b)) for _, b in shown]
    assert_text_is_text(notes)
    assert (f"{SHOWN}", f"{SHOWN}\n{SHOWN}") in [(t, notification_shown(b)) for t, b in shown]


async def test_tray_tooltip_keeps_its_lines_and_is_never_rich(
    make_app: Callable[..., object],
) -> None:
    engine = hostile_engine(SessionState.CONNECTED)
    tray = make_app(engine).tray  # type: ignore[attr-defined]
    assert tooltip_shown(tray.icon.toolTip()).splitlines() == [
        "Rustronaut — Connected",
        f"Signed in as {SHOWN} ({SHOWN})",
        "1 of 2 resources reachable",
    ]


# -- links: only validated https URLs, opened only after validation ------------------


def link_labels(w: QWidget) -> list[QLabel]:
    """The links shown (a link for an invalid URL is hidden)."""
    return [
        label
        for label in w.findChildren(QLabel)
        if label.textFormat() is not Qt.TextFormat.PlainText
        and label.text()
        and not label.isHidden()
    ]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "file:///etc/passwd",
        "http://help.corp.example",
        "https://user:pw@help.corp.example",
    ],
)
@pytest.mark.parametrize("name", ["about", "settings"])
async def test_a_support_url_that_is_not_https_is_text_not_a_link(
    url: str, name: str, make_app: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(app.widgets, "open_url", lambda u: opened.append(u) or True)
    engine = ScriptedEngine(demo_snapshot(), hostile_settings(support_url=url))
    w = make_app(engine).actions.show_window(name)  # type: ignore[attr-defined]
    assert link_labels(w) == []
    assert_labels_plain(w)
    assert opened == []
    if name == "about":
        assert w.support.text() == f"Need help? Contact Example Corp: {url}"


@pytest.mark.parametrize("name", ["about", "settings"])
async def test_an_https_support_url_is_a_fixed_link_opened_after_validation(
    name: str, make_app: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(app.widgets, "open_url", lambda u: opened.append(u) or True)
    url = "https://help.corp.example/vpn?from=tray&lang=en"
    engine = ScriptedEngine(demo_snapshot(), hostile_settings(support_url=url))
    w = make_app(engine).actions.show_window(name)  # type: ignore[attr-defined]
    links = link_labels(w)
    assert links, "no help link"
    for label in links:
        assert label.text() in TRUSTED_RICH_TEXTS
        assert not label.openExternalLinks()  # Qt never opens what the label's text says
        label.linkActivated.emit(label.text())
    assert opened
    assert set(opened) == {url}


async def test_device_code_link_only_for_an_https_verification_uri(
    make_app: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(app.widgets, "open_url", lambda u: opened.append(u) or True)
    engine = ScriptedEngine(demo_snapshot(SessionState.SIGNING_IN), demo_settings())
    w = make_app(engine).actions.show_window("signin")  # type: ignore[attr-defined]
    good = "https://login.corp.example/device"
    engine.emit(
        EventKind.NOTICE,
        details={
            "user_code": "WDJB-MJHT",
            "verification_uri": good,
            "verification_uri_complete": good + "?user_code=WDJB-MJHT",
        },
    )
    assert w.code_hint.text() == f"On a phone or computer, open {good} and enter:"
    assert w.code_hint.textFormat() is Qt.TextFormat.PlainText
    (link,) = link_labels(w)
    link.linkActivated.emit(link.text())
    assert opened == [good + "?user_code=WDJB-MJHT"]

    engine.emit(
        EventKind.NOTICE,
        details={"user_code": "WDJB-MJHT", "verification_uri": "file:///etc/passwd"},
    )
    assert w.code_hint.text() == "On a phone or computer, open file:///etc/passwd and enter:"
    assert link_labels(w) == []
