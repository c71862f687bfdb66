"""``rustronaut policy explain`` decides with the posture the proxy decides with: the
running Rustronaut's (local API), else this device's collected now; ``--facts`` and
``--fact`` override it, and a fact name or value the engine cannot use is refused with
exit code 2 (issue 18: it said DENY for what the proxy allowed, and took any name)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from core.cli.commands import policy as policy_cmd
from core.cli.commands.policy import FactError, check_fact, facts_from_items, parse_fact
from core.cli.main import main
from core.engine.state import PostureItem
from core.policy.store import PolicyStore
from core.wire.posture import Fact
from tests.core.engine.localapi.rig import engine, serve
from tests.core.policy.helpers import DEVICE, KEYS, bundle, fact, rule, token
from tests.fakes.cli import isolated_env, run_cli

pytestmark = pytest.mark.unit

GIT = ("--app", "/usr/bin/git", "--to", "git.corp.example:22")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cached policy: git needs an encrypted disk; the database needs the firewall on."""
    now = int(time.time())
    b = bundle(
        rule("git-enc", conditions=fact("posture.disk.encrypted", "eq", True)),
        rule(
            "db-fw",
            resources=("db",),
            conditions=fact("posture.firewall.enabled", "eq", True),
        ),
        issued_at=now - 60,
        expires_at=now + 7200,
    )
    PolicyStore(device_id=DEVICE, keys=KEYS, cache_path=tmp_path / "policy.json").update(token(b))
    return tmp_path / "policy.json"


class Device:
    """The seams of the live posture: the running engine's and a collection now."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.engine: tuple[tuple[PostureItem, ...], int] | None = None
        self.collected: dict[str, Fact] = {}
        self.collections = 0

        async def engine_posture() -> tuple[tuple[PostureItem, ...], int] | None:
            return self.engine

        async def collect_now() -> Mapping[str, Fact]:
            self.collections += 1
            return self.collected

        monkeypatch.setattr(policy_cmd, "_engine_posture", engine_posture)
        monkeypatch.setattr(policy_cmd, "_collect_now", collect_now)


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Device:
    return Device(monkeypatch)


def explain(capsys: pytest.CaptureFixture[str], cache: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["policy", "explain", *GIT, "--cache", str(cache), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def item(name: str, value: str, status: str) -> PostureItem:
    return PostureItem(name=name, label=name, value=value, status=status)


# -- live by default ----------------------------------------------------------------------


def test_the_running_engine_s_posture_is_used_by_default(
    device: Device, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device.engine = ((item("disk.encrypted", "yes", "pass"),), 0)
    code, out, _ = explain(capsys, cache)
    assert code == 0
    assert "Decision:   ALLOW" in out
    assert "Facts:      the running Rustronaut's posture (1 fact known)" in out
    assert device.collections == 0  # nothing collected: the engine's posture is the truth


def test_without_a_running_engine_the_posture_is_collected_now(
    device: Device, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device.collected = {"disk.encrypted": Fact.of("disk.encrypted", True, time.time())}
    code, out, _ = explain(capsys, cache)
    assert code == 0
    assert "Decision:   ALLOW" in out
    assert "this device's posture, collected now" in out
    assert "Rustronaut is not running" in out
    assert device.collections == 1


def test_an_engine_without_posture_yet_falls_back_to_a_collection(
    device: Device, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device.engine = ((), 0)
    device.collected = {"disk.encrypted": Fact.of("disk.encrypted", False, time.time())}
    code, out, _ = explain(capsys, cache)
    assert code == 1
    assert "Decision:   DENY" in out
    assert "Rustronaut has no posture yet" in out


def test_the_engine_s_risk_score_is_the_one_decided_with(
    device: Device, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    b = bundle(rule("git-lowrisk", max_risk=50), issued_at=now - 60, expires_at=now + 7200)
    path = tmp_path / "risk.json"
    PolicyStore(device_id=DEVICE, keys=KEYS, cache_path=path).update(token(b))
    device.engine = ((item("firewall.enabled", "yes", "pass"),), 80)
    code, out, _ = explain(capsys, path, "--json")
    data = json.loads(out)
    assert code == 1
    assert data["risk"] == 80
    assert data["facts"]["source"] == "engine"


# -- overrides ----------------------------------------------------------------------------


def test_a_fact_given_overrides_the_live_one(
    device: Device, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device.engine = ((item("disk.encrypted", "no", "fail"),), 0)
    code, out, _ = explain(capsys, cache)
    assert code == 1
    code, out, _ = explain(capsys, cache, "--fact", "posture.disk.encrypted=true")
    assert code == 0
    assert (
        "Facts:      the running Rustronaut's posture (1 fact known); "
        "assumed with --fact: posture.disk.encrypted"
    ) in out


def test_facts_none_assumes_no_posture_and_collects_nothing(
    device: Device, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device.engine = ((item("disk.encrypted", "yes", "pass"),), 0)
    code, out, _ = explain(capsys, cache, "--facts", "none")
    assert code == 1
    assert "Facts:      none (--facts none)" in out
    assert device.collections == 0


def test_facts_from_a_file(
    device: Device, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "facts.json"
    path.write_text('{"posture.disk.encrypted": true, "firewall.enabled": false}')
    code, out, _ = explain(capsys, cache, "--facts", str(path), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["facts"]["source"] == "file"
    assert data["facts"]["values"] == {
        "posture.disk.encrypted": True,
        "posture.firewall.enabled": False,
    }
    assert device.collections == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"posture.disk.encrpyted": true}', "Did you mean 'posture.disk.encrypted'"),
        ('{"posture.disk.encrypted": "yes"}', "takes true or false"),
    ],
)
def test_a_bad_facts_file_is_refused(
    device: Device,
    cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    words: str,
) -> None:
    path = tmp_path / "facts.json"
    path.write_text(content)
    code, out, err = explain(capsys, cache, "--facts", str(path))
    assert code == 2
    assert out == ""
    assert words in err
    assert "facts.json" in err


def test_a_missing_facts_file_is_refused_in_words(
    device: Device, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = explain(capsys, cache, "--facts", str(tmp_path / "nope.json"))
    assert code == 2
    assert "cannot read" in err
    assert "No such file or directory" in err


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "words"),
    [
        ("posture.disk.encrpyted=true", "Did you mean 'posture.disk.encrypted'"),
        ("posture.nonsense=1", "'posture.nonsense' is not a posture fact"),
        ("posture.os.name=linux", "is not JSON"),
        ("posture.disk.encrypted=ture", "is not JSON"),
        ("posture.disk.encrypted=1", "takes true or false"),
        ("posture.screen_lock.timeout_s=true", "takes a whole number"),
        ("posture.os.name=12", "takes a string in double quotes"),
        ('posture.av.products=["a", 1]', "takes a list of strings"),
        ('user.groups=["Finance"]', "cannot be assumed"),
        ("risk=0", "cannot be assumed"),
        ("disk.encrypted", "takes NAME=VALUE"),
    ],
)
def test_unknown_names_and_bad_values_are_refused_with_exit_2(
    device: Device, cache: Path, capsys: pytest.CaptureFixture[str], arg: str, words: str
) -> None:
    code, out, err = explain(capsys, cache, "--fact", arg)
    assert code == 2
    assert out == ""
    assert err.startswith("rustronaut policy: error:")
    assert words in err
    assert device.collections == 0  # refused before any posture was collected


def test_the_refusal_of_a_bare_word_shows_how_to_write_it() -> None:
    with pytest.raises(FactError) as exc:
        parse_fact("posture.os.name=linux")
    assert "--fact 'posture.os.name=\"linux\"'" in str(exc.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("posture.disk.encrypted", True, ("posture.disk.encrypted", True)),
        ("disk.encrypted", False, ("posture.disk.encrypted", False)),
        ("posture.screen_lock.timeout_s", 300, ("posture.screen_lock.timeout_s", 300)),
        ("posture.av.products", ["clamd"], ("posture.av.products", ["clamd"])),
        ("posture.process.clamd.running", True, ("posture.process.clamd.running", True)),
        ("posture.file./etc/x.present", True, ("posture.file./etc/x.present", True)),
    ],
)
def test_posture_facts_are_accepted(name: str, value: object, expected: object) -> None:
    assert check_fact(name, value) == expected


# -- the engine's items read back -----------------------------------------------------------


def test_the_engine_s_items_become_typed_policy_facts() -> None:
    items = (
        item("disk.encrypted", "no", "fail"),
        item("firewall.enabled", "True", "pass"),
        item("screen_lock.enabled", "on", "pass"),  # a window's word: its status decides
        item("screen_lock.timeout_s", "300", "pass"),
        item("av.products", "clamd, falcon", "pass"),
        item("os.name", "linux", "pass"),
        item("device.serial", "no DMI data", "unknown"),
        item("not.a.fact", "x", "pass"),
    )
    assert facts_from_items(items) == {
        "posture.disk.encrypted": False,
        "posture.firewall.enabled": True,
        "posture.screen_lock.enabled": True,
        "posture.screen_lock.timeout_s": 300,
        "posture.av.products": ["clamd", "falcon"],
        "posture.os.name": "linux",
    }


# -- through the real local API -------------------------------------------------------------


@pytest.mark.integration
async def test_the_posture_comes_from_the_running_agent(tmp_path: Path, cache: Path) -> None:
    """A real engine served on the local API (its posture: the firewall on): the CLI in a
    subprocess asks it, and the database rule that needs the firewall allows."""
    (tmp_path / "run").mkdir(mode=0o700)
    eng = engine()
    server = await serve(eng, tmp_path / "run" / "rustronaut" / "engine.sock")
    try:
        await eng.connect()
        env = isolated_env(tmp_path)
        args = ("--app", "/usr/bin/psql", "--to", "10.20.1.2:5432", "--cache", str(cache))
        code, out, err = await run_cli(env, "policy", "explain", *args)
        assert code == 0, out + err
        assert "Decision:   ALLOW" in out
        assert "the running Rustronaut's posture" in out
        code, out, _ = await run_cli(env, "policy", "explain", *args, "--facts", "none")
        assert code == 1
    finally:
        await server.stop()
        await eng.stop()
