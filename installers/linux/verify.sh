#!/usr/bin/env bash
# Verify a Rustronaut release directory before installing from it.
#
#   verify.sh PUBKEY.asc DIR
#
# PUBKEY.asc is the release signing key (armored export, exactly one primary key; its
# fingerprint is printed: compare it with the one IT publishes, or pin it with
# RUSTRONAUT_RELEASE_FPR=FINGERPRINT). Checks, and fails (exit 1) with a message naming
# the first file that is wrong:
#   1. SHA256SUMS.asc is a good signature of SHA256SUMS by that key;
#   2. every file listed in SHA256SUMS exists in DIR and has that checksum, and every
#      *.deb / *.rpm in DIR is listed;
#   3. every package's PKG.asc is a good detached signature by the key;
#   4. the signature inside each package, the one dpkg (debsig) and rpm check at install
#      time, is there and by the key:
#      .deb: the debsigs "origin" signature (_gpgorigin), always checked with gpgv over
#        debian-binary + control.tar.* + data.tar.*; also with debsig-verify when a policy
#        for the key is installed (/etc/debsig/policies/ID, or RUSTRONAUT_DEBSIG_POLICIES
#        and RUSTRONAUT_DEBSIG_KEYRINGS) — that is what dpkg runs when debsig is enforced;
#      .rpm: the header signature, with `rpmkeys --checksig` at `_pkgverify_level
#        signature` against a temporary rpm database holding only the key (plain `rpm -K`
#        exits 0 on an unsigned package). Without rpmkeys this check is SKIPPED (said on
#        stderr); the detached signature and the checksum still cover the file.
# Exit 0: all good. Exit 1: a check failed. Exit 2: usage error. No keyring or rpm
# database of the caller's is read or changed.
set -euo pipefail
key=${1:?usage: verify.sh PUBKEY.asc DIR}
dir=${2:?usage: verify.sh PUBKEY.asc DIR}
key=$(realpath "$key" 2>/dev/null || echo "$key")
[ -f "$key" ] || { echo "verify.sh: no key file $key" >&2; exit 2; }
[ -d "$dir" ] || { echo "verify.sh: no directory $dir" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -m 700 "$tmp/gnupg"
fail() { echo "verify.sh: FAILED: $*" >&2; exit 1; }
# why FILE TOOL: the tool's messages on one line, never empty.
why() {
  local m
  m=$(grep -v '^[[:space:]]*$' "$1" | tr '\n' ' ' | sed 's/ *$//') || true
  echo "${m:-$2 gave no reason}"
}

gpg=(gpg --batch --quiet --homedir "$tmp/gnupg")
"${gpg[@]}" --dearmor --output "$tmp/key.gpg" "$key" 2>/dev/null \
  || fail "$key is not an armored OpenPGP public key"
mapfile -t fprs < <("${gpg[@]}" --with-colons --show-keys "$key" 2>/dev/null \
  | awk -F: '$1=="pub"{p=1; next} $1=="fpr" && p {print $10; p=0}')
[ "${#fprs[@]}" = 1 ] || fail "$key holds ${#fprs[@]} primary keys, not exactly the release key"
fpr=${fprs[0]}
if [ -n "${RUSTRONAUT_RELEASE_FPR:-}" ]; then
  want=$(echo "$RUSTRONAUT_RELEASE_FPR" | tr -d ' ' | tr a-f A-F)
  [ "$fpr" = "$want" ] || fail "$key: fingerprint $fpr is not the pinned $want"
fi
echo "key: $fpr"
gpgv_() { gpgv --homedir "$tmp/gnupg" --keyring "$tmp/key.gpg" "$@" 2>"$tmp/gpgv.err" >/dev/null; }

cd "$dir"
[ -f SHA256SUMS ] || fail "SHA256SUMS missing in $dir"
[ -f SHA256SUMS.asc ] || fail "SHA256SUMS.asc missing in $dir"
gpgv_ SHA256SUMS.asc SHA256SUMS || fail "SHA256SUMS signature: $(why "$tmp/gpgv.err" gpgv)"

declare -A sums=()
while IFS= read -r line; do
  [[ $line =~ ^([0-9a-f]{64})\ [\ *]([^/]+)$ ]] || fail "SHA256SUMS: malformed line: $line"
  sums[${BASH_REMATCH[2]}]=${BASH_REMATCH[1]}
done < SHA256SUMS
for name in "${!sums[@]}"; do
  [ -f "$name" ] || fail "$name (listed in SHA256SUMS) missing in $dir"
  actual=$(sha256sum < "$name" | cut -d' ' -f1)
  [ "$actual" = "${sums[$name]}" ] || fail "$name does not match its checksum in SHA256SUMS"
done

# debsig-verify's policy for the key, when one is installed ("" otherwise).
debsig_policy() {
  command -v debsig-verify >/dev/null || return 0
  local pol=${RUSTRONAUT_DEBSIG_POLICIES:-/etc/debsig/policies} id
  for id in "$fpr" "${fpr: -16}"; do
    if [ -d "$pol/$id" ]; then echo "$pol/$id"; return 0; fi
  done
  return 0
}

check_deb() {
  local p=$1 members
  members=$(ar t "$p" 2>/dev/null | tr '\n' ' ') || fail "$p is not a .deb (ar) archive"
  local layout='^debian-binary control\.tar(\.[a-z0-9]+)? data\.tar(\.[a-z0-9]+)? _gpgorigin $'
  if ! [[ $members =~ $layout ]]; then
    case "$members" in
      *_gpgorigin*) fail "$p: unexpected archive members around its debsigs signature: $members" ;;
      *) fail "$p has no debsigs origin signature (_gpgorigin): dpkg with debsig enforced refuses it" ;;
    esac
  fi
  # With a policy installed, first what dpkg itself runs when debsig is enforced.
  local how="checked with gpgv" policy
  policy=$(debsig_policy)
  if [ -n "$policy" ]; then
    local args=()
    [ -n "${RUSTRONAUT_DEBSIG_POLICIES:-}" ] && args+=(--policies-dir "$RUSTRONAUT_DEBSIG_POLICIES")
    [ -n "${RUSTRONAUT_DEBSIG_KEYRINGS:-}" ] && args+=(--keyrings-dir "$RUSTRONAUT_DEBSIG_KEYRINGS")
    debsig-verify "${args[@]}" "$p" >"$tmp/debsig.out" 2>&1 \
      || fail "$p debsigs signature refused by debsig-verify ($policy): $(why "$tmp/debsig.out" debsig-verify)"
    how="checked with debsig-verify and gpgv"
  elif command -v debsig-verify >/dev/null; then
    how="$how (debsig-verify has no policy for this key: dpkg cannot check it yet)"
  else
    how="$how (debsig-verify not installed)"
  fi
  # Always: signed by this key file's key (a policy may name another keyring).
  read -r -a parts <<<"$members"
  ar p "$p" _gpgorigin > "$tmp/origin.sig"
  ar p "$p" "${parts[0]}" "${parts[1]}" "${parts[2]}" > "$tmp/signed"
  gpgv_ "$tmp/origin.sig" "$tmp/signed" \
    || fail "$p debsigs origin signature: $(why "$tmp/gpgv.err" gpgv)"
  echo "    $p: debsigs origin signature $how"
}

rpmdb=
check_rpm() {
  local p=$1 out
  if ! command -v rpmkeys >/dev/null; then
    echo "verify.sh: SKIPPED: $p rpm header signature (rpmkeys not installed)" >&2
    return 0
  fi
  if [ -z "$rpmdb" ]; then
    rpmdb=$tmp/rpmdb
    rpmkeys --dbpath "$rpmdb" --import "$key" 2>"$tmp/rpm.err" \
      || fail "rpmkeys cannot import $key: $(why "$tmp/rpm.err" rpmkeys)"
  fi
  out=$(rpmkeys --dbpath "$rpmdb" --checksig --define '_pkgverify_level signature' "$p" 2>&1) \
    || fail "$p rpm header signature: ${out:-rpmkeys gave no reason}"
  case "$out" in *": digests signatures OK") ;; *) fail "$p rpm header signature: $out" ;; esac
  echo "    $p: rpm header signature checked with rpmkeys"
}

shopt -s nullglob
for p in *.deb *.rpm; do
  [ -n "${sums[$p]:-}" ] || fail "$p is not listed in SHA256SUMS"
  [ -f "$p.asc" ] || fail "$p.asc (detached signature of $p) missing"
  gpgv_ "$p.asc" "$p" || fail "$p detached signature $p.asc: $(why "$tmp/gpgv.err" gpgv)"
  case "$p" in
    *.deb) check_deb "$p" ;;
    *.rpm) check_rpm "$p" ;;
  esac
  echo "OK  $p"
done
echo "verify.sh: all packages and SHA256SUMS verified"
