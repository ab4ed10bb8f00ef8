#include "snn/if_rate_neuron.h"

#include <utility>

#include "common/error.h"

namespace spikefm::snn {

void IfRateNeuron::Params::validate() const {
  validate_thresholds(v_threshold, "IF rate neuron params", "v_threshold");
  if (v_init != InitialMembrane::kHalfThreshold && v_init != InitialMembrane::kZero) {
    throw Error("IF rate neuron params", "v_init must be kHalfThreshold or kZero");
  }
}

IfRateNeuron::IfRateNeuron(Params params) : params_(std::move(params)) {
  params_.validate();
  reset();
}

void IfRateNeuron::reset() {
  state_.v = params_.v_init == InitialMembrane::kHalfThreshold ? Eigen::ArrayXf(params_.v_threshold * 0.5f)
                                                               : Eigen::ArrayXf::Zero(size());
}

int IfRateNeuron::step(const float* current, int8_t* spikes_out) {
  const int n = size();
  const float* theta = params_.v_threshold.data();  // (N)
  float* v = state_.v.data();                       // (N)
  int spiking = 0;
  for (int i = 0; i < n; ++i) {
    const float vi = v[i] + current[i];
    const int spike = vi >= theta[i];
    v[i] = vi - static_cast<float>(spike) * theta[i];
    spikes_out[i] = static_cast<int8_t>(spike);
    spiking += spike;
  }
  return spiking;
}

}  // namespace spikefm::snn
