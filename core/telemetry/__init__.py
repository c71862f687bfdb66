"""Decision telemetry, client side: what the proxy decided, queued on disk and sent.

``TelemetryQueue`` (``queue``) keeps undelivered items in a capped file in the user's
state directory (0600, atomic writes); ``TelemetrySender`` (``sender``) records the
proxy's decisions at the managed level (``telemetry_level``: off, counts, full; app paths
optionally hashed) and sends them to the controller in batches signed with the device
key (the format is ``core.wire.telemetry``), backing off while offline. The engine's
wiring builds one only when the level is not ``off`` and runs it with the engine.

Errors the submit seam raises to steer the sender: ``RetryLater`` (busy, device unusable
now) and ``BatchRefused`` (never acceptable: dropped and counted); any other exception
means the controller cannot be reached.
"""

from __future__ import annotations

from core.telemetry.queue import DEFAULT_CAP, QUEUE_FILE, TelemetryQueue
from core.telemetry.sender import BatchRefused, RetryLater, Sign, Submit, TelemetrySender

__all__ = [
    "DEFAULT_CAP",
    "QUEUE_FILE",
    "BatchRefused",
    "RetryLater",
    "Sign",
    "Submit",
    "TelemetryQueue",
    "TelemetrySender",
]
