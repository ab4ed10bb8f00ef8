#include "common/dense_kernels.h"

#include <algorithm>
#include <cmath>

namespace spikefm::dense {

void quantize_counts(const float* x, float* counts, int64_t n, float theta, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) counts[i] = quantize_count(x[i], theta, lo, hi);
}

void layer_norm_row(const float* x, float* y, int64_t C, const float* gamma, const float* beta, float eps) {
  double sum = 0.0;
  for (int64_t c = 0; c < C; ++c) sum += x[c];
  const double mean = sum / static_cast<double>(C);
  double sq = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double d = x[c] - mean;
    sq += d * d;
  }
  const double inv = 1.0 / std::sqrt(sq / static_cast<double>(C) + static_cast<double>(eps));
  for (int64_t c = 0; c < C; ++c) {
    const float norm = static_cast<float>((x[c] - mean) * inv);
    y[c] = norm * gamma[c] + beta[c];
  }
}

void layer_norm_rows(const float* x, float* y, int64_t rows, int64_t C, const float* gamma, const float* beta,
                     float eps) {
  for (int64_t r = 0; r < rows; ++r) layer_norm_row(x + r * C, y + r * C, C, gamma, beta, eps);
}

void softmax_row(const float* x, float* y, int64_t valid, int64_t n_total) {
  float mx = x[0];
  for (int64_t j = 1; j < valid; ++j) mx = std::max(mx, x[j]);
  double sum = 0.0;
  for (int64_t j = 0; j < valid; ++j) {
    const float e = std::exp(x[j] - mx);
    y[j] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < valid; ++j) y[j] = y[j] * inv;
  for (int64_t j = valid; j < n_total; ++j) y[j] = 0.0f;
}

}  // namespace spikefm::dense
