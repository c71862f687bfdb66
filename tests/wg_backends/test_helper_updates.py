"""The helper's install_update: its own keys and floor, a 0600 download in its own
directory, the re-check right before the installer, the exact installer commands."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.update.kit import (
    KEYS,
    NOW,
    OTHER_KEY,
    PAYLOAD,
    FileServer,
    RecordingRunner,
    anchor,
    file_server,
    payload,
    token,
    with_url,
)
from tests.fakes.wait import wait_until
from wg_backends.helper.updates import (
    HelperUpdates,
    UpdateFloor,
    UpdateManaged,
    UpdateRefused,
    detached_options,
    launch_detached,
    read_update_managed,
)

pytestmark = pytest.mark.root  # the helper's files are root's: checked as such


@pytest.fixture
def served() -> Iterator[FileServer]:
    with file_server() as server:
        server.files["/u.bin"] = PAYLOAD
        yield server


def _updates(tmp_path: Path, managed: UpdateManaged | None = None) -> HelperUpdates:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    up = HelperUpdates(state)
    up.launch = RecordingRunner()
    up.platform = "windows-x86_64"
    up.installed = "0.1.0"
    up.clock = lambda: float(NOW)
    up.read_managed = lambda: managed or UpdateManaged(update_keys=KEYS)
    return up


def _runner(up: HelperUpdates) -> RecordingRunner:
    assert isinstance(up.launch, RecordingRunner)
    return up.launch


def _tok(served: FileServer, version: str = "0.2.0", **kw: Any) -> str:
    return token(with_url(payload(version), served.url("/u.bin"), **kw))


def test_windows_downloads_0600_into_its_own_directory_and_runs_nsis_silently(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    result = up.install(_tok(served))
    target = up.dir / "rustronaut-0.2.0-windows-x86_64.exe"
    assert _runner(up).calls == [(str(target), "/S")]
    assert _runner(up).seen == [(PAYLOAD, 0o600, 0)]  # what ran: the file, 0600, root's
    assert result == {"version": "0.2.0", "platform": "windows-x86_64", "argv": [str(target), "/S"]}
    assert os.stat(up.dir).st_mode & 0o777 == 0o700
    assert list(up.dir.iterdir()) == [target]  # kept for the installer, which runs on
    assert UpdateFloor(up.state_dir).read() == "0.2.0"


def test_the_installer_left_by_an_earlier_update_is_removed_by_the_next(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    up.install(_tok(served))
    up.platform = "macos-universal"
    up.install(_tok(served, "0.3.0"))
    assert list(up.dir.iterdir()) == [up.dir / "rustronaut-0.3.0-macos-universal.pkg"]


def test_the_installer_is_started_detached_and_not_waited_for(tmp_path: Path) -> None:
    # The installer stops this helper: it must not be in the helper's session (launchd
    # kills the job's process group) nor hold the helper waiting (NSIS stops the service).
    out, gate = tmp_path / "sid", tmp_path / "gate"
    os.mkfifo(gate)  # the installer blocks on it until the test opens it for writing
    code = (
        "import os, sys; tmp = sys.argv[1] + '.tmp'; open(tmp, 'w').write(str(os.getsid(0)));"
        " os.replace(tmp, sys.argv[1]); open(sys.argv[2]).read()"
    )
    proc = launch_detached([sys.executable, "-c", code, str(out), str(gate)])
    try:
        wait_until(out.exists, what="the installer ran")
        assert proc.poll() is None  # launch returned while the installer still runs
        assert int(out.read_text()) == proc.pid != os.getsid(0)  # its own session
    finally:
        with contextlib.suppress(OSError):  # no reader (it died): nothing to release
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
        proc.wait(10)
    assert detached_options("win32")["creationflags"] == 0x208  # DETACHED, NEW_PROCESS_GROUP
    assert "start_new_session" not in detached_options("win32")
    assert detached_options("darwin")["start_new_session"] is True
    assert detached_options("darwin")["close_fds"] is True


def test_macos_runs_installer_pkg_on_the_root_volume(tmp_path: Path, served: FileServer) -> None:
    up = _updates(tmp_path)
    up.platform = "macos-universal"
    up.install(_tok(served))
    pkg = str(up.dir / "rustronaut-0.2.0-macos-universal.pkg")
    assert _runner(up).calls == [("/usr/sbin/installer", "-pkg", pkg, "-target", "/")]


def test_linux_is_refused_before_any_download(tmp_path: Path, served: FileServer) -> None:
    up = _updates(tmp_path)
    up.platform = "linux-x86_64"
    doc = with_url(payload(), served.url("/u.bin"))
    doc["files"]["linux-x86_64"] = doc["files"]["windows-x86_64"]
    with pytest.raises(UpdateRefused) as err:
        up.install(token(doc))
    assert err.value.code == "update_platform"
    assert served.hits == []
    assert _runner(up).calls == []


def _files(up: HelperUpdates) -> set[Path]:
    return set(up.dir.iterdir()) if up.dir.exists() else set()


def _refused(up: HelperUpdates, tok: str) -> str:
    before = _files(up)
    with pytest.raises(UpdateRefused) as err:
        up.install(tok)
    assert _runner(up).calls == []
    assert _files(up) == before  # nothing new left behind
    return err.value.code


def test_a_payload_byte_changed_on_the_server_is_refused_by_its_hash(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    served.files["/u.bin"] = PAYLOAD[:-1] + b"\x00"
    assert _refused(up, _tok(served)) == "update_hash"


@pytest.mark.parametrize("length", [True, False], ids=["announced", "chunked"])
def test_an_oversized_download_is_cut_off(tmp_path: Path, served: FileServer, length: bool) -> None:
    up = _updates(tmp_path)
    served.files["/u.bin"] = PAYLOAD + b"x" * 1_000_000
    if not length:
        served.no_length.add("/u.bin")
    assert _refused(up, _tok(served)) == "update_size"


@pytest.mark.parametrize(
    "location", ["file:///etc/shadow", "ftp://127.0.0.1/u.bin", "/elsewhere.bin"]
)
def test_redirects_lead_only_to_http_and_the_hash_still_decides(
    tmp_path: Path, served: FileServer, location: str
) -> None:
    up = _updates(tmp_path)
    served.redirects["/u.bin"] = location
    served.files["/elsewhere.bin"] = PAYLOAD
    if location.startswith("/"):
        up.install(_tok(served))  # an http redirect (a CDN) is followed
        assert served.hits == ["/u.bin", "/elsewhere.bin"]
        return
    assert _refused(up, _tok(served)) == "update_download"


def test_a_short_download_is_refused(tmp_path: Path, served: FileServer) -> None:
    up = _updates(tmp_path)
    served.files["/u.bin"] = PAYLOAD[:100]
    assert _refused(up, _tok(served)) == "update_size"


def test_a_file_swapped_after_the_download_is_refused_at_the_recheck(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)

    def swap(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))  # same path, same owner and mode: only the bytes

    up.before_install = swap
    assert _refused(up, _tok(served)) == "update_hash"


def test_a_file_replaced_by_a_link_is_refused_at_the_recheck(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    (tmp_path / "evil.exe").write_bytes(PAYLOAD)

    def relink(path: Path) -> None:
        path.unlink()
        path.symlink_to(tmp_path / "evil.exe")

    up.before_install = relink
    assert _refused(up, _tok(served)) == "update_hash"


def test_keys_turned_off_between_download_and_install_stop_it(
    tmp_path: Path, served: FileServer
) -> None:
    settings = [UpdateManaged(update_keys=KEYS)]
    up = _updates(tmp_path)
    up.read_managed = lambda: settings[-1]
    up.before_install = lambda _p: settings.append(UpdateManaged(auto_update=False))
    assert _refused(up, _tok(served)) == "update_disabled"


@pytest.mark.parametrize(
    ("managed", "code"),
    [
        (UpdateManaged(auto_update=False, update_keys=KEYS), "update_disabled"),
        (UpdateManaged(), "update_disabled"),  # no key managed: nothing is trusted
        (UpdateManaged(update_keys=(anchor(OTHER_KEY),)), "update_signature"),
        (UpdateManaged(update_keys=KEYS, update_pin_version="0.3.0"), "update_pinned"),
    ],
)
def test_the_helpers_own_managed_settings_decide(
    tmp_path: Path, served: FileServer, managed: UpdateManaged, code: str
) -> None:
    up = _updates(tmp_path, managed)
    assert _refused(up, _tok(served)) == code
    assert served.hits == []


def test_rollback_below_the_installed_version_or_the_floor_is_refused(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    assert _refused(up, _tok(served, "0.0.9")) == "update_rollback"
    up.install(_tok(served, "0.3.0"))  # the floor is now 0.3.0 ...
    _runner(up).calls.clear()
    assert _refused(up, _tok(served, "0.2.0")) == "update_rollback"  # ... for ever
    assert UpdateFloor(up.state_dir).read() == "0.3.0"


def test_a_stale_manifest_is_refused(tmp_path: Path, served: FileServer) -> None:
    up = _updates(tmp_path)
    up.clock = lambda: float(NOW + 8 * 86400)
    assert _refused(up, _tok(served)) == "update_stale"


def test_a_floor_file_that_is_not_the_helpers_refuses_rather_than_resets(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    (up.state_dir / "update-floor.json").write_text("{not json")
    assert _refused(up, _tok(served)) == "update_rollback"


def test_an_installer_that_cannot_start_is_reported_and_its_file_removed(
    tmp_path: Path, served: FileServer
) -> None:
    up = _updates(tmp_path)
    _runner(up).rc = 2
    with pytest.raises(UpdateRefused) as err:
        up.install(_tok(served))
    assert err.value.code == "update_install"
    assert list(up.dir.iterdir()) == []


# ----- the helper's reading of managed settings ------------------------------------------


def _managed(tmp_path: Path, doc: dict[str, Any], mode: int = 0o644) -> Path:
    d = tmp_path / "managed"
    d.mkdir(exist_ok=True)
    f = d / "managed.json"
    f.write_text(json.dumps(doc))
    f.chmod(mode)
    return d


def test_managed_update_settings_are_read_from_root_owned_files(tmp_path: Path) -> None:
    d = _managed(
        tmp_path,
        {"auto_update": False, "update_pin_version": "1.4.0", "update_keys": list(KEYS)},
    )
    assert read_update_managed(d) == UpdateManaged(False, "1.4.0", KEYS)


@pytest.mark.parametrize(
    ("doc", "mode"),
    [
        ({"auto_update": False, "update_keys": list(KEYS)}, 0o666),  # group/other writable
        ({"auto_update": "no"}, 0o644),
        ({"update_pin_version": "1.4"}, 0o644),
        ({"update_keys": ["not-a-key"]}, 0o644),
    ],
)
def test_a_managed_file_that_cannot_speak_for_the_organisation_counts_as_absent(
    tmp_path: Path, doc: dict[str, Any], mode: int
) -> None:
    assert read_update_managed(_managed(tmp_path, doc, mode)) == UpdateManaged()


def test_windows_reads_the_policy_registry_key() -> None:
    values = {
        "auto_update": 0,
        "update_pin_version": "1.4.0",
        "update_keys": list(KEYS),
    }
    asked: list[tuple[str, str, str]] = []

    def query(key: str, name: str, kind: str) -> object:
        asked.append((key, name, kind))
        return values.get(name)

    assert read_update_managed(None, registry=query) == UpdateManaged(False, "1.4.0", KEYS)
    assert [a[1:] for a in asked] == [
        ("auto_update", "REG_DWORD"),
        ("update_pin_version", "REG_SZ"),
        ("update_keys", "REG_MULTI_SZ"),
    ]
    assert asked[0][0] == r"SOFTWARE\Policies\Rustronaut\Client"
