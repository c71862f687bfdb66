#!/usr/bin/env bash
# Set up everything the client, the controller, the demo and the tests need on Debian 12:
# the Debian packages listed in scripts/apt/*.txt (only the missing ones), a venv in .venv
# with the project and its dev extras, and the npm test tools. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(cat scripts/apt/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for pkg in $want; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Some machines carry Node.js from another repository that bundles npm; only ask Debian
# for npm when there is no npm command at all.
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.rustronaut-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import core, wg_backends, controller, app" 
  touch "$stamp"
fi

for pkgjson in tests/tools/*/package.json; do
  [ -f "$pkgjson" ] || continue
  dir=$(dirname "$pkgjson")
  if [ ! -d "$dir/node_modules" ] || [ "$pkgjson" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm install --no-audit --no-fund --silent >/dev/null)
    touch "$dir/node_modules"
  fi
done
# The tray's translations (.qm) are built from the committed .ts files.
bash scripts/i18n.sh build
echo "bootstrap: ready (.venv)"
