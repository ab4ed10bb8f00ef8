// EnergyStudy: one run's counts priced on one accelerator, with everything a "does the SNN save
// energy?" answer needs side by side: the mapping, the SNN's full breakdown and latency, the
// literature formula, and MAC-array baselines in the same technology (ANN with 8-bit activations,
// the QANN's activation width, and the QNN whose activation width matches the SNN's timesteps).
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "neuromorphic_hw/energy_model.h"

namespace spikefm::hw {

struct Baseline {
  std::string name;   // "ann_int8", "qann", "qnn_T"
  std::string label;  // for tables
  MacArrayReport report;
};

struct EnergyStudy {
  HwSpec spec;
  Mapping mapping;
  SnnEnergyReport snn;
  std::vector<Baseline> baselines;
  int64_t samples = 0, tokens = 0;
  int64_t synapses = 0;               // weights of the linear layers
  double steps_per_inference = 0;     // decoder (the graph that runs per token)
  // Break-even against the first baseline (ANN int8): the factor k by which the spike-driven energy
  // could grow (k > 1) or must shrink (k < 1) for the SNN to cost the same; <= 0: never (the
  // spike-independent part alone exceeds the ANN).
  double break_even_spike_scale = 0;

  double per_sample(double total) const { return total / static_cast<double>(samples); }
};

struct StudyOptions {
  MappingStrategy strategy = MappingStrategy::traffic_aware;
  EnergyOptions energy;
  int qann_bits = 4;   // activation bits of the QANN the SNN came from
  int qnn_bits = 4;    // ⌈log2(T + 1)⌉ for the SNN's timesteps per inference
};

EnergyStudy run_energy_study(const ActivityCounts& counts, const HwSpec& spec, const StudyOptions& opts);

// One JSON object, per-sample figures (keys ending _pj, _s), per-layer breakdown included.
Json energy_study_json(const EnergyStudy& s);

}  // namespace spikefm::hw
