"""``rustronaut policy show|explain`` on a real cached bundle."""

from __future__ import annotations

import json
import time
from pathlib import Path

import msgspec
import pytest

from core.cli.main import main
from core.policy.store import PolicyStore
from core.wire.policy import AppMatch, Resource
from tests.core.policy.helpers import DEVICE, KEYS, bundle, fact, rule, token

pytestmark = pytest.mark.unit


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    now = int(time.time())
    b = bundle(
        rule("git-eng", priority=1, conditions=fact("posture.disk.encrypted", "eq", True)),
        rule("no-curl", "deny", priority=5, apps=(AppMatch(name="curl"),)),
        rule("db", resources=("db",), description="database for everyone"),
        version=12,
        issued_at=now - 60,
        expires_at=now + 7200,
    )
    store = PolicyStore(device_id=DEVICE, keys=KEYS, cache_path=tmp_path / "policy.json")
    store.update(token(b))
    return tmp_path / "policy.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stdout; an ``explain`` without ``--facts`` assumes no posture, so the
    answer does not depend on this machine (the live default: test_policy_explain_live)."""
    args = list(argv)
    if args[:2] == ["policy", "explain"] and "--facts" not in args:
        args += ["--facts", "none"]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_show_lists_version_resources_rules(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "policy", "show", "--cache", str(cache))
    assert code == 0
    assert "Policy version 12 for device dev-1" in out
    assert "(in 1h 59m)" in out or "(in 2h 0m)" in out
    assert "git.corp.example, *.git.corp.example" in out
    assert "10.20.0.0/16" in out
    lines = [ln for ln in out.splitlines() if "->" in ln]
    assert [ln.split()[2] for ln in lines] == ["no-curl", "git-eng", "db"]  # decision order
    assert "if posture.disk.encrypted eq true" in lines[1]


def test_show_json(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "show", "--json", "--cache", str(cache))
    data = json.loads(out)
    assert code == 0
    assert data["version"] == 12
    assert data["expired"] is False
    assert [r["id"] for r in data["rules"]] == ["git-eng", "no-curl", "db"]


def test_explain_allow_and_deny(
    cache: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run(
        capsys,
        "policy",
        "explain",
        "--app",
        "/usr/bin/psql",
        "--to",
        "10.20.1.2:5432",
        "--cache",
        str(cache),
    )
    assert code == 0
    assert "Decision:   ALLOW" in out
    assert "Rule:       db" in out
    code, out = run(
        capsys,
        "policy",
        "explain",
        "--app",
        "/usr/bin/git",
        "--to",
        "GIT.corp.example.:22",
        "--cache",
        str(cache),
    )
    assert code == 1
    assert "Decision:   DENY" in out
    assert "posture.disk.encrypted must be true (currently unknown)" in out
    assert "fix: Turn on full-disk encryption" in out
    code, out = run(
        capsys,
        "policy",
        "explain",
        "--app",
        "/usr/bin/git",
        "--to",
        "git.corp.example:22",
        "--fact",
        "posture.disk.encrypted=true",
        "--json",
        "--cache",
        str(cache),
    )
    data = json.loads(out)
    assert code == 0
    assert data["allowed"] is True
    assert data["rule_id"] == "git-eng"
    assert data["confidence"] == 1.0


def test_explain_app_specific_deny(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        "policy",
        "explain",
        "--app",
        "/usr/bin/curl",
        "--to",
        "git.corp.example:443",
        "--fact",
        "posture.disk.encrypted=true",
        "--json",
        "--cache",
        str(cache),
    )
    assert code == 1
    assert json.loads(out)["rule_id"] == "no-curl"


@pytest.mark.parametrize("target", ["nohost", "host:99999", "[::1:22", "host:http"])
def test_explain_bad_target(cache: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, out = run(
        capsys, "policy", "explain", "--app", "/bin/x", "--to", target, "--cache", str(cache)
    )
    assert code == 2
    assert out.startswith("rustronaut policy: error:")


def test_missing_or_tampered_cache(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "policy", "show", "--cache", str(tmp_path / "none.json"))
    assert code == 3
    assert "no cached policy" in out
    doc = msgspec.json.decode(cache.read_bytes())
    head, _, sig = doc["token"].split(".")
    evil = token(
        bundle(rule("all", resources=("*",)), resources=(Resource(id="x", name="x", hosts=("*",)),))
    )
    doc["token"] = f"{head}.{evil.split('.')[1]}.{sig}"
    cache.write_bytes(msgspec.json.encode(doc))
    code, out = run(
        capsys, "policy", "explain", "--app", "/bin/x", "--to", "a:1", "--cache", str(cache)
    )
    assert code == 3
    assert "not valid" in out


def test_default_cache_path_follows_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    code, out = run(capsys, "policy", "show")
    assert code == 3
    assert str(tmp_path / "xdg" / "rustronaut" / "policy-bundle.json") in out
