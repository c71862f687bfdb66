"""Captive portals: a real loopback HTTP(S) server answers in the controller's place.

The "portal" is a tiny asyncio HTTP/1.1 server that gives every request the same canned
answer (a redirect to its login host, an HTML page, 511), optionally behind TLS with
its own self-signed certificate, the way hotel networks hijack connections. The client
must refuse each answer with ``CaptivePortalError`` and the engine must explain it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from controller.testing import RunningController, run_controller
from core.controlplane import (
    ApiRefusedError,
    CaptivePortalError,
    ControllerUnreachableError,
    ControlPlaneClient,
    ServerError,
)
from core.controlplane.portal import CAPTIVE_PORTAL_MESSAGE, PortalProbe, probe_portal
from core.engine.errors import captive_portal, explain

from .certs import self_signed

pytestmark = pytest.mark.integration

LOGIN = "http://login.portal.test/welcome?orig=controller"
PORTAL_PAGE = b"<!doctype html><html><title>Hotel Wi-Fi</title><form>Room number</form></html>"


def _answer(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


REDIRECT = _answer("302 Found", {"Location": LOGIN})
HTML_200 = _answer("200 OK", {"Content-Type": "text/html; charset=utf-8"}, PORTAL_PAGE)
AUTH_511 = _answer("511 Network Authentication Required", {"Content-Type": "text/plain"})
LB_502 = _answer("502 Bad Gateway", {"Content-Type": "text/html"}, b"<h1>502</h1>")
PROBE_OK = _answer("200 OK", {"Content-Type": "text/plain"}, b"success\n")


class CannedServer:
    """Answers every request with ``answer``; counts requests; optional TLS."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            writer.write(self.answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def canned(answer: bytes, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve ``answer`` on 127.0.0.1; yields the base URL."""
    server_obj = CannedServer(answer)
    server = await asyncio.start_server(server_obj.handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def _portal_tls(tmp: Path) -> ssl.SSLContext:
    """A TLS server context with the portal's own (untrusted) certificate."""
    certfile, keyfile, _ = self_signed(tmp, "127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def _trusting_nothing() -> ssl.SSLContext:
    """A client context that verifies against an empty trust store."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


Call = Callable[[ControlPlaneClient], object]
CALLS: dict[str, Call] = {
    "discovery": lambda c: c.discovery(),
    "bundle": lambda c: c.fetch_bundle("dev_1"),
    "break-glass": lambda c: c.report_break_glass("dev_1", "hotel"),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("answer", "portal_url"),
    [(REDIRECT, LOGIN), (HTML_200, None), (AUTH_511, None)],
    ids=["redirect", "html", "511"],
)
async def test_portal_answers_are_refused(call: str, answer: bytes, portal_url: str | None) -> None:
    async with canned(answer) as url, ControlPlaneClient(url, proxy=None) as client:
        with pytest.raises(CaptivePortalError) as caught:
            await CALLS[call](client)  # type: ignore[misc]
    assert caught.value.portal_url == portal_url
    assert isinstance(caught.value, ControllerUnreachableError)  # offline, never valid
    assert caught.value.user_message == CAPTIVE_PORTAL_MESSAGE


async def test_event_stream_from_a_portal_is_refused() -> None:
    async with canned(REDIRECT) as url, ControlPlaneClient(url, proxy=None) as client:
        stream = client.events("dev_1")
        with pytest.raises(CaptivePortalError):
            await anext(stream)  # nothing is yielded from a portal's answer


async def test_a_load_balancer_error_page_is_not_a_portal() -> None:
    async with canned(LB_502) as url, ControlPlaneClient(url, proxy=None) as client:
        with pytest.raises(ServerError):
            await client.discovery()


async def test_a_redirect_within_the_controller_is_not_a_portal() -> None:
    same = _answer("301 Moved", {"Location": "/v2/elsewhere"})
    async with canned(same) as url, ControlPlaneClient(url, proxy=None) as client:
        with pytest.raises(ApiRefusedError) as caught:
            await client.discovery()
    assert caught.value.status == 301


async def test_tls_interception_with_a_hijacked_probe_is_a_portal(tmp_path: Path) -> None:
    tls = _portal_tls(tmp_path)
    async with (
        canned(HTML_200, tls=tls) as controller,
        canned(REDIRECT) as probe_host,
    ):
        probe = PortalProbe(f"{probe_host}/canonical.html", 200, b"success")
        async with ControlPlaneClient(
            controller, proxy=None, verify=_trusting_nothing(), portal_probe=probe
        ) as client:
            with pytest.raises(CaptivePortalError) as caught:
                await client.discovery()
    assert caught.value.portal_url == LOGIN


async def test_tls_failure_with_an_open_network_is_not_a_portal(tmp_path: Path) -> None:
    tls = _portal_tls(tmp_path)
    async with canned(HTML_200, tls=tls) as controller, canned(PROBE_OK) as probe_host:
        probe = PortalProbe(f"{probe_host}/canonical.html", 200, b"success")
        async with ControlPlaneClient(
            controller, proxy=None, verify=_trusting_nothing(), portal_probe=probe
        ) as client:
            with pytest.raises(ControllerUnreachableError) as caught:
                await client.discovery()
    assert not isinstance(caught.value, CaptivePortalError)
    assert "certificate" in str(caught.value).lower()


async def test_without_a_probe_tls_failure_stays_unreachable(tmp_path: Path) -> None:
    async with canned(HTML_200, tls=_portal_tls(tmp_path)) as controller:
        async with ControlPlaneClient(controller, proxy=None, verify=_trusting_nothing()) as c:
            with pytest.raises(ControllerUnreachableError) as caught:
                await c.discovery()
    assert not isinstance(caught.value, CaptivePortalError)


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (PROBE_OK, "open"),
        (REDIRECT, "portal"),
        (HTML_200, "portal"),
        (AUTH_511, "portal"),
    ],
)
async def test_probe_verdicts(answer: bytes, verdict: str) -> None:
    async with canned(answer) as host:
        result = await probe_portal(PortalProbe(f"{host}/p", 200, b"success"))
    assert result.verdict == verdict


async def test_probe_that_cannot_connect_is_unknown() -> None:
    async with canned(PROBE_OK) as host:
        pass  # closed: nothing listens there any more
    result = await probe_portal(PortalProbe(f"{host}/p", timeout_s=2.0))
    assert result.verdict == "unknown"


async def test_engine_explains_a_portal_behind_the_offline_mapping() -> None:
    async with canned(REDIRECT) as url, ControlPlaneClient(url, proxy=None) as client:
        try:
            await client.fetch_bundle("dev_1")
        except CaptivePortalError as exc:
            # What core/engine/wiring.py does with any unreachable error.
            try:
                raise ConnectionError(str(exc)) from exc
            except ConnectionError as offline:
                wrapped: BaseException = offline
    assert captive_portal(wrapped) is not None
    info = explain(wrapped, during="connecting")
    assert info.detail.startswith(CAPTIVE_PORTAL_MESSAGE)
    assert LOGIN in info.detail
    assert "browser" in info.next_step


async def test_the_real_controller_is_not_mistaken_for_a_portal() -> None:
    rc: RunningController
    async with run_controller() as rc, ControlPlaneClient(rc.base_url) as client:
        disc = await client.discovery()
    assert disc.issuer == rc.issuer
