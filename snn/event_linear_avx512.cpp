// AVX-512 kernels of the event-driven linear layers (see event_linear.h for the math and
// event_linear.cpp for the AVX2 twins and the dispatch).
//
// Register tiling: for a row r and a tile of 8 zmm vectors (128 outputs), the accumulators stay in
// registers while all events of row r stream their 128-wide weight slices through; then the next
// tile. The last partial vector of a row uses a lane mask on the accumulator (weights over-read
// into the zero padding of the weight buffer). Only code between the pragmas is compiled for
// AVX-512F/BW; it runs only after resolve_kernel_path() has checked the CPU, so the default build
// stays portable.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "snn/event_linear.h"

namespace spikefm::snn {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
// GCC 12's own avx512fintrin.h trips -Wmaybe-uninitialized (its _mm512_undefined_* helpers
// self-initialize on purpose; GCC bug 105593, fixed in GCC 13). Not about this file's code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

// int8 weights -> int32 lanes; s * w through vpmaddwd (see I8Avx2 in event_linear.cpp): the
// coefficient lane holds (s, 0) as two int16, the weight lane w sign-extended, so the pairwise
// multiply-add is exactly w * s.
struct I8Avx512 {
  using Vec = __m512i;
  using Acc = int32_t;
  using Weight = int8_t;
  static constexpr int kLanes = 16;
  static int64_t row_stride(int out) { return out; }
  static Vec coef(int8_t s) { return _mm512_set1_epi32(static_cast<uint16_t>(s)); }
  static Vec load(const Acc* p) { return _mm512_loadu_si512(p); }
  static void store(Acc* p, Vec v) { _mm512_storeu_si512(p, v); }
  static Vec load_n(const Acc* p, __mmask16 m) { return _mm512_maskz_loadu_epi32(m, p); }
  static void store_n(Acc* p, __mmask16 m, Vec v) { _mm512_mask_storeu_epi32(p, m, v); }
  static Vec mac(Vec acc, const Weight* row, int col, Vec s) {
    const __m512i w = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + col)));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(w, s));
  }
};

// Packed int4: 16 outputs = 8 bytes. Duplicate each byte, widen to int32, shift the wanted nibble
// to the top (28 for even columns, 24 for odd), shift back arithmetically to sign-extend.
struct I4Avx512 {
  using Vec = __m512i;
  using Acc = int32_t;
  using Weight = uint8_t;
  static constexpr int kLanes = 16;
  static int64_t row_stride(int out) { return (out + 1) / 2; }
  static Vec coef(int8_t s) { return I8Avx512::coef(s); }
  static Vec load(const Acc* p) { return I8Avx512::load(p); }
  static void store(Acc* p, Vec v) { I8Avx512::store(p, v); }
  static Vec load_n(const Acc* p, __mmask16 m) { return I8Avx512::load_n(p, m); }
  static void store_n(Acc* p, __mmask16 m, Vec v) { I8Avx512::store_n(p, m, v); }
  static Vec mac(Vec acc, const Weight* row, int col, Vec s) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + col / 2));
    const __m128i dup =
        _mm_shuffle_epi8(bytes, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    const __m512i up = _mm512_sllv_epi32(_mm512_cvtepu8_epi32(dup),
                                         _mm512_setr_epi32(28, 24, 28, 24, 28, 24, 28, 24, 28, 24, 28, 24,
                                                           28, 24, 28, 24));
    const __m512i w = _mm512_srai_epi32(up, 28);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(w, s));
  }
};

struct F32Avx512 {
  using Vec = __m512;
  using Acc = float;
  using Weight = float;
  static constexpr int kLanes = 16;
  static int64_t row_stride(int out) { return out; }
  static Vec coef(int8_t s) { return _mm512_set1_ps(static_cast<float>(s)); }
  static Vec load(const Acc* p) { return _mm512_loadu_ps(p); }
  static void store(Acc* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec load_n(const Acc* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_n(Acc* p, __mmask16 m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static Vec mac(Vec acc, const Weight* row, int col, Vec s) {
    return _mm512_fmadd_ps(s, _mm512_loadu_ps(row + col), acc);
  }
};

// acc: (R, out) row-major; wt: (in, K::row_stride(out)) weight units, padded.
template <class K>
void run_avx512(const SpikeEvents& ev, const typename K::Weight* wt, int out, typename K::Acc* acc) {
  using Vec = typename K::Vec;
  constexpr int L = K::kLanes;
  constexpr int kTile = 8 * L;
  const int64_t stride = K::row_stride(out);
  const int32_t* idx = ev.index.data();
  const int8_t* val = ev.value.data();
  for (int r = 0; r < ev.rows; ++r) {
    const int32_t begin = ev.row_ptr[r];
    const int32_t end = ev.row_ptr[r + 1];
    if (begin == end) continue;
    typename K::Acc* a = acc + static_cast<int64_t>(r) * out;  // (out)
    int j = 0;
    for (; j + kTile <= out; j += kTile) {
      Vec c0 = K::load(a + j), c1 = K::load(a + j + L), c2 = K::load(a + j + 2 * L), c3 = K::load(a + j + 3 * L);
      Vec c4 = K::load(a + j + 4 * L), c5 = K::load(a + j + 5 * L), c6 = K::load(a + j + 6 * L),
          c7 = K::load(a + j + 7 * L);
      for (int32_t k = begin; k < end; ++k) {
        const typename K::Weight* w = wt + idx[k] * stride;  // (stride), row idx[k] of wt
        const Vec s = K::coef(val[k]);
        c0 = K::mac(c0, w, j, s);
        c1 = K::mac(c1, w, j + L, s);
        c2 = K::mac(c2, w, j + 2 * L, s);
        c3 = K::mac(c3, w, j + 3 * L, s);
        c4 = K::mac(c4, w, j + 4 * L, s);
        c5 = K::mac(c5, w, j + 5 * L, s);
        c6 = K::mac(c6, w, j + 6 * L, s);
        c7 = K::mac(c7, w, j + 7 * L, s);
      }
      K::store(a + j, c0);
      K::store(a + j + L, c1);
      K::store(a + j + 2 * L, c2);
      K::store(a + j + 3 * L, c3);
      K::store(a + j + 4 * L, c4);
      K::store(a + j + 5 * L, c5);
      K::store(a + j + 6 * L, c6);
      K::store(a + j + 7 * L, c7);
    }
    for (; j + L <= out; j += L) {
      Vec c = K::load(a + j);
      for (int32_t k = begin; k < end; ++k) c = K::mac(c, wt + idx[k] * stride, j, K::coef(val[k]));
      K::store(a + j, c);
    }
    if (j < out) {
      const auto m = static_cast<__mmask16>((1u << (out - j)) - 1u);  // lanes j..out-1
      Vec c = K::load_n(a + j, m);
      for (int32_t k = begin; k < end; ++k) c = K::mac(c, wt + idx[k] * stride, j, K::coef(val[k]));
      K::store_n(a + j, m, c);
    }
  }
}

}  // namespace

namespace detail {

void event_linear_i8_avx512(const SpikeEvents& ev, const int8_t* wt, int out, int32_t* acc) {
  run_avx512<I8Avx512>(ev, wt, out, acc);
}
void event_linear_i4_avx512(const SpikeEvents& ev, const uint8_t* wt, int out, int32_t* acc) {
  run_avx512<I4Avx512>(ev, wt, out, acc);
}
void event_linear_f32_avx512(const SpikeEvents& ev, const float* wt, int out, float* acc) {
  run_avx512<F32Avx512>(ev, wt, out, acc);
}

}  // namespace detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

}  // namespace spikefm::snn
