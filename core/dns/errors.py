"""The one exception tree of ``core.dns``.

::

    DnsError (OSError)        base: a name could not be turned into usable addresses
    ├── BadName               the host name is not a valid DNS name (nothing was asked)
    ├── NameNotFound          the tunnel's DNS says the name does not exist (NXDOMAIN)
    │                         or has no A/AAAA records
    ├── DnsUnreachable        no tunnel DNS server answered in time (or no tunnel socket)
    ├── BadAnswer             the servers answered, but with a failure (SERVFAIL,
    │                         REFUSED, …) or an unusable answer (a CNAME loop)
    └── AddressRefused        every address in the answer is one that must never be
                              dialled (loopback, link-local, …); the message says which

Every one is an ``OSError`` so it fits the ``core.proxy.dial.Resolver`` contract ("may
raise OSError"), and carries the employee's words (``core.errors.UserFacing``).
Configuration mistakes (a bad server address or suffix given to the constructor) raise
``ValueError`` instead: they are the caller's bug or a bad policy, caught at the boundary.
"""

from __future__ import annotations

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP

__all__ = [
    "AddressRefused",
    "BadAnswer",
    "BadName",
    "DnsError",
    "DnsUnreachable",
    "NameNotFound",
]


class DnsError(OSError, UserFacingError):
    """Base of everything ``core.dns`` raises while resolving."""

    title = QT_TRANSLATE_NOOP("core.dns.errors", "A company name could not be resolved")
    next_step = QT_TRANSLATE_NOOP(
        "core.dns.errors",
        "Check that you are connected. If it keeps happening, collect diagnostics "
        "(rustronaut diag) and contact IT.",
    )
    code = "internal"


class BadName(DnsError):
    """The host name is not a valid DNS name."""

    title = QT_TRANSLATE_NOOP("core.dns.errors", "Not a valid host name")
    next_step = QT_TRANSLATE_NOOP("core.dns.errors", "Check the address you typed.")
    code = "bad_request"


class NameNotFound(DnsError):
    """The name does not exist, or has no address records, according to the tunnel's DNS."""

    title = QT_TRANSLATE_NOOP("core.dns.errors", "No such company name")
    next_step = QT_TRANSLATE_NOOP(
        "core.dns.errors", "Check the address you typed. If it should exist, contact IT."
    )


class DnsUnreachable(DnsError):
    """No DNS server of the tunnel answered in time."""

    title = QT_TRANSLATE_NOOP("core.dns.errors", "The company's DNS did not answer")


class BadAnswer(DnsError):
    """The DNS servers answered with a failure or an answer that cannot be used."""

    title = QT_TRANSLATE_NOOP("core.dns.errors", "The company's DNS gave an unusable answer")


class AddressRefused(DnsError):
    """The answer only held addresses that must never be dialled."""

    title = QT_TRANSLATE_NOOP("core.dns.errors", "A company name points somewhere it must not")
    next_step = QT_TRANSLATE_NOOP(
        "core.dns.errors", "Contact IT: the company's DNS answer for this name is refused."
    )
