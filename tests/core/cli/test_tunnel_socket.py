"""``rustronaut tunnel`` finds the helper where the engine does, and tells the truth about
an interface the helper does not have (issue 18)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli.commands.tunnel import helper_socket
from core.cli.main import main
from tests.wg_backends.inproc import Running, serve_in_thread
from wg_backends.helper.client import DEFAULT_SOCKET

pytestmark = pytest.mark.integration


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Running]:
    r = serve_in_thread(tmp_path)
    yield r
    r.stop()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, DEFAULT_SOCKET),
        ("", DEFAULT_SOCKET),  # set but empty: the default, as the engine's wiring reads it
        ("/tmp/other/helper.sock", Path("/tmp/other/helper.sock")),
    ],
)
def test_the_socket_is_chosen_as_the_engine_chooses_it(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: Path
) -> None:
    if env is None:
        monkeypatch.delenv("RUSTRONAUT_HELPER_SOCKET", raising=False)
    else:
        monkeypatch.setenv("RUSTRONAUT_HELPER_SOCKET", env)
    assert helper_socket() == expected


def test_hello_honours_the_helper_socket_variable(
    helper: Running, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUSTRONAUT_HELPER_SOCKET", str(helper.socket))
    assert main(["tunnel", "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"] == 1


def test_an_explicit_socket_option_wins_over_the_variable(
    helper: Running,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUSTRONAUT_HELPER_SOCKET", str(tmp_path / "nobody.sock"))
    assert main(["tunnel", "--socket", str(helper.socket), "hello"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("RUSTRONAUT_HELPER_SOCKET", str(helper.socket))
    assert main(["tunnel", "--socket", str(tmp_path / "nobody.sock"), "hello"]) == 1
    err = capsys.readouterr().err
    assert "nobody.sock" in err or "helper is not running" in err


def test_help_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["tunnel", "--help"])
    assert "RUSTRONAUT_HELPER_SOCKET" in capsys.readouterr().out


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_status_of_an_unknown_interface_is_an_error(
    helper: Running, capsys: pytest.CaptureFixture[str], json_flag: list[str]
) -> None:
    code = main(["tunnel", "--socket", str(helper.socket), "status", "rtw9", *json_flag])
    out, err = capsys.readouterr()
    assert code == 1
    assert "rtw9" in err
    assert "no tunnel" in err.lower()
    assert "Next step:" in err
    assert ": down" not in out  # not presented as a tunnel that is merely down
