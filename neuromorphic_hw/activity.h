// ActivityCounts: the *counts* of a run (STYLE.md rule 6) — what happened, per mapped layer, with no
// prices in it. Built from the spiking graphs and the engine's statistics (snn/layer_stats.h) of a
// simulation; priced by energy_model.h with an HwSpec.
//
// A layer is one node of a spiking graph. What it occupies on the chip:
//   linear        unit = one output channel: in weights (weight_bits each) and rows_cap int32
//                 accumulators — the input compartments of the neurons the channel feeds.
//   neuron        rows_cap × C (token rows) or H × rows_cap² (attention map) spike counts; a neuron
//                 fed directly by a linear layer shares that layer's compartment (0 words of its own).
//   qk_product    H × rows_cap² int32 accumulators of S_q S_kᵀ.
//   av_product    rows_cap × C int32 accumulators of S_p S_v.
//   Layers without synapses are split into units of one neuron-state word (no capacity lost to
//   rounding); linear channels stay whole.
//   everything else (inputs, encode_linear, add, layer_norm, softmax) runs on the dense unit and
//   occupies no core (units = 0).
// Spikes travel from a neuron layer to the layers that consume them (linear layers and products):
// spike_targets. One spike event (a burst of k spikes included) is one packet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "snn/layer_stats.h"
#include "snn/spiking_graph.h"

namespace spikefm::snn {
class GraphEngine;
}

namespace spikefm::hw {

struct LayerCounts {
  std::string graph, name;
  snn::OpKind kind = snn::OpKind::add;
  int64_t units = 0;               // mapping units (0: dense unit, not placed on cores)
  int64_t neurons_per_unit = 0;    // neuron-state words per unit
  int64_t synapses_per_unit = 0;   // weights per unit
  int weight_bits = 8;             // bits per stored weight
  int64_t scale_bits_per_unit = 0; // quantization scales stored beside a unit's weights (e.g. fp16 per group)
  std::vector<int> spike_targets;  // indices into ActivityCounts::layers
  snn::LayerStats snn;             // totals over the counted runs
  snn::AnnWork ann;                // the ANN-equivalent work of the same rows

  int64_t neurons() const { return units * neurons_per_unit; }
  int64_t synapses() const { return units * synapses_per_unit; }
  int64_t synapse_bytes_per_unit() const { return (synapses_per_unit * weight_bits + scale_bits_per_unit + 7) / 8; }
  int64_t spikes() const { return snn.spikes_pos + snn.spikes_neg; }
};

struct ActivityCounts {
  std::vector<LayerCounts> layers;
  // per graph, in the order of first appearance in `layers` (e.g. "encoder", "decoder"):
  std::vector<std::string> graphs;
  std::vector<int64_t> graph_steps;  // timesteps summed over all runs of that graph
  std::vector<int64_t> graph_runs;   // runs (inferences) of that graph
  std::vector<int> graph_depth;      // spiking layers on the longest path (pipeline depth)
  int64_t samples = 0;  // what the totals are over (e.g. image + question pairs); > 0
  int64_t tokens = 0;   // generated-token inferences (decoder runs)

  int graph_index(const std::string& graph) const;  // -1 if absent
};

// The counts of one engine's runs since its last reset_stats(): layers of its graph, with spike
// targets. `steps` and `runs` are what the caller counted for this engine.
void add_engine_counts(ActivityCounts& counts, const snn::GraphEngine& engine, int64_t steps, int64_t runs);
// The same from a graph and its per-node statistics (tests, saved reports).
void add_graph_counts(ActivityCounts& counts, const snn::SpikingGraph& graph, const std::vector<snn::LayerStats>& stats,
                      const std::vector<snn::AnnWork>& ann, int64_t steps, int64_t runs);

}  // namespace spikefm::hw
