// QCFS activation: a ReLU with a learnable clip λ and an optional L-level quantizer.
//
//   quantized (L > 0):  a = λ · clip( floor(z·L/λ + 1/2) / L, 0, 1 )
//   plain     (L = 0):  a = clip(z, 0, λ)
//
// Training uses a straight-through estimator for floor (gradient of the identity), so λ and the
// weights below it learn with the quantizer in the loop (quantization-aware training). With θ = λ/L
// the quantized output is θ·n with an integer spike count n in [0, L]: exactly what a signed
// integrate-and-fire neuron with threshold θ emits after enough timesteps, which is why the trained
// model converts to a spiking network without loss.
//
// | parameter | meaning                        | default |
// |-----------|--------------------------------|---------|
// | levels L  | quantization levels (0 = off)  | 8       |
// | λ         | clip value, learned, > 0       | 4.0     |
//
// After: Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking
// Neural Networks", ICLR 2022 (QCFS).
#pragma once

#include <torch/torch.h>

namespace spikefm {

class QcfsImpl : public torch::nn::Module {
 public:
  QcfsImpl(int levels, float init_lambda);
  // z: any shape; returns the same shape.
  torch::Tensor forward(const torch::Tensor& z);
  int levels() const { return levels_; }
  // The clip λ (scalar tensor parameter).
  torch::Tensor lambda;

 private:
  int levels_;
};
TORCH_MODULE(Qcfs);

}  // namespace spikefm
