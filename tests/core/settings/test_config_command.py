"""``rustronaut config show|set|unset|path`` through the real CLI entry point and files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from core.cli.main import main

pytestmark = pytest.mark.unit

WriteJson = Callable[[Path, object], Path]


def test_show_lists_every_key_with_source_and_lock(
    capsys: pytest.CaptureFixture[str], managed_dir: Path, user_file: Path, write_json: WriteJson
) -> None:
    write_json(managed_dir / "managed.json", {"always_on": True, "proxy_port": "oops"})
    write_json(user_file, {"log_level": "debug"})
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line.strip()}
    assert lines["always_on"] == ["false", "default"]  # the managed payload is rejected
    assert lines["log_level"] == ["debug", "user"]
    assert lines["proxy_port"] == ["9080", "default"]
    assert lines["controller_url"] == ["(not", "set)", "default"]
    assert "Managed configuration rejected: " in out
    assert "Problems (these values were ignored):" in out
    assert f"{managed_dir / 'managed.json'}: proxy_port: expected a whole number" in out


def test_config_without_action_shows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    assert capsys.readouterr().out.startswith("KEY")


def test_show_json(
    capsys: pytest.CaptureFixture[str], managed_dir: Path, write_json: WriteJson
) -> None:
    write_json(managed_dir / "managed.json", {"tls_pin_sha256": []})
    assert main(["config", "show", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {row["key"]: row for row in doc["settings"]}
    assert rows["tls_pin_sha256"]["locked"] is True
    assert rows["tls_pin_sha256"]["value"] == []
    assert rows["proxy_port"] == {
        "key": "proxy_port",
        "value": 9080,
        "source": "default",
        "locked": False,
        "origin": None,
        "description": rows["proxy_port"]["description"],
    }
    assert doc["problems"] == []


def test_set_and_unset(capsys: pytest.CaptureFixture[str], user_file: Path) -> None:
    assert main(["config", "set", "proxy_port", "9191"]) == 0
    assert capsys.readouterr().out == "proxy_port = 9191 (user)\n"
    assert main(["config", "set", "posture_required_processes", "falcond, osqueryd"]) == 0
    assert json.loads(user_file.read_text()) == {
        "posture_required_processes": ["falcond", "osqueryd"],
        "proxy_port": 9191,
    }
    capsys.readouterr()
    assert main(["config", "unset", "proxy_port"]) == 0
    assert capsys.readouterr().out == "proxy_port = 9080 (default)\n"
    assert json.loads(user_file.read_text()) == {
        "posture_required_processes": ["falcond", "osqueryd"]
    }


def test_set_locked_key_exits_3(
    capsys: pytest.CaptureFixture[str], managed_dir: Path, user_file: Path, write_json: WriteJson
) -> None:
    write_json(managed_dir / "managed.json", {"controller_url": "https://ctl.example.com"})
    assert main(["config", "set", "controller_url", "https://evil.example.com"]) == 3
    err = capsys.readouterr().err
    assert "controller_url is set by your organization" in err
    assert str(managed_dir / "managed.json") in err
    assert not user_file.exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["config", "set", "proxy_port", "80"], "proxy_port: expected a whole number from 1024"),
        (["config", "set", "auto_connect", "perhaps"], "auto_connect: expected true or false"),
        (["config", "set", "proxyport", "9000"], "unknown setting 'proxyport' — did you mean"),
        (["config", "unset", "nope"], "unknown setting 'nope'"),
    ],
)
def test_invalid_input_exits_2(
    capsys: pytest.CaptureFixture[str], user_file: Path, argv: list[str], fragment: str
) -> None:
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err
    assert not user_file.exists()


def test_unwritable_user_file_exits_4(
    capsys: pytest.CaptureFixture[str], isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = isolated / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    assert main(["config", "set", "log_level", "debug"]) == 4
    assert "cannot write" in capsys.readouterr().err


def test_path(capsys: pytest.CaptureFixture[str], managed_dir: Path, user_file: Path) -> None:
    assert main(["config", "path"]) == 0
    out = capsys.readouterr().out
    assert f"user settings:     {user_file}\n" in out
    assert f"managed settings:  {managed_dir / 'managed.json'}" in out
    assert "logs:" in out
