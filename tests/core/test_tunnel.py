"""core.tunnel.TunnelClient and ``rustronaut tunnel`` against an in-process helper."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from core.cli.commands.tunnel import format_status
from core.cli.main import main as cli_main
from core.tunnel import TunnelClient
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import HelperRefused, HelperUnavailable, SpecError
from wg_backends.spec import PeerSpec, TunnelSpec
from wg_backends.status import PeerStatus, TunnelStatus

pytestmark = pytest.mark.integration


def spec(name: str = "rtw0", key: str | None = PRIV) -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        private_key=key,
    )


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Running]:
    r = serve_in_thread(tmp_path)
    yield r
    r.stop()


def _wait(cond: object) -> bool:
    ev = threading.Event()
    for _ in range(500):
        if cond():  # type: ignore[operator]
            return True
        ev.wait(0.02)
    return False


@plain_asyncio
async def test_hello_up_status_down(helper: Running) -> None:
    client = TunnelClient(helper.socket)
    info = await client.hello()
    assert info.protocol == 1
    assert info.helper == "rustronaut-helper"
    assert not (await client.status()).up
    st = await client.up(spec())
    assert st.up
    assert client.interface == "rtw0"
    assert (await client.status()).interface == "rtw0"
    await client.down()
    await client.down()  # idempotent
    assert client.interface is None
    assert helper.backend.downs == ["rtw0"]
    await client.close()


@plain_asyncio
async def test_up_without_key_refused_locally(helper: Running) -> None:
    client = TunnelClient(helper.socket)
    with pytest.raises(SpecError, match="private_key"):
        await client.up(spec(key=None))
    assert helper.backend.up_ifaces == {}
    await client.close()


@plain_asyncio
async def test_switching_interface_downs_the_old_one(helper: Running) -> None:
    client = TunnelClient(helper.socket)
    await client.up(spec("rtw0"))
    await client.up(spec("rtw1"))
    assert helper.backend.downs == ["rtw0"]
    assert set(helper.backend.up_ifaces) == {"rtw1"}
    await client.close()
    assert await asyncio.to_thread(_wait, lambda: helper.backend.up_ifaces == {})


@plain_asyncio
async def test_no_helper(tmp_path: Path) -> None:
    with pytest.raises(HelperUnavailable, match="not reachable"):
        await TunnelClient(tmp_path / "nope.sock", timeout=2).hello()


@plain_asyncio
async def test_another_client_cannot_take_an_owned_tunnel(helper: Running) -> None:
    client = TunnelClient(helper.socket)
    await client.up(spec())
    helper.backend.up_ifaces.clear()  # the backend lost it behind our back
    other = TunnelClient(helper.socket)
    with pytest.raises(HelperRefused):
        await other.up(spec())
    await other.close()
    await client.close()


def test_format_status() -> None:
    st = TunnelStatus(
        interface="rtw0",
        up=True,
        backend="wg-quick",
        peers=(
            PeerStatus(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=(),
                       latest_handshake=100, handshake_age=12.4, rx_bytes=5, tx_bytes=7,
                       persistent_keepalive=None),
        ),
    )  # fmt: skip
    text = format_status(st)
    assert "10.231.0.1:51820" in text
    assert "12 s ago" in text
    assert "received    5 B" in text
    assert format_status(TunnelStatus(interface="rtw0", up=False, backend="x")) == "rtw0: down"


def test_cli_hello_status_down_check(
    helper: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = str(helper.socket)
    assert cli_main(["tunnel", "--socket", sock, "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"] == 1
    assert cli_main(["tunnel", "--socket", sock, "status", "rtw0"]) == 1  # no such tunnel
    assert "No tunnel named rtw0" in capsys.readouterr().err
    assert cli_main(["tunnel", "--socket", sock, "down", "rtw0"]) == 1
    assert "not_up" in capsys.readouterr().err
    path = tmp_path / "spec.json"
    path.write_bytes(msgspec.json.encode(spec(key=None)))
    assert cli_main(["tunnel", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PrivateKey = <private key>" in out
    assert "AllowedIPs = 10.233.0.0/24" in out
    path.write_text('{"interface": "x\\nPostUp", "addresses": [], "peers": []}')
    assert cli_main(["tunnel", "check", str(path)]) == 1
    assert "interface" in capsys.readouterr().err
