"""Windows policy registry key, through an injected accessor holding registry-shaped data."""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Mapping

import pytest

from core import settings
from core.settings.managed.windows import (
    POLICY_KEY,
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_QWORD,
    REG_SZ,
    WindowsManagedSource,
    WinregAccessor,
)

pytestmark = pytest.mark.unit

PIN = base64.b64encode(hashlib.sha256(b"spki").digest()).decode()
ORIGIN = r"HKLM\SOFTWARE\Policies\Rustronaut\Client"


class FakeRegistry:
    """Holds HKLM keys as winreg would return them: name -> (data, REG_* type)."""

    def __init__(self, keys: Mapping[str, Mapping[str, tuple[object, int]]]) -> None:
        self.keys = {k: dict(v) for k, v in keys.items()}
        self.reads: list[str] = []
        self.error: OSError | None = None

    def read_values(self, key_path: str) -> Mapping[str, tuple[object, int]] | None:
        self.reads.append(key_path)
        if self.error is not None:
            raise self.error
        return self.keys.get(key_path)


def load(values: Mapping[str, tuple[object, int]]) -> settings.EffectiveSettings:
    registry = FakeRegistry({POLICY_KEY: values})
    return settings.load(managed_sources=[WindowsManagedSource(registry)])


def test_reads_every_registry_type_into_the_model() -> None:
    s = load(
        {
            "controller_url": ("https://ctl.example.com", REG_SZ),
            "always_on": (1, REG_DWORD),
            "auto_connect": (0, REG_DWORD),
            "proxy_port": (9443, REG_DWORD),
            "posture_interval_minutes": (30, REG_QWORD),
            "preferred_backend": ("wireguard-windows", REG_SZ),
            "tls_pin_sha256": ([PIN, ""], REG_MULTI_SZ),  # trailing terminator as winreg gives
            "organization_name": ("ACME", REG_EXPAND_SZ),
            "": ("default value of the key", REG_SZ),
        }
    )
    assert s.problems == ()
    assert s.controller_url == "https://ctl.example.com"
    assert s.always_on is True
    assert s.auto_connect is False
    assert s.proxy_port == 9443
    assert s.posture_interval_minutes == 30
    assert s.preferred_backend == "wireguard-windows"
    assert s.tls_pin_sha256 == (PIN,)
    assert s.organization_name == "ACME"
    for key in ("controller_url", "always_on", "proxy_port", "tls_pin_sha256"):
        assert s.locked(key)
        assert s.origin(key) == ORIGIN


def test_value_names_are_case_insensitive() -> None:
    s = load({"Proxy_Port": (9555, REG_DWORD), "ALWAYS_ON": (1, REG_DWORD)})
    assert (s.proxy_port, s.always_on) == (9555, True)
    assert s.problems == ()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("proxy_port", ("9080", REG_SZ), 'got string "9080" (registry type REG_SZ)'),
        ("proxy_port", (80, REG_DWORD), "from 1024 to 65535, got number 80"),
        ("always_on", (2, REG_DWORD), "true or false, got number 2 (registry type REG_DWORD)"),
        ("always_on", ("1", REG_SZ), "true or false"),
        ("controller_url", (5, REG_DWORD), "https:// URL"),
        ("tls_pin_sha256", (PIN, REG_SZ), "list of strings"),
        ("preferred_backend", ("tunnel", REG_SZ), "one of auto"),
        ("proxy_port", (b"\x00\x01", REG_BINARY), "unsupported REG_BINARY"),
        ("bogus", (1, REG_DWORD), "unknown setting 'bogus'"),
    ],
)
def test_wrong_registry_values_are_reported_and_reject_the_key(
    name: str, value: tuple[object, int], fragment: str
) -> None:
    s = load({name: value, "log_level": ("debug", REG_SZ)})
    assert s.log_level == "info"  # the valid value is rejected with the rest
    assert len(s.problems) == 1
    assert s.problems[0].startswith(ORIGIN)
    assert fragment in s.problems[0]
    if name in settings.SPECS:
        assert s.source(name) == "default"


def test_absent_key_and_unreadable_key() -> None:
    registry = FakeRegistry({})
    source = WindowsManagedSource(registry)
    assert settings.load(managed_sources=[source]).problems == ()
    assert registry.reads == [POLICY_KEY]
    registry.error = PermissionError(5, "Access is denied")
    s = settings.load(managed_sources=[source])
    assert s.problems == (f"{ORIGIN}: cannot read: Access is denied",)


def test_fingerprint_changes_with_values() -> None:
    registry = FakeRegistry({POLICY_KEY: {"proxy_port": (9080, REG_DWORD)}})
    source = WindowsManagedSource(registry)
    before = source.fingerprint()
    assert source.fingerprint() == before
    registry.keys[POLICY_KEY]["proxy_port"] = (9081, REG_DWORD)
    assert source.fingerprint() != before


@pytest.mark.skipif(sys.platform == "win32", reason="checks behaviour where winreg is absent")
def test_real_accessor_without_winreg_becomes_a_problem_not_a_crash() -> None:
    s = settings.load(managed_sources=[WindowsManagedSource(WinregAccessor())])
    assert len(s.problems) == 1
    assert "cannot read managed settings" in s.problems[0]
