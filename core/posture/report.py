"""Turning a collection into a signed posture report (the engine's one call).

``make_report`` orders the facts by name (a stable payload for the same facts) and
``signed_report`` signs it with the device key via ``core.wire.posture.sign_report``.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.posture import Fact, PostureReport, sign_report

__all__ = ["make_report", "signed_report"]


def make_report(
    facts: Mapping[str, Fact], *, device_id: str, nonce: str, now: float
) -> PostureReport:
    """A report of ``facts`` for the controller's ``nonce``; raises ``ValueError`` on a
    bad device id, nonce or more than ``MAX_FACTS`` facts. Pure."""
    return PostureReport(
        device_id=device_id,
        nonce=nonce,
        issued_at=now,
        facts=tuple(facts[name] for name in sorted(facts)),
    )


def signed_report(
    facts: Mapping[str, Fact],
    key: Ed25519PrivateKey,
    *,
    device_id: str,
    nonce: str,
    now: float,
) -> str:
    """``make_report`` then sign: the JWS compact string to send. Thread-safe."""
    return sign_report(make_report(facts, device_id=device_id, nonce=nonce, now=now), key)
