#!/usr/bin/env bash
# Install a Rustronaut package only from a verified, root-only copy of the release.
#
#   install-verified.sh [--root DIR] PUBKEY.asc RELEASE_DIR [PACKAGE]
#   install-verified.sh --debsig-policy PUBKEY.asc
#   install-verified.sh --enforce-debsig PUBKEY.asc
#
# Install (run as root; docs/deployment.md "Verify before installing"):
#   1. copies PUBKEY.asc, SHA256SUMS(.asc) and every *.deb / *.rpm (+ .asc) of RELEASE_DIR
#      into a fresh staging directory (mktemp, 0700 root) under
#      $RUSTRONAUT_STAGING_PARENT (default /var/cache/rustronaut-install), whose parent
#      chain must be root-owned and not writable by others (sticky directories excepted);
#      whatever happens to RELEASE_DIR afterwards (a user swapping a file) is never read;
#   2. runs verify.sh on the staged copy (RUSTRONAUT_RELEASE_FPR pins the key);
#   3. right before installing, re-checks the staged PACKAGE's SHA-256 against the
#      verified SHA256SUMS and refuses on any difference;
#   4. installs the staged file: .deb with `apt-get install` (or `dpkg -i`), .rpm with
#      dnf / yum / zypper (or `rpm -U`); with --root DIR, `dpkg --root=DIR -i` / `rpm
#      --root DIR -U` (image builds, tests). The staging directory is removed at exit.
# PACKAGE (a file name in RELEASE_DIR) defaults to the only .deb when dpkg is present,
# else the only .rpm.
# --debsig-policy: installs debsig-verify's policy and keyring for the key
#   (/etc/debsig/policies/ID/rustronaut.pol, /usr/share/debsig/keyrings/ID/debsig.gpg,
#   ID = the fingerprint's last 16 hex digits); harmless to the rest of the system.
# --enforce-debsig: the policy, and `no-debsig` removed from /etc/dpkg/dpkg.cfg: dpkg then
#   refuses every .deb without a valid debsigs signature under an installed policy —
#   Debian's own packages included (Debian does not sign with debsigs); see the docs.
# Exit 0: installed (or set up). 1: verification or re-check failed, nothing installed.
# 2: usage error, not root, unsafe staging directory. 3: the package manager failed.
# RUSTRONAUT_TEST_AFTER_VERIFY (tests only) is run with the staging directory and
# RELEASE_DIR after verification, before the re-check.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() {
  echo "usage: install-verified.sh [--root DIR] PUBKEY.asc RELEASE_DIR [PACKAGE]" >&2
  echo "       install-verified.sh --debsig-policy|--enforce-debsig PUBKEY.asc" >&2
  exit 2
}
die() { echo "install-verified.sh: $*" >&2; exit 2; }
fail() { echo "install-verified.sh: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and owns the staging directory)"
umask 077

mode=install root=
case "${1:-}" in
  --debsig-policy | --enforce-debsig) mode=${1#--}; shift ;;
  --root) root=${2:?--root needs a directory}; shift 2 ;;
  -h | --help | "") usage ;;
esac

# --- debsig-verify policy / dpkg enforcement -----------------------------------------
if [ "$mode" != install ]; then
  key=${1:-}
  [ -f "$key" ] || usage
  command -v debsig-verify >/dev/null \
    || die "debsig-verify is not installed (apt-get install debsig-verify); dpkg checks nothing without it"
  home=$(mktemp -d)
  trap 'rm -rf "$home"' EXIT
  fpr=$(gpg --batch --homedir "$home" --with-colons --show-keys "$key" 2>/dev/null \
    | awk -F: '$1=="fpr"{print $10; exit}')
  [ -n "$fpr" ] || die "$key is not an OpenPGP public key"
  id=${fpr: -16}
  install -d -m 755 "/etc/debsig/policies/$id" "/usr/share/debsig/keyrings/$id"
  sed "s/@KEYID@/$id/g" "$here/debsig-policy.pol.in" > "/etc/debsig/policies/$id/rustronaut.pol"
  gpg --batch --homedir "$home" --dearmor < "$key" > "/usr/share/debsig/keyrings/$id/debsig.gpg"
  chmod 644 "/etc/debsig/policies/$id/rustronaut.pol" "/usr/share/debsig/keyrings/$id/debsig.gpg"
  echo "debsig-verify policy installed for $fpr"
  if [ "$mode" = enforce-debsig ]; then
    cfg=/etc/dpkg/dpkg.cfg
    # Rewritten in place (not replaced): keeps its owner, mode and any bind mount.
    kept=$(grep -v -x '[[:space:]]*no-debsig[[:space:]]*' "$cfg" || true)
    printf '%s\n' "$kept" > "$cfg"
    echo "dpkg now enforces debsig: it refuses every .deb without a valid debsigs signature"
    echo "under an installed policy (Debian's own packages too). Undo: echo no-debsig >> $cfg"
  fi
  exit 0
fi

# --- install --------------------------------------------------------------------------
[ $# -ge 2 ] && [ $# -le 3 ] || usage
key=$1 src=$2 pkg=${3:-}
[ -f "$key" ] || die "no key file $key"
[ -d "$src" ] || die "no release directory $src"
[ -z "$root" ] || [ -d "$root" ] || die "no root directory $root"

# The staging parent and every directory above it: root-owned, not writable by others.
parent=${RUSTRONAUT_STAGING_PARENT:-/var/cache/rustronaut-install}
[ -d "$parent" ] || install -d -m 700 -o root -g root "$parent"
d=$(realpath "$parent")
while :; do
  read -r uid perm < <(stat -c '%u %a' "$d")
  (( uid == 0 )) || die "unsafe staging directory: $d is not owned by root"
  if (( 8#$perm & 8#022 )) && ! (( 8#$perm & 8#1000 )); then
    die "unsafe staging directory: $d is writable by group or others (mode $perm)"
  fi
  [ "$d" = / ] && break
  d=$(dirname "$d")
done
stage=$(mktemp -d "$parent/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 700 "$stage"
[ "$(stat -c '%u %a' "$stage")" = "0 700" ] || die "staging directory $stage is not 0700 root"

shopt -s nullglob
cp -- "$key" "$stage/release-key.asc"
for f in "$src"/SHA256SUMS "$src"/SHA256SUMS.asc "$src"/*.deb "$src"/*.deb.asc "$src"/*.rpm "$src"/*.rpm.asc; do
  cp -- "$f" "$stage/"
done
cd "$stage"
if [ -z "$pkg" ]; then
  debs=(*.deb) rpms=(*.rpm)
  if command -v dpkg >/dev/null && [ ${#debs[@]} = 1 ]; then pkg=${debs[0]}
  elif command -v rpm >/dev/null && [ ${#rpms[@]} = 1 ]; then pkg=${rpms[0]}
  else die "name the package to install (found: ${debs[*]} ${rpms[*]})"; fi
fi
case "$pkg" in */* | "") die "PACKAGE is a file name in $src, not a path: $pkg" ;; esac
[ -f "$pkg" ] || die "$pkg is not in $src"
echo "staged in $stage (0700 root)"

bash "$here/verify.sh" release-key.asc . || fail "$src did not verify; nothing installed"
# The checksum as verified, held here: nothing read from disk later can change it.
want=$(awk -v n="$pkg" '$2 == n || $2 == "*" n {print $1; exit}' SHA256SUMS)
[ -n "$want" ] || fail "$pkg is not listed in SHA256SUMS"

[ -z "${RUSTRONAUT_TEST_AFTER_VERIFY:-}" ] || bash "$RUSTRONAUT_TEST_AFTER_VERIFY" "$stage" "$src"

got=$(sha256sum < "$pkg" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "$pkg changed after verification (sha256 $got, verified $want); nothing installed"
echo "re-checked $pkg: sha256 $want"

case "$pkg" in
  *.deb)
    if [ -n "$root" ]; then cmd=(dpkg "--root=$root" -i "$stage/$pkg")
    elif command -v apt-get >/dev/null; then cmd=(apt-get install -y "$stage/$pkg")
    else cmd=(dpkg -i "$stage/$pkg"); fi ;;
  *.rpm)
    if [ -n "$root" ]; then cmd=(rpm --root "$root" -U "$stage/$pkg")
    elif command -v dnf >/dev/null; then cmd=(dnf install -y "$stage/$pkg")
    elif command -v yum >/dev/null; then cmd=(yum install -y "$stage/$pkg")
    elif command -v zypper >/dev/null; then cmd=(zypper --non-interactive install "$stage/$pkg")
    else cmd=(rpm -U "$stage/$pkg"); fi ;;
  *) die "$pkg is neither a .deb nor an .rpm" ;;
esac
echo "+ ${cmd[*]}"
"${cmd[@]}" || { echo "install-verified.sh: ${cmd[0]} failed (exit $?)" >&2; exit 3; }
echo "install-verified.sh: installed $pkg"
