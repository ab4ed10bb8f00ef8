#!/usr/bin/env bash
# Accuracy and agreement with the QANN versus timesteps T, as a markdown table.
#   scripts/sweep_timesteps.sh MODEL.snn.h5 [LIMIT] [T list...]
# Each row is one `spikefm simulate --json` run on the first LIMIT test questions.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${BUILD:-build}/spikefm}
SNN=${1:?usage: sweep_timesteps.sh MODEL.snn.h5 [LIMIT] [T...]}
LIMIT=${2:-1000}
shift $(( $# >= 2 ? 2 : 1 ))
TS=("$@")
[ ${#TS[@]} -gt 0 ] || TS=(1 2 4 8 16 32 64)
echo "| T | accuracy | QANN accuracy | agreement | max abs dlogit | spikes/sample | SOPs/sample | SNN s | QANN s |"
echo "|---|---|---|---|---|---|---|---|---|"
for T in "${TS[@]}"; do
  if [ "$T" = quiet ]; then args=(--until-quiet); else args=(--timesteps "$T"); fi
  "$BIN" simulate --snn "$SNN" --limit "$LIMIT" "${args[@]}" --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
t = "until quiet (%.1f avg)" % r["steps_per_inference"] if r["until_quiet"] else str(r["timesteps"])
print("| %s | %.2f%% | %.2f%% | %.2f%% | %.3g | %.0f | %.0f | %.2f | %.2f |" % (t, 100*r["accuracy"], 100*r["qann_accuracy"],
      100*r["agreement"], r["max_abs_dlogit"], r["spikes_per_sample"], r["sops_per_sample"], r["snn_seconds"], r["qann_seconds"]))'
done
