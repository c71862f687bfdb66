"""How to fix a failed posture fact, per OS: short, concrete, shown by the tray and CLI.

``remediation(fact, os)`` never fails: an unlisted fact gets a generic text asking IT.
Texts say what is wrong and the one action (a settings path or a command) that fixes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = ["REMEDIATIONS", "remediation"]

_L, _W, _M = "linux", "windows", "macos"

#: (fact name, OS) → what to do, in English (:func:`remediation` translates it).
REMEDIATIONS: Mapping[tuple[str, str], str] = {
    ("disk.encrypted", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Encrypt the system disk: Linux full-disk encryption (LUKS) is chosen at install time "
        "— reinstall with disk encryption or ask IT.",
    ),
    ("disk.encrypted", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on BitLocker: Settings → Privacy & security → Device encryption, or as "
        "administrator: manage-bde -on C:",
    ),
    ("disk.encrypted", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on FileVault: System Settings → Privacy & Security → FileVault → Turn On, or: "
        "sudo fdesetup enable",
    ),
    ("firewall.enabled", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on the firewall: sudo ufw enable (or: sudo systemctl enable --now firewalld)",
    ),
    ("firewall.enabled", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on Windows Firewall for every network profile: as administrator, netsh "
        "advfirewall set allprofiles state on",
    ),
    ("firewall.enabled", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on the firewall: System Settings → Network → Firewall, or: sudo "
        "/usr/libexec/ApplicationFirewall/socketfilterfw --setglobalstate on",
    ),
    ("screen_lock.enabled", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on the automatic screen lock: gsettings set org.gnome.desktop.screensaver "
        "lock-enabled true && gsettings set org.gnome.desktop.session idle-delay 300",
    ),
    ("screen_lock.enabled", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on a password-protected screen saver: Settings → Personalization → Lock screen "
        "→ Screen saver, tick “On resume, display logon screen”",
    ),
    ("screen_lock.enabled", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Require a password when the screen saver starts: System Settings → Lock Screen → "
        "“Require password after screen saver begins” → Immediately",
    ),
    ("screen_lock.timeout_s", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Lock the screen sooner: gsettings set org.gnome.desktop.session idle-delay 300",
    ),
    ("screen_lock.timeout_s", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Lock the screen sooner: Settings → Personalization → Lock screen → Screen saver → "
        "Wait 5 minutes",
    ),
    ("screen_lock.timeout_s", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Lock the screen sooner: System Settings → Lock Screen → “Start Screen Saver when "
        "inactive” → 5 minutes",
    ),
    ("updates.auto", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on automatic security updates: sudo apt install unattended-upgrades && sudo "
        "dpkg-reconfigure -plow unattended-upgrades (Fedora: sudo systemctl enable --now "
        "dnf-automatic-install.timer)",
    ),
    ("updates.auto", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on automatic updates: Settings → Windows Update; if a policy turned them off, ask IT",
    ),
    ("updates.auto", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on automatic updates: System Settings → General → Software Update → Automatic "
        "updates, or: sudo softwareupdate --schedule on",
    ),
    ("secure_boot.enabled", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on Secure Boot in the UEFI firmware setup, then check with: mokutil --sb-state",
    ),
    ("secure_boot.enabled", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on Secure Boot in the UEFI firmware settings (Settings → System → Recovery → "
        "Advanced startup → UEFI Firmware Settings)",
    ),
    ("secure_boot.enabled", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Set Secure Boot to Full Security in Startup Security Utility (start up in macOS Recovery)",
    ),
    ("av.running", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Start the antivirus/EDR agent IT installed (e.g. sudo systemctl start "
        "clamav-daemon), or ask IT to install it",
    ),
    ("av.running", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Turn on real-time protection: Windows Security → Virus & threat protection → Manage "
        "settings",
    ),
    ("av.running", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Start the antivirus/EDR agent IT installed, or ask IT to install it",
    ),
    ("mdm.enrolled", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Ask IT to enroll this device in device management",
    ),
    ("mdm.enrolled", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Enroll the device: Settings → Accounts → Access work or school → Connect",
    ),
    ("mdm.enrolled", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Enroll the device: System Settings → Privacy & Security → Profiles, or: sudo "
        "profiles renew -type enrollment",
    ),
    ("domain.joined", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Join the company domain: sudo realm join <domain> (ask IT)",
    ),
    ("domain.joined", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Join the company: Settings → Accounts → Access work or school → Connect (ask IT)",
    ),
    ("domain.joined", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Bind this Mac to the directory with Directory Utility (ask IT)",
    ),
    ("os.version", _L): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Update the system: sudo apt update && sudo apt full-upgrade",
    ),
    ("os.version", _W): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Update Windows: Settings → Windows Update → Check for updates",
    ),
    ("os.version", _M): QT_TRANSLATE_NOOP(
        "core.posture.remediation",
        "Update macOS: System Settings → General → Software Update",
    ),
}

_ANY_OS = {
    "client.version": QT_TRANSLATE_NOOP(
        "core.posture.remediation", "Update Rustronaut to the latest version"
    ),
    "device.serial": QT_TRANSLATE_NOOP(
        "core.posture.remediation", "The device's serial number is needed: ask IT"
    ),
}


def remediation(fact_name: str, os: str) -> str:
    """What to do when ``fact_name`` fails a requirement on ``os`` (linux/windows/macos).

    In the installed language (``core.i18n``). Pure, never raises; an unknown fact or OS
    gets a generic "ask IT" text.
    """
    name = fact_name.removeprefix("posture.")
    text = REMEDIATIONS.get((name, os)) or _ANY_OS.get(name)
    if text is not None:
        return translate("core.posture.remediation", text)
    os_key = (name.split(".", 1)[0], name.rsplit(".", 1)[-1])
    if os_key[0] == "process" and os_key[1] == "running":
        proc = name[len("process.") : -len(".running")]
        return translate(
            "core.posture.remediation",
            "Start “{name}” (it must be running), or ask IT to install it",
        ).format(name=proc)
    if os_key[0] == "file" and os_key[1] == "present":
        path = name[len("file.") : -len(".present")]
        return translate(
            "core.posture.remediation",
            "The file {path} must exist: reinstall the company's management agent or ask IT",
        ).format(path=path)
    if os_key[0] == "os":
        return translate("core.posture.remediation", "Update the operating system")
    return translate(
        "core.posture.remediation", "This device does not meet the requirement on {name}: ask IT"
    ).format(name=name)
