#!/usr/bin/env bash
# Energy per sample of spiking models on every shipped accelerator preset, beside the MAC-array ANN,
# QANN and QNN baselines priced from the same table, as a markdown table.
#   scripts/energy_table.sh LIMIT MODEL.snn.h5:T [MODEL.snn.h5:T ...]
# T is a timestep count or "quiet" (run until no neuron spikes). Extra flags for `spikefm energy`
# (e.g. --qann CKPT) go in $ENERGY_ARGS. Each model/T is one `spikefm energy --json` run (one
# simulation priced on all presets).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${BUILD:-build}/spikefm}
LIMIT=${1:?usage: energy_table.sh LIMIT MODEL.snn.h5:T ...}
shift
HW=${HW:-loihi,truenorth,cmos45}
echo "| model | T (steps/inference) | accuracy | chip | SNN energy (model) | SNN energy (formula) | ANN int8 (model) | ANN (formula) | QANN (model) | QNN ceil(log2(T+1)) bits (model) | SNN / ANN | SOPs per synapse per inference | SNN latency | ANN latency | fits |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for spec in "$@"; do
  snn=${spec%:*}
  T=${spec##*:}
  if [ "$T" = quiet ]; then args=(--until-quiet); else args=(--timesteps "$T"); fi
  # shellcheck disable=SC2086
  "$BIN" energy --snn "$snn" --limit "$LIMIT" "${args[@]}" --hw "$HW" --json ${ENERGY_ARGS:-} 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
name = sys.argv[1]
t = ("quiet (%.1f)" % r["steps_per_inference"]) if r["until_quiet"] else ("%d (%d)" % (r["timesteps"], round(r["steps_per_inference"])))
def e(pj):
    return "%.3g uJ" % (pj / 1e6)
def s(sec):
    return "%.3g ms" % (sec * 1e3) if sec >= 1e-4 else "%.3g us" % (sec * 1e6)
for h in r["hardware"]:
    b = {x["name"]: x for x in h["baselines"]}
    print("| %s %s | %s | %.2f%% | %s | %s | %s | %s | %s | %s | %s (%d b) | %.3g | %.2f | %s | %s | %s |" % (
        name, r["neuron"], t, 100 * r["accuracy"], h["hw"], e(h["snn_energy_per_sample"]["total_pj"]), e(h["snn_formula_pj"]),
        e(b["ann_int8"]["total_pj"]), e(b["ann_int8"]["formula_pj"]), e(b["qann"]["total_pj"]), e(b["qnn_T"]["total_pj"]),
        r["qnn_bits"], b["ann_int8"]["snn_over_baseline"], h["sops_per_synapse_per_inference"], s(h["snn_latency_s"]),
        s(b["ann_int8"]["latency_s"]), "yes" if h["mapping"]["fits"] else "no (%d words short)" % h["mapping"]["missing_neurons"]))
' "$(basename "$snn" .snn.h5)"
done
