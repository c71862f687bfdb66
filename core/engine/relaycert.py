"""When to hand the helper a newer relay client certificate: pure, tested as a table.

The controller issues a fresh 7-day relay certificate with every bundle answer (issue 21)
and the engine hands the latest one to the helper with every tunnel up or update. A new
certificate alone must not re-apply the tunnel each time a bundle is fetched (posture
drift, policy changes, refreshes: a re-apply storm), so it rides along with the next
update that happens anyway, and the engine makes an update of its own only when the
certificate the helper holds is due: older than ``RENEW_AGE_S`` or expiring within
``RENEW_BEFORE_S`` (or the helper has none, or it cannot be read).

Only the validity window is read here (``cryptography``); the helper checks that the
certificate's key is its own and the relay checks the chain. Raises nothing.
"""

from __future__ import annotations

import functools

from cryptography import x509

__all__ = ["RENEW_AGE_S", "RENEW_BEFORE_S", "cert_due", "cert_window"]

#: A held certificate older than this (from its notBefore) is replaced by a newer one.
RENEW_AGE_S = 24 * 3600.0
#: A held certificate that expires within this is replaced by a newer one.
RENEW_BEFORE_S = 2 * 24 * 3600.0


@functools.lru_cache(maxsize=8)
def cert_window(pem: str) -> tuple[float, float] | None:
    """The certificate's (notBefore, notAfter) as Unix times; None when ``pem`` is not
    one readable certificate. Pure, so memoised: the engine asks on every health tick
    about the same two certificates (the one held, the latest) until one is due."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


def cert_due(given: str | None, latest: str | None, *, now: float) -> bool:
    """Whether the engine should update the tunnel to hand the helper ``latest`` in place
    of ``given`` (the one it last handed over; None: none yet). Never for no ``latest``,
    the same one, or a ``latest`` that is unreadable or not valid at ``now``. Pure."""
    if latest is None or latest == given:
        return False
    fresh = cert_window(latest)
    if fresh is None or not fresh[0] - 300 <= now < fresh[1]:
        return False  # five minutes' grace for clocks a little behind the controller's
    if given is None:
        return True
    held = cert_window(given)
    if held is None:
        return True
    not_before, not_after = held
    return now - not_before >= RENEW_AGE_S or not_after - now <= RENEW_BEFORE_S
