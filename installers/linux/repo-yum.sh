#!/usr/bin/env bash
# Build (or refresh) the signed dnf/yum repository from signed .rpm packages.
#
#   repo-yum.sh --key KEYID --out DIR [--baseurl URL] [--gpgkey URL] RPM...
#
# Copies the RPMs into DIR (packages already there stay: the repository keeps earlier
# releases, so `dnf downgrade` stays possible when asked for), then writes:
#   DIR/repodata/repomd.xml       createrepo_c metadata (sha256 checksums, gz compression
#                                 so yum on EL7 reads it as well as dnf; XML only, no
#                                 sqlite copies: dnf and yum read the XML)
#   DIR/repodata/repomd.xml.asc   armored detached GPG signature of repomd.xml: dnf's
#                                 repo_gpgcheck=1 verifies it; repomd.xml carries the
#                                 sha256 of every other metadata file (primary.xml lists
#                                 each package's sha256), so the chain reaches the files
#   DIR/RPM-GPG-KEY-rustronaut    the public key (check its fingerprint out of band)
#   DIR/rustronaut.repo           the client's repo file: gpgcheck=1 (each package's
#                                 rpmsign signature, see sign.sh) and repo_gpgcheck=1
#
# Every RPM must already carry an rpmsign signature by KEYID (installers/linux/sign.sh):
# an unsigned package or one signed by another key is refused (exit 1) before anything
# is written, because clients with gpgcheck=1 would refuse it anyway. URL defaults:
# --baseurl https://packages.rustronaut.example/rpm, --gpgkey the path the docs install
# the key to (file:///etc/pki/rpm-gpg/RPM-GPG-KEY-rustronaut): a key fetched from the
# repository itself would be trusted on first use from the server it is meant to check.
# The key comes from the caller's GNUPGHOME, as in sign.sh (no passphrase prompt).
# Re-running is idempotent. Exit 2 on usage errors. Needs createrepo_c, gpg, gpgv, rpmkeys.
set -euo pipefail
usage() { echo "usage: repo-yum.sh --key KEYID --out DIR [--baseurl URL] [--gpgkey URL] RPM..." >&2; exit 2; }
key='' out='' baseurl=https://packages.rustronaut.example/rpm
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-rustronaut
while (($#)); do
  case "$1" in
    --key) key=${2:-}; shift 2 || usage ;;
    --out) out=${2:-}; shift 2 || usage ;;
    --baseurl) baseurl=${2:-}; shift 2 || usage ;;
    --gpgkey) gpgkey=${2:-}; shift 2 || usage ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ -n "$key" ] && [ -n "$out" ] && (($#)) || usage
for rpm in "$@"; do
  case "$rpm" in *.rpm) [ -f "$rpm" ] || { echo "repo-yum.sh: no such file: $rpm" >&2; exit 2; } ;;
    *) echo "repo-yum.sh: not an .rpm: $rpm" >&2; exit 2 ;; esac
done
for tool in createrepo_c gpg gpgv rpmkeys; do
  command -v "$tool" >/dev/null || { echo "repo-yum.sh: $tool is missing (Debian: createrepo-c, gnupg, gpgv, rpm)" >&2; exit 1; }
done
gpg=(gpg --batch --yes --pinentry-mode loopback --passphrase "${RUSTRONAUT_GPG_PASSPHRASE:-}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The public key, once: exported to the repository and to a throwaway rpm database.
"${gpg[@]}" --armor --export "$key" > "$work/key.asc"
[ -s "$work/key.asc" ] || { echo "repo-yum.sh: no public key $key in ${GNUPGHOME:-~/.gnupg}" >&2; exit 1; }
"${gpg[@]}" --dearmor --output "$work/key.gpg" "$work/key.asc"
rpmkeys --dbpath "$work/rpmdb" --import "$work/key.asc"

# Refuse any package that a client with gpgcheck=1 would refuse. `rpmkeys -K` alone exits
# 0 on an unsigned package; _pkgverify_level signature makes a missing signature fail.
for rpm in "$@"; do
  if ! msg=$(rpmkeys --dbpath "$work/rpmdb" --define '_pkgverify_level signature' -K "$rpm" 2>&1); then
    echo "repo-yum.sh: $rpm is not signed by $key (run installers/linux/sign.sh first): $msg" >&2
    exit 1
  fi
done

mkdir -p "$out"
for rpm in "$@"; do
  [ "$(realpath "$rpm")" = "$(realpath -m "$out/$(basename "$rpm")")" ] || cp -f "$rpm" "$out/"
done
# createrepo_c writes the new repodata next to the old one and swaps it in at the end.
createrepo_c --quiet --checksum sha256 --general-compress-type gz --no-database \
  "$out" >/dev/null
cp "$work/key.asc" "$out/RPM-GPG-KEY-rustronaut"
"${gpg[@]}" --local-user "$key" --armor --detach-sign --output "$out/repodata/repomd.xml.asc" \
  "$out/repodata/repomd.xml"
# Check what was just written with the published key only (not the signer's keyring).
gpgv --keyring "$work/key.gpg" "$out/repodata/repomd.xml.asc" "$out/repodata/repomd.xml" 2>/dev/null \
  || { echo "repo-yum.sh: repomd.xml.asc does not verify with $key" >&2; exit 1; }
cat > "$out/rustronaut.repo" <<EOF
[rustronaut]
name=Rustronaut Client
baseurl=$baseurl
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=$gpgkey
skip_if_unavailable=False
metadata_expire=6h
EOF
echo "yum repository: $out ($(find "$out" -maxdepth 1 -name '*.rpm' | wc -l) packages, repomd.xml signed by $key)"
