// The priced *report* (STYLE.md rule 6): counts of a run (activity.h) × prices of an accelerator
// (hw_spec.h), placed by a mapping (mapping.h). Two machines priced from one table:
//
// SNN on the neuromorphic chip, per layer, totals over the counted runs:
//   synaptic     SOPs × synop_pj                        (linear layers and spike×spike products)
//   weight_read  weight bytes read × 8 / word_bits × sram_read_word_pj   (0 when synop_all_in)
//   membrane     accumulator read+write per SOP, state read+write per neuron update, and the partner
//                count read of a product SOP, each × membrane_read/write_pj (0 when the figure is all-in)
//   neuron       neuron updates × neuron_update_pj     (every neuron, every timestep it is evaluated)
//   routing      packets × spike_local_pj + EW hops × hop_ew_pj + NS hops × hop_ns_pj (mapping.h)
//   dense        dense-unit ops × dense_op_pj + encoding-layer MACs × dense_mac_pj
//   offchip      weight bytes of off-chip units × dram_byte_pj (those bytes leave weight_read)
//   static       static_w_per_core × cores used × latency
// Latency of a graph (encoder, decoder): cores work in parallel; a timestep takes as long as the
// busiest core's average per-step work (synop, neuron-update and packet cycles of the parts it holds)
// or the dense unit's, plus the mesh crossing (longest used-core distance × hop_cycles), and never less
// than min_step_s; every run pays a pipeline fill of (spiking depth − 1) steps:
//   latency = (steps + runs × (depth − 1)) × step.
// This assumes each core's work is spread evenly over the steps (a lower bound when it is bursty).
//
// MAC array (the ANN baseline, same table): weight-stationary, zero-skipping on activations:
//   mac          executed MACs × (mult8_pj · a·w/64 + add32_pj), a, w the operand bit widths
//   weight_read  every weight read once per run that computes a row (SRAM words; DRAM for the same
//                off-chip fraction as the SNN's mapping: same residency)
//   act_memory   activation operands read and outputs written, act_bits each, in SRAM words
//   dense        the same dense-unit ops per row, once (no timesteps)
//   static       mac_static_w × latency; latency = Σ MACs / mac_units / mac_clock + dense time
//
// The literature formula (beside, never instead): E_SNN = E_AC · SOPs + E_MAC · encoding MACs,
// E_ANN = E_MAC · MACs.
#pragma once

#include <string>
#include <vector>

#include "neuromorphic_hw/activity.h"
#include "neuromorphic_hw/hw_spec.h"
#include "neuromorphic_hw/mapping.h"

namespace spikefm::hw {

// Switches for comparisons (e.g. all off but synaptic and encoding reproduces the formula).
struct EnergyOptions {
  bool memory = true;        // weight_read, membrane, offchip (SNN); weight_read, act_memory, offchip (ANN)
  bool neuron = true;
  bool noc = true;
  bool dense = true;         // dense-unit ops (LayerNorm, softmax, adds); encoding MACs always stay
  bool static_power = true;
};

struct EnergyBreakdown {
  double synaptic_pj = 0, weight_read_pj = 0, membrane_pj = 0, neuron_pj = 0, routing_pj = 0, dense_pj = 0,
         offchip_pj = 0, static_pj = 0;
  double total_pj() const {
    return synaptic_pj + weight_read_pj + membrane_pj + neuron_pj + routing_pj + dense_pj + offchip_pj + static_pj;
  }
  EnergyBreakdown& operator+=(const EnergyBreakdown& o);
  // (name, value) in table order: synaptic, weight_read, membrane, neuron, routing, dense, offchip, static
  std::vector<std::pair<const char*, double>> components() const;
};

struct LayerEnergy {
  std::string graph, name, kind;
  EnergyBreakdown energy;  // static power is not attributed to layers
  int cores = 0;           // cores holding a part of the layer
};

struct GraphLatency {
  std::string graph;
  int64_t steps = 0, runs = 0;
  int depth = 0;                // spiking layers (neuron nodes) on the graph's path
  double busiest_core_cycles = 0;  // total over the steps
  double dense_cycles = 0;
  double noc_cycles_per_step = 0;
  double step_s = 0, latency_s = 0;
};

struct SnnEnergyReport {
  EnergyBreakdown total;  // all counted samples
  std::vector<LayerEnergy> layers;
  std::vector<GraphLatency> graphs;
  double latency_s = 0;   // all counted samples, run one after another
  int64_t sops = 0, spikes = 0, neuron_updates = 0, encoding_macs = 0, dense_ops = 0;
  double formula_pj = 0;  // E_AC · SOPs + E_MAC · encoding MACs
  // The part of the energy that scales with spikes (synaptic, weight_read, SOP-driven memory,
  // routing, offchip) and the rest (neuron updates, dense, static).
  double spike_driven_pj = 0, fixed_pj = 0;
};

SnnEnergyReport price_snn(const ActivityCounts& counts, const Mapping& mapping, const HwSpec& spec,
                          const EnergyOptions& opts = {});

struct MacArrayReport {
  int act_bits = 8;
  bool zero_skipping = true;
  double mac_pj = 0, weight_read_pj = 0, act_memory_pj = 0, dense_pj = 0, offchip_pj = 0, static_pj = 0;
  double total_pj() const { return mac_pj + weight_read_pj + act_memory_pj + dense_pj + offchip_pj + static_pj; }
  int64_t macs = 0, executed_macs = 0;
  double latency_s = 0;
  double formula_pj = 0;  // E_MAC · MACs
};

// offchip_fraction: the share of weight bytes held off-chip (the SNN mapping's, for equal residency).
MacArrayReport price_mac_array(const ActivityCounts& counts, const HwSpec& spec, int act_bits, bool zero_skipping,
                               double offchip_fraction, const EnergyOptions& opts = {});

// Bits of a signed/unsigned count in [lo, hi] (e.g. QCFS levels 0..8 → 4, −8..8 → 5); ⌈log2(T+1)⌉
// for the QNN that matches T timesteps.
int bits_for_range(int lo, int hi);
int bits_for_timesteps(int timesteps);

}  // namespace spikefm::hw
