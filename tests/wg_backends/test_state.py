"""The helper's state record and its own readings of the machine: concurrent writers,
the strict managed-settings reader and the connected-routes parser."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from wg_backends.helper import localnet, managed
from wg_backends.helper.state import StateFile, TunnelRecord

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_adds_and_removes_lose_nothing(tmp_path: Path, round_: int) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    sf = StateFile(state_dir)
    sf.save((TunnelRecord("rtwgone", "wg-quick"),))
    n = 24
    barrier = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            sf.add(TunnelRecord(f"rtw{i}", "wg-quick", owner_uid=i))
            if i == 0:
                sf.remove("rtwgone")
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(t.interface for t in sf.load()) == sorted(f"rtw{i}" for i in range(n))
    assert not [p for p in state_dir.iterdir() if p.name.endswith(".tmp")]
    assert os.stat(sf.path).st_mode & 0o777 == 0o600


def test_old_records_still_load(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir(mode=0o700)
    (tmp_path / "s" / "state.json").write_text(
        json.dumps({"tunnels": [{"interface": "rtw0", "backend": "wg-quick"}]})
    )
    [rec] = StateFile(tmp_path / "s").load()
    assert (rec.owner_uid, rec.table) == (-1, None)
    assert rec.relay_endpoints == ()  # a record of a helper from before issue 21


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_managed_reader_layers_and_defaults(tmp_path: Path) -> None:
    assert managed.read(tmp_path / "absent") == managed.HelperManaged()
    write(tmp_path / "managed.json", '{"always_on": false, "proxy_port": 9000}')
    write(tmp_path / "managed.d" / "20.json", '{"always_on": true}')
    write(tmp_path / "managed.d" / "10.json", '{"allow_break_glass": false}')
    write(tmp_path / "managed.d" / "30.txt", '{"always_on": false}')
    got = managed.read(tmp_path)
    assert (got.always_on, got.allow_break_glass) == (True, False)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ('{"always_on": "yes"}', 0o644),  # wrong type: the whole file is rejected
        ('{"always_on": true, "always_on": true}', 0o644),
        ('{"always_on": true', 0o644),
        ("[true]", 0o644),
        ('{"always_on": true}', 0o664),
        ('{"always_on": true}', 0o646),
        ("[" * 100_000, 0o644),
    ],
)
def test_managed_reader_rejects_whole_files(tmp_path: Path, text: str, mode: int) -> None:
    write(tmp_path / "managed.json", text, mode)
    assert managed.read(tmp_path).always_on is False


def test_managed_reader_refuses_an_untrusted_directory(tmp_path: Path) -> None:
    write(tmp_path / "m" / "managed.json", '{"always_on": true}')
    assert managed.read(tmp_path / "m").always_on is True
    os.chmod(tmp_path / "m", 0o777)
    assert managed.read(tmp_path / "m").always_on is False


ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000A8C0\t0102000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
rtw0\t0000E90A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
"""
IPV6_ROUTE = """\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
"""  # noqa: E501 (the kernel's own line format)


def test_connected_routes_parsed_without_gateways_defaults_loopback_or_our_tunnels(
    tmp_path: Path,
) -> None:
    (tmp_path / "route").write_text(ROUTE)
    (tmp_path / "ipv6_route").write_text(IPV6_ROUTE)
    got = localnet.connected_networks(exclude={"rtw0"}, proc_net=tmp_path)
    assert got == ("192.0.2.0/24", "fd00::/64")
    assert "10.233.0.0/24" in localnet.connected_networks(proc_net=tmp_path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://10.233.0.9:8443/api", ("10.233.0.9",)),
        ("https://[2001:db8::7]/", ("2001:db8::7",)),
        ("https://localhost/", ("127.0.0.1", "::1")),
        (None, ()),
        ("not a url", ()),
    ],
)
def test_controller_addresses(url: str | None, expected: tuple[str, ...]) -> None:
    got = localnet.controller_addresses(url)
    assert set(got) <= set(expected)
    assert bool(got) == bool(expected)
