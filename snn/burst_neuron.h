// Burst neuron: multi-threshold integrate-and-fire that may emit up to B spikes in one timestep.
//
// What it computes
//   Like ST-BIF (snn/st_bif_neuron.h) but instead of one spike per step the neuron emits, in one
//   step, as many threshold units as its membrane holds, up to a burst size B: a burst of value s
//   stands for s * theta downstream and is delivered as ONE event (one synaptic multiply-accumulate
//   by s per fan-out). A neuron that needs k spikes settles in ceil(k / B) steps instead of k, which
//   is the latency gain of burst spikes. The signed mode keeps ST-BIF's count bounds and negative
//   spikes and hence its exactness; the unsigned mode is the IF neuron with bursts of Li et al.
//
// Update equations (per neuron n, per timestep t; theta = v_threshold[n])
//   V(0) = theta / 2,   S(0) = 0
//   V    <- V + I(t)
//   q     = floor(V / theta)                       whole thresholds above [0, theta); < 0 below 0
//   signed_spikes = true:
//     s(t) = clamp(q, max(-B, s_min - S), min(B, s_max - S))
//   signed_spikes = false (Li et al. 2022):
//     s(t) = clamp(q, 0, min(B, s_max - S))
//   V    <- V - s(t) * theta
//   S    <- S + s(t)
//   output: s(t) in [-B, B] (int8), standing for s(t) * theta downstream.
//   The spike direction is decided by the same comparisons as ST-BIF (V >= theta, V < 0), so with
//   B = 1 the signed burst neuron is ST-BIF step for step, in float arithmetic too.
//
// Exactness
//   Signed mode: as ST-BIF, after settle() the count is S = clip(floor(X / theta + 1/2), s_min, s_max)
//   for any split of X = sum_t I(t); settling needs at most ceil((s_max - s_min) / B) spiking steps.
//   (V = theta/2 + X - S * theta always; a settled neuron has q = 0, i.e. V in [0, theta), or sits at
//   a count bound.) In float32, V - s * theta rounds when |s| > 1 and theta is not a power of two;
//   the identity is exact for currents on a common 2^-k grid with partial sums below 2^24 units.
//
// Parameters (Params)
//   name           unit          default     rule
//   v_threshold    input units   (none)      (N), each finite and > 0
//   max_burst      spikes/step   (none)      B, in [1, 127] (a burst value must fit int8)
//   s_max          spikes        (none)      >= 0, >= s_min; use a large value for "unbounded"
//   s_min          spikes        0           <= 0; ignored when signed_spikes = false
//   signed_spikes  -             true        false: no negative spikes (Li et al. 2022)
//
// Paper: Y. Li and Y. Zeng, "Efficient and Accurate Conversion of Spiking Neural Network with Burst
//   Spikes", IJCAI 2022 (burst of up to Gamma spikes per step, reset by subtraction). The signed,
//   count-bounded form is our combination of it with the ST-BIF neuron of SpikeZIP-TF (ICML 2024).
#pragma once

#include <Eigen/Core>

#include <string>

#include "snn/neuron.h"

namespace spikefm::snn {

class BurstNeuron final : public NeuronPopulation {
 public:
  struct Params {
    Eigen::ArrayXf v_threshold;  // (N), theta per neuron
    int max_burst = 1;           // B, largest |spike value| in one step
    int s_max = 0;               // upper bound of the running spike count S
    int s_min = 0;               // lower bound of S (signed mode)
    bool signed_spikes = true;   // emit negative spikes (ST-BIF-like) or not (Li et al.)

    // Throws spikefm::Error naming the parameter and the rule that failed.
    void validate() const;
  };

  struct State {
    Eigen::ArrayXf v;  // (N) membrane potential, input units
    Eigen::ArrayXi s;  // (N) running spike count (sum of spike values), in [s_min, s_max]
  };

  explicit BurstNeuron(Params params);

  std::string model_name() const override { return "burst"; }
  int size() const override { return static_cast<int>(params_.v_threshold.size()); }
  void reset() override;
  using NeuronPopulation::step;
  int step(const float* current, int8_t* spikes_out) override;
  const Eigen::ArrayXf& output_scale() const override { return params_.v_threshold; }
  int min_spike() const override { return params_.signed_spikes ? -params_.max_burst : 0; }
  int max_spike() const override { return params_.max_burst; }

  const Params& params() const { return params_; }
  const State& state() const { return state_; }

 private:
  Params params_;
  State state_;
};

}  // namespace spikefm::snn
