// NirSimulator: discrete-time simulation of a NIR graph, one sample, forward Euler.
//
// What it computes
//   NIR nodes are continuous-time ODEs (shared/NIR.md §6); this simulator steps them with forward
//   Euler at a fixed step dt, as NIR's own numpy reference does. At each step s = 0 .. S-1 every node
//   is evaluated once, in topological order of the edges, so an input reaches the Output in the same
//   step (no synaptic delay). A node's input x is the sum of the outputs of its incoming edges.
//
// Update equations (per element n of a node, per step; x = the node's input at this step)
//   Input      y = the input vector of this step
//   Output     y = x                         (recorded as the result of the step)
//   Affine     y = W x + b                   W: (out, in) row-major; b added every step = a constant
//                                            current, which is what y(t) = W x(t) + b means in NIR
//   Linear     y = W x
//   Scale      y = s * x
//   Flatten    y = x                         (row-major (C, H, W) is already flat)
//   Conv2d     y[co, i, j] = b[co] + sum_{ci, p, q} W[co, ci, p, q] * x[ci, i*sH - padT + p*dH,
//                                                                        j*sW - padL + q*dW]
//              (zero padding; padding "same" pads dil*(k-1) split as PyTorch, extra after)
//   SumPool2d  y[c, i, j] = sum_{p, q} x[c, i*sH - padT + p, j*sW - padL + q]; AvgPool2d: / (kH*kW)
//   I          v <- v + dt*r*x;                     y = v
//   LI         v <- v + (dt/tau)*(v_leak - v + r*x); y = v
//   IF         v <- v + dt*r*x;                     z = (v > v_threshold); v <- v_reset where z; y = z
//   LIF        v <- v + (dt/tau)*(v_leak - v + r*x); z = (v > v_threshold); v <- v_reset where z; y = z
//   Firing is strict (>) and reset is to a value, as NIR defines them; a discrete IF neuron
//   v[s] = v[s-1] + x[s] is the IF node with r = 1/dt (Sinabs files: r = 1, dt = 1).
//   Initial state: v = 0 for every neuron at the start of each run().
//
// Parameters (NirSimOptions)
//   name  unit                          default  rule
//   dt    time unit of the file's tau   1.0      finite, > 0 (seconds for most exporters: snnTorch and
//         (and of 1/r for IF and I)              Lava files assume 1e-4; Sinabs/discrete IF: 1)
//
// Counts (NirNodeStats, per run; pricing them is the energy tables' job, STYLE rule 6)
//   input_events    Affine/Linear/Conv2d: nonzero input elements consumed (summed over steps)
//   synaptic_ops    Affine/Linear/Conv2d: sum over those events of their fan-out (out for a dense
//                   layer; C_out times the in-range kernel taps for a convolution) = accumulates
//   neuron_updates  I/LI/IF/LIF: N per step (time-driven update)
//   spikes          IF/LIF: spikes emitted
//   Arithmetic is double precision; results are returned as float.
//
// Limits (refused with an error listing the offending nodes)
//   node types other than the ones above (CubaLI, CubaLIF, Delay, Threshold, Conv1d, nested
//   NIRGraph, unknown), graphs with a cycle (recurrence needs a delay convention not chosen yet),
//   not exactly one Input and one Output, a source node other than Input, Conv2d with groups != 1,
//   padding "same" with stride > 1, Affine/Linear weights of more than 2 dimensions.
//
// Paper: NIR (Pedersen et al., Nature Communications 15, 8122, 2024); Euler scheme of its reference
//   implementation (paper/03_rnn/extras/debug_CubaLIF/nir_reference_impl.py in the NIR repository).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "snn/nir_graph.h"

namespace spikefm::snn {

struct NirSimOptions {
  double dt = 1.0;  // Euler step, in the time unit of tau

  // Throws spikefm::Error naming the rule: "dt must be finite and > 0 (got 0)".
  void validate() const;
};

// Action counts of one node over one run.
struct NirNodeStats {
  std::string name;
  std::string type;
  int64_t size = 0;            // elements of the node's output (N for a neuron node)
  int64_t spikes = 0;          // IF/LIF
  int64_t neuron_updates = 0;  // I/LI/IF/LIF
  int64_t input_events = 0;    // Affine/Linear/Conv2d
  int64_t synaptic_ops = 0;    // Affine/Linear/Conv2d
};

struct NirRunResult {
  std::vector<std::vector<float>> output;  // (S, N_out): the Output node's value at each step
  std::vector<NirNodeStats> nodes;         // one per node, in execution order

  // The stats of node `name`; throws spikefm::Error if there is none.
  const NirNodeStats& node(const std::string& name) const;
  int64_t total_spikes() const;
  int64_t total_synaptic_ops() const;
};

class NirOp;  // one compiled node (nir_sim.cpp)

class NirSimulator {
 public:
  // Checks the graph (check_nir_graph, then the limits above, all unsupported nodes reported at
  // once) and compiles it. Throws spikefm::Error.
  explicit NirSimulator(const NirGraph& graph, NirSimOptions options = {});
  ~NirSimulator();
  NirSimulator(NirSimulator&&) noexcept;
  NirSimulator& operator=(NirSimulator&&) noexcept;
  NirSimulator(const NirSimulator&) = delete;
  NirSimulator& operator=(const NirSimulator&) = delete;

  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }
  int64_t input_size() const { return shape_numel(input_shape_); }
  int64_t output_size() const { return shape_numel(output_shape_); }
  // Node names in execution order.
  std::vector<std::string> order() const;

  // Resets every state to t = 0, then runs one step per row.
  //   input_per_step: (S, input_size()) row-major per step; finite values
  // Returns the Output node's value per step and the counts of each node.
  NirRunResult run(const std::vector<std::vector<float>>& input_per_step);

 private:
  NirSimOptions options_;
  Shape input_shape_;
  Shape output_shape_;
  std::vector<std::unique_ptr<NirOp>> ops_;  // topological order; ops_[0] is the Input
  int output_op_ = -1;
};

}  // namespace spikefm::snn
