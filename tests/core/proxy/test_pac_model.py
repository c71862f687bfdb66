"""PAC rendering/validation and the value types (Limits, counters)."""

from __future__ import annotations

import ipaddress
from types import MappingProxyType

import pytest

from core.proxy.errors import ProxyConfigError
from core.proxy.model import Limits, ProxyCounters, ResourceCounters
from core.proxy.pac import PacTargets, parse_pac_targets, render_pac

pytestmark = pytest.mark.unit


def test_parse_targets_normalises() -> None:
    t = parse_pac_targets(
        ["Git.Corp.", "*.Wiki.corp", "10.20.0.0/16", "fd00::/8", "10.0.0.7", "git.corp"]
    )
    assert t.names == ("git.corp",)
    assert t.suffixes == ("wiki.corp",)
    assert t.networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("10.0.0.7/32"),
    )


@pytest.mark.parametrize("bad", ["", "a'b.corp", 'x");alert(1);//', "10.0.0.0/33", "*.", "a b", 7])
def test_bad_targets_rejected(bad: object) -> None:
    with pytest.raises(ProxyConfigError):
        parse_pac_targets(["ok.corp", bad])  # type: ignore[list-item]


def test_render_lists_exactly_the_targets() -> None:
    pac = render_pac(
        parse_pac_targets(["git.corp", "*.wiki.corp", "10.20.0.0/16"]), "127.0.0.1:9080"
    )
    assert 'var names = ["git.corp"];' in pac
    assert 'var suffixes = ["wiki.corp"];' in pac
    assert 'var nets4 = [["10.20.0.0", "255.255.0.0"]];' in pac
    assert pac.count('"PROXY 127.0.0.1:9080"') == 4
    assert 'return "DIRECT";' in pac
    empty = render_pac(PacTargets(), "127.0.0.1:1")
    assert "var names = [];" in empty


@pytest.mark.skipif(
    not __import__("shutil").which("node"), reason="needs node to run the PAC JavaScript"
)
def test_pac_runs_in_javascript(tmp_path: object) -> None:
    import subprocess

    pac = render_pac(
        parse_pac_targets(["git.corp", "*.wiki.corp", "10.20.0.0/16"]), "127.0.0.1:9080"
    )
    shim = (
        "function dnsDomainIs(h, d) { return h.length >= d.length && "
        "h.substring(h.length - d.length) === d; }\n"
        "function isInNet(h, net, mask) { var p = function (s) { return s.split('.')"
        ".reduce(function (a, o) { return a * 256 + Number(o); }, 0); };"
        " var m = p(mask); return (p(h) & m) >>> 0 === (p(net) & m) >>> 0; }\n"
    )
    probes = [
        "git.corp",
        "GIT.CORP.",
        "a.wiki.corp",
        "wiki.corp",
        "10.20.3.4",
        "10.21.0.1",
        "evil.corp",
        "git.corp.evil",
    ]
    code = (
        shim + pac + "".join(f"console.log(FindProxyForURL('http://x/', {p!r}));\n" for p in probes)
    )
    out = subprocess.run(["node", "-e", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:8] == [
        "PROXY 127.0.0.1:9080",
        "PROXY 127.0.0.1:9080",
        "PROXY 127.0.0.1:9080",
        "DIRECT",
        "PROXY 127.0.0.1:9080",
        "DIRECT",
        "DIRECT",
        "DIRECT",
    ]


@pytest.mark.parametrize(
    "kw",
    [
        {"max_connections": 0},
        {"handshake_timeout": 0},
        {"connect_timeout": -1},
        {"idle_timeout": 0},
        {"handshake_max_bytes": 10},
        {"chunk_size": 100},
        {"relay": "magic"},
        {"max_resolved": 0},
    ],
)
def test_limits_reject_nonsense(kw: dict[str, object]) -> None:
    with pytest.raises(ProxyConfigError):
        Limits(**kw)  # type: ignore[arg-type]


def test_counters_snapshot_is_immutable_and_totals() -> None:
    c = ProxyCounters(
        resources=MappingProxyType(
            {"a": ResourceCounters(1, 1, 10, 20, 0), "b": ResourceCounters(0, 0, 0, 0, 3)}
        )
    )
    assert c.total == ResourceCounters(1, 1, 10, 20, 3)
    with pytest.raises(TypeError):
        c.resources["c"] = ResourceCounters()  # type: ignore[index]
    with pytest.raises(AttributeError):
        c.active = 3  # type: ignore[misc]
