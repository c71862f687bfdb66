"""Windows collectors: OS tools through the command runner, parsed language-neutrally.

Where a tool's text is localized (``manage-bde``, ``netsh``) the parsers key on what does
not change — numbers, the layout of the output — plus small tables of the known words
in English, German, French, Spanish and Italian, and fall back to a PowerShell query
whose output our own script makes language-neutral (enum names, exception types,
JSON). Registry reads go through ``reg query`` (its layout is the same in every
language).
"""

from __future__ import annotations

from core.posture.collector import Collector

__all__ = ["collectors"]


def collectors() -> tuple[Collector, ...]:
    """The Windows collector set."""
    from core.posture.windows import (
        av,
        bitlocker,
        domain,
        firewall,
        osinfo,
        screen_lock,
        secure_boot,
        updates,
    )

    return (
        osinfo.COLLECTOR,
        osinfo.SERIAL,
        bitlocker.COLLECTOR,
        firewall.COLLECTOR,
        av.COLLECTOR,
        secure_boot.COLLECTOR,
        screen_lock.COLLECTOR,
        updates.COLLECTOR,
        domain.COLLECTOR,
        domain.MDM,
    )
