#!/usr/bin/env bash
# Build (and, with a certificate, sign) the Windows installer with makensis.
#
#   build-installer.sh PAYLOAD_DIR OUT_DIR     → OUT_DIR/rustronaut-<ver>-windows-x86_64-setup.exe
#
# PAYLOAD_DIR is the PyInstaller bundle built on Windows (dist\rustronaut). When
# RUSTRONAUT_WIN_CERT_P12 is set (see sign.sh) the uninstaller is signed while it is
# embedded and the installer after it is built; otherwise both stay unsigned.
# RUSTRONAUT_NSIS_COMPRESSION: lzma (default, release), zlib, or none (tests: a build
# of the ~190 MB bundle takes ~1 min compressed on a 2-core runner, seconds without).
# Prints the installer's path. Needs makensis (apt nsis) and osslsigncode to sign.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
payload=$(cd "${1:?usage: build-installer.sh PAYLOAD_DIR OUT_DIR}" && pwd)
mkdir -p "${2:?usage: build-installer.sh PAYLOAD_DIR OUT_DIR}"
out=$(cd "$2" && pwd)
version=${RUSTRONAUT_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/../../core/__init__.py")}
for exe in rustronaut-tray.exe rustronaut.exe rustronaut-helper.exe; do
  [ -f "$payload/$exe" ] || { echo "build-installer.sh: $payload has no $exe" >&2; exit 2; }
done
exe="$out/rustronaut-$version-windows-x86_64-setup.exe"
defs=(-DVERSION="$version" -DPAYLOAD="$payload" -DOUTFILE="$exe"
      -DCOMPRESSION="${RUSTRONAUT_NSIS_COMPRESSION:-lzma}")
[ -n "${RUSTRONAUT_WIN_CERT_P12:-}" ] && defs+=(-DUNINST_SIGN="bash $here/sign.sh")
makensis -V2 -WX -NOCD "${defs[@]}" "$here/rustronaut.nsi" >&2
if [ -n "${RUSTRONAUT_WIN_CERT_P12:-}" ]; then
  bash "$here/sign.sh" "$exe"
fi
echo "$exe"
