// Integer GEMV/GEMM: the kernel layout, activation quantization, run-time dispatch and the portable,
// AVX2 and AVX-512 VNNI kernels. See int_kernels.h for the math, the layout and the error model.
//
// Every path computes the same integer group sums (exact) and runs the same float epilogue
//   y = y + float(acc - off · xsum) · (s_w · s_x)          (groups in order; separate mul and add)
// so results are bit-identical across paths. SIMD code is compiled with target pragmas and runs only after
// resolve_int_kernel_path() has checked the CPU.
#include "ann_ref/int_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/error.h"

namespace spikefm {

namespace {

constexpr int kP = IntMatrix::kPanelRows;

// ---- path selection ---------------------------------------------------------------------------------

struct CpuFeatures {
  bool avx2 = false;
  bool avx512_vnni = false;
};

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.avx512_vnni =
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
#endif
    return f;
  }();
  return features;
}

std::atomic<IntKernelPath> g_forced_path{IntKernelPath::kAuto};

std::string shape_str(int64_t a, int64_t b) {
  std::string s = "(";  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on "(" + std::string
  s += std::to_string(a);
  s += ", ";
  s += std::to_string(b);
  s += ")";
  return s;
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Raw views handed to the kernels (all shapes checked by the public functions).
struct Kernel {
  const uint8_t* codes = nullptr;  // (panels, groups, Gp/8, octet_bytes)
  const float* wscale = nullptr;   // (panels, groups, 16)
  int out = 0, groups = 0, gp = 0, panels = 0, tokens = 0;
  int64_t group_bytes = 0;        // one (panel, group) block
  int64_t panel_bytes = 0;        // groups · group_bytes
  const int8_t* xq = nullptr;     // (T, groups, Gp)
  const float* xscale = nullptr;  // (T, groups)
  const int32_t* xsum = nullptr;  // (T, groups)
  float* y = nullptr;             // (T, out)       float epilogue
  int32_t* sums = nullptr;        // (T, out, groups) integer sums instead
  int valid_rows(int panel) const { return std::min(kP, out - kP * panel); }
};

// ---- activation quantization ------------------------------------------------------------------------
// One token: per group, max |x| from the float bit patterns (for x ≥ 0 the integer order of the bits is
// the float order, NaN/Inf are ≥ 0x7f800000; an integer max reduction vectorizes and is exact), then
// q = round-half-even(x · 127/max) by the 1.5·2^23 trick (exact for |v| < 2^22; here |v| ≤ 127.0001).
// Returns false when the token holds a NaN/Inf. Inlined into each target's wrapper, so the compiler
// vectorizes it for that ISA; integer work and one rounding per element give the same bits everywhere.
[[gnu::always_inline]] inline bool quantize_token(const float* x, int cols, int G, int groups, int Gp, int8_t* q,
                                                  float* scale, int32_t* sum) {
  for (int g = 0; g < groups; ++g) {
    const int c0 = g * G, n = std::min(G, cols - c0);
    const float* xs = x + c0;  // (n)
    uint32_t mbits = 0;
    for (int i = 0; i < n; ++i) {
      uint32_t b;
      std::memcpy(&b, xs + i, sizeof b);
      b &= 0x7fffffffu;
      mbits = b > mbits ? b : mbits;
    }
    if (mbits >= 0x7f800000u) return false;
    float amax;
    std::memcpy(&amax, &mbits, sizeof amax);
    int8_t* qs = q + static_cast<int64_t>(g) * Gp;  // (Gp)
    if (amax < 0x1p-120f) {                         // 127 / amax would overflow: the group is ~0 (see the header)
      std::memset(qs, 0, static_cast<size_t>(Gp));
      scale[g] = 0.0f;
      sum[g] = 0;
      continue;
    }
    const float inv = 127.0f / amax;
    int32_t s = 0;
    for (int i = 0; i < n; ++i) {
      float v = xs[i] * inv;
      v = (v + 0x1.8p23f) - 0x1.8p23f;  // round half to even (default rounding mode)
      const auto qi = static_cast<int32_t>(v);
      qs[i] = static_cast<int8_t>(qi);
      s += qi;
    }
    for (int i = n; i < Gp; ++i) qs[i] = 0;
    scale[g] = amax / 127.0f;
    sum[g] = s;
  }
  return true;
}

// Returns the first token with a NaN/Inf, or -1.
int quantize_tokens_portable(const float* x, int T, int cols, int G, int groups, int Gp, int8_t* q, float* scale,
                             int32_t* sum) {
  for (int t = 0; t < T; ++t)
    if (!quantize_token(x + static_cast<int64_t>(t) * cols, cols, G, groups, Gp,
                        q + static_cast<int64_t>(t) * groups * Gp, scale + static_cast<int64_t>(t) * groups,
                        sum + static_cast<int64_t>(t) * groups))
      return t;
  return -1;
}

__attribute__((target("avx2"))) int quantize_tokens_avx2(const float* x, int T, int cols, int G, int groups, int Gp,
                                                         int8_t* q, float* scale, int32_t* sum) {
  for (int t = 0; t < T; ++t)
    if (!quantize_token(x + static_cast<int64_t>(t) * cols, cols, G, groups, Gp,
                        q + static_cast<int64_t>(t) * groups * Gp, scale + static_cast<int64_t>(t) * groups,
                        sum + static_cast<int64_t>(t) * groups))
      return t;
  return -1;
}

__attribute__((target("avx512f,avx512bw"))) int quantize_tokens_avx512(const float* x, int T, int cols, int G,
                                                                       int groups, int Gp, int8_t* q, float* scale,
                                                                       int32_t* sum) {
  for (int t = 0; t < T; ++t)
    if (!quantize_token(x + static_cast<int64_t>(t) * cols, cols, G, groups, Gp,
                        q + static_cast<int64_t>(t) * groups * Gp, scale + static_cast<int64_t>(t) * groups,
                        sum + static_cast<int64_t>(t) * groups))
      return t;
  return -1;
}

// ---- portable kernel --------------------------------------------------------------------------------
// One panel × one token at a time, straight from the packed layout; the compiler may vectorize the
// 16-row inner loops for the baseline ISA.
template <bool kI4, bool kSums>
void run_portable(const Kernel& k) {
  const int octets = k.gp / 8;
  for (int p = 0; p < k.panels; ++p) {
    const int valid = k.valid_rows(p);
    for (int t = 0; t < k.tokens; ++t) {
      float yv[kP] = {};
      for (int g = 0; g < k.groups; ++g) {
        int32_t acc[kP] = {};
        const uint8_t* w = k.codes + p * k.panel_bytes + g * k.group_bytes;
        const int8_t* x = k.xq + (static_cast<int64_t>(t) * k.groups + g) * k.gp;  // (Gp)
        for (int c = 0; c < octets; ++c)
          for (int h = 0; h < 2; ++h) {
            const int8_t* xh = x + 8 * c + 4 * h;  // the column quad
            const uint8_t* blk = kI4 ? w + 64 * c : w + 128 * c + 64 * h;
            for (int r = 0; r < kP; ++r)
              for (int j = 0; j < 4; ++j) {
                const int code = kI4 ? ((blk[4 * r + j] >> (4 * h)) & 15) - 8 : blk[4 * r + j] - 128;
                acc[r] += code * xh[j];
              }
          }
        const float sx = k.xscale[static_cast<int64_t>(t) * k.groups + g];
        const float* sw = k.wscale + (static_cast<int64_t>(p) * k.groups + g) * kP;  // (16)
        for (int r = 0; r < valid; ++r) {
          if constexpr (kSums)
            k.sums[(static_cast<int64_t>(t) * k.out + p * kP + r) * k.groups + g] = acc[r];
          else
            yv[r] = yv[r] + static_cast<float>(acc[r]) * (sw[r] * sx);
        }
      }
      if constexpr (!kSums)
        for (int r = 0; r < valid; ++r) k.y[static_cast<int64_t>(t) * k.out + p * kP + r] = yv[r];
    }
  }
}

}  // namespace

// ---- AVX2 kernels -----------------------------------------------------------------------------------
// A panel is two 8-lane halves (rows 0-7, 8-15). Tile: NP panels × NT tokens; int32 accumulators in
// registers for one group, the float y accumulators in a small stack buffer (touched once per group).

#pragma GCC push_options
#pragma GCC target("avx2")

namespace {

inline __m256i bcast4_avx2(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

template <int NP, int NT, bool kI4, bool kSums>
void tile_avx2(const Kernel& k, int p0, int t0) {
  alignas(32) float yacc[NP][NT][kP] = {};
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i nib = _mm256_set1_epi8(0x0F);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const int octets = k.gp / 8;
  for (int g = 0; g < k.groups; ++g) {
    __m256i acc[NP][2][NT];
    for (int p = 0; p < NP; ++p)
      for (int h = 0; h < 2; ++h)
        for (int t = 0; t < NT; ++t) acc[p][h][t] = _mm256_setzero_si256();
    const uint8_t* w[NP];
    for (int p = 0; p < NP; ++p) w[p] = k.codes + (p0 + p) * k.panel_bytes + g * k.group_bytes;
    const int8_t* x[NT];
    for (int t = 0; t < NT; ++t) x[t] = k.xq + (static_cast<int64_t>(t0 + t) * k.groups + g) * k.gp;
    for (int c = 0; c < octets; ++c) {
      __m256i xa[NT], xb[NT];  // activation quads 0 and 1 of the octet, broadcast
      for (int t = 0; t < NT; ++t) {
        xa[t] = bcast4_avx2(x[t] + 8 * c);
        xb[t] = bcast4_avx2(x[t] + 8 * c + 4);
      }
      if constexpr (kI4) {
        // u in [1, 15] (u8) × q_x (s8): pairs ≤ 3810, lo + hi ≤ 7620 in int16: no saturation.
        for (int p = 0; p < NP; ++p)
          for (int h = 0; h < 2; ++h) {
            const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(w[p] + 64 * c + 32 * h));
            const __m256i lo = _mm256_and_si256(b, nib);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), nib);
            for (int t = 0; t < NT; ++t) {
              const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xa[t]), _mm256_maddubs_epi16(hi, xb[t]));
              acc[p][h][t] = _mm256_add_epi32(acc[p][h][t], _mm256_madd_epi16(s16, ones));
            }
          }
      } else {
        // Sign trick: maddubs(|q_x|, sign(q_w, q_x)); both ≤ 127 in magnitude, pairs ≤ 32258: no saturation.
        __m256i axa[NT], axb[NT];
        for (int t = 0; t < NT; ++t) {
          axa[t] = _mm256_abs_epi8(xa[t]);
          axb[t] = _mm256_abs_epi8(xb[t]);
        }
        for (int p = 0; p < NP; ++p)
          for (int h = 0; h < 2; ++h) {
            const uint8_t* blk = w[p] + 128 * c + 32 * h;
            const __m256i wa = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk)), flip);
            const __m256i wb = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 64)), flip);
            for (int t = 0; t < NT; ++t) {
              const __m256i sa = _mm256_maddubs_epi16(axa[t], _mm256_sign_epi8(wa, xa[t]));
              const __m256i sb = _mm256_maddubs_epi16(axb[t], _mm256_sign_epi8(wb, xb[t]));
              acc[p][h][t] = _mm256_add_epi32(
                  acc[p][h][t], _mm256_add_epi32(_mm256_madd_epi16(sa, ones), _mm256_madd_epi16(sb, ones)));
            }
          }
      }
    }
    // Epilogue of group g (the int8 path has no offset to remove).
    for (int t = 0; t < NT; ++t) {
      const int64_t xi = static_cast<int64_t>(t0 + t) * k.groups + g;
      const __m256i corr = _mm256_set1_epi32(kI4 ? 8 * k.xsum[xi] : 0);
      const __m256 sx = _mm256_set1_ps(k.xscale[xi]);
      for (int p = 0; p < NP; ++p)
        for (int h = 0; h < 2; ++h) {
          const __m256i isum = _mm256_sub_epi32(acc[p][h][t], corr);
          if constexpr (kSums) {
            alignas(32) int32_t tmp[8];
            _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), isum);
            const int valid = k.valid_rows(p0 + p) - 8 * h;
            for (int r = 0; r < std::min(8, valid); ++r)
              k.sums[(static_cast<int64_t>(t0 + t) * k.out + (p0 + p) * kP + 8 * h + r) * k.groups + g] = tmp[r];
          } else {
            const __m256 sw = _mm256_load_ps(k.wscale + ((static_cast<int64_t>(p0) + p) * k.groups + g) * kP + 8 * h);
            float* yp = yacc[p][t] + 8 * h;
            const __m256 prod = _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(sw, sx));
            _mm256_store_ps(yp, _mm256_add_ps(_mm256_load_ps(yp), prod));
          }
        }
    }
  }
  if constexpr (!kSums)
    for (int p = 0; p < NP; ++p)
      for (int t = 0; t < NT; ++t)
        std::memcpy(k.y + static_cast<int64_t>(t0 + t) * k.out + (p0 + p) * kP, yacc[p][t],
                    sizeof(float) * static_cast<size_t>(k.valid_rows(p0 + p)));
}

template <int NP, bool kI4, bool kSums>
void tile_avx2_nt(const Kernel& k, int p0, int t0, int nt) {
  switch (nt) {
    case 1:
      tile_avx2<NP, 1, kI4, kSums>(k, p0, t0);
      break;
    default:
      tile_avx2<NP, 2, kI4, kSums>(k, p0, t0);
      break;
  }
}

template <bool kI4, bool kSums>
void run_avx2(const Kernel& k) {
  for (int p = 0; p < k.panels; p += 2) {
    const int np = std::min(2, k.panels - p);
    for (int t = 0; t < k.tokens; t += 2) {
      const int nt = std::min(2, k.tokens - t);
      if (np == 2)
        tile_avx2_nt<2, kI4, kSums>(k, p, t, nt);
      else
        tile_avx2_nt<1, kI4, kSums>(k, p, t, nt);
    }
  }
}

}  // namespace

#pragma GCC pop_options

// ---- AVX-512 VNNI kernels ---------------------------------------------------------------------------
// A panel is one 16-lane vector. Tile: NP panels × NT tokens with the int32 and float accumulators in
// registers; with fewer than 8 independent accumulators (GEMV) the two column quads of an octet go to
// separate accumulators (added, exactly, in the epilogue) so more vpdpbusd chains run in parallel.

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")
// GCC 12's _mm512_cvtepi32_ps passes a deliberately undefined vector (`__m512 __Y = __Y;`) and then
// warns about it; the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

inline __m512i bcast4_avx512(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

template <int NP, int NT, bool kI4, bool kSums>
void tile_avx512(const Kernel& k, int p0, int t0) {
  constexpr bool kSplit = NP * NT < 8;
  constexpr int kOff = kI4 ? 8 : 128;
  __m512 yacc[NP][NT];
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) yacc[p][t] = _mm512_setzero_ps();
  const __m512i nib = _mm512_set1_epi8(0x0F);
  const int octets = k.gp / 8;
  for (int g = 0; g < k.groups; ++g) {
    __m512i acc_a[NP][NT], acc_b[NP][NT];
    for (int p = 0; p < NP; ++p)
      for (int t = 0; t < NT; ++t) acc_a[p][t] = acc_b[p][t] = _mm512_setzero_si512();
    const uint8_t* w[NP];
    for (int p = 0; p < NP; ++p) w[p] = k.codes + (p0 + p) * k.panel_bytes + g * k.group_bytes;
    const int8_t* x[NT];
    for (int t = 0; t < NT; ++t) x[t] = k.xq + (static_cast<int64_t>(t0 + t) * k.groups + g) * k.gp;
    for (int c = 0; c < octets; ++c) {
      __m512i xa[NT], xb[NT];
      for (int t = 0; t < NT; ++t) {
        xa[t] = bcast4_avx512(x[t] + 8 * c);
        xb[t] = bcast4_avx512(x[t] + 8 * c + 4);
      }
      for (int p = 0; p < NP; ++p) {
        __m512i wa, wb;
        if constexpr (kI4) {
          const __m512i b = _mm512_load_si512(w[p] + 64 * c);
          wa = _mm512_and_si512(b, nib);
          wb = _mm512_and_si512(_mm512_srli_epi16(b, 4), nib);
        } else {
          wa = _mm512_load_si512(w[p] + 128 * c);
          wb = _mm512_load_si512(w[p] + 128 * c + 64);
        }
        for (int t = 0; t < NT; ++t) {
          acc_a[p][t] = _mm512_dpbusd_epi32(acc_a[p][t], wa, xa[t]);
          if constexpr (kSplit)
            acc_b[p][t] = _mm512_dpbusd_epi32(acc_b[p][t], wb, xb[t]);
          else
            acc_a[p][t] = _mm512_dpbusd_epi32(acc_a[p][t], wb, xb[t]);
        }
      }
    }
    // Epilogue of group g: remove the offset, then y += float(acc) · (s_w · s_x).
    for (int t = 0; t < NT; ++t) {
      const int64_t xi = static_cast<int64_t>(t0 + t) * k.groups + g;
      const __m512i corr = _mm512_set1_epi32(kOff * k.xsum[xi]);
      const __m512 sx = _mm512_set1_ps(k.xscale[xi]);
      for (int p = 0; p < NP; ++p) {
        const __m512i raw = kSplit ? _mm512_add_epi32(acc_a[p][t], acc_b[p][t]) : acc_a[p][t];
        const __m512i isum = _mm512_sub_epi32(raw, corr);
        if constexpr (kSums) {
          alignas(64) int32_t tmp[kP];
          _mm512_store_si512(tmp, isum);
          const int valid = k.valid_rows(p0 + p);
          for (int r = 0; r < valid; ++r)
            k.sums[(static_cast<int64_t>(t0 + t) * k.out + (p0 + p) * kP + r) * k.groups + g] = tmp[r];
        } else {
          const __m512 sw = _mm512_load_ps(k.wscale + ((static_cast<int64_t>(p0) + p) * k.groups + g) * kP);
          yacc[p][t] = _mm512_add_ps(yacc[p][t], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(sw, sx)));
        }
      }
    }
  }
  if constexpr (!kSums)
    for (int p = 0; p < NP; ++p) {
      const auto mask = static_cast<__mmask16>((1u << k.valid_rows(p0 + p)) - 1u);
      for (int t = 0; t < NT; ++t)
        _mm512_mask_storeu_ps(k.y + static_cast<int64_t>(t0 + t) * k.out + (p0 + p) * kP, mask, yacc[p][t]);
    }
}

template <int NP, bool kI4, bool kSums>
void tile_avx512_nt(const Kernel& k, int p0, int t0, int nt) {
  switch (nt) {
    case 1:
      tile_avx512<NP, 1, kI4, kSums>(k, p0, t0);
      break;
    case 2:
      tile_avx512<NP, 2, kI4, kSums>(k, p0, t0);
      break;
    case 3:
      tile_avx512<NP, 3, kI4, kSums>(k, p0, t0);
      break;
    default:
      tile_avx512<NP, 4, kI4, kSums>(k, p0, t0);
      break;
  }
}

template <bool kI4, bool kSums>
void run_avx512(const Kernel& k) {
  if (k.tokens == 1) {  // GEMV: 4 panels (64 rows) per tile, one weight stream each
    int p = 0;
    for (; p + 4 <= k.panels; p += 4) tile_avx512<4, 1, kI4, kSums>(k, p, 0);
    if (p + 2 <= k.panels) {
      tile_avx512<2, 1, kI4, kSums>(k, p, 0);
      p += 2;
    }
    if (p < k.panels) tile_avx512<1, 1, kI4, kSums>(k, p, 0);
    return;
  }
  // GEMM: 2 panels × 4 tokens; the weight tile stays in L1 while the token tiles pass over it.
  for (int p = 0; p < k.panels; p += 2) {
    const int np = std::min(2, k.panels - p);
    for (int t = 0; t < k.tokens; t += 4) {
      const int nt = std::min(4, k.tokens - t);
      if (np == 2)
        tile_avx512_nt<2, kI4, kSums>(k, p, t, nt);
      else
        tile_avx512_nt<1, kI4, kSums>(k, p, t, nt);
    }
  }
}

}  // namespace

#pragma GCC diagnostic pop
#pragma GCC pop_options

// ---- public API -------------------------------------------------------------------------------------

const char* int_kernel_path_name(IntKernelPath path) {
  switch (path) {
    case IntKernelPath::kAuto:
      return "auto";
    case IntKernelPath::kPortable:
      return "portable";
    case IntKernelPath::kAvx2:
      return "avx2";
    case IntKernelPath::kAvx512Vnni:
      return "avx512vnni";
  }
  return "unknown";
}

bool int_kernel_path_supported(IntKernelPath path) {
  switch (path) {
    case IntKernelPath::kAuto:
    case IntKernelPath::kPortable:
      return true;
    case IntKernelPath::kAvx2:
      return cpu_features().avx2;
    case IntKernelPath::kAvx512Vnni:
      return cpu_features().avx512_vnni;
  }
  return false;
}

IntKernelPath resolve_int_kernel_path(IntKernelPath path) {
  if (path == IntKernelPath::kAuto) {
    const IntKernelPath forced = g_forced_path.load(std::memory_order_relaxed);
    if (forced != IntKernelPath::kAuto) return forced;
    if (int_kernel_path_supported(IntKernelPath::kAvx512Vnni)) return IntKernelPath::kAvx512Vnni;
    if (int_kernel_path_supported(IntKernelPath::kAvx2)) return IntKernelPath::kAvx2;
    return IntKernelPath::kPortable;
  }
  if (!int_kernel_path_supported(path))
    throw Error(std::string("selecting the int kernel path '") + int_kernel_path_name(path) + "'",
                "this CPU does not support it", "use IntKernelPath::kAuto, which picks the fastest supported path");
  return path;
}

void force_int_kernel_path(IntKernelPath path) {
  if (path != IntKernelPath::kAuto) resolve_int_kernel_path(path);  // throws when unsupported
  g_forced_path.store(path, std::memory_order_relaxed);
}

IntMatrix::IntMatrix(const QuantizedMatrix& q) {
  const std::string what = "building the int kernel layout of a " + shape_str(q.rows, q.cols) + " int" +
                           std::to_string(q.spec.bits) + " matrix";
  if (q.rows <= 0 || q.cols <= 0)
    throw Error(what, "rows and cols must be > 0", "quantize a non-empty matrix with quantize_rtn/quantize_gptq");
  try {
    q.spec.validate(q.cols);
  } catch (const Error& e) {
    throw e.with_context(what);
  }
  const size_t want_packed = static_cast<size_t>(q.rows) * q.bytes_per_row();
  const size_t want_scales = static_cast<size_t>(q.rows) * q.groups_per_row();
  if (q.packed.size() != want_packed)
    throw Error(what,
                "packed has " + std::to_string(q.packed.size()) +
                    " bytes, expected rows x bytes_per_row = " + std::to_string(want_packed),
                "rebuild the QuantizedMatrix with quantize_rtn/quantize_gptq");
  if (q.scales.size() != want_scales)
    throw Error(what,
                "scales has " + std::to_string(q.scales.size()) +
                    " values, expected rows x groups = " + std::to_string(want_scales),
                "rebuild the QuantizedMatrix with quantize_rtn/quantize_gptq");
  if (q.group_size() > kMaxGroup)
    throw Error(what,
                "group of " + std::to_string(q.group_size()) + " columns exceeds " + std::to_string(kMaxGroup) +
                    " (int32 group sums would overflow)",
                "quantize with QuantSpec.group <= 131072");
  std::vector<int8_t> codes;  // (rows, cols); unpack_codes refuses -2^(b-1), so |code| <= qmax
  try {
    codes = unpack_codes(q.packed, q.rows, q.cols, q.spec.bits);
  } catch (const Error& e) {
    throw e.with_context(what);
  }
  for (int r = 0; r < q.rows; ++r)
    for (int g = 0; g < q.groups_per_row(); ++g) {
      const float s = q.scales[static_cast<size_t>(r) * q.groups_per_row() + g];
      if (!std::isfinite(s))
        throw Error(what, "scale of row " + std::to_string(r) + ", group " + std::to_string(g) + " is " + num(s),
                    "fix the layer before quantizing");
    }

  rows_ = q.rows;
  cols_ = q.cols;
  source_bits_ = q.spec.bits;
  code_bits_ = q.spec.bits == 8 ? 8 : 4;
  group_ = q.group_size();
  groups_ = q.groups_per_row();
  padded_group_ = (group_ + 7) / 8 * 8;
  panels_ = (rows_ + kP - 1) / kP;
  const bool i4 = code_bits_ == 4;
  const int octets = padded_group_ / 8;
  const int64_t octet_bytes = i4 ? 64 : 128;
  const int64_t group_bytes = octets * octet_bytes;
  codes_.assign(static_cast<size_t>(panels_) * groups_ * group_bytes, 0);
  scales_.assign(static_cast<size_t>(panels_) * groups_ * kP, 0.0f);
  // The code of (row o, column g·G + cc), or 0 in the padding.
  auto code_at = [&](int o, int g, int cc) -> int {
    const int col = g * group_ + cc;
    if (o >= rows_ || cc >= group_ || col >= cols_) return 0;
    return codes[static_cast<size_t>(o) * cols_ + col];
  };
  for (int p = 0; p < panels_; ++p)
    for (int g = 0; g < groups_; ++g) {
      uint8_t* blk = codes_.data() + (static_cast<int64_t>(p) * groups_ + g) * group_bytes;
      for (int c = 0; c < octets; ++c)
        for (int r = 0; r < kP; ++r)
          for (int j = 0; j < 4; ++j) {
            const int o = p * kP + r;
            if (i4) {
              const int lo = code_at(o, g, 8 * c + j) + 8, hi = code_at(o, g, 8 * c + 4 + j) + 8;
              blk[64 * c + 4 * r + j] = static_cast<uint8_t>(lo | (hi << 4));
            } else {
              blk[128 * c + 4 * r + j] = static_cast<uint8_t>(code_at(o, g, 8 * c + j) + 128);
              blk[128 * c + 64 + 4 * r + j] = static_cast<uint8_t>(code_at(o, g, 8 * c + 4 + j) + 128);
            }
          }
      for (int r = 0; r < kP && p * kP + r < rows_; ++r)
        scales_[(static_cast<size_t>(p) * groups_ + g) * kP + r] =
            q.scales[static_cast<size_t>(p * kP + r) * groups_ + g];
    }
}

namespace {

// The "what" of an error: built only when throwing, so the hot path allocates nothing.
std::string op_on(const char* op, const IntMatrix& w) {
  if (w.rows() <= 0) return std::string(op) + " on an empty IntMatrix";
  return std::string(op) + " on a " + shape_str(w.rows(), w.cols()) + " int" + std::to_string(w.source_bits()) +
         " matrix";
}

void check_matrix(const char* op, const IntMatrix& w) {
  if (w.rows() <= 0)
    throw Error(op_on(op, w), "the IntMatrix is default-constructed", "build it from a QuantizedMatrix");
}

void check_activations(const char* op, const IntMatrix& w, const IntActivations& x) {
  if (x.cols != w.cols() || x.group != w.group_size() || x.padded_group != w.padded_group() || x.groups != w.groups())
    throw Error(op_on(op, w),
                "activations were quantized for in = " + std::to_string(x.cols) + ", group " + std::to_string(x.group) +
                    ", but the matrix has in = " + std::to_string(w.cols()) + ", group " +
                    std::to_string(w.group_size()),
                "quantize x with quantize_activations() for this matrix");
  const size_t per_token = static_cast<size_t>(x.groups);
  if (x.tokens < 0 || x.q.size() != static_cast<size_t>(x.tokens) * per_token * x.padded_group ||
      x.scale.size() != static_cast<size_t>(x.tokens) * per_token ||
      x.sum.size() != static_cast<size_t>(x.tokens) * per_token)
    throw Error(op_on(op, w), "IntActivations sizes do not match tokens = " + std::to_string(x.tokens),
                "fill it with quantize_activations()");
}

Kernel make_kernel(const IntMatrix& w, const IntActivations& x) {
  Kernel k;
  k.codes = w.codes();
  k.wscale = w.scales();
  k.out = w.rows();
  k.groups = w.groups();
  k.gp = w.padded_group();
  k.panels = w.panels();
  k.tokens = x.tokens;
  k.group_bytes = static_cast<int64_t>(w.padded_group() / 8) * (w.code_bits() == 4 ? 64 : 128);
  k.panel_bytes = k.group_bytes * w.groups();
  k.xq = x.q.data();
  k.xscale = x.scale.data();
  k.xsum = x.sum.data();
  return k;
}

template <bool kSums>
void run(const IntMatrix& w, const Kernel& k, IntKernelPath path) {
  if (k.tokens == 0) return;
  const bool i4 = w.code_bits() == 4;
  switch (path) {
    case IntKernelPath::kAvx512Vnni:
      i4 ? run_avx512<true, kSums>(k) : run_avx512<false, kSums>(k);
      break;
    case IntKernelPath::kAvx2:
      i4 ? run_avx2<true, kSums>(k) : run_avx2<false, kSums>(k);
      break;
    default:
      i4 ? run_portable<true, kSums>(k) : run_portable<false, kSums>(k);
      break;
  }
}

}  // namespace

void quantize_activations(const IntMatrix& w, std::span<const float> x, int tokens, IntActivations& out,
                          IntKernelPath path) {
  constexpr const char* kOp = "quantize_activations";
  check_matrix(kOp, w);
  if (tokens < 0) throw Error(op_on(kOp, w), "tokens must be >= 0 (got " + std::to_string(tokens) + ")");
  const size_t want = static_cast<size_t>(tokens) * w.cols();
  if (x.size() != want)
    throw Error(op_on(kOp, w),
                "x has " + std::to_string(x.size()) + " values, expected tokens x in = " + std::to_string(tokens) +
                    " x " + std::to_string(w.cols()) + " = " + std::to_string(want),
                "pass x of shape (T, in), row-major");
  out.tokens = tokens;
  out.cols = w.cols();
  out.group = w.group_size();
  out.groups = w.groups();
  out.padded_group = w.padded_group();
  out.q.resize(static_cast<size_t>(tokens) * out.groups * out.padded_group);
  out.scale.resize(static_cast<size_t>(tokens) * out.groups);
  out.sum.resize(static_cast<size_t>(tokens) * out.groups);
  auto* quantize = quantize_tokens_portable;
  switch (resolve_int_kernel_path(path)) {
    case IntKernelPath::kAvx512Vnni:
      quantize = quantize_tokens_avx512;
      break;
    case IntKernelPath::kAvx2:
      quantize = quantize_tokens_avx2;
      break;
    default:
      break;
  }
  const int bad = quantize(x.data(), tokens, out.cols, out.group, out.groups, out.padded_group, out.q.data(),
                           out.scale.data(), out.sum.data());
  if (bad >= 0) {
    const float* row = x.data() + static_cast<int64_t>(bad) * out.cols;
    for (int i = 0; i < out.cols; ++i)
      if (!std::isfinite(row[i]))
        throw Error(op_on(kOp, w),
                    "x at (token " + std::to_string(bad) + ", col " + std::to_string(i) + ") is " + num(row[i]),
                    "find where the activation became non-finite (overflow or a NaN upstream)");
  }
}

void int_gemm(const IntMatrix& w, const IntActivations& x, std::span<float> y, IntKernelPath path) {
  constexpr const char* kOp = "int_gemm";
  check_matrix(kOp, w);
  check_activations(kOp, w, x);
  const size_t want = static_cast<size_t>(x.tokens) * w.rows();
  if (y.size() != want)
    throw Error(op_on(kOp, w),
                "y has " + std::to_string(y.size()) + " values, expected tokens x out = " + std::to_string(want),
                "pass y of shape (T, out)");
  Kernel k = make_kernel(w, x);
  k.y = y.data();
  run<false>(w, k, resolve_int_kernel_path(path));
}

void int_group_sums(const IntMatrix& w, const IntActivations& x, std::span<int32_t> sums, IntKernelPath path) {
  constexpr const char* kOp = "int_group_sums";
  check_matrix(kOp, w);
  check_activations(kOp, w, x);
  const size_t want = static_cast<size_t>(x.tokens) * w.rows() * w.groups();
  if (sums.size() != want)
    throw Error(
        op_on(kOp, w),
        "sums has " + std::to_string(sums.size()) + " values, expected tokens x out x groups = " + std::to_string(want),
        "pass sums of shape (T, out, groups)");
  Kernel k = make_kernel(w, x);
  k.sums = sums.data();
  run<true>(w, k, resolve_int_kernel_path(path));
}

void int_gemm(const IntMatrix& w, std::span<const float> x, int tokens, std::span<float> y, IntKernelPath path) {
  thread_local IntActivations workspace;  // reused: no allocation per call after the first
  const IntKernelPath resolved = resolve_int_kernel_path(path);
  try {
    quantize_activations(w, x, tokens, workspace, resolved);
  } catch (const Error& e) {
    throw e.with_context("int_gemm");
  }
  int_gemm(w, workspace, y, resolved);
}

void int_gemv(const IntMatrix& w, std::span<const float> x, std::span<float> y, IntKernelPath path) {
  constexpr const char* kOp = "int_gemv";
  check_matrix(kOp, w);
  if (x.size() != static_cast<size_t>(w.cols()))
    throw Error(op_on(kOp, w),
                "x has " + std::to_string(x.size()) + " values, expected in = " + std::to_string(w.cols()),
                "pass one token of length in");
  if (y.size() != static_cast<size_t>(w.rows()))
    throw Error(op_on(kOp, w),
                "y has " + std::to_string(y.size()) + " values, expected out = " + std::to_string(w.rows()),
                "pass y of length out");
  int_gemm(w, x, 1, y, path);
}

}  // namespace spikefm
