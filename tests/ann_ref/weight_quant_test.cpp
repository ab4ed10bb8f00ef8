// Tests of ann_ref/weight_quant.h. Each property is checked against an independent reason: the byte
// layout against hand-packed bytes, RTN against the half-step bound of rounding, fp16 scales against
// the definition of a binary16 number, GPTQ against RTN on the output error it minimises, the Hessian
// against a naive double loop.
#include "ann_ref/weight_quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/test_random.h"

namespace spikefm {
namespace {

using test::randn;

// a: (n, k), b: (k, m), row-major → (n, m)
std::vector<float> matmul(const std::vector<float>& a, const std::vector<float>& b, int n, int k, int m) {
  std::vector<float> c(static_cast<size_t>(n) * m, 0.0f);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      double acc = 0;
      for (int t = 0; t < k; ++t) acc += static_cast<double>(a[i * k + t]) * b[t * m + j];
      c[i * m + j] = static_cast<float>(acc);
    }
  return c;
}

// True when v is a finite IEEE binary16 value: |v| <= 65504 and v = m · 2^e with an 11-bit integer m
// (normal) or v a multiple of 2^-24 (subnormal).
bool is_half(float v) {
  const double a = std::fabs(static_cast<double>(v));
  if (a == 0) return true;
  if (!(a <= 65504.0)) return false;
  int e = 0;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e): 11 significant bits means a · 2^(11-e) is an integer
  const double scaled = std::ldexp(a, std::min(11 - e, 24));
  return scaled == std::floor(scaled);
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no spikefm::Error thrown; expected one naming '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

double weight_mse(const std::vector<float>& w, const QuantizedMatrix& q) {
  const std::vector<float> wq = q.dequantize();
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) s += (static_cast<double>(w[i]) - wq[i]) * (w[i] - wq[i]);
  return s / static_cast<double>(w.size());
}

// ---- packing -----------------------------------------------------------------------------------------

TEST(WeightQuantPack, RoundTripRandomCodesWithPadding) {
  std::mt19937 rng(7);
  for (int bits : {8, 4, 2}) {
    const int qmax = (1 << (bits - 1)) - 1;
    std::uniform_int_distribution<int> dist(-qmax, qmax);
    for (int cols : {1, 3, 5, 7, 64, 65}) {
      const int rows = 3;
      std::vector<int8_t> codes(rows * cols);
      for (int8_t& c : codes) c = static_cast<int8_t>(dist(rng));
      const std::vector<uint8_t> packed = pack_codes(codes, rows, cols, bits);
      EXPECT_EQ(packed.size(), static_cast<size_t>(rows * ((cols * bits + 7) / 8))) << bits << " " << cols;
      EXPECT_EQ(unpack_codes(packed, rows, cols, bits), codes) << "bits " << bits << " cols " << cols;
    }
  }
}

TEST(WeightQuantPack, HandPackedByteLayout) {
  // int4: column 2k in the low nibble, two's complement: 1 → 0x1, -2 → 0xE, 7 → 0x7 (+ padding).
  EXPECT_EQ(pack_codes({1, -2, 7}, 1, 3, 4), (std::vector<uint8_t>{0xE1, 0x07}));
  // int2: column 4k in the lowest two bits: 1 → 01, -1 → 11, 0 → 00, 1 → 01 = 0b01001101; then -1.
  EXPECT_EQ(pack_codes({1, -1, 0, 1, -1}, 1, 5, 2), (std::vector<uint8_t>{0x4D, 0x03}));
  EXPECT_EQ(pack_codes({-1, 127, -127}, 1, 3, 8), (std::vector<uint8_t>{0xFF, 0x7F, 0x81}));
  // Each row padded to whole bytes: two rows of three int4 codes take 2 bytes each.
  EXPECT_EQ(pack_codes({1, -2, 7, -7, 0, 3}, 2, 3, 4), (std::vector<uint8_t>{0xE1, 0x07, 0x09, 0x03}));
}

TEST(WeightQuantPack, OutOfRangeCodesAreRefused) {
  expect_error([] { pack_codes({0, 8, 0}, 1, 3, 4); }, "(row 0, col 1)");
  expect_error([] { pack_codes({0, 0, -8}, 1, 3, 4); }, "(row 0, col 2)");
  expect_error([] { pack_codes({0, 0, 0, 2}, 2, 2, 2); }, "(row 1, col 1)");
  expect_error([] { pack_codes({-128}, 1, 1, 8); }, "-128");
  expect_error([] { pack_codes({0, 0}, 1, 3, 4); }, "codes has 2 values");
  // 0x8 is int4 -8: a valid bit pattern that the symmetric format never writes.
  expect_error([] { unpack_codes({0x80}, 1, 2, 4); }, "(row 0, col 1)");
  expect_error([] { unpack_codes({0x00}, 1, 3, 4); }, "packed has 1 bytes");
}

// ---- RTN ---------------------------------------------------------------------------------------------

TEST(WeightQuantRtn, ErrorWithinHalfStepAndGroupMaxMapsToQmax) {
  const int rows = 16, cols = 100;
  const std::vector<float> w = randn(rows * cols, 1);
  for (int bits : {8, 4, 2})
    for (int group : {0, 7, 32})
      for (ScaleType st : {ScaleType::fp16, ScaleType::fp32}) {
        SCOPED_TRACE("bits " + std::to_string(bits) + " group " + std::to_string(group) +
                     (st == ScaleType::fp16 ? " fp16" : " fp32"));
        const QuantSpec spec{bits, group, st};
        const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, spec);
        const std::vector<float> wq = q.dequantize();
        const int qmax = (1 << (bits - 1)) - 1, gs = group == 0 ? cols : group, G = (cols + gs - 1) / gs;
        ASSERT_EQ(q.groups_per_row(), G);
        for (int r = 0; r < rows; ++r)
          for (int g = 0; g < G; ++g) {
            const float s = q.scales[r * G + g];
            int argmax = g * gs;
            for (int c = g * gs; c < std::min(cols, (g + 1) * gs); ++c) {
              const int i = r * cols + c;
              const int code = q.q(r, c);
              ASSERT_LE(std::abs(code), qmax);
              EXPECT_EQ(wq[i], s * static_cast<float>(code));
              // Rounding to the nearest grid point is off by at most half a step; an fp16 scale
              // rounded down by up to 2^-11 relative can clip the max by qmax·s·2^-11 < s/2.
              EXPECT_LE(std::fabs(w[i] - wq[i]), 0.5 * s * (1 + 1e-6)) << "at " << r << ", " << c;
              if (std::fabs(w[i]) > std::fabs(w[r * cols + argmax])) argmax = c;
            }
            EXPECT_EQ(q.q(r, argmax), w[r * cols + argmax] > 0 ? qmax : -qmax) << "row " << r << " group " << g;
          }
      }
}

TEST(WeightQuantRtn, GroupsBeatPerChannelWhenRowsHaveOutliers) {
  // One outlier per row inflates the per-channel scale of the whole row, but only one group's scale.
  const int rows = 32, cols = 256;
  std::vector<float> w = randn(rows * cols, 2);
  std::mt19937 rng(3);
  for (int r = 0; r < rows; ++r) w[r * cols + rng() % cols] = 50.0f;
  const double per_channel = weight_mse(w, quantize_rtn(w.data(), rows, cols, {4, 0, ScaleType::fp16}));
  const double grouped = weight_mse(w, quantize_rtn(w.data(), rows, cols, {4, 32, ScaleType::fp16}));
  EXPECT_LT(grouped, 0.2 * per_channel) << "per-channel " << per_channel << ", group 32 " << grouped;
}

TEST(WeightQuantRtn, Fp16ScalesAreExactHalves) {
  // Magnitudes from 1e-7 to 1e3 across rows, including the subnormal range of fp16 scales.
  const int rows = 40, cols = 48;
  std::vector<float> w = randn(rows * cols, 4);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) w[r * cols + c] *= std::pow(10.0f, -7.0f + 10.0f * r / (rows - 1));
  for (int bits : {8, 4, 2}) {
    const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, {bits, 16, ScaleType::fp16});
    for (float s : q.scales) EXPECT_TRUE(is_half(s)) << s;
    for (float s : q.scales) EXPECT_GT(s, 0.0f);
  }
}

TEST(WeightQuantRtn, Fp16ScaleRoundsToNearestEven) {
  // int2 has qmax = 1, so the scale is max|w| itself rounded to fp16 (11 significant bits).
  auto scale_of = [](float v, ScaleType st = ScaleType::fp16) {
    const float w[2] = {v, 0.0f};
    return quantize_rtn(w, 1, 2, {2, 0, st}).scales[0];
  };
  EXPECT_EQ(scale_of(1.0f + 0x1p-11f), 1.0f);                    // tie → even significand 1024
  EXPECT_EQ(scale_of(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f);      // tie → even significand 1026
  EXPECT_EQ(scale_of(1.0f + 0x1p-11f + 0x1p-20f), 1.0f + 0x1p-10f);  // above the tie → up
  EXPECT_EQ(scale_of(2047.5f), 2048.0f);                          // carry into the next binade
  EXPECT_EQ(scale_of(3 * 0x1p-25f), 2 * 0x1p-24f);                // subnormal tie → even
  EXPECT_EQ(scale_of(5 * 0x1p-26f), 0x1p-24f);                    // subnormal, below the tie
  EXPECT_EQ(scale_of(65504.0f), 65504.0f);
  EXPECT_EQ(scale_of(1e-9f), 0x1p-24f);  // would round to 0: the smallest half keeps s > 0
  EXPECT_EQ(scale_of(1.0f + 0x1p-11f, ScaleType::fp32), 1.0f + 0x1p-11f);
  EXPECT_EQ(scale_of(70000.0f, ScaleType::fp32), 70000.0f);
  expect_error([&] { scale_of(70000.0f); }, "65504");
}

TEST(WeightQuantRtn, AllZeroGroupGivesZeroScaleAndCodes) {
  const int rows = 2, cols = 8;
  std::vector<float> w = randn(rows * cols, 5);
  for (int c = 4; c < 8; ++c) w[1 * cols + c] = 0.0f;  // row 1, group 1
  const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, {4, 4, ScaleType::fp16});
  EXPECT_EQ(q.scales[1 * 2 + 1], 0.0f);
  const std::vector<float> wq = q.dequantize();
  for (int c = 4; c < 8; ++c) {
    EXPECT_EQ(q.q(1, c), 0);
    EXPECT_EQ(wq[1 * cols + c], 0.0f);
  }
  EXPECT_GT(q.scales[1 * 2 + 0], 0.0f);
}

// ---- storage -----------------------------------------------------------------------------------------

TEST(WeightQuantStorage, EffectiveBitsAndBytes) {
  std::vector<float> w = randn(64 * 256, 6);
  const QuantizedMatrix a = quantize_rtn(w.data(), 8, 64, {4, 32, ScaleType::fp16});
  EXPECT_EQ(a.effective_bits(), 4.5);  // 4 + 16/32
  EXPECT_EQ(a.storage_bytes(), 8 * 32 + 8 * 2 * 2);
  const QuantizedMatrix b = quantize_rtn(w.data(), 64, 256, {8, 0, ScaleType::fp32});
  EXPECT_EQ(b.effective_bits(), 8.0 + 32.0 / 256.0);
  EXPECT_EQ(b.storage_bytes(), 64 * 256 + 64 * 4);
  // int2, 5 columns in groups of 3: 2 bytes per row (padded), 2 scales per row.
  const QuantizedMatrix c = quantize_rtn(w.data(), 2, 5, {2, 3, ScaleType::fp16});
  EXPECT_EQ(c.bytes_per_row(), 2);
  EXPECT_EQ(c.groups_per_row(), 2);
  EXPECT_DOUBLE_EQ(c.effective_bits(), (10.0 * 2 + 4 * 16) / 10.0);
  EXPECT_EQ(c.storage_bytes(), 2 * 2 + 4 * 2);
}

// ---- GPTQ --------------------------------------------------------------------------------------------

TEST(WeightQuantGptq, DiagonalHessianReducesToRtn) {
  // With a diagonal H the inverse's Cholesky factor is diagonal: no error is propagated, so GPTQ must
  // produce exactly the RTN codes and scales.
  const int rows = 8, cols = 40;
  const std::vector<float> w = randn(rows * cols, 8);
  std::vector<double> h(cols * cols, 0.0);
  for (int i = 0; i < cols; ++i) h[i * cols + i] = 0.5 + i;
  for (int group : {0, 16})
    for (int bits : {8, 4, 2}) {
      const QuantSpec spec{bits, group, ScaleType::fp16};
      const QuantizedMatrix g = quantize_gptq(w.data(), rows, cols, h, spec);
      const QuantizedMatrix r = quantize_rtn(w.data(), rows, cols, spec);
      EXPECT_EQ(g.packed, r.packed) << bits << " " << group;
      EXPECT_EQ(g.scales, r.scales) << bits << " " << group;
    }
}

struct NmsePair {
  double rtn, gptq;
};

NmsePair compare(const std::vector<float>& w, const std::vector<float>& x, int rows, int cols, int n,
                 const QuantSpec& spec, const char* label) {
  const std::vector<double> h = input_hessian(x.data(), n, cols);
  const double rtn = output_nmse(w.data(), quantize_rtn(w.data(), rows, cols, spec), x.data(), n);
  const double gptq = output_nmse(w.data(), quantize_gptq(w.data(), rows, cols, h, spec), x.data(), n);
  std::printf("[ nmse     ] %s int%d group %d: rtn %.4g gptq %.4g (ratio %.3f)\n", label, spec.bits, spec.group,
              rtn, gptq, gptq / rtn);
  return {rtn, gptq};
}

TEST(WeightQuantGptq, BeatsRtnOnCorrelatedInputs) {
  // X = Z·M: 8 strong latent factors (plus weak ones at 0.1) mixed by a random M make the 64 input
  // columns strongly correlated, which is where spreading each rounding error over the remaining
  // columns (GPTQ) pays off against rounding each weight alone (RTN).
  const int n = 512, cols = 64, rows = 32;
  std::vector<float> z = randn(n * cols, 10);
  for (int k = 0; k < n; ++k)
    for (int c = 8; c < cols; ++c) z[k * cols + c] *= 0.1f;
  const std::vector<float> x = matmul(z, randn(cols * cols, 11), n, cols, cols);
  const std::vector<float> w = randn(rows * cols, 12);
  for (int group : {0, 16}) {
    const NmsePair p4 = compare(w, x, rows, cols, n, {4, group, ScaleType::fp16}, "correlated");
    EXPECT_LT(p4.gptq, 0.5 * p4.rtn);
    const NmsePair p2 = compare(w, x, rows, cols, n, {2, group, ScaleType::fp16}, "correlated");
    EXPECT_LT(p2.gptq, 0.4 * p2.rtn);
    // int8: RTN's weight NMSE is about (2.5σ/127)²/12 / σ² ≈ 3e-5 for Gaussian rows; allow 3x.
    const NmsePair p8 = compare(w, x, rows, cols, n, {8, group, ScaleType::fp16}, "correlated");
    EXPECT_LT(p8.rtn, 1e-4);
    EXPECT_LT(p8.gptq, 1e-4);
  }
}

// Plain GPTQ (Frantar et al. Alg. 1) written out with naive loops and no lazy batching, fp32 scales.
// Returns the codes (rows, cols).
std::vector<int> naive_gptq(std::vector<double> w, int rows, int cols, std::vector<double> h, int bits,
                            int group, double damp) {
  const int qmax = (1 << (bits - 1)) - 1, gs = group == 0 ? cols : group;
  for (int i = 0; i < cols; ++i)
    if (h[i * cols + i] == 0) {
      h[i * cols + i] = 1;
      for (int r = 0; r < rows; ++r) w[r * cols + i] = 0;
    }
  double mean = 0;
  for (int i = 0; i < cols; ++i) mean += h[i * cols + i] / cols;
  for (int i = 0; i < cols; ++i) h[i * cols + i] += damp * mean;
  auto cholesky_lower = [cols](const std::vector<double>& a) {  // a = L Lᵀ
    std::vector<double> l(cols * cols, 0.0);
    for (int j = 0; j < cols; ++j)
      for (int i = j; i < cols; ++i) {
        double s = a[i * cols + j];
        for (int k = 0; k < j; ++k) s -= l[i * cols + k] * l[j * cols + k];
        l[i * cols + j] = i == j ? std::sqrt(s) : s / l[j * cols + j];
      }
    return l;
  };
  const std::vector<double> l = cholesky_lower(h);
  std::vector<double> hinv(cols * cols);  // columns of H⁻¹ by forward and back substitution
  for (int c = 0; c < cols; ++c) {
    std::vector<double> y(cols);
    for (int i = 0; i < cols; ++i) {
      double s = i == c ? 1.0 : 0.0;
      for (int k = 0; k < i; ++k) s -= l[i * cols + k] * y[k];
      y[i] = s / l[i * cols + i];
    }
    for (int i = cols - 1; i >= 0; --i) {
      double s = y[i];
      for (int k = i + 1; k < cols; ++k) s -= l[k * cols + i] * hinv[k * cols + c];
      hinv[i * cols + c] = s / l[i * cols + i];
    }
  }
  const std::vector<double> l2 = cholesky_lower(hinv);  // H⁻¹ = L2 L2ᵀ = Uᵀ U with U = L2ᵀ
  auto u = [&](int i, int j) { return l2[j * cols + i]; };
  std::vector<int> codes(rows * cols);
  std::vector<float> s(rows);
  for (int i = 0; i < cols; ++i) {
    if (i % gs == 0)
      for (int r = 0; r < rows; ++r) {
        double m = 0;
        for (int c = i; c < std::min(cols, i + gs); ++c) m = std::max(m, std::fabs(w[r * cols + c]));
        s[r] = static_cast<float>(m / qmax);
      }
    for (int r = 0; r < rows; ++r) {
      const double v = w[r * cols + i];
      const int q = s[r] == 0 ? 0 : static_cast<int>(std::clamp(std::nearbyint(v / s[r]), -1.0 * qmax, 1.0 * qmax));
      codes[r * cols + i] = q;
      const double e = (v - static_cast<double>(s[r]) * q) / u(i, i);
      for (int j = i + 1; j < cols; ++j) w[r * cols + j] -= e * u(i, j);
    }
  }
  return codes;
}

TEST(WeightQuantGptq, LazyBatchedEqualsNaiveReference) {
  // 300 columns span three lazy-update blocks; groups of 96 start inside a block and cross its end,
  // so their scales need the pending updates. Rows are independent in GPTQ; a rounding tie decided
  // differently by the two summation orders would change one row only, so allow one differing row.
  const int n = 400, cols = 300, rows = 12;
  const std::vector<float> x = matmul(randn(n * cols, 70), randn(cols * cols, 71), n, cols, cols);
  const std::vector<float> w = randn(rows * cols, 72);
  const std::vector<double> h = input_hessian(x.data(), n, cols);
  for (int group : {0, 96, 128})
    for (int bits : {4, 2}) {
      const QuantizedMatrix q = quantize_gptq(w.data(), rows, cols, h, {bits, group, ScaleType::fp32}, 0.01);
      const std::vector<int> ref =
          naive_gptq(std::vector<double>(w.begin(), w.end()), rows, cols, h, bits, group, 0.01);
      int differing_rows = 0;
      for (int r = 0; r < rows; ++r) {
        bool same = true;
        for (int c = 0; c < cols; ++c) same = same && q.q(r, c) == ref[r * cols + c];
        differing_rows += !same;
      }
      EXPECT_LE(differing_rows, 1) << "bits " << bits << " group " << group;
    }
}

TEST(WeightQuantGptq, NotWorseThanRtnOnIndependentInputs) {
  // Independent unit-variance inputs: H ≈ 2I, so GPTQ ≈ RTN; the sample correlations are small noise.
  const int n = 512, cols = 64, rows = 32;
  const std::vector<float> x = randn(n * cols, 20);
  const std::vector<float> w = randn(rows * cols, 21);
  for (int group : {0, 16})
    for (int bits : {8, 4, 2}) {
      const NmsePair p = compare(w, x, rows, cols, n, {bits, group, ScaleType::fp16}, "independent");
      EXPECT_LE(p.gptq, 1.05 * p.rtn);
    }
}

TEST(WeightQuantGptq, DeadInputsGetZeroWeights) {
  // An input column that is always 0 has H_ii = 0; the reference method zeroes its weights.
  const int n = 64, cols = 24, rows = 6, dead = 5;
  std::vector<float> x = randn(n * cols, 30);
  for (int k = 0; k < n; ++k) x[k * cols + dead] = 0.0f;
  const std::vector<float> w = randn(rows * cols, 31);
  const QuantizedMatrix q =
      quantize_gptq(w.data(), rows, cols, input_hessian(x.data(), n, cols), {4, 8, ScaleType::fp16});
  for (int r = 0; r < rows; ++r) EXPECT_EQ(q.q(r, dead), 0);
  const double nmse = output_nmse(w.data(), q, x.data(), n);
  EXPECT_TRUE(std::isfinite(nmse));
  EXPECT_LT(nmse, 0.05);
}

// ---- Hessian and NMSE --------------------------------------------------------------------------------

TEST(WeightQuantHessian, EqualsNaiveDoubleLoop) {
  const int n = 37, cols = 9;
  const std::vector<float> x = randn(n * cols, 40);
  const std::vector<double> h = input_hessian(x.data(), n, cols);
  ASSERT_EQ(h.size(), static_cast<size_t>(cols * cols));
  for (int i = 0; i < cols; ++i)
    for (int j = 0; j < cols; ++j) {
      double s = 0;
      for (int k = 0; k < n; ++k) s += static_cast<double>(x[k * cols + i]) * x[k * cols + j];
      s *= 2.0 / n;
      EXPECT_NEAR(h[i * cols + j], s, 1e-12 * (1 + std::fabs(s))) << i << ", " << j;
      EXPECT_EQ(h[i * cols + j], h[j * cols + i]);
    }
}

TEST(WeightQuantNmse, MatchesDirectComputationAndEdgeCases) {
  const int n = 20, cols = 12, rows = 5;
  const std::vector<float> x = randn(n * cols, 50);
  const std::vector<float> w = randn(rows * cols, 51);
  const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, {4, 0, ScaleType::fp16});
  const std::vector<float> wq = q.dequantize();
  double num = 0, den = 0;
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < n; ++k) {
      double y = 0, e = 0;
      for (int c = 0; c < cols; ++c) {
        y += static_cast<double>(w[r * cols + c]) * x[k * cols + c];
        e += (static_cast<double>(w[r * cols + c]) - wq[r * cols + c]) * x[k * cols + c];
      }
      num += e * e;
      den += y * y;
    }
  EXPECT_NEAR(output_nmse(w.data(), q, x.data(), n), num / den, 1e-12);
  // Integer weights within ±7 are exact in int4 with a scale of 1: no error.
  std::vector<float> wi(rows * cols);
  for (int i = 0; i < rows * cols; ++i) wi[i] = static_cast<float>(i % 15 - 7);
  EXPECT_EQ(output_nmse(wi.data(), quantize_rtn(wi.data(), rows, cols, {4, 0, ScaleType::fp16}), x.data(), n), 0.0);
  // 0/0 → 0.
  const std::vector<float> zero(rows * cols, 0.0f);
  EXPECT_EQ(output_nmse(zero.data(), quantize_rtn(zero.data(), rows, cols, {4, 0, ScaleType::fp16}), x.data(), n),
            0.0);
}

// ---- bad inputs --------------------------------------------------------------------------------------

TEST(WeightQuantErrors, BadInputsNameTheField) {
  const int rows = 3, cols = 8;
  std::vector<float> w = randn(rows * cols, 60);
  const std::vector<float> x = randn(16 * cols, 61);
  const std::vector<double> h = input_hessian(x.data(), 16, cols);
  expect_error([&] { quantize_rtn(w.data(), rows, cols, {3, 0, ScaleType::fp16}); }, "bits must be 8, 4 or 2 (got 3)");
  expect_error([&] { quantize_rtn(w.data(), rows, cols, {4, -1, ScaleType::fp16}); }, "group must be >= 0");
  expect_error([&] { quantize_rtn(w.data(), rows, cols, {4, 9, ScaleType::fp16}); }, "group must be <= cols = 8");
  expect_error([&] { quantize_rtn(w.data(), 0, cols, {4, 0, ScaleType::fp16}); }, "rows must be > 0");
  expect_error([&] { quantize_rtn(w.data(), rows, -1, {4, 0, ScaleType::fp16}); }, "cols must be > 0");
  expect_error([&] { QuantSpec{2, 0, ScaleType::fp16}.validate(0); }, "cols must be > 0");
  expect_error([&] { pack_codes({0}, 1, 1, 5); }, "bits");
  expect_error([&] { unpack_codes({0}, 1, 1, 16); }, "bits");

  std::vector<float> bad = w;
  bad[1 * cols + 2] = std::nanf("");
  expect_error([&] { quantize_rtn(bad.data(), rows, cols, {4, 0, ScaleType::fp16}); }, "(row 1, col 2)");
  expect_error([&] { quantize_gptq(bad.data(), rows, cols, h, {4, 0, ScaleType::fp16}); }, "(row 1, col 2)");
  bad[1 * cols + 2] = w[1 * cols + 2];
  bad[2 * cols + 7] = -INFINITY;
  expect_error([&] { quantize_rtn(bad.data(), rows, cols, {4, 0, ScaleType::fp16}); }, "(row 2, col 7)");

  const QuantSpec ok{4, 0, ScaleType::fp16};
  expect_error([&] { quantize_gptq(w.data(), rows, cols, std::vector<double>(cols * cols - 1), ok); },
               "hessian has 63 values");
  std::vector<double> hn = h;
  hn[3 * cols + 4] = NAN;
  expect_error([&] { quantize_gptq(w.data(), rows, cols, hn, ok); }, "hessian at (row 3, col 4)");
  std::vector<double> hneg = h;
  hneg[2 * cols + 2] = -1.0;
  expect_error([&] { quantize_gptq(w.data(), rows, cols, hneg, ok); }, "hessian diagonal");
  expect_error([&] { quantize_gptq(w.data(), rows, cols, h, ok, -0.1); }, "damp");
  expect_error([&] { quantize_gptq(w.data(), rows, cols, h, {4, 0, ScaleType::fp16}, NAN); }, "damp");

  expect_error([&] { input_hessian(x.data(), 0, cols); }, "n must be > 0");
  std::vector<float> xbad = x;
  xbad[5 * cols + 1] = NAN;
  expect_error([&] { input_hessian(xbad.data(), 16, cols); }, "(row 5, col 1)");
  const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, ok);
  expect_error([&] { output_nmse(w.data(), q, xbad.data(), 16); }, "(row 5, col 1)");
  expect_error([&] { q.q(rows, 0); }, "outside");
  QuantizedMatrix broken = q;
  broken.scales.pop_back();
  expect_error([&] { broken.dequantize(); }, "scales has");
}

}  // namespace
}  // namespace spikefm
