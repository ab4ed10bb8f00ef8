// MLP classifier QANN -> NIR graph of rate-coded integrate-and-fire neurons, and its simulation
// (torch-free entry point for the CLI and tests).
//
// What the exported file computes (NIR primitives only, shared/NIR.md §4, §6)
//   input -> fc1 (Affine) -> if1 (IF) ----------------------> fc2 (Affine) -> ... -> fc{K+1} -> output
//                              \-> clip1 (IF) -> neg1 (Scale -1) --^
//   A node's input is the sum of its incoming edges, so fc2 receives y_if1 - y_clip1.
//   Discrete IF convention of NIR.md §6 (Sinabs): r = 1, dt = 1 (recorded in the metadata); per step s:
//     x[s]      = pixel / 255                      constant current: the same image at every s = 0..T-1
//     I_k[s]    = W'_k y_{k-1}[s] + b'_k           y_0 = x; Affine: the bias is a constant current per step
//     v_k       <- v_k + I_k[s];  a_k[s] = (v_k > V_k);  v_k <- 0 where a_k[s]    (if{k}: NIR IF, strict >,
//                                                                                    reset TO v_reset = 0)
//     w_k       <- w_k + a_k[s];  c_k[s] = (w_k > L + 1/2);  w_k <- L where c_k[s] (clip{k}: IF, v_reset = L)
//     y_k[s]    = a_k[s] - c_k[s]                  (neg{k} = Scale -1): the first L spikes of a_k pass
//     out[s]    = W'_{K+1} y_K[s] + b_{K+1}
//   Mapping from the QANN (ann_ref/mlp_classifier.h; θ_k = λ_k / L):
//     V_k    = T · θ_k                 the spike count over T steps then has the QANN's step θ_k:
//                                      rate · V_k = count · θ_k ≈ QCFS output h_k = θ_k · n_k
//     b'_k   = b_k + θ_k / 2           QCFS rounds (floor(z/θ + 1/2)); the half step, spread over T steps,
//                                      is the usual "start at half threshold" offset, which NIR cannot state
//     clip   clip{k}/neg{k}            QCFS clips n at L; an IF alone cannot (it may fire up to T times),
//                                      and a trained QCFS net saturates often (~30 % of hidden units of the
//                                      784-128-10 model), so the clip is built from a counting IF neuron
//     W'_k   = W_k (k = 1);  T · θ_{k-1} · W_k (k > 1)   each spike carries V_{k-1} of activation
//     logits ≈ (1/T) Σ_s out[s]        mean of the Output node; the class is argmax of the sum
//   T is therefore part of the file (metadata "timesteps"); simulate it at that T.
//
// How far the NIR simulation is from the QANN (stated in the file's metadata too)
//   With the constant input current z = u·θ (u = z/θ) of the first hidden layer, NIR's reset to 0 loses
//   the overshoot at every spike, so the count passed on over T steps is
//       min(c(u), L),  c(u) = floor(T / (floor(T / (u + 1/2)) + 1))   vs the QANN's n(u) = clip(floor(u + 1/2), 0, L)
//   For u in [0, L]: T = 64: equal for 88 % of u, never more than one level off; T = 8: 50 %, up to 4
//   levels (a neuron cannot fire more often than every second step unless z > V). Above the clip it
//   is exactly L when T >= L (when T < L the clip is at T levels). A reset by subtraction would make
//   c = n, but NIR has no such reset (NIR.md §6).
//   Measured (784-128-10, 3 epochs, QANN 86.6 %, all 10000 test images): class agreement with the QANN
//   97.1 % at T = 8, 98.4 % at 16, 99.1 % at 32, 99.5 % at 64, 99.7 % at 128.
//   Deeper nets: hidden layer k+1 sees spike trains, not a constant current. A spike carries
//   T·θ_k·w into a neuron of threshold T·θ_{k+1}; when one step's input exceeds that threshold, the
//   neuron fires once and the reset to 0 drops the rest, whatever T is. Measured for 784-128-64-10:
//   94.5-95 % agreement, flat from T = 8 to T = 128. Single-hidden-layer models are the supported case.
// Compatibility: clip{k} has a nonzero v_reset, which NIR readers before v1.0.6 reject (NIR.md §7).
//
// Simulation: snn::NirSimulator, forward Euler with dt = 1, state reset before every image.
//
// Paper: B. Rueckauer et al., "Conversion of Continuous-Valued Deep Networks to Efficient Event-Driven
//   Networks for Image Classification", Frontiers in Neuroscience 11, 682 (2017) (rate coding, constant
//   input current, reset-to-zero error); QCFS: Bu et al., ICLR 2022; NIR: Pedersen et al., Nature
//   Communications 15, 8122 (2024).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/fashion_mnist.h"
#include "snn/nir_graph.h"

namespace spikefm {

// Exports the QANN of an MLP checkpoint (ann_ref/mlp_classifier.h) for `timesteps` steps (>= 1).
// Node names: input, fc1, if1, clip1, neg1, fc2, ..., fc{K+1}, output. Throws spikefm::Error (bad
// checkpoint, timesteps < 1).
snn::NirGraph mlp_to_nir(const std::filesystem::path& mlp_checkpoint, int timesteps);

// Closeness of the exported hidden count min(c(u), L) (above) to the QANN count n(u), for u on a grid
// of step 1/100 over [0, levels]: what mlp_to_nir writes into the metadata.
struct NirCountError {
  double match_fraction = 0;  // share of grid points with c(u) == n(u)
  double mean_abs = 0;        // mean |c(u) - n(u)|, in levels
  double max_abs = 0;         // max |c(u) - n(u)|, in levels
};
NirCountError nir_if_count_error(int timesteps, int levels);

// Counts of one node over the simulated images, per image (snn/nir_sim.h NirNodeStats).
struct NirNodeActivity {
  std::string name, type;
  int64_t size = 0;
  double spikes = 0, neuron_updates = 0, input_events = 0, synaptic_ops = 0;
};

struct NirRunReport {
  int timesteps = 0;
  int64_t n = 0, correct = 0;
  double accuracy = 0;           // argmax of the summed Output vs the labels
  std::vector<int> predictions;  // (n,) class per image, in dataset order
  std::vector<float> outputs;    // (n, 10) row-major: mean of the Output over the T steps per image
                                 // (for files from mlp_to_nir: the estimate of the QANN logits)
  // per image, over all nodes
  double spikes = 0, neuron_updates = 0, input_events = 0, synaptic_ops = 0;
  std::vector<NirNodeActivity> nodes;  // execution order
  double seconds = 0;                  // simulation wall time
};

// Runs the graph on the first `limit` images (0 = all): image i is presented as the constant current
// pixel / 255 (row-major, the Input node must have rows*cols elements) for `timesteps` steps; its class
// is the argmax of the Output summed over the steps (the Output must have 10 elements). Images are
// split over the hardware threads, one simulator each. Throws spikefm::Error (unsupported graph,
// listing every offending node; shape mismatch; timesteps < 1).
NirRunReport simulate_nir_classifier(const snn::NirGraph& graph, const ImageSet& images, int timesteps,
                                     int64_t limit = 0, bool progress = false);

// Reads a NIR file and runs it on one input: `input` (flat, row-major, the Input node's element
// count, finite) is presented as a constant current for `timesteps` steps. Returns the mean over the
// steps of the Output node (flat): for files from mlp_to_nir, the logits estimate; for a spiking
// Output, the firing rates. Throws spikefm::Error "running NIR file <path>: ...".
std::vector<float> run_nir_file(const std::filesystem::path& path, const std::vector<float>& input, int timesteps);

}  // namespace spikefm
