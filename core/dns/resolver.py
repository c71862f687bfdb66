"""``TunnelResolver``: company names through the tunnel's DNS, everything else as before.

``resolve(host, port)`` has the shape of ``core.proxy.dial.Resolver``:

- an IP literal is returned as it is (nothing asked);
- a name equal to or under one of the suffixes is asked of the tunnel's DNS servers,
  A and AAAA concurrently, servers in order (the next one when a server times out, fails
  or answers SERVFAIL/REFUSED; the same server over TCP when the answer is truncated).
  Such a name never falls back to the OS resolver, whatever happens: a company name must
  not leak to the LAN's resolver, nor be answered by it. Addresses that
  :func:`~core.dns.names.refusal` rejects are dropped; if none is left the look-up fails
  with :class:`~core.dns.errors.AddressRefused` saying why;
- any other name goes to ``fallback`` (by default the OS resolver, untouched).

Answers are cached by TTL (:mod:`core.dns.cache`) and identical concurrent look-ups share
one exchange. ``names_for(ip)`` remembers the last company name whose tunnel answer held
``ip`` (answers from the fallback never feed it: the LAN's resolver must not be able to
give a resource's address a name). Use from one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.rcode
import dns.rdatatype

from core.aio import cancel_and_wait, spawn
from core.dns.cache import AnswerCache, Entry
from core.dns.errors import (
    AddressRefused,
    BadAnswer,
    BadName,
    DnsError,
    DnsUnreachable,
    NameNotFound,
)
from core.dns.message import Query, Reply
from core.dns.names import (
    Server,
    ip_literal,
    normalize_name,
    normalize_suffixes,
    parse_server,
    refusal,
    under_suffix,
)
from core.dns.transport import SockFactory, exchange, plain_socket

__all__ = ["Fallback", "SockFactory", "TunnelResolver"]

_log = logging.getLogger(__name__)

Fallback = Callable[[str, int], Awaitable[Sequence[str]]]
"""``resolve(host, port) -> addresses`` for names outside the suffixes."""

MAX_SERVERS = 8
MAX_NAMES_REMEMBERED = 4096
_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


async def os_resolver(host: str, port: int) -> Sequence[str]:
    """The OS resolver (``loop.getaddrinfo``), as the proxy uses it without split DNS."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class _Outcome:
    """One record type's result: an entry, or the error that ended the look-up."""

    entry: Entry | None
    error: DnsError | None


class TunnelResolver:
    """Split DNS: names under ``suffixes`` asked of ``servers`` through the tunnel.

    ``servers``: IP literals (``10.0.0.53``, ``10.0.0.53:5353``, ``[fd00::53]:53``), tried
    in order, at most 8. ``suffixes``: DNS suffixes (validated, IDNA-normalised).
    ``sock_factory(family, "udp" | "tcp")``: an unconnected socket into the tunnel (the
    helper's marked sockets); None gives plain sockets (tests). ``timeout``: seconds per
    server attempt. ``fallback``: the resolver for other names (default: the OS's).
    ``clock`` (monotonic seconds) and the cache limits are injectable for tests.
    Raises ``ValueError`` for a bad server, suffix or limit.
    """

    def __init__(
        self,
        servers: Sequence[str],
        suffixes: Sequence[str],
        sock_factory: SockFactory | None = None,
        *,
        timeout: float = 2.0,
        fallback: Fallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_entries: int = 1024,
        min_ttl: float = 5.0,
        max_ttl: float = 300.0,
        negative_ttl: float = 5.0,
    ) -> None:
        if isinstance(servers, str):
            raise ValueError("servers must be a list of addresses, not one string")
        parsed = tuple(parse_server(server) for server in servers)
        if len(parsed) > MAX_SERVERS:
            raise ValueError(f"at most {MAX_SERVERS} DNS servers")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self._servers: tuple[Server, ...] = parsed
        self._suffixes = normalize_suffixes(suffixes)
        if self._suffixes and not self._servers:
            raise ValueError("DNS suffixes need at least one DNS server in the tunnel")
        self._factory: SockFactory = sock_factory or plain_socket
        self._timeout = timeout
        self._fallback: Fallback = fallback or os_resolver
        self._cache = AnswerCache(
            clock,
            max_entries=cache_entries,
            min_ttl=min_ttl,
            max_ttl=max_ttl,
            negative_ttl=negative_ttl,
        )
        self._inflight: dict[tuple[str, int], asyncio.Task[_Outcome]] = {}
        self._names: collections.OrderedDict[str, str] = collections.OrderedDict()

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The normalised DNS suffixes this resolver answers for through the tunnel."""
        return self._suffixes

    @property
    def servers(self) -> tuple[Server, ...]:
        """The tunnel's DNS servers as (address, port), in the order they are tried."""
        return self._servers

    def handles(self, host: str) -> bool:
        """Whether ``host`` is a company name (asked through the tunnel). False if invalid."""
        try:
            return under_suffix(normalize_name(host), self._suffixes) is not None
        except ValueError:
            return False

    @staticmethod
    def refusal(ip: str) -> str | None:
        """Why ``ip`` must never be dialled, or None (see :func:`core.dns.names.refusal`)."""
        return refusal(ip)

    def names_for(self, ip: str) -> str | None:
        """The last company name whose tunnel answer contained ``ip``, or None."""
        key = _ip_key(ip)
        return None if key is None else self._names.get(key)

    async def prefetch(self, names: Iterable[str], *, limit: int = 256) -> int:
        """Resolve the company names among ``names`` now, so :meth:`names_for` knows them.

        A transparent connection arrives as an address; an app that resolved the name
        with the OS resolver never asked us, so without this the decider would know no
        name for the address. Give it the policy's host names when the tunnel or the
        policy changes. Wildcards, IP literals, invalid names and names outside the
        suffixes are skipped; failures are ignored (logged). At most ``limit`` names,
        eight at a time. Returns how many resolved.
        """
        wanted: list[str] = []
        for host in names:
            if len(wanted) >= limit:
                break
            if not isinstance(host, str) or "*" in host or ip_literal(host) is not None:
                continue
            try:
                name = normalize_name(host)
            except ValueError:
                continue
            if under_suffix(name, self._suffixes) is not None and name not in wanted:
                wanted.append(name)
        gate = asyncio.Semaphore(8)

        async def one(name: str) -> bool:
            async with gate:
                try:
                    await self.resolve(name, 0)
                except DnsError as exc:
                    _log.debug("prefetch of %s: %s", name, exc)
                    return False
                return True

        return sum(await asyncio.gather(*(one(name) for name in wanted)))

    def flush(self) -> None:
        """Forget cached answers (the remembered names stay: apps keep their addresses)."""
        self._cache.clear()

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` (IPv4 first). Raises a :class:`DnsError` (an OSError)."""
        literal = ip_literal(host) if isinstance(host, str) else None
        if literal is not None:
            return [literal]
        try:
            name = normalize_name(host)
        except ValueError as exc:
            raise BadName(str(exc)) from None
        if under_suffix(name, self._suffixes) is None:
            return list(await self._fallback(host, port))
        cached = [self._cache.get((name, rdtype)) for rdtype in _TYPES]
        if all(entry is not None for entry in cached):
            # The common case, without the two tasks gather() would make.
            return self._combine(name, [_Outcome(entry, None) for entry in cached])
        outcomes = await asyncio.gather(*(self._lookup(name, rdtype) for rdtype in _TYPES))
        return self._combine(name, outcomes)

    def _combine(self, name: str, outcomes: Sequence[_Outcome]) -> list[str]:
        addresses: list[str] = []
        for outcome in outcomes:
            if outcome.entry is not None:
                addresses.extend(a for a in outcome.entry.addresses if a not in addresses)
        if addresses:
            allowed = [a for a in addresses if refusal(a) is None]
            if not allowed:
                reasons = "; ".join(str(refusal(a)) for a in addresses[:4])
                raise AddressRefused(f"{name} resolves only to refused addresses: {reasons}")
            if len(allowed) < len(addresses):
                _log.warning("dropped refused addresses in the answer for %s", name)
            for address in allowed:
                self._remember(address, name)
            return allowed
        errors = [o.error for o in outcomes if o.error is not None]
        if errors:
            raise errors[0]
        if all(o.entry is not None and o.entry.nxdomain for o in outcomes):
            raise NameNotFound(f"{name} does not exist (the company's DNS says NXDOMAIN)")
        raise NameNotFound(f"{name} has no address (no A or AAAA records)")

    def _remember(self, address: str, name: str) -> None:
        self._names[address] = name
        self._names.move_to_end(address)
        while len(self._names) > MAX_NAMES_REMEMBERED:
            self._names.popitem(last=False)

    async def _lookup(self, name: str, rdtype: int) -> _Outcome:
        key = (name, rdtype)
        cached = self._cache.get(key)
        if cached is not None:
            return _Outcome(cached, None)
        task = self._inflight.get(key)
        if task is None:
            # The exchange runs in its own task, shared by every caller asking the same
            # question meanwhile: one caller giving up (its client went away) neither
            # cancels the others' answer nor leaves them waiting.
            task = spawn(self._ask_shared(key), name=f"dns {name} {rdtype}")
            self._inflight[key] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                # aclose() stopped the shared look-up, not our caller: an error, not a
                # cancellation the caller never asked for.
                return _Outcome(None, DnsUnreachable(f"the look-up of {name} was stopped"))
            raise

    async def _ask_shared(self, key: tuple[str, int]) -> _Outcome:
        try:
            return await self._ask_servers(key[0], dns.rdatatype.RdataType.make(key[1]))
        finally:
            self._inflight.pop(key, None)

    async def aclose(self) -> None:
        """Cancel the look-ups in flight (the tunnel went away). Idempotent; the resolver
        stays usable (a later ``resolve`` asks again)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            await cancel_and_wait(task)

    async def _ask_servers(self, name: str, rdtype: dns.rdatatype.RdataType) -> _Outcome:
        """Servers in order until one gives a usable answer; cache it."""
        failures: list[str] = []
        bad = False
        for server in self._servers:
            try:
                reply = await self._ask(server, name, rdtype)
            except DnsUnreachable as exc:
                failures.append(str(exc))
                continue
            except BadAnswer as exc:
                failures.append(str(exc))
                bad = True
                continue
            if reply.rcode == dns.rcode.NXDOMAIN:
                entry = self._cache.put((name, rdtype), (), reply.ttl, nxdomain=True)
                return _Outcome(entry, None)
            if reply.rcode == dns.rcode.NOERROR:
                entry = self._cache.put((name, rdtype), reply.addresses, reply.ttl, nxdomain=False)
                return _Outcome(entry, None)
            failures.append(f"{server[0]} answered {dns.rcode.Rcode.make(reply.rcode).name}")
            bad = True
        detail = "; ".join(failures[:4])
        kind = rdtype.name
        if bad:
            return _Outcome(None, BadAnswer(f"no usable {kind} answer for {name}: {detail}"))
        return _Outcome(None, DnsUnreachable(f"no DNS server answered for {name}: {detail}"))

    async def _ask(self, server: Server, name: str, rdtype: dns.rdatatype.RdataType) -> Reply:
        query = Query(name, rdtype)
        reply = await exchange(self._factory, server, query, tcp=False, within=self._timeout)
        if reply.truncated:
            query = Query(name, rdtype)
            reply = await exchange(self._factory, server, query, tcp=True, within=self._timeout)
        return reply


def _ip_key(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except (ValueError, AttributeError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.compressed
    return address.compressed
