#include "ann_ref/qcfs.h"

#include <algorithm>
#include <string>

#include "common/dense_kernels.h"
#include "common/error.h"

namespace spikefm {

QcfsImpl::QcfsImpl(int levels, float init_lambda, bool is_signed) : signed_(is_signed) {
  set_levels(levels);
  lambda = register_parameter("lambda", torch::full({}, init_lambda));
}

void QcfsImpl::set_levels(int levels) {
  if (levels < 0 || levels > 255) throw Error("QCFS", "levels must be in [0, 255] (got " + std::to_string(levels) + ")");
  if (signed_ && levels == 0) throw Error("QCFS", "a signed quantizer needs levels > 0");
  levels_ = levels;
}

float QcfsImpl::theta() const { return lambda.item<float>() / static_cast<float>(levels_); }

torch::Tensor QcfsImpl::counts(const torch::Tensor& z) const {
  if (levels_ == 0) throw Error("QCFS", "counts() needs a quantized activation (levels > 0)");
  torch::Tensor in = z.detach().to(torch::kFloat32).contiguous();
  torch::Tensor out = torch::empty_like(in);
  dense::quantize_counts(in.data_ptr<float>(), out.data_ptr<float>(), in.numel(), theta(), lo(), hi());
  return out;
}

torch::Tensor QcfsImpl::forward(const torch::Tensor& z) {
  if (calibrating_) {
    torch::Tensor a = z.detach().abs().flatten();
    const int64_t n = a.numel(), step = std::max<int64_t>(1, n / 4096);
    a = a.slice(0, 0, n, step).contiguous();
    seen_.insert(seen_.end(), a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
    return z;
  }
  if (levels_ == 0) return torch::relu(z) - torch::relu(z - lambda);  // clip(z, 0, λ)
  if (!torch::GradMode::is_enabled()) {
    torch::Tensor a = counts(z) * theta();
    if (observer) observer(z, a);
    return a;
  }
  // Training: y = clip(z/θ, lo, hi), n = floor(y + 1/2), a = θ·(y + (n − y)) with the rounding
  // treated as identity (STE). Gradients: 1 w.r.t. z inside the range; (n − y)/L w.r.t. λ inside,
  // hi/L or lo/L outside (as QCFS, whose a = λ·q(z/λ)).
  const double L = levels_;
  torch::Tensor th = lambda / L;
  torch::Tensor y = torch::clamp(z / th, signed_ ? -L : 0.0, L);
  torch::Tensor n = torch::floor(y.detach() + 0.5);
  torch::Tensor a = th * (y + (n - y).detach());
  if (observer) observer(z, a);
  return a;
}

void QcfsImpl::start_calibration() {
  calibrating_ = true;
  seen_.clear();
}

void QcfsImpl::finish_calibration() {
  calibrating_ = false;
  if (seen_.empty()) return;
  size_t k = static_cast<size_t>(0.999 * static_cast<double>(seen_.size() - 1));
  std::nth_element(seen_.begin(), seen_.begin() + static_cast<long>(k), seen_.end());
  float v = std::max(seen_[k], 1e-3f);
  torch::NoGradGuard ng;
  lambda.fill_(v);
  seen_.clear();
  seen_.shrink_to_fit();
}

}  // namespace spikefm
