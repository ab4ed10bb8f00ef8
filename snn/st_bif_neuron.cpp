#include "snn/st_bif_neuron.h"

#include <string>
#include <utility>

#include "common/error.h"

namespace spikefm::snn {

namespace {
const char* const kWhat = "ST-BIF neuron params";
}

void StBifNeuron::Params::validate() const {
  validate_thresholds(v_threshold, kWhat, "v_threshold");
  validate_count_bounds(s_min, s_max, kWhat);
}

StBifNeuron::StBifNeuron(Params params) : params_(std::move(params)) {
  params_.validate();
  reset();
}

void StBifNeuron::reset() {
  state_.v = params_.v_threshold * 0.5f;
  state_.s = Eigen::ArrayXi::Zero(size());
}

int StBifNeuron::step(const float* current, int8_t* spikes_out) {
  const int n = size();
  const float* theta = params_.v_threshold.data();  // (N)
  float* v = state_.v.data();                       // (N)
  int* s = state_.s.data();                         // (N)
  const int s_max = params_.s_max;
  const int s_min = params_.s_min;
  int spiking = 0;
  for (int i = 0; i < n; ++i) {
    const float vi = v[i] + current[i];
    const int up = (vi >= theta[i]) & (s[i] < s_max);
    const int down = (vi < 0.0f) & (s[i] > s_min) & (up ^ 1);
    const int spike = up - down;
    // spike is -1, 0 or +1, so spike * theta is exact and V - theta / V + theta / V - 0 as written.
    v[i] = vi - static_cast<float>(spike) * theta[i];
    s[i] += spike;
    spikes_out[i] = static_cast<int8_t>(spike);
    spiking += spike != 0;
  }
  return spiking;
}

}  // namespace spikefm::snn
