"""The demo DNS server's TXT records (the onboarding's ``_rustronaut.<domain>`` record)."""

from __future__ import annotations

import dns.asyncresolver
import dns.name
import dns.resolver
import pytest

from controller.demo.dns import Zone, main, parse_txt, start

pytestmark = pytest.mark.integration


def _n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


async def test_txt_records_are_answered_next_to_addresses() -> None:
    zone = Zone(
        {_n("corp.example"): ["10.241.0.80"]},
        [_n("corp.example")],
        texts={_n("_rustronaut.corp.example"): ["url=https://corp.example", 'a "q" \\ b']},
    )
    server = await start(zone, "127.0.0.1", 0)
    try:
        r = dns.asyncresolver.Resolver(configure=False)
        r.nameservers, r.port = ["127.0.0.1"], server.address[1]
        txt = await r.resolve("_rustronaut.corp.example", "TXT")
        assert sorted(b"".join(x.strings) for x in txt) == [
            b'a "q" \\ b',
            b"url=https://corp.example",
        ]
        assert [x.address for x in await r.resolve("corp.example", "A")] == ["10.241.0.80"]
        with pytest.raises(dns.resolver.NoAnswer):  # the TXT name has no address
            await r.resolve("_rustronaut.corp.example", "A")
        with pytest.raises(dns.resolver.NoAnswer):  # the address name has no TXT
            await r.resolve("corp.example", "TXT")
    finally:
        await server.close()


@pytest.mark.parametrize("bad", ["=x", "name=", "name", "n.example=" + "x" * 256, "n.example=é"])
def test_bad_txt_arguments_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_txt(bad)


def test_the_command_line_takes_txt(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--listen", "127.0.0.1:0", "--txt", "nonsense"])
    assert "expected NAME=TEXT" in capsys.readouterr().err
    assert parse_txt("_rustronaut.corp.example=url=https://x.example") == (
        _n("_rustronaut.corp.example"),
        "url=https://x.example",
    )
