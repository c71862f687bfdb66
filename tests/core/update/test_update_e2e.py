"""End to end on Linux: the client's updater fetches the manifest from a loopback server
with real httpx and asks the real helper over its socket; the helper verifies with its
own managed keys, downloads from the loopback server and runs the Windows or macOS
installer behind a recording runner. Every tamper case is refused on the way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.update import (
    HelperInstaller,
    Outcome,
    PendingUpdate,
    SeenFloor,
    UpdateConfig,
    UpdateError,
    Updater,
    UpdateRejected,
)
from core.update.schedule import UpdateSchedule
from tests.core.update.kit import (
    KEYS,
    NOW,
    OTHER_KEY,
    PAYLOAD,
    FileServer,
    RecordingRunner,
    file_server,
    payload,
    token,
    with_url,
)
from tests.wg_backends.inproc import Running, serve_in_thread
from wg_backends.errors import HelperRefused
from wg_backends.helper.client import HelperClient

pytestmark = [pytest.mark.root, pytest.mark.integration]


@dataclass
class Bed:
    helper: Running
    server: FileServer
    runner: RecordingRunner
    managed: Path
    tmp: Path

    def publish(self, version: str = "0.2.0", *, key: Any = None, **over: Any) -> str:
        doc = with_url(payload(version, **over), self.server.url("/u.bin"))
        tok = token(doc, key) if key is not None else token(doc)
        self.server.files["/stable.jws"] = tok.encode() + b"\n"
        return tok

    def manage(self, **values: Any) -> None:
        (self.managed / "managed.json").write_text(json.dumps(values))

    def updater(
        self, platform: str = "windows-x86_64", **config: Any
    ) -> tuple[Updater, HelperClient]:
        client = HelperClient(self.helper.socket, timeout=30)
        cfg = UpdateConfig(update_url=self.server.url("/stable.jws"), update_keys=KEYS)
        for name, value in config.items():
            cfg = UpdateConfig(**{**_fields(cfg), name: value})
        return (
            Updater(
                cfg,
                HelperInstaller(client),
                SeenFloor(self.tmp / "client" / "update-floor.json"),
                clock=lambda: float(NOW),
                platform=platform,
                installed="0.1.0",
            ),
            client,
        )


def _fields(cfg: UpdateConfig) -> dict[str, Any]:
    return {
        "auto_update": cfg.auto_update,
        "update_url": cfg.update_url,
        "update_keys": cfg.update_keys,
        "update_pin_version": cfg.update_pin_version,
    }


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    managed = tmp_path / "managed"
    managed.mkdir()
    (managed / "managed.json").write_text(json.dumps({"update_keys": list(KEYS)}))
    running = serve_in_thread(tmp_path, managed_dir=managed)
    runner = RecordingRunner()
    updates = running.server.updates
    updates.launch = runner
    updates.platform = "windows-x86_64"
    updates.installed = "0.1.0"
    updates.clock = lambda: float(NOW)
    try:
        with file_server() as server:
            server.files["/u.bin"] = PAYLOAD
            yield Bed(running, server, runner, managed, tmp_path)
    finally:
        running.stop()


async def _run(
    bed: Bed,
    platform: str = "windows-x86_64",
    record: PendingUpdate | None = None,
    **config: Any,
) -> Outcome:
    updater, client = bed.updater(platform, **config)
    try:
        return await updater.run_once(record=record)
    finally:
        await client.close()


async def test_windows_update_end_to_end(bed: Bed) -> None:
    bed.publish()
    assert await _run(bed) == Outcome("started", "0.2.0")
    exe = bed.helper.state_dir / "updates" / "rustronaut-0.2.0-windows-x86_64.exe"
    assert bed.runner.calls == [(str(exe), "/S")]
    assert bed.runner.seen == [(PAYLOAD, 0o600, 0)]
    assert bed.server.hits == ["/stable.jws", "/u.bin"]


async def test_macos_update_end_to_end(bed: Bed) -> None:
    bed.helper.server.updates.platform = "macos-universal"
    bed.publish()
    assert await _run(bed, "macos-universal") == Outcome("started", "0.2.0")
    pkg = bed.helper.state_dir / "updates" / "rustronaut-0.2.0-macos-universal.pkg"
    assert bed.runner.calls == [("/usr/sbin/installer", "-pkg", str(pkg), "-target", "/")]


async def test_an_up_to_date_client_asks_nothing(bed: Bed) -> None:
    bed.publish("0.1.0")
    assert await _run(bed) == Outcome("current", "0.1.0")
    assert bed.server.hits == ["/stable.jws"]
    assert bed.runner.calls == []


async def test_mdm_off_on_the_client_fetches_nothing(bed: Bed) -> None:
    bed.publish()
    assert await _run(bed, auto_update=False) == Outcome("off")
    assert bed.server.hits == []
    assert bed.runner.calls == []


async def test_mdm_off_in_the_helper_wins_over_the_client(bed: Bed) -> None:
    bed.manage(update_keys=list(KEYS), auto_update=False)
    bed.publish()
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == "update_disabled"
    assert bed.server.hits == ["/stable.jws"]
    assert bed.runner.calls == []


async def test_a_version_pinned_by_mdm_is_the_only_one_taken(bed: Bed) -> None:
    bed.manage(update_keys=list(KEYS), update_pin_version="0.2.0")
    bed.publish("0.3.0")
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)  # the client has no pin: the helper's decides
    assert err.value.code == "update_pinned"
    bed.publish("0.2.0")
    assert await _run(bed) == Outcome("started", "0.2.0")


async def test_the_employee_hears_installed_only_from_the_new_build(bed: Bed) -> None:
    """Through the real helper: its refusal leaves nothing pending; its "started" does,
    and only the next start, running the new build, says "Updated to"."""
    record = PendingUpdate(bed.tmp / "client" / "update-pending.json", clock=lambda: float(NOW))
    bed.manage(update_keys=list(KEYS), update_pin_version="0.2.0")
    bed.publish("0.3.0")
    with pytest.raises(UpdateRejected):
        await _run(bed, record=record)
    assert record.read() is None
    bed.publish("0.2.0")
    assert await _run(bed, record=record) == Outcome("started", "0.2.0")
    assert len(bed.runner.calls) == 1
    told: list[str] = []
    still_old = UpdateSchedule(
        lambda: bed.updater()[0],
        lambda text, _d: told.append(text),
        running="0.1.0",
        pending=record,
        clock=lambda: float(NOW),
    )
    assert still_old.settle() is None  # the installer still has time
    new_build = UpdateSchedule(
        lambda: bed.updater()[0],
        lambda text, _d: told.append(text),
        running="0.2.0",
        pending=record,
        clock=lambda: float(NOW),
    )
    assert new_build.settle() is not None
    assert told == ["Updated to 0.2.0"]
    assert record.read() is None


# Tampered manifests: refused by the client already, and by the helper when sent
# straight to it (a client that skips its checks changes nothing).
MANIFESTS = {
    "payload byte": lambda b: _flip(b.publish()),
    "wrong key": lambda b: b.publish(key=OTHER_KEY),
    "stripped signature": lambda b: b.publish().rsplit(".", 1)[0] + ".",
    "rollback below installed": lambda b: b.publish("0.0.9"),
    "stale": lambda b: b.publish(issued_at=NOW - 9 * 86400, expires_at=NOW - 86400),
}
CODES = {
    "payload byte": "update_signature",
    "wrong key": "update_signature",
    "stripped signature": "update_signature",
    "rollback below installed": "update_rollback",
    "stale": "update_stale",
}


def _flip(tok: str) -> str:
    head, body, sig = tok.split(".")
    i = len(body) // 2
    return f"{head}.{body[:i]}{'A' if body[i] != 'A' else 'B'}{body[i + 1 :]}.{sig}"


@pytest.mark.parametrize("case", MANIFESTS)
async def test_a_tampered_manifest_is_refused_by_client_and_helper(bed: Bed, case: str) -> None:
    tok = MANIFESTS[case](bed)
    bed.server.files["/stable.jws"] = tok.encode()
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == CODES[case]
    async with HelperClient(bed.helper.socket, timeout=30) as client:
        with pytest.raises(HelperRefused) as refused:
            await HelperInstaller(client).install_update(tok)
    assert refused.value.helper_code == CODES[case]
    assert bed.runner.calls == []
    assert "/u.bin" not in bed.server.hits


async def test_rollback_below_the_highest_manifest_seen(bed: Bed) -> None:
    bed.publish("0.3.0")
    assert await _run(bed) == Outcome("started", "0.3.0")
    bed.publish("0.2.0")  # a replayed older, still valid, manifest
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == "update_rollback"
    (bed.tmp / "client" / "update-floor.json").unlink()  # the user resets their floor ...
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == "update_rollback"  # ... the helper's floor still holds
    assert len(bed.runner.calls) == 1


async def test_an_oversized_download_is_refused(bed: Bed) -> None:
    bed.publish()
    bed.server.files["/u.bin"] = PAYLOAD + b"\0" * 4_000_000
    bed.server.no_length.add("/u.bin")
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == "update_size"
    assert bed.runner.calls == []


async def test_a_payload_byte_changed_on_the_server_is_refused(bed: Bed) -> None:
    bed.publish()
    bed.server.files["/u.bin"] = b"\x00" + PAYLOAD[1:]
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == "update_hash"
    assert bed.runner.calls == []


async def test_a_file_swapped_after_download_is_refused_at_the_recheck(bed: Bed) -> None:
    def swap(path: Path) -> None:
        path.write_bytes(PAYLOAD[:-1] + b"!")

    bed.helper.server.updates.before_install = swap
    bed.publish()
    with pytest.raises(UpdateRejected) as err:
        await _run(bed)
    assert err.value.code == "update_hash"
    assert bed.runner.calls == []


async def test_linux_is_never_updated_by_the_client(bed: Bed) -> None:
    bed.publish()
    with pytest.raises(UpdateError) as err:
        await _run(bed, "linux-x86_64")
    assert err.value.code in {"update_platform"}
    assert bed.runner.calls == []
