"""Split DNS through resolvconf for real (root, namespaces): the wg-quick backend, a tunnel
with ``dns_suffixes``, and this machine's resolvconf writing the client namespace's own
``/etc/resolv.conf`` (``ip netns exec`` bind-mounts ``/etc/netns/<ns>/resolv.conf``).

While up: the tunnel's server and the ``search`` suffix are there, wg-quick's config has
no ``DNS =`` line; after ``down`` (and after ``purge`` with the record lost) the record is
gone and the namespace's resolv.conf no longer names the tunnel's server. The host's own
``/etc/resolv.conf`` is never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from tests.wg_backends.test_update_netns import NsRunner
from tests.wg_backends.testbed import TestBed
from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.dns import DnsPaths
from wg_backends.spec import TunnelSpec

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("resolvconf") is None, reason="needs resolvconf"),
]

HOST_RESOLV = Path("/etc/resolv.conf")


def _backend(bed: TestBed, tmp_path: Path) -> WgQuickBackend:
    paths = DnsPaths(resolved_socket=tmp_path / "no-resolved")  # the resolvconf path here
    return WgQuickBackend(NsRunner(bed.client_ns), config_dir=tmp_path / "t", dns_paths=paths)


def _split(bed: TestBed) -> TunnelSpec:
    return msgspec.structs.replace(
        bed.client_spec(), dns=("10.232.0.1",), dns_suffixes=("corp.example",)
    )


def test_resolvconf_split_dns_in_a_namespace(testbed: TestBed, tmp_path: Path) -> None:
    host_before = HOST_RESOLV.read_bytes()
    b = _backend(testbed, tmp_path)
    spec = _split(testbed)
    b.up(spec)
    try:
        record = b.dns_record(testbed.client_if)
        assert record is not None
        assert record.method == "resolvconf"
        text = testbed.resolv_conf.read_text()
        assert "nameserver 10.232.0.1" in text
        assert "corp.example" in text.split("search", 1)[1]
        assert "DNS" not in (b.config_dir / f"{testbed.client_if}.conf").read_text()
        assert Path("/run/resolvconf/interfaces", record.name).exists()
    finally:
        b.down(testbed.client_if)
    assert "10.232.0.1" not in testbed.resolv_conf.read_text()
    assert not Path("/run/resolvconf/interfaces", record.name).exists()
    assert b.dns_record(testbed.client_if) is None
    assert HOST_RESOLV.read_bytes() == host_before


def test_purge_without_the_record_still_removes_it(testbed: TestBed, tmp_path: Path) -> None:
    b = _backend(testbed, tmp_path)
    b.up(_split(testbed))
    record = b.dns_record(testbed.client_if)
    assert record is not None
    # A crash: the runtime directory (config and DNS record) is lost.
    shutil.rmtree(b.config_dir)
    b.purge(testbed.client_if)
    assert not Path("/run/resolvconf/interfaces", record.name).exists()
    assert "10.232.0.1" not in testbed.resolv_conf.read_text()
    assert not b.status(testbed.client_if).up


def test_split_dns_update_switches_suffixes_in_place(testbed: TestBed, tmp_path: Path) -> None:
    b = _backend(testbed, tmp_path)
    spec = _split(testbed)
    b.up(spec)
    try:
        port = b.status(testbed.client_if).listen_port
        b.update(msgspec.structs.replace(spec, dns_suffixes=("corp.example", "lab.example")))
        text = testbed.resolv_conf.read_text()
        assert "lab.example" in text
        assert b.status(testbed.client_if).listen_port == port  # no restart
        record = b.dns_record(testbed.client_if)
        assert record is not None
        assert record.applied == ("corp.example", "lab.example")
    finally:
        b.down(testbed.client_if)
