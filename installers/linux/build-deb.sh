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
# The directories the package shares with the system: all of its directories but its
# own trees. preinst records which of them exist before a fresh install and postrm
# puts those back after dpkg's removal (dpkg deletes any it finds empty, /opt included).
shared_dirs=$(cd "$stage" && find . -mindepth 1 -type d | sed 's|^\.||' \
  | grep -v -E "^($PREFIX|/usr/share/doc/$PKG_NAME|/etc/rustronaut)(/|\$)" | LC_ALL=C sort | tr '\n' ' ')
install -d -m 0755 "$stage/DEBIAN"
for script in preinst postinst prerm postrm; do
  install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"
done
sed -i "s|@SHARED_DIRS@|${shared_dirs% }|" "$stage/DEBIAN/preinst"
# Files under /etc that the package ships are conffiles: an admin's edit survives upgrades.
echo "/etc/xdg/autostart/$APP_ID-autostart.desktop" > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# Depends: what the bundle loads from the system instead of carrying it (libc, GL/EGL,
# fontconfig, xkbcommon and the xcb libraries of the Qt xcb platform plugin), passwd
# for groupadd, and every tool the helper runs: wg and wg-quick (wireguard-tools), ip
# (iproute2: the helper and wg-quick), nft (nftables: the helper's firewall, wg-quick's
# full tunnel), sysctl (procps: wg-quick's full tunnel). Essential packages (bash,
# util-linux, coreutils) are not listed (Debian policy). Without one of them the install
# must fail, not the helper (tests/installers/test_package_contents.py).
# Recommends: systemd runs the helper (an image build may add it later).
# Suggests: a resolvconf for a full tunnel's DNS (wg-quick's DNS =); split DNS uses
# systemd-resolved when it runs, and without either the tunnel works without DNS.
cat > "$stage/DEBIAN/control" <<CONTROL
Package: $PKG_NAME
Version: $version
Architecture: $arch
Maintainer: Rustronaut IT <it@rustronaut.example>
Installed-Size: $size
Depends: libc6 (>= 2.31), libfontconfig1, libfreetype6, libgl1, libegl1, libxkbcommon0, libxkbcommon-x11-0, libdbus-1-3, libxcb1, passwd, wireguard-tools, iproute2, nftables, procps
Recommends: systemd
Suggests: systemd-resolved | openresolv | resolvconf
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
