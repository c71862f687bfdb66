#!/usr/bin/env bash
# Run a command inside a private D-Bus session with an unlocked gnome-keyring (a real
# Secret Service), isolated from the user's own keyrings. Usage: with-keyring.sh CMD...
set -euo pipefail
if [ -n "${RUSTRONAUT_IN_KEYRING_SESSION:-}" ] || ! command -v dbus-run-session >/dev/null \
   || ! command -v gnome-keyring-daemon >/dev/null; then
  exec "$@"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/run" RUSTRONAUT_IN_KEYRING_SESSION=1
mkdir -p -m700 "$XDG_RUNTIME_DIR" "$XDG_DATA_HOME"
dbus-run-session -- bash -c 'echo -n rustronaut-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec "$@"' _ "$@"
