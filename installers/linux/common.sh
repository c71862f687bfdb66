# shellcheck shell=bash
# Shared by build-deb.sh and build-rpm.sh: lay the PyInstaller bundle and the desktop
# integration out as the installed file system tree (the "stage"), identical for both
# formats so a .deb and an .rpm of one version install exactly the same files.
#
#   stage_root BUNDLE_DIR STAGE_DIR
#
# BUNDLE_DIR is dist/rustronaut from `pyinstaller build.spec`. Never touches anything
# outside STAGE_DIR. Needs: install, sed, ln.

RUSTRONAUT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKG_NAME=rustronaut
APP_ID=com.rustronaut.Client
PREFIX=/opt/rustronaut
UNIT=rustronaut-helper.service
# The agent: a systemd *user* unit (one per logged-in user), enabled globally by the
# maintainer scripts; it runs the bundled CLI's `rustronaut agent` (docs/local-api.md).
AGENT_UNIT=rustronaut-agent.service

# The version comes from the code (core/__init__.py), one source of truth;
# RUSTRONAUT_VERSION overrides it (release tags, upgrade tests).
pkg_version() {
  [ -n "${RUSTRONAUT_VERSION:-}" ] && { echo "$RUSTRONAUT_VERSION"; return; }
  sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$RUSTRONAUT_REPO/core/__init__.py"
}

# The helper's unit from resources/helper/ with ExecStart pointed at the bundled helper
# executable (the resource describes a venv install; the package ships the PyInstaller
# bundle, whose frozen interpreter ignores PYTHON* variables and the user site like -I).
packaged_unit() {
  sed -e "s|^ExecStart=.*-m wg_backends.helper |ExecStart=$PREFIX/rustronaut-helper |" \
      "$RUSTRONAUT_REPO/resources/helper/$UNIT"
}

stage_root() {
  local bundle=$1 stage=$2 res="$RUSTRONAUT_REPO/resources"
  [ -x "$bundle/rustronaut" ] && [ -x "$bundle/rustronaut-tray" ] && [ -x "$bundle/rustronaut-helper" ] \
    || { echo "stage_root: $bundle is not a PyInstaller bundle of build.spec" >&2; return 2; }
  install -d -m 0755 "$stage$PREFIX" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/usr/lib/systemd/user" \
    "$stage/usr/share/applications" "$stage/usr/share/metainfo" "$stage/etc/xdg/autostart" \
    "$stage/usr/share/icons/hicolor/scalable/apps" "$stage/usr/share/doc/$PKG_NAME/mdm" \
    "$stage/etc/rustronaut" "$stage/etc/rustronaut/managed.d"
  cp -a "$bundle/." "$stage$PREFIX/"
  # Nothing in the bundle is writable by anyone but root.
  chmod -R u+rwX,go+rX,go-w "$stage$PREFIX"
  for exe in rustronaut rustronaut-tray; do
    ln -sf "$PREFIX/$exe" "$stage/usr/bin/$exe"
  done
  packaged_unit > "$stage/lib/systemd/system/$UNIT"
  chmod 0644 "$stage/lib/systemd/system/$UNIT"
  install -m 0644 "$res/linux/$AGENT_UNIT" "$stage/usr/lib/systemd/user/"
  install -m 0644 "$res/linux/$APP_ID.desktop" "$stage/usr/share/applications/"
  install -m 0644 "$res/linux/$APP_ID-autostart.desktop" "$stage/etc/xdg/autostart/"
  install -m 0644 "$res/linux/$APP_ID.metainfo.xml" "$stage/usr/share/metainfo/"
  install -m 0644 "$res/icons/$APP_ID.svg" "$stage/usr/share/icons/hicolor/scalable/apps/"
  install -m 0644 "$RUSTRONAUT_REPO/docs/helper-protocol.md" "$RUSTRONAUT_REPO/docs/deployment.md" \
    "$RUSTRONAUT_REPO/docs/local-api.md" \
    "$stage/usr/share/doc/$PKG_NAME/"
  install -m 0644 "$RUSTRONAUT_REPO/installers/mdm/managed.example.json" \
    "$RUSTRONAUT_REPO/installers/mdm/managed.schema.json" "$stage/usr/share/doc/$PKG_NAME/mdm/"
  printf 'Rustronaut Client\nLicense: Apache-2.0\n' > "$stage/usr/share/doc/$PKG_NAME/copyright"
  chmod 0644 "$stage/usr/share/doc/$PKG_NAME/copyright"
}
