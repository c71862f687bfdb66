"""``rustronaut tunnel`` failures in words: a title, the detail and a next step; never a
class name or an errno string."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli.main import main

pytestmark = pytest.mark.unit


def test_no_helper_is_said_in_words_with_a_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tunnel", "--socket", str(tmp_path / "none.sock"), "hello"]) == 1
    err = capsys.readouterr().err
    assert "The Rustronaut helper is not running" in err
    assert "Next step:" in err
    assert "Errno" not in err
    assert "HelperUnavailable" not in err


def test_a_missing_spec_file_names_the_file_not_the_errno(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tunnel", "check", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert "No such file or directory" in err
    assert "missing.json" in err
    assert "Errno" not in err
