#!/usr/bin/env bash
# The whole pipeline that exists so far, on built-in data, in a few minutes:
#   1. train the small reference MFM on Fashion-VQA (bounded by DEMO_MINUTES, default 3)
#   2. evaluate it on the official test images (exact-match answer accuracy)
#   3. ask it a few questions about test images
# Later stages (compress → convert → simulate → energy report) are added here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN="$BUILD/spikefm"
OUT=out/demo
MINUTES=${DEMO_MINUTES:-3}
mkdir -p "$OUT"

echo "== 1/3 train: small MFM on Fashion-VQA, at most $MINUTES min =="
"$BIN" train --task fashion-vqa --model small --minutes "$MINUTES" --epochs 4 --out "$OUT/small.h5"

echo
echo "== 2/3 evaluate on the Fashion-VQA test split (10,000 images x 4 questions) =="
"$BIN" eval --checkpoint "$OUT/small.h5" --task fashion-vqa --split test | tee "$OUT/eval.txt"
"$BIN" eval --checkpoint "$OUT/small.h5" --task fashion-vqa --split test --json > "$OUT/eval.json" 2>/dev/null

echo
echo "== 3/3 generate: answers to questions about test images =="
for i in 0 1 2; do
  for q in "what is this?" "is this footwear?" "which category group?"; do
    a=$("$BIN" generate --checkpoint "$OUT/small.h5" --index "$i" --question "$q" 2>"$OUT/gen.err")
    printf '  image %d  %-24s -> %-12s %s\n' "$i" "$q" "$a" "$(cat "$OUT/gen.err")"
  done
done

acc=$(python3 -c 'import json,sys; print("%.2f" % (100*json.load(open(sys.argv[1]))["accuracy"]))' "$OUT/eval.json")
echo
echo "demo: small MFM test exact-match accuracy ${acc}% (checkpoint $OUT/small.h5, report $OUT/eval.json)"
