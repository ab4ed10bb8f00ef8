// IF rate-coded neuron with reset by subtraction: the classic ANN-to-SNN conversion baseline.
//
// What it computes
//   Each neuron integrates its input without leak and emits an unsigned spike each time its membrane
//   reaches the threshold, subtracting the threshold ("soft reset") so the surplus carries over.
//   The firing rate approximates the ReLU of the input clipped at one spike per step; it cannot
//   retract a spike, so inputs that go negative after a spike leave an error that ST-BIF avoids.
//
// Update equations (per neuron n, per timestep t; theta = v_threshold[n])
//   V(0) = theta / 2   (v_init = kHalfThreshold, default; Bu et al. 2022)  or  0  (kZero)
//   V   <- V + I(t)
//   s(t) = 1 if V >= theta else 0
//   V   <- V - s(t) * theta
//   output: s(t), standing for s(t) * theta downstream.
//
// Rate property
//   With constant input I over n timesteps and X = n * I, the count N = sum_t s(t) is
//     N = clip(floor(X / theta + 1/2), 0, n)   (kHalfThreshold; floor(X / theta) for kZero)
//   hence |N - clip(X / theta, 0, n)| <= 1. The count has no bound other than one spike per step;
//   with time-varying input the count can exceed round(X / theta) (spikes cannot be retracted).
//
// Parameters (Params)
//   name         unit          default          rule
//   v_threshold  input units   (none)           (N), each finite and > 0; set by conversion from the
//                                               max or 99.9th-percentile activation (Rueckauer 2017)
//   v_init       -             kHalfThreshold   kHalfThreshold or kZero
//
// Papers: B. Rueckauer et al., "Conversion of Continuous-Valued Deep Networks to Efficient
//   Event-Driven Networks for Image Classification", Front. Neurosci. 2017 (reset by subtraction,
//   percentile thresholds); T. Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and
//   Ultra-low-latency Spiking Neural Networks", ICLR 2022 (theta/2 initial membrane, QCFS).
#pragma once

#include <Eigen/Core>

#include <string>

#include "snn/neuron.h"

namespace spikefm::snn {

class IfRateNeuron final : public NeuronPopulation {
 public:
  enum class InitialMembrane { kHalfThreshold, kZero };

  struct Params {
    Eigen::ArrayXf v_threshold;                             // (N), theta per neuron
    InitialMembrane v_init = InitialMembrane::kHalfThreshold;

    // Throws spikefm::Error naming the parameter and the rule that failed.
    void validate() const;
  };

  struct State {
    Eigen::ArrayXf v;  // (N) membrane potential, input units
  };

  explicit IfRateNeuron(Params params);

  std::string model_name() const override { return "if_rate"; }
  int size() const override { return static_cast<int>(params_.v_threshold.size()); }
  void reset() override;
  using NeuronPopulation::step;
  int step(const float* current, int8_t* spikes_out) override;
  const Eigen::ArrayXf& output_scale() const override { return params_.v_threshold; }
  int min_spike() const override { return 0; }
  int max_spike() const override { return 1; }

  const Params& params() const { return params_; }
  const State& state() const { return state_; }

 private:
  Params params_;
  State state_;
};

}  // namespace spikefm::snn
