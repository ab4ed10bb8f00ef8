// Deterministic dense kernels shared by the quantized ANN (ann_ref) and the spiking engine (snn).
//
// Exact QANN → SNN equivalence needs both sides to compute the non-linear operators with the same
// float operations in the same order; a vectorised exp or a different reduction order changes the
// last bit, and a quantizer boundary turns one bit into one level. These kernels are plain scalar
// loops compiled once (common/dense_kernels.cpp, no FMA contraction under -std=c++20), and both
// sides call them.
//
//   quantize:   n = clip(floor(x/θ + 1/2), lo, hi)                       (spike count of x)
//   layer norm: y = (x − mean) / sqrt(var + eps) · γ + β   per row of C   (mean, var in double)
//   softmax:    y_j = exp(x_j − max) / Σ_k exp(x_k − max)  over the first `valid` entries of a
//               row; entries from `valid` on are set to 0 (the causal mask)
#pragma once

#include <cstdint>

namespace spikefm::dense {

// One count; the float ops are x / theta, + 0.5f, floor, clamp (inline: the spiking engine calls it
// per neuron; the operations and so the result are the same wherever it is compiled).
inline float quantize_count(float x, float theta, float lo, float hi) {
  const float q = __builtin_floorf(x / theta + 0.5f);
  return q >= lo ? (q <= hi ? q : hi) : lo;  // NaN → lo (never an out-of-range count)
}
// counts[i] = quantize_count(x[i], theta, lo, hi) for i < n.
void quantize_counts(const float* x, float* counts, int64_t n, float theta, float lo, float hi);

// x, y: (rows, C) row-major; gamma, beta: (C).
void layer_norm_rows(const float* x, float* y, int64_t rows, int64_t C, const float* gamma, const float* beta,
                     float eps);
// One row of C.
void layer_norm_row(const float* x, float* y, int64_t C, const float* gamma, const float* beta, float eps);

// One row: x, y (n_total); softmax over x[0 .. valid), y[valid .. n_total) = 0. valid >= 1.
void softmax_row(const float* x, float* y, int64_t valid, int64_t n_total);

}  // namespace spikefm::dense
