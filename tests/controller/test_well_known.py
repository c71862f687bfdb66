"""The reference controller's ``/.well-known/rustronaut`` is an onboarding record.

An employee who types the controller's address (or an email at a domain the controller
serves) finds it through ``core.controlplane.onboard.discover``, over real HTTP on
loopback: the controller's discovery document means "this address is the controller".
"""

from __future__ import annotations

import pytest

from controller.testing import run_controller
from core.controlplane.onboard import FoundBy, NotPublishedError, discover, http_fetcher

pytestmark = pytest.mark.integration


async def _no_dns(name: str) -> list[str]:
    raise AssertionError(f"DNS asked for {name}: the web record should have answered")


async def test_the_reference_controller_serves_the_discovery_record() -> None:
    async with run_controller() as ctl:
        found = await discover(ctl.base_url, fetch=http_fetcher(), resolve_txt=_no_dns)
    assert found.url == ctl.base_url
    assert found.by is FoundBy.WEB
    assert found.how == "Published by 127.0.0.1 on its web site."


async def test_an_email_at_the_controllers_address_finds_it() -> None:
    async with run_controller() as ctl:
        host = ctl.base_url.removeprefix("http://")
        found = await discover(f"http://{host}", fetch=http_fetcher(), resolve_txt=_no_dns)
        assert found.url == ctl.base_url
        raw = await http_fetcher()(ctl.base_url + "/.well-known/rustronaut")
    assert raw.status == 200
    assert not raw.too_big


async def test_another_path_of_the_controller_is_not_a_record() -> None:
    """A controller reached under a wrong base answers 404 there: nothing published."""

    async def no_records(name: str) -> list[str]:
        return []

    async with run_controller() as ctl:
        fetch = http_fetcher()

        async def under_a_path(url: str):  # type: ignore[no-untyped-def]
            return await fetch(url.replace("/.well-known/", "/nothing/.well-known/"))

        with pytest.raises(NotPublishedError, match=r"127\.0\.0\.1 does not publish"):
            await discover(ctl.base_url, fetch=under_a_path, resolve_txt=no_records)
