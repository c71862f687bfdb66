"""Reusable WireGuard test bed: client, gateway and server namespaces (root only).

::

    rtw-cl-<tag>                 rtw-gw-<tag>                          rtw-sv-<tag>
    [rtwvc<tag>] 10.231.0.2 ── veth ── 10.231.0.1 [rtwvg<tag>]
                                       [rtwgw<tag>] 10.232.0.1 (WireGuard, :51820)
                                       [rtwsg<tag>] 10.233.0.1 ── veth ── 10.233.0.2 [rtwss<tag>]
                                                                          (resource server)

The gateway runs a real WireGuard interface (``wg-quick`` + ``wireguard-go``) that accepts
the client key pair made by the bed; the server namespace routes back through the gateway
(which forwards). :meth:`TestBed.client_spec` returns the matching client ``TunnelSpec``
(tunnel address 10.232.0.2, allowed IPs 10.232.0.0/24 and 10.233.0.0/24). Names carry a
per-process tag so concurrent runs never collide (wireguard-go's control sockets live on
the shared ``/var/run/wireguard``). :meth:`TestBed.close` removes everything, including
the wireguard-go processes started inside the namespaces (by pid), and is idempotent.

Use as a context manager or through the ``testbed`` pytest fixture in
``tests/wg_backends/conftest.py``. Engine end-to-end tests can import :func:`make_testbed`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from controller.demo.bed import genkey, ns_pids, remove_namespaces, run
from wg_backends.spec import PeerSpec, TunnelSpec

__all__ = ["TestBed", "make_testbed", "ns_pids", "run"]

_counter = itertools.count()
GW_VETH_IP = "10.231.0.1"
CL_VETH_IP = "10.231.0.2"
GW_TUN_IP = "10.232.0.1"
CL_TUN_IP = "10.232.0.2"
GW_SRV_IP = "10.233.0.1"
SERVER_IP = "10.233.0.2"
WG_PORT = 51820
ORIGINAL_RESOLV = "nameserver 127.0.0.1\n"  # the client namespace's resolv.conf before a tunnel


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass
class TestBed:
    """Handles and names of one bed. Build with :func:`make_testbed`."""

    __test__ = False  # not a pytest test class

    tag: str
    workdir: Path
    gw_private: str
    gw_public: str
    client_private: str
    client_public: str
    made: list[str] = field(default_factory=list)

    @property
    def client_ns(self) -> str:
        return f"rtw-cl-{self.tag}"

    @property
    def gateway_ns(self) -> str:
        return f"rtw-gw-{self.tag}"

    @property
    def server_ns(self) -> str:
        return f"rtw-sv-{self.tag}"

    @property
    def resolv_conf(self) -> Path:
        """The client namespace's own /etc/resolv.conf (as seen inside it)."""
        return Path(f"/etc/netns/{self.client_ns}/resolv.conf")

    @property
    def gateway_if(self) -> str:
        return f"rtwgw{self.tag}"

    @property
    def client_if(self) -> str:
        """A free interface name for the client's tunnel (the helper creates it)."""
        return f"rtwcl{self.tag}"

    @property
    def server_ip(self) -> str:
        return SERVER_IP

    def client_spec(self, *, interface: str | None = None, with_key: bool = True) -> TunnelSpec:
        """The client ``TunnelSpec`` that matches the gateway (private key filled or not)."""
        spec = TunnelSpec(
            interface=interface or self.client_if,
            addresses=(f"{CL_TUN_IP}/32",),
            peers=(
                PeerSpec(
                    public_key=self.gw_public,
                    endpoint=f"{GW_VETH_IP}:{WG_PORT}",
                    allowed_ips=("10.232.0.0/24", "10.233.0.0/24"),
                    persistent_keepalive=25,
                ),
            ),
            mtu=1420,
        )
        return spec.with_private_key(self.client_private) if with_key else spec

    def exec(self, ns: str, argv: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside one of the bed's namespaces."""
        return run(argv, ns=ns, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        """Remove namespaces, interfaces, wireguard-go processes and files. Idempotent."""
        gw_conf = self.workdir / f"{self.gateway_if}.conf"
        if gw_conf.exists():
            run(["wg-quick", "down", str(gw_conf)], ns=self.gateway_ns, check=False)
        remove_namespaces(
            (self.client_ns, self.gateway_ns, self.server_ns), (self.gateway_if, self.client_if)
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self.resolv_conf.parent, ignore_errors=True)

    def __enter__(self) -> TestBed:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def make_testbed() -> TestBed:
    """Build a fresh bed (≈0.5 s). Raises ``RuntimeError`` (after cleaning up) on failure."""
    tag = _b36(os.getpid())[-4:] + _b36(next(_counter))
    gw_priv, gw_pub = genkey()
    cl_priv, cl_pub = genkey()
    bed = TestBed(
        tag=tag,
        workdir=Path(tempfile.mkdtemp(prefix=f"rtw-bed-{tag}-")),
        gw_private=gw_priv,
        gw_public=gw_pub,
        client_private=cl_priv,
        client_public=cl_pub,
    )
    try:
        _build(bed)
    except BaseException:
        bed.close()
        raise
    return bed


def _build(bed: TestBed) -> None:
    cl, gw, sv, t = bed.client_ns, bed.gateway_ns, bed.server_ns, bed.tag
    # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf, so a
    # tunnel with DNS (resolvconf) changes the namespace's copy, never the host's.
    bed.resolv_conf.parent.mkdir(parents=True, exist_ok=True)
    bed.resolv_conf.write_text(ORIGINAL_RESOLV)
    for ns in (cl, gw, sv):
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "set", "lo", "up"], ns=ns)
    run(
        [
            "ip",
            "link",
            "add",
            f"rtwvc{t}",
            "netns",
            cl,
            "type",
            "veth",
            "peer",
            "name",
            f"rtwvg{t}",
            "netns",
            gw,
        ]
    )
    run(
        [
            "ip",
            "link",
            "add",
            f"rtwss{t}",
            "netns",
            sv,
            "type",
            "veth",
            "peer",
            "name",
            f"rtwsg{t}",
            "netns",
            gw,
        ]
    )
    run(["ip", "addr", "add", f"{CL_VETH_IP}/24", "dev", f"rtwvc{t}"], ns=cl)
    run(["ip", "link", "set", f"rtwvc{t}", "up"], ns=cl)
    run(["ip", "addr", "add", f"{GW_VETH_IP}/24", "dev", f"rtwvg{t}"], ns=gw)
    run(["ip", "link", "set", f"rtwvg{t}", "up"], ns=gw)
    run(["ip", "addr", "add", f"{GW_SRV_IP}/24", "dev", f"rtwsg{t}"], ns=gw)
    run(["ip", "link", "set", f"rtwsg{t}", "up"], ns=gw)
    run(["ip", "addr", "add", f"{SERVER_IP}/24", "dev", f"rtwss{t}"], ns=sv)
    run(["ip", "link", "set", f"rtwss{t}", "up"], ns=sv)
    run(["ip", "route", "add", "default", "via", GW_SRV_IP], ns=sv)
    run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], ns=gw)
    conf = bed.workdir / f"{bed.gateway_if}.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f"[Interface]\nPrivateKey = {bed.gw_private}\nAddress = {GW_TUN_IP}/24\n"
            f"ListenPort = {WG_PORT}\nMTU = 1420\n\n[Peer]\nPublicKey = {bed.client_public}\n"
            f"AllowedIPs = {CL_TUN_IP}/32\n"
        )
    run(["wg-quick", "up", str(conf)], ns=gw)
