"""The diagnostics zip: real-shaped secrets planted everywhere it reads, none survives.

The engine runs on the in-memory ports (tests/core/engine/ports.py) but its settings,
decision events, snapshot error, tunnel status and the log directory are seeded with
secrets of the exact shapes the client handles: a signed JWT (joserfc), an opaque
refresh token, a WireGuard private key (X25519), a PEM private key, an Authorization
header and URL credentials. Every byte of every zip member is then searched for each
secret and for its distinctive fragments (a JWT's signature, a PEM body line).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from joserfc import jwt
from joserfc.jwk import RSAKey

import core.engine.diag
import core.paths
from core.auth.errors import SecretStoreError
from core.controlplane import ControllerUnreachableError, ControlPlaneClient
from core.engine.diag import write_offline_diagnostics
from core.engine.engine import Engine, EngineConfig
from core.engine.errors import explain
from core.engine.state import EventKind, TunnelView
from core.policy.api import Decision, Effect
from core.settings import load
from tests.core.engine.ports import (
    ALICE,
    Auth,
    Control,
    Device,
    Policy,
    Posture,
    Proxy,
    Tunnel,
)
from wg_backends.errors import HelperUnavailable

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Secrets:
    jwt: str
    refresh: str
    wg_private: str
    pem: str
    basic_password: str

    def fragments(self) -> dict[str, str]:
        """Each secret and the pieces of it that must not appear either."""
        _header, payload, signature = self.jwt.split(".")
        pem_lines = [
            line
            for line in self.pem.splitlines()
            if line and not line.startswith("-----") and len(line) > 16
        ]
        out = {
            "jwt": self.jwt,
            "jwt payload": payload,
            "jwt signature": signature,
            "refresh token": self.refresh,
            "wireguard private key": self.wg_private,
            "wireguard key body": self.wg_private[:40],
            "url password": self.basic_password,
        }
        out.update({f"pem line {i}": line for i, line in enumerate(pem_lines)})
        return out


def _make_secrets() -> Secrets:
    key = RSAKey.generate_key(2048)
    token = jwt.encode(
        {"alg": "RS256", "typ": "JWT", "kid": "k1"},
        {
            "iss": "https://idp.example.com",
            "sub": "u1",
            "aud": "rustronaut",
            "email": "alice@example.com",
            "exp": 2_000_000_000,
        },
        key,
        algorithms=["RS256"],
    )
    wg = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return Secrets(
        jwt=token,
        refresh="rt_9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZqq",
        wg_private=base64.b64encode(wg).decode(),
        pem=pem,
        basic_password="hunter2-Corp-Proxy-Pw",
    )


@dataclass(frozen=True)
class _Setting:
    key: str
    value: object
    source: str = "managed"
    locked: bool = True
    description: str = ""


class _LeakyTunnel(Tunnel):
    """Its status (the helper's view) quotes the interface config, keys included."""

    def __init__(self, s: Secrets) -> None:
        super().__init__()
        self.s = s

    async def status(self) -> TunnelView | None:
        raise RuntimeError(
            f"helper: wg setconf failed for\n[Interface]\nPrivateKey = {self.s.wg_private}\n"
            f"Authorization: Bearer {self.s.refresh}"
        )


@pytest.fixture
def secrets_() -> Secrets:
    return _make_secrets()


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    monkeypatch.setattr(core.paths, "log_dir", lambda: directory)
    return directory


def _engine(s: Secrets) -> Engine:
    clock = lambda: 1_700_000_000.0  # noqa: E731 - a fixed clock
    settings = [
        _Setting("controller_url", f"https://alice:{s.basic_password}@ctl.example.com"),
        _Setting("auth.refresh_token", s.refresh, source="user", locked=False),
        _Setting("wireguard.private_key", s.wg_private),
        _Setting("tls.client_key", s.pem),
        _Setting("http.headers", {"Authorization": f"Bearer {s.jwt}"}),
        _Setting("extra", [f"id_token={s.jwt}", {"refresh_token": s.refresh}]),
        _Setting("proxy_port", 9080, source="default", locked=False),
    ]
    return Engine(
        auth=Auth(ALICE),
        device=Device(),
        control=Control(),
        posture=Posture(),
        policy=Policy(clock),
        tunnel=_LeakyTunnel(s),
        proxy=Proxy(),
        config=EngineConfig(auto_connect=False),
        settings_view=lambda: settings,  # type: ignore[arg-type,return-value]
        clock=clock,
    )


def _seed(engine: Engine, s: Secrets, log_dir: Path) -> None:
    decision = Decision(effect=Effect.DENY, rule_id="r1", reason="denied")
    engine._emit(  # the proxy's path into the engine (on_decision) without a proxy
        EventKind.DECISION,
        f"refused: upstream said 401 to Authorization: Bearer {s.jwt}",
        decision=decision,
        app=f"/usr/bin/curl -H 'Authorization: Bearer {s.refresh}'",
        destination=f"https://bob:{s.basic_password}@wiki.corp:443/?access_token={s.jwt}",
    )
    # A failure whose message quotes what it was handling, explained like any other.
    failure = RuntimeError(
        f'token refresh failed: {{"refresh_token": "{s.refresh}", "id_token": "{s.jwt}"}} '
        f"private_key={s.wg_private}\n{s.pem}"
    )
    engine._update(failed=True, error=explain(failure, during="connecting"))
    (log_dir / "rustronaut.log").write_text(
        "\n".join(
            [
                f"2026-11-27 INFO core.auth: got tokens {s.jwt}",
                f"2026-11-27 DEBUG httpx: Authorization: Bearer {s.jwt}",
                f"2026-11-27 DEBUG core.auth: {{'refresh_token': '{s.refresh}'}}",
                f"2026-11-27 DEBUG helper: [Interface]\nPrivateKey = {s.wg_private}",
                f"2026-11-27 ERROR key: could not load\n{s.pem}",
                f"2026-11-27 INFO proxy: via http://u:{s.basic_password}@proxy.corp:3128",
            ]
        )
        + "\n"
    )
    (log_dir / "rustronaut.log.1").write_text(f"old: refresh_token={s.refresh}&x=1\n")


def _all_text(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name).decode("utf-8", "replace") for name in zf.namelist()}


async def test_no_secret_survives_in_the_zip(
    tmp_path: Path, secrets_: Secrets, log_dir: Path
) -> None:
    engine = _engine(secrets_)
    _seed(engine, secrets_, log_dir)
    # The seeding really put every secret where diagnostics read: else the test proves
    # nothing.
    assert secrets_.jwt in engine.decisions[0].message
    assert secrets_.refresh in (engine.snapshot.error.detail if engine.snapshot.error else "")

    path = await engine.collect_diagnostics(tmp_path / "out")
    members = _all_text(path)
    assert {"settings.json", "snapshot.json", "decisions.json", "tunnel-status.json"} <= set(
        members
    )
    assert {"logs/rustronaut.log", "logs/rustronaut.log.1"} <= set(members)
    leaks = [
        f"{what} in {name}"
        for name, text in members.items()
        for what, fragment in secrets_.fragments().items()
        if fragment in text
    ]
    assert leaks == [], leaks

    # Still useful for IT: non-secret facts are kept, redactions are visible.
    settings = {s["key"]: s for s in json.loads(members["settings.json"])}
    assert settings["proxy_port"]["value"] == 9080
    assert settings["auth.refresh_token"]["source"] == "user"
    assert "ctl.example.com" in settings["controller_url"]["value"]
    assert "REDACTED" in json.dumps(settings["wireguard.private_key"])
    decisions = json.loads(members["decisions.json"])
    assert decisions[0]["rule"] == "r1"
    assert "wiki.corp" in decisions[0]["destination"]
    assert "token refresh failed" in members["snapshot.json"]
    assert "[Interface]" in members["tunnel-status.json"]
    assert "core.auth" in members["logs/rustronaut.log"]


async def test_zip_is_private_even_over_an_existing_file(
    tmp_path: Path, secrets_: Secrets, log_dir: Path
) -> None:
    engine = _engine(secrets_)
    target = tmp_path / "diag.zip"
    target.write_bytes(b"old")
    target.chmod(0o644)
    old_umask = os.umask(0)
    try:
        path = await engine.collect_diagnostics(target)
    finally:
        os.umask(old_umask)
    assert path == target
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert zipfile.is_zipfile(path)
    fresh = await engine.collect_diagnostics(tmp_path / "dir")
    assert fresh.name.startswith("rustronaut-diagnostics-")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


async def test_a_symlink_at_the_destination_is_not_followed(
    tmp_path: Path, secrets_: Secrets, log_dir: Path
) -> None:
    engine = _engine(secrets_)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "diag.zip"
    link.symlink_to(victim)
    with pytest.raises(OSError):
        await engine.collect_diagnostics(link)
    assert victim.read_text() == "keep me"


# ------------------------------------------------- diagnostics when things are broken


class _CountingServer:
    """A real TCP listener on loopback that counts who connects (and answers nothing)."""

    def __init__(self) -> None:
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _CountingServer:
        def on_client(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.accepted += 1
            w.close()

        self._server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._port}"

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def _unreachable_failure() -> ControllerUnreachableError:
    """What building an engine raises when the controller does not answer (for real)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with ControlPlaneClient(f"http://127.0.0.1:{port}") as client:
        try:
            await client.discovery()
        except ControllerUnreachableError as exc:
            return exc
    raise AssertionError("the closed port answered")


async def test_offline_diagnostics_build_nothing_and_contact_nothing(
    tmp_path: Path, secrets_: Secrets, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    (config / "rustronaut").mkdir(parents=True)
    managed = tmp_path / "managed"
    managed.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("RUSTRONAUT_MANAGED_DIR", str(managed))
    (log_dir / "rustronaut.log").write_text(f"ERROR core.auth: refresh_token={secrets_.refresh}\n")
    failure = await _unreachable_failure()
    async with _CountingServer() as controller:
        (config / "rustronaut" / "settings.json").write_text(
            json.dumps({"controller_url": controller.url, "proxy_port": 9181})
        )
        # Quoting a secret the way a careless message might: it must not survive.
        try:
            raise RuntimeError(f'{{"refresh_token": "{secrets_.refresh}"}}') from failure
        except RuntimeError as wrapped:
            error = wrapped
        path = await write_offline_diagnostics(tmp_path / "out", error=error)
        assert controller.accepted == 0

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    members = _all_text(path)
    assert {"versions.json", "settings.json", "failure.json", "logs/rustronaut.log"} <= set(members)
    settings = {s["key"]: s for s in json.loads(members["settings.json"])}
    assert settings["controller_url"]["value"] == controller.url
    assert settings["proxy_port"] == {
        "key": "proxy_port",
        "value": 9181,
        "source": "user",
        "locked": False,
    }
    what = json.loads(members["failure.json"])["error"]
    assert what["error_code"] == "controller_unreachable"
    assert what["title"] == "Controller unreachable"
    assert what["next_step"]
    assert "Traceback" in what["traceback"]  # for IT, not for the employee
    assert json.loads(members["versions.json"])["python"]
    leaks = [n for n, text in members.items() if secrets_.refresh in text]
    assert leaks == []


async def test_offline_diagnostics_with_given_settings_and_no_error(
    tmp_path: Path, log_dir: Path
) -> None:
    user = tmp_path / "settings.json"
    user.write_text(json.dumps({"controller_url": "https://127.0.0.1:9", "proxy_port": 9182}))
    settings = load(managed_sources=(), user_path=user)
    path = await write_offline_diagnostics(tmp_path / "diag.zip", settings=settings)
    assert path == tmp_path / "diag.zip"
    members = _all_text(path)
    rows = {s["key"]: s["value"] for s in json.loads(members["settings.json"])}
    assert rows["proxy_port"] == 9182
    assert json.loads(members["failure.json"]) == {"sections": []}


class _BrokenEverything(Tunnel):
    """The helper is gone: asking it for the tunnel's status fails."""

    async def status(self) -> TunnelView | None:
        raise HelperUnavailable("helper not reachable at /run/rustronaut/helper.sock")


class _HungHelper(Tunnel):
    """The helper accepts but never answers."""

    async def status(self) -> TunnelView | None:
        await asyncio.Event().wait()
        return None


def _broken_engine(tunnel: Tunnel) -> Engine:
    clock = lambda: 1_700_000_000.0  # noqa: E731 - a fixed clock

    def settings() -> list[object]:
        raise SecretStoreError("The keyring is locked.")

    return Engine(
        auth=Auth(ALICE),
        device=Device(),
        control=Control(),
        posture=Posture(),
        policy=Policy(clock),
        tunnel=tunnel,
        proxy=Proxy(),
        config=EngineConfig(auto_connect=False),
        settings_view=settings,  # type: ignore[arg-type]
        clock=clock,
    )


async def test_a_broken_part_is_written_into_the_report_not_raised(
    tmp_path: Path, log_dir: Path
) -> None:
    engine = _broken_engine(_BrokenEverything())
    path = await engine.collect_diagnostics(tmp_path / "out")
    members = _all_text(path)
    assert {"versions.json", "snapshot.json", "decisions.json"} <= set(members)
    assert "settings.json" not in members
    sections = {f["section"]: f for f in json.loads(members["failure.json"])["sections"]}
    assert sections["settings.json"]["title"] == "The keyring could not be used"
    assert sections["settings.json"]["next_step"].startswith("Unlock your keyring")
    assert sections["tunnel-status.json"]["error_code"] == "helper_unavailable"
    assert "not reachable" in json.loads(members["tunnel-status.json"])["error"]


async def test_a_hung_helper_does_not_hang_diagnostics(
    tmp_path: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.engine.diag, "_TUNNEL_TIMEOUT_S", 0.2)
    engine = _broken_engine(_HungHelper())
    path = await asyncio.wait_for(engine.collect_diagnostics(tmp_path / "out"), 10)
    sections = json.loads(_all_text(path)["failure.json"])["sections"]
    assert "tunnel-status.json" in {f["section"] for f in sections}


def test_diagnostics_import_nothing_from_the_cli() -> None:
    """The upward import engine → cli is gone (versions live in core.versions)."""
    source = Path(core.engine.diag.__file__).read_text()
    assert "core.cli" not in source
