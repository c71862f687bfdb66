"""macOS managed preferences: real plist files (XML and binary), device then user."""

from __future__ import annotations

import datetime
import plistlib
from pathlib import Path

import pytest

from core import settings
from core.settings.managed.macos import DOMAIN, MANAGED_PREFERENCES, MacManagedSource

pytestmark = pytest.mark.unit


def write_plist(path: Path, doc: object, fmt: plistlib.PlistFormat) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(plistlib.dumps(doc, fmt=fmt))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "Managed Preferences"


def source(root: Path) -> MacManagedSource:
    return MacManagedSource(root=root, user="alice")


def test_default_paths() -> None:
    src = MacManagedSource(user="bob")
    assert src.files() == [
        MANAGED_PREFERENCES / f"{DOMAIN}.plist",
        MANAGED_PREFERENCES / "bob" / f"{DOMAIN}.plist",
    ]
    assert str(MANAGED_PREFERENCES) == "/Library/Managed Preferences"


@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
def test_reads_xml_and_binary_plists(root: Path, fmt: plistlib.PlistFormat) -> None:
    path = write_plist(
        root / f"{DOMAIN}.plist",
        {
            "controller_url": "https://ctl.example.com",
            "always_on": True,
            "proxy_port": 9443,
            "posture_required_processes": ["falcond", "osqueryd"],
            "PayloadUUID": "ignored-bookkeeping",
        },
        fmt,
    )
    s = settings.load(managed_sources=[source(root)])
    assert s.problems == ()
    assert s.controller_url == "https://ctl.example.com"
    assert s.always_on is True
    assert s.proxy_port == 9443
    assert s.posture_required_processes == ("falcond", "osqueryd")
    assert s.locked("always_on")
    assert s.origin("proxy_port") == str(path)


def test_user_level_plist_overrides_device_level(root: Path) -> None:
    write_plist(
        root / f"{DOMAIN}.plist", {"proxy_port": 9001, "log_level": "error"}, plistlib.FMT_BINARY
    )
    user = write_plist(root / "alice" / f"{DOMAIN}.plist", {"proxy_port": 9002}, plistlib.FMT_XML)
    s = settings.load(managed_sources=[source(root)])
    assert (s.proxy_port, s.origin("proxy_port")) == (9002, str(user))
    assert s.log_level == "error"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (datetime.datetime(2026, 1, 1), "got datetime"),
        (b"\x00", "got binary data"),
        (9080.5, "got number 9080.5"),
        ({"nested": 1}, "got object"),
        (True, "got boolean"),
    ],
)
def test_wrong_plist_types_are_reported(root: Path, value: object, fragment: str) -> None:
    path = write_plist(
        root / f"{DOMAIN}.plist", {"proxy_port": value, "always_on": True}, plistlib.FMT_BINARY
    )
    s = settings.load(managed_sources=[source(root)])
    assert s.always_on is False  # the whole payload is rejected
    assert s.source("proxy_port") == "default"
    assert len(s.problems) == 1
    assert s.problems[0].startswith(f"{path}: proxy_port: expected a whole number")
    assert fragment in s.problems[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not a plist at all", "not a valid property list"),
        (plistlib.dumps(["a", "list"]), "expected a dictionary of settings, got list"),
        (b"bplist00\x00\x01garbage", "not a valid property list"),
    ],
)
def test_malformed_plists(root: Path, content: bytes, fragment: str) -> None:
    path = root / f"{DOMAIN}.plist"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    s = settings.load(managed_sources=[source(root)])
    assert len(s.problems) == 1
    assert s.problems[0].startswith(str(path))
    assert fragment in s.problems[0]


def test_fingerprint(root: Path) -> None:
    src = source(root)
    empty = src.fingerprint()
    write_plist(root / f"{DOMAIN}.plist", {"proxy_port": 9001}, plistlib.FMT_XML)
    assert src.fingerprint() != empty
