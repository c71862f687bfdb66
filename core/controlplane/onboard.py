"""Onboarding: find the organisation's controller from what an employee types.

An employee types their work email (``alice@example.com``), their organisation's address
(``example.com``, ``https://example.com``) or pastes a join link
(``rustronaut://join?controller=https://zt.example.com``). :func:`discover` turns that into
one controller URL, to be shown and confirmed before it is saved:

1. A join link names the controller itself (parsed strictly: :func:`parse_join_link`).
2. Otherwise ``https://<domain>/.well-known/rustronaut`` is asked. Two answers are
   understood: a pointer record ``{"controller_url": "https://…"}`` (an organisation's web
   site naming its controller), or the controller's own discovery document (the domain
   *is* the controller, as the reference controller answers).
3. If the web site has no record, the DNS TXT record ``_rustronaut.<domain>`` with
   ``url=https://…`` is read.

Two answers that disagree are refused rather than one picked: when the web site names a
controller and the domain's TXT record names another, nothing is found. A web site whose
certificate is not trusted is refused too, without falling back to DNS: on a network
where someone impersonates the site, the unauthenticated DNS answer would be theirs too.

The parsers are pure (text or bytes in, a URL or an error out); the only I/O is the two
injectable seams :data:`Fetcher` and :data:`TxtResolver`, with real ones built on httpx
(no redirects, size-capped) and dnspython. Only ``https`` controllers are accepted; plain
``http`` only when the record itself came from a loopback address (the local test bed),
never credentials in a URL. Nothing here writes settings: the caller saves the confirmed
URL (``core.settings.set_user``), because ``core.settings`` is a sibling layer.

Errors (each a ``core.errors.UserFacing`` with words and a next step)::

    OnboardingError
     ├── InputError          what was typed is not an email, an address or a join link
     ├── RecordRefusedError  something answered, but what it said is refused
     └── NotPublishedError   neither the web site nor DNS names a controller
          └── LookupFailedError  the web site and DNS could not be asked (network)
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP, translate

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_RECORD_BYTES",
    "Fetched",
    "Fetcher",
    "Found",
    "FoundBy",
    "InputError",
    "LookupFailedError",
    "NotPublishedError",
    "OnboardingError",
    "RecordRefusedError",
    "TxtResolver",
    "check_controller",
    "discover",
    "dns_txt_resolver",
    "http_fetcher",
    "parse_join_link",
    "parse_record",
    "parse_txt",
    "well_known_url",
]

_log = logging.getLogger(__name__)

#: A discovery record larger than this is refused (a pointer is tens of bytes; the
#: controller's own discovery document a few kilobytes).
MAX_RECORD_BYTES = 64 * 1024

#: How long one web or DNS question may take.
TIMEOUT_S = 10.0
#: How long the TXT record may take to confirm what the web site said (an answer is
#: already in hand; a slow DNS must not hold it up for long).
CROSS_CHECK_S = 3.0

_ASK_IT = QT_TRANSLATE_NOOP(
    "core.controlplane.onboard",
    "Ask IT for your organisation's Rustronaut join link or its address.",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class OnboardingError(UserFacingError):
    """The controller could not be found; the message says why, in words.

    ``title`` and ``next_step`` are English on the class (marked for translation) and in
    the installed language on each instance (``core.i18n``, translated when raised).
    """

    title = QT_TRANSLATE_NOOP(
        "core.controlplane.onboard", "Your organisation's controller was not found"
    )
    next_step = _ASK_IT
    code = "setting_invalid"

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        cls = type(self)
        self.title = translate("core.controlplane.onboard", cls.title)
        self.next_step = translate("core.controlplane.onboard", cls.next_step)


class InputError(OnboardingError):
    """What was typed is not a work email, an organisation's address or a join link."""

    title = QT_TRANSLATE_NOOP(
        "core.controlplane.onboard", "That does not look like a work email or an address"
    )
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.onboard",
        "Type your work email (name@company.com) or paste the join link IT sent you.",
    )


class RecordRefusedError(OnboardingError):
    """An answer was received but refused (http, another scheme, garbage, too big,
    a redirect, credentials in the URL)."""

    title = QT_TRANSLATE_NOOP("core.controlplane.onboard", "Rustronaut refused what was found")
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.onboard", "Tell IT what this says; do not use the address it points to."
    )


class NotPublishedError(OnboardingError):
    """Neither the web site nor DNS of the domain names a controller."""

    next_step = _ASK_IT


class LookupFailedError(NotPublishedError):
    """Neither the web site nor DNS could be asked (no network, timeouts)."""

    title = QT_TRANSLATE_NOOP(
        "core.controlplane.onboard", "Rustronaut could not look up your organisation"
    )
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.onboard", "Check your network connection, then try again."
    )
    code = "controller_unreachable"


class FoundBy(enum.StrEnum):
    """Where the controller's address came from."""

    LINK = "link"  # a join link named it
    WEB = "web"  # the domain's /.well-known/rustronaut named it (or is the controller)
    DNS = "dns"  # the domain's _rustronaut TXT record named it


@dataclass(frozen=True, slots=True)
class Found:
    """A controller to show the employee for confirmation.

    ``url`` is validated (https, or http to loopback found from loopback); ``domain`` is
    where it was looked up (``None`` for a join link).
    """

    url: str
    by: FoundBy
    domain: str | None = None

    @property
    def how(self) -> str:
        """One plain sentence saying where the address came from."""
        if self.by is FoundBy.LINK:
            return translate("core.controlplane.onboard", "Named by the join link you opened.")
        if self.by is FoundBy.WEB:
            return translate(
                "core.controlplane.onboard", "Published by {domain} on its web site."
            ).format(domain=self.domain)
        return translate(
            "core.controlplane.onboard", "Published in the DNS records of {domain}."
        ).format(domain=self.domain)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A web answer as the parser needs it: status, ``Location`` if any, body bytes.

    ``too_big`` is True when the body went past the cap (the body is then cut there).
    """

    status: int
    body: bytes = b""
    location: str | None = None
    too_big: bool = False


#: ``await fetch(url)`` → the answer; raises ``OSError`` (or ``httpx.HTTPError``) when
#: the site cannot be reached. Must not follow redirects.
Fetcher = Callable[[str], Awaitable[Fetched]]
#: ``await resolve(name)`` → the TXT strings of ``name`` (each record's parts joined);
#: ``[]`` when the name or record does not exist; raises ``OSError`` when DNS fails.
TxtResolver = Callable[[str], Awaitable[Sequence[str]]]


# ----------------------------------------------------------------------------- parsing
def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message: one line, cut, no control characters."""
    flat = "".join(c if c.isprintable() else "?" for c in text)
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def _not_web(url: str) -> str:
    return translate(
        "core.controlplane.onboard", "The controller's address {url} is not a web address."
    ).format(url=_shown(url))


def _not_record(site: str) -> str:
    return translate(
        "core.controlplane.onboard", "{site} answered with something that is not a record."
    ).format(site=site)


def check_controller(url: str, *, allow_loopback_http: bool) -> str:
    """``url`` as a controller address, normalised (no trailing slash); or raise.

    Accepts ``https://host[:port][/path]``; ``http://`` only to a loopback host and only
    when ``allow_loopback_http``. Refuses credentials, queries, fragments, spaces,
    non-ASCII letters (look-alike hosts) and control characters with
    :class:`RecordRefusedError` naming the problem.
    """
    if not isinstance(url, str) or not url:
        raise RecordRefusedError(
            translate("core.controlplane.onboard", "The controller's address is empty.")
        )
    if len(url) > 512 or any(not c.isprintable() or c.isspace() for c in url):
        raise RecordRefusedError(_not_web(url))
    if not url.isascii():  # look-alike letters (Cyrillic "е" for "e") must not pass as shown
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "The controller's address {url} has letters outside plain ASCII; "
                "it must be published in its xn-- form.",
            ).format(url=_shown(url))
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a bad port raises here
    except ValueError:
        raise RecordRefusedError(_not_web(url)) from None
    if parts.scheme == "http":
        if not (allow_loopback_http and _is_loopback(host)):
            raise RecordRefusedError(
                translate(
                    "core.controlplane.onboard",
                    "The controller's address {url} is not secure (http://); "
                    "Rustronaut only uses https:// addresses.",
                ).format(url=_shown(url))
            )
    elif parts.scheme != "https":
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "The controller's address {url} is not an https:// address.",
            ).format(url=_shown(url))
        )
    if parts.username is not None or parts.password is not None:
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "The controller's address contains a user name or password.",
            )
        )
    if not host:
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard", "The controller's address {url} names no server."
            ).format(url=_shown(url))
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "The controller's address {url} carries extra parts (? or #).",
            ).format(url=_shown(url))
        )
    return url.rstrip("/")


def parse_join_link(link: str) -> str:
    """The controller URL of ``rustronaut://join?controller=https://…``; or raise.

    Strict: scheme ``rustronaut``, host ``join``, exactly one query parameter
    ``controller`` given once, nothing else (no path, fragment or credentials); the
    controller must pass :func:`check_controller` (https; http only to loopback, which
    only a local test bed uses). Raises :class:`InputError` for a malformed link and
    :class:`RecordRefusedError` for a refused controller.
    """
    bad = InputError(
        translate(
            "core.controlplane.onboard",
            "This join link is not valid. It should look like "
            "rustronaut://join?controller=https://…",
        )
    )
    if len(link) > 1024 or any(not c.isprintable() or c.isspace() for c in link):
        raise bad
    try:
        parts = urlsplit(link)
    except ValueError:
        raise bad from None
    if (
        parts.scheme.lower() != "rustronaut"
        or parts.netloc.lower() != "join"
        or parts.path not in ("", "/")
        or parts.fragment
    ):
        raise bad
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise bad from None
    if set(query) != {"controller"} or len(query["controller"]) != 1:
        raise bad
    return check_controller(query["controller"][0], allow_loopback_http=True)


def _domain_of(text: str) -> tuple[str, str]:
    """(domain for messages and DNS, web base URL) for an email or an address; or raise."""
    raw = text.strip()
    bad = InputError(
        translate(
            "core.controlplane.onboard",
            "{text} is not a work email or an organisation's address "
            "(like name@company.com or company.com).",
        ).format(text=_shown(raw))
    )
    if not raw or len(raw) > 320 or any(not c.isprintable() or c.isspace() for c in raw):
        raise bad
    scheme = "https"
    if "@" in raw and "://" not in raw:  # an email: the domain after the last @
        local, _, rest = raw.rpartition("@")
        if not local:
            raise bad
        raw = rest
    elif "://" in raw:
        scheme, _, raw = raw.partition("://")
        scheme = scheme.lower()
        if scheme not in ("https", "http"):
            raise bad
        raw = raw.rstrip("/")
        if "/" in raw or "?" in raw or "#" in raw or "@" in raw:
            raise bad
    try:
        parts = urlsplit(f"{scheme}://{raw}")
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        raise bad from None
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        raise bad
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise bad from None
    if not _valid_host(host):
        raise bad
    if scheme == "http" and not _is_loopback(host):
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "http://{host} is not secure; type the address without http:// "
                "(Rustronaut looks it up over https://).",
            ).format(host=host)
        )
    hostport = f"[{host}]" if ":" in host else host
    if port is not None:
        hostport = f"{hostport}:{port}"
    return host, f"{scheme}://{hostport}"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return (len(labels) >= 2 or host == "localhost") and all(
            _LABEL.match(label) for label in labels
        )
    return True


def well_known_url(text: str) -> str:
    """The ``/.well-known/rustronaut`` URL asked for an email or address ``text``."""
    return _domain_of(text)[1] + "/.well-known/rustronaut"


def parse_record(fetched: Fetched, *, origin: str) -> str | None:
    """The controller URL a ``/.well-known/rustronaut`` answer names; ``None`` if none.

    ``origin`` is the base URL that answered (``https://example.com``). A 404 or 410 is
    "no record" (``None``); a redirect, another non-200 status, a body over
    :data:`MAX_RECORD_BYTES`, non-JSON or an unknown shape raise
    :class:`RecordRefusedError`. Understood: ``{"controller_url": "…"}`` (checked with
    :func:`check_controller`, http only when ``origin`` is loopback), or the controller's
    own discovery document (``api_version`` and ``issuer``): then ``origin`` itself.
    """
    site = urlsplit(origin).hostname or origin
    loopback = _is_loopback(site)
    if fetched.status in (404, 410):
        return None
    if 300 <= fetched.status < 400:
        if fetched.location:
            text = translate(
                "core.controlplane.onboard",
                "{site} answered with a redirect to {location}; Rustronaut does not "
                "follow redirects when looking for a controller.",
            )
        else:
            text = translate(
                "core.controlplane.onboard",
                "{site} answered with a redirect; Rustronaut does not follow redirects "
                "when looking for a controller.",
            )
        raise RecordRefusedError(text.format(site=site, location=_shown(fetched.location or "")))
    if fetched.status != 200:
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard", "{site} answered the lookup with an error ({status})."
            ).format(site=site, status=fetched.status)
        )
    if fetched.too_big or len(fetched.body) > MAX_RECORD_BYTES:
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "{site} answered with a record over {size} KB; it is refused.",
            ).format(site=site, size=MAX_RECORD_BYTES // 1024)
        )
    try:
        doc = json.loads(fetched.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RecordRefusedError(_not_record(site)) from None
    if not isinstance(doc, dict):
        raise RecordRefusedError(_not_record(site))
    if "controller_url" in doc:
        url = doc["controller_url"]
        if not isinstance(url, str):
            raise RecordRefusedError(
                translate(
                    "core.controlplane.onboard",
                    "{site} published a controller address that is not text.",
                ).format(site=site)
            )
        return check_controller(url, allow_loopback_http=loopback)
    if doc.get("api_version") == "v1" and isinstance(doc.get("issuer"), str):
        return check_controller(origin, allow_loopback_http=loopback)
    raise RecordRefusedError(
        translate(
            "core.controlplane.onboard",
            "{site} answered with a record Rustronaut does not understand.",
        ).format(site=site)
    )


def parse_txt(records: Sequence[str], *, domain: str) -> str | None:
    """The controller URL of the ``_rustronaut`` TXT strings; ``None`` when none has one.

    A record is ``url=https://…`` (other ``key=value`` words separated by spaces or ``;``
    are ignored, for future use). Two records naming different controllers are refused
    (:class:`RecordRefusedError`), so is an http:// or malformed URL.
    """
    urls: set[str] = set()
    for record in records:
        for word in re.split(r"[\s;]+", record.strip()):
            key, sep, value = word.partition("=")
            if sep and key.lower() == "url":
                urls.add(check_controller(value, allow_loopback_http=False))
    if len(urls) > 1:
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "The DNS records of {domain} name more than one controller; ask IT which to use.",
            ).format(domain=domain)
        )
    return urls.pop() if urls else None


# ----------------------------------------------------------------------------- the I/O
def http_fetcher(
    transport: httpx.AsyncBaseTransport | None = None, *, timeout: float = TIMEOUT_S
) -> Fetcher:
    """A :data:`Fetcher` on httpx: no redirects followed, body capped, OS trust store.

    ``transport`` is the test seam (``httpx.MockTransport``). The whole answer must
    arrive within ``timeout`` seconds (a server trickling bytes raises ``TimeoutError``).
    """

    async def fetch(url: str) -> Fetched:
        async with asyncio.timeout(timeout):
            return await _fetch(url)

    async def _fetch(url: str) -> Fetched:
        import httpx

        from core.controlplane.client import _default_ssl_context

        verify = _default_ssl_context() if transport is None else True
        async with (
            httpx.AsyncClient(
                transport=transport, verify=verify, follow_redirects=False, timeout=timeout
            ) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as answer,
        ):
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_RECORD_BYTES:
                    return Fetched(answer.status_code, bytes(body), too_big=True)
            return Fetched(answer.status_code, bytes(body), answer.headers.get("location"))

    return fetch


def dns_txt_resolver() -> TxtResolver:
    """A :data:`TxtResolver` on dnspython's asyncio resolver (the system's DNS servers)."""

    async def resolve(name: str) -> list[str]:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        try:
            answer = await dns.asyncresolver.resolve(name, "TXT", lifetime=TIMEOUT_S)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise OSError(f"DNS lookup of {name} failed: {exc}") from exc
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]

    return resolve


async def discover(
    text: str,
    *,
    fetch: Fetcher | None = None,
    resolve_txt: TxtResolver | None = None,
) -> Found:
    """Find the controller for what the employee typed (email, address or join link).

    Asks the web site first, then DNS (see the module docstring). Raises an
    :class:`OnboardingError` subclass with words and a next step; never returns an
    unchecked URL. Each network failure is logged (with its technical cause) here.
    """
    text = text.strip()
    if text.lower().startswith("rustronaut:"):
        return Found(parse_join_link(text), FoundBy.LINK)
    domain, base = _domain_of(text)
    fetch = fetch or http_fetcher()
    resolve_txt = resolve_txt or dns_txt_resolver()
    web_failed = False
    try:
        fetched = await fetch(base + "/.well-known/rustronaut")
    except Exception as exc:  # the boundary: any network failure, then DNS
        _log.warning("onboarding: %s/.well-known/rustronaut not reachable: %s", base, exc)
        if _untrusted_certificate(exc):
            raise RecordRefusedError(
                translate(
                    "core.controlplane.onboard",
                    "The web site of {domain} presented a certificate Rustronaut does not "
                    "trust; someone on this network may be impersonating it.",
                ).format(domain=domain)
            ) from None
        web_failed = True
    else:
        url = parse_record(fetched, origin=base)
        if url is not None:
            _log.info("onboarding: %s names the controller %s", domain, url)
            await _cross_check(url, domain, resolve_txt)
            return Found(url, FoundBy.WEB, domain)
    if _is_loopback(domain) or _is_ip(domain):
        records: Sequence[str] = []  # no DNS names under an address
    else:
        try:
            records = await resolve_txt(f"_rustronaut.{domain}")
        except Exception as exc:  # the boundary: DNS failure in words
            _log.warning("onboarding: TXT _rustronaut.%s not resolved: %s", domain, exc)
            if web_failed:
                raise LookupFailedError(
                    translate(
                        "core.controlplane.onboard",
                        "Rustronaut could not reach {domain} or its DNS records.",
                    ).format(domain=domain)
                ) from None
            records = []
    url = parse_txt(records, domain=domain)
    if url is not None:
        _log.info("onboarding: DNS of %s names the controller %s", domain, url)
        return Found(url, FoundBy.DNS, domain)
    if web_failed:
        raise LookupFailedError(
            translate(
                "core.controlplane.onboard",
                "Rustronaut could not reach {domain}, and its DNS names no controller.",
            ).format(domain=domain)
        )
    raise NotPublishedError(
        translate(
            "core.controlplane.onboard", "{domain} does not publish a Rustronaut controller."
        ).format(domain=domain)
    )


def _untrusted_certificate(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed certificate verification."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLCertVerificationError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _same_controller(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port, pa.path.rstrip("/")) == (
        pb.scheme,
        pb.hostname,
        pb.port,
        pb.path.rstrip("/"),
    )


async def _cross_check(url: str, domain: str, resolve_txt: TxtResolver) -> None:
    """Refuse ``url`` (named by the web site) when the domain's TXT record names another
    controller. A DNS that fails or is slow confirms nothing and refuses nothing."""
    if _is_loopback(domain) or _is_ip(domain):
        return
    try:
        async with asyncio.timeout(CROSS_CHECK_S):
            records = await resolve_txt(f"_rustronaut.{domain}")
    except Exception as exc:  # the boundary: DNS cannot confirm; the web answer stands
        _log.info("onboarding: TXT _rustronaut.%s not resolved to confirm: %s", domain, exc)
        return
    listed = parse_txt(records, domain=domain)
    if listed is not None and not _same_controller(listed, url):
        _log.warning("onboarding: %s: web names %s, DNS names %s", domain, url, listed)
        raise RecordRefusedError(
            translate(
                "core.controlplane.onboard",
                "{domain} names two different controllers: {web} on its web site and "
                "{dns} in its DNS records.",
            ).format(domain=domain, web=_shown(url), dns=_shown(listed))
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
