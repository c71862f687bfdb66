"""The browser side of the console benchmark: an admin signed in, live-feed sockets open.

``open_feeds`` walks the real sign-in on a replica (GET ``/console/login`` → the dev
provider's form → ``/console/callback``), keeping the cookies by hand (they are
``Secure``: an HTTP client's cookie jar would not send them back over plain HTTP on
loopback, where a browser does), then opens two WebSockets on ``/console/ws/live`` with
the ``Origin`` a browser sends:

- ``probe``: filtered on the probe devices' names (``device=probe-``), so it stays under
  the per-socket rate limit; every item's delay (receipt − the event's ``at``) is kept,
  split by the replica that ingested it;
- ``all``: unfiltered, what an admin opening the live page without filters gets; it
  counts items received and items the server reported skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from html import unescape
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = ["FeedProbe", "open_feeds", "sign_in"]


class _Rep(Protocol):
    name: str
    port: int

    @property
    def url(self) -> str: ...


def _cookies(resp: httpx.Response, jar: dict[str, str]) -> None:
    for line in resp.headers.get_list("set-cookie"):
        pair = line.split(";", 1)[0]
        name, _, value = pair.partition("=")
        if value:
            jar[name.strip()] = value.strip()
        else:
            jar.pop(name.strip(), None)


def _text(html: str) -> str:
    """The visible text of an error page (for messages)."""
    body = html.split("<body", 1)[-1]
    return " ".join(unescape(re.sub(r"<[^>]*>", " ", body)).split())[:400]


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def sign_in(base: str, username: str, password: str) -> dict[str, str]:
    """Sign an admin in to the console at ``base`` like a browser; the cookies it holds
    afterwards (the session cookie among them). Raises ``RuntimeError`` when refused."""
    jar: dict[str, str] = {}
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as http:

        async def get(url: str) -> httpx.Response:
            same = urlsplit(url).netloc == urlsplit(base).netloc
            headers = {"Cookie": _cookie_header(jar)} if jar and same else {}
            r = await http.get(url, headers=headers)
            if same:
                _cookies(r, jar)
            return r

        r = await get(f"{base}/console/login")
        if r.status_code not in (302, 303):
            raise RuntimeError(f"/console/login answered {r.status_code}: {r.text[:200]}")
        authorize = urljoin(base, r.headers["location"])
        form = await http.get(authorize)
        # The dev provider's form: post the credentials (and any hidden fields) back.
        fields = {
            unescape(m.group(1)): unescape(m.group(2))
            for m in re.finditer(
                r'<input[^>]*type="hidden"[^>]*name="([^"]*)"[^>]*value="([^"]*)"', form.text
            )
        }
        action = re.search(r'<form[^>]*action="([^"]*)"', form.text)
        target = urljoin(authorize, unescape(action.group(1))) if action else authorize
        if not action or not urlsplit(target).query:
            target = authorize  # the form posts back to itself, query included
        r = await http.post(target, data={**fields, "username": username, "password": password})
        if r.status_code not in (302, 303):
            raise RuntimeError(f"dev provider refused the sign-in: {r.status_code}")
        callback = urljoin(target, r.headers["location"])
        r = await get(callback)
        # The console answers the callback with a page that continues to the console (a
        # redirect started at the provider would not carry a SameSite=Strict cookie).
        if r.status_code != 200 or not any(k.startswith("__Host-") for k in jar):
            raise RuntimeError(f"/console/callback answered {r.status_code}: {_text(r.text)}")
        r = await get(f"{base}/console/live")
        if r.status_code != 200:
            raise RuntimeError(f"not signed in: {r.status_code} {_text(r.text)}")
    return jar


def _q(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class FeedProbe:
    """Two open feed sockets and what they measured (see the module docstring)."""

    def __init__(self, probes: dict[str, str]) -> None:
        self.probes = probes  # device_id -> "A" | "B"
        self.window = (float("inf"), float("inf"))
        self.delays: dict[str, list[float]] = {"A": [], "B": []}
        #: the feed's own share: receipt − ``received`` (the ingesting replica's store)
        self.feed_only: dict[str, list[float]] = {"A": [], "B": []}
        self.probe_skipped = 0
        self.all_items = 0
        self.all_skipped = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._socks: list[Any] = []

    def _in_window(self, t: float) -> bool:
        return self.window[0] <= t < self.window[1]

    async def _read_probe(self, ws: Any) -> None:
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            if not self._in_window(now):
                continue
            if msg.get("type") == "skipped":
                self.probe_skipped += int(msg["count"])
                continue
            for it in msg.get("items", ()):
                rep = self.probes.get(it["device"])
                if rep is None:
                    continue
                self.delays[rep].append(now - float(it["at"]))
                self.feed_only[rep].append(now - float(it["received"]))

    async def _read_all(self, ws: Any) -> None:
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            if not self._in_window(now):
                continue
            if msg.get("type") == "skipped":
                self.all_skipped += int(msg["count"])
            else:
                self.all_items += len(msg.get("items", ()))

    async def close(self) -> None:
        """Close the sockets and stop reading."""
        for ws in self._socks:
            with contextlib.suppress(Exception):
                await ws.close()
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(BaseException):
                await t

    def report(self) -> list[str]:
        """Printable lines: delay p50/p99/max per ingesting replica, counts, skips."""
        out = []
        span = self.window[1] - self.window[0]
        for rep in ("A", "B"):
            xs = sorted(self.delays[rep])
            label = f"feed delay, ingested at {rep} -> B"
            if not xs:
                out.append(f"{label:<34} no items received")
                continue
            fo = sorted(self.feed_only[rep])
            out.append(
                f"{label:<34} {_q(xs, 0.5) * 1000:>10.0f} / {_q(xs, 0.99) * 1000:.0f} ms "
                f"p50 / p99 from the event (max {xs[-1] * 1000:.0f} ms, {len(xs) / span:.0f}"
                f" items/s); from its ingest {_q(fo, 0.5) * 1000:.0f} / "
                f"{_q(fo, 0.99) * 1000:.0f} ms"
            )
        out.append(
            f"{'feed, probe socket skipped':<34} {self.probe_skipped:>10}   "
            f"(filter device=probe-: {len(self.probes)} devices)"
        )
        out.append(
            f"{'feed, unfiltered socket':<34} {self.all_items / span:>10,.0f} items/s shown, "
            f"{self.all_skipped / span:,.0f}/s skipped (per-socket limit)"
        )
        return out


async def open_feeds(rep: _Rep, admin: tuple[str, str], probes: dict[str, str]) -> FeedProbe | None:
    """Sign ``admin`` in to ``rep``'s console and open the two sockets; None when this
    controller has no console live feed (the page answers 404)."""
    import websockets
    from websockets.typing import Origin

    async with httpx.AsyncClient() as http:
        if (await http.get(f"{rep.url}/console/login")).status_code == 404:
            return None
    jar = await sign_in(rep.url, *admin)
    headers = {"Cookie": _cookie_header(jar)}
    ws_base = f"ws://127.0.0.1:{rep.port}/console/ws/live"
    fp = FeedProbe(probes)
    probe = await websockets.connect(
        f"{ws_base}?device=probe-",
        additional_headers=headers,
        origin=Origin(rep.url),
        max_size=None,
    )
    every = await websockets.connect(
        ws_base, additional_headers=headers, origin=Origin(rep.url), max_size=None
    )
    fp._socks = [probe, every]
    fp._tasks = [
        asyncio.create_task(fp._read_probe(probe)),
        asyncio.create_task(fp._read_all(every)),
    ]
    await asyncio.sleep(0.5)  # let the replica's LISTEN connection come up
    return fp
