// Tests of ann_ref/int_kernels.h. Independent references:
//   - integer group sums: a plain int64 loop over the codes from weight_quant's unpack_codes (the
//     QuantizedMatrix layout, not the kernel layout) and the quantized activations;
//   - float outputs: the same sums scaled in double; Ŵx from QuantizedMatrix::dequantize() with the float
//     x in double; W x with the original float weights in double;
//   - tolerances: the activation rounding model of int_kernels.h (|x̂ − x| ≤ Δ/2, variance Δ²/12) and the
//     float epilogue bound, recomputed from the data in each case;
//   - extreme cases: closed-form sums (127 · 127 · n) chosen to hit the int16 saturation of vpmaddubsw and
//     the int32 wrap of the offset trick if either were mishandled.
#include "ann_ref/int_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ann_ref/weight_quant.h"
#include "common/error.h"
#include "tests/test_random.h"

namespace spikefm {
namespace {

using test::randn;

std::vector<IntKernelPath> supported_paths() {
  std::vector<IntKernelPath> paths;
  for (IntKernelPath p : {IntKernelPath::kPortable, IntKernelPath::kAvx2, IntKernelPath::kAvx512Vnni})
    if (int_kernel_path_supported(p)) paths.push_back(p);
  return paths;
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no spikefm::Error thrown; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// acc[t, o, g] = Σ_{i in g} q_w[o, i] · q_x[t, i], in int64 from the row-major codes.
std::vector<int64_t> reference_sums(const QuantizedMatrix& q, const IntActivations& xa) {
  const std::vector<int8_t> codes = unpack_codes(q.packed, q.rows, q.cols, q.spec.bits);  // (rows, cols)
  const int G = q.group_size(), groups = q.groups_per_row();
  std::vector<int64_t> sums(static_cast<size_t>(xa.tokens) * q.rows * groups, 0);
  for (int t = 0; t < xa.tokens; ++t)
    for (int o = 0; o < q.rows; ++o)
      for (int i = 0; i < q.cols; ++i) {
        const int g = i / G;
        const int qx = xa.q[(static_cast<size_t>(t) * groups + g) * xa.padded_group + (i - g * G)];
        sums[(static_cast<size_t>(t) * q.rows + o) * groups + g] +=
            int64_t{codes[static_cast<size_t>(o) * q.cols + i]} * qx;
      }
  return sums;
}

// out[o] = Σ_i a[o, i] · x[i] in double. a: (rows, cols).
std::vector<double> matvec(const std::vector<float>& a, const float* x, int rows, int cols) {
  std::vector<double> y(rows, 0.0);
  for (int o = 0; o < rows; ++o)
    for (int i = 0; i < cols; ++i) y[o] += static_cast<double>(a[static_cast<size_t>(o) * cols + i]) * x[i];
  return y;
}

template <class A, class B>
double nmse(const A& y, const B& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return num / den;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---- every path × bits × grouping × odd shapes ------------------------------------------------------

TEST(IntKernels, AllPathsMatchIndependentReferences) {
  const std::vector<IntKernelPath> paths = supported_paths();
  std::printf("[ info     ] int kernel paths tested here:");
  for (IntKernelPath p : paths) std::printf(" %s", int_kernel_path_name(p));
  std::printf("\n");
  uint32_t seed = 1;
  for (int bits : {8, 4, 2})
    for (int group : {0, 32, 64})
      for (int out : {1, 3, 97})
        for (int in : {37, 100, 203}) {
          if (group > in) continue;
          SCOPED_TRACE("int" + std::to_string(bits) + " group " + std::to_string(group) + " out " +
                       std::to_string(out) + " in " + std::to_string(in));
          const std::vector<float> w = randn(static_cast<size_t>(out) * in, ++seed);
          const std::vector<float> x = randn(in, ++seed);
          QuantSpec spec;
          spec.bits = bits;
          spec.group = group;
          const QuantizedMatrix q = quantize_rtn(w.data(), out, in, spec);
          const IntMatrix m(q);
          ASSERT_EQ(m.code_bits(), bits == 8 ? 8 : 4);
          IntActivations xa;
          quantize_activations(m, x, 1, xa, IntKernelPath::kPortable);
          const int groups = q.groups_per_row(), G = q.group_size();
          const std::vector<int64_t> ref = reference_sums(q, xa);

          // Float reference of the epilogue (double) and its rounding bound: float(acc) and three roundings
          // per group, accumulated over `groups` terms (first order): (groups + 3) · 2^-24 · Σ|term|.
          std::vector<double> y_ref(out, 0.0), fp_bound(out, 0.0);
          for (int o = 0; o < out; ++o) {
            double abs_sum = 0;
            for (int g = 0; g < groups; ++g) {
              const double term = static_cast<double>(ref[static_cast<size_t>(o) * groups + g]) *
                                  q.scales[static_cast<size_t>(o) * groups + g] * xa.scale[g];
              y_ref[o] += term;
              abs_sum += std::fabs(term);
            }
            fp_bound[o] = (groups + 3) * 0x1p-24 * abs_sum * 1.01 + 1e-30;
          }

          // Ŵx with the float x, and the activation-rounding bounds of the header.
          const std::vector<float> wq = q.dequantize();
          const std::vector<double> yq = matvec(wq, x.data(), out, in);
          std::vector<double> hard(out, 0.0);
          double pred_err = 0;  // Σ_o Σ_g Δ_g²/12 Σ_{i in g} Ŵ²
          for (int o = 0; o < out; ++o)
            for (int i = 0; i < in; ++i) {
              const double wv = wq[static_cast<size_t>(o) * in + i], step = xa.scale[i / G];
              hard[o] += (0.5 + 1e-4) * step * std::fabs(wv);
              pred_err += step * step / 12.0 * wv * wv;
            }
          double den = 0;
          for (double v : yq) den += v * v;
          const double pred_nmse = pred_err / den;

          std::vector<float> y_first;
          for (IntKernelPath path : paths) {
            SCOPED_TRACE(int_kernel_path_name(path));
            std::vector<int32_t> sums(static_cast<size_t>(out) * groups, -1);
            int_group_sums(m, xa, sums, path);
            for (size_t k = 0; k < sums.size(); ++k) ASSERT_EQ(sums[k], ref[k]) << "sum " << k;

            std::vector<float> y(out, NAN);
            int_gemv(m, x, y, path);
            // Same integer sums and the same float operations in the same order: the same bits.
            if (y_first.empty())
              y_first = y;
            else
              EXPECT_TRUE(same_bits(y, y_first)) << "path results differ in the last bits";
            for (int o = 0; o < out; ++o) {
              EXPECT_NEAR(y[o], y_ref[o], fp_bound[o]) << "row " << o;
              EXPECT_LE(std::fabs(y[o] - yq[o]), hard[o] + fp_bound[o]) << "row " << o;
            }
            // Statistical check where it concentrates: Σ_o e_o² = δᵀ(ŴᵀŴ)δ over ≥ 37 independent
            // uniform δ_i, roughly χ²_k/k with k ≥ 37 around its mean; P(> 2.5 × mean) < 1e-6.
            if (out == 97) {
              EXPECT_LE(nmse(y, yq), 2.5 * pred_nmse) << "predicted " << pred_nmse;
            }
          }
        }
}

// ---- against the original float weights: the cost of int8 vs int4 ----------------------------------

TEST(IntKernels, Int8ErrorFarBelowInt4AgainstOriginalWeights) {
  const int out = 97, in = 256;
  const std::vector<float> w = randn(static_cast<size_t>(out) * in, 11);
  const std::vector<float> x = randn(in, 12);
  const std::vector<double> y_true = matvec(w, x.data(), out, in);
  double den = 0;
  for (double v : y_true) den += v * v;
  for (int group : {0, 32}) {
    double measured[2] = {0, 0};
    int k = 0;
    for (int bits : {8, 4}) {
      SCOPED_TRACE("int" + std::to_string(bits) + " group " + std::to_string(group));
      QuantSpec spec;
      spec.bits = bits;
      spec.group = group;
      const QuantizedMatrix q = quantize_rtn(w.data(), out, in, spec);
      const IntMatrix m(q);
      std::vector<float> y(out);
      int_gemv(m, x, y);
      IntActivations xa;
      quantize_activations(m, x, 1, xa);
      // Predicted error: weight rounding uniform in ±s_w/2 (variance s_w²/12, times x_i²) plus activation
      // rounding (Δ²/12 times Ŵ²), independent; NMSE = their sum over Σ (Wx)².
      const std::vector<float> wq = q.dequantize();
      double pred = 0;
      for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i) {
          const int g = i / q.group_size();
          const double sw = q.scales[static_cast<size_t>(o) * q.groups_per_row() + g], step = xa.scale[g];
          const double wv = wq[static_cast<size_t>(o) * in + i];
          pred += sw * sw / 12.0 * x[i] * x[i] + step * step / 12.0 * wv * wv;
        }
      pred /= den;
      measured[k] = nmse(y, y_true);
      std::printf("[ info     ] int%d group %d vs float W: NMSE %.3g (predicted %.3g)\n", bits, group, measured[k],
                  pred);
      // ~25k independent rounding errors: the measured NMSE sits close to the prediction; 2× is generous.
      EXPECT_LE(measured[k], 2.0 * pred) << "predicted " << pred;
      // Stated bounds for Gaussian data (max |w| of a row ≈ 3.5σ, of a group of 32 ≈ 2.4σ):
      //   int8: (3.5/127)²/12 ≈ 6e-5 weights + ≈ 6e-5 activations → below 5e-4 (4× margin);
      //   int4: (3.5/7)²/12 ≈ 2e-2 → below 5e-2.
      EXPECT_LT(measured[k], bits == 8 ? 5e-4 : 5e-2);
      ++k;
    }
    // Weight error ratio (7/127)² ≈ 1/330; with the shared activation error int8 is still > 20× better.
    EXPECT_LT(20.0 * measured[0], measured[1]) << "int8 " << measured[0] << " int4 " << measured[1];
  }
}

// ---- GEMM = T GEMVs ---------------------------------------------------------------------------------

TEST(IntKernels, GemmRowsEqualGemvOfEachToken) {
  const int out = 97, in = 100;
  const std::vector<float> w = randn(static_cast<size_t>(out) * in, 21);
  for (int bits : {8, 4})
    for (int group : {0, 32}) {
      QuantSpec spec;
      spec.bits = bits;
      spec.group = group;
      const IntMatrix m(quantize_rtn(w.data(), out, in, spec));
      for (int T : {1, 2, 5, 17, 64}) {
        const std::vector<float> x = randn(static_cast<size_t>(T) * in, 100 + T);
        for (IntKernelPath path : supported_paths()) {
          SCOPED_TRACE("int" + std::to_string(bits) + " group " + std::to_string(group) + " T " + std::to_string(T) +
                       " " + int_kernel_path_name(path));
          std::vector<float> y(static_cast<size_t>(T) * out, NAN);
          int_gemm(m, x, T, y, path);
          std::vector<float> stacked;
          for (int t = 0; t < T; ++t) {
            std::vector<float> yt(out, NAN);
            int_gemv(m, std::span<const float>(x).subspan(static_cast<size_t>(t) * in, in), yt, path);
            stacked.insert(stacked.end(), yt.begin(), yt.end());
          }
          // Per token the GEMM does the same integer sums and the same epilogue: identical bits.
          EXPECT_TRUE(same_bits(y, stacked));
          // Activations quantized once and reused (e.g. for Q, K and V) give the same result.
          IntActivations xa;
          quantize_activations(m, x, T, xa, path);
          std::vector<float> y2(y.size(), NAN);
          int_gemm(m, xa, y2, path);
          EXPECT_TRUE(same_bits(y, y2));
        }
      }
    }
}

// ---- activation quantizer against its definition ----------------------------------------------------

TEST(IntKernels, ActivationQuantizerFollowsItsDefinitionOnEveryPath) {
  const int in = 100, T = 3;
  std::vector<float> x = randn(static_cast<size_t>(T) * in, 31, 3.0f);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;                               // token 0, group 1: all zero
  for (int i = 64; i < 96; ++i) x[i] *= 1e-38f;                            // token 0, group 2: below 2^-120 → 0
  for (int i = 0; i < 32; ++i) x[in + i] = (i % 2 ? 1.0f : -1.0f) * 0.5f;  // token 1, group 0: ±0.5 → ±127
  QuantSpec spec;
  spec.bits = 8;
  spec.group = 32;
  const std::vector<float> w = randn(static_cast<size_t>(5) * in, 32);
  const IntMatrix m(quantize_rtn(w.data(), 5, in, spec));
  IntActivations first;
  for (IntKernelPath path : supported_paths()) {
    SCOPED_TRACE(int_kernel_path_name(path));
    IntActivations xa;
    quantize_activations(m, x, T, xa, path);
    ASSERT_EQ(xa.groups, 4);
    ASSERT_EQ(xa.padded_group, 32);
    for (int t = 0; t < T; ++t)
      for (int g = 0; g < xa.groups; ++g) {
        const int c0 = g * 32, n = std::min(32, in - c0);
        float amax = 0;
        for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[static_cast<size_t>(t) * in + c0 + i]));
        const float s = xa.scale[static_cast<size_t>(t) * xa.groups + g];
        const int8_t* q = xa.q.data() + (static_cast<size_t>(t) * xa.groups + g) * xa.padded_group;
        if (amax < 0x1p-120f) {
          EXPECT_EQ(s, 0.0f);
          for (int i = 0; i < 32; ++i) EXPECT_EQ(q[i], 0);
          continue;
        }
        EXPECT_NEAR(s, amax / 127.0, amax / 127.0 * 0x1p-23);  // s_x = max|x| / 127 (one rounding)
        int sum = 0, reached = 0;
        for (int i = 0; i < n; ++i) {
          const double xi = x[static_cast<size_t>(t) * in + c0 + i];
          EXPECT_LE(std::abs(q[i]), 127);
          EXPECT_LE(std::fabs(xi - static_cast<double>(s) * q[i]), (0.5 + 1e-4) * s) << "col " << c0 + i;
          if (std::fabs(xi) == amax) reached += std::abs(q[i]) == 127;
          sum += q[i];
        }
        EXPECT_GE(reached, 1) << "the largest |x| maps to ±127";
        for (int i = n; i < 32; ++i) EXPECT_EQ(q[i], 0) << "padding";
        EXPECT_EQ(xa.sum[static_cast<size_t>(t) * xa.groups + g], sum);
      }
    // token 1, group 0 is exactly ±0.5 → codes ±127, sum 0
    const int8_t* q10 = xa.q.data() + static_cast<size_t>(1) * xa.groups * xa.padded_group;
    for (int i = 0; i < 32; ++i) EXPECT_EQ(q10[i], i % 2 ? 127 : -127);
    if (first.q.empty()) {
      first = xa;
    } else {  // integer rounding and an exact max: identical on every path
      EXPECT_TRUE(std::equal(xa.q.begin(), xa.q.end(), first.q.begin()));
      EXPECT_EQ(xa.scale, first.scale);
      EXPECT_EQ(xa.sum, first.sum);
    }
  }
}

// ---- extremes: no int16 saturation, no int32 wrap ---------------------------------------------------

// A QuantizedMatrix from explicit codes and unit scales (fp32).
QuantizedMatrix from_codes(const std::vector<int8_t>& codes, int rows, int cols, int bits) {
  QuantizedMatrix q;
  q.rows = rows;
  q.cols = cols;
  q.spec.bits = bits;
  q.spec.group = 0;
  q.spec.scale = ScaleType::fp32;
  q.packed = pack_codes(codes, rows, cols, bits);
  q.scales.assign(static_cast<size_t>(rows), 1.0f);
  return q;
}

TEST(IntKernels, ExtremeCodesGiveClosedFormSumsOnEveryPath) {
  // Rows: all +qmax, all -qmax, alternating +qmax/-qmax. x = all +1 (q_x = +127) or alternating ±1.
  // Every adjacent product pair is ±qmax·127: for int8 a u8·s8 pair with the offset (255·127 twice)
  // would saturate int16, and the sign trick's 2·127·127 = 32258 must not.
  const int in = 4096;
  for (int bits : {8, 4}) {
    const int qmax = bits == 8 ? 127 : 7;
    std::vector<int8_t> codes(static_cast<size_t>(3) * in);
    for (int i = 0; i < in; ++i) {
      codes[i] = static_cast<int8_t>(qmax);
      codes[in + i] = static_cast<int8_t>(-qmax);
      codes[2 * in + i] = static_cast<int8_t>(i % 2 ? -qmax : qmax);
    }
    const IntMatrix m(from_codes(codes, 3, in, bits));
    std::vector<float> x(static_cast<size_t>(2) * in);
    for (int i = 0; i < in; ++i) {
      x[i] = 1.0f;
      x[in + i] = i % 2 ? -1.0f : 1.0f;
    }
    const int64_t full = int64_t{qmax} * 127 * in;
    const int64_t want[2][3] = {{full, -full, 0}, {0, 0, full}};
    for (IntKernelPath path : supported_paths()) {
      SCOPED_TRACE("int" + std::to_string(bits) + " " + int_kernel_path_name(path));
      IntActivations xa;
      quantize_activations(m, x, 2, xa, path);
      std::vector<int32_t> sums(6);
      int_group_sums(m, xa, sums, path);
      for (int t = 0; t < 2; ++t)
        for (int o = 0; o < 3; ++o) EXPECT_EQ(sums[t * 3 + o], want[t][o]) << "token " << t << " row " << o;
    }
  }
}

TEST(IntKernels, LongestGroupSumIsExactDespiteOffsetWrap) {
  // G = kMaxGroup = 131072, codes +127, q_x = +127: acc = 127·127·131072 = 2,114,060,288 < 2^31, while the
  // VNNI raw sum with the offset, 255·127·131072 ≈ 4.2e9, wraps in int32 and must cancel exactly.
  const int in = IntMatrix::kMaxGroup;
  const IntMatrix m(from_codes(std::vector<int8_t>(in, 127), 1, in, 8));
  const std::vector<float> x(in, 2.0f);
  for (IntKernelPath path : supported_paths()) {
    SCOPED_TRACE(int_kernel_path_name(path));
    IntActivations xa;
    quantize_activations(m, x, 1, xa, path);
    std::vector<int32_t> sums(1);
    int_group_sums(m, xa, sums, path);
    EXPECT_EQ(sums[0], int64_t{127} * 127 * in);
  }
  // One more column is refused at build time.
  const std::vector<float> w(static_cast<size_t>(in) + 1, 1.0f);
  expect_error([&] { IntMatrix(quantize_rtn(w.data(), 1, in + 1, QuantSpec{})); }, "exceeds 131072");
}

// ---- bad input --------------------------------------------------------------------------------------

TEST(IntKernels, BadShapesAndValuesThrowNamedErrors) {
  const int out = 7, in = 40;
  const std::vector<float> w = randn(static_cast<size_t>(out) * in, 41);
  QuantSpec spec;
  spec.group = 32;
  const QuantizedMatrix q = quantize_rtn(w.data(), out, in, spec);
  const IntMatrix m(q);
  std::vector<float> x(in, 0.5f), y(out);

  std::vector<float> x_short(in - 1, 0.5f);
  expect_error([&] { int_gemv(m, x_short, y); }, "x has 39 values, expected in = 40");
  std::vector<float> y_long(out + 1);
  expect_error([&] { int_gemv(m, x, y_long); }, "y has 8 values, expected out = 7");
  expect_error([&] { int_gemm(m, x, 2, y); }, "x has 40 values, expected tokens x in = 2 x 40");
  std::vector<float> x2(static_cast<size_t>(2) * in, 0.5f);
  expect_error([&] { int_gemm(m, x2, 2, y); }, "y has 7 values, expected tokens x out = 14");
  expect_error([&] { int_gemv(IntMatrix(), x, y); }, "default-constructed");

  IntActivations xa;
  quantize_activations(m, x, 1, xa);
  std::vector<int32_t> sums(out);  // needs out x groups = 14
  expect_error([&] { int_group_sums(m, xa, sums); }, "expected tokens x out x groups = 14");
  QuantSpec other = spec;
  other.group = 0;
  const IntMatrix m_pc(quantize_rtn(w.data(), out, in, other));
  expect_error([&] { int_gemm(m_pc, xa, y); }, "activations were quantized for in = 40, group 32");

  std::vector<float> x_bad = x2;
  x_bad[in + 5] = NAN;
  expect_error([&] { int_gemm(m, x_bad, 2, std::span<float>(x2.data(), 14)); }, "x at (token 1, col 5) is nan");
  x_bad[in + 5] = INFINITY;
  expect_error([&] { quantize_activations(m, x_bad, 2, xa); }, "x at (token 1, col 5) is inf");

  QuantizedMatrix truncated = q;
  truncated.packed.pop_back();
  expect_error([&] { IntMatrix{truncated}; }, "packed has 279 bytes");
  QuantizedMatrix nan_scale = q;
  nan_scale.scales[3] = NAN;  // row 1, group 1
  expect_error([&] { IntMatrix{nan_scale}; }, "scale of row 1, group 1 is nan");
}

TEST(IntKernels, ForcedPathIsWhatAutoResolvesTo) {
  force_int_kernel_path(IntKernelPath::kPortable);
  EXPECT_EQ(resolve_int_kernel_path(IntKernelPath::kAuto), IntKernelPath::kPortable);
  force_int_kernel_path(IntKernelPath::kAuto);
  EXPECT_NE(resolve_int_kernel_path(IntKernelPath::kAuto), IntKernelPath::kAuto);
  for (IntKernelPath p : {IntKernelPath::kAvx2, IntKernelPath::kAvx512Vnni})
    if (!int_kernel_path_supported(p)) expect_error([&] { force_int_kernel_path(p); }, "does not support it");
}

}  // namespace
}  // namespace spikefm
