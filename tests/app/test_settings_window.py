"""Issue 18, deliver 6: settings for employees.

By default only what an employee should touch; the rest under "Advanced", where what IT
manages is not shown; a refused value explained in words (the setting's title, never its
key) without clipping; live refresh when changed elsewhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QCheckBox, QLabel, QSpinBox

from app.windows.settings import field_error, is_advanced, title_for
from core.settings.errors import SettingValueError
from core.settings.model import SPECS
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = pytest.mark.ui

#: What an employee may be asked to change; everything else is for IT and support.
EMPLOYEE = {"auto_connect", "autostart", "notifications", "end_provider_session"}


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    """Let the loop run until ``pred()`` is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


def visible_keys(w) -> set[str]:
    return {k for k, e in w.editors.items() if e.isVisibleTo(w)}


def test_only_a_few_keys_are_for_employees() -> None:
    assert {k for k, s in SPECS.items() if not s.advanced} == EMPLOYEE
    for admin in ("always_on", "allow_break_glass", "oidc_client_id", "tls_pin_sha256"):
        assert is_advanced(admin)
    assert is_advanced("a_key_from_a_newer_engine")
    assert title_for("oidc_client_id") == "OpenID Connect client id"


async def test_employees_see_only_their_settings_by_default(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(), demo_settings(managed=False))
    app = make_app(engine)
    w = app.actions.show_window("settings")
    assert visible_keys(w) == {"auto_connect", "autostart", "notifications"}
    captions = {lbl.text() for lbl in w.findChildren(QLabel) if lbl.isVisibleTo(w)}
    assert "Connect automatically:" in captions  # titles, not keys
    assert not any("_" in c for c in captions if c.endswith(":"))
    # Advanced: everything else the employee may change (nothing is managed here).
    assert w.advanced_toggle.isVisibleTo(w)
    assert w.advanced_toggle.text() == "Show advanced settings"
    w.advanced_toggle.click()
    assert {"always_on", "proxy_port", "log_level", "tls_pin_sha256"} <= visible_keys(w)
    assert w.advanced_toggle.text() == "Hide advanced settings"
    # A refresh (a change made elsewhere) keeps Advanced open.
    engine.set_managed("log_level", "debug")
    assert w.advanced_box.isVisibleTo(w)


async def test_advanced_settings_managed_by_it_are_hidden(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(), demo_settings(managed=True))
    app = make_app(engine)
    w = app.actions.show_window("settings")
    w.advanced_toggle.click()
    shown = visible_keys(w)
    for managed in ("always_on", "allow_break_glass", "controller_url", "tls_pin_sha256"):
        assert managed not in shown
    assert {"proxy_port", "log_level"} <= shown  # not managed: still the employee's
    # With every advanced setting managed, there is no Advanced at all.
    for key in ("proxy_port", "log_level"):
        engine.set_managed(key, SPECS[key].default)
    assert not w.advanced_toggle.isVisibleTo(w)
    assert visible_keys(w) == {"auto_connect", "autostart", "notifications"}


async def test_an_employee_setting_managed_by_it_stays_visible_and_locked(make_app) -> None:
    settings = [
        dataclasses.replace(s, source="managed", locked=True) if s.key == "auto_connect" else s
        for s in demo_settings()
    ]
    app = make_app(ScriptedEngine(demo_snapshot(), settings))
    w = app.actions.show_window("settings")
    assert "auto_connect" in visible_keys(w)
    assert not w.editors["auto_connect"].isEnabled()


@pytest.mark.parametrize(
    ("key", "value"),
    [("proxy_port", 80), ("proxy_port", 70_000), ("transparent_port", 1)],
)
def test_field_error_in_words(key: str, value: int) -> None:
    with pytest.raises(SettingValueError) as err:
        SPECS[key].validate(value)
    words = field_error(key, f"{err.value}\nCheck and try again.")
    head, rest = words.split("\n")
    assert head == (f"{SPECS[key].title} must be a whole number from 1024 to 65535, not {value}.")
    assert rest == "Check and try again."
    assert key not in words


def test_field_error_replaces_a_key_anywhere() -> None:
    assert field_error("proxy_port", "proxy_port must be between 1024 and 65535") == (
        "Local proxy port must be between 1024 and 65535"
    )
    assert field_error("log_level", "Setting 'log_level' is locked") == (
        "Setting Log level is locked"
    )


async def test_invalid_port_shows_words_without_clipping(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(), demo_settings(managed=False))
    app = make_app(engine)
    w = app.actions.show_window("settings")
    w.advanced_toggle.click()
    port = w.editors["proxy_port"]
    assert isinstance(port, QSpinBox)
    with pytest.raises(SettingValueError) as err:
        SPECS["proxy_port"].validate(80)
    engine.raise_next = err.value  # the real settings model's refusal
    port.setValue(80)
    port.editingFinished.emit()
    label = w.errors["proxy_port"]
    await until(lambda: not label.isHidden())
    first = label.text().splitlines()[0]
    assert first == "Local proxy port must be a whole number from 1024 to 65535, not 80."
    assert port.value() == 1080
    # Fully visible at the default size: the whole text wraps inside the row.
    await until(lambda: label.height() >= label.heightForWidth(label.width()) - 1)
    assert label.wordWrap()
    assert label.width() >= label.minimumSizeHint().width() - 1
    viewport = w._scroll.viewport()
    right = label.mapTo(viewport, label.rect().topRight()).x()
    assert right <= viewport.width()


async def test_a_change_made_elsewhere_shows_at_once(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(), demo_settings(managed=False))
    app = make_app(engine)
    w = app.actions.show_window("settings")
    box = w.editors["notifications"]
    assert isinstance(box, QCheckBox)
    assert box.isChecked()
    await engine.set_setting("notifications", False)  # e.g. `rustronaut config set …`
    box = w.editors["notifications"]
    assert isinstance(box, QCheckBox)
    assert not box.isChecked()
