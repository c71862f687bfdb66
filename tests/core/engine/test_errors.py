"""``explain``: every failure becomes a title, a detail and a next step."""

from __future__ import annotations

import ssl

import httpx
import pytest

from core.controlplane import CaptivePortalError, ControllerUnreachableError, ProxyFailedError
from core.controlplane.portal import CAPTIVE_PORTAL_MESSAGE
from core.engine.errors import AlwaysOnError, captive_portal, explain

pytestmark = pytest.mark.unit


def _wrapped(exc: BaseException) -> BaseException:
    """What the control adapter does: unreachable → ConnectionError from the original."""
    try:
        raise ConnectionError(str(exc)) from exc
    except ConnectionError as offline:
        return offline


def test_captive_portal_direct_and_behind_the_offline_mapping() -> None:
    portal = CaptivePortalError("GET /x: redirected", portal_url="http://login.hotel.test/")
    for exc in (portal, _wrapped(portal)):
        assert captive_portal(exc) is portal
        info = explain(exc, during="connecting")
        assert info.title == "Sign in to the Wi-Fi network"
        assert info.detail.startswith(CAPTIVE_PORTAL_MESSAGE)
        assert "http://login.hotel.test/" in info.detail
        assert "browser" in info.next_step
    no_url = explain(CaptivePortalError("html"), during="connecting")
    assert no_url.detail == CAPTIVE_PORTAL_MESSAGE + "."


def test_proxy_failure_names_the_proxy_and_its_source() -> None:
    err = ProxyFailedError(
        "GET /: connect failed", proxy="http://px.corp:3128", source="GNOME proxy settings"
    )
    info = explain(_wrapped(err), during="connecting")
    assert info.title == "The proxy did not get through"
    assert "http://px.corp:3128" in info.detail
    assert "GNOME proxy settings" in info.detail
    assert "proxy" in info.next_step


def test_plain_unreachable_is_not_a_portal() -> None:
    exc = _wrapped(ControllerUnreachableError("GET /: connection refused"))
    assert captive_portal(exc) is None
    assert explain(exc, during="connecting").title == "Controller unreachable"


def test_other_failures_keep_their_messages() -> None:
    assert explain(AlwaysOnError("no"), during="disconnecting").title.startswith("Always-on")
    tls = explain(ssl.SSLCertVerificationError("certificate verify failed"), during="x")
    assert tls.title == "Secure connection failed"
    assert explain(httpx.ConnectError("refused"), during="x").title == "Controller unreachable"
    generic = explain(ValueError("odd"), during="applying a policy update")
    assert generic.title == "Problem while applying a policy update"
    assert "odd" in generic.detail
    assert "ValueError" not in generic.detail
    assert "diagnostics" in generic.next_step
    assert generic.code == "internal"


def test_a_cause_cycle_does_not_hang() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert captive_portal(a) is None
    assert explain(a, during="x").detail == "Something unexpected went wrong: a"
