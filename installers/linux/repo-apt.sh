#!/usr/bin/env bash
# Build (or refresh) the signed apt repository from .deb packages.
#
#   repo-apt.sh --key KEYID --out DIR [--url URL] [--suite SUITE] [--valid-days N] DEB...
#
# Copies the packages into DIR/pool/main/<initial>/<name>/ (packages already there stay:
# the repository keeps earlier releases, so `apt-get install rustronaut=OLD
# --allow-downgrades` stays possible when asked for), then writes:
#   DIR/dists/SUITE/main/binary-ARCH/Packages{,.gz}   apt-ftparchive's index (SHA256 of
#                                       every package) for each architecture in the pool
#   DIR/dists/SUITE/Release             SHA256 (and SHA512) of every index, Date and
#                                       Valid-Until = Date + N days (default 30): a
#                                       client refuses a Release older than that, so a
#                                       mirror or attacker cannot replay an old one
#                                       forever; IT re-runs this script (or only
#                                       re-signs) before it expires
#   DIR/dists/SUITE/InRelease           Release clearsigned by KEYID (what apt fetches)
#   DIR/dists/SUITE/Release.gpg         detached signature (for older apt clients)
#   DIR/rustronaut.gpg                  the public key as a binary keyring, for clients'
#                                       /usr/share/keyrings/rustronaut.gpg (signed-by)
#   DIR/rustronaut.sources              the client's deb822 sources file: URIs=URL,
#                                       Signed-By=/usr/share/keyrings/rustronaut.gpg
#                                       (this key only, never the system's trusted keys)
#
# URL defaults to https://packages.rustronaut.example/apt, SUITE to stable. Date is now,
# or SOURCE_DATE_EPOCH when set (reproducible builds). A package file of the same name
# but other content than one already published is refused (exit 1): clients that cached
# the first one would fail on a hash mismatch; build a new version instead. The key
# comes from the caller's GNUPGHOME as in sign.sh (no passphrase prompt); what is written
# is checked with gpgv and the exported key only. Re-running is idempotent (new Date).
# Exit 2 on usage errors. Needs apt-ftparchive (apt-utils), dpkg-deb, gpg, gpgv, gzip.
set -euo pipefail
usage() {
  echo "usage: repo-apt.sh --key KEYID --out DIR [--url URL] [--suite SUITE] [--valid-days N] DEB..." >&2
  exit 2
}
key='' out='' url=https://packages.rustronaut.example/apt suite=stable days=30
while (($#)); do
  case "$1" in
    --key) key=${2:-}; shift 2 || usage ;;
    --out) out=${2:-}; shift 2 || usage ;;
    --url) url=${2:-}; shift 2 || usage ;;
    --suite) suite=${2:-}; shift 2 || usage ;;
    --valid-days) days=${2:-}; shift 2 || usage ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
if [ -z "$key" ] || [ -z "$out" ] || (($# == 0)); then usage; fi
[[ "$days" =~ ^[1-9][0-9]*$ ]] || { echo "repo-apt.sh: --valid-days takes a positive number of days" >&2; exit 2; }
[[ "$suite" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || { echo "repo-apt.sh: bad suite name: $suite" >&2; exit 2; }
for deb in "$@"; do
  case "$deb" in *.deb) [ -f "$deb" ] || { echo "repo-apt.sh: no such file: $deb" >&2; exit 2; } ;;
    *) echo "repo-apt.sh: not a .deb: $deb" >&2; exit 2 ;; esac
done
for tool in apt-ftparchive dpkg-deb gpg gpgv gzip; do
  command -v "$tool" >/dev/null || { echo "repo-apt.sh: $tool is missing (Debian: apt-utils, dpkg, gnupg, gpgv, gzip)" >&2; exit 1; }
done
gpg=(gpg --batch --yes --pinentry-mode loopback --passphrase "${RUSTRONAUT_GPG_PASSPHRASE:-}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"${gpg[@]}" --export --export-options export-minimal "$key" > "$work/key.gpg"
[ -s "$work/key.gpg" ] || { echo "repo-apt.sh: no public key $key in ${GNUPGHOME:-~/.gnupg}" >&2; exit 1; }

# Into the pool; never replace a published file by a different one.
mkdir -p "$out/pool/main"
for deb in "$@"; do
  name=$(dpkg-deb -f "$deb" Package) || { echo "repo-apt.sh: $deb is not a valid .deb" >&2; exit 1; }
  dir="$out/pool/main/${name:0:1}/$name"
  dest="$dir/$(basename "$deb")"
  if [ -e "$dest" ]; then
    cmp -s "$deb" "$dest" || { echo "repo-apt.sh: $dest is already published with other content; build a new version" >&2; exit 1; }
    continue
  fi
  mkdir -p "$dir"
  cp "$deb" "$dest.tmp" && mv "$dest.tmp" "$dest"
done

cd "$out"
archs=$(find pool -name '*.deb' -exec dpkg-deb -f {} Architecture \; | grep -vx all | LC_ALL=C sort -u | tr '\n' ' ')
archs=${archs% }
[ -n "$archs" ] || archs=$(dpkg --print-architecture)
new="$work/dists/$suite"
for arch in $archs; do
  mkdir -p "$new/main/binary-$arch"
  # --arch: this architecture's packages and the Architecture: all ones.
  apt-ftparchive --arch "$arch" packages pool/main > "$new/main/binary-$arch/Packages"
  gzip -9n -k "$new/main/binary-$arch/Packages"
done
epoch=${SOURCE_DATE_EPOCH:-$(date +%s)}
stamp() { LC_ALL=C date -u -d "@$1" '+%a, %d %b %Y %H:%M:%S UTC'; }
rel=APT::FTPArchive::Release
apt-ftparchive -o APT::FTPArchive::MD5=false -o APT::FTPArchive::SHA1=false \
  -o "$rel::Origin=Rustronaut" -o "$rel::Label=Rustronaut" -o "$rel::Suite=$suite" \
  -o "$rel::Codename=$suite" -o "$rel::Architectures=$archs" -o "$rel::Components=main" \
  -o "$rel::Description=Rustronaut Client" \
  -o "$rel::Date=$(stamp "$epoch")" release "$new" > "$work/Release"
# Valid-Until counts from Date (apt-ftparchive's ValidTime would count from now).
sed "/^Date: /a Valid-Until: $(stamp $((epoch + days * 86400)))" "$work/Release" > "$new/Release"
grep -q '^Valid-Until: ' "$new/Release" || { echo "repo-apt.sh: no Valid-Until written" >&2; exit 1; }
"${gpg[@]}" --local-user "$key" --digest-algo SHA512 --clearsign --output "$new/InRelease" "$new/Release"
"${gpg[@]}" --local-user "$key" --digest-algo SHA512 --armor --detach-sign --output "$new/Release.gpg" "$new/Release"
# Check what was just written with the exported key only (not the signer's keyring).
if ! gpgv --keyring "$work/key.gpg" "$new/InRelease" 2>/dev/null \
  || ! gpgv --keyring "$work/key.gpg" "$new/Release.gpg" "$new/Release" 2>/dev/null; then
  echo "repo-apt.sh: the Release signatures do not verify with $key" >&2
  exit 1
fi

# Publish: the indexes first, the signed Release files last (each a rename), so a client
# never sees a new Release naming indexes not yet there for longer than the copy takes.
mkdir -p "dists/$suite"
for arch in $archs; do
  mkdir -p "dists/$suite/main/binary-$arch"
  for f in Packages Packages.gz; do
    cp "$new/main/binary-$arch/$f" "dists/$suite/main/binary-$arch/.$f.tmp"
    mv "dists/$suite/main/binary-$arch/.$f.tmp" "dists/$suite/main/binary-$arch/$f"
  done
done
for f in Release Release.gpg InRelease; do
  cp "$new/$f" "dists/$suite/.$f.tmp" && mv "dists/$suite/.$f.tmp" "dists/$suite/$f"
done
install -m 0644 "$work/key.gpg" rustronaut.gpg
cat > rustronaut.sources <<SOURCES
Types: deb
URIs: $url
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/rustronaut.gpg
SOURCES
echo "apt repository: $out (suite $suite, $archs, valid $days days)"
