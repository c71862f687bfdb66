"""``rustronaut posture`` on this machine, for real."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main

pytestmark = pytest.mark.integration


def test_posture_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["posture", "--json", "--timeout", "10", "--file", "/etc/os-release"]) == 0
    rows = {r["fact"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["os.name"]["value"] == "linux"
    assert rows["file./etc/os-release.present"]["value"] is True
    for row in rows.values():
        assert row["status"] in ("known", "unknown")
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
