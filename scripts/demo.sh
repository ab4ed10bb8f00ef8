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
#   9. benchmarks: the small model fine-tuned onto Med-VQA (head-CT slices) and replayed with a
#      per-question-type table, then as a QANN converted to ST-BIF and replayed on the spiking backend; the code sandbox scoring the shipped tasks' canonical solutions and
#      containing hostile completions, and a small code model trained for a minute
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
MED_MINUTES=${DEMO_MED_MINUTES:-1}
CODE_MINUTES=${DEMO_CODE_MINUTES:-1}
CODE_LIMIT=${DEMO_CODE_LIMIT:-50}
mkdir -p "$OUT"

echo "== 1/9 train: small MFM on Fashion-VQA, at most $MINUTES min =="
"$BIN" train --task fashion-vqa --model small --minutes "$MINUTES" --epochs 4 --out "$OUT/small.h5"

echo
echo "== 2/9 evaluate on the Fashion-VQA test split (10,000 images x 4 questions), then ask =="
"$BIN" eval --checkpoint "$OUT/small.h5" --task fashion-vqa --split test | tee "$OUT/eval.txt"
"$BIN" eval --checkpoint "$OUT/small.h5" --task fashion-vqa --split test --json > "$OUT/eval.json" 2>/dev/null
for i in 0 1; do
  for q in "what is this?" "is this footwear?" "which category group?"; do
    a=$("$BIN" generate --checkpoint "$OUT/small.h5" --index "$i" --question "$q" 2>"$OUT/gen.err")
    printf '  image %d  %-24s -> %-12s %s\n' "$i" "$q" "$a" "$(cat "$OUT/gen.err")"
  done
done

echo
echo "== 3/9 compress: mixed-precision weights at 2.5 bits/weight (int8/4/2, per-group or per-channel scales, GPTQ) =="
"$BIN" compress --checkpoint "$OUT/small.h5" --task fashion-vqa --bits 2.5 --calib-images 128 --limit 2000 \
  --out "$OUT/small_q25.h5" | tee "$OUT/compress.txt"
echo "-- the same model under a memory-hierarchy budget: a cmos45-class chip with its synapse SRAM cut to 8 KiB per core"
"$BIN" compress --checkpoint "$OUT/small.h5" --task fashion-vqa --hw cmos45 --hw-sram 8192 --calib-images 128 --limit 2000 \
  --out "$OUT/small_q_hw.h5" | tee "$OUT/compress_hw.txt"

echo
echo "== 4/9 prune: remove the least influential block, 25% of heads and 50% of MLP channels; ${PRUNE_MINUTES} min recovery =="
"$BIN" compress --checkpoint "$OUT/small.h5" --task fashion-vqa --prune-blocks 1 --prune-heads 0.25 --prune-mlp 0.5 \
  --recover-minutes "$PRUNE_MINUTES" --calib-images 128 --limit 2000 --out "$OUT/small_pruned.h5" | tee "$OUT/prune.txt"

echo
echo "== 5/9 QANN: fine-tune with L-level quantizers everywhere and int8 weights, $QANN_MINUTES min =="
"$BIN" train --init "$OUT/small.h5" --qann --lr 1e-3 --minutes "$QANN_MINUTES" --epochs 1 --val-images 1000 \
  --out "$OUT/small_qann.h5"
echo "-- the same from the 2.5-bit compressed model (step 3): every layer keeps its width and group"
"$BIN" train --init "$OUT/small_q25.h5" --qann --lr 1e-3 --minutes "$QANN_MINUTES" --epochs 1 --val-images 1000 \
  --out "$OUT/small_q25_qann.h5"

echo
echo "== 6/9 activation levels per quantizer at 60% of the QANN's spikes, then convert: QANNs -> spiking networks =="
"$BIN" compress --checkpoint "$OUT/small_qann.h5" --act-spikes 0.6 --calib-images 64 --limit 2000 \
  --out "$OUT/small_qann_lv.h5" | tee "$OUT/levels.txt"
"$BIN" convert --checkpoint "$OUT/small_qann.h5" --neuron st-bif --timesteps 16 --out "$OUT/small_stbif.snn.h5"
"$BIN" convert --checkpoint "$OUT/small_q25_qann.h5" --neuron st-bif --timesteps 16 --out "$OUT/small_q25_stbif.snn.h5"
"$BIN" convert --checkpoint "$OUT/small_qann_lv.h5" --neuron st-bif --timesteps 16 --out "$OUT/small_stbif_lv.snn.h5"
"$BIN" convert --checkpoint "$OUT/small_qann.h5" --neuron if-rate --timesteps 32 --out "$OUT/small_ifrate.snn.h5"

echo
echo "== 7/9 simulate on $SAMPLES test questions, beside their QANNs =="
"$BIN" simulate --snn "$OUT/small_stbif.snn.h5" --limit "$SAMPLES" --until-quiet | tee "$OUT/simulate_stbif.txt"
"$BIN" simulate --snn "$OUT/small_stbif.snn.h5" --limit "$SAMPLES" --timesteps 6 | tee "$OUT/simulate_stbif_t6.txt"
echo "-- the same network with its levels allocated at 60% of the spikes (step 6)"
"$BIN" simulate --snn "$OUT/small_stbif_lv.snn.h5" --limit "$SAMPLES" --until-quiet | tee "$OUT/simulate_stbif_lv.txt"
echo "-- the network converted from the 2.5-bit compressed QANN (step 5): int8/int4/int2 synapses"
"$BIN" simulate --snn "$OUT/small_q25_stbif.snn.h5" --limit "$SAMPLES" --until-quiet | tee "$OUT/simulate_q25.txt"
"$BIN" simulate --snn "$OUT/small_ifrate.snn.h5" --limit "$((SAMPLES / 4))" --timesteps 32 | tee "$OUT/simulate_ifrate.txt"

echo
echo "== 8/9 energy: the ST-BIF network on modeled chips, beside a MAC-array ANN in the same technology =="
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

echo
echo "== 9/9 benchmarks: Med-VQA (head-CT slices, 10 closed question types) and code generation (sandboxed) =="
echo "-- fine-tune the small model onto Med-VQA for $MED_MINUTES min (full, shifts <= 2 px), then replay the test split"
"$BIN" finetune --checkpoint "$OUT/small.h5" --task med-vqa --method full --minutes "$MED_MINUTES" --epochs 30 --batch 32 \
  --augment-shift 2 --val-images 0 --out "$OUT/med_small.h5"
"$BIN" bench --task med-vqa --checkpoint "$OUT/med_small.h5" --json --out "$OUT/med_small.q.jsonl" > "$OUT/bench_med.json"
"$BIN" bench --task med-vqa --checkpoint "$OUT/med_small.h5" | tee "$OUT/bench_med.txt"
echo "-- the same benchmark on the spiking backend: QANN fine-tune ($QANN_MINUTES min), ST-BIF conversion, $SAMPLES questions until quiet"
"$BIN" train --task med-vqa --init "$OUT/med_small.h5" --qann --lr 1e-3 --minutes "$QANN_MINUTES" --epochs 1 --batch 32 \
  --val-images 0 --out "$OUT/med_small_qann.h5"
"$BIN" convert --checkpoint "$OUT/med_small_qann.h5" --neuron st-bif --timesteps 16 --out "$OUT/med_small_stbif.snn.h5"
"$BIN" bench --task med-vqa --backend snn --checkpoint "$OUT/med_small_stbif.snn.h5" --limit "$SAMPLES" --until-quiet \
  --out "$OUT/med_small_snn.q.jsonl" | tee "$OUT/bench_med_snn.txt"
# Prints a code benchmark's summary without its per-family lines.
code_summary() { awk '/^by family:/{skip=1} /^sandbox:/{skip=0} !skip'; }
echo "-- the sandbox on the shipped code tasks: their canonical solutions as completions (every one must pass)"
python3 - datasets/data/code/code_test.jsonl "$OUT/code_canonical.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        t = json.loads(line)
        out.write(json.dumps({"task_id": t["task_id"], "completion": t["canonical_solution"]}) + "\n")
PY
"$BIN" bench --task code --completions "$OUT/code_canonical.jsonl" --workers 2 --out "$OUT/code_canonical.results.jsonl" \
  | tee "$OUT/bench_code_canonical.txt" | code_summary
echo "-- hostile completions: each must be contained and scored as a failure"
python3 - "$OUT/code_hostile.jsonl" <<'PY'
import json, sys
hostile = [("an endless loop", "    while True:\n        pass\n"),
           ("a 16 GiB allocation", "    x = bytearray(1 << 34)\n    return len(x)\n"),
           ("a write outside its directory", "    open('/tmp/spikefm_demo_escape.txt', 'w').write('x')\n    return ''\n"),
           ("a network connection", "    import socket\n    socket.create_connection(('192.0.2.1', 80), timeout=2)\n    return 0\n")]
with open(sys.argv[1], "w") as out:
    for i, (what, code) in enumerate(hostile):
        out.write(json.dumps({"task_id": "spikefm/test/%d" % i, "completion": code, "what": what}) + "\n")
PY
"$BIN" bench --task code --completions "$OUT/code_hostile.jsonl" --limit 4 --workers 2 --timeout 2 \
  --out "$OUT/code_hostile.results.jsonl" > "$OUT/bench_code_hostile.txt"
python3 - "$OUT/code_hostile.jsonl" "$OUT/code_hostile.results.jsonl" <<'PY'
import json, os, sys
what = {j["task_id"]: j["what"] for j in map(json.loads, open(sys.argv[1]))}
for line in open(sys.argv[2]):
    r = json.loads(line)
    s = r["samples"][0]
    print("  %-30s -> %-8s %s" % (what[r["task_id"]], s["status"], s["error"][:70]))
print("  /tmp/spikefm_demo_escape.txt %s" % ("EXISTS: the sandbox leaked" if os.path.exists("/tmp/spikefm_demo_escape.txt") else "was not created"))
PY
echo "-- a small code model trained for $CODE_MINUTES min, greedy, on the first $CODE_LIMIT test tasks"
"$BIN" train --task code --model small --minutes "$CODE_MINUTES" --out "$OUT/code_small.h5"
"$BIN" bench --task code --checkpoint "$OUT/code_small.h5" --samples 1 --temperature 0 --limit "$CODE_LIMIT" --workers 2 \
  --out "$OUT/code_small.results.jsonl" | tee "$OUT/bench_code.txt" | code_summary

acc=$(python3 -c 'import json,sys; print("%.2f" % (100*json.load(open(sys.argv[1]))["accuracy"]))' "$OUT/eval.json")
med=$(python3 -c 'import json,sys; print("%.2f" % (100*json.load(open(sys.argv[1]))["accuracy"]))' "$OUT/bench_med.json")
echo
echo "demo: small MFM test exact-match accuracy ${acc}%; spiking (ST-BIF) results in $OUT/simulate_stbif.txt;" \
  "Med-VQA after $MED_MINUTES min of fine-tuning ${med}% ($OUT/bench_med.txt)"
