#!/usr/bin/env bash
# The WireGuard tools the macOS package ships, in one directory for stage-tools.sh.
#
#   build-wg-tools.sh OUT_DIR        (on a Mac with Homebrew; prints nothing on success)
#
# wg, wg-quick and wireguard-go come from Homebrew's bottles (wg links only libSystem,
# wireguard-go is a static Go binary, wg-quick a script). bash cannot: Homebrew's bash links
# Homebrew's libintl, which stage-tools.sh refuses (the root helper must not load a library
# from a user-owned prefix). So bash is built here from the source tarball Homebrew's
# formula pins (`brew fetch --build-from-source` checks its SHA-256) with --disable-nls,
# linking only the system's libraries.
set -euo pipefail
out=${1:?usage: build-wg-tools.sh OUT_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

brew install wireguard-tools wireguard-go >/dev/null
brew fetch --build-from-source bash >/dev/null
tarball=$(brew --cache --build-from-source bash)
mkdir -p "$work/bash"
tar -xf "$tarball" -C "$work/bash" --strip-components 1
(
  cd "$work/bash"
  ./configure --disable-nls --without-bash-malloc --prefix=/nonexistent >/dev/null
  make -j"$(sysctl -n hw.ncpu)" bash >/dev/null
)
mkdir -p "$out"
cp "$work/bash/bash" "$out/bash"
prefix=$(brew --prefix)
for tool in wg wg-quick wireguard-go; do
  cp -L "$prefix/bin/$tool" "$out/$tool"  # -L: the bottle's file, not Homebrew's symlink
done
chmod 0755 "$out"/*
