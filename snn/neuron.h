// NeuronPopulation: the one interface every spiking neuron model of spikefm implements.
//
// What it is
//   A population of N neurons stepped together, one discrete timestep at a time. Each step takes an
//   input current per neuron (in the same units as the threshold, i.e. already multiplied by the
//   synaptic weights and scales of the layer upstream) and emits an integer spike value per neuron:
//
//     spikes_out[n] = s_n in [min_spike(), max_spike()]   (int8; 0 = no spike)
//
//   A spike value s from neuron n stands for the real quantity s * theta_n downstream, theta_n being
//   output_scale()[n]. The downstream layer therefore sees, after timesteps t = 0 .. t_end - 1,
//
//     Y_n = theta_n * sum_{t < t_end} s_n(t)
//
//   which is what conversion compares against the QANN activation. Models differ in which s they
//   emit (ST-BIF: -1/0/+1 with count bounds; IF rate-coded: 0/+1; burst: -B..+B).
//
// Layout
//   Neurons are indexed n = r * C + c for a layer of R rows (R = B * T: samples x tokens, flattened)
//   and C channels, i.e.
//   a row-major (R, C) matrix flattened. That is the layout of the dense spike matrix from which
//   SpikeEvents are built, so `spikes_out` can be handed to SpikeEvents::from_dense(spikes, R, C) as
//   is. Per-channel thresholds theta_c (C) become per-neuron ones with tile_per_channel().
//
// Determinism and settling
//   All models here are deterministic and leak-free: a step with zero input that emits no spike
//   leaves the state unchanged, so every later zero-input step is silent too. settle() relies on
//   that: it runs zero-input steps until the first silent one.
//
// Paper: the interface follows the neuron/parameter/state split of NEST (Gewaltig & Diesmann 2007)
//   and the spike-value view of SpikeZIP-TF (You et al., ICML 2024).
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "common/error.h"

namespace spikefm::snn {

// Spike values of a population for one timestep: (N), int8.
using SpikeArray = Eigen::Array<int8_t, Eigen::Dynamic, 1>;

class NeuronPopulation {
 public:
  virtual ~NeuronPopulation() = default;

  // Model name as it appears in result tables: "st_bif", "if_rate", "burst".
  virtual std::string model_name() const = 0;

  // N, the number of neurons.
  virtual int size() const = 0;

  // Back to the state at t = 0 (membranes at their initial value, spike counts at 0).
  virtual void reset() = 0;

  // One timestep.
  //   current:    (N) input current, same units as output_scale(); must not alias spikes_out
  //   spikes_out: (N) written with this step's spike values in [min_spike(), max_spike()]
  // Returns the number of neurons that spiked (nonzero spike value) in this step.
  virtual int step(const float* current, int8_t* spikes_out) = 0;

  // theta: (N), the value one unit spike of each neuron stands for downstream (> 0, finite).
  virtual const Eigen::ArrayXf& output_scale() const = 0;

  // Bounds of a single step's spike value: -1/+1 for ST-BIF, 0/+1 for IF, -B/+B for burst.
  // (ST-BIF emits -1 even with s_min = 0: it retracts earlier positive spikes.)
  virtual int min_spike() const = 0;
  virtual int max_spike() const = 0;

  // Checked Eigen wrapper of step(): current (N) -> spikes_out resized to (N).
  int step(const Eigen::ArrayXf& current, SpikeArray& spikes_out) {
    if (current.size() != size()) {
      throw Error(model_name() + " step", "current has " + std::to_string(current.size()) +
                                              " entries, the population has " + std::to_string(size()),
                  "pass one current per neuron");
    }
    spikes_out.resize(size());
    return step(current.data(), spikes_out.data());
  }
};

// Runs zero-input steps until a step in which no neuron spikes, at most max_steps of them.
//   spike_sum: optional (N), the spike values of those steps are added to it (must have size N).
// Returns the number of steps that emitted at least one spike (0 if the population was already
// settled). Throws spikefm::Error if the population still spikes after max_steps steps.
inline int settle(NeuronPopulation& population, int max_steps, Eigen::ArrayXi* spike_sum = nullptr) {
  const int n = population.size();
  if (spike_sum != nullptr && spike_sum->size() != n) {
    throw Error("settling " + population.model_name() + " population",
                "spike_sum has " + std::to_string(spike_sum->size()) + " entries, expected " +
                    std::to_string(n));
  }
  const Eigen::ArrayXf zero = Eigen::ArrayXf::Zero(n);  // (N)
  SpikeArray spikes(n);                                  // (N)
  for (int t = 0; t < max_steps; ++t) {
    if (population.step(zero.data(), spikes.data()) == 0) return t;
    if (spike_sum != nullptr) *spike_sum += spikes.cast<int>();
  }
  // One more look: a population that needs exactly max_steps spiking steps is settled too.
  if (population.step(zero.data(), spikes.data()) == 0) return max_steps;
  throw Error("settling " + population.model_name() + " population",
              "still spiking after " + std::to_string(max_steps) + " zero-input steps",
              "raise max_steps to at least the spike-count range s_max - s_min");
}

// Per-channel thresholds theta_c (C) repeated for R rows -> per-neuron thresholds (R * C), neuron
// n = r * C + c gets theta_c.
inline Eigen::ArrayXf tile_per_channel(const Eigen::ArrayXf& per_channel, int rows) {
  if (rows < 0) throw Error("tiling per-channel thresholds", "rows must be >= 0 (got " + std::to_string(rows) + ")");
  return per_channel.replicate(rows, 1);  // (R * C), n = r * C + c
}

// Checks spike-count bounds s_min <= 0 <= s_max (the count starts at 0 and must start inside them);
// throws spikefm::Error naming `model` and the violated rule.
inline void validate_count_bounds(int64_t s_min, int64_t s_max, const std::string& model) {
  if (s_max < s_min) {
    throw Error(model,
                "s_max must be >= s_min (got s_max " + std::to_string(s_max) + ", s_min " + std::to_string(s_min) + ")",
                "s_max is the QCFS level count L, s_min is 0 or -L");
  }
  if (s_min > 0) {
    throw Error(model, "s_min must be <= 0 (got " + std::to_string(s_min) + ")",
                "the spike count starts at 0 and must start inside [s_min, s_max]");
  }
  if (s_max < 0) {
    throw Error(model, "s_max must be >= 0 (got " + std::to_string(s_max) + ")",
                "the spike count starts at 0 and must start inside [s_min, s_max]");
  }
}

// Checks that every entry of theta (N) is finite and > 0; on failure throws spikefm::Error naming
// `param_name` and the first offending index, e.g. "v_threshold[3] must be > 0 (got -0.5)".
// `model` is the object being configured ("ST-BIF neuron params"). N must be >= 1.
inline void validate_thresholds(const Eigen::ArrayXf& theta, const std::string& model,
                                const std::string& param_name = "v_threshold") {
  if (theta.size() == 0) {
    throw Error(model, param_name + " must have at least one entry (got 0)",
                "give one threshold per neuron");
  }
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    const float v = theta[i];
    if (!std::isfinite(v) || !(v > 0.0f)) {
      std::ostringstream why;
      why << param_name << "[" << i << "] must be " << (std::isfinite(v) ? "> 0" : "finite and > 0")
          << " (got " << v << ")";
      throw Error(model, why.str(), "thresholds come from calibration; check for dead or NaN channels");
    }
  }
}

}  // namespace spikefm::snn
