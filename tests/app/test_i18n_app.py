"""The tray's own words go through ``core.i18n.translate``: with a marking translator
installed, every word of ours in the menu, tooltip, notifications, activity table and
shared widgets comes back «marked»; data (user, resource names, addresses, reasons) is
shown as given; plurals pick the form for the count."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from app import notify, presenter
from app.activity_model import COLUMNS, ActivityModel
from app.autostart import XdgAutostart
from app.presenter import MenuEntry, menu_model, session_line, tooltip
from app.widgets import link_label, managed_note, trusted_rich_texts, window_setup
from core import i18n
from core.engine.state import ErrorInfo, Event, EventKind, SessionState, Snapshot
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot


def _mark(context: str, text: str, disambiguation: str | None, n: int) -> str:
    return "«" + text + "»"


@pytest.fixture
def marked() -> Iterator[None]:
    """Every translated text comes back «text» (German, for the autostart entry)."""
    i18n.install(_mark, "de")
    try:
        yield
    finally:
        i18n.install(None)


#: Two plural forms per source, as a catalogue for a language with "one" and "other".
_PLURALS = {
    "{reachable} of %n resources reachable": (
        "{reachable} von %n Ressource erreichbar",
        "{reachable} von %n Ressourcen erreichbar",
    ),
    "%n min ago": ("vor %n Minute", "vor %n Minuten"),
    "Your sign-in ends in %n min. Click to extend it.": (
        "Deine Anmeldung endet in %n Minute.",
        "Deine Anmeldung endet in %n Minuten.",
    ),
    "{reachable} of %n work resources are reachable.": (
        "{reachable} von %n Arbeitsressource ist erreichbar.",
        "{reachable} von %n Arbeitsressourcen sind erreichbar.",
    ),
}


def _plural(context: str, text: str, disambiguation: str | None, n: int) -> str:
    forms = _PLURALS.get(text)
    return "" if forms is None else forms[i18n.plural_index("de", n)]


@pytest.fixture
def plurals() -> Iterator[None]:
    i18n.install(_plural, "de")
    try:
        yield
    finally:
        i18n.install(None)


def _rows(entries: tuple[MenuEntry, ...]) -> Iterator[MenuEntry]:
    for e in entries:
        if e.kind != "separator":
            yield e
            yield from _rows(e.children)


def _data(snapshot: Snapshot) -> set[str]:
    """Rows that are data, not words of ours: the user, addresses, the sign-in's end
    (``core.clock``'s words), the engine's next step."""
    rows = {snapshot.user or "", *(r.address for r in snapshot.resources)}
    rows.add(session_line(snapshot) or "")
    if snapshot.error is not None:
        rows.add(snapshot.error.next_step)
    return rows - {""}


_ERROR = ErrorInfo("Helper missing", "The tunnel helper is not running.", "Reinstall it.", "x")

SNAPSHOTS = {
    "signed out": Snapshot(),
    "connecting": demo_snapshot(SessionState.CONNECTING),
    "connected": demo_snapshot(SessionState.CONNECTED),
    "degraded": demo_snapshot(SessionState.DEGRADED),
    "blocked": demo_snapshot(SessionState.BLOCKED),
    "offline": demo_snapshot(SessionState.OFFLINE),
    "error": demo_snapshot(SessionState.ERROR, error=_ERROR),
    "always on": demo_snapshot(SessionState.CONNECTED, always_on=True),
    "renewing": demo_snapshot(SessionState.CONNECTED, session_renewable=False),
    "no resources": demo_snapshot(SessionState.CONNECTED, resources=()),
    "managed rejected": demo_snapshot(managed_rejected="bad key in /etc/rustronaut"),
}


@pytest.mark.parametrize("name", list(SNAPSHOTS))
@pytest.mark.parametrize("break_glass", [True, False])
def test_every_menu_word_is_translated(marked: None, name: str, break_glass: bool) -> None:
    snapshot = SNAPSHOTS[name]
    data = _data(snapshot)
    for row in _rows(menu_model(snapshot, break_glass=break_glass)):
        if row.text in data or row.text.startswith("   "):  # a wrapped reason or fix
            continue
        assert "«" in row.text, (name, row)
        if row.tooltip and not row.enabled:
            assert "«" in row.tooltip, (name, row)


@pytest.mark.parametrize(("starting", "lost"), [(True, False), (False, True)])
def test_starting_and_lost_menus_are_translated(marked: None, starting: bool, lost: bool) -> None:
    rows = list(_rows(menu_model(Snapshot(), starting=starting, lost=lost)))
    assert rows
    assert all(r.text.startswith("«") for r in rows)
    tip = tooltip(Snapshot(), starting=starting, lost=lost)
    assert all(line.startswith("«") for line in tip.splitlines())


def test_data_is_shown_as_given_inside_our_words(marked: None) -> None:
    snap = demo_snapshot(SessionState.DEGRADED)
    rows = [r.text for r in _rows(menu_model(snap))]
    assert "✓ «Git server — reachable»" in rows
    assert "✕ «Payroll — Disk encryption is off»" in rows
    assert "«Why:» Disk encryption is off" in rows
    assert "ada@corp.example" in rows  # the user's name is never translated
    assert "«Quit»" in rows
    assert "«Resources»" in rows
    assert tooltip(snap).splitlines()[:2] == [
        "«Rustronaut — «Connected — some access blocked»»",
        "«Signed in as ada@corp.example (Example Corp)»",
    ]


@pytest.mark.parametrize("name", list(SNAPSHOTS))
def test_every_tooltip_line_is_translated(marked: None, name: str) -> None:
    snapshot = SNAPSHOTS[name]
    data = _data(snapshot)
    for line in tooltip(snapshot).splitlines():
        assert line in data or "«" in line, (name, line)


def test_window_words_of_the_presenter_are_translated(marked: None) -> None:
    snap = demo_snapshot(SessionState.CONNECTED)
    assert snap.tunnel is not None
    assert presenter.tunnel_summary(snap.tunnel).startswith("«")
    assert presenter.tunnel_summary(None) == "«No tunnel»"
    assert presenter.access_line(snap).startswith("«Every app")
    proxied = dataclasses.replace(snap.access, mode="proxy", fenced=False)
    line = presenter.access_line(dataclasses.replace(snap, access=proxied))
    assert line.count("«") == 3  # the proxy, what cannot be redirected, the names
    assert presenter.format_bytes(1536) == "«1.5 KiB»"
    assert presenter.format_age(None) == "«never»"
    for hosted_by in ("tray", "agent", "cli", None):
        assert presenter.owner_text(hosted_by).startswith("«")
    assert presenter.lost_next_step() == "«Choose Restart Rustronaut to start it again.»"
    assert presenter.next_step(
        dataclasses.replace(snap, state=SessionState.ERROR, error=ErrorInfo("t", "d", "", "x"))
    ).startswith("«Try again.")


def test_notices_are_translated(marked: None) -> None:
    now = time.time()
    degraded = demo_snapshot(SessionState.DEGRADED)
    notices = [
        notify.connected_notice(degraded),
        notify.connected_notice(dataclasses.replace(degraded, resources=())),
        notify.lost_notice(),
        notify.diagnostics_notice("/tmp/diag.zip"),
        notify.diagnostics_failed_notice("disk full"),
    ]
    expiring = demo_snapshot(SessionState.CONNECTED, session_expires_at=now + 120)
    notices.append(notify.expiry_notice(expiring, now=now))  # type: ignore[arg-type]
    ended = dataclasses.replace(expiring, session_expires_at=now - 1)
    notices.append(notify.session_ended_notice(ended, now=now))  # type: ignore[arg-type]
    for n in notices:
        assert n is not None
        assert n.title.startswith("«"), n
        assert n.body.splitlines()[0].startswith("«") or n.body == "disk full", n
    body = notices[0].body.splitlines()
    assert body[1:] == [
        "«{name} is blocked: {reason}»".format(name="Payroll", reason="Disk encryption is off"),
        "«To fix: Turn on disk encryption in System Settings»",
    ]


def test_notices_for_events_are_translated(marked: None) -> None:
    before = demo_snapshot(SessionState.CONNECTING)
    event = Event(EventKind.STATE, demo_snapshot(SessionState.BLOCKED), time=time.time())
    (blocked,) = notify.notices_for(before, event, now=time.time())
    assert blocked.title == "«Connected — access blocked»"
    assert blocked.body.startswith("«Every resource is blocked")


def test_activity_columns_and_decisions_are_translated(marked: None, qapp: object) -> None:
    model = ActivityModel()
    engine = ScriptedEngine()
    model.add_event(engine.decide("firefox", "git.corp.example:443", True, "r1", "ok"))
    model.add_event(engine.decide("", "payroll.corp.example:443", False, "", "posture"))
    headers = [model.headerData(i, Qt.Orientation.Horizontal) for i in range(len(COLUMNS))]
    assert headers == [f"«{c}»" for c in COLUMNS]
    assert model.rows[0].cells()[3] == "«Allowed»"
    denied = model.rows[1].cells()
    assert (denied[1], denied[3], denied[4]) == ("«unknown app»", "«Denied»", "«default deny»")
    assert denied[2] == "payroll.corp.example:443"  # data stays as given


def test_shared_widgets_are_translated(marked: None, qapp: object) -> None:
    assert managed_note("Acme") == "«Set by your organization ({organization})»".format(
        organization="Acme"
    )
    assert managed_note(None) == "«Set by your organization»"
    label = link_label("Get help", "https://help.example.com")
    assert "«Get help»" in label.text()
    assert label.text() in trusted_rich_texts()
    widget = QWidget()
    window_setup(widget, "«Posture»", "posture")
    assert widget.windowTitle() == "««Posture» — Rustronaut»"


def test_the_autostart_entry_has_a_comment_in_the_language(marked: None, tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path, ["rustronaut-tray"])
    entry.set_enabled(True)
    lines = entry.path.read_text(encoding="utf-8").splitlines()
    assert "Comment=Zero-trust access to your work resources" in lines
    assert "Comment[de]=«Zero-trust access to your work resources»" in lines


def test_no_translator_keeps_the_english_entry(tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path, ["rustronaut-tray"])
    entry.set_enabled(True)
    assert "Comment[" not in entry.path.read_text(encoding="utf-8")


async def test_the_tray_menu_and_refusals_are_translated(marked: None, make_app) -> None:
    engine = ScriptedEngine.demo(SessionState.DEGRADED)
    app = make_app(engine)
    entries = app.tray.entries()
    texts = {t for t, _ in entries}
    assert {"«Open Rustronaut»", "«Quit»", "«Disconnect»", "«Resources»"} <= texts
    assert entries[0] == ("«Connected — some access blocked»", False)
    assert app.tray.menu.accessibleName() == "«Rustronaut menu»"
    assert app.tray.icon.toolTip().startswith("«Rustronaut — ")
    failed: list[tuple[str, str]] = []
    app.actions.action_failed.connect(lambda title, message: failed.append((title, message)))
    app.actions.report_refusal("connect", RuntimeError("the gateway is down"))
    assert failed == [("«Could not connect»", "the gateway is down")]


@pytest.mark.parametrize(
    ("resources", "line"),
    [(1, "1 von 1 Ressource erreichbar"), (4, "3 von 4 Ressourcen erreichbar")],
)
def test_the_resource_count_picks_its_plural(plurals: None, resources: int, line: str) -> None:
    snap = demo_snapshot(SessionState.DEGRADED)
    chosen = snap.resources[:1] if resources == 1 else snap.resources
    assert line in tooltip(dataclasses.replace(snap, resources=chosen)).splitlines()


@pytest.mark.parametrize(
    ("seconds", "words"), [(60, "vor 1 Minute"), (300, "vor 5 Minuten"), (10, "10 s ago")]
)
def test_ages_pick_their_plural(plurals: None, seconds: float, words: str) -> None:
    assert presenter.format_age(seconds) == words  # untranslated: English, count filled


@pytest.mark.parametrize(
    ("left", "body"),
    [(50, "Deine Anmeldung endet in 1 Minute."), (250, "Deine Anmeldung endet in 5 Minuten.")],
)
def test_the_expiry_warning_picks_its_plural(plurals: None, left: float, body: str) -> None:
    now = time.time()
    snap = demo_snapshot(SessionState.CONNECTED, session_expires_at=now + left)
    notice = notify.expiry_notice(snap, now=now)
    assert notice is not None
    assert notice.body == body


def test_the_connected_notice_picks_its_plural(plurals: None) -> None:
    snap = demo_snapshot(SessionState.DEGRADED)
    one = dataclasses.replace(snap, resources=snap.resources[2:3])  # Payroll, blocked
    assert notify.connected_notice(one).body.startswith("0 von 1 Arbeitsressource ist")
    assert notify.connected_notice(snap).body.startswith("3 von 4 Arbeitsressourcen sind")


@pytest.mark.parametrize("notice", ["connected", "access_withdrawn"])
def test_translated_engine_notices_told_by_the_tray_are_not_repeated(
    marked: None, notice: str
) -> None:
    snap = demo_snapshot(SessionState.CONNECTED)
    event = Event(
        EventKind.NOTICE, snap, time.time(), message="«Verbunden»", details={"notice": notice}
    )
    assert notify.notices_for(snap, event, now=time.time()) == []


def test_a_translated_sign_in_needed_shows_the_engine_detail_once(marked: None) -> None:
    event = Event(
        EventKind.NOTICE,
        Snapshot(),
        time.time(),
        message="«Anmeldung nötig: Deine Anmeldung wurde widerrufen.»",
        details={"action": "sign_in", "detail": "Deine Anmeldung wurde widerrufen."},
    )
    (notice,) = notify.notices_for(None, event, now=time.time())
    assert notice.title == "«Sign-in needed»"
    assert notice.body.splitlines() == [
        "Deine Anmeldung wurde widerrufen.",
        "«Sign in again to reach your work resources.»",
    ]
