#include "ann_ref/qcfs.h"

namespace spikefm {

QcfsImpl::QcfsImpl(int levels, float init_lambda) : levels_(levels) {
  lambda = register_parameter("lambda", torch::full({}, init_lambda));
}

torch::Tensor QcfsImpl::forward(const torch::Tensor& z) {
  if (levels_ == 0) {
    // clip(z, 0, λ) written so that λ receives gradient where z > λ
    return torch::relu(z) - torch::relu(z - lambda);
  }
  // Canonical form shared with the spiking engine: θ = λ/L, n = clip(floor(z/θ + 1/2), 0, L), a = n·θ.
  const double L = levels_;
  torch::Tensor theta = lambda / L;
  torch::Tensor n = torch::clamp(torch::floor(z / theta + 0.5), 0.0, L);
  // Inference returns n·θ exactly (the STE sum below can differ from it in the last bit).
  if (!torch::GradMode::is_enabled()) return n * theta;
  torch::Tensor soft = torch::relu(z) - torch::relu(z - lambda);  // clip(z, 0, λ): the STE surrogate
  return soft + (n * theta - soft).detach();
}

}  // namespace spikefm
