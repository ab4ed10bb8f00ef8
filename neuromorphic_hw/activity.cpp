#include "neuromorphic_hw/activity.h"

#include <algorithm>

#include "common/error.h"
#include "snn/graph_engine.h"

namespace spikefm::hw {

int ActivityCounts::graph_index(const std::string& graph) const {
  for (size_t k = 0; k < graphs.size(); ++k) {
    if (graphs[k] == graph) return static_cast<int>(k);
  }
  return -1;
}

void add_graph_counts(ActivityCounts& counts, const snn::SpikingGraph& g, const std::vector<snn::LayerStats>& stats,
                      const std::vector<snn::AnnWork>& ann, int64_t steps, int64_t runs) {
  if (stats.size() != g.nodes.size() || ann.size() != g.nodes.size()) {
    throw Error("counting activity of graph '" + g.name + "'",
                "statistics for " + std::to_string(stats.size()) + " nodes, graph has " + std::to_string(g.nodes.size()));
  }
  if (counts.graph_index(g.name) >= 0) throw Error("counting activity", "graph '" + g.name + "' added twice");
  counts.graphs.push_back(g.name);
  counts.graph_steps.push_back(steps);
  counts.graph_runs.push_back(runs);
  const int base = static_cast<int>(counts.layers.size());
  const int64_t rc = g.rows_cap;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const snn::OpNode& n = g.nodes[k];
    LayerCounts l;
    l.graph = g.name;
    l.name = n.name;
    l.kind = n.kind;
    l.snn = stats[k];
    l.ann = ann[k];
    switch (n.kind) {
      case snn::OpKind::linear:
        l.units = n.cols;
        // the int32 accumulators of the channel: one per row, and per input group when the layer has
        // per-group scales (Σ_g acc_g·s_g is formed at read-out, graph_engine.cpp)
        l.neurons_per_unit = rc * n.groups();
        l.synapses_per_unit = n.in;
        l.weight_bits = n.weight_bits;  // int8 per channel, or the width a compressed layer was given
        l.scale_bits_per_unit = n.group > 0 ? 16 * n.groups() : 0;  // fp16 per group; per-channel: in θ
        break;
      case snn::OpKind::neuron:
        // token rows: one unit per channel (rows_cap neurons); maps: one unit per (head, row). A neuron
        // fed directly by a linear layer is the same compartment as that layer's accumulator (input
        // current and spike count of one neuron): counted once, at the linear layer.
        l.units = n.is_map() ? n.heads * rc : n.cols;
        l.neurons_per_unit = g.nodes[n.inputs[0]].kind == snn::OpKind::linear ? 0 : rc;
        break;
      case snn::OpKind::qk_product:
        l.units = n.heads * rc;
        l.neurons_per_unit = rc;
        break;
      case snn::OpKind::av_product:
        l.units = n.cols;
        l.neurons_per_unit = rc;
        break;
      default:
        break;  // dense unit
    }
    // Layers without synapses (neurons, product accumulators) can be split anywhere: one neuron per
    // unit, so no core capacity is lost to rounding. Linear channels stay whole (their weights).
    if (l.synapses_per_unit == 0 && l.neurons_per_unit > 1) {
      l.units *= l.neurons_per_unit;
      l.neurons_per_unit = 1;
    }
    counts.layers.push_back(std::move(l));
  }
  // Pipeline depth: neuron nodes on the longest input path.
  std::vector<int> depth(g.nodes.size(), 0);
  int deepest = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (int in : g.nodes[k].inputs) depth[k] = std::max(depth[k], depth[in]);
    depth[k] += g.nodes[k].kind == snn::OpKind::neuron;
    deepest = std::max(deepest, depth[k]);
  }
  counts.graph_depth.push_back(deepest);
  // Spikes of a neuron node go to the linear layers and products that read it.
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const snn::OpNode& n = g.nodes[k];
    const bool consumer = n.kind == snn::OpKind::linear || n.kind == snn::OpKind::qk_product ||
                          n.kind == snn::OpKind::av_product;
    if (!consumer) continue;
    for (int in : n.inputs) {
      if (g.nodes[in].kind != snn::OpKind::neuron) continue;
      auto& targets = counts.layers[base + in].spike_targets;
      const int t = base + static_cast<int>(k);
      if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
    }
  }
}

void add_engine_counts(ActivityCounts& counts, const snn::GraphEngine& engine, int64_t steps, int64_t runs) {
  add_graph_counts(counts, engine.graph(), engine.stats(), engine.ann_work(), steps, runs);
}

}  // namespace spikefm::hw
