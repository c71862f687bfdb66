#!/usr/bin/env bash
# Sign the packages in a directory and write signed checksums.
#
#   sign.sh DIR KEYID
#
# For every *.deb / *.rpm in DIR, in this order (the embedded signatures change the
# file, so they come before the detached ones and the checksums):
#   1. .deb: a debsigs "origin" signature inside the package (skipped when debsigs is
#      missing or RUSTRONAUT_DEBSIGS=0);  .rpm: an rpmsign header signature (skipped
#      when rpmsign is missing or RUSTRONAUT_RPMSIGN=0).
#   2. PKG.asc: an armored detached GPG signature.
# Then SHA256SUMS (every package) and SHA256SUMS.asc (its detached signature).
# The key is taken from the caller's GNUPGHOME (in CI a throwaway one, or the release
# key imported from a secret); no passphrase prompt (use a gpg-agent preset or an
# unprotected CI subkey). Re-running re-signs (idempotent). Exit 2 on usage errors.
set -euo pipefail
dir=${1:?usage: sign.sh DIR KEYID}
key=${2:?usage: sign.sh DIR KEYID}
shopt -s nullglob
cd "$dir"
pkgs=(*.deb *.rpm)
((${#pkgs[@]})) || { echo "sign.sh: no .deb or .rpm in $dir" >&2; exit 2; }
gpg=(gpg --batch --yes --pinentry-mode loopback --passphrase "${RUSTRONAUT_GPG_PASSPHRASE:-}" --local-user "$key")

for p in "${pkgs[@]}"; do
  case "$p" in
    *.deb)
      if [ "${RUSTRONAUT_DEBSIGS:-1}" != 0 ] && command -v debsigs >/dev/null; then
        debsigs --delete=origin "$p" >/dev/null 2>&1 || true
        debsigs --sign=origin --default-key="$key" "$p"
      fi ;;
    *.rpm)
      if [ "${RUSTRONAUT_RPMSIGN:-1}" != 0 ] && command -v rpmsign >/dev/null; then
        rpmsign --addsign --define "_gpg_name $key" --define "__gpg $(command -v gpg)" \
          --define "_gpg_sign_cmd_extra_args --pinentry-mode loopback --passphrase '${RUSTRONAUT_GPG_PASSPHRASE:-}'" \
          "$p" >/dev/null
      fi ;;
  esac
  "${gpg[@]}" --armor --detach-sign --output "$p.asc" "$p"
done
sha256sum "${pkgs[@]}" > SHA256SUMS
"${gpg[@]}" --armor --detach-sign --output SHA256SUMS.asc SHA256SUMS
echo "signed: ${pkgs[*]} + SHA256SUMS"
