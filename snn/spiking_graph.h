// A spiking network as a graph of operators over token rows: what `spikefm convert` writes and the
// engine (graph_engine.h) runs. No libtorch.
//
// Every node holds a matrix value per timestep. Token-row nodes are (R, C): R active rows (tokens) of
// at most rows_cap. Attention-map nodes are (H, R, R), stored as H·rows_cap rows of rows_cap columns.
//
// | kind          | inputs            | value at step t (exact coding; see Coding for rate)              |
// |---------------|-------------------|-------------------------------------------------------------------|
// | pixel_input   | —                 | integer pixel counts n (0..255) set by the driver, (R, C)         |
// | row_input     | —                 | float rows set by the driver, (R, C)                              |
// | encode_linear | pixel_input       | (n · qᵀ) ⊙ scale + bias — dense MACs once, the non-spiking layer   |
// | linear        | neuron            | acc ⊙ scale + bias; acc (int32) += s · q[:, i] per spike (i, s)    |
// | neuron        | any               | θ · S, S the spike count; spikes drive linear / products         |
// | add           | a, b              | a + b                                                             |
// | layer_norm    | x                 | LN(x) per row (dense unit)                                        |
// | qk_product    | neuron q, neuron k| (S_q S_kᵀ) · scale per head, updated from spikes of either side    |
// | softmax       | qk_product        | softmax per row over the visible keys (dense unit)                |
// | av_product    | neuron p, neuron v| (S_p S_v) · scale per head, updated from spikes of either side     |
//
// `scale` of a linear layer is θ_in · s_o (input step × weight scale), precomputed in float32 exactly
// as the QANN computes it; q are int8 weights (out, in).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spikefm {
class H5File;
}

namespace spikefm::snn {

enum class OpKind { pixel_input, row_input, encode_linear, linear, neuron, add, layer_norm, qk_product, softmax, av_product };
const char* op_kind_name(OpKind kind);
OpKind op_kind_from_name(const std::string& name);  // throws on unknown names

// Neuron models of a spiking graph (all in count form; see graph_engine.h):
//   st_bif  signed IF with spike-count bounds: S moves one step per timestep toward
//           clip(floor(X/θ + 1/2), lo, hi), X the accumulated input — exactly the membrane rule of
//           SpikeZIP-TF's ST-BIF with V = θ/2 + X − θ·S.
//   burst   the same with up to `burst` spikes per step (faster settling, same totals).
//   if_rate integrate-and-fire with reset by subtraction, rate-coded: V += I_t, spike ±1 when
//           V ≥ θ (or V < 0 for signed neurons), no count bounds; θ from threshold balancing.
enum class NeuronKind { st_bif, burst, if_rate };
const char* neuron_kind_name(NeuronKind kind);
NeuronKind neuron_kind_from_name(const std::string& name);

// How values relate to time. exact: values are accumulated totals and converge to the QANN's
// (ST-BIF, burst; biases are injected once). rate: inputs and biases are injected every step, and
// values are (t + 1) × the running estimate of the ANN activation (IF rate coding).
enum class Coding { exact, rate };

struct OpNode {
  std::string name;
  OpKind kind = OpKind::add;
  std::vector<int> inputs;  // indices of earlier nodes
  int cols = 0;             // C of token-row nodes; 0 for attention maps
  int heads = 1;            // attention maps and products

  // encode_linear, linear: out = cols
  int in = 0;
  std::vector<int8_t> weight;  // (out, in) row-major integer codes, |w| <= 2^(weight_bits-1) - 1
  int weight_bits = 8;         // 8, 4 or 2: the width the hardware stores (the codes stay int8 here)
  int group = 0;               // 0: one scale per output; > 0: one per output and `group` inputs
  std::vector<float> scale;    // (out, groups()): θ_in · s_{o,g}
  std::vector<float> bias;     // (out)
  // Scales per output: 1, or ceil(in / group). A grouped layer keeps one integer accumulator per
  // (row, group, output) and reads out Σ_g acc_g · scale_g in group order, then + bias.
  int groups() const { return group > 0 ? (in + group - 1) / group : 1; }
  // neuron
  NeuronKind neuron = NeuronKind::st_bif;
  float theta = 1.0f;  // spike step θ (> 0)
  int lo = 0, hi = 0;  // spike-count bounds (st_bif, burst); if_rate: lo < 0 means signed
  int burst = 1;       // max spikes per step (burst)
  // layer_norm
  std::vector<float> gamma, beta;  // (cols)
  float eps = 1e-5f;
  // qk_product, av_product
  float prod_scale = 1.0f;  // qk: (θ_q·θ_k)/√d; av: θ_p·θ_v
  bool causal = false;      // products and softmax: query i sees keys j ≤ i

  bool is_map() const { return kind == OpKind::qk_product || kind == OpKind::softmax || (kind == OpKind::neuron && cols == 0); }
};

struct SpikingGraph {
  std::string name;
  int rows_cap = 0;
  Coding coding = Coding::exact;
  std::vector<OpNode> nodes;  // topological order
  int output = -1;            // the node whose value is read out

  // Checks indices, kinds of inputs, shapes and parameter ranges (finite, θ > 0, ...); throws
  // spikefm::Error naming the node.
  void validate() const;
  int find(const std::string& node_name) const;  // -1 if absent

  // HDF5 under `group` (see docs/formats.md).
  void write(H5File& f, const std::string& group) const;
  static SpikingGraph read(const H5File& f, const std::string& group);
};

}  // namespace spikefm::snn
