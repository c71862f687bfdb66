"""macOS collectors: ``sw_vers``, ``ioreg``, ``fdesetup``, the application firewall,
``softwareupdate``, ``profiles``, ``sysadminctl``/``defaults`` (screen lock), ``nvram``
(Secure Boot on T2 Macs) and ``dsconfigad`` — all through the command runner. These
tools print English regardless of the user's language."""

from __future__ import annotations

from core.posture.collector import Collector

__all__ = ["collectors"]


def collectors() -> tuple[Collector, ...]:
    """The macOS collector set."""
    from core.posture.macos import (
        enrollment,
        filevault,
        firewall,
        osinfo,
        screen_lock,
        secure_boot,
        updates,
    )

    return (
        osinfo.COLLECTOR,
        osinfo.SERIAL,
        filevault.COLLECTOR,
        firewall.COLLECTOR,
        screen_lock.COLLECTOR,
        updates.COLLECTOR,
        secure_boot.COLLECTOR,
        enrollment.COLLECTOR,
        enrollment.DOMAIN,
    )
