// LayerStats: action counts of one spiking layer (or a sum of layers / timesteps).
//
// The simulator only counts actions; pricing them (pJ per SOP, per byte of SRAM read) is the job of
// the energy tables in neuromorphic_hw/ (STYLE.md rule 6). Counters are plain int64 so they add up
// exactly across layers, timesteps and samples.
//
//   events            number of (row, input, value) spike events, value != 0: consumed (linear layers,
//                     products) or emitted (neurons: one packet per neuron and step, a burst included)
//   spikes_pos        sum over events of max(value, 0)   (a burst of +3 counts 3 spikes)
//   spikes_neg        sum over events of max(-value, 0)
//   sops              synaptic operations = events * fan_out (one accumulate per event and output;
//                     a burst event is one multiply-accumulate by its value, as in Li et al. 2022)
//   weight_bytes_read bytes of weights read = events * fan_out * bytes per weight (int8: 1,
//                     float32: 4, packed int4: ceil(fan_out / 2) per event)
#pragma once

#include <cstdint>

namespace spikefm::snn {

struct LayerStats {
  int64_t events = 0;
  int64_t spikes_pos = 0;
  int64_t spikes_neg = 0;
  int64_t sops = 0;
  int64_t weight_bytes_read = 0;
  // Spiking-graph counters (graph_engine.h): neuron state updates (every active neuron, every step),
  // dense-unit operations (LayerNorm, softmax: one per add/mul/exp/div/sqrt), and dense MACs of
  // non-spiking layers (the pixel encoding layer).
  int64_t neuron_updates = 0;
  int64_t dense_ops = 0;
  int64_t dense_macs = 0;

  LayerStats& operator+=(const LayerStats& o) {
    events += o.events;
    spikes_pos += o.spikes_pos;
    spikes_neg += o.spikes_neg;
    sops += o.sops;
    weight_bytes_read += o.weight_bytes_read;
    neuron_updates += o.neuron_updates;
    dense_ops += o.dense_ops;
    dense_macs += o.dense_macs;
    return *this;
  }
  friend LayerStats operator+(LayerStats a, const LayerStats& b) { return a += b; }
  friend bool operator==(const LayerStats&, const LayerStats&) = default;
};

// AnnWork: what an ANN evaluating the same graph does for the same rows — each row once, no timesteps.
// These are the action counts of the MAC-array baseline (neuromorphic_hw/mac_array.h). The engine counts
// them when a run ends, over the rows that were new in that run (a decoder with a KV cache computes only
// the new token's row; the encoder all of its rows). Activations are the settled spike counts S, i.e.
// the QANN's integer activations when the coding is exact.
//
//   rows          token rows computed
//   macs          multiply-accumulates: linear rows × in × out; qk/av products visible keys × head dim
//   nonzero_macs  MACs whose activation operand is non-zero (what a zero-skipping array executes)
//   weight_bytes  weights read: each weight once per run that computes a row (weight-stationary)
//   act_reads     activation operands read (input activations of linear layers and products)
//   outputs       values written (neuron outputs: rows × C, or the visible entries of an attention map)
//   dense_ops     vector-unit ops: LayerNorm 8C + 2 per row, softmax 5 per visible key, add C per row
struct AnnWork {
  int64_t rows = 0;
  int64_t macs = 0;
  int64_t nonzero_macs = 0;
  int64_t weight_bytes = 0;
  int64_t act_reads = 0;
  int64_t outputs = 0;
  int64_t dense_ops = 0;

  AnnWork& operator+=(const AnnWork& o) {
    rows += o.rows;
    macs += o.macs;
    nonzero_macs += o.nonzero_macs;
    weight_bytes += o.weight_bytes;
    act_reads += o.act_reads;
    outputs += o.outputs;
    dense_ops += o.dense_ops;
    return *this;
  }
  friend bool operator==(const AnnWork&, const AnnWork&) = default;
};

}  // namespace spikefm::snn
