#!/usr/bin/env bash
# Copy the WireGuard tools the root helper runs into the package's own prefix.
#
#   stage-tools.sh SRC_DIR DEST_DIR
#
# SRC_DIR holds wg, wireguard-go, bash (4+) and wg-quick (wireguard-tools' darwin.bash)
# for one arch; DEST_DIR is the staged "Library/Application Support/Rustronaut/bin"
# (wg_backends/backends/macos.py's TOOLS_PREFIX + /bin). Symlinks are resolved; every file
# is 0755 (pkgbuild --ownership recommended makes them root:wheel; the postinstall
# re-asserts it). The root helper never runs tools from a Homebrew prefix, which belongs to
# the user who installed Homebrew, so this refuses (exit 2, one line naming the file):
#   * a Mach-O linking a library outside /usr/lib and /System (`otool -L`): Homebrew's
#     bash links /opt/homebrew/opt/gettext/lib/libintl.8.dylib, build bash with
#     --disable-nls instead;
#   * a wg-quick that still names /opt/homebrew or /usr/local after its shebang becomes
#     "#!/usr/bin/env bash" (the helper puts DEST_DIR first on PATH) and its config search
#     path only /etc/wireguard (the helper always passes a full path);
#   * a bash older than 4 (macOS's own is 3.2), a missing or non-executable tool.
set -euo pipefail
src=${1:?usage: stage-tools.sh SRC_DIR DEST_DIR}
dest=${2:?usage: stage-tools.sh SRC_DIR DEST_DIR}
fail() { echo "stage-tools.sh: $*" >&2; exit 2; }

mkdir -p "$dest"
chmod 0755 "$dest"
for tool in wg wireguard-go bash wg-quick; do
  if [ ! -f "$src/$tool" ] || [ ! -x "$src/$tool" ]; then
    fail "$src/$tool is missing or not executable"
  fi
  if [ "$tool" = wg-quick ]; then
    sed -e '1s|^#!.*|#!/usr/bin/env bash|' \
        -e 's|^CONFIG_SEARCH_PATHS=(.*)$|CONFIG_SEARCH_PATHS=( /etc/wireguard )|' \
        "$src/$tool" >"$dest/$tool"
    if grep -nE '/opt/homebrew|/usr/local' "$dest/$tool" >&2; then
      fail "$src/$tool names a Homebrew path (above)"
    fi
  else
    libs=$(otool -L "$src/$tool") || fail "otool -L $src/$tool failed"
    bad=$(printf '%s\n' "$libs" | tail -n +2 | awk '{print $1}' |
          grep -vE '^(/usr/lib/|/System/Library/)' || true)
    [ -z "$bad" ] || fail "$src/$tool links libraries outside /usr/lib and /System: ${bad//$'\n'/ }"
    cp -L "$src/$tool" "$dest/$tool"
  fi
  chmod 0755 "$dest/$tool"
done
# shellcheck disable=SC2016  # expanded by the staged bash, not this one
"$dest/bash" -c '[ "${BASH_VERSINFO[0]}" -ge 4 ]' 2>/dev/null ||
  fail "$src/bash is older than bash 4 (wg-quick needs 4+)"
