"""``rustronaut posture`` and a signed report of a real collection on this machine."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main
from core.posture.factory import collectors_for

pytestmark = pytest.mark.integration


def test_posture_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["posture", "--json", "--timeout", "10", "--file", "/etc/os-release"]) == 0
    rows = {r["fact"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["os.name"]["value"] == "linux"
    assert rows["file./etc/os-release.present"]["value"] is True
    for row in rows.values():
        assert row["status"] in ("pass", "fail", "unknown")  # the posture window's words
        if row["status"] == "unknown":
            assert row["reason"]
            assert row["value"] is None
        if row["value"] is False:
            assert row["fix"], row
        if row["value"] is True:
            assert row["fix"] == ""


def test_posture_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["posture", "--process", "rtp-no-such-process"]) == 0
    out = capsys.readouterr().out
    header, *lines = out.splitlines()
    assert header.split() == ["FACT", "STATUS", "VALUE", "FIX", "/", "REASON"]
    line = next(ln for ln in lines if ln.startswith("process.rtp-no-such-process.running"))
    assert "no" in line.split()
    assert "Start “rtp-no-such-process”" in line


def test_posture_bad_config_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["posture", "--file", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rustronaut posture: bad file path for a posture check: ''")


async def test_a_real_collection_signs_and_verifies() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from core.posture import CollectContext, SubprocessRunner, collect, signed_report
    from core.wire.posture import facts_for_policy, verify_report

    facts = await collect(collectors_for("linux"), CollectContext(runner=SubprocessRunner()))
    key = Ed25519PrivateKey.generate()
    token = signed_report(facts, key, device_id="dev-9", nonce="n-1", now=1000.0)
    report = verify_report(
        token, key.public_key(), device_id="dev-9", expected_nonce="n-1", now=1001.0, max_age_s=60
    )
    assert [f.name for f in report.facts] == sorted(facts)
    policy = facts_for_policy(report)
    assert policy["posture.os.name"] == "linux"
    assert all(k.startswith("posture.") for k in policy)
    assert len(policy) == sum(1 for f in facts.values() if f.known)
