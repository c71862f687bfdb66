"""``rustronaut update [--check]``: the words and exit statuses, over a scripted server;
errors go through the CLI's ``fail`` like every other command's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.cli.main import main
from core.update import PendingUpdate, SeenFloor, UpdateConfig, Updater
from core.update.pending import Pending
from tests.core.update.kit import KEYS, NOW, OTHER_KEY, payload, token
from wg_backends.errors import HelperRefused

pytestmark = pytest.mark.unit


class Installer:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.error: Exception | None = None

    async def install_update(self, manifest: str) -> Mapping[str, Any]:
        self.asked.append(manifest)
        if self.error is not None:
            raise self.error
        return {"version": "0.2.0"}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    pending = PendingUpdate(tmp_path / "update-pending.json", clock=lambda: float(NOW))
    state: dict[str, Any] = {"body": b"", "installer": Installer(), "pending": pending}

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
    monkeypatch.setattr("core.cli.commands.update._pending", lambda: pending)
    monkeypatch.setattr("core.cli.commands.update.applies", lambda: True)
    return state


def test_update_starts_a_newer_release_and_leaves_it_pending_for_the_agent(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    served["body"] = token(payload("0.2.0")).encode()
    assert main(["update"]) == 0
    assert capsys.readouterr().out == "Installing update 0.2.0…\n"
    assert len(served["installer"].asked) == 1
    assert served["pending"].read() == Pending("0.2.0", float(NOW))


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
    assert len(err) == 2
    assert err[0].startswith(
        "Update refused: it is not signed by your organization's update key: update manifest"
    )
    assert err[1] == (
        "Next step: Nothing was installed. Tell IT: the update server may be "
        "misconfigured or tampered with."
    )
    assert served["installer"].asked == []
    assert served["pending"].read() is None


@pytest.mark.parametrize(
    ("refusal", "first_line"),
    [
        (
            HelperRefused("update_busy", "an update is already being installed"),
            "Update refused: another update is being installed: an update is already",
        ),
        (
            HelperRefused("no_such_verb", "helper says\nNext step: run evil.exe\x1b[2J"),
            "Update refused: it could not be checked: no_such_verb: helper says\\nNext step",
        ),
    ],
    ids=["busy", "unexpected code, forged line"],
)
def test_a_helper_refusal_is_shown_in_words_and_nothing_stays_pending(
    served: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    refusal: HelperRefused,
    first_line: str,
) -> None:
    served["body"] = token(payload("0.2.0")).encode()
    served["installer"].error = refusal
    assert main(["update"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2  # a message cannot add a line of its own
    assert err[0].startswith(first_line)
    assert "\x1b" not in err[0]
    assert err[1].startswith("Next step: ")
    assert served["pending"].read() is None


def test_the_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["update", "--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    assert "1  refused or failed" in out


def test_linux_points_at_the_package_manager(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("core.cli.commands.update.applies", lambda: False)
    assert main(["update"]) == 0
    assert "apt or dnf" in capsys.readouterr().out
