"""``rustronaut update [--check]``: the words and exit statuses, over a scripted server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.cli.main import main
from core.update import SeenFloor, UpdateConfig, Updater
from tests.core.update.kit import KEYS, NOW, OTHER_KEY, payload, token

pytestmark = pytest.mark.unit


class Installer:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def install_update(self, manifest: str) -> Mapping[str, Any]:
        self.asked.append(manifest)
        return {"version": "0.2.0"}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"body": b"", "installer": Installer()}

    def make() -> Updater:
        return Updater(
            UpdateConfig(update_url="https://updates.example.com/stable.jws", update_keys=KEYS),
            state["installer"],
            SeenFloor(tmp_path / "update-floor.json"),
            transport=httpx.MockTransport(lambda _r: httpx.Response(200, content=state["body"])),
            clock=lambda: float(NOW),
            platform="macos-universal",
            installed="0.1.0",
        )

    monkeypatch.setattr("core.cli.commands.update._updater", make)
    monkeypatch.setattr("core.cli.commands.update.applies", lambda: True)
    return state


def test_update_installs_a_newer_release(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    served["body"] = token(payload("0.2.0")).encode()
    assert main(["update"]) == 0
    assert capsys.readouterr().out == "Updated to 0.2.0\n"
    assert len(served["installer"].asked) == 1


def test_check_only_says_what_is_available(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    served["body"] = token(payload("0.2.0")).encode()
    assert main(["update", "--check"]) == 0
    assert capsys.readouterr().out == "Update 0.2.0 is available\n"
    assert served["installer"].asked == []
    served["body"] = token(payload("0.1.0")).encode()
    assert main(["update", "--check"]) == 0
    assert capsys.readouterr().out == "Rustronaut 0.1.0 is up to date\n"


def test_a_refusal_exits_1_with_the_reason_and_next_step(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    served["body"] = token(payload("0.2.0"), OTHER_KEY).encode()
    assert main(["update"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("Update refused: it is not signed by your organization's update key (")
    assert err[1] == (
        "Next step: Nothing was installed. Tell IT: the update server may be "
        "misconfigured or tampered with."
    )
    assert served["installer"].asked == []


def test_linux_points_at_the_package_manager(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("core.cli.commands.update.applies", lambda: False)
    assert main(["update"]) == 0
    assert "apt or dnf" in capsys.readouterr().out
