"""The signed update manifest, sans I/O: every tamper case refused with its code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.core.update.kit import KEYS, NOW, OTHER_KEY, PAYLOAD, anchor, payload, sha, token
from wg_backends.signed.jws import b64url
from wg_backends.signed.update_manifest import (
    UpdateRefused,
    check_version,
    install_argv,
    parse_version,
    platform_key,
    verify_manifest,
)


def _verify(tok: str, keys: tuple[str, ...] = KEYS, platform: str = "windows-x86_64") -> Any:
    return verify_manifest(tok, keys, now=NOW, platform=platform)


def _flip_payload_byte(tok: str) -> str:
    head, body, sig = tok.split(".")
    raw = bytearray(json.dumps(payload()).encode())
    raw[raw.index(b"0.2.0")] = ord("9")  # "9.2.0": one byte of the signed payload
    assert b64url(bytes(raw)) != body
    return f"{head}.{b64url(bytes(raw))}.{sig}"


def _alg_none(tok: str) -> str:
    _, body, _ = tok.split(".")
    return f"{b64url(json.dumps({'alg': 'none', 'typ': 'rustronaut-update+jws'}).encode())}.{body}."


def test_a_genuine_manifest_verifies_and_names_this_platforms_file() -> None:
    verified = _verify(token(payload()))
    assert verified.version == "0.2.0"
    assert verified.file.size == len(PAYLOAD)
    assert verified.file.sha256 == sha(PAYLOAD)
    assert verified.platform == "windows-x86_64"


_MAC = payload()["files"]["macos-universal"]

TAMPERED = {
    "payload byte": lambda: _flip_payload_byte(token(payload())),
    "wrong key": lambda: token(payload(), OTHER_KEY),
    "stripped signature": lambda: token(payload()).rsplit(".", 1)[0] + ".",
    "no signature part": lambda: token(payload()).rsplit(".", 1)[0],
    "alg none": lambda: _alg_none(token(payload())),
    "a policy bundle's type": lambda: token(payload(), typ="rustronaut-policy+jws"),
    "empty": lambda: "",
}


@pytest.mark.parametrize("case", TAMPERED)
def test_every_tampered_manifest_is_refused_as_a_signature_failure(case: str) -> None:
    with pytest.raises(UpdateRefused) as err:
        _verify(TAMPERED[case]())
    assert err.value.code == "update_signature"


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        (payload(expires_at=NOW), "update_stale"),  # expired exactly now
        (payload(issued_at=NOW - 30 * 86400, expires_at=NOW - 1), "update_stale"),
        (payload(issued_at=NOW + 3600), "update_stale"),  # issued in the future
        (payload(issued_at=NOW - 10, expires_at=NOW + 100 * 86400), "update_stale"),
        (
            payload(files={"macos-universal": payload()["files"]["macos-universal"]}),
            "update_platform",
        ),
        (payload(version="0.2"), "update_malformed"),
        (payload(version="0.2.0-rc1"), "update_malformed"),
        (payload(extra=True), "update_malformed"),
        (payload(v=2), "update_malformed"),
    ],
)
def test_stale_malformed_and_wrong_platform_manifests_are_refused(
    doc: dict[str, Any], code: str
) -> None:
    with pytest.raises(UpdateRefused) as err:
        _verify(token(doc))
    assert err.value.code == code


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "http://updates.example.com/x"),  # plain http off loopback
        ("url", "https://user:pw@updates.example.com/x"),
        ("url", "file:///etc/shadow"),
        ("sha256", sha(PAYLOAD).upper()),
        ("sha256", "z" * 64),
        ("size", 0),
        ("size", 2 * 1024**3),  # over MAX_DOWNLOAD
    ],
)
def test_a_bad_file_entry_is_refused(field: str, value: Any) -> None:
    doc = payload()
    doc["files"]["windows-x86_64"][field] = value
    with pytest.raises(UpdateRefused) as err:
        _verify(token(doc))
    assert err.value.code == "update_malformed"


def test_no_pinned_key_means_updates_are_off() -> None:
    with pytest.raises(UpdateRefused) as err:
        _verify(token(payload()), keys=())
    assert err.value.code == "update_disabled"


def test_any_of_several_pinned_keys_may_sign() -> None:
    assert _verify(token(payload(), OTHER_KEY), keys=(*KEYS, anchor(OTHER_KEY))).version == "0.2.0"


@pytest.mark.parametrize(
    ("version", "installed", "floor", "pin", "code"),
    [
        ("0.2.0", "0.1.0", None, None, None),
        ("0.2.0", "0.1.0", "0.2.0", None, None),
        ("0.1.9", "0.2.0", None, None, "update_rollback"),  # older than installed
        ("0.2.0", "0.1.0", "0.3.0", None, "update_rollback"),  # older than seen
        ("0.10.0", "0.9.0", None, None, None),  # numeric, not text, order
        ("0.2.0", "0.2.0", None, None, "update_current"),
        ("0.3.0", "0.1.0", None, "0.2.0", "update_pinned"),
        ("0.2.0", "0.1.0", None, "0.2.0", None),
        ("0.1.0", "0.2.0", None, "0.1.0", "update_rollback"),  # a pin never downgrades
    ],
)
def test_version_rules(
    version: str, installed: str, floor: str | None, pin: str | None, code: str | None
) -> None:
    if code is None:
        check_version(version, installed=installed, floor=floor, pin=pin)
        return
    with pytest.raises(UpdateRefused) as err:
        check_version(version, installed=installed, floor=floor, pin=pin)
    assert err.value.code == code


@pytest.mark.parametrize("text", ["1.2", "1.02.0", "1.2.3.4", "v1.2.3", "1.2.3-rc1", " 1.2.3", ""])
def test_versions_are_strict(text: str) -> None:
    with pytest.raises(ValueError):
        parse_version(text)


def test_install_commands_are_exact_and_linux_is_refused() -> None:
    assert install_argv("windows-x86_64", r"C:\P\u.exe") == (r"C:\P\u.exe", "/S")
    assert install_argv("macos-universal", "/var/u.pkg") == (
        "/usr/sbin/installer", "-pkg", "/var/u.pkg", "-target", "/",
    )  # fmt: skip
    with pytest.raises(UpdateRefused) as err:
        install_argv("linux-x86_64", "/tmp/u.deb")
    assert err.value.code == "update_platform"


@pytest.mark.parametrize(
    ("sys_platform", "machine", "key"),
    [
        ("win32", "AMD64", "windows-x86_64"),
        ("win32", "ARM64", "windows-arm64"),
        ("darwin", "arm64", "macos-universal"),
        ("darwin", "x86_64", "macos-universal"),
        ("linux", "aarch64", "linux-arm64"),
    ],
)
def test_platform_keys(sys_platform: str, machine: str, key: str) -> None:
    assert platform_key(sys_platform, machine) == key
