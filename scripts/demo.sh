#!/usr/bin/env bash
# The README's first command: set everything up (Debian packages, venv, project) and run the
# end-to-end demo — controller + dev OIDC provider, sign-in, posture, signed policy, a real
# WireGuard tunnel through the privileged helper, and the policy-checked proxy. Root only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root for network namespaces and WireGuard; run: sudo bash scripts/demo.sh" >&2
  exit 2
fi
bash scripts/bootstrap.sh
exec .venv/bin/python -m controller.demo "$@"
