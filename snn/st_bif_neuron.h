// ST-BIF neuron: signed integrate-and-fire with spike-count bounds (SpikeZIP-TF).
//
// What it computes
//   Each neuron integrates its input current without leak and emits a signed spike whenever its
//   membrane leaves [0, theta): +1 above, -1 below, as long as its running spike count S stays in
//   [s_min, s_max]. Negative spikes retract earlier positive ones, so the total spike count tracks
//   round(X / theta) of the total input X no matter how X was split over timesteps.
//
// Update equations (per neuron n, per timestep t; theta = v_threshold[n])
//   V(0) = theta / 2,   S(0) = 0
//   V   <- V + I(t)
//   s(t) = +1  if V >= theta and S < s_max
//          -1  else if V < 0 and S > s_min
//           0  otherwise
//   V   <- V - s(t) * theta
//   S   <- S + s(t)
//   output: s(t), standing for s(t) * theta downstream.
//
// Exactness (the property conversion relies on)
//   With X = sum_t I(t) over any sequence of currents, positive and negative mixed, run zero-input
//   steps after the input stops until no neuron spikes (settle()); then
//     S = sum_t s(t) = clip(floor(X / theta + 1/2), s_min, s_max)
//   so theta * S equals the QCFS quantizer theta * clip(floor(z / theta + 1/2), 0, L) of the QANN for
//   s_min = 0, s_max = L. Proof sketch: V = theta/2 + X - S * theta always; a settled neuron has
//   V in [0, theta) or sits at a count bound. Settling needs at most s_max - s_min spiking steps.
//   In float32 the identity is exact when all currents are multiples of a common 2^-k and partial
//   sums stay below 2^24 of those units; otherwise it can differ only when X / theta + 1/2 is within
//   rounding error of an integer.
//
// Parameters (Params)
//   name         unit          default   rule
//   v_threshold  input units   (none)    (N), each finite and > 0; the QCFS step lambda / L
//   s_max        spikes        (none)    >= 0, >= s_min; the QCFS level count L
//   s_min        spikes        0         <= 0; negative for symmetric (signed) quantizers
//
// Paper: K. You, Z. Xu, C. Nie, et al., "SpikeZIP-TF: Conversion is All You Need for
//   Transformer-based SNN", ICML 2024 (ST-BIF neuron, spike-count bounds, theta/2 initial membrane).
#pragma once

#include <Eigen/Core>

#include <string>

#include "snn/neuron.h"

namespace spikefm::snn {

class StBifNeuron final : public NeuronPopulation {
 public:
  struct Params {
    Eigen::ArrayXf v_threshold;  // (N), theta per neuron
    int s_max = 0;               // upper bound of the running spike count S
    int s_min = 0;               // lower bound of S

    // Throws spikefm::Error naming the parameter and the rule that failed.
    void validate() const;
  };

  struct State {
    Eigen::ArrayXf v;  // (N) membrane potential, input units
    Eigen::ArrayXi s;  // (N) running spike count, in [s_min, s_max]
  };

  explicit StBifNeuron(Params params);

  std::string model_name() const override { return "st_bif"; }
  int size() const override { return static_cast<int>(params_.v_threshold.size()); }
  void reset() override;
  using NeuronPopulation::step;
  int step(const float* current, int8_t* spikes_out) override;
  const Eigen::ArrayXf& output_scale() const override { return params_.v_threshold; }
  int min_spike() const override { return -1; }
  int max_spike() const override { return 1; }

  const Params& params() const { return params_; }
  const State& state() const { return state_; }

 private:
  Params params_;
  State state_;
};

}  // namespace spikefm::snn
