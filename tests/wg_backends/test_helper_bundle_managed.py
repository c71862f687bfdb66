"""The helper reads ``policy_trust_anchors`` from the managed settings itself, with its strict
reader: a bad anchor rejects the whole file (the other keys of it too), and a file that does
not speak for the organisation does not count."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.wg_backends.bundlekit import raw_key
from wg_backends.helper import managed

pytestmark = [pytest.mark.unit, pytest.mark.broken_mdm]

A1 = raw_key(Ed25519PrivateKey.generate())
A2 = raw_key(Ed25519PrivateKey.generate())


def _write(path: Path, doc: object, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    os.chmod(path, mode)


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("managed files must be root-owned: needs root")
    d = tmp_path / "managed"
    d.mkdir(mode=0o755)
    return d


def test_no_anchors_by_default(mdir: Path) -> None:
    assert managed.read(mdir).policy_trust_anchors == ()
    _write(mdir / "managed.json", {"always_on": True})
    assert managed.read(mdir).policy_trust_anchors == ()


def test_anchors_are_read(mdir: Path) -> None:
    _write(mdir / "managed.json", {"policy_trust_anchors": [A1, A2], "always_on": True})
    got = managed.read(mdir)
    assert got.policy_trust_anchors == (A1, A2)
    assert got.always_on is True


def test_a_drop_in_replaces_the_list(mdir: Path) -> None:
    _write(mdir / "managed.json", {"policy_trust_anchors": [A1]})
    _write(mdir / "managed.d" / "50-rotate.json", {"policy_trust_anchors": [A2]})
    assert managed.read(mdir).policy_trust_anchors == (A2,)


@pytest.mark.parametrize(
    "value",
    [
        A1,  # not a list
        [A1, "not-a-key"],
        [A1, A1 + "="],
        [A1[:-1]],
        [A1, 7],
        [A1, A1],
        [raw_key(Ed25519PrivateKey.generate()) for _ in range(17)],
        None,
    ],
)
def test_a_bad_anchor_rejects_the_whole_file(mdir: Path, value: object) -> None:
    _write(mdir / "managed.json", {"policy_trust_anchors": value, "always_on": True})
    got = managed.read(mdir)
    assert got.policy_trust_anchors == ()
    assert got.always_on is False  # the whole file, not key by key


def test_a_bad_drop_in_leaves_the_base_file_in_force(mdir: Path) -> None:
    _write(mdir / "managed.json", {"policy_trust_anchors": [A1]})
    _write(mdir / "managed.d" / "90-bad.json", {"policy_trust_anchors": ["x"]})
    assert managed.read(mdir).policy_trust_anchors == (A1,)


def test_a_duplicate_key_rejects_the_file(mdir: Path) -> None:
    text = f'{{"policy_trust_anchors": ["{A1}"], "policy_trust_anchors": []}}'
    _write(mdir / "managed.json", text)
    assert managed.read(mdir).policy_trust_anchors == ()


def test_a_file_others_can_write_does_not_count(mdir: Path) -> None:
    _write(mdir / "managed.json", {"policy_trust_anchors": [A1]}, mode=0o666)
    assert managed.read(mdir).policy_trust_anchors == ()


def test_a_file_owned_by_a_user_does_not_count(mdir: Path) -> None:
    _write(mdir / "managed.json", {"policy_trust_anchors": [A1]})
    os.chown(mdir / "managed.json", 1000, 1000)
    assert managed.read(mdir).policy_trust_anchors == ()


# ---- Windows: the policy registry key ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, ()),
        ([A1, A2], (A1, A2)),
        ([A1, "bad"], ()),  # one bad anchor: the value is ignored whole (logged)
        ("<registry type 1>", ()),  # REG_SZ instead of REG_MULTI_SZ
        ([A1, A1], ()),
    ],
)
def test_registry_anchors(value: object, want: tuple[str, ...]) -> None:
    asked: list[tuple[str, str]] = []

    def query(key: str, name: str) -> object:
        asked.append((key, name))
        return value

    assert managed.read_anchors_registry(query) == want
    assert asked == [(r"SOFTWARE\Policies\Rustronaut\Client", "policy_trust_anchors")]


def test_registry_unreadable_counts_as_absent() -> None:
    def query(key: str, name: str) -> object:
        raise PermissionError("denied")

    assert managed.read_anchors_registry(query) == ()


def test_windows_reads_anchors_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(managed.sys, "platform", "win32")
    got = managed.read(registry=lambda: True, registry_anchors=lambda: (A1,))
    assert got.always_on is True
    assert got.policy_trust_anchors == (A1,)
