"""Update errors are user-facing like every package's: a registered code, a title and a
next step for that code, a one-line bounded detail; ``explain`` gives their own words."""

from __future__ import annotations

import pytest

from core import i18n
from core.engine.errors import explain
from core.errors import CODES, UserFacing
from core.i18n import i18n_dir
from core.update import UpdateError, UpdateFetchError, UpdateRejected
from core.update.errors import MAX_DETAIL
from core.update.words import UPDATE_CODES, code_words

pytestmark = pytest.mark.unit


def test_every_update_code_is_registered() -> None:
    assert UPDATE_CODES <= CODES
    assert {c for c in CODES if c.startswith("update_")} == UPDATE_CODES


@pytest.mark.parametrize("cls", [UpdateError, UpdateFetchError, UpdateRejected])
def test_every_class_has_class_level_words(cls: type[UpdateError]) -> None:
    assert cls.title.strip()
    assert cls.next_step.strip()
    assert cls.code in CODES
    assert "Error" not in cls.title
    assert isinstance(UpdateFetchError("no route"), UserFacing)


@pytest.mark.parametrize("code", sorted(UPDATE_CODES))
def test_explain_gives_each_codes_own_words(code: str) -> None:
    exc = UpdateRejected(code, "version 0.2.0 refused")
    assert isinstance(exc, UserFacing)
    info = explain(exc, during="running rustronaut update")
    title, next_step = code_words(code)
    assert (info.title, info.detail, info.next_step, info.code) == (
        title,
        "version 0.2.0 refused",
        next_step,
        code,
    )
    assert title.startswith("Update refused: ")


def test_the_update_error_wins_over_the_os_error_behind_it() -> None:
    cause = OSError(5, "Input/output error")
    exc = UpdateFetchError("update manifest not fetched")
    exc.__cause__ = cause
    info = explain(exc, during="checking for updates")
    assert info.code == "update_fetch"
    assert info.title == "Update refused: the update server could not be reached"
    assert "Errno" not in info.detail


def test_the_words_follow_the_language_installed_when_raised() -> None:
    try:
        assert i18n.install_from_ts("de", i18n_dir()) == "de"
        exc = UpdateRejected("update_stale", "expired")
    finally:
        i18n.install(None)
    assert exc.title.startswith("Update abgelehnt: ")
    assert UpdateRejected("update_stale", "expired").title.startswith("Update refused: ")


def test_an_unknown_code_is_update_failed_and_keeps_the_original() -> None:
    exc = UpdateRejected("unauthorized", "not allowed")
    assert exc.code == "update_failed"
    assert exc.message == "unauthorized: not allowed"
    assert exc.next_step == code_words("update_failed")[1]


def test_the_detail_is_one_bounded_line() -> None:
    exc = UpdateRejected("update_hash", "line one\nNext step: forged\x1b[31m" + "x" * 5000)
    assert "\n" not in exc.detail
    assert "\x1b" not in exc.detail
    assert len(exc.detail) == MAX_DETAIL
    assert exc.message.startswith("line one\n")  # the log keeps it whole
