"""Precedence, sources, locks and bad input of ``core.settings.load`` / ``set_user``."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import pytest

from core import settings
from core.engine.api import SettingView
from core.settings import (
    ManagedLayer,
    SettingLockedError,
    SettingsFileError,
    SettingValueError,
)
from core.settings.managed.linux import LinuxManagedSource

pytestmark = pytest.mark.unit

WriteJson = Callable[[Path, object], Path]


class StaticSource:
    """A managed source returning fixed layers (for precedence tables)."""

    def __init__(self, *layers: ManagedLayer) -> None:
        self.layers = layers

    def describe(self) -> str:
        return "static"

    def read(self) -> Sequence[ManagedLayer]:
        return self.layers

    def fingerprint(self) -> Hashable:
        return len(self.layers)


class BrokenSource(StaticSource):
    def read(self) -> Sequence[ManagedLayer]:
        raise RuntimeError("reader exploded")


def test_defaults_when_nothing_is_configured() -> None:
    s = settings.load()
    assert s.problems == ()
    for item in s.items():
        assert item.source == "default"
        assert item.locked is False
        assert item.value == settings.SPECS[item.key].default
        assert item.origin is None
    assert s.proxy_port == 9080
    assert s.values.proxy_port == 9080


@pytest.mark.parametrize(
    ("user", "managed", "value", "source"),
    [
        (None, None, 9080, "default"),
        (9100, None, 9100, "user"),
        (None, 9200, 9200, "managed"),
        (9100, 9200, 9200, "managed"),
        (9100, 80, 9100, "user"),  # bad managed value falls back to the user's
        (None, "x", 9080, "default"),  # … or to the default
        (70000, None, 9080, "default"),  # a bad user value too
    ],
)
def test_precedence_managed_over_user_over_default(
    user: object,
    managed: object,
    value: int,
    source: str,
    user_file: Path,
    managed_dir: Path,
    write_json: WriteJson,
) -> None:
    if user is not None:
        write_json(user_file, {"proxy_port": user})
    if managed is not None:
        write_json(managed_dir / "managed.json", {"proxy_port": managed})
    s = settings.load()
    assert s.get("proxy_port") == value
    assert s.source("proxy_port") == source
    assert s.locked("proxy_port") is (source == "managed")
    bad = (user is not None and value != user and source != "managed") or (
        managed is not None and source != "managed"
    )
    assert bool(s.problems) is bad


def test_origin_names_the_file(managed_dir: Path, user_file: Path, write_json: WriteJson) -> None:
    write_json(user_file, {"log_level": "debug"})
    write_json(managed_dir / "managed.json", {"always_on": True})
    s = settings.load()
    assert s.origin("always_on") == str(managed_dir / "managed.json")
    assert s.origin("log_level") == str(user_file)
    assert s.origin("proxy_port") is None


def test_layers_apply_in_order_and_a_bad_layer_value_rejects_every_layer() -> None:
    low = ManagedLayer(origin="low", values={"proxy_port": 9001, "log_level": "error"})
    high = ManagedLayer(origin="high", values={"log_level": "debug"})
    s = settings.load(managed_sources=[StaticSource(low, high)])
    assert (s.proxy_port, s.origin("proxy_port")) == (9001, "low")
    assert (s.log_level, s.origin("log_level")) == ("debug", "high")
    bad = ManagedLayer(origin="high", values={"proxy_port": "bad", "log_level": "debug"})
    s = settings.load(managed_sources=[StaticSource(low, bad)])
    assert (s.proxy_port, s.log_level) == (9080, "info")
    assert len(s.problems) == 1
    assert s.problems[0].startswith("high: proxy_port: expected a whole number")


def test_bad_input_is_reported_and_rejects_the_valid_keys_too(
    managed_dir: Path, write_json: WriteJson
) -> None:
    write_json(
        managed_dir / "managed.json",
        {
            "controller_url": "https://ctl.example.com",
            "proxy_port": "9090",
            "always_on": "yes",
            "tls_pin_sha256": ["not-a-pin"],
            "proxi_port": 9090,
        },
    )
    s = settings.load()
    for key in ("controller_url", "proxy_port", "always_on", "tls_pin_sha256"):
        assert s.source(key) == "default"
        assert not s.locked(key)
    origin = str(managed_dir / "managed.json")
    text = "\n".join(s.problems)
    assert f"{origin}: proxy_port: expected a whole number from 1024 to 65535, got string" in text
    assert f"{origin}: always_on: expected true or false, got string" in text
    assert f"{origin}: tls_pin_sha256: expected a list of strings" in text
    assert f"{origin}: unknown setting 'proxi_port' — did you mean proxy_port?" in text
    assert len(s.problems) == 4


def test_a_list_is_never_half_applied(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.json", {"posture_required_files": ["/ok", 3, "/also-ok"]})
    s = settings.load()
    assert s.posture_required_files == ()
    assert s.source("posture_required_files") == "default"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[1, 2]", "expected a JSON object of settings, got list"),
        (b"\xff\xfe\x00bad", "not UTF-8 text"),
        ('{"proxy_port": 9100, "proxy_port": 9200}', "proxy_port: given twice"),
    ],
)
def test_malformed_managed_files(managed_dir: Path, content: str | bytes, fragment: str) -> None:
    path = managed_dir / "managed.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    s = settings.load()
    assert any(p.startswith(str(path)) and fragment in p for p in s.problems), s.problems


def test_unreadable_managed_file(managed_dir: Path, write_json: WriteJson) -> None:
    # A directory where a file should be: not readable as a file (works as root too).
    (managed_dir / "managed.json").mkdir()
    write_json(managed_dir / "managed.d" / "10-ok.json", {"proxy_port": 9300})
    s = settings.load()
    assert s.proxy_port == 9080  # the good drop-in is rejected with the rest
    assert any("managed.json: not a regular file" in p for p in s.problems)


def test_world_writable_managed_file_is_ignored(managed_dir: Path, write_json: WriteJson) -> None:
    path = write_json(managed_dir / "managed.json", {"always_on": True})
    os.chmod(path, 0o666)
    s = settings.load()
    assert s.always_on is False
    assert any("writable by everyone" in p for p in s.problems)


def test_a_crashing_reader_becomes_a_problem() -> None:
    s = settings.load(managed_sources=[BrokenSource()])
    assert s.proxy_port == 9080
    assert s.problems == ("static: cannot read managed settings: reader exploded",)


def test_malformed_user_file_is_a_problem_not_a_crash(
    user_file: Path, write_json: WriteJson
) -> None:
    write_json(user_file, "{")
    s = settings.load()
    assert s.source("proxy_port") == "default"
    assert s.problems
    assert s.problems[0].startswith(str(user_file))


def test_items_satisfy_the_engine_setting_view() -> None:
    s = settings.load()
    items = list(s.items())
    assert [i.key for i in items] == list(settings.SPECS)
    view: SettingView = items[0]
    assert view.description == settings.SPECS[items[0].key].description


def test_snapshot_is_immutable_and_unknown_keys_are_refused() -> None:
    s = settings.load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.problems = ()  # type: ignore[misc]
    with pytest.raises(SettingValueError, match="did you mean proxy_port"):
        s.get("proxyport")
    with pytest.raises(AttributeError):
        _ = s.no_such_attribute


def test_set_user_writes_private_file_atomically(user_file: Path) -> None:
    new = settings.set_user("proxy_port", "9123")
    assert (new.proxy_port, new.source("proxy_port")) == (9123, "user")
    assert json.loads(user_file.read_text()) == {"proxy_port": 9123}
    assert stat.S_IMODE(user_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(user_file.parent.stat().st_mode) == 0o700
    settings.set_user("tls_pin_sha256", [], settings=new)
    settings.set_user("auto_connect", False)
    assert json.loads(user_file.read_text()) == {
        "auto_connect": False,
        "proxy_port": 9123,
        "tls_pin_sha256": [],
    }
    assert sorted(p.name for p in user_file.parent.iterdir()) == ["settings.json"]


def test_set_user_refuses_locked_keys(
    managed_dir: Path, user_file: Path, write_json: WriteJson
) -> None:
    write_json(managed_dir / "managed.json", {"always_on": True})
    with pytest.raises(SettingLockedError, match="set by your organization") as info:
        settings.set_user("always_on", "false")
    assert info.value.key == "always_on"
    assert not user_file.exists()


def test_set_user_refuses_invalid_values_and_keeps_the_file(
    user_file: Path, write_json: WriteJson
) -> None:
    write_json(user_file, {"proxy_port": 9100})
    before = user_file.read_bytes()
    with pytest.raises(SettingValueError, match="proxy_port: expected a whole number"):
        settings.set_user("proxy_port", "80")
    with pytest.raises(SettingValueError, match="unknown setting"):
        settings.set_user("no_such_key", "1")
    assert user_file.read_bytes() == before


def test_set_user_sets_an_unusable_user_file_aside(user_file: Path, write_json: WriteJson) -> None:
    write_json(user_file, "{ broken")
    settings.set_user("log_level", "debug")
    assert json.loads(user_file.read_text()) == {"log_level": "debug"}
    kept = [p for p in user_file.parent.iterdir() if p.name.startswith("settings.json.invalid-")]
    assert len(kept) == 1
    assert kept[0].read_text() == "{ broken"


def test_set_user_keeps_unknown_keys_of_a_newer_version(
    user_file: Path, write_json: WriteJson
) -> None:
    write_json(user_file, {"future_key": 1})
    settings.set_user("notifications", "off")
    assert json.loads(user_file.read_text()) == {"future_key": 1, "notifications": False}


def test_set_user_reports_unwritable_location(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = isolated / "blocked"
    blocker.write_text("a file where the config dir should be")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    with pytest.raises(SettingsFileError, match="cannot write"):
        settings.set_user("log_level", "debug")


def test_unset_user_is_idempotent(user_file: Path, write_json: WriteJson) -> None:
    write_json(user_file, {"proxy_port": 9100, "log_level": "debug"})
    new = settings.unset_user("proxy_port")
    assert new.source("proxy_port") == "default"
    assert json.loads(user_file.read_text()) == {"log_level": "debug"}
    settings.unset_user("proxy_port")
    assert json.loads(user_file.read_text()) == {"log_level": "debug"}


def test_explicit_user_path_and_sources(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "s.json"
    src = LinuxManagedSource(tmp_path / "nothing-here")
    s = settings.load(managed_sources=[src], user_path=path)
    new = settings.set_user("organization_name", "ACME", settings=s)
    assert new.organization_name == "ACME"
    assert new.user_path == path
    assert new.managed_sources == (src,)
    assert json.loads(path.read_text()) == {"organization_name": "ACME"}


def test_as_json_round_trips(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.json", {"tls_pin_sha256": []})
    doc = settings.as_json(settings.load())
    json.dumps(doc)
    row = next(r for r in doc["settings"] if r["key"] == "tls_pin_sha256")  # type: ignore[union-attr,index]
    assert row == {
        "key": "tls_pin_sha256",
        "value": [],
        "source": "managed",
        "locked": True,
        "origin": str(managed_dir / "managed.json"),
        "description": settings.SPECS["tls_pin_sha256"].description,
    }
