"""The loopback redirect listener as a browser (and a hostile local client) sees it."""

from __future__ import annotations

import asyncio
import html

import httpx
import pytest

from core.auth import CallbackError, ClockSkewError, LoginDenied, TokenError
from core.auth.loopback import LoopbackListener

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

ISSUER = "https://idp.example.test"


def listener(iss_required: bool = True) -> LoopbackListener:
    return LoopbackListener(state="s3cret-state", issuer=ISSUER, iss_required=iss_required)


async def test_binds_random_loopback_port_only_while_in_use() -> None:
    first = listener()
    async with first:
        uri = first.redirect_uri
        assert uri.startswith("http://127.0.0.1:")
        assert uri.endswith("/callback")
        async with listener() as second:
            assert second.redirect_uri != uri  # each login gets its own random port
    async with httpx.AsyncClient() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(uri)


async def test_other_paths_do_not_settle_the_login() -> None:
    async with listener() as lst, httpx.AsyncClient() as c:
        base = lst.redirect_uri.rsplit("/", 1)[0]
        assert (await c.get(f"{base}/favicon.ico")).status_code == 404
        assert (await c.post(lst.redirect_uri)).status_code == 405
        held = asyncio.ensure_future(
            c.get(lst.redirect_uri, params={"code": "c", "state": "s3cret-state", "iss": ISSUER})
        )
        answer = await lst.wait(5)
        assert answer.code == "c"
        lst.finish(None, who="alice@example.test")
        ok = await held
        assert ok.status_code == 200
        assert "You are signed in" in ok.text
        assert "alice@example.test" in ok.text
        assert "close this tab" in ok.text
        assert ok.headers["cache-control"] == "no-store"
        # Later callbacks are answered but change nothing.
        late = await c.get(lst.redirect_uri, params={"code": "evil", "state": "s3cret-state"})
        assert late.status_code == 410
        assert (await lst.wait(5)).code == "c"


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"code": "c", "state": "wrong", "iss": ISSUER}, CallbackError, "wrong 'state'"),
        ({"code": "c", "iss": ISSUER}, CallbackError, "wrong 'state'"),
        ({"code": "c", "state": "s3cret-state"}, CallbackError, "RFC 9207"),
        ({"code": "c", "state": "s3cret-state", "iss": "https://x"}, CallbackError, "mix-up"),
        ({"state": "s3cret-state", "iss": ISSUER}, CallbackError, "no authorization code"),
        (
            {"error": "access_denied", "state": "s3cret-state", "iss": ISSUER},
            LoginDenied,
            "refused",
        ),
        (
            {
                "error": "server_error",
                "error_description": "boom",
                "state": "s3cret-state",
                "iss": ISSUER,
            },
            CallbackError,
            "server_error: boom",
        ),
    ],
)
async def test_bad_callbacks_fail_the_login(
    params: dict[str, str], error: type[Exception], words: str
) -> None:
    async with listener() as lst, httpx.AsyncClient() as c:
        page = await c.get(lst.redirect_uri, params=params)
        assert page.status_code == 400
        with pytest.raises(error) as err:
            await lst.wait(5)
    assert words in str(err.value)
    # The page names what failed and the next step (escaped), never "signed in".
    assert "signed in" not in page.text.lower()
    assert html.escape(err.value.next_step) in page.text  # type: ignore[attr-defined]


async def test_repeated_parameter_is_refused() -> None:
    async with listener() as lst, httpx.AsyncClient() as c:
        url = f"{lst.redirect_uri}?code=a&code=b&state=s3cret-state&iss={ISSUER}"
        assert (await c.get(url)).status_code == 400
        with pytest.raises(CallbackError, match="repeats"):
            await lst.wait(5)


async def test_iss_optional_when_the_provider_does_not_promise_it() -> None:
    async with listener(iss_required=False) as lst, httpx.AsyncClient() as c:
        held = asyncio.ensure_future(
            c.get(lst.redirect_uri, params={"code": "c", "state": "s3cret-state"})
        )
        assert (await lst.wait(5)).iss is None
        lst.finish(None)
        assert (await held).status_code == 200


async def test_oversized_or_garbage_requests_are_dropped() -> None:
    async with listener() as lst:
        host, port = lst.redirect_uri.split("//")[1].split("/")[0].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /callback?" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
        await writer.drain()
        reply = await reader.read(100)
        writer.close()
        assert reply.startswith(b"HTTP/1.1 400")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"\x16\x03\x01garbage\r\n\r\n")
        await writer.drain()
        assert (await reader.read(100)).startswith(b"HTTP/1.1 405")
        writer.close()
        # The login is still waiting for the real callback.
        async with httpx.AsyncClient() as c:
            held = asyncio.ensure_future(
                c.get(
                    lst.redirect_uri, params={"code": "c", "state": "s3cret-state", "iss": ISSUER}
                )
            )
            assert (await lst.wait(5)).code == "c"
            lst.finish(None)
            await held


async def test_page_waits_for_the_exchange_and_tells_what_failed() -> None:
    """A valid callback is not "signed in" yet: the page is held until the flow finishes,
    then shows the failure's words and next step, escaped (provider text is data)."""
    async with listener() as lst, httpx.AsyncClient() as c:
        held = asyncio.ensure_future(
            c.get(lst.redirect_uri, params={"code": "c", "state": "s3cret-state", "iss": ISSUER})
        )
        await lst.wait(5)
        await asyncio.sleep(0)  # the browser's request is in, and must still be waiting
        assert not held.done()
        lst.finish(TokenError('The provider refused the code (invalid_grant: <b>"x"</b>).'))
        page = await held
    assert page.status_code == 200
    assert "You are signed in" not in page.text
    assert "Sign-in was refused" in page.text
    assert "&lt;b&gt;&quot;x&quot;&lt;/b&gt;" in page.text
    assert "<b>" not in page.text
    assert "Next step: Sign in again." in page.text


async def test_page_says_the_clock_is_wrong() -> None:
    async with listener() as lst, httpx.AsyncClient() as c:
        held = asyncio.ensure_future(
            c.get(lst.redirect_uri, params={"code": "c", "state": "s3cret-state", "iss": ISSUER})
        )
        await lst.wait(5)
        lst.finish(ClockSkewError.measured(3600, "the ID token looks expired"))
        page = await held
    assert "60 minutes off the identity provider" in page.text
    assert "Set this computer&#x27;s clock" in page.text


async def test_page_wait_is_bounded() -> None:
    async with listener() as lst, httpx.AsyncClient() as c:
        lst.page_wait_s = 0.2
        page = await c.get(
            lst.redirect_uri, params={"code": "c", "state": "s3cret-state", "iss": ISSUER}
        )
        assert "still checking" in page.text
        assert "You are signed in" not in page.text
