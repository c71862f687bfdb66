"""The client's updater alone: fetching, its floor, the pending record, the settings,
errors mapped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings.errors import SettingValueError
from core.settings.model import SPECS, Settings
from core.update import (
    AnswerLost,
    HelperInstaller,
    Outcome,
    PendingUpdate,
    SeenFloor,
    UpdateConfig,
    UpdateError,
    UpdateFetchError,
    Updater,
    UpdateRejected,
)
from core.update.pending import Pending
from tests.core.update.kit import KEYS, NOW, payload, token
from wg_backends.errors import HelperRefused, HelperUnavailable
from wg_backends.helper.client import HelperClient
from wg_backends.signed.update_manifest import MAX_MANIFEST

URL = "https://updates.example.com/stable.jws"


class FakeInstaller:
    def __init__(self, error: Exception | None = None) -> None:
        self.asked: list[str] = []
        self.error = error

    async def install_update(self, manifest: str) -> Mapping[str, Any]:
        self.asked.append(manifest)
        if self.error is not None:
            raise self.error
        return {"version": "0.2.0"}


def _updater(
    tmp_path: Path, body: bytes | None = None, status: int = 200, **config: Any
) -> tuple[Updater, FakeInstaller, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body if body is not None else b"")

    installer = FakeInstaller(config.pop("error", None))
    cfg = UpdateConfig(**{"update_url": URL, "update_keys": KEYS, **config})
    updater = Updater(
        cfg,
        installer,
        SeenFloor(tmp_path / "update-floor.json"),
        transport=httpx.MockTransport(answer),
        clock=lambda: float(NOW),
        platform="windows-x86_64",
        installed="0.1.0",
    )
    return updater, installer, seen


@pytest.mark.parametrize(
    "config",
    [{"auto_update": False}, {"update_url": ""}, {"update_keys": ()}],
    ids=["off", "no url", "no keys"],
)
async def test_off_asks_nobody(tmp_path: Path, config: dict[str, Any]) -> None:
    updater, installer, seen = _updater(tmp_path, token(payload()).encode(), **config)
    assert await updater.run_once() == Outcome("off")
    assert seen == []
    assert installer.asked == []


async def test_a_newer_release_goes_to_the_helper_and_raises_the_floor(tmp_path: Path) -> None:
    tok = token(payload())
    updater, installer, _ = _updater(tmp_path, tok.encode() + b"\r\n")
    assert await updater.run_once() == Outcome("started", "0.2.0")
    assert installer.asked == [tok]
    assert SeenFloor(tmp_path / "update-floor.json").read() == "0.2.0"
    assert (tmp_path / "update-floor.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 404), (b"x" * (MAX_MANIFEST + 1), 200)],
    ids=["not found", "oversized manifest"],
)
async def test_fetch_failures(tmp_path: Path, body: bytes, status: int) -> None:
    updater, installer, _ = _updater(tmp_path, body, status)
    with pytest.raises(UpdateFetchError):
        await updater.run_once()
    assert installer.asked == []


async def test_a_non_ascii_manifest_is_refused(tmp_path: Path) -> None:
    updater, _, _ = _updater(tmp_path, "é".encode())
    with pytest.raises(UpdateRejected) as err:
        await updater.run_once()
    assert err.value.code == "update_malformed"


async def test_the_helpers_refusal_keeps_its_code_and_leaves_the_floor(tmp_path: Path) -> None:
    refused = HelperRefused("update_pinned", "version 0.1.5 is pinned")
    updater, _, _ = _updater(tmp_path, token(payload()).encode(), error=refused)
    with pytest.raises(UpdateRejected) as err:
        await updater.run_once()
    assert err.value.code == "update_pinned"
    assert SeenFloor(tmp_path / "update-floor.json").read() is None


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (None, True),
        (AnswerLost("lost the helper"), True),
        (HelperRefused("update_hash", "hash differs"), False),
        (HelperUnavailable("no socket"), False),
        (RuntimeError("a bug"), False),
    ],
    ids=["started", "answer lost", "refused", "no helper", "a bug"],
)
async def test_the_pending_record_stays_only_when_the_install_may_be_under_way(
    tmp_path: Path, error: Exception | None, kept: bool
) -> None:
    record = PendingUpdate(tmp_path / "update-pending.json", clock=lambda: float(NOW))
    updater, installer, _ = _updater(tmp_path, token(payload()).encode(), error=error)
    if error is None or isinstance(error, AnswerLost):
        assert await updater.run_once(record=record) == Outcome("started", "0.2.0")
    else:
        with pytest.raises((UpdateError, RuntimeError)):
            await updater.run_once(record=record)
    assert installer.asked  # recorded before the helper was asked
    assert record.read() == (Pending("0.2.0", float(NOW)) if kept else None)


async def test_a_helper_gone_before_the_request_asked_nothing(tmp_path: Path) -> None:
    installer = HelperInstaller(HelperClient(tmp_path / "none.sock", timeout=5))
    with pytest.raises(HelperUnavailable):
        await installer.install_update("token")


async def test_a_helper_hanging_up_after_the_request_lost_its_answer(tmp_path: Path) -> None:
    """The installer stops the helper: the request went out, no answer came."""
    sock = tmp_path / "h.sock"
    asked = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(1):
            asked.set()
        writer.close()

    server = await asyncio.start_unix_server(handle, path=str(sock))
    async with server:
        installer = HelperInstaller(HelperClient(sock, timeout=5), close_after=True)
        with pytest.raises(AnswerLost):
            await installer.install_update("token")
    assert asked.is_set()


async def test_no_helper_is_an_update_error(tmp_path: Path) -> None:
    updater, _, _ = _updater(
        tmp_path, token(payload()).encode(), error=HelperUnavailable("no socket")
    )
    with pytest.raises(UpdateError) as err:
        await updater.run_once()
    assert err.value.code == "update_helper"


async def test_an_unreadable_client_floor_refuses_rather_than_resets(tmp_path: Path) -> None:
    (tmp_path / "update-floor.json").write_text('{"version": "1.0"}')
    updater, installer, _ = _updater(tmp_path, token(payload()).encode())
    with pytest.raises(UpdateRejected) as err:
        await updater.run_once()
    assert err.value.code == "update_rollback"
    assert installer.asked == []


def test_the_update_settings_exist_with_safe_defaults() -> None:
    cfg = UpdateConfig.from_settings(Settings())
    assert cfg == UpdateConfig(True, "", (), "")
    assert not cfg.enabled  # no URL, no keys: nothing is fetched


@pytest.mark.parametrize("value", ["1.4", "01.4.0", "1.4.0-rc1", "v1.4.0", "1.4.0 "])
def test_a_pinned_version_must_be_major_minor_patch(value: str) -> None:
    with pytest.raises(SettingValueError):
        SPECS["update_pin_version"].validate(value)


def test_settings_accept_a_pin_keys_and_a_loopback_http_url() -> None:
    assert SPECS["update_pin_version"].validate("1.14.0") == "1.14.0"
    assert SPECS["update_keys"].validate(list(KEYS)) == KEYS
    assert SPECS["update_url"].validate("http://127.0.0.1:8080/m.jws")
    with pytest.raises(SettingValueError):
        SPECS["update_url"].validate("http://updates.example.com/m.jws")
