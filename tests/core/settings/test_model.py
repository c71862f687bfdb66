"""The settings model: every key declared once, validated strictly, parsed from text."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import pytest

from core.settings import SPECS, Kind, Settings, SettingValueError

pytestmark = pytest.mark.unit

PIN = base64.b64encode(hashlib.sha256(b"spki").digest()).decode()

EXPECTED_KEYS = {
    "controller_url": (Kind.STR, ""),
    "oidc_issuer": (Kind.STR, ""),
    "oidc_client_id": (Kind.STR, "rustronaut-desktop"),
    "end_provider_session": (Kind.BOOL, True),
    "auto_connect": (Kind.BOOL, True),
    "always_on": (Kind.BOOL, False),
    "allow_break_glass": (Kind.BOOL, True),
    "preferred_backend": (Kind.ENUM, "auto"),
    "proxy_port": (Kind.INT, 9080),
    "transparent": (Kind.BOOL, True),
    "transparent_port": (Kind.INT, 9082),
    "tls_pin_sha256": (Kind.STR_LIST, ()),
    "policy_trust_anchors": (Kind.STR_LIST, ()),
    "auto_update": (Kind.BOOL, True),
    "update_url": (Kind.STR, ""),
    "update_keys": (Kind.STR_LIST, ()),
    "update_pin_version": (Kind.STR, ""),
    "log_level": (Kind.ENUM, "info"),
    "support_url": (Kind.STR, ""),
    "organization_name": (Kind.STR, ""),
    "telemetry_level": (Kind.ENUM, "counts"),
    "telemetry_hash_app": (Kind.BOOL, True),
    "posture_interval_minutes": (Kind.INT, 15),
    "posture_watch_seconds": (Kind.INT, 5),
    "posture_required_processes": (Kind.STR_LIST, ()),
    "posture_required_files": (Kind.STR_LIST, ()),
    "autostart": (Kind.BOOL, True),
    "notifications": (Kind.BOOL, True),
}


def test_specs_match_the_agreed_keys_types_and_defaults() -> None:
    assert {k: (s.kind, s.default) for k, s in SPECS.items()} == EXPECTED_KEYS
    assert list(SPECS) == [f.name for f in dataclasses.fields(Settings)]


@pytest.mark.parametrize("key", list(SPECS))
def test_every_key_is_described_and_its_default_is_valid(key: str) -> None:
    spec = SPECS[key]
    assert len(spec.description) > 20
    assert spec.title
    assert spec.validate(spec.to_json(spec.default)) == spec.default
    if spec.example is not None:
        assert spec.validate(spec.example) == spec.example


def test_choices_and_ranges() -> None:
    assert SPECS["preferred_backend"].choices == (
        "auto",
        "wg-quick",
        "networkmanager",
        "wireguard-windows",
    )
    assert SPECS["log_level"].choices == ("debug", "info", "warning", "error")
    assert (SPECS["proxy_port"].minimum, SPECS["proxy_port"].maximum) == (1024, 65535)
    assert (
        SPECS["posture_interval_minutes"].minimum,
        SPECS["posture_interval_minutes"].maximum,
    ) == (
        1,
        1440,
    )
    assert (SPECS["posture_watch_seconds"].minimum, SPECS["posture_watch_seconds"].maximum) == (
        1,
        300,
    )


def test_settings_is_frozen() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.proxy_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("proxy_port", 1024, 1024),
        ("proxy_port", 65535, 65535),
        ("auto_connect", False, False),
        ("preferred_backend", "networkmanager", "networkmanager"),
        ("controller_url", "https://ctl.example.com:8443/api", "https://ctl.example.com:8443/api"),
        ("controller_url", "http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("controller_url", "http://[::1]:8000/", "http://[::1]:8000/"),
        ("controller_url", "http://localhost:8000", "http://localhost:8000"),
        ("controller_url", "", ""),
        ("oidc_issuer", "http://issuer.example.com/realm", "http://issuer.example.com/realm"),
        ("tls_pin_sha256", [PIN, PIN], (PIN, PIN)),
        ("tls_pin_sha256", [], ()),
        ("posture_required_files", ("/etc/agent.conf",), ("/etc/agent.conf",)),
    ],
)
def test_valid_values(key: str, value: object, expected: object) -> None:
    assert SPECS[key].validate(value) == expected


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("proxy_port", 80, "from 1024 to 65535"),
        ("proxy_port", 70000, "from 1024 to 65535"),
        ("proxy_port", "9080", "got string"),
        ("proxy_port", True, "got boolean"),
        ("proxy_port", 9080.0, "got number"),
        ("auto_connect", 1, "true or false"),
        ("auto_connect", "true", "true or false"),
        ("preferred_backend", "wg", "one of auto, wg-quick"),
        ("log_level", "INFO", "one of debug"),
        ("controller_url", "http://ctl.example.com", "only for loopback"),
        ("controller_url", "ftp://ctl.example.com", "https://"),
        ("controller_url", "https://user:pw@ctl.example.com", "credentials"),
        ("controller_url", "ctl.example.com", "https://"),
        ("controller_url", "https://ctl.example.com:99999", "invalid port"),
        ("oidc_issuer", "not a url", "http(s)"),
        ("tls_pin_sha256", ["abc"], "not valid base64"),
        ("tls_pin_sha256", [base64.b64encode(b"x" * 20).decode()], "20 bytes"),
        ("tls_pin_sha256", [PIN, 5], "list of strings"),
        ("tls_pin_sha256", PIN, "list of strings"),
        ("posture_required_processes", [""], "list of strings"),
        ("tls_pin_sha256", [PIN, 5], "got number 5 (item 2)"),
        ("tls_pin_sha256", [PIN, "abc"], "(item 2: not valid base64)"),
        ("posture_required_files", ["/a", ""], "(item 2 is empty)"),
        ("posture_required_files", ["/a"] * 65, "(more than 64 items)"),
        ("organization_name", "x" * 5000, "(longer than 2048 characters)"),
        ("organization_name", "a\x00b", "(contains a NUL character)"),
        ("organization_name", None, "got null"),
    ],
)
def test_invalid_values_name_key_and_expectation(key: str, value: object, fragment: str) -> None:
    with pytest.raises(SettingValueError) as info:
        SPECS[key].validate(value)
    assert str(info.value).startswith(f"{key}: expected ")
    assert fragment in str(info.value)
    assert info.value.key == key


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("auto_connect", "yes", True),
        ("auto_connect", "OFF", False),
        ("auto_connect", "0", False),
        ("proxy_port", " 9090 ", 9090),
        ("tls_pin_sha256", f"{PIN}, {PIN}", (PIN, PIN)),
        ("tls_pin_sha256", f'["{PIN}"]', (PIN,)),
        ("tls_pin_sha256", "", ()),
        ("log_level", "debug", "debug"),
        ("organization_name", " ACME ", " ACME "),
    ],
)
def test_parse_text(key: str, text: str, expected: object) -> None:
    assert SPECS[key].parse_text(text) == expected


@pytest.mark.parametrize(
    ("key", "text"),
    [("auto_connect", "maybe"), ("proxy_port", "nine"), ("tls_pin_sha256", "[oops")],
)
def test_parse_text_rejects(key: str, text: str) -> None:
    with pytest.raises(SettingValueError):
        SPECS[key].parse_text(text)
