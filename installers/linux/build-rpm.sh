#!/usr/bin/env bash
# Build the RPM package from a PyInstaller bundle.
#
#   build-rpm.sh BUNDLE_DIR OUT_DIR [ARCH]   → OUT_DIR/rustronaut-<version>-1.<arch>.rpm
#
# ARCH defaults to `uname -m` (x86_64, aarch64). Same files as the .deb (common.sh),
# scriptlets in rustronaut.spec. Prints the path of the .rpm. Needs rpmbuild.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

bundle=${1:?usage: build-rpm.sh BUNDLE_DIR OUT_DIR [ARCH]}
out=${2:?usage: build-rpm.sh BUNDLE_DIR OUT_DIR [ARCH]}
arch=${3:-$(uname -m)}
version=$(pkg_version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage_root "$bundle" "$work/stage"
mkdir -p "$out"
# w2T.xzdio: xz level 2, multi-threaded — the payload is ~190 MB of binaries.
rpmbuild -bb --quiet --target "$arch" \
  --define "_topdir $work/top" --define "_rpmdir $work/rpms" \
  --define "pkg_version $version" --define "stage $work/stage" \
  --define "_binary_payload ${RUSTRONAUT_RPM_PAYLOAD:-w2T.xzdio}" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  "$here/rustronaut.spec" >/dev/null
rpm=$(ls "$work"/rpms/*.rpm)
mv "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
