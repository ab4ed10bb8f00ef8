#!/usr/bin/env python3
"""Paired comparison of two `spikefm bench --out` files (per-question JSONL) on the same questions.

usage: scripts/mcnemar.py A.jsonl B.jsonl

Matches questions by (image, type, question), counts those only A / only B answers correctly, and
prints McNemar's z = (b - a) / sqrt(a + b) with its two-sided p-value (normal approximation; exact
binomial when fewer than 25 discordant pairs). |z| >= 1.96 is significant at 5%.
"""
import json
import math
import sys


def load(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
                key = (r["image"], r["type"], r["question"])
                out[key] = bool(r["correct"])
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"mcnemar: error: {path}:{n}: not a bench record ({e})")
    if not out:
        sys.exit(f"mcnemar: error: {path}: no records")
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    a, b = load(sys.argv[1]), load(sys.argv[2])
    common = a.keys() & b.keys()
    if not common:
        sys.exit("mcnemar: error: the two files share no questions (same task, split and --limit?)")
    only_a = sum(1 for k in common if a[k] and not b[k])
    only_b = sum(1 for k in common if b[k] and not a[k])
    acc_a = sum(a[k] for k in common) / len(common)
    acc_b = sum(b[k] for k in common) / len(common)
    d = only_a + only_b
    z = (only_b - only_a) / math.sqrt(d) if d else 0.0
    if d < 25:  # exact two-sided binomial test, p = 1/2
        k = min(only_a, only_b)
        p = min(1.0, 2 * sum(math.comb(d, i) for i in range(k + 1)) / 2**d) if d else 1.0
    else:
        p = math.erfc(abs(z) / math.sqrt(2))
    print(f"{len(common)} shared questions: A {100 * acc_a:.2f}%, B {100 * acc_b:.2f}% "
          f"({100 * (acc_b - acc_a):+.2f} points)")
    print(f"only A right {only_a}, only B right {only_b}: McNemar z = {z:+.2f}, p = {p:.2g}"
          f" ({'significant' if p < 0.05 else 'not significant'} at 5%)")


if __name__ == "__main__":
    main()
