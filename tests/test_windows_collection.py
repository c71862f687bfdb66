"""Which test modules the Windows CI job leaves out (tests/conftest.py ``posix_only``).

Windows has no ``pwd``, ``grp``, ``resource``, ``fcntl`` or ``termios``: a test module that
imports one at the top fails collection there, and with it the whole Windows job. This
checks the rule against every test module that really does so, and that a portable module
is still collected.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import posix_only

pytestmark = pytest.mark.unit
TESTS = Path(__file__).resolve().parent
_TOP_IMPORT = re.compile(r"^import (pwd|grp|resource|fcntl|termios)\b", re.MULTILINE)


def test_every_module_importing_a_posix_only_module_is_left_out_on_windows() -> None:
    importing = [
        p for p in TESTS.rglob("*.py") if _TOP_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    assert len(importing) >= 5  # the rule is exercised on the real tree
    assert [p for p in importing if not posix_only(p)] == []


def test_the_second_account_tests_are_left_out_and_portable_ones_kept() -> None:
    users = [
        p
        for p in TESTS.rglob("test_*.py")
        if re.search(r"^from tests\.wg_backends\.accounts import", p.read_text(), re.MULTILINE)
    ]
    assert users
    assert all(posix_only(p) for p in users)
    assert not posix_only(Path(__file__))
    assert not posix_only(TESTS / "core" / "proxy" / "test_import_portable.py")
