#!/usr/bin/env bash
# Build the PyInstaller bundle and the installers for this machine's OS.
#
#   scripts/build-installers.sh linux   [--out DIR] [--sign KEYID [--repo DIR]]
#   scripts/build-installers.sh windows PAYLOAD_DIR [--out DIR]   (on Linux, from a bundle
#                                                                  built on Windows)
#   scripts/build-installers.sh bundle  [--out DIR]
#
# bundle:  pyinstaller build.spec → dist/rustronaut (the three executables, one _internal).
# linux:   bundle, then OUT/rustronaut_<ver>_<arch>.deb and OUT/rustronaut-<ver>-1.<arch>.rpm;
#          with --sign KEYID (a key in $GNUPGHOME): debsigs/rpmsign, detached .asc,
#          SHA256SUMS + SHA256SUMS.asc (installers/linux/sign.sh), then verify.sh;
#          with --repo DIR too: the signed apt repository in DIR/apt (repo-apt.sh) and
#          the dnf/yum one in DIR/rpm (repo-yum.sh), both keeping earlier releases
#          already in DIR. --repo needs --sign (a repository is only ever signed).
# windows: OUT/rustronaut-<ver>-windows-x86_64-setup.exe (installers/windows/), signed
#          when RUSTRONAUT_WIN_CERT_P12 is set.
# macOS packages are built by installers/macos/build-pkg.sh on a Mac (see release.yml).
# OUT defaults to ./out. Prints what it built and how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: build-installers.sh linux|windows PAYLOAD|bundle [--out DIR] [--sign KEYID [--repo DIR]]}
shift
payload=
if [ "$what" = windows ]; then payload=${1:?windows needs the PAYLOAD_DIR}; shift; fi
out=out key='' repo=''
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --sign) key=$2; shift 2 ;;
    --repo) repo=$2; shift 2 ;;
    *) echo "build-installers.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -z "$repo" ] || [ -n "$key" ] || { echo "build-installers.sh: --repo needs --sign KEYID" >&2; exit 2; }
py=.venv/bin/python
[ -x "$py" ] || py=python3
step() { local t0=$SECONDS; "$@"; echo "  ($(( SECONDS - t0 )) s)" >&2; }

bundle() {
  echo "== bundle (PyInstaller)" >&2
  bash scripts/i18n.sh build  # the tray's .qm files, shipped under resources/i18n
  step "$py" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller build.spec
  du -sh dist/rustronaut >&2
}

case "$what" in
  bundle) bundle ;;
  linux)
    bundle
    echo "== .deb and .rpm" >&2
    deb=$(step bash installers/linux/build-deb.sh dist/rustronaut "$out")
    rpm=$(step bash installers/linux/build-rpm.sh dist/rustronaut "$out")
    if [ -n "$key" ]; then
      echo "== sign" >&2
      bash installers/linux/sign.sh "$out" "$key"
      gpg --armor --export "$key" > "$out/rustronaut-release-key.asc"
      bash installers/linux/verify.sh "$out/rustronaut-release-key.asc" "$out"
    fi
    if [ -n "$repo" ]; then
      echo "== package repositories" >&2
      step bash installers/linux/repo-apt.sh --key "$key" --out "$repo/apt" "$deb"
      if [ -f installers/linux/repo-yum.sh ]; then
        step bash installers/linux/repo-yum.sh --key "$key" --out "$repo/rpm" "$rpm"
      fi
    fi ;;
  windows)
    echo "== Windows installer (NSIS)" >&2
    step bash installers/windows/build-installer.sh "$payload" "$out" ;;
  *) echo "build-installers.sh: unknown target $what" >&2; exit 2 ;;
esac
