// Integer GEMV/GEMM for quantized linear layers: y = Ŵ x̂ with int8/int4 weight codes and int8 activations,
// int32 accumulation, one float epilogue per weight group. Torch-free (target spikefm_int_kernels).
//
// What it computes
//   W: (out, in) quantized per row and group of G consecutive columns by ann_ref/weight_quant.h:
//     Ŵ[o, i] = s_w[o, g] · q_w[o, i],  |q_w| ≤ qmax  (int8: 127, int4: 7; int2 codes are stored as int4)
//   x: (T, in) float activations, T tokens (T = 1: GEMV, decode; T = 1..64: GEMM, prefill).
//   1. Dynamic symmetric quantization of x per token t and per weight group g (the same column groups as
//      the weights; one group = the whole row when the weights are per channel):
//        s_x[t, g] = max_{i in g} |x[t, i]| / 127
//        q_x[t, i] = round_half_even(x[t, i] · (127 / max_{i in g} |x[t, i]|))  in [-127, 127]
//      A group whose largest |x| is below 2^-120 (~7.5e-37) is quantized to 0 (s_x = 0); its error is
//      below 2^-120 per element. NaN/Inf in x → spikefm::Error naming (token, column).
//   2. Integer group sums, exact in int32:
//        acc[t, o, g] = Σ_{i in g} q_w[o, i] · q_x[t, i]        |acc| ≤ 127 · 127 · G < 2^31 for G ≤ 131072
//   3. Float epilogue, groups in increasing order, one rounding per operation:
//        y[t, o] = 0;   for g: y[t, o] = y[t, o] + float(acc[t, o, g]) · (s_w[o, g] · s_x[t, g])
//   Every path performs step 3 with the same float operations in the same order (separate multiply and
//   add: the build uses -ffp-contract=off, and the SIMD epilogue uses mul/add intrinsics, never FMA), and
//   steps 1–2 are exact integer work, so all paths return bit-identical y, and a GEMM row equals the GEMV
//   of that token bit for bit.
//
// Error model (y against Ŵ x with the float x; the weight error Ŵ − W belongs to weight_quant.h)
//   y − Ŵx = Ŵ (x̂ − x) + ε_fp,   x̂ = s_x · q_x.
//   - Activation rounding: |x̂_i − x_i| ≤ (1/2 + 1e-4) · Δ_g with the step Δ_g = s_x[t, g] (the 1e-4 covers
//     the float rounding of 127/max and of the product). For inputs not aligned to the grid the error is
//     close to uniform on [−Δ/2, Δ/2], variance Δ²/12, independent across i, so
//        E (y_o − (Ŵx)_o)² ≈ Σ_g Δ_g²/12 · Σ_{i in g} Ŵ[o, i]²
//     e.g. x ~ N(0, σ²), per channel over n columns: NMSE ≈ Δ²/(12 σ²) with Δ = max|x|/127, i.e.
//     ≈ 6e-5 at n = 1024 (max|x| ≈ 3.4σ); groups of 32 shrink Δ (max ≈ 2.4σ): ≈ 3e-5.
//   - Worst case per output: |y_o − (Ŵx)_o| ≤ Σ_g (1/2 + 1e-4) Δ_g Σ_{i in g} |Ŵ[o, i]| + ε_fp.
//   - ε_fp: float(acc) is exact up to 2^24 and rounds once above; the scale product, the product and the
//     add round once each: |ε_fp| ≤ (groups + 3) · 2^-24 · Σ_g |float(acc) · s_w · s_x| (standard
//     recursive-summation bound, first order).
//
// Unsigned × signed products (VNNI vpdpbusd and AVX2 vpmaddubsw multiply u8 by s8)
//   Weight codes are stored offset-binary: u = q_w + 128 (int8, in [1, 255]) or u = q_w + 8 (int4 nibble,
//   in [1, 15]); activations stay signed s8 in [-127, 127]. Then
//        Σ_{i in g} u_i · q_x,i = acc + off · xsum[t, g],    off = 128 (int8) or 8 (int4),  xsum = Σ_{i in g} q_x,i
//   xsum is computed once per token and group while x is quantized, so the correction is one vector
//   subtract per group that does not depend on the output row: no per-row code sums are stored or
//   streamed (the other choice, u8 activations q_x + 128 against s8 weights, needs Σ_i q_w[o, i] for every
//   row and group). The raw VNNI sum may wrap in int32 for very long groups; the difference is still
//   exact because two's-complement wrap cancels when the true acc fits in int32 (bound above).
//   AVX2 vpmaddubsw adds two u8·s8 products into a *saturating* int16:
//   - int4: |u · q_x| ≤ 15 · 127, a pair ≤ 3810; the low- and high-nibble pairs are added in int16
//     (≤ 7620) before vpmaddwd widens to int32: never saturates.
//   - int8: u up to 255 would reach 2 · 255 · 127 = 64770 > 32767, so the AVX2 int8 kernel undoes the
//     offset (u xor 0x80 is q_w as s8) and uses the sign trick vpmaddubsw(|q_x|, sign(q_w, q_x)): both
//     factors have magnitude ≤ 127, a pair ≤ 2 · 127 · 127 = 32258 < 32767: never saturates. This needs
//     q_w, q_x ≠ −128, which the symmetric ranges guarantee (checked when the IntMatrix is built).
//
// Packed layout (IntMatrix), made for the kernels
//   Rows in panels of P = 16 (one 512-bit vector of int32 lanes; the last panel zero-padded), columns in
//   the weight groups, each group zero-padded to Gp = round_up(G, 8) columns (padding: q_w = 0, q_x = 0).
//   int8: per (panel, group, column octet c8) 128 bytes = two 64-byte blocks, quad h = 0, 1; in block h
//     byte r·4 + j = u of (row 16·panel + r, column g·G + 8·c8 + 4·h + j).
//   int4: per (panel, group, column octet c8) 64 bytes; byte r·4 + j holds column 8·c8 + j in its low
//     nibble and column 8·c8 + 4 + j in its high nibble (as u = q_w + 8).
//   So one 64-byte load (int8) or one load + shift + two ANDs (int4, low nibbles = quad 0, high = quad 1)
//   feeds vpdpbusd against the 4 activation bytes of that column quad broadcast to all 16 lanes: each lane
//   accumulates one row, no horizontal reduction, and a panel's bytes are one contiguous stream.
//   Scales: (panels, groups, P) floats; padded rows have scale 0.
//
// Kernel paths (IntKernelPath), chosen at run time (the default build has no -march=native)
//   kPortable    plain C++ loops on the packed layout; runs everywhere.
//   kAvx2        AVX2 vpmaddubsw + vpmaddwd (see saturation above), 2 panels × 1 token (GEMV) or
//                2 panels × 2 tokens (GEMM) per tile.
//   kAvx512Vnni  AVX-512F/BW + VNNI vpdpbusd, 4 panels × 1 token (GEMV) or 2 panels × 4 tokens (GEMM).
//   kAuto        force_int_kernel_path()'s choice if set, else the fastest path this CPU supports
//                (__builtin_cpu_supports). Requesting a path the CPU lacks throws spikefm::Error.
//   One thread; the caller parallelises over layers or tokens if it wants to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <vector>

#include "ann_ref/weight_quant.h"

namespace spikefm {

enum class IntKernelPath { kAuto, kPortable, kAvx2, kAvx512Vnni };

// "auto", "portable", "avx2", "avx512vnni".
const char* int_kernel_path_name(IntKernelPath path);
// Whether this CPU (and OS) can run the path; kAuto and kPortable always can.
bool int_kernel_path_supported(IntKernelPath path);
// kAuto → the forced path if one is set, else the fastest supported; any other path is returned if the
// CPU supports it, else spikefm::Error.
IntKernelPath resolve_int_kernel_path(IntKernelPath path);
// Makes kAuto mean `path` in this process (for tests and benchmarks; kAuto undoes it). Throws when the
// CPU lacks the path.
void force_int_kernel_path(IntKernelPath path);

namespace detail {
// std::allocator with 64-byte (cache line, one zmm) alignment, so 64-byte blocks never split lines.
template <class T>
struct Align64Allocator {
  using value_type = T;
  Align64Allocator() = default;
  template <class U>
  Align64Allocator(const Align64Allocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete (p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const Align64Allocator<U>&) const {
    return true;
  }
};
}  // namespace detail

// Quantized weights in the kernel layout above. Built once per layer from a QuantizedMatrix.
class IntMatrix {
 public:
  static constexpr int kPanelRows = 16;

  IntMatrix() = default;
  // q: int8, int4 or int2 codes (int2 is stored in the int4 layout: exact, 4 bits per weight in memory).
  // Throws spikefm::Error when q is inconsistent (sizes, codes outside [-qmax, qmax], non-finite scales)
  // or its group is longer than kMaxGroup columns.
  explicit IntMatrix(const QuantizedMatrix& q);

  static constexpr int kMaxGroup = 131072;  // 127 · 127 · G < 2^31: int32 group sums are exact

  int rows() const { return rows_; }                  // out
  int cols() const { return cols_; }                  // in
  int code_bits() const { return code_bits_; }        // bits per weight in memory: 8 or 4
  int source_bits() const { return source_bits_; }    // the QuantizedMatrix's bits: 8, 4 or 2
  int group_size() const { return group_; }           // G (cols when per channel)
  int groups() const { return groups_; }              // ceil(cols / G)
  int padded_group() const { return padded_group_; }  // Gp = round_up(G, 8)
  int panels() const { return panels_; }              // ceil(rows / 16)

  int64_t code_bytes() const { return static_cast<int64_t>(codes_.size()); }  // incl. padding
  int64_t scale_bytes() const { return static_cast<int64_t>(scales_.size() * sizeof(float)); }
  // Bytes one product streams from the weights (codes + scales): the GB/s counter of the benchmark.
  int64_t stream_bytes() const { return code_bytes() + scale_bytes(); }

  const uint8_t* codes() const { return codes_.data(); }  // (panels, groups, Gp/8, 128 or 64) bytes
  const float* scales() const { return scales_.data(); }  // (panels, groups, 16)

 private:
  int rows_ = 0, cols_ = 0, code_bits_ = 0, source_bits_ = 0;
  int group_ = 0, groups_ = 0, padded_group_ = 0, panels_ = 0;
  std::vector<uint8_t, detail::Align64Allocator<uint8_t>> codes_;
  std::vector<float, detail::Align64Allocator<float>> scales_;
};

// x quantized for one IntMatrix layout (its cols, G and Gp); reusable across matrices with the same
// columns and group (e.g. the Q, K and V projections of one input).
struct IntActivations {
  int tokens = 0, cols = 0, group = 0, groups = 0, padded_group = 0;
  std::vector<int8_t, detail::Align64Allocator<int8_t>> q;  // (T, groups, Gp), zero in the padding
  std::vector<float> scale;                                 // (T, groups)  s_x
  std::vector<int32_t> sum;                                 // (T, groups)  Σ_{i in g} q_x
};

// x: (T, in) row-major, x.size() must be T · w.cols(). Reuses out's storage. Throws on shape
// mismatch and on NaN/Inf (naming token and column); after an error out's contents are unspecified.
void quantize_activations(const IntMatrix& w, std::span<const float> x, int tokens, IntActivations& out,
                          IntKernelPath path = IntKernelPath::kAuto);

// y = Ŵ x̂ for one token. x: (in), y: (out). Quantizes x into a per-thread workspace.
void int_gemv(const IntMatrix& w, std::span<const float> x, std::span<float> y,
              IntKernelPath path = IntKernelPath::kAuto);
// y = x̂ Ŵᵀ for T tokens. x: (T, in), y: (T, out), row-major.
void int_gemm(const IntMatrix& w, std::span<const float> x, int tokens, std::span<float> y,
              IntKernelPath path = IntKernelPath::kAuto);
// The same from already quantized activations. y: (x.tokens, out).
void int_gemm(const IntMatrix& w, const IntActivations& x, std::span<float> y,
              IntKernelPath path = IntKernelPath::kAuto);
// The exact integer group sums acc[t, o, g] of step 2 (no float epilogue). sums: (T, out, groups).
void int_group_sums(const IntMatrix& w, const IntActivations& x, std::span<int32_t> sums,
                    IntKernelPath path = IntKernelPath::kAuto);

}  // namespace spikefm
