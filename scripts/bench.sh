#!/usr/bin/env bash
# Run every benchmark in tests/bench/ (or the ones named: bench.sh policy proxy) and print
# their figures and ratios against peers. Benchmarks never gate tests; see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >/dev/null
export PATH="$PWD/.venv/bin:$PATH" QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
if (($#)); then
  files=()
  for name in "$@"; do files+=("tests/bench/bench_${name}.py"); done
else
  files=(tests/bench/bench_*.py)
fi
status=0
for f in "${files[@]}"; do
  echo "=================== $f"
  module=${f%.py}; module=${module//\//.}  # run as tests.bench.X: imports tests.* helpers
  bash scripts/with-keyring.sh python -m "$module" || { echo "!! $f failed"; status=1; }
done
exit $status
