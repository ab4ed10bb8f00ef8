#!/usr/bin/env bash
# The whole pipeline that exists so far, on built-in data, in a few minutes:
#   1. train the small reference MFM on Fashion-VQA (bounded by DEMO_MINUTES, default 3)
#   2. evaluate it on the official test images (exact-match answer accuracy) and ask it questions
#   3. compress it: mixed-precision weights under a 2.5 bits/weight budget (GPTQ), accuracy beside float
#   4. prune it structurally (a whole block, attention heads, MLP channels) with a short recovery
#      fine-tune: parameters, accuracy and CPU wall time beside the unpruned model
#   5. fine-tune it into a QANN (quantizers at every linear/product input, int8 weights), and the
#      2.5-bit compressed model of step 3 into a QANN that keeps its mixed widths and groups
#   6. allocate the QANN's activation levels per quantizer under 60% of its spikes, then convert the
#      QANN, that allocation and the compressed QANN into spiking networks (ST-BIF neurons), and the
#      QANN into the rate-IF baseline
#   7. simulate them beside their QANNs: accuracy, agreement, spikes, SOPs, wall time
#   8. energy: map the ST-BIF network onto modeled Loihi-, TrueNorth- and 45 nm-class chips and price
#      its activity beside a MAC-array ANN in the same technology and the literature formula; then
#      the level-allocated and the compressed networks on Loihi beside it
# The pruned checkpoint does not feed the spiking path in the demo (a pruned QANN converts —
# tests/convert checks it bit for bit).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN="$BUILD/spikefm"
OUT=out/demo
MINUTES=${DEMO_MINUTES:-3}
QANN_MINUTES=${DEMO_QANN_MINUTES:-1.5}
PRUNE_MINUTES=${DEMO_PRUNE_MINUTES:-1}
SAMPLES=${DEMO_SAMPLES:-400}
mkdir -p "$OUT"

echo "== 1/8 train: small MFM on Fashion-VQA, at most $MINUTES min =="
"$BIN" train --task fashion-vqa --model small --minutes "$MINUTES" --epochs 4 --out "$OUT/small.h5"

echo
echo "== 2/8 evaluate on the Fashion-VQA test split (10,000 images x 4 questions), then ask =="
"$BIN" eval --checkpoint "$OUT/small.h5" --task fashion-vqa --split test | tee "$OUT/eval.txt"
"$BIN" eval --checkpoint "$OUT/small.h5" --task fashion-vqa --split test --json > "$OUT/eval.json" 2>/dev/null
for i in 0 1; do
  for q in "what is this?" "is this footwear?" "which category group?"; do
    a=$("$BIN" generate --checkpoint "$OUT/small.h5" --index "$i" --question "$q" 2>"$OUT/gen.err")
    printf '  image %d  %-24s -> %-12s %s\n' "$i" "$q" "$a" "$(cat "$OUT/gen.err")"
  done
done

echo
echo "== 3/8 compress: mixed-precision weights at 2.5 bits/weight (int8/4/2, per-group or per-channel scales, GPTQ) =="
"$BIN" compress --checkpoint "$OUT/small.h5" --task fashion-vqa --bits 2.5 --calib-images 128 --limit 2000 \
  --out "$OUT/small_q25.h5" | tee "$OUT/compress.txt"
echo "-- the same model under a memory-hierarchy budget: a cmos45-class chip with its synapse SRAM cut to 8 KiB per core"
"$BIN" compress --checkpoint "$OUT/small.h5" --task fashion-vqa --hw cmos45 --hw-sram 8192 --calib-images 128 --limit 2000 \
  --out "$OUT/small_q_hw.h5" | tee "$OUT/compress_hw.txt"

echo
echo "== 4/8 prune: remove the least influential block, 25% of heads and 50% of MLP channels; ${PRUNE_MINUTES} min recovery =="
"$BIN" compress --checkpoint "$OUT/small.h5" --task fashion-vqa --prune-blocks 1 --prune-heads 0.25 --prune-mlp 0.5 \
  --recover-minutes "$PRUNE_MINUTES" --calib-images 128 --limit 2000 --out "$OUT/small_pruned.h5" | tee "$OUT/prune.txt"

echo
echo "== 5/8 QANN: fine-tune with L-level quantizers everywhere and int8 weights, $QANN_MINUTES min =="
"$BIN" train --init "$OUT/small.h5" --qann --lr 1e-3 --minutes "$QANN_MINUTES" --epochs 1 --val-images 1000 \
  --out "$OUT/small_qann.h5"
echo "-- the same from the 2.5-bit compressed model (step 3): every layer keeps its width and group"
"$BIN" train --init "$OUT/small_q25.h5" --qann --lr 1e-3 --minutes "$QANN_MINUTES" --epochs 1 --val-images 1000 \
  --out "$OUT/small_q25_qann.h5"

echo
echo "== 6/8 activation levels per quantizer at 60% of the QANN's spikes, then convert: QANNs -> spiking networks =="
"$BIN" compress --checkpoint "$OUT/small_qann.h5" --act-spikes 0.6 --calib-images 64 --limit 2000 \
  --out "$OUT/small_qann_lv.h5" | tee "$OUT/levels.txt"
"$BIN" convert --checkpoint "$OUT/small_qann.h5" --neuron st-bif --timesteps 16 --out "$OUT/small_stbif.snn.h5"
"$BIN" convert --checkpoint "$OUT/small_q25_qann.h5" --neuron st-bif --timesteps 16 --out "$OUT/small_q25_stbif.snn.h5"
"$BIN" convert --checkpoint "$OUT/small_qann_lv.h5" --neuron st-bif --timesteps 16 --out "$OUT/small_stbif_lv.snn.h5"
"$BIN" convert --checkpoint "$OUT/small_qann.h5" --neuron if-rate --timesteps 32 --out "$OUT/small_ifrate.snn.h5"

echo
echo "== 7/8 simulate on $SAMPLES test questions, beside their QANNs =="
"$BIN" simulate --snn "$OUT/small_stbif.snn.h5" --limit "$SAMPLES" --until-quiet | tee "$OUT/simulate_stbif.txt"
"$BIN" simulate --snn "$OUT/small_stbif.snn.h5" --limit "$SAMPLES" --timesteps 6 | tee "$OUT/simulate_stbif_t6.txt"
echo "-- the same network with its levels allocated at 60% of the spikes (step 6)"
"$BIN" simulate --snn "$OUT/small_stbif_lv.snn.h5" --limit "$SAMPLES" --until-quiet | tee "$OUT/simulate_stbif_lv.txt"
echo "-- the network converted from the 2.5-bit compressed QANN (step 5): int8/int4/int2 synapses"
"$BIN" simulate --snn "$OUT/small_q25_stbif.snn.h5" --limit "$SAMPLES" --until-quiet | tee "$OUT/simulate_q25.txt"
"$BIN" simulate --snn "$OUT/small_ifrate.snn.h5" --limit "$((SAMPLES / 4))" --timesteps 32 | tee "$OUT/simulate_ifrate.txt"

echo
echo "== 8/8 energy: the ST-BIF network on modeled chips, beside a MAC-array ANN in the same technology =="
"$BIN" energy --snn "$OUT/small_stbif.snn.h5" --limit "$((SAMPLES / 4))" --until-quiet --hw loihi | tee "$OUT/energy_loihi.txt"
"$BIN" energy --snn "$OUT/small_stbif.snn.h5" --limit "$((SAMPLES / 4))" --until-quiet --hw loihi,truenorth,cmos45 --json \
  > "$OUT/energy.json" 2> "$OUT/energy.log"
python3 - "$OUT/energy.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("\nenergy per sample (image + question), %d samples, %s, accuracy %.2f%%:" % (r["n"], r["neuron"], 100 * r["accuracy"]))
print("  %-10s %14s %14s %14s %14s %9s %12s" % ("chip", "SNN model", "SNN formula", "ANN model", "ANN formula", "SNN/ANN", "SNN latency"))
print("  (model: the full energy model of docs/energy.md; formula: E_AC x SOPs vs E_MAC x MACs, the literature's one-liner)")
for h in r["hardware"]:
    ann = h["baselines"][0]
    print("  %-10s %11.4g uJ %11.4g uJ %11.4g uJ %11.4g uJ %9.1f %9.4g ms" % (
        h["hw"], h["snn_energy_per_sample"]["total_pj"] / 1e6, h["snn_formula_pj"] / 1e6, ann["total_pj"] / 1e6,
        ann["formula_pj"] / 1e6, ann["snn_over_baseline"], h["snn_latency_s"] * 1e3))
PY

"$BIN" energy --snn "$OUT/small_stbif_lv.snn.h5" --limit "$((SAMPLES / 4))" --until-quiet --hw loihi --json \
  > "$OUT/energy_lv.json" 2> "$OUT/energy_lv.log"
python3 - "$OUT/energy.json" "$OUT/energy_lv.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ea, eb = (r["hardware"][0]["snn_energy_per_sample"]["total_pj"] / 1e6 for r in (a, b))
print("levels allocated at 60%% of the spikes (step 6), on %s: %.4g uJ per sample vs %.4g uJ at the trained levels "
      "(%.2fx), accuracy %.2f%% vs %.2f%% (%d samples)" % (b["hardware"][0]["hw"], eb, ea, ea / eb, 100 * b["accuracy"],
      100 * a["accuracy"], b["n"]))
PY
"$BIN" energy --snn "$OUT/small_q25_stbif.snn.h5" --limit "$((SAMPLES / 4))" --until-quiet --hw loihi --json \
  > "$OUT/energy_q25.json" 2> "$OUT/energy_q25.log"
python3 - "$OUT/energy.json" "$OUT/energy_q25.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ha, hb = a["hardware"][0], b["hardware"][0]
ea, eb = (h["snn_energy_per_sample"]["total_pj"] / 1e6 for h in (ha, hb))
fits = lambda m: "fits" if m["fits"] else "does not fit: %d neurons short" % m["missing_neurons"]
print("compressed to 2.5 bits/weight (steps 3, 5), on %s: %.4g uJ per sample vs %.4g uJ with int8 weights (%.2fx the energy), "
      "%d vs %d cores (%s), accuracy %.2f%% vs %.2f%% (%d samples)" % (hb["hw"], eb, ea, eb / ea, hb["mapping"]["cores_used"],
      ha["mapping"]["cores_used"], fits(hb["mapping"]), 100 * b["accuracy"], 100 * a["accuracy"], b["n"]))
PY

acc=$(python3 -c 'import json,sys; print("%.2f" % (100*json.load(open(sys.argv[1]))["accuracy"]))' "$OUT/eval.json")
echo
echo "demo: small MFM test exact-match accuracy ${acc}%; spiking (ST-BIF) results in $OUT/simulate_stbif.txt"
