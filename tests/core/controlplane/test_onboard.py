"""Onboarding discovery: join links, web records, DNS TXT, and hostile answers refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest

from core.controlplane.onboard import (
    MAX_RECORD_BYTES,
    Fetched,
    FoundBy,
    InputError,
    LookupFailedError,
    NotPublishedError,
    OnboardingError,
    RecordRefusedError,
    check_controller,
    discover,
    http_fetcher,
    parse_join_link,
    parse_record,
    parse_txt,
    well_known_url,
)
from core.errors import CODES

pytestmark = pytest.mark.unit

CTL = "https://zt.example.com"


# ------------------------------------------------------------------------- join links
@pytest.mark.parametrize(
    ("link", "url"),
    [
        ("rustronaut://join?controller=https://zt.example.com", CTL),
        ("rustronaut://join?controller=https%3A%2F%2Fzt.example.com%2F", CTL),
        ("RUSTRONAUT://JOIN/?controller=https://zt.example.com:8443/ctl", CTL + ":8443/ctl"),
        ("rustronaut://join?controller=http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_a_join_link_names_its_controller(link: str, url: str) -> None:
    assert parse_join_link(link) == url


@pytest.mark.parametrize(
    ("link", "error"),
    [
        ("rustronaut://join?controller=http://zt.example.com", RecordRefusedError),
        ("rustronaut://join?controller=ftp://zt.example.com", RecordRefusedError),
        ("rustronaut://join?controller=javascript:alert(1)", RecordRefusedError),
        ("rustronaut://join?controller=https://bob:pw@zt.example.com", RecordRefusedError),
        ("rustronaut://join?controller=https://zt.example.com/?x=1", RecordRefusedError),
        ("rustronaut://join?controller=https://", RecordRefusedError),
        ("rustronaut://join?controller=https://a&controller=https://b", InputError),
        ("rustronaut://join?controller=https://a.example&token=secret", InputError),
        ("rustronaut://join", InputError),
        ("rustronaut://leave?controller=https://zt.example.com", InputError),
        ("rustronaut://join/x?controller=https://zt.example.com", InputError),
        ("rustronaut://join?controller=https://zt.example.com#frag", InputError),
        ("rustronaut://u:p@join?controller=https://zt.example.com", InputError),
        ("rustronaut://join?controller=https://zt.example.com\n", InputError),
        ("https://join?controller=https://zt.example.com", InputError),
        ("rustronaut://join?" + "controller=https://a.example&" * 100, InputError),
    ],
)
def test_a_bad_join_link_is_refused_in_words(link: str, error: type[OnboardingError]) -> None:
    with pytest.raises(error) as caught:
        parse_join_link(link)
    assert caught.value.detail
    assert caught.value.next_step
    assert caught.value.code in CODES
    assert "Errno" not in caught.value.detail


# ------------------------------------------------------------------------- addresses
@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("alice@example.com", "https://example.com/.well-known/rustronaut"),
        (" Alice.Smith+vpn@Example.COM ", "https://example.com/.well-known/rustronaut"),
        ("example.com", "https://example.com/.well-known/rustronaut"),
        ("https://example.com/", "https://example.com/.well-known/rustronaut"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/.well-known/rustronaut"),
        ("bücher.example", "https://xn--bcher-kva.example/.well-known/rustronaut"),
    ],
)
def test_what_is_typed_becomes_a_well_known_url(typed: str, url: str) -> None:
    assert well_known_url(typed) == url


@pytest.mark.parametrize(
    "typed",
    ["", "alice", "@example.com", "a@b", "exa mple.com", "ftp://example.com",
     "https://example.com/path", "-bad-.example", "a" * 400, "x@example.com\x00"],
)  # fmt: skip
def test_nonsense_is_refused_as_input(typed: str) -> None:
    with pytest.raises(InputError):
        well_known_url(typed)


def test_plain_http_to_a_real_domain_is_refused() -> None:
    with pytest.raises(RecordRefusedError, match="not secure"):
        well_known_url("http://example.com")


# ------------------------------------------------------------------------- web records
ORIGIN = "https://example.com"


def _json(doc: object, status: int = 200) -> Fetched:
    return Fetched(status, json.dumps(doc).encode())


def test_a_pointer_record_names_the_controller() -> None:
    assert parse_record(_json({"controller_url": CTL + "/"}), origin=ORIGIN) == CTL


def test_the_controllers_own_discovery_document_means_the_domain_is_the_controller() -> None:
    doc = {"api_version": "v1", "issuer": "https://example.com/oidc", "client_id": "x"}
    assert parse_record(_json(doc), origin=ORIGIN) == ORIGIN


@pytest.mark.parametrize("status", [404, 410])
def test_no_record_is_none(status: int) -> None:
    assert parse_record(Fetched(status), origin=ORIGIN) is None


@pytest.mark.parametrize(
    ("fetched", "words"),
    [
        (_json({"controller_url": "http://zt.example.com"}), "not secure"),
        (_json({"controller_url": "http://127.0.0.1:1"}), "not secure"),  # not from loopback
        (_json({"controller_url": "ftp://zt.example.com"}), "not an https"),
        (_json({"controller_url": "file:///etc/passwd"}), "not an https"),
        (_json({"controller_url": "https://u:p@zt.example.com"}), "user name or password"),
        (_json({"controller_url": 42}), "not text"),
        (_json({"controller_url": "https://zt.\u0435xample.com"}), "outside plain ASCII"),
        (_json({"controller_url": "https://zt.example.com\u202e"}), "not a web address"),
        (_json(["https://zt.example.com"]), "not a record"),
        (_json({"something": "else"}), "does not understand"),
        (Fetched(200, b"<html>Welcome</html>"), "not a record"),
        (Fetched(200, b"\xff\xfe garbage"), "not a record"),
        (Fetched(200, b"[" * 100_000), "over 64 KB"),
        (Fetched(200, b'{"a":' * 5000 + b"1" + b"}" * 5000), "not a record"),
        (Fetched(200, b"{}", too_big=True), "over 64 KB"),
        (Fetched(302, location="https://evil.example/"), "redirect to 'https://evil.example/'"),
        (Fetched(301), "redirect"),
        (Fetched(500), "error (500)"),
    ],
)
def test_hostile_web_answers_are_refused_in_words(fetched: Fetched, words: str) -> None:
    with pytest.raises(RecordRefusedError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_record(fetched, origin=ORIGIN)


def test_http_is_accepted_only_from_a_loopback_origin() -> None:
    got = parse_record(
        _json({"controller_url": "http://127.0.0.1:9/"}), origin="http://127.0.0.1:8"
    )
    assert got == "http://127.0.0.1:9"


# ------------------------------------------------------------------------- DNS
def test_a_txt_record_names_the_controller() -> None:
    assert parse_txt(["v=rustronaut1; url=https://zt.example.com"], domain="e") == CTL
    assert parse_txt(["spf stuff", "other"], domain="e") is None


@pytest.mark.parametrize(
    "records",
    [["url=http://zt.example.com"], ["url=https://a.example", "url=https://b.example"],
     ["url=javascript:x"]],
)  # fmt: skip
def test_bad_txt_records_are_refused(records: list[str]) -> None:
    with pytest.raises(RecordRefusedError):
        parse_txt(records, domain="example.com")


# ------------------------------------------------------------------------- discover
class Net:
    """Scripted web and DNS: what each URL or name answers, and what was asked."""

    def __init__(
        self, web: Fetched | Exception | None = None, dns: Sequence[str] | Exception = ()
    ) -> None:
        self.web, self.dns, self.asked = web, dns, []  # type: ignore[var-annotated]

    async def fetch(self, url: str) -> Fetched:
        self.asked.append(url)
        if isinstance(self.web, Exception):
            raise self.web
        return self.web or Fetched(404)

    async def resolve(self, name: str) -> Sequence[str]:
        self.asked.append(name)
        if isinstance(self.dns, Exception):
            raise self.dns
        return self.dns


async def test_discover_from_an_email_via_the_web_site() -> None:
    net = Net(web=_json({"controller_url": CTL}))
    found = await discover("alice@example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert (found.url, found.by, found.domain) == (CTL, FoundBy.WEB, "example.com")
    assert found.how == "Published by example.com on its web site."
    # DNS is asked only to confirm (it names nothing here: the web answer stands)
    assert net.asked == ["https://example.com/.well-known/rustronaut", "_rustronaut.example.com"]


async def test_discover_falls_back_to_dns() -> None:
    net = Net(dns=["url=https://zt.example.com"])
    found = await discover("example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert (found.url, found.by) == (CTL, FoundBy.DNS)
    assert net.asked[-1] == "_rustronaut.example.com"


async def test_discover_falls_back_to_dns_when_the_web_site_is_down() -> None:
    net = Net(web=OSError("[Errno 111] Connection refused"), dns=["url=https://zt.example.com"])
    assert (await discover("example.com", fetch=net.fetch, resolve_txt=net.resolve)).url == CTL


async def test_a_join_link_needs_no_network() -> None:
    net = Net()
    found = await discover(
        "rustronaut://join?controller=https://zt.example.com",
        fetch=net.fetch,
        resolve_txt=net.resolve,
    )
    assert (found.url, found.by, net.asked) == (CTL, FoundBy.LINK, [])


async def test_a_refused_web_record_is_not_overridden_by_dns() -> None:
    net = Net(web=_json({"controller_url": "http://evil.example"}), dns=["url=" + CTL])
    with pytest.raises(RecordRefusedError):
        await discover("example.com", fetch=net.fetch, resolve_txt=net.resolve)


async def test_nothing_published_is_said_in_words() -> None:
    with pytest.raises(NotPublishedError, match=r"example\.com does not publish") as caught:
        await discover("example.com", fetch=Net().fetch, resolve_txt=Net().resolve)
    assert "IT" in caught.value.next_step


async def test_no_network_is_said_in_words_without_errno() -> None:
    net = Net(web=OSError("[Errno -3] Temporary failure"), dns=OSError("[Errno 101] unreachable"))
    with pytest.raises(LookupFailedError) as caught:
        await discover("example.com", fetch=net.fetch, resolve_txt=net.resolve)
    assert "Errno" not in caught.value.detail
    assert caught.value.detail == "Rustronaut could not reach example.com or its DNS records."
    assert caught.value.next_step == "Check your network connection, then try again."


# ------------------------------------------------------------------------- real HTTP
@pytest.fixture
async def site() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on 127.0.0.1 answering each path with raw response bytes."""
    routes: dict[str, bytes] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        path = line.split()[1].decode()
        writer.write(routes.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        await writer.drain()
        if path == "/stall/.well-known/rustronaut":
            await reader.read()  # a server that never finishes its answer
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", routes


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


@pytest.mark.integration
async def test_real_http_pointer_record(site: tuple[str, dict[str, bytes]]) -> None:
    base, routes = site
    routes["/.well-known/rustronaut"] = _ok(b'{"controller_url": "%s/ctl"}' % base.encode())
    found = await discover(base, fetch=http_fetcher(), resolve_txt=Net().resolve)
    assert found.url == base + "/ctl"


@pytest.mark.integration
async def test_real_http_redirect_is_not_followed(site: tuple[str, dict[str, bytes]]) -> None:
    base, routes = site
    routes["/.well-known/rustronaut"] = (
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(RecordRefusedError, match="redirect"):
        await discover(base, fetch=http_fetcher(), resolve_txt=Net().resolve)


@pytest.mark.integration
async def test_real_http_huge_answer_is_cut_and_refused(site: tuple[str, dict[str, bytes]]) -> None:
    base, routes = site
    body = b" " * (MAX_RECORD_BYTES * 20)
    routes["/.well-known/rustronaut"] = _ok(body)
    fetched = await http_fetcher()(base + "/.well-known/rustronaut")
    assert fetched.too_big
    assert len(fetched.body) < MAX_RECORD_BYTES * 2
    with pytest.raises(RecordRefusedError, match="over 64 KB"):
        await discover(base, fetch=http_fetcher(), resolve_txt=Net().resolve)


@pytest.mark.integration
async def test_real_http_nothing_listening_is_a_lookup_failure() -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LookupFailedError):
        await discover(f"http://127.0.0.1:{port}", fetch=http_fetcher(), resolve_txt=Net().resolve)


def test_check_controller_normalises() -> None:
    assert check_controller(CTL + "/", allow_loopback_http=False) == CTL


@pytest.mark.integration
async def test_real_http_a_stalled_answer_times_out(site: tuple[str, dict[str, bytes]]) -> None:
    base, routes = site
    routes["/stall/.well-known/rustronaut"] = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"  # then nothing more
    )
    fetch = http_fetcher(timeout=0.3)
    with pytest.raises(TimeoutError):
        await fetch(base + "/stall/.well-known/rustronaut")

    async def stalled(url: str) -> Fetched:
        return await fetch(url.replace("/.well-known", "/stall/.well-known"))

    with pytest.raises(LookupFailedError):
        await discover(base, fetch=stalled, resolve_txt=Net().resolve)
