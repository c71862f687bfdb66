#!/usr/bin/env bash
# Authenticode-sign a Windows executable in place with osslsigncode, then verify it.
#
#   sign.sh FILE.exe
#
# Certificate, from the environment (release: secrets; tests: a throwaway CA):
#   RUSTRONAUT_WIN_CERT_P12     PKCS#12 file with the code-signing key and chain
#   RUSTRONAUT_WIN_CERT_PASS    its password (may be empty)
#   RUSTRONAUT_WIN_TIMESTAMP    RFC 3161 timestamp URL (optional; none reachable in CI
#                               here, required for release so signatures outlive the cert)
#   RUSTRONAUT_WIN_CAFILE       CA bundle for the verification step (optional: without it
#                               osslsigncode verifies against the system trust store)
# Re-signing replaces an existing signature (idempotent). Exit 1 if signing or the
# verification fails, 2 on usage errors; the input is left untouched on failure.
set -euo pipefail
file=${1:?usage: sign.sh FILE.exe}
p12=${RUSTRONAUT_WIN_CERT_P12:?set RUSTRONAUT_WIN_CERT_P12 to the PKCS#12 code-signing certificate}
[ -f "$file" ] || { echo "sign.sh: no such file $file" >&2; exit 2; }
[ -f "$p12" ] || { echo "sign.sh: no such certificate $p12" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$file
# A signed input is re-signed from its unsigned content.
if osslsigncode extract-signature -in "$file" -out "$tmp/old.sig" >/dev/null 2>&1; then
  osslsigncode remove-signature -in "$file" -out "$tmp/unsigned.exe" >/dev/null
  src="$tmp/unsigned.exe"
fi
args=(sign -pkcs12 "$p12" -pass "${RUSTRONAUT_WIN_CERT_PASS:-}" -h sha256
      -n "Rustronaut" -i "https://rustronaut.example" -in "$src" -out "$tmp/signed.exe")
[ -n "${RUSTRONAUT_WIN_TIMESTAMP:-}" ] && args+=(-ts "$RUSTRONAUT_WIN_TIMESTAMP")
osslsigncode "${args[@]}" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
verify=(verify -in "$tmp/signed.exe")
[ -n "${RUSTRONAUT_WIN_CAFILE:-}" ] && verify+=(-CAfile "$RUSTRONAUT_WIN_CAFILE")
osslsigncode "${verify[@]}" >"$tmp/log" 2>&1 || { echo "sign.sh: verification failed:" >&2; cat "$tmp/log" >&2; exit 1; }
cat "$tmp/signed.exe" > "$file"
echo "sign.sh: signed and verified $file" >&2
