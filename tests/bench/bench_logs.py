"""Benchmark: the cost of redaction on the logging path and on diagnostics files.

Prints medians (µs per record / MB/s) for: logging a record without any filter (the
limit), with ``RedactingFilter``, ``redact()`` on typical and secret-bearing lines, and
``redact()`` over a 1 MB log file (what the diagnostics bundle does). Not a test; run
with ``.venv/bin/python -m tests.bench.bench_logs``.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
import time
from collections.abc import Callable

from core.logs import LOG_FORMAT, RedactingFilter, redact

LINES = {
    "plain": "state connecting -> connected (bundle v42, 7 resources) in 183 ms",
    "jwt": "refresh ok: eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2J5dGVzX2hlcmU",
    "json": json.dumps({"access_token": "a" * 40, "refresh_token": "r" * 40, "expires_in": 300}),
    "wg": "[Interface]\nPrivateKey = YH/2tYy/B/1Ewwb5jOSRxPBHKM7uGvhqEQPmF1rh104=\nMTU = 1420",
}


def median_us(fn: Callable[[], None], n: int = 2000, rounds: int = 7) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def logger_with(filtered: bool) -> logging.Logger:
    log = logging.getLogger(f"bench.{filtered}")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    if filtered:
        handler.addFilter(RedactingFilter())
    log.handlers = [handler]
    return log


def main() -> None:
    plain, redacting = logger_with(False), logger_with(True)
    print("per record, median µs        no filter   redacting   ratio")
    for name, line in LINES.items():
        base = median_us(lambda line=line: plain.info("%s", line))
        red = median_us(lambda line=line: redacting.info("%s", line))
        print(f"  log {name:<6}                 {base:8.2f}   {red:9.2f}   {red / base:5.2f}x")
    for name, line in LINES.items():
        print(f"  redact() {name:<6}            {median_us(lambda line=line: redact(line)):8.2f}")
    blob = "\n".join(list(LINES.values()) * 4000)[: 1 << 20]
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        redact(blob)
        runs.append(time.perf_counter() - began)
    secs = statistics.median(runs)
    print(
        f"redact() over 1 MB of log text: {secs * 1000:.1f} ms ({len(blob) / secs / 1e6:.1f} MB/s)"
    )


if __name__ == "__main__":
    main()
