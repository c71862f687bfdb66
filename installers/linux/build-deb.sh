#!/usr/bin/env bash
# Build the Debian package from a PyInstaller bundle.
#
#   build-deb.sh BUNDLE_DIR OUT_DIR [ARCH]     → OUT_DIR/rustronaut_<version>_<arch>.deb
#
# ARCH defaults to `dpkg --print-architecture`. Files are owned by root in the package
# (--root-owner-group), whoever builds it. Prints the path of the .deb. Needs dpkg-deb.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

bundle=${1:?usage: build-deb.sh BUNDLE_DIR OUT_DIR [ARCH]}
out=${2:?usage: build-deb.sh BUNDLE_DIR OUT_DIR [ARCH]}
arch=${3:-$(dpkg --print-architecture)}
version=$(pkg_version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/root"

stage_root "$bundle" "$stage"
install -d -m 0755 "$stage/DEBIAN"
for script in preinst postinst prerm postrm; do
  install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"
done
# Files under /etc that the package ships are conffiles: an admin's edit survives upgrades.
echo "/etc/xdg/autostart/$APP_ID-autostart.desktop" > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# Depends: what the bundle loads from the system instead of carrying it (libc, GL/EGL,
# fontconfig, xkbcommon and the xcb libraries of the Qt xcb platform plugin), plus
# systemd for the helper and passwd for groupadd. wireguard-tools: the helper's backend.
cat > "$stage/DEBIAN/control" <<CONTROL
Package: $PKG_NAME
Version: $version
Architecture: $arch
Maintainer: Rustronaut IT <it@rustronaut.example>
Installed-Size: $size
Depends: libc6 (>= 2.31), libfontconfig1, libfreetype6, libgl1, libegl1, libxkbcommon0, libxkbcommon-x11-0, libdbus-1-3, libxcb1, passwd
Recommends: wireguard-tools, systemd
Section: net
Priority: optional
Homepage: https://rustronaut.example
Description: Rustronaut zero-trust access client
 Signs you in with your work account, checks this device's posture and
 connects you to the resources your organization's signed policy allows, over
 WireGuard. Ships the tray app, the rustronaut CLI and the privileged helper
 (systemd unit rustronaut-helper.service; members of the group "rustronaut"
 may use it).
CONTROL
mkdir -p "$out"
deb="$out/${PKG_NAME}_${version}_${arch}.deb"
# RUSTRONAUT_DEB_COMPRESSION=type:level (default xz:6; the tests use gzip:1 for speed).
comp=${RUSTRONAUT_DEB_COMPRESSION:-xz:6}
dpkg-deb --root-owner-group -Z"${comp%%:*}" -z"${comp##*:}" --build "$stage" "$deb" >/dev/null
echo "$deb"
