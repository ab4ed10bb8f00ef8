// The QANN in integer form: the exact reference the spiking network must reproduce.
//
// A QANN-configured Mfm (config.qann, weight_bits = 8) is evaluated here with every quantized tensor
// kept as integer spike counts n and its step θ (value = n·θ), so that each float result is a fixed
// function of integers:
//
//   linear:      y = (n_in · qᵀ) ⊙ (θ_in · s) + b         q int8 weights (out, in), s (out) scales
//   grouped:     y = Σ_g (n_in[g] · q[:, g]ᵀ) ⊙ (θ_in · s_g) + b, summed in group order: the
//                per-group codes of a compressed layer (quant_store.h), s_g (out) per input group g
//   q kᵀ:        S = (n_q · n_kᵀ) · ((θ_q · θ_k) · 1/√d)   per head, d = C/H
//   p v:         O = (n_p · n_v) · (θ_p · θ_v)
//   quantizer:   n = clip(floor(x/θ + 1/2), lo, hi)       common/dense_kernels.h
//   LayerNorm, softmax:                                    common/dense_kernels.h
//   pixels:      n = 0..255, θ = 1/255
//
// Integer products are exact in float32 (all partial sums stay below 2^24), so the order of
// summation (BLAS here, event-driven accumulation in the SNN) cannot change a bit; the remaining
// float ops are the same elementwise ops on both sides. The spiking engine reads the same q, s, θ.
// Shapes: images (B, S, S); counts (B, t, C); per-head counts (B, H, t, d); logits (B, t, V).
#pragma once

#include <torch/torch.h>

#include <map>
#include <vector>

#include "ann_ref/mfm.h"
#include "ann_ref/quant_store.h"

namespace spikefm {

// Spike counts of keys and values of every decoder layer for the tokens seen so far.
struct QannCache {
  std::vector<torch::Tensor> nk, nv;  // per layer: (B, H, len, d), integer-valued float
  int64_t len = 0;
};

inline constexpr float kPixelTheta = 1.0f / 255.0f;

// The integer weights of one linear layer.
struct IntLinear {
  torch::Tensor q;  // (out, in) integer codes as float
  torch::Tensor s;  // (out, groups) scales
  int group = 0;    // inputs per scale; 0 = one scale per output (groups = 1)
  int bits = 8;     // stored width of the codes
};

class QannRef {
 public:
  // The model must have config.qann, weight_bits = 8 and act_levels > 0. Layers in `quant` (a
  // compressed checkpoint's /quant, whose dequantized weights the model holds) keep their codes and
  // group scales; every other layer is quantized to int8 per output channel.
  explicit QannRef(Mfm model, const QuantStore& quant = {});

  // images (B, S, S) in [0, 1] (multiples of 1/255) → projected image tokens (B, P, Cd).
  torch::Tensor image_prefix(const torch::Tensor& images);
  // Runs the prefix through the decoder into an empty cache.
  void prime(const torch::Tensor& prefix, QannCache& cache);
  // New text tokens (B, t) after the cached ones → logits (B, t, V).
  torch::Tensor decode(const torch::Tensor& tokens, QannCache& cache);
  // Teacher-forced: images (B, S, S), tokens (B, T) → logits (B, T, V).
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& tokens);

  Mfm& model() { return model_; }

  // Integer weights and scales of a linear layer.
  const IntLinear& weights(const QLinear& layer) const;

  // Building blocks (public for the converter's operator-level tests).
  torch::Tensor linear(const torch::Tensor& counts, float theta_in, const QLinear& layer) const;
  static torch::Tensor counts(const Qcfs& q, const torch::Tensor& x);           // quantizer → n
  static torch::Tensor layer_norm(const torch::nn::LayerNorm& ln, const torch::Tensor& x);
  static torch::Tensor pixel_counts(const torch::Tensor& images);               // round(x · 255)

 private:
  torch::Tensor block(Block& b, const torch::Tensor& x, QannCache* cache, int layer);
  torch::Tensor run_decoder(torch::Tensor x, QannCache& cache);

  Mfm model_;
  std::map<const QLinearImpl*, IntLinear> weights_;
};

}  // namespace spikefm
