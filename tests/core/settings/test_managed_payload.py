"""A managed payload is validated as a whole (issue 16, item 8).

One invalid, unknown or wrongly typed key rejects every managed key; the previous payload
stays in force (the watcher keeps the last good one), and the rejection is exposed with
its reason (``EffectiveSettings.managed_rejected``, ``rustronaut config show``). Types
are strict: ``"yes"`` and ``1`` are not booleans, ``"9080"`` is not a number.
"""

from __future__ import annotations

import plistlib
from collections.abc import Callable
from pathlib import Path

import pytest

from core import settings
from core.cli.main import main as cli_main
from core.settings.managed import ManagedLayer
from core.settings.managed.macos import DOMAIN, MacManagedSource
from core.settings.managed.windows import (
    REG_DWORD,
    REG_MULTI_SZ,
    REG_SZ,
    RegistryValues,
    WindowsManagedSource,
)

pytestmark = [pytest.mark.unit, pytest.mark.broken_mdm]

WriteJson = Callable[[Path, object], Path]
PIN = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # base64 of 32 bytes
GOOD = {"always_on": True, "tls_pin_sha256": [PIN], "controller_url": "https://c.example.com"}


def test_a_bad_pin_rejects_the_whole_payload_instead_of_turning_pinning_off(
    managed_dir: Path, write_json: WriteJson
) -> None:
    write_json(managed_dir / "managed.json", {**GOOD, "tls_pin_sha256": [PIN, "not-a-pin"]})
    s = settings.load()
    assert s.managed_rejected is not None
    assert "tls_pin_sha256" in s.managed_rejected
    assert "no managed settings apply until it is fixed" in s.managed_rejected
    # Nothing of the payload applies: not the valid keys beside the bad one either.
    assert {s.source(k) for k in GOOD} == {"default"}
    assert s.managed == settings.ManagedPayload()


def test_a_bad_dropin_rejects_the_base_file_too(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.json", GOOD)
    write_json(managed_dir / "managed.d" / "20-pins.json", {"tls_pin_sha256": ["bad"]})
    s = settings.load()
    assert s.managed_rejected is not None
    assert str(managed_dir / "managed.d" / "20-pins.json") in s.managed_rejected
    assert s.tls_pin_sha256 == ()


async def test_the_watcher_keeps_the_last_good_payload(
    managed_dir: Path, write_json: WriteJson
) -> None:
    """A live change of always_on to "yes" used to switch always-on off."""
    path = write_json(managed_dir / "managed.json", GOOD)
    watcher = settings.SettingsWatcher(interval=60)
    assert watcher.current.managed_rejected is None
    assert watcher.current.always_on is True
    seen: list[settings.EffectiveSettings] = []
    watcher.subscribe(seen.append)

    write_json(path, {**GOOD, "always_on": "yes"})
    assert await watcher.poll()
    s = watcher.current
    assert s.managed_rejected is not None
    assert 'always_on: expected true or false, got string "yes"' in s.managed_rejected
    assert "the previous managed settings stay in force" in s.managed_rejected
    assert (s.always_on, s.source("always_on"), s.locked("always_on")) == (True, "managed", True)
    assert s.tls_pin_sha256 == (PIN,)
    assert seen == [s]

    write_json(path, {**GOOD, "tls_pin_sha256": ["bad"], "always_on": False})
    await watcher.poll()
    assert watcher.current.tls_pin_sha256 == (PIN,)
    assert watcher.current.always_on is True
    # A reload through the snapshot (what ``set_user`` does) keeps it in force too.
    assert watcher.current.reload().always_on is True

    write_json(path, {**GOOD, "always_on": False})
    await watcher.poll()
    s = watcher.current
    assert s.managed_rejected is None
    assert (s.always_on, s.source("always_on")) == (False, "managed")


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"always_on": "yes"}, 'expected true or false, got string "yes"'),
        ({"always_on": "true"}, 'got string "true"'),
        ({"always_on": 1}, "got number 1"),
        ({"always_on": "1"}, 'got string "1"'),
        ({"proxy_port": "9001"}, 'expected a whole number from 1024 to 65535, got string "9001"'),
        ({"proxy_port": 9001.0}, "got number 9001.0"),
        ({"proxy_port": True}, "got boolean true"),
        ({"log_level": "INFO"}, "expected one of debug, info, warning, error"),
        ({"tls_pin_sha256": PIN}, "expected a list of strings"),
        ({"always_onn": True}, "unknown setting 'always_onn' — did you mean always_on?"),
        ({"always_on": None}, "got null"),
    ],
)
def test_types_are_strict_and_unknown_keys_reject(
    managed_dir: Path, write_json: WriteJson, doc: dict[str, object], fragment: str
) -> None:
    write_json(managed_dir / "managed.json", {"organization_name": "Example Corp", **doc})
    s = settings.load()
    assert s.managed_rejected is not None
    assert fragment in s.managed_rejected
    assert s.source("organization_name") == "default"


def test_duplicate_keys_reject(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.json", '{"always_on": false, "always_on": true}')
    s = settings.load()
    assert s.managed_rejected is not None
    assert "always_on: given twice" in s.managed_rejected
    assert s.source("always_on") == "default"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (("1", REG_SZ), 'always_on: expected true or false, got string "1"'),
        ((2, REG_DWORD), "got number 2"),
        ((["yes"], REG_MULTI_SZ), "got list"),
    ],
)
def test_registry_values_are_strict(value: tuple[object, int], fragment: str) -> None:
    class Registry:
        def read_values(self, key_path: str) -> RegistryValues | None:
            return {"Always_On": value, "proxy_port": (9001, REG_DWORD)}

    s = settings.load(managed_sources=[WindowsManagedSource(Registry())])
    assert s.managed_rejected is not None
    assert fragment in s.managed_rejected
    assert "registry type" in s.managed_rejected
    assert s.proxy_port == 9080


def test_plist_values_are_strict(tmp_path: Path) -> None:
    (tmp_path / f"{DOMAIN}.plist").write_bytes(
        plistlib.dumps({"always_on": "YES", "proxy_port": 9001, "PayloadUUID": "x"})
    )
    s = settings.load(managed_sources=[MacManagedSource(root=tmp_path, user="")])
    assert s.managed_rejected is not None
    assert 'got string "YES"' in s.managed_rejected
    assert s.proxy_port == 9080


def test_a_failing_reader_rejects_like_a_bad_file() -> None:
    class Broken:
        def describe(self) -> str:
            return "broken"

        def read(self) -> list[ManagedLayer]:
            raise RuntimeError("boom")

        def fingerprint(self) -> object:
            return None

    previous = settings.ManagedPayload(values={"always_on": True}, origins={"always_on": "x"})
    s = settings.load(managed_sources=[Broken()], last_good=previous)
    assert s.managed_rejected is not None
    assert "broken: cannot read managed settings: boom" in s.managed_rejected
    assert (s.always_on, s.origin("always_on")) == (True, "x")


def test_many_problems_are_summed_up(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.json", {f"bogus_{i}": i for i in range(7)})
    s = settings.load()
    assert s.managed_rejected is not None
    assert "(and 4 more)" in s.managed_rejected
    assert len(s.problems) == 7


def test_config_show_prints_the_rejection(
    managed_dir: Path, write_json: WriteJson, capsys: pytest.CaptureFixture[str]
) -> None:
    write_json(managed_dir / "managed.json", {"always_on": "yes"})
    assert cli_main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "Managed configuration rejected:" in out
    assert 'always_on: expected true or false, got string "yes"' in out
