"""The session test bed: client, gateway and resource namespaces, all real (root only).

::

    host (root ns)        client ns               gateway ns               server ns
    controller        ┌─ engine, proxy, helper  WireGuard rtegw<tag>     wiki    10.243.0.10
    127.0.0.1:P ◀socat┤  127.0.0.1:P (bridge)   :51820, 10.242.0.1/24    payroll 10.243.0.20
                      └─ 10.241.0.2 ── veth ── 10.241.0.1 ─ veth ─ 10.243.0.1

The controller runs on the host's loopback; a pair of ``socat`` processes joined by a Unix
socket make it appear on the client namespace's loopback at the same port, so the client
reaches it as ``http://127.0.0.1:P`` (plain HTTP is allowed only on loopback). The gateway
has a real WireGuard interface (``wg-quick`` + ``wireguard-go``) whose peers the controller
adds and removes with ``wg set`` inside the gateway namespace. Resource names resolve in the
client namespace through ``/etc/netns/<client>/hosts`` (``ip netns exec`` bind-mounts it).

With ``make_bed(second_gateway=True)`` a second gateway namespace joins, with its own
WireGuard interface (``rteg2<tag>``, tunnel address 10.242.0.254) on its own links to
the client (10.244.0.0/24) and to the same server namespace (10.245.0.0/24); it
masquerades what it forwards, so the servers answer it without a route back to the
pool. Taking one gateway's WireGuard down (``gateway_down``) leaves the other working::

    client ns ── 10.244.0.2 ── veth ── 10.244.0.1 ─ gateway2 ns ─ 10.245.0.1 ── veth ── server ns

The server namespace also answers DNS for the company zone (``corp.example``) on
10.243.0.53 (the controller announces it as the tunnel's DNS server), and counts every
packet addressed to each resource (``resource_packets``): "no packet reaches Payroll by
any path" is read there, not from the client's view.

With ``make_bed(rogue_lan=True)`` a rogue LAN host joins on a second link from the
client, as the LAN's router (the client's default routes point at it)::

    client ns ── 10.246.0.2 / fd46::2 ── veth ── 10.246.0.66 / fd46::66 ─ rogue ns

It serves HTTP on port 80 for any address (including hijacked resource addresses), runs a
DNS server on 10.246.0.53 answering every ``corp.example`` name with its own A and AAAA,
and counts every unicast packet it receives from the client (``rogue_packets``; DNS
queries to it apart, ``rogue_dns_queries``). ``rogue_route`` adds a more specific route
via it in the client namespace (a rogue DHCP server's option 121), and
``point_resolver_at_rogue`` makes the client namespace's own resolver ask it.

With ``make_bed(onboarding=True)`` the gateway namespace also plays the public internet
an employee's first run meets, on extra addresses of the client's link::

    client ns ── 10.241.0.2 ── veth ── 10.241.0.53  public DNS (the client's resolver)
                                       10.241.0.80  https://acme.example (front: the controller)
                                       10.241.0.81  https://<other>.example (other sites)

A test CA (``ca_file``, what the client's OS trust store would hold) signs one
certificate for these names. ``front_controller`` serves the reference controller at
``https://acme.example``: the controller serves HTTPS itself with ``site_cert`` and a
TCP front on the client's link passes the connections through, so
``alice@acme.example`` finds it through its own ``/.well-known/rustronaut``. The DNS
also answers the ``_rustronaut.<domain>`` TXT records of :data:`ONBOARDING_TXT`, and the
other sites serve :data:`ONBOARDING_SITES` (an http:// pointer, a pointer DNS
contradicts, a site with no record). With the rogue
LAN as well, the rogue's DNS claims ``acme.example`` and its TXT record, and the rogue
serves ``https://acme.example`` with a certificate of its own making, pointing at itself
(:data:`ROGUE_CONTROLLER`).

With ``make_bed(relays=2)`` (issue 21) the gateway namespace also runs mTLS relays
(``python -m controller.relay``) on extra addresses of the client's link, each forwarding
to the gateway's WireGuard endpoint; the relays reach the controller on the gateway
namespace's loopback through the same ``socat`` bridge as the client::

    client ns ── 10.241.0.2 ── veth ── 10.241.0.11:443  relay1.relay.example ─┐ UDP to
                                       10.241.0.12:443  relay2.relay.example ─┴ 10.241.0.1:51820
    host 127.0.0.1:P ◀─ socat ─ gateway ns 127.0.0.1:P   (relays poll /v1/relay/devices)

The relay names resolve in the client namespace's hosts file; their server certificates
come from the bed's test CA (``ca_file``, made for a relay bed too; ``SSL_CERT_FILE`` of
the client's processes) and :meth:`Bed.relay_configs` pins each one's key. The relays
authenticate devices with the controller's relay CA (``<controller keys>/relay-ca.pem``,
made before the controller starts) and poll the device list with the token in
``relay_token_file`` (the controller's ``relay_token_file`` too). They start with the
session (:meth:`Bed.start_relays`, once the controller's port is known); ``kill_relay`` /
``start_relay`` take one down (SIGKILL: a crash) and back, ``relay_log`` reads its
stderr. ``block_udp`` makes the client's links a hotel network (nftables netdev hooks on
the client namespace's links drop every IPv4 UDP datagram out of and into them, silently,
DNS apart; the tunnel's own interface and loopback untouched); ``allow_udp`` undoes it.

Only these namespaces' own addresses and loopback are ever used. ``close`` removes every
namespace, interface, process, socket and file the bed made; it is idempotent.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from controller.gateway import CommandResult, subprocess_runner

__all__ = [
    "DNS_ADDR",
    "DNS_SUFFIX",
    "ONBOARDING_DOMAIN",
    "ONBOARDING_SITES",
    "ONBOARDING_TXT",
    "PUBLIC_DNS",
    "PUBLIC_WEB",
    "RELAY_ADDRS",
    "RELAY_DOMAIN",
    "RELAY_PORT",
    "RESOURCES",
    "ROGUE_CONTROLLER",
    "ROGUE_DNS",
    "ROGUE_HOST",
    "ROGUE_HOST6",
    "Bed",
    "genkey",
    "make_bed",
    "ns_pids",
    "remove_namespaces",
    "run",
]

_counter = itertools.count()
_ROOT = Path(__file__).resolve().parents[2]
CL_VETH = "10.241.0.2"
GW_VETH = "10.241.0.1"
POOL = "10.242.0.0/24"
GW_TUN = "10.242.0.1/24"
GW_SRV = "10.243.0.1"
WG_PORT = 51820
CL_VETH2 = "10.244.0.2"
GW2_VETH = "10.244.0.1"
GW2_TUN = "10.242.0.254/24"
GW2_SRV = "10.245.0.1"
SV_GW2 = "10.245.0.2"
#: The relays (``make_bed(relays=N)``): their addresses on the client's link (gateway
#: namespace), TLS port and the domain of their names (``relay<i>.relay.example``).
RELAY_ADDRS = ("10.241.0.11", "10.241.0.12", "10.241.0.13")
RELAY_PORT = 443
RELAY_DOMAIN = "relay.example"

#: The company zone's DNS server (server namespace) and the zone's suffix.
DNS_ADDR = "10.243.0.53"
DNS_SUFFIX = "corp.example"
#: The rogue LAN: the client's address on it, the rogue host, its DNS server.
CL_ROGUE = "10.246.0.2"
CL_ROGUE6 = "fd46::2"
ROGUE_HOST = "10.246.0.66"
ROGUE_HOST6 = "fd46::66"
ROGUE_DNS = "10.246.0.53"

#: The onboarding's public side (gateway namespace, the client's link): its DNS server, the
#: company's web front (the controller) and the other sites' host.
PUBLIC_DNS = "10.241.0.53"
PUBLIC_WEB = "10.241.0.80"
OTHER_WEB = "10.241.0.81"
#: The employee's email domain: ``https://acme.example`` is the controller (TLS front).
ONBOARDING_DOMAIN = "acme.example"
#: Other sites' ``/.well-known/rustronaut`` answers: host → (status, body).
ONBOARDING_SITES: dict[str, tuple[int, str]] = {
    # a pointer at a plain-http controller
    "plain.example": (200, json.dumps({"controller_url": f"http://{ONBOARDING_DOMAIN}"})),
    # a pointer at the real controller, which the domain's TXT record contradicts
    "split.example": (200, json.dumps({"controller_url": f"https://{ONBOARDING_DOMAIN}"})),
    # no record on the web site: the TXT record names the controller
    "dns-only.example": (404, "not found"),
}
#: The public DNS's ``_rustronaut.<domain>`` TXT records: domain → record text.
ONBOARDING_TXT = {
    ONBOARDING_DOMAIN: f"url=https://{ONBOARDING_DOMAIN}",
    "split.example": "url=https://elsewhere.example",
    "dns-only.example": f"url=https://{ONBOARDING_DOMAIN}",
}
#: The controller the rogue LAN host claims to be, on its web site and in its TXT record.
ROGUE_CONTROLLER = "https://10.246.0.66"

#: name → (address, description) of the resource servers behind the gateway.
RESOURCES = {
    "wiki.corp.example": ("10.243.0.10", "Corp Wiki"),
    "payroll.corp.example": ("10.243.0.20", "Payroll"),
}

_SERVER = r"""
import http.server, socketserver, sys
name, addr = sys.argv[1], sys.argv[2]
body = f"<h1>{name}</h1><p>You reached {name} through the Rustronaut tunnel.</p>\n".encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a connection can outlive a path change
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S((addr, 80), H).serve_forever()
"""


#: A small authoritative DNS server (dnspython): ``<bind address> <zone JSON>``, the zone
#: mapping lower-case names to {"A": [...], "AAAA": [...]}; names under a suffix in
#: ``"suffixes"`` but not in the zone get NXDOMAIN, anything else REFUSED. UDP only.
_DNS = r"""
import json, socket, sys
import dns.flags, dns.message, dns.rcode, dns.rdataclass, dns.rdatatype, dns.rrset
addr, zone = sys.argv[1], json.loads(sys.argv[2])
suffixes = tuple(zone.pop("suffixes", []))
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
while True:
    data, peer = s.recvfrom(4096)
    try:
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        question = q.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        if name in zone:
            values = zone[name].get(kind, [])
            if values:
                r.answer.append(dns.rrset.from_text_list(question.name, 30, "IN", kind, values))
        elif any(name == x or name.endswith("." + x) for x in suffixes):
            r.set_rcode(dns.rcode.NXDOMAIN)
        else:
            r.set_rcode(dns.rcode.REFUSED)
        s.sendto(r.to_wire(), peer)
    except Exception:
        pass
"""

#: The rogue host's web server: any address, IPv4 and IPv6, port 80.
_ROGUE_HTTP = r"""
import http.server, socket, socketserver
body = b"<h1>rogue</h1><p>You reached the rogue LAN host.</p>\n"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
S(("::", 80), H).serve_forever()
"""


#: An HTTPS site answering ``/.well-known/rustronaut`` by Host:
#: ``<address> <cert> <key> <JSON host → [status, body]>``; other paths and hosts 404.
_SITE = r"""
import http.server, json, socketserver, ssl, sys
addr, cert, key, sites = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        status, body = sites.get(host, [404, "not found"])
        if self.path != "/.well-known/rustronaut":
            status, body = 404, "not found"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = S((addr, 443), H)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def run(
    argv: Sequence[str],
    *,
    ns: str | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (inside netns ``ns`` if given); raise ``RuntimeError`` on failure."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    proc = subprocess.run(full, capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def ns_pids(ns: str) -> list[int]:
    """Pids of the processes in netns ``ns`` (empty when it is gone)."""
    proc = run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def remove_namespaces(namespaces: Sequence[str], interfaces: Sequence[str] = ()) -> None:
    """Stop every process in ``namespaces`` (TERM, then KILL after 3 s), delete them, and
    remove the userspace WireGuard control sockets of ``interfaces``. Never raises."""
    for ns in namespaces:
        for pid in ns_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    for ns in namespaces:
        while ns_pids(ns) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in ns_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run(["ip", "netns", "del", ns], check=False)
    for name in interfaces:
        with contextlib.suppress(FileNotFoundError):
            Path(f"/var/run/wireguard/{name}.sock").unlink()


def genkey() -> tuple[str, str]:
    """A fresh (private, public) WireGuard key pair made by ``wg``."""
    private = run(["wg", "genkey"]).stdout.strip()
    public = run(["wg", "pubkey"], input=private + "\n").stdout.strip()
    return private, public


@dataclass
class Bed:
    """Names, keys and processes of one bed. Build it with :func:`make_bed`."""

    tag: str
    workdir: Path
    gw_private: str
    gw_public: str
    #: keys of the second gateway (empty without one)
    gw2_private: str = ""
    gw2_public: str = ""
    #: whether this bed has the rogue LAN host (``make_bed(rogue_lan=True)``)
    rogue_lan: bool = False
    #: whether this bed has the onboarding's public side (``make_bed(onboarding=True)``)
    onboarding: bool = False
    #: how many relays this bed has (``make_bed(relays=N)``)
    relays: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _bridge: subprocess.Popen[bytes] | None = None
    _gw_bridge: subprocess.Popen[bytes] | None = None
    _relay_procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _controller_port: int = 0

    @property
    def client_ns(self) -> str:
        return f"rte-cl-{self.tag}"

    @property
    def gateway_ns(self) -> str:
        return f"rte-gw-{self.tag}"

    @property
    def server_ns(self) -> str:
        return f"rte-sv-{self.tag}"

    @property
    def gateway_if(self) -> str:
        return f"rtegw{self.tag}"

    @property
    def second_gateway(self) -> bool:
        """Whether this bed has the second gateway."""
        return bool(self.gw2_public)

    @property
    def gateway2_ns(self) -> str:
        return f"rte-g2-{self.tag}"

    @property
    def gateway2_if(self) -> str:
        return f"rteg2{self.tag}"

    @property
    def gateway2_endpoint(self) -> str:
        return f"{GW2_VETH}:{WG_PORT}"

    @property
    def rogue_ns(self) -> str:
        return f"rte-rg-{self.tag}"

    @property
    def rogue_if(self) -> str:
        """The client namespace's interface on the rogue LAN."""
        return f"rtevr{self.tag}"

    def silence_gateway(self, which: int = 1, *, on: bool = True) -> None:
        """Drop every WireGuard packet in and out of gateway ``which`` (nftables in its
        namespace): its interface stays up, it just goes silent. ``on=False`` undoes it."""
        ns = self.gateway_ns if which == 1 else self.gateway2_ns
        run(["nft", "delete", "table", "inet", "rtsilence"], ns=ns, check=False)
        if on:
            run(
                ["nft", "-f", "-"],
                ns=ns,
                input=(
                    "table inet rtsilence {\n"
                    " chain in { type filter hook input priority -10; policy accept;\n"
                    f"  udp dport {WG_PORT} drop\n }}\n"
                    " chain out { type filter hook output priority -10; policy accept;\n"
                    f"  udp sport {WG_PORT} drop\n }}\n}}\n"
                ),
            )

    def resource_packets(self, name: str) -> int:
        """Packets that reached resource ``name`` ("payroll", "payroll.corp.example" or
        its address) by any path, counted in the server namespace before anything else."""
        return _counter_packets(self.server_ns, "rtbed", _resource_key(name))

    def _need_rogue(self) -> None:
        if not self.rogue_lan:
            raise RuntimeError("this bed has no rogue LAN host: make_bed(rogue_lan=True)")

    def rogue_packets(self) -> int:
        """Unicast IP packets the rogue host received from the client, DNS queries to its
        DNS server apart (neighbour discovery and multicast are not counted)."""
        self._need_rogue()
        return _counter_packets(self.rogue_ns, "rtrogue", "leak")

    def rogue_dns_queries(self) -> int:
        """DNS queries the rogue host's DNS server received from the client."""
        self._need_rogue()
        return _counter_packets(self.rogue_ns, "rtrogue", "dns")

    def rogue_route(self, cidr: str) -> None:
        """Route ``cidr`` via the rogue host in the client namespace (what a rogue DHCP
        server's classless static route does); more specific than the tunnel's route
        when ``cidr`` is narrower than a resource range."""
        self._need_rogue()
        via = ROGUE_HOST6 if ":" in cidr else ROGUE_HOST
        run(["ip", "route", "replace", cidr, "via", via, "dev", self.rogue_if], ns=self.client_ns)

    @property
    def ca_file(self) -> Path:
        """The test CA (PEM) that signed the onboarding sites' and the relays'
        certificates (a bed with either has it): what the client's OS trust store holds
        (``SSL_CERT_FILE`` for its processes)."""
        return self.workdir / "tls" / "ca.pem"

    @property
    def site_cert(self) -> tuple[str, str]:
        """(certificate, key) PEM files for the onboarding's public names, signed by the
        test CA: what the controller serves ``https://acme.example`` with."""
        tls = self.workdir / "tls"
        return str(tls / "site.pem"), str(tls / "site.key")

    def front_controller(self, tls_port: int) -> None:
        """Make host ``127.0.0.1:tls_port`` (the controller serving HTTPS with
        ``site_cert``) answer at ``acme.example:443`` on the client's link: a TCP front
        in the gateway namespace passes the TLS through to it (a Unix socket between)."""
        if not self.onboarding:
            raise RuntimeError("this bed has no onboarding side: make_bed(onboarding=True)")
        sock = self.workdir / "controller-tls.sock"
        self.spawn(
            ["socat", f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:127.0.0.1:{tls_port}"],
            stderr=subprocess.DEVNULL,
        )
        _wait_for(sock.exists, what="controller TLS bridge socket")
        self.spawn(
            [
                "socat",
                f"TCP-LISTEN:443,bind={PUBLIC_WEB},reuseaddr,fork",
                f"UNIX-CONNECT:{sock}",
            ],
            ns=self.gateway_ns,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(
            lambda: (
                run(["ss", "-Hltn", f"src {PUBLIC_WEB}"], ns=self.gateway_ns).stdout.strip() != ""
            ),
            what="controller front",
        )

    def restore_resolver(self) -> None:
        """Undo ``point_resolver_at_rogue``: the bed's own hosts file and resolver again."""
        _write_resolver(self)

    def point_resolver_at_rogue(self) -> None:
        """Make the client namespace's own resolver ask the rogue DNS server: its
        ``resolv.conf`` names it and its hosts file no longer lists the resources. Written
        in place, so processes already running in the namespace see it too."""
        self._need_rogue()
        (self.netns_etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        (self.netns_etc / "resolv.conf").write_text(f"nameserver {ROGUE_DNS}\n")

    def gateway_down(self, which: int = 1) -> None:
        """``wg-quick down`` gateway ``which`` (1 or 2) in its namespace: it stops answering."""
        ns, name = (
            (self.gateway_ns, self.gateway_if)
            if which == 1
            else (self.gateway2_ns, self.gateway2_if)
        )
        run(["wg-quick", "down", str(self.workdir / f"{name}.conf")], ns=ns)

    @property
    def client_if(self) -> str:
        """The interface name the bundle's tunnel spec should use (unique per bed)."""
        return f"rtecl{self.tag}"

    @property
    def gateway_endpoint(self) -> str:
        return f"{GW_VETH}:{WG_PORT}"

    @property
    def netns_etc(self) -> Path:
        return Path("/etc/netns") / self.client_ns

    def gateway_runner(self, argv: Sequence[str], *, input: str | None = None) -> CommandResult:
        """The controller's command runner: runs ``wg`` (``wg set|show <interface> ...``)
        or ``nft -f -`` (the script on ``input`` names the interface) inside the namespace
        of the gateway whose interface it names."""
        second = self.second_gateway and (
            self.gateway2_if in argv[1:3] or (input is not None and self.gateway2_if in input)
        )
        ns = self.gateway2_ns if second else self.gateway_ns
        return subprocess_runner(["ip", "netns", "exec", ns, *argv], input=input)

    def spawn(
        self, argv: Sequence[str], *, ns: str | None = None, **kw: object
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process (inside ``ns``); it is killed by ``close``."""
        full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
        proc: subprocess.Popen[bytes] = subprocess.Popen(full, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def bridge_controller(self, port: int) -> None:
        """Make host ``127.0.0.1:port`` reachable on the client namespace's loopback."""
        sock = self.workdir / "controller.sock"
        self.spawn(
            ["socat", f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:127.0.0.1:{port}"],
            stderr=subprocess.DEVNULL,
        )
        _wait_for(sock.exists, what="controller bridge socket")
        self._bridge = self.spawn(
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"UNIX-CONNECT:{sock}"],
            ns=self.client_ns,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(
            lambda: (
                run(["ss", "-Hltn", f"sport = :{port}"], ns=self.client_ns).stdout.strip() != ""
            ),
            what="controller bridge listener",
        )

    def unbridge_controller(self) -> None:
        """Cut the client namespace off from the controller (its bridge and connections)."""
        if self._bridge is not None:
            # socat forks one child per connection; kill the listener and its children.
            run(["pkill", "-KILL", "-P", str(self._bridge.pid)], check=False)
            self._bridge.kill()
            self._bridge.wait()
            self._bridge = None

    def firewall(self, on: bool) -> None:
        """Turn the client namespace's firewall (an nftables input filter) on or off."""
        run(["nft", "delete", "table", "inet", "rtdemo"], ns=self.client_ns, check=False)
        if on:
            run(
                ["nft", "-f", "-"],
                ns=self.client_ns,
                input=(
                    "table inet rtdemo {\n chain input {\n"
                    "  type filter hook input priority 0; policy accept;\n"
                    "  tcp dport 23 drop\n }\n}\n"
                ),
            )

    # ------------------------------------------------------------------ relays (issue 21)

    def _need_relay(self, i: int) -> None:
        if not 1 <= i <= self.relays:
            raise RuntimeError(f"this bed has {self.relays} relay(s), not relay {i}")

    def relay_name(self, i: int) -> str:
        """Relay ``i``'s name (1-based): ``relay<i>``, as the tunnel spec and its log say."""
        return f"relay{i}"

    def relay_host(self, i: int) -> str:
        """Relay ``i``'s host name (client namespace's hosts file, its certificate)."""
        return f"relay{i}.{RELAY_DOMAIN}"

    def relay_address(self, i: int) -> str:
        """Relay ``i``'s listening address on the client's link (gateway namespace)."""
        return RELAY_ADDRS[i - 1]

    def relay_endpoint(self, i: int) -> str:
        """``relay<i>.relay.example:443``: what the controller lists and the client dials."""
        return f"{self.relay_host(i)}:{RELAY_PORT}"

    @property
    def relay_token_file(self) -> Path:
        """The relays' bearer token for ``/v1/relay/devices`` (0600; the controller's
        ``relay_token_file`` names it too)."""
        return self.workdir / "relay-token"

    @property
    def controller_keys_dir(self) -> Path:
        """The controller's keys directory (``harness.session`` runs it in
        ``<workdir>/controller``): where its relay CA lives."""
        return self.workdir / "controller" / "keys"

    def relay_pin(self, i: int) -> str:
        """Base64 SHA-256 of relay ``i``'s SubjectPublicKeyInfo (the spec's ``spki`` pin)."""
        return (self.workdir / "tls" / f"relay{i}.pin").read_text().strip()

    def relay_configs(self) -> list[dict[str, object]]:
        """The controller's ``relays`` setting for this bed: each relay by name, endpoint
        and key pin, serving gateway 1 (the one on the client's first link)."""
        return [
            {
                "name": self.relay_name(i),
                "endpoint": self.relay_endpoint(i),
                "spki": [self.relay_pin(i)],
                "gateways": [self.gateway_endpoint],
            }
            for i in range(1, self.relays + 1)
        ]

    def relay_config_file(self, i: int) -> Path:
        """Relay ``i``'s JSON configuration (written by ``start_relays``)."""
        return self.workdir / f"relay{i}.json"

    def relay_log_file(self, i: int) -> Path:
        """Relay ``i``'s stderr, every run appended."""
        return self.workdir / f"relay{i}.log"

    def relay_log(self, i: int) -> str:
        """Relay ``i``'s stderr so far (every run of it; empty if it never ran)."""
        self._need_relay(i)
        try:
            return self.relay_log_file(i).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def relay_pid(self, i: int) -> int | None:
        """The pid of relay ``i``'s process while it runs (``ip netns exec`` execs it)."""
        proc = self._relay_procs.get(i)
        return proc.pid if proc is not None and proc.poll() is None else None

    def start_relays(self, controller_port: int) -> None:
        """Start every relay, polling the controller at host ``127.0.0.1:controller_port``
        (bridged into the gateway namespace's loopback; ``bridge_controller`` must have
        run), and wait until each logs that it listens. Raises ``RuntimeError``."""
        if not self.relays:
            return
        self._controller_port = controller_port
        if self._gw_bridge is None or self._gw_bridge.poll() is not None:
            sock = self.workdir / "controller.sock"
            if not sock.exists():
                raise RuntimeError("start_relays needs bridge_controller first")
            self._gw_bridge = self.spawn(
                ["socat", f"TCP-LISTEN:{controller_port},bind=127.0.0.1,reuseaddr,fork",
                 f"UNIX-CONNECT:{sock}"],
                ns=self.gateway_ns,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _wait_for(
                lambda: (
                    run(
                        ["ss", "-Hltn", f"sport = :{controller_port}"], ns=self.gateway_ns
                    ).stdout.strip()
                    != ""
                ),
                what="controller bridge in the gateway namespace",
            )
        for i in range(1, self.relays + 1):
            self.start_relay(i)

    def start_relay(self, i: int, *, timeout: float = 20) -> None:
        """(Re)start relay ``i`` with its configuration and wait for its ``relay <name>
        listening on <host>:<port>`` line. Raises ``RuntimeError`` (with its log)."""
        self._need_relay(i)
        if not self._controller_port:
            raise RuntimeError("start_relays(controller_port) first")
        if self.relay_pid(i) is not None:
            return
        tls = self.workdir / "tls"
        config = {
            "name": self.relay_name(i),
            "listen": f"{self.relay_address(i)}:{RELAY_PORT}",
            "cert_file": str(tls / f"relay{i}.pem"),
            "key_file": str(tls / f"relay{i}.key"),
            "client_ca_file": str(self.controller_keys_dir / "relay-ca.pem"),
            "controller_url": f"http://127.0.0.1:{self._controller_port}",
            "token_file": str(self.relay_token_file),
            "gateways": [self.gateway_endpoint],
            "max_streams": 1000,
            "queue_bytes": 262144,
            "poll_interval_s": 0.5,
        }
        path = self.relay_config_file(i)
        path.write_text(json.dumps(config, indent=1))
        os.chmod(path, 0o600)
        log = self.relay_log_file(i)
        start = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as err:
            proc = self.spawn(
                [sys.executable, "-I", "-m", "controller.relay", "--config", str(path)],
                ns=self.gateway_ns,
                cwd=_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._relay_procs[i] = proc
        ready = f"relay {self.relay_name(i)} listening on "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready in self.relay_log(i)[start:]:
                return
            if proc.poll() is not None:
                raise RuntimeError(
                    f"relay {i} exited with {proc.returncode}: {self.relay_log(i)[start:][-2000:]}"
                )
            time.sleep(0.05)
        raise RuntimeError(
            f"relay {i} did not log {ready!r} in {timeout} s: {self.relay_log(i)[start:][-2000:]}"
        )

    def kill_relay(self, i: int) -> None:
        """Kill relay ``i`` at once (SIGKILL: a crash; the kernel closes its connections)."""
        self._need_relay(i)
        proc = self._relay_procs.pop(i, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def stop_relays(self) -> None:
        """Stop every relay (SIGTERM, then SIGKILL after 3 s) and the controller bridge in
        the gateway namespace (``start_relays`` makes them again). Never raises."""
        procs = list(self._relay_procs.values())
        self._relay_procs.clear()
        if self._gw_bridge is not None:
            procs.append(self._gw_bridge)
            run(["pkill", "-KILL", "-P", str(self._gw_bridge.pid)], check=False)
            self._gw_bridge = None
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def relay_connections(self, i: int) -> list[str]:
        """The TCP connections established to relay ``i`` (``"<peer addr>:<port>"`` each),
        read from the gateway namespace's sockets."""
        self._need_relay(i)
        out = run(
            ["ss", "-Htn", "state", "established", "src",
             f"{self.relay_address(i)}:{RELAY_PORT}"],
            ns=self.gateway_ns,
        ).stdout  # fmt: skip
        return sorted(line.split()[-1] for line in out.splitlines() if line.strip())

    def _client_links(self) -> list[str]:
        t = self.tag
        return [f"rtevc{t}", *([f"rtewc{t}"] if self.second_gateway else []),
                *([self.rogue_if] if self.rogue_lan else [])]  # fmt: skip

    def block_udp(self) -> None:
        """Drop every IPv4 UDP datagram leaving the client namespace by its links and every
        one arriving on them (DNS, port 53, apart): a hotel network. Dropped on the link
        (netdev egress/ingress hooks), so a sender sees no error, as on a real network;
        loopback and the tunnel's own interface are untouched. Idempotent; ``allow_udp``
        undoes it; ``udp_dropped`` counts."""
        chains = "".join(
            f' chain {hook}{n} {{ type filter hook {hook} device "{link}" priority -20;'
            f" policy accept;\n  ip protocol udp udp {port} != 53 counter name dropped drop\n"
            " }\n"
            for n, link in enumerate(self._client_links())
            for hook, port in (("egress", "dport"), ("ingress", "sport"))
        )
        self.allow_udp()
        run(
            ["nft", "-f", "-"],
            ns=self.client_ns,
            input=f"table netdev rtudp {{\n counter dropped {{}}\n{chains}}}\n",
        )

    def allow_udp(self) -> None:
        """Undo ``block_udp`` (idempotent)."""
        run(["nft", "delete", "table", "netdev", "rtudp"], ns=self.client_ns, check=False)

    def udp_dropped(self) -> int:
        """UDP datagrams ``block_udp`` has dropped so far (0 when it is not in force)."""
        try:
            out = run(
                ["nft", "-j", "list", "counter", "netdev", "rtudp", "dropped"], ns=self.client_ns
            ).stdout
        except RuntimeError:
            return 0
        for item in json.loads(out)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        return 0

    def gateway_peer_endpoints(self) -> list[str]:
        """The endpoints gateway 1's WireGuard has for its peers (``wg show``)."""
        out = run(["wg", "show", self.gateway_if, "endpoints"], ns=self.gateway_ns).stdout
        return [f[1] for f in (line.split() for line in out.splitlines()) if len(f) == 2]

    def close(self) -> None:
        """Remove everything the bed made. Idempotent; never raises."""
        self.stop_relays()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        for ns, name in ((self.gateway_ns, self.gateway_if), (self.gateway2_ns, self.gateway2_if)):
            conf = self.workdir / f"{name}.conf"
            if conf.exists():
                run(["wg-quick", "down", str(conf)], ns=ns, check=False)
        remove_namespaces(
            (self.client_ns, self.gateway_ns, self.server_ns, self.gateway2_ns, self.rogue_ns),
            (self.gateway_if, self.gateway2_if, self.client_if),
        )
        shutil.rmtree(self.netns_etc, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Bed:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _wait_for(predicate: object, *, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for the {what}")


def make_bed(
    *,
    second_gateway: bool = False,
    rogue_lan: bool = False,
    onboarding: bool = False,
    relays: int = 0,
) -> Bed:
    """Build a fresh bed (about a second), with a second gateway, a rogue LAN host, the
    onboarding's public side and ``relays`` mTLS relays (0-3; started with the session)
    when asked.

    Cleans up and raises ``RuntimeError`` on failure.
    """
    tag = f"{os.getpid() % 1296:03x}{next(_counter)}"[-4:]
    private, public = genkey()
    private2, public2 = genkey() if second_gateway else ("", "")
    bed = Bed(
        tag=tag,
        workdir=Path(tempfile.mkdtemp(prefix=f"rte-bed-{tag}-")),
        gw_private=private,
        gw_public=public,
        gw2_private=private2,
        gw2_public=public2,
        rogue_lan=rogue_lan,
        onboarding=onboarding,
        relays=relays,
    )
    if not 0 <= relays <= len(RELAY_ADDRS):
        raise ValueError(f"relays: 0 to {len(RELAY_ADDRS)}, not {relays}")
    try:
        _build(bed)
        if onboarding:
            _build_onboarding(bed)
        if relays:
            _build_relays(bed)
        if second_gateway:
            _build_gateway2(bed)
        if rogue_lan:
            _build_rogue(bed)
    except BaseException:
        bed.close()
        raise
    return bed


def _resource_key(name: str) -> str:
    for host, (addr, _) in RESOURCES.items():
        if name in (host, addr, host.split(".", 1)[0]):
            return host.split(".", 1)[0]
    raise KeyError(f"no resource {name!r} in the bed")


def _counter_packets(ns: str, table: str, counter: str) -> int:
    out = run(["nft", "-j", "list", "counter", "inet", table, counter], ns=ns).stdout
    for item in json.loads(out)["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise RuntimeError(f"no counter {counter} in {ns}")


def _dns_server(
    bed: Bed,
    ns: str,
    addr: str,
    zone: dict[str, list[str]],
    *,
    any_name: bool,
    texts: dict[str, str] | None = None,
    suffix: str = DNS_SUFFIX,
) -> None:
    """Answer ``zone`` (name → addresses, A or AAAA by family) on ``addr``:53 in ``ns``:
    every name when ``any_name`` (the rogue), else ``suffix`` only; with ``texts``
    (name → TXT string), TXT records too."""
    if texts or importlib.util.find_spec("controller.demo.dns") is not None:
        argv = [sys.executable, "-m", "controller.demo.dns", "--listen", f"{addr}:53",
                "--zone", "." if any_name else suffix, "--ttl", "5"]  # fmt: skip
        for name, addrs in zone.items():
            argv += [a for x in addrs for a in ("--record", f"{name}={x}")]
        for name, value in (texts or {}).items():
            argv += ["--txt", f"{name}={value}"]
        bed.spawn(argv, ns=ns, cwd=_ROOT, stdout=subprocess.DEVNULL)
    else:  # the small stand-in until controller.demo.dns is there
        by_type = {
            name: {
                "A": [a for a in addrs if ":" not in a],
                "AAAA": [a for a in addrs if ":" in a],
            }
            for name, addrs in zone.items()
        }
        suffixes = [name.split(".", 1)[1] for name in zone] if any_name else [DNS_SUFFIX]
        doc = json.dumps({**by_type, "suffixes": suffixes})
        bed.spawn([sys.executable, "-I", "-c", _DNS, addr, doc], ns=ns)
    _wait_for(
        lambda: run(["ss", "-Hlun", f"src {addr}"], ns=ns).stdout.strip() != "",
        what=f"DNS server on {addr}",
    )


def _veth(a: str, ns_a: str, b: str, ns_b: str) -> None:
    run(["ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b])


def _addr(ns: str, dev: str, *cidrs: str) -> None:
    for cidr in cidrs:
        run(["ip", "addr", "add", cidr, "dev", dev], ns=ns)
    run(["ip", "link", "set", dev, "up"], ns=ns)


def _write_resolver(bed: Bed) -> None:
    """The client namespace's hosts file (the resources) and resolver (none, or the
    public DNS of an onboarding bed)."""
    bed.netns_etc.mkdir(parents=True, exist_ok=True)
    hosts = "127.0.0.1 localhost\n::1 localhost\n" + "".join(
        f"{addr} {name}\n" for name, (addr, _) in RESOURCES.items()
    )
    hosts += "".join(
        f"{bed.relay_address(i)} {bed.relay_host(i)}\n" for i in range(1, bed.relays + 1)
    )
    (bed.netns_etc / "hosts").write_text(hosts)
    resolver = f"nameserver {PUBLIC_DNS}\n" if bed.onboarding else "# no DNS in the test bed\n"
    (bed.netns_etc / "resolv.conf").write_text(resolver)


def _build(bed: Bed) -> None:
    cl, gw, sv, t = bed.client_ns, bed.gateway_ns, bed.server_ns, bed.tag
    _write_resolver(bed)
    for ns in (cl, gw, sv):
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "set", "lo", "up"], ns=ns)
    _veth(f"rtevc{t}", cl, f"rtevg{t}", gw)
    _veth(f"rtess{t}", sv, f"rtesg{t}", gw)
    _addr(cl, f"rtevc{t}", f"{CL_VETH}/24")
    _addr(gw, f"rtevg{t}", f"{GW_VETH}/24")
    _addr(gw, f"rtesg{t}", f"{GW_SRV}/24")
    _addr(sv, f"rtess{t}", *(f"{addr}/24" for addr, _ in RESOURCES.values()), f"{DNS_ADDR}/24")
    # Per-resource counters, first thing in prerouting: every path into the servers.
    counters = (
        "".join(f" counter {_resource_key(a)} {{}}\n" for a, _ in RESOURCES.values())
        + " chain pre {\n  type filter hook prerouting priority -300; policy accept;\n"
        + '  iifname "lo" accept\n'  # the servers' own traffic is no path in
        + "".join(
            f"  ip daddr {a} counter name {_resource_key(a)}\n" for a, _ in RESOURCES.values()
        )
    )
    run(["nft", "-f", "-"], ns=sv, input=f"table inet rtbed {{\n{counters} }}\n}}\n")
    run(["ip", "route", "add", "default", "via", GW_SRV], ns=sv)
    run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], ns=gw)
    _wg_up(bed, gw, bed.gateway_if, bed.gw_private, GW_TUN)
    for name, (addr, _) in RESOURCES.items():
        bed.spawn([sys.executable, "-I", "-c", _SERVER, name, addr], ns=sv)
    for addr, _ in RESOURCES.values():
        _wait_for(
            lambda a=addr: run(["ss", "-Hltn", f"src {a}"], ns=sv).stdout.strip() != "",
            what=f"resource server on {addr}",
        )
    zone = {name: [addr] for name, (addr, _) in RESOURCES.items()}
    _dns_server(bed, sv, DNS_ADDR, zone, any_name=False)


def _wg_up(bed: Bed, ns: str, name: str, private: str, address: str) -> None:
    conf = bed.workdir / f"{name}.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f"[Interface]\nPrivateKey = {private}\nAddress = {address}\n"
            f"ListenPort = {WG_PORT}\nMTU = 1420\n"
        )
    run(["wg-quick", "up", str(conf)], ns=ns)


def _build_gateway2(bed: Bed) -> None:
    cl, g2, sv, t = bed.client_ns, bed.gateway2_ns, bed.server_ns, bed.tag
    run(["ip", "netns", "add", g2])
    run(["ip", "link", "set", "lo", "up"], ns=g2)
    _veth(f"rtewc{t}", cl, f"rtewg{t}", g2)
    _veth(f"rtets{t}", sv, f"rtetg{t}", g2)
    _addr(cl, f"rtewc{t}", f"{CL_VETH2}/24")
    _addr(g2, f"rtewg{t}", f"{GW2_VETH}/24")
    _addr(g2, f"rtetg{t}", f"{GW2_SRV}/24")
    _addr(sv, f"rtets{t}", f"{SV_GW2}/24")
    server_net = RESOURCES["wiki.corp.example"][0].rsplit(".", 1)[0] + ".0/24"
    run(["ip", "route", "add", server_net, "via", SV_GW2], ns=g2)
    run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], ns=g2)
    # Masquerade towards the servers: their default route points at gateway 1.
    run(
        ["nft", "-f", "-"],
        ns=g2,
        input=(
            "table ip rtdemo {\n chain post {\n"
            "  type nat hook postrouting priority srcnat; policy accept;\n"
            f'  oifname "rtetg{t}" masquerade\n }}\n}}\n'
        ),
    )
    _wg_up(bed, g2, bed.gateway2_if, bed.gw2_private, GW2_TUN)


def _build_rogue(bed: Bed) -> None:
    cl, rg, t = bed.client_ns, bed.rogue_ns, bed.tag
    run(["ip", "netns", "add", rg])
    run(["ip", "link", "set", "lo", "up"], ns=rg)
    _veth(bed.rogue_if, cl, f"rtegr{t}", rg)
    for ns, dev, cidrs in (
        (cl, bed.rogue_if, (f"{CL_ROGUE}/24", f"{CL_ROGUE6}/64")),
        (rg, f"rtegr{t}", (f"{ROGUE_HOST}/24", f"{ROGUE_DNS}/24", f"{ROGUE_HOST6}/64")),
    ):
        for cidr in cidrs:
            # nodad: usable at once (no 1-2 s duplicate address detection wait)
            extra = ["nodad"] if ":" in cidr else []
            run(["ip", "addr", "add", cidr, "dev", dev, *extra], ns=ns)
        run(["ip", "link", "set", dev, "up"], ns=ns)
    # The rogue host is the LAN's router, and answers for any address routed to it (a
    # hijacked resource address included), as an attacker would.
    run(["ip", "route", "add", "default", "via", ROGUE_HOST, "dev", bed.rogue_if], ns=cl)
    run(["ip", "-6", "route", "add", "default", "via", ROGUE_HOST6, "dev", bed.rogue_if], ns=cl)
    # (the company's ranges only: a local 0.0.0.0/0 would swallow its replies too)
    run(["ip", "route", "add", "local", "10.243.0.0/16", "dev", "lo"], ns=rg)
    run(
        ["nft", "-f", "-"],
        ns=rg,
        input=(
            "table inet rtrogue {\n counter leak {}\n counter dns {}\n"
            " chain pre {\n  type filter hook prerouting priority -300; policy accept;\n"
            f'  iifname != "rtegr{t}" accept\n'
            f"  ip daddr {ROGUE_DNS} udp dport 53 counter name dns accept\n"
            f"  ip daddr {ROGUE_DNS} tcp dport 53 counter name dns accept\n"
            "  ip daddr 224.0.0.0/4 accept\n  ip daddr 255.255.255.255 accept\n"
            "  ip6 daddr ff00::/8 accept\n"
            "  icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit,"
            " nd-neighbor-advert, nd-redirect } accept\n"
            "  counter name leak\n }\n}\n"
        ),
    )
    bed.spawn([sys.executable, "-I", "-c", _ROGUE_HTTP], ns=rg)
    _wait_for(
        lambda: run(["ss", "-Hltn", "sport = :80"], ns=rg).stdout.strip() != "",
        what="rogue web server",
    )
    rogue = {name: [ROGUE_HOST, ROGUE_HOST6] for name in RESOURCES}
    texts = None
    if bed.onboarding:
        # The rogue claims the employee's domain: its address, its TXT record, and an
        # https site with a certificate of its own making that points at itself.
        rogue[ONBOARDING_DOMAIN] = [ROGUE_HOST]
        texts = {f"_rustronaut.{ONBOARDING_DOMAIN}": f"url={ROGUE_CONTROLLER}"}
        tls = bed.workdir / "tls"
        _self_signed(tls / "rogue", [ONBOARDING_DOMAIN])
        sites = {ONBOARDING_DOMAIN: [200, json.dumps({"controller_url": ROGUE_CONTROLLER})]}
        bed.spawn(
            [sys.executable, "-I", "-c", _SITE, ROGUE_HOST, str(tls / "rogue.pem"),
             str(tls / "rogue.key"), json.dumps(sites)],
            ns=rg,
        )  # fmt: skip
        _wait_for(
            lambda: run(["ss", "-Hltn", "sport = :443"], ns=rg).stdout.strip() != "",
            what="rogue https site",
        )
    _dns_server(bed, rg, ROGUE_DNS, rogue, any_name=True, texts=texts)


def _build_onboarding(bed: Bed) -> None:
    gw, t = bed.gateway_ns, bed.tag
    for addr in (PUBLIC_DNS, PUBLIC_WEB, OTHER_WEB):
        run(["ip", "addr", "add", f"{addr}/24", "dev", f"rtevg{t}"], ns=gw)
    tls = bed.workdir / "tls"
    _test_ca(tls, [ONBOARDING_DOMAIN, *ONBOARDING_SITES])
    zone = {ONBOARDING_DOMAIN: [PUBLIC_WEB], **{name: [OTHER_WEB] for name in ONBOARDING_SITES}}
    texts = {f"_rustronaut.{domain}": value for domain, value in ONBOARDING_TXT.items()}
    _dns_server(bed, gw, PUBLIC_DNS, zone, any_name=False, texts=texts, suffix="example")
    sites = {host: list(answer) for host, answer in ONBOARDING_SITES.items()}
    bed.spawn(
        [sys.executable, "-I", "-c", _SITE, OTHER_WEB, str(tls / "site.pem"),
         str(tls / "site.key"), json.dumps(sites)],
        ns=gw,
    )  # fmt: skip
    _wait_for(
        lambda: run(["ss", "-Hltn", f"src {OTHER_WEB}"], ns=gw).stdout.strip() != "",
        what="onboarding sites",
    )


def _write_key(path: Path, key: object) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _cert(
    subject: str, key: object, issuer: str, issuer_key: object, names: Sequence[str], *, ca: bool
) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = (
            builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


_CA_NAME = "Rustronaut test bed CA"


def _ca_key(tls: Path) -> object:
    """The test CA's key: ``tls/ca.key`` (with ``tls/ca.pem``), made on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tls.mkdir(mode=0o700, exist_ok=True)
    if (tls / "ca.key").exists():
        return serialization.load_pem_private_key((tls / "ca.key").read_bytes(), None)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    (tls / "ca.pem").write_bytes(_cert(_CA_NAME, ca_key, _CA_NAME, ca_key, (), ca=True))
    _write_key(tls / "ca.key", ca_key)
    return ca_key


def _issue(tls: Path, stem: str, names: Sequence[str]) -> object:
    """``tls/<stem>.{pem,key}``: a server certificate for ``names`` signed by the test CA;
    returns its key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = _ca_key(tls)
    key = ec.generate_private_key(ec.SECP256R1())
    (tls / f"{stem}.pem").write_bytes(_cert(names[0], key, _CA_NAME, ca_key, names, ca=False))
    _write_key(tls / f"{stem}.key", key)
    return key


def _test_ca(tls: Path, names: Sequence[str]) -> None:
    """``tls/ca.pem`` and ``tls/site.{pem,key}``: a test CA and a certificate it signed
    for ``names`` (the onboarding's public sites)."""
    _issue(tls, "site", names)


def _build_relays(bed: Bed) -> None:
    """The relays' addresses, certificates (and key pins), token and the controller's
    relay CA; the processes start with the session (``Bed.start_relays``)."""
    import base64
    import hashlib
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from controller.relayca import RelayCA

    tls = bed.workdir / "tls"
    for i in range(1, bed.relays + 1):
        run(["ip", "addr", "add", f"{bed.relay_address(i)}/24", "dev", f"rtevg{bed.tag}"],
            ns=bed.gateway_ns)  # fmt: skip
        key = _issue(tls, f"relay{i}", [bed.relay_host(i)])
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        (tls / f"relay{i}.pin").write_text(pin + "\n")
    fd = os.open(bed.relay_token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    # The controller makes it at start too; made here so the relays' CA file is known
    # before it runs (load_or_create keeps an existing one).
    bed.controller_keys_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    RelayCA.load_or_create(bed.controller_keys_dir)


def _self_signed(stem: Path, names: Sequence[str]) -> None:
    """``<stem>.pem`` and ``<stem>.key``: a certificate for ``names`` no CA signed (the
    rogue's)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    stem.parent.mkdir(mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    stem.with_suffix(".pem").write_bytes(_cert(names[0], key, names[0], key, names, ca=False))
    _write_key(stem.with_suffix(".key"), key)
