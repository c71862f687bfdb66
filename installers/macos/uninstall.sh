#!/bin/bash
# Remove Rustronaut from a Mac (run as root; MDM "script" payload or by hand).
#
#   uninstall.sh [--purge]
#
# Always: stop and remove the launchd helper (its shutdown brings the tunnel down), the
# app, the package receipt. Kept unless --purge: the helper's state
# (/Library/Application Support/Rustronaut), logs and the group "rustronaut". Never
# touched: the configuration profile (IT removes it in the MDM) and users' settings.
set -eu
LABEL=com.rustronaut.helper
purge=0
[ "${1:-}" = "--purge" ] && purge=1
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root" >&2; exit 2; }
launchctl bootout "system/$LABEL" 2>/dev/null || true
rm -f "/Library/LaunchDaemons/$LABEL.plist"
pkill -x rustronaut-tray 2>/dev/null || true
rm -rf /Applications/Rustronaut.app
pkgutil --forget com.rustronaut.client.pkg >/dev/null 2>&1 || true
if [ "$purge" = 1 ]; then
  rm -rf "/Library/Application Support/Rustronaut" /Library/Logs/Rustronaut /var/run/rustronaut
  dseditgroup -o delete rustronaut 2>/dev/null || true
fi
echo "Rustronaut removed$([ "$purge" = 1 ] && echo ' (purged)')"
