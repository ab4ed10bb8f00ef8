#!/usr/bin/env bash
# Runs the Google Benchmark programs; figures and their baselines go to BENCHMARKS.md by hand,
# with the command and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
for b in "$BUILD"/experiments/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b") =="
  "$b" --benchmark_min_time=0.3
done
