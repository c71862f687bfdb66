"""Reaching the controller through proxies: environment, OS settings, PAC — for real.

OS settings are read through an injected runner that asserts the exact argv and
answers with outputs captured from the real tools (gsettings here; the Windows ``reg
query`` and macOS ``scutil --proxy`` texts are in their documented formats). The
network part is real: an HTTPS controller at ``controller.test`` (a name only our proxy
knows), reached through a loopback HTTP CONNECT proxy that sends every name to this
machine and records what it was asked; and pproxy as a plain forward proxy.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.config import ControllerConfig, IssuerConfig, hash_admin_token
from controller.testing import build, listen_socket, run_controller, serve_app
from core.controlplane import ControllerUnreachableError, ControlPlaneClient, ProxyFailedError
from core.controlplane.proxy import (
    GSETTINGS,
    WINDOWS_INTERNET_SETTINGS,
    ProxyChoice,
    SystemProxy,
    parse_pac_answer,
    parse_reg_query,
    parse_scutil_proxy,
    redact_proxy_url,
    resolve_proxy,
    system_proxy,
)
from core.engine.errors import explain

from .certs import self_signed

pytestmark = pytest.mark.integration

# ------------------------------------------------------------------ captured outputs
# Real `gsettings get ...` outputs (GSETTINGS_BACKEND=keyfile, Debian 12 gsettings 2.74).
GS_MANUAL = {
    ("org.gnome.system.proxy", "mode"): "'manual'\n",
    ("org.gnome.system.proxy", "ignore-hosts"): (
        "['localhost', '127.0.0.0/8', '::1', '*.internal.example', '10.0.0.0/8']\n"
    ),
    ("org.gnome.system.proxy.https", "host"): "'proxy.corp.example'\n",
    ("org.gnome.system.proxy.https", "port"): "3128\n",
    ("org.gnome.system.proxy.http", "host"): "'web-proxy.corp.example'\n",
    ("org.gnome.system.proxy.http", "port"): "8080\n",
}
GS_NONE = {("org.gnome.system.proxy", "mode"): "'none'\n"}

REG_QUERY_MANUAL = rf"""
{WINDOWS_INTERNET_SETTINGS.replace("HKCU", "HKEY_CURRENT_USER")}
    DisableCachingOfSSLPages    REG_DWORD    0x0
    IE5_UA_Backup_Flag    REG_SZ    5.0
    PrivacyAdvanced    REG_DWORD    0x1
    ProxyEnable    REG_DWORD    0x1
    ProxyServer    REG_SZ    http=web-proxy.corp.example:8080;https=proxy.corp.example:3128
    ProxyOverride    REG_SZ    *.internal.example;<local>
    EnableNegotiate    REG_DWORD    0x1

"""
REG_QUERY_PAC = REG_QUERY_MANUAL.replace(
    "    EnableNegotiate",
    "    AutoConfigURL    REG_SZ    http://wpad.corp.example/proxy.pac\n    EnableNegotiate",
)
REG_QUERY_OFF = REG_QUERY_MANUAL.replace(
    "ProxyEnable    REG_DWORD    0x1", "ProxyEnable    REG_DWORD    0x0"
)

SCUTIL_MANUAL = """<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : 169.254/16
    2 : *.internal.example
  }
  FTPPassive : 1
  HTTPEnable : 1
  HTTPPort : 8080
  HTTPProxy : web-proxy.corp.example
  HTTPSEnable : 1
  HTTPSPort : 3128
  HTTPSProxy : proxy.corp.example
}
"""
SCUTIL_PAC = """<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
  }
  FTPPassive : 1
  HTTPEnable : 0
  HTTPSEnable : 0
  ProxyAutoConfigEnable : 1
  ProxyAutoConfigURLString : http://wpad.corp.example/proxy.pac
}
"""


@dataclass(frozen=True)
class _Res:
    returncode: int
    stdout: str


class GsettingsRunner:
    """Answers ``gsettings get SCHEMA KEY`` from captured outputs; records every argv."""

    def __init__(self, answers: dict[tuple[str, str], str]) -> None:
        self.answers = answers
        self.argvs: list[tuple[str, ...]] = []

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> _Res:
        self.argvs.append(tuple(argv))
        assert argv[:2] == [GSETTINGS, "get"] or tuple(argv[:2]) == (GSETTINGS, "get")
        out = self.answers.get((argv[2], argv[3]))
        if out is None:
            return _Res(1, "")
        return _Res(0, out)


class OneShotRunner:
    def __init__(self, argv: tuple[str, ...], out: str, rc: int = 0) -> None:
        self.expected, self.out, self.rc = argv, out, rc
        self.argvs: list[tuple[str, ...]] = []

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> _Res:
        self.argvs.append(tuple(argv))
        assert tuple(argv) == self.expected
        return _Res(self.rc, self.out)


class MissingTool:
    async def run(self, argv: Sequence[str], *, timeout_s: float) -> _Res:
        raise FileNotFoundError(argv[0])


# ------------------------------------------------------------------ parsing, pure
async def test_gsettings_manual_exact_argv() -> None:
    runner = GsettingsRunner(GS_MANUAL)
    got = await system_proxy(runner, platform="linux")
    assert got == SystemProxy(
        "manual",
        "GNOME proxy settings (manual)",
        https="proxy.corp.example:3128",
        http="web-proxy.corp.example:8080",
        bypass=("localhost", "127.0.0.0/8", "::1", "*.internal.example", "10.0.0.0/8"),
    )
    assert runner.argvs == [
        (GSETTINGS, "get", "org.gnome.system.proxy", "mode"),
        (GSETTINGS, "get", "org.gnome.system.proxy", "ignore-hosts"),
        (GSETTINGS, "get", "org.gnome.system.proxy.https", "host"),
        (GSETTINGS, "get", "org.gnome.system.proxy.https", "port"),
        (GSETTINGS, "get", "org.gnome.system.proxy.http", "host"),
        (GSETTINGS, "get", "org.gnome.system.proxy.http", "port"),
    ]


async def test_gsettings_none_missing_or_broken_means_direct() -> None:
    assert (await system_proxy(GsettingsRunner(GS_NONE), platform="linux")).mode == "none"
    assert (await system_proxy(GsettingsRunner({}), platform="linux")).mode == "none"
    assert (await system_proxy(MissingTool(), platform="linux")).mode == "none"
    garbage = {("org.gnome.system.proxy", "mode"): "(((\n"}
    assert (await system_proxy(GsettingsRunner(garbage), platform="linux")).mode == "none"


def test_windows_registry() -> None:
    manual = parse_reg_query(REG_QUERY_MANUAL)
    assert (manual.mode, manual.https, manual.http) == (
        "manual",
        "proxy.corp.example:3128",
        "web-proxy.corp.example:8080",
    )
    assert manual.bypass == ("*.internal.example", "<local>")
    assert parse_reg_query(REG_QUERY_PAC).pac_url == "http://wpad.corp.example/proxy.pac"
    assert parse_reg_query(REG_QUERY_OFF).mode == "none"
    assert parse_reg_query("ERROR: nonsense").mode == "none"
    single = parse_reg_query(
        REG_QUERY_MANUAL.replace(
            "http=web-proxy.corp.example:8080;https=proxy.corp.example:3128", "px.corp:80"
        )
    )
    assert (single.https, single.http) == ("px.corp:80", "px.corp:80")


async def test_windows_and_macos_exact_argv() -> None:
    reg = OneShotRunner(("reg", "query", WINDOWS_INTERNET_SETTINGS), REG_QUERY_MANUAL)
    assert (await system_proxy(reg, platform="win32")).https == "proxy.corp.example:3128"
    mac = OneShotRunner(("scutil", "--proxy"), SCUTIL_MANUAL)
    assert (await system_proxy(mac, platform="darwin")).https == "proxy.corp.example:3128"
    failed = OneShotRunner(("scutil", "--proxy"), "", rc=1)
    assert (await system_proxy(failed, platform="darwin")).mode == "none"


def test_macos_scutil() -> None:
    manual = parse_scutil_proxy(SCUTIL_MANUAL)
    assert manual.mode == "manual"
    assert manual.https == "proxy.corp.example:3128"
    assert manual.bypass == ("*.local", "169.254/16", "*.internal.example")
    pac = parse_scutil_proxy(SCUTIL_PAC)
    assert (pac.mode, pac.pac_url) == ("auto", "http://wpad.corp.example/proxy.pac")
    assert parse_scutil_proxy("<dictionary> {\n}\n").mode == "none"


def test_pac_answers() -> None:
    assert parse_pac_answer("PROXY p.corp:3128; DIRECT") == "http://p.corp:3128"
    assert parse_pac_answer("SOCKS s:1080; HTTPS h:443") == "https://h:443"
    assert parse_pac_answer(" DIRECT ") is None
    with pytest.raises(ValueError, match="no usable"):
        parse_pac_answer("SOCKS5 s:1080")


def test_credentials_are_not_shown() -> None:
    assert redact_proxy_url("http://u:s3cret@p.corp:3128") == "http://***@p.corp:3128"
    assert redact_proxy_url("http://p.corp:3128") == "http://p.corp:3128"


async def test_resolution_order() -> None:
    none = GsettingsRunner(GS_NONE)
    manual = GsettingsRunner(GS_MANUAL)
    url = "https://ctl.example.com"
    env = {"HTTPS_PROXY": "envproxy:3128"}
    assert await resolve_proxy(url, env=env, runner=manual, platform="linux") == ProxyChoice(
        "http://envproxy:3128", "HTTPS_PROXY environment variable"
    )
    assert manual.argvs == []  # the environment wins without asking the OS
    lower = {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"}
    assert (await resolve_proxy(url, env=lower, runner=none)).url == "http://low:1"
    bypass = {**env, "NO_PROXY": ".example.com,localhost"}
    assert (await resolve_proxy(url, env=bypass, runner=none)).url is None
    assert (await resolve_proxy("http://ctl.example.com", env=env, runner=none)).url is None
    assert (
        await resolve_proxy("http://ctl.example.com", env={"ALL_PROXY": "a:1"}, runner=none)
    ).url == "http://a:1"
    chosen = await resolve_proxy(url, env={}, runner=manual, platform="linux")
    assert chosen == ProxyChoice("http://proxy.corp.example:3128", "GNOME proxy settings (manual)")
    http = await resolve_proxy("http://ctl.example.com", env={}, runner=manual, platform="linux")
    assert http.url == "http://web-proxy.corp.example:8080"
    for excepted in ("https://wiki.internal.example", "https://10.1.2.3"):
        got = await resolve_proxy(excepted, env={}, runner=manual, platform="linux")
        assert got.url is None, excepted
    win = OneShotRunner(("reg", "query", WINDOWS_INTERNET_SETTINGS), REG_QUERY_MANUAL)
    assert (
        await resolve_proxy("https://intranet", env={}, runner=win, platform="win32")
    ).url is None
    # A loopback controller never goes through a proxy (tests, a local dev controller).
    for local in ("http://127.0.0.1:8443", "https://[::1]:1", "http://localhost:9"):
        assert (await resolve_proxy(local, env=env, runner=manual)).url is None


# ------------------------------------------------------------------ real network
class MappingConnectProxy:
    """An HTTP CONNECT proxy on loopback that sends every host name to 127.0.0.1."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.seen: list[str] = []

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        line = head.split(b"\r\n", 1)[0].decode()
        self.seen.append(line)
        method, target, _ = line.split(" ", 2)
        if self.refuse or method != "CONNECT":
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        _host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))


@asynccontextmanager
async def mapping_proxy(*, refuse: bool = False) -> AsyncIterator[tuple[str, MappingConnectProxy]]:
    proxy = MappingConnectProxy(refuse=refuse)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", proxy
    finally:
        server.close()
        await server.wait_closed()


def _cert_for(tmp: Path, name: str) -> tuple[Path, Path]:
    certfile, keyfile, _ = self_signed(tmp, name)
    return certfile, keyfile


@pytest.fixture
async def named_controller(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A real controller over TLS as https://controller.test:<port> (not resolvable)."""
    certfile, keyfile = _cert_for(tmp_path, "controller.test")
    sock = listen_socket("127.0.0.1", 0)
    base = f"https://controller.test:{sock.getsockname()[1]}"
    cfg = ControllerConfig(
        admin_token_sha256=hash_admin_token("x"),
        keys_dir=str(tmp_path / "keys"),
        database=f"sqlite://{tmp_path / 'c.db'}",
        client_id="desktop",
        issuers=(IssuerConfig(issuer="https://idp.example", audiences=("api",)),),
    )
    app, service, _dev, _iss = build(cfg, base_url=base)
    try:
        async with serve_app(app, sock, certfile=str(certfile), keyfile=str(keyfile)):
            yield base, certfile
    finally:
        service.storage.close()
        sock.close()


async def test_https_proxy_env_reaches_the_controller(
    named_controller: tuple[str, Path],
) -> None:
    base, certfile = named_controller
    trust = ssl.create_default_context(cafile=str(certfile))
    async with mapping_proxy() as (proxy_url, proxy):
        env = {"HTTPS_PROXY": proxy_url, "NO_PROXY": "localhost"}
        async with ControlPlaneClient(base, verify=trust, proxy_env=env) as client:
            disc = await client.discovery()
            assert client.proxy == ProxyChoice(proxy_url, "HTTPS_PROXY environment variable")
    assert disc.client_id == "desktop"
    port = base.rsplit(":", 1)[1]
    assert proxy.seen == [f"CONNECT controller.test:{port} HTTP/1.1"]


async def test_pac_from_gnome_settings_reaches_the_controller(
    named_controller: tuple[str, Path],
) -> None:
    base, certfile = named_controller
    trust = ssl.create_default_context(cafile=str(certfile))
    async with mapping_proxy() as (proxy_url, proxy):
        pac = (
            "function FindProxyForURL(url, host) {{\n"
            '  if (isPlainHostName(host) || dnsDomainIs(host, ".internal.example"))\n'
            '    return "DIRECT";\n'
            '  if (shExpMatch(host, "*.test")) return "PROXY {}; DIRECT";\n'
            '  return "DIRECT";\n'
            "}}\n"
        ).format(proxy_url.removeprefix("http://"))
        body = pac.encode()
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        pac_server = await asyncio.start_server(
            lambda r, w: _serve_once(r, w, answer), "127.0.0.1", 0
        )
        pac_url = f"http://127.0.0.1:{pac_server.sockets[0].getsockname()[1]}/proxy.pac"
        runner = GsettingsRunner(
            {
                ("org.gnome.system.proxy", "mode"): "'auto'\n",
                ("org.gnome.system.proxy", "autoconfig-url"): f"'{pac_url}'\n",
            }
        )
        try:
            async with ControlPlaneClient(
                base, verify=trust, proxy_env={}, proxy_runner=runner
            ) as client:
                disc = await client.discovery()
                assert client.proxy is not None
                assert client.proxy.url == proxy_url
                assert pac_url in client.proxy.source
        finally:
            pac_server.close()
            await pac_server.wait_closed()
    assert disc.client_id == "desktop"
    assert len(proxy.seen) == 1
    assert proxy.seen[0].startswith("CONNECT controller.test:")
    assert runner.argvs == [
        (GSETTINGS, "get", "org.gnome.system.proxy", "mode"),
        (GSETTINGS, "get", "org.gnome.system.proxy", "autoconfig-url"),
    ]


async def _serve_once(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
    finally:
        writer.close()


async def test_unusable_pac_goes_direct_and_says_why() -> None:
    runner = GsettingsRunner(
        {
            ("org.gnome.system.proxy", "mode"): "'auto'\n",
            ("org.gnome.system.proxy", "autoconfig-url"): "'file:///nonexistent/proxy.pac'\n",
        }
    )
    got = await resolve_proxy("https://ctl.example.com", env={}, runner=runner, platform="linux")
    assert got.url is None
    assert "unusable" in got.source


async def test_without_pypac_pac_is_reported_not_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "proxy.pac"
    script.write_text('function FindProxyForURL(u, h) { return "PROXY p:1"; }')
    runner = GsettingsRunner(
        {
            ("org.gnome.system.proxy", "mode"): "'auto'\n",
            ("org.gnome.system.proxy", "autoconfig-url"): f"'file://{script}'\n",
        }
    )
    got = await resolve_proxy("https://ctl.example.com", env={}, runner=runner, platform="linux")
    assert got.url == "http://p:1"
    monkeypatch.setitem(sys.modules, "pypac.parser", None)  # as if pypac were not installed
    got = await resolve_proxy("https://ctl.example.com", env={}, runner=runner, platform="linux")
    assert got.url is None
    assert "pypac is not installed" in got.source


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_dead_proxy_is_a_clear_error(named_controller: tuple[str, Path]) -> None:
    base, certfile = named_controller
    trust = ssl.create_default_context(cafile=str(certfile))
    dead = f"http://corp:s3cret-pw@127.0.0.1:{_closed_port()}"
    async with ControlPlaneClient(base, verify=trust, proxy_env={"HTTPS_PROXY": dead}) as c:
        with pytest.raises(ProxyFailedError) as caught:
            await c.discovery()
    err = caught.value
    assert isinstance(err, ControllerUnreachableError)  # offline: cached bundle kept
    assert err.source == "HTTPS_PROXY environment variable"
    assert "s3cret-pw" not in str(err)
    assert "s3cret-pw" not in err.proxy
    wrapped: BaseException
    try:
        raise ConnectionError(str(err)) from err
    except ConnectionError as exc:
        wrapped = exc
    info = explain(wrapped, during="connecting")
    assert "proxy" in info.title.lower()
    assert "HTTPS_PROXY" in info.detail
    assert "s3cret-pw" not in info.detail


async def test_a_refusing_proxy_is_a_clear_error(named_controller: tuple[str, Path]) -> None:
    base, certfile = named_controller
    trust = ssl.create_default_context(cafile=str(certfile))
    async with mapping_proxy(refuse=True) as (proxy_url, proxy):
        async with ControlPlaneClient(
            base, verify=trust, proxy_env={"https_proxy": proxy_url}
        ) as client:
            with pytest.raises(ProxyFailedError, match="403"):
                await client.discovery()
    assert proxy.seen
    assert proxy.seen[0].startswith("CONNECT controller.test:")


@pytest.fixture
def pproxy() -> Iterator[str]:
    """pproxy as a plain HTTP forward proxy on loopback."""
    exe = shutil.which("pproxy", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("pproxy is not installed")
    port = _closed_port()
    proc = subprocess.Popen(
        [exe, "-l", f"http://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("pproxy exited")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_explicit_proxy_through_pproxy(pproxy: str) -> None:
    async with run_controller() as rc, ControlPlaneClient(rc.base_url, proxy=pproxy) as client:
        disc = await client.discovery()
        assert client.proxy is not None
        assert client.proxy.url == pproxy
    assert disc.issuer == rc.issuer
    # Only the loopback exception keeps the same controller direct under HTTPS_PROXY.
    async with run_controller() as rc:
        env = {"HTTP_PROXY": "http://127.0.0.1:9"}
        async with ControlPlaneClient(rc.base_url, proxy_env=env) as client:
            assert (await client.discovery()).issuer == rc.issuer
            assert client.proxy is not None
            assert client.proxy.url is None

    # The explicit proxy really is used: a dead one fails, naming itself.
    dead = f"http://127.0.0.1:{_closed_port()}"
    async with run_controller() as rc, ControlPlaneClient(rc.base_url, proxy=dead) as client:
        with pytest.raises(ProxyFailedError, match=r"127\.0\.0\.1"):
            await client.discovery()
