"""The words for the tunnel's transport (issue 21): which notice a change deserves.

A tunnel whose spec lists relays travels over UDP straight to the gateway, or over a TLS
relay when the network blocks UDP; the helper decides and says why with a reason code
(``wg_backends.status.TransportStatus``), the engine copies it into ``TunnelView`` and
tells the employee once per change with ``transport_notice``. Pure; the words are in the
installed language (``core.i18n``, context ``core.engine.transport``).
"""

from __future__ import annotations

from core.engine.state import TunnelView
from core.i18n import translate

__all__ = ["transport_notice"]


def _key(view: TunnelView | None) -> tuple[str, str | None, bool]:
    if view is None or not view.transport:
        return ("", None, False)
    return (view.transport, view.relay, view.transport_state == "no_path")


def transport_notice(old: TunnelView | None, new: TunnelView | None) -> tuple[str, str] | None:
    """The notice for going from ``old`` to ``new`` (the tunnel as last shown and as now
    seen), with the reason code it is about; None when the transport did not change in a
    way worth saying (same path, no tunnel, a tunnel without relays, or the first sight
    of a tunnel on direct UDP). Pure."""
    if new is None or not new.transport:
        return None
    before, after = _key(old), _key(new)
    if before == after:
        return None
    kind, relay, no_path = after
    reason = new.transport_reason
    if no_path:
        return (
            translate(
                "core.engine.transport",
                "This network lets neither WireGuard's UDP nor any relay through",
            ),
            reason,
        )
    if kind == "relay":
        name = relay or "?"
        if before[0] == "relay" and before[1] not in (None, relay):
            text = translate(
                "core.engine.transport", "Relay {old} stopped answering: now through relay {relay}"
            ).format(old=before[1], relay=name)
        elif reason == "udp_silent":
            text = translate(
                "core.engine.transport",
                "Connected through relay {relay}: UDP stopped getting through on this network",
            ).format(relay=name)
        else:
            text = translate(
                "core.engine.transport", "Connected through relay {relay}: this network blocks UDP"
            ).format(relay=name)
        return text, reason
    if before[0] == "relay" or before[2]:
        return translate("core.engine.transport", "Back on direct UDP"), reason
    return None
