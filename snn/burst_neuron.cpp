#include "snn/burst_neuron.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "common/error.h"

namespace spikefm::snn {

namespace {
const char* const kWhat = "burst neuron params";
}

void BurstNeuron::Params::validate() const {
  validate_thresholds(v_threshold, kWhat, "v_threshold");
  if (max_burst < 1 || max_burst > 127) {
    throw Error(kWhat, "max_burst must be in [1, 127] (got " + std::to_string(max_burst) + ")",
                "a burst value is sent as one int8 spike");
  }
  validate_count_bounds(s_min, s_max, kWhat);
}

BurstNeuron::BurstNeuron(Params params) : params_(std::move(params)) {
  params_.validate();
  reset();
}

void BurstNeuron::reset() {
  state_.v = params_.v_threshold * 0.5f;
  state_.s = Eigen::ArrayXi::Zero(size());
}

int BurstNeuron::step(const float* current, int8_t* spikes_out) {
  const int n = size();
  const float* theta = params_.v_threshold.data();  // (N)
  float* v = state_.v.data();                       // (N)
  int* s = state_.s.data();                         // (N)
  const int64_t b = params_.max_burst;
  const int64_t s_max = params_.s_max;
  const int64_t s_min = params_.signed_spikes ? params_.s_min : 0;
  const bool negative = params_.signed_spikes;
  int spiking = 0;
  for (int i = 0; i < n; ++i) {
    const float vi = v[i] + current[i];
    int spike = 0;
    if (vi >= theta[i]) {
      // q >= 1; clamp in float before converting so a huge V cannot overflow the int.
      const int64_t room = std::min<int64_t>(b, s_max - s[i]);
      if (room > 0) {
        const float q = std::floor(vi / theta[i]);
        spike = static_cast<int>(std::clamp<float>(q, 1.0f, static_cast<float>(room)));
      }
    } else if (vi < 0.0f && negative) {
      const int64_t room = std::min<int64_t>(b, s[i] - s_min);
      if (room > 0) {
        const float q = std::floor(vi / theta[i]);
        spike = static_cast<int>(std::clamp<float>(q, -static_cast<float>(room), -1.0f));
      }
    }
    v[i] = vi - static_cast<float>(spike) * theta[i];
    s[i] += spike;
    spikes_out[i] = static_cast<int8_t>(spike);
    spiking += spike != 0;
  }
  return spiking;
}

}  // namespace spikefm::snn
