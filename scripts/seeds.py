#!/usr/bin/env python3
"""Compare two groups of training runs, one run per seed, by their test accuracies.

usage: scripts/seeds.py A1.json A2.json ... -- B1.json B2.json ...

Each file is the JSON object `spikefm bench --json` (or `spikefm eval --json`) printed; its
"accuracy" is one run's score. Prints each group's mean and standard deviation, the difference of
the means (B - A), Welch's t, and the exact one-sided permutation p-value of that difference: the
share of all ways to split the pooled runs into groups of the same sizes whose difference of means
is at least the observed one. With 3 + 5 runs the smallest possible p is 1/56 (B above every A).
McNemar on one pair of runs (scripts/mcnemar.py) measures the question-level noise of one pair;
this measures whether the gap exceeds what the seed alone moves.
"""
import itertools
import json
import math
import statistics
import sys


def accuracy(path):
    try:
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        a = float(r["accuracy"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"seeds: error: {path}: not a bench/eval JSON object with an accuracy ({e})")
    if not 0.0 <= a <= 1.0:
        sys.exit(f"seeds: error: {path}: accuracy {a} is not in [0, 1]")
    return a


def main():
    args = sys.argv[1:]
    if "--" not in args:
        sys.exit(__doc__.strip().splitlines()[2])
    cut = args.index("--")
    a = [accuracy(p) for p in args[:cut]]
    b = [accuracy(p) for p in args[cut + 1:]]
    if len(a) < 2 or len(b) < 2:
        sys.exit("seeds: error: each group needs at least 2 runs (a spread needs two seeds)")
    ma, mb = statistics.mean(a), statistics.mean(b)
    sa, sb = statistics.stdev(a), statistics.stdev(b)
    for name, v, m, s in (("A", a, ma, sa), ("B", b, mb, sb)):
        runs = " ".join(f"{100 * x:.2f}" for x in v)
        print(f"{name}: {len(v)} runs {runs}: mean {100 * m:.3f}% sd {100 * s:.3f}")
    diff = mb - ma
    se = math.sqrt(sa * sa / len(a) + sb * sb / len(b))
    if se > 0:
        t = diff / se
    else:  # both groups constant: t is infinite with the sign of the gap, undefined without one
        t = math.copysign(math.inf, diff) if diff != 0 else math.nan
    pooled = a + b
    total = sum(pooled)
    splits = at_least = 0
    for gb in itertools.combinations(pooled, len(b)):
        sum_b = sum(gb)
        splits += 1
        if sum_b / len(b) - (total - sum_b) / len(a) >= diff - 1e-12:
            at_least += 1
    print(f"B - A = {100 * diff:+.3f} points; Welch t = {t:.2f}; "
          f"permutation p (one-sided, B > A) = {at_least}/{splits} = {at_least / splits:.3f}")


if __name__ == "__main__":
    main()
