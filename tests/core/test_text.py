"""``core.text``: strings from elsewhere shown as data (control characters escaped)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import safe_line, safe_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain words, ünïcode, 日本語", "plain words, ünïcode, 日本語"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),  # OSC 52: the clipboard
        ("line\nFAKE: next", "line\\nFAKE: next"),
        ("over\rwrite", "over\\rwrite"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("admin\u202egnp.exe", "admin\\u202egnp.exe"),  # bidi override
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("\x00\x7f", "\\x00\\x7f"),
    ],
)
def test_safe_line_escapes_every_control_character(raw: str, shown: str) -> None:
    assert safe_line(raw) == shown


def test_safe_text_can_keep_our_own_newlines_but_not_carriage_returns() -> None:
    assert safe_text("a\nb\tc\r\x1b", keep_newlines=True) == "a\nb\tc\\r\\x1b"


@given(st.text())
def test_output_is_printable_and_one_line(text: str) -> None:
    shown = safe_line(text)
    assert not any(unicodedata.category(ch) == "Cc" for ch in shown)  # no C0, DEL, C1
    assert not any("\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069" for ch in shown)
