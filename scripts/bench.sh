#!/usr/bin/env bash
# Run every benchmark in tests/bench/ (or the ones named: bench.sh policy proxy) and print
# their figures and ratios against peers. Benchmarks never gate tests; see docs/performance.md.
# Options (words starting with "-") go to every benchmark run: bench.sh transparent --quick.
# Root-only ones (tunnel, transparent, relay: network namespaces) say so and fail without root.
#   bench.sh transparent   transparent mode vs the SOCKS5 path vs direct through the tunnel
#   bench.sh relay         WireGuard over the mTLS relay vs direct UDP (setup, bulk, CPU/GB)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >/dev/null
export PATH="$PWD/.venv/bin:$PATH" QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
names=() opts=()
for arg in "$@"; do
  if [[ $arg == -* ]]; then opts+=("$arg"); else names+=("$arg"); fi
done
if ((${#names[@]})); then
  files=()
  for name in "${names[@]}"; do
    [[ -f tests/bench/bench_${name}.py ]] || { echo "no benchmark named $name" >&2; exit 2; }
    files+=("tests/bench/bench_${name}.py")
  done
else
  files=(tests/bench/bench_*.py)
fi
status=0
for f in "${files[@]}"; do
  echo "=================== $f"
  module=${f%.py}; module=${module//\//.}  # run as tests.bench.X: imports tests.* helpers
  bash scripts/with-keyring.sh python -m "$module" ${opts[@]+"${opts[@]}"} || { echo "!! $f failed"; status=1; }
done
exit $status
