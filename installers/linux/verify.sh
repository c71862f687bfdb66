#!/usr/bin/env bash
# Verify downloaded Rustronaut packages before installing them.
#
#   verify.sh PUBKEY.asc DIR
#
# PUBKEY.asc is the release signing key (armored export). Checks, and fails (exit 1)
# naming the first thing that is wrong:
#   1. SHA256SUMS.asc is a good signature of SHA256SUMS by that key;
#   2. every package listed in SHA256SUMS exists in DIR and has that checksum;
#   3. every *.deb / *.rpm in DIR is listed, and its PKG.asc is a good signature by the key;
#   4. with debsig-verify, a .deb carrying a debsigs signature is checked too
#      (RUSTRONAUT_DEBSIG_POLICIES / RUSTRONAUT_DEBSIG_KEYRINGS name non-default dirs);
#      with rpmkeys, an .rpm's header signature is checked against the key.
# Exit 0: all good. Exit 2: usage error. Uses only gpgv (no keyring of the caller's is
# read or changed) and a temporary rpm database.
set -euo pipefail
key=${1:?usage: verify.sh PUBKEY.asc DIR}
dir=${2:?usage: verify.sh PUBKEY.asc DIR}
key=$(realpath "$key" 2>/dev/null || echo "$key")
[ -f "$key" ] || { echo "verify.sh: no key file $key" >&2; exit 2; }
[ -d "$dir" ] || { echo "verify.sh: no directory $dir" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "verify.sh: FAILED: $*" >&2; exit 1; }

gpg --batch --quiet --dearmor --output "$tmp/key.gpg" "$key" 2>/dev/null \
  || fail "$key is not an armored OpenPGP public key"
gpgv_() { gpgv --quiet --keyring "$tmp/key.gpg" "$@" 2>"$tmp/gpgv.err"; }

cd "$dir"
[ -f SHA256SUMS ] && [ -f SHA256SUMS.asc ] || fail "SHA256SUMS or SHA256SUMS.asc missing in $dir"
gpgv_ SHA256SUMS.asc SHA256SUMS || fail "SHA256SUMS signature: $(cat "$tmp/gpgv.err")"
sha256sum --strict --quiet -c SHA256SUMS 2>"$tmp/sum.err" >&2 \
  || fail "checksum mismatch: $(cat "$tmp/sum.err")"

shopt -s nullglob
for p in *.deb *.rpm; do
  awk '{print $2}' SHA256SUMS | sed 's/^\*//' | grep -qxF "$p" || fail "$p is not listed in SHA256SUMS"
  [ -f "$p.asc" ] || fail "$p.asc (detached signature) missing"
  gpgv_ "$p.asc" "$p" || fail "$p signature: $(cat "$tmp/gpgv.err")"
  case "$p" in
    *.deb)
      if command -v debsig-verify >/dev/null && ar t "$p" 2>/dev/null | grep -q '^_gpgorigin$'; then
        args=()
        [ -n "${RUSTRONAUT_DEBSIG_POLICIES:-}" ] && args+=(--policies-dir "$RUSTRONAUT_DEBSIG_POLICIES")
        [ -n "${RUSTRONAUT_DEBSIG_KEYRINGS:-}" ] && args+=(--keyrings-dir "$RUSTRONAUT_DEBSIG_KEYRINGS")
        debsig-verify "${args[@]}" "$p" >"$tmp/debsig.out" 2>&1 \
          || fail "$p debsigs signature: $(tail -1 "$tmp/debsig.out")"
      fi ;;
    *.rpm)
      if command -v rpmkeys >/dev/null; then
        rpmkeys --dbpath "$tmp/rpmdb" --import "$key" || fail "rpmkeys cannot import $key"
        out=$(rpmkeys --dbpath "$tmp/rpmdb" --checksig "$p" 2>&1) || fail "$p rpm signature: $out"
        case "$out" in *signatures\ OK*|*digests\ signatures\ OK*) ;; *) fail "$p rpm signature: $out" ;; esac
      fi ;;
  esac
  echo "OK  $p"
done
echo "verify.sh: all packages and SHA256SUMS verified"
