#!/bin/bash
# Build, sign and notarize the macOS installer package (runs on a macOS runner).
#
#   build-pkg.sh APP_PATH OUT_DIR     → OUT_DIR/rustronaut-<ver>-macos-<arch>.pkg
#
# APP_PATH is dist/Rustronaut.app from `pyinstaller build.spec` (built with
# RUSTRONAUT_CODESIGN_IDENTITY set, so PyInstaller signed every Mach-O inside).
# Environment (all optional; without them the pkg is built unsigned, for local tests):
#   MACOS_APP_IDENTITY        "Developer ID Application: … (TEAMID)"  — codesign
#   MACOS_INSTALLER_IDENTITY  "Developer ID Installer: … (TEAMID)"    — productbuild
#   APPLE_ID, APPLE_TEAM_ID, APPLE_NOTARY_PASSWORD                    — notarytool
#   MACOS_KEYCHAIN            keychain holding both identities
#   RUSTRONAUT_ARCH           label in the file name (default: uname -m)
#   MACOS_WG_TOOLS            directory holding wg, wg-quick, wireguard-go and bash (4+) for
#                             this arch (default: the build machine's Homebrew bin, `brew
#                             --prefix`/bin). They are copied into the package's own prefix
#                             (TOOLS below, root:wheel 0755): the root helper never runs tools
#                             from a Homebrew prefix, which the user who installed Homebrew owns.
#                             Refused (exit 2; installers/macos/stage-tools.sh): a Mach-O linking
#                             a library outside /usr/lib and /System (Homebrew's own bash links
#                             its gettext: build bash --disable-nls), a wg-quick naming a
#                             Homebrew path, a bash older than 4.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
app=${1:?usage: build-pkg.sh APP_PATH OUT_DIR}
out=${2:?usage: build-pkg.sh APP_PATH OUT_DIR}
version=${RUSTRONAUT_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/../../core/__init__.py")}
arch=${RUSTRONAUT_ARCH:-$(uname -m)}
[ -x "$app/Contents/MacOS/rustronaut-helper" ] || { echo "build-pkg.sh: $app is not the Rustronaut.app bundle" >&2; exit 2; }
kc=()
[ -n "${MACOS_KEYCHAIN:-}" ] && kc=(--keychain "$MACOS_KEYCHAIN")
# The prefix wg_backends/backends/macos.py runs its tools from (TOOLS_PREFIX + /bin).
TOOLS="Library/Application Support/Rustronaut/bin"
tools_src=${MACOS_WG_TOOLS:-}
if [ -z "$tools_src" ] && command -v brew >/dev/null; then tools_src="$(brew --prefix)/bin"; fi
[ -n "$tools_src" ] || { echo "build-pkg.sh: set MACOS_WG_TOOLS (wg, wg-quick, wireguard-go, bash)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Stage the payload: the app, the helper's launchd daemon and the agent's LaunchAgent.
mkdir -p "$work/root/Applications" "$work/root/Library/LaunchDaemons" \
  "$work/root/Library/LaunchAgents" "$out"
ditto "$app" "$work/root/Applications/Rustronaut.app"
python3 "$here/helper_plist.py" "$work/root/Library/LaunchDaemons/com.rustronaut.helper.plist"
plutil -lint "$work/root/Library/LaunchDaemons/com.rustronaut.helper.plist"
install -m 0644 "$here/../../resources/macos/com.rustronaut.agent.plist" "$work/root/Library/LaunchAgents/"
plutil -lint "$work/root/Library/LaunchAgents/com.rustronaut.agent.plist"

# 1b. The WireGuard tools, into the package's own prefix (refused if they would load
#     anything from a Homebrew prefix: stage-tools.sh).
bash "$here/stage-tools.sh" "$tools_src" "$work/root/$TOOLS"

# 2. Sign the app (hardened runtime, secure timestamp): inner executables first, then
#    the bundle; --deep is not used (Apple discourages it), each Mach-O is named.
if [ -n "${MACOS_APP_IDENTITY:-}" ]; then
  sign=(codesign --force --timestamp --options runtime --entitlements "$here/entitlements.plist"
        --sign "$MACOS_APP_IDENTITY" "${kc[@]}")
  staged="$work/root/Applications/Rustronaut.app"
  find "$staged/Contents" -type f \( -name '*.dylib' -o -name '*.so' -o -perm -111 \) -print0 |
    while IFS= read -r -d '' f; do
      if file -b "$f" | grep -q 'Mach-O'; then "${sign[@]}" "$f"; fi
    done
  "${sign[@]}" "$staged"
  codesign --verify --strict --deep --verbose=2 "$staged"
  for tool in wg wireguard-go bash; do
    "${sign[@]}" "$work/root/$TOOLS/$tool"
    codesign --verify --strict --verbose=2 "$work/root/$TOOLS/$tool"
  done
fi

# 3. Component package (with the pre/postinstall scripts), then the product archive.
pkgbuild --root "$work/root" --scripts "$here/scripts" --identifier com.rustronaut.client.pkg \
  --version "$version" --install-location / --ownership recommended \
  "$work/rustronaut-component.pkg"
pkg="$out/rustronaut-$version-macos-$arch.pkg"
pb=(productbuild --distribution "$here/distribution.xml" --package-path "$work" --version "$version")
[ -n "${MACOS_INSTALLER_IDENTITY:-}" ] && pb+=(--sign "$MACOS_INSTALLER_IDENTITY" "${kc[@]}" --timestamp)
"${pb[@]}" "$pkg"

# 4. Notarize and staple (the ticket travels with the pkg; Gatekeeper works offline).
if [ -n "${APPLE_NOTARY_PASSWORD:-}" ]; then
  xcrun notarytool submit "$pkg" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
    --password "$APPLE_NOTARY_PASSWORD" --wait --timeout 30m
  xcrun stapler staple "$pkg"
  xcrun stapler validate "$pkg"
  spctl --assess --type install --verbose=2 "$pkg"
fi
if [ -n "${MACOS_INSTALLER_IDENTITY:-}" ]; then
  pkgutil --check-signature "$pkg"
fi
echo "$pkg"
