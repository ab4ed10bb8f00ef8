// QCFS activation quantizer: a clipped ReLU (or, signed, a clipped identity) with a learnable clip λ
// and an L-level uniform quantizer.
//
//   unsigned (L > 0):  a = θ · clip( floor(z/θ + 1/2), 0, L ),   θ = λ / L
//   signed   (L > 0):  a = θ · clip( floor(z/θ + 1/2), −L, L )
//   plain    (L = 0):  a = clip(z, 0, λ)            (unsigned only)
//
// Training uses a straight-through estimator for floor (the gradient of clip(z, lo·λ, λ)), so λ and
// the weights below it learn with the quantizer in the loop (quantization-aware training). The
// integer n = clip(floor(z/θ + 1/2), lo, hi) is the spike count a signed integrate-and-fire neuron
// with threshold θ emits after enough timesteps — the reason the trained model converts to a spiking
// network without loss. Inference computes n with common/dense_kernels.h, the kernel the spiking
// engine uses too.
//
// | parameter | meaning                                | default |
// |-----------|----------------------------------------|---------|
// | levels L  | quantization levels per sign (0 = off)  | 8       |
// | λ         | clip value, learned, > 0                | 4.0     |
// | signed    | range [−λ, λ] instead of [0, λ]         | false   |
//
// After: Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking
// Neural Networks", ICLR 2022 (QCFS); the signed variant follows the signed quantizers of
// SpikeZIP-TF (You et al., ICML 2024).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace spikefm {

class QcfsImpl : public torch::nn::Module {
 public:
  QcfsImpl(int levels, float init_lambda, bool is_signed = false);
  // z: any shape; returns the same shape.
  torch::Tensor forward(const torch::Tensor& z);
  // Integer counts n (as float) of z: same shape. Requires levels > 0.
  torch::Tensor counts(const torch::Tensor& z) const;

  int levels() const { return levels_; }
  // Changes L, keeping λ (so θ = λ / L changes); L >= 1, or 0 for an unsigned quantizer.
  void set_levels(int levels);
  bool is_signed() const { return signed_; }
  float theta() const;  // λ / L in float32
  float lo() const { return signed_ ? -static_cast<float>(levels_) : 0.0f; }
  float hi() const { return static_cast<float>(levels_); }

  // Calibration: while on, forward() passes z through unchanged and records |z| samples; finishing
  // sets λ to their 99.9th percentile (the threshold-balancing rule of ANN→SNN conversion).
  void start_calibration();
  void finish_calibration();

  torch::Tensor lambda;  // scalar parameter
  // When set, every quantized forward (L > 0, not calibrating) hands its input z and its output a to
  // this observer; with grad mode on, a is the graph node, so gradients with respect to it can be
  // taken (level_allocation.h measures activations and their loss sensitivity with it).
  std::function<void(const torch::Tensor& z, const torch::Tensor& a)> observer;

 private:
  int levels_;
  bool signed_;
  bool calibrating_ = false;
  std::vector<float> seen_;
};
TORCH_MODULE(Qcfs);

}  // namespace spikefm
