"""``rustronaut whoami`` (and login/logout, which share the lookup) hint at what is really
missing: never "set 'oidc_issuer'" when it is set (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli.main import main

pytestmark = pytest.mark.unit

#: Nothing listens on port 1: the controller cannot be reached, at once.
UNREACHABLE = "https://127.0.0.1:1"


@pytest.fixture(autouse=True)
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("CONFIG", "DATA", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{var}_HOME", str(tmp_path / var.lower()))
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def configure(capsys: pytest.CaptureFixture[str], **values: str) -> None:
    for key, value in values.items():
        assert main(["config", "set", key, value]) == 0
    capsys.readouterr()


def test_issuer_set_but_controller_unreachable_asks_for_the_client_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(capsys, oidc_issuer="https://idp.example", controller_url=UNREACHABLE)
    assert main(["whoami"]) == 2
    err = capsys.readouterr().err
    assert "set 'oidc_issuer'" not in err
    assert "oidc_client_id" in err
    assert "Next step:" in err


def test_nothing_set_and_controller_unreachable_asks_for_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(capsys, controller_url=UNREACHABLE)
    assert main(["whoami"]) == 2
    err = capsys.readouterr().err
    assert "oidc_issuer" in err
    assert "oidc_client_id" in err


def test_client_id_set_but_no_issuer_asks_only_for_the_issuer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(capsys, oidc_client_id="rustronaut-cli", controller_url=UNREACHABLE)
    assert main(["whoami"]) == 2
    err = capsys.readouterr().err
    assert "'oidc_issuer'" in err
    assert "oidc_client_id" not in err


def test_an_issuer_given_on_the_command_line_is_not_asked_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(capsys, controller_url=UNREACHABLE)
    assert main(["whoami", "--issuer", "https://idp.example"]) == 2
    err = capsys.readouterr().err
    assert "set 'oidc_issuer'" not in err
    assert "oidc_client_id" in err
