"""``rustronaut posture`` says pass / fail / unknown, the words of the posture window
(``PostureItem.status``), never known/unknown (issue 18)."""

from __future__ import annotations

import json

import pytest

from core.cli.commands.posture import _table, rows
from core.wire.posture import Fact

pytestmark = pytest.mark.unit

AT = 1000.0
FACTS = {
    "firewall.enabled": Fact.of("firewall.enabled", True, AT),
    "disk.encrypted": Fact.of("disk.encrypted", False, AT),
    "av.running": Fact.unknown("av.running", "no antivirus tool answered", AT),
    "os.name": Fact.of("os.name", "linux", AT),
}


def test_each_fact_has_the_window_s_word() -> None:
    status = {r["fact"]: r["status"] for r in rows(FACTS, "linux")}
    assert status == {
        "firewall.enabled": "pass",
        "disk.encrypted": "fail",
        "av.running": "unknown",
        "os.name": "pass",
    }


def test_the_table_says_pass_fail_unknown_and_never_known() -> None:
    out = _table(rows(FACTS, "linux"))
    words = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert words == {
        "av.running": "unknown",
        "disk.encrypted": "fail",
        "firewall.enabled": "pass",
        "os.name": "pass",
    }
    assert "known " not in out.replace("unknown", "")
    failing = next(ln for ln in out.splitlines() if ln.startswith("disk.encrypted"))
    assert "encryption" in failing  # the fix is shown beside a failed check


def test_json_carries_the_same_words() -> None:
    data = json.loads(json.dumps(rows(FACTS, "linux")))
    assert {r["status"] for r in data} == {"pass", "fail", "unknown"}
