"""Linux collectors: one module per fact family, all real on this machine.

os-release/uname, DMI serial (sysfs, root), the root volume's dm-crypt ancestry
(``lsblk -J``), the firewall (``nft -j list ruleset``, then ``iptables -S``, ``ufw``,
``firewall-cmd``), GNOME screen lock (``gsettings``), unattended-upgrades
(``apt-config dump``), Secure Boot (``mokutil --sb-state``, then EFI variables) and
realmd domain membership (``realm list``).
"""

from __future__ import annotations

from core.posture.collector import Collector

__all__ = ["collectors"]


def collectors() -> tuple[Collector, ...]:
    """The Linux collector set (lazy imports keep other OSes' parsers unloaded)."""
    from core.posture.linux import disk, domain, firewall, osinfo, screen_lock, secure_boot, updates

    return (
        osinfo.COLLECTOR,
        osinfo.SERIAL,
        disk.COLLECTOR,
        firewall.COLLECTOR,
        screen_lock.COLLECTOR,
        updates.COLLECTOR,
        secure_boot.COLLECTOR,
        domain.COLLECTOR,
    )
