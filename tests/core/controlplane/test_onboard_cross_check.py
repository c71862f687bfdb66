"""Two sources that disagree are refused; an untrusted certificate is not routed around.

``discover`` confirms a web answer with the domain's TXT record (when DNS answers), and
treats a web site whose certificate fails verification as refused, not as "down": the
DNS fallback would otherwise hand the choice to whoever impersonates the site.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence

import httpx
import pytest

import core.controlplane.onboard as onboard
from core.controlplane.onboard import Fetched, FoundBy, RecordRefusedError, discover

CTL = "https://zt.example.com"


class Net:
    """Scripted web and DNS, recording what was asked."""

    def __init__(self, web: Fetched | Exception, dns: Sequence[str] | Exception = ()) -> None:
        self.web, self.dns = web, dns
        self.asked: list[str] = []

    async def fetch(self, url: str) -> Fetched:
        self.asked.append(url)
        if isinstance(self.web, Exception):
            raise self.web
        return self.web

    async def resolve(self, name: str) -> Sequence[str]:
        self.asked.append(name)
        if isinstance(self.dns, Exception):
            raise self.dns
        return self.dns


def _record(url: str) -> Fetched:
    return Fetched(200, json.dumps({"controller_url": url}).encode())


async def test_a_txt_record_naming_another_controller_is_refused_in_words() -> None:
    net = Net(_record(CTL), ["url=https://elsewhere.example"])
    with pytest.raises(RecordRefusedError) as caught:
        await discover("alice@example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert caught.value.detail == (
        "example.com names two different controllers: 'https://zt.example.com' on its web "
        "site and 'https://elsewhere.example' in its DNS records."
    )
    assert caught.value.next_step


@pytest.mark.parametrize(
    "records",
    [
        ["url=https://zt.example.com"],
        ["url=https://ZT.example.com/"],  # the same controller, written differently
        [],  # DNS names nothing: the web answer stands
        ["v=other-tool"],
    ],
)
async def test_a_txt_record_that_agrees_or_says_nothing_confirms(records: list[str]) -> None:
    net = Net(_record(CTL), records)
    found = await discover("alice@example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert (found.url, found.by) == (CTL, FoundBy.WEB)


async def test_a_failing_dns_does_not_spoil_the_web_answer() -> None:
    net = Net(_record(CTL), OSError("DNS lookup failed"))
    assert (await discover("example.com", fetch=net.fetch, resolve_txt=net.resolve)).url == CTL


async def test_a_slow_dns_does_not_hold_up_the_web_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(onboard, "CROSS_CHECK_S", 0.05)
    never = asyncio.Event()

    async def stalled(name: str) -> Sequence[str]:
        await never.wait()
        return []

    net = Net(_record(CTL))
    assert (await discover("example.com", fetch=net.fetch, resolve_txt=stalled)).url == CTL


def _tls_failure() -> httpx.ConnectError:
    """What httpx raises for a certificate that does not verify (the cause chained)."""
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
        except ssl.SSLCertVerificationError as exc:
            raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]") from exc
    except httpx.ConnectError as outer:
        return outer


async def test_an_untrusted_certificate_is_refused_without_asking_dns() -> None:
    net = Net(_tls_failure(), ["url=https://rogue.example"])
    with pytest.raises(RecordRefusedError) as caught:
        await discover("alice@example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert "certificate Rustronaut does not trust" in caught.value.detail
    assert net.asked == ["https://example.com/.well-known/rustronaut"]


async def test_a_site_that_is_down_still_falls_back_to_dns() -> None:
    net = Net(httpx.ConnectError("[Errno 111] Connection refused"), ["url=" + CTL])
    found = await discover("example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert (found.url, found.by) == (CTL, FoundBy.DNS)
