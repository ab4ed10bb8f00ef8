// Event-driven linear layers: classes, run-time dispatch, portable kernels and AVX2 kernels.
// The AVX-512 kernels live in event_linear_avx512.cpp. See event_linear.h for the math.
#include "snn/event_linear.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "common/error.h"
#include "snn/neuron.h"

namespace spikefm::snn {

// ---- path selection ---------------------------------------------------------------------------------

namespace {

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512_f_bw = false;
};

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx512_f_bw = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
    return f;
  }();
  return features;
}

}  // namespace

const char* kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::kAuto: return "auto";
    case KernelPath::kPortable: return "portable";
    case KernelPath::kAvx2: return "avx2";
    case KernelPath::kAvx512: return "avx512";
  }
  return "unknown";
}

bool kernel_path_supported(KernelPath path) {
  switch (path) {
    case KernelPath::kAuto:
    case KernelPath::kPortable: return true;
    case KernelPath::kAvx2: return cpu_features().avx2_fma;
    case KernelPath::kAvx512: return cpu_features().avx512_f_bw;
  }
  return false;
}

KernelPath resolve_kernel_path(KernelPath path) {
  if (path == KernelPath::kAuto) {
    if (kernel_path_supported(KernelPath::kAvx512)) return KernelPath::kAvx512;
    if (kernel_path_supported(KernelPath::kAvx2)) return KernelPath::kAvx2;
    return KernelPath::kPortable;
  }
  if (!kernel_path_supported(path)) {
    throw Error(std::string("selecting the event-linear kernel path '") + kernel_path_name(path) + "'",
                "this CPU does not support it",
                "use KernelPath::kAuto, which picks the fastest supported path");
  }
  return path;
}

// ---- argument checks and counts ---------------------------------------------------------------------

namespace {

// Memory-safety checks of events before a kernel trusts them. Branch-free passes over row_ptr and
// index (vectorizable, a small fraction of the E * out kernel work); on any problem the full
// SpikeEvents::validate() produces the precise message.
void check_events(const SpikeEvents& ev, int in, const char* what) {
  if (ev.width != in) {
    throw Error(what, "spike events have width " + std::to_string(ev.width) + ", the layer has " +
                          std::to_string(in) + " inputs",
                "build the events from the spikes of the layer that feeds this one");
  }
  bool bad = ev.rows < 0 || ev.row_ptr.size() != static_cast<size_t>(ev.rows) + 1 ||
             ev.index.size() != ev.value.size();
  if (!bad) {
    bad = ev.row_ptr[0] != 0 || static_cast<size_t>(ev.row_ptr[ev.rows]) != ev.index.size();
  }
  if (!bad) {
    int decreasing = 0;
    for (int r = 0; r < ev.rows; ++r) decreasing |= ev.row_ptr[r + 1] < ev.row_ptr[r];
    uint32_t out_of_range = 0;
    const auto limit = static_cast<uint32_t>(in);
    for (const int32_t i : ev.index) out_of_range |= static_cast<uint32_t>(i) >= limit;
    bad = decreasing != 0 || out_of_range != 0;
  }
  if (bad) {
    try {
      ev.validate();
    } catch (const Error& e) {
      throw e.with_context(what);
    }
  }
}

// Adds the counts of one call. weight_row_bytes: bytes of one wt row (the fan-out of one event).
void count(const SpikeEvents& ev, int out, int64_t weight_row_bytes, LayerStats* stats) {
  if (stats == nullptr) return;
  int64_t pos = 0;
  int64_t neg = 0;
  for (const int8_t v : ev.value) {
    pos += v > 0 ? v : 0;
    neg += v < 0 ? -v : 0;
  }
  const int64_t events = ev.size();
  stats->events += events;
  stats->spikes_pos += pos;
  stats->spikes_neg += neg;
  stats->sops += events * out;
  stats->weight_bytes_read += events * weight_row_bytes;
}

void check_shape(int in, int out, const char* what) {
  if (in < 1 || out < 1) {
    throw Error(what, "in and out must be >= 1 (got in " + std::to_string(in) + ", out " +
                          std::to_string(out) + ")");
  }
}

template <class Matrix>
void check_acc(const Matrix& acc, const SpikeEvents& ev, int out, const char* what) {
  if (acc.rows() != ev.rows || acc.cols() != out) {
    throw Error(what, "accumulator is (" + std::to_string(acc.rows()) + ", " + std::to_string(acc.cols()) +
                          "), expected (rows, out) = (" + std::to_string(ev.rows) + ", " +
                          std::to_string(out) + ")");
  }
}

}  // namespace

// ---- EventLinearI8 ----------------------------------------------------------------------------------

namespace {
const char* const kI8 = "event linear (int8)";
const char* const kI4 = "event linear (int4)";
const char* const kF32 = "event linear (float)";
}  // namespace

EventLinearI8::EventLinearI8(int in, int out, const int8_t* wt) : in_(in), out_(out) {
  check_shape(in, out, kI8);
  const size_t n = static_cast<size_t>(in) * out;
  wt_.assign(n + detail::kWeightPadBytes, 0);
  std::memcpy(wt_.data(), wt, n);
}

EventLinearI8 EventLinearI8::from_weight(const MatrixI8R& w) {
  const MatrixI8R wt = w.transpose();  // (in, out) row-major
  return EventLinearI8(static_cast<int>(w.cols()), static_cast<int>(w.rows()), wt.data());
}

void EventLinearI8::accumulate(const SpikeEvents& ev, int32_t* acc, LayerStats* stats, KernelPath path) const {
  check_events(ev, in_, kI8);
  switch (resolve_kernel_path(path)) {
    case KernelPath::kAvx512: detail::event_linear_i8_avx512(ev, wt_.data(), out_, acc); break;
    case KernelPath::kAvx2: detail::event_linear_i8_avx2(ev, wt_.data(), out_, acc); break;
    default: detail::event_linear_i8_portable(ev, wt_.data(), out_, acc); break;
  }
  count(ev, out_, out_, stats);
}

void EventLinearI8::accumulate(const SpikeEvents& ev, MatrixI32R& acc, LayerStats* stats, KernelPath path) const {
  check_acc(acc, ev, out_, kI8);
  accumulate(ev, acc.data(), stats, path);
}

// ---- EventLinearI4 ----------------------------------------------------------------------------------

EventLinearI4 EventLinearI4::from_weight(const MatrixI8R& w) {
  EventLinearI4 layer(static_cast<int>(w.cols()), static_cast<int>(w.rows()));
  check_shape(layer.in_, layer.out_, kI4);
  const int rb = layer.row_bytes();
  layer.wt_.assign(static_cast<size_t>(layer.in_) * rb + detail::kWeightPadBytes, 0);
  for (int j = 0; j < layer.out_; ++j) {
    for (int i = 0; i < layer.in_; ++i) {
      const int v = w(j, i);
      if (v < -8 || v > 7) {
        throw Error(kI4, "w(" + std::to_string(j) + ", " + std::to_string(i) + ") must be in [-8, 7] (got " +
                             std::to_string(v) + ")",
                    "quantize the layer to 4 bits or use EventLinearI8");
      }
      const auto nibble = static_cast<uint8_t>(v & 0xF);
      uint8_t& byte = layer.wt_[static_cast<size_t>(i) * rb + j / 2];
      byte |= (j % 2 == 0) ? nibble : static_cast<uint8_t>(nibble << 4);
    }
  }
  return layer;
}

void EventLinearI4::accumulate(const SpikeEvents& ev, int32_t* acc, LayerStats* stats, KernelPath path) const {
  check_events(ev, in_, kI4);
  switch (resolve_kernel_path(path)) {
    case KernelPath::kAvx512: detail::event_linear_i4_avx512(ev, wt_.data(), out_, acc); break;
    case KernelPath::kAvx2: detail::event_linear_i4_avx2(ev, wt_.data(), out_, acc); break;
    default: detail::event_linear_i4_portable(ev, wt_.data(), out_, acc); break;
  }
  count(ev, out_, row_bytes(), stats);
}

void EventLinearI4::accumulate(const SpikeEvents& ev, MatrixI32R& acc, LayerStats* stats, KernelPath path) const {
  check_acc(acc, ev, out_, kI4);
  accumulate(ev, acc.data(), stats, path);
}

// ---- EventLinearF32 ---------------------------------------------------------------------------------

EventLinearF32::EventLinearF32(int in, int out, const float* wt, const float* input_scale) : in_(in), out_(out) {
  check_shape(in, out, kF32);
  validate_thresholds(Eigen::Map<const Eigen::ArrayXf>(input_scale, in), kF32, "input_scale");
  const size_t n = static_cast<size_t>(in) * out;
  wt_.assign(n + detail::kWeightPadBytes / sizeof(float), 0.0f);
  for (int i = 0; i < in; ++i) {
    for (int j = 0; j < out; ++j) {
      const float w = wt[static_cast<size_t>(i) * out + j];
      if (!std::isfinite(w)) {
        std::ostringstream why;
        why << "wt[" << i << ", " << j << "] must be finite (got " << w << ")";
        throw Error(kF32, why.str(), "check the checkpoint for NaN/Inf weights");
      }
      wt_[static_cast<size_t>(i) * out + j] = input_scale[i] * w;
    }
  }
}

EventLinearF32 EventLinearF32::from_weight(const MatrixFR& w, const Eigen::ArrayXf& input_scale) {
  if (input_scale.size() != w.cols()) {
    throw Error(kF32, "input_scale has " + std::to_string(input_scale.size()) + " entries, the weight has " +
                          std::to_string(w.cols()) + " inputs");
  }
  const MatrixFR wt = w.transpose();  // (in, out) row-major
  return EventLinearF32(static_cast<int>(w.cols()), static_cast<int>(w.rows()), wt.data(), input_scale.data());
}

void EventLinearF32::accumulate(const SpikeEvents& ev, float* acc, LayerStats* stats, KernelPath path) const {
  check_events(ev, in_, kF32);
  switch (resolve_kernel_path(path)) {
    case KernelPath::kAvx512: detail::event_linear_f32_avx512(ev, wt_.data(), out_, acc); break;
    case KernelPath::kAvx2: detail::event_linear_f32_avx2(ev, wt_.data(), out_, acc); break;
    default: detail::event_linear_f32_portable(ev, wt_.data(), out_, acc); break;
  }
  count(ev, out_, static_cast<int64_t>(out_) * sizeof(float), stats);
}

void EventLinearF32::accumulate(const SpikeEvents& ev, MatrixFR& acc, LayerStats* stats, KernelPath path) const {
  check_acc(acc, ev, out_, kF32);
  accumulate(ev, acc.data(), stats, path);
}

// ---- portable kernels -------------------------------------------------------------------------------
// One event at a time, the fan-out row as an inner loop the compiler vectorizes for the baseline ISA.

namespace detail {

void event_linear_i8_portable(const SpikeEvents& ev, const int8_t* wt, int out, int32_t* acc) {
  for (int r = 0; r < ev.rows; ++r) {
    int32_t* a = acc + static_cast<int64_t>(r) * out;  // (out)
    for (int32_t k = ev.row_ptr[r]; k < ev.row_ptr[r + 1]; ++k) {
      const int8_t* w = wt + static_cast<int64_t>(ev.index[k]) * out;  // (out), row index[k] of wt
      const int32_t s = ev.value[k];
      for (int j = 0; j < out; ++j) a[j] += s * w[j];
    }
  }
}

void event_linear_i4_portable(const SpikeEvents& ev, const uint8_t* wt, int out, int32_t* acc) {
  const int row_bytes = (out + 1) / 2;
  const int pairs = out / 2;
  for (int r = 0; r < ev.rows; ++r) {
    int32_t* a = acc + static_cast<int64_t>(r) * out;  // (out)
    for (int32_t k = ev.row_ptr[r]; k < ev.row_ptr[r + 1]; ++k) {
      const uint8_t* w = wt + static_cast<int64_t>(ev.index[k]) * row_bytes;  // (row_bytes)
      const int32_t s = ev.value[k];
      for (int m = 0; m < pairs; ++m) {
        // Sign-extend each nibble: move it to the top of an int8, then shift back arithmetically.
        const int32_t lo = static_cast<int8_t>(w[m] << 4) >> 4;
        const int32_t hi = static_cast<int8_t>(w[m]) >> 4;
        a[2 * m] += s * lo;
        a[2 * m + 1] += s * hi;
      }
      if (out % 2 != 0) a[out - 1] += s * (static_cast<int8_t>(w[pairs] << 4) >> 4);
    }
  }
}

void event_linear_f32_portable(const SpikeEvents& ev, const float* wt, int out, float* acc) {
  for (int r = 0; r < ev.rows; ++r) {
    float* a = acc + static_cast<int64_t>(r) * out;  // (out)
    for (int32_t k = ev.row_ptr[r]; k < ev.row_ptr[r + 1]; ++k) {
      const float* w = wt + static_cast<int64_t>(ev.index[k]) * out;  // (out)
      const auto s = static_cast<float>(ev.value[k]);
      for (int j = 0; j < out; ++j) a[j] += s * w[j];
    }
  }
}

}  // namespace detail

// ---- AVX2 kernels -----------------------------------------------------------------------------------
// Register tiling: for a row r and a tile of 8 vectors (64 outputs), the accumulators stay in
// registers while all events of row r stream their 64-wide weight slices through; then the next
// tile. The last partial vector of a row uses masked accumulator loads/stores (weights over-read
// into the zero padding). Only the functions in this region are compiled for AVX2; they run only
// after resolve_kernel_path() has checked the CPU.

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace {

// int8 weights -> int32 lanes; s * w through vpmaddwd: each int32 lane holds w sign-extended
// (low int16 = w, high int16 = 0 or -1), the coefficient lane holds (s, 0), so the pairwise
// multiply-add gives w * s + (0 or -1) * 0 = w * s exactly.
struct I8Avx2 {
  using Vec = __m256i;
  using Acc = int32_t;
  using Weight = int8_t;
  static constexpr int kLanes = 8;
  static int64_t row_stride(int out) { return out; }
  static Vec coef(int8_t s) { return _mm256_set1_epi32(static_cast<uint16_t>(s)); }
  static Vec load(const Acc* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(Acc* p, Vec v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static Vec load_n(const Acc* p, __m256i m) { return _mm256_maskload_epi32(p, m); }
  static void store_n(Acc* p, __m256i m, Vec v) { _mm256_maskstore_epi32(p, m, v); }
  static Vec mac(Vec acc, const Weight* row, int col, Vec s) {
    const __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + col)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(w, s));
  }
};

// Packed int4: 8 outputs = 4 bytes. Duplicate each byte (pshufb), widen to int32, shift the wanted
// nibble to the top (by 28 for even columns, 24 for odd), shift back arithmetically to sign-extend.
struct I4Avx2 {
  using Vec = __m256i;
  using Acc = int32_t;
  using Weight = uint8_t;
  static constexpr int kLanes = 8;
  static int64_t row_stride(int out) { return (out + 1) / 2; }
  static Vec coef(int8_t s) { return _mm256_set1_epi32(static_cast<uint16_t>(s)); }
  static Vec load(const Acc* p) { return I8Avx2::load(p); }
  static void store(Acc* p, Vec v) { I8Avx2::store(p, v); }
  static Vec load_n(const Acc* p, __m256i m) { return I8Avx2::load_n(p, m); }
  static void store_n(Acc* p, __m256i m, Vec v) { I8Avx2::store_n(p, m, v); }
  static Vec mac(Vec acc, const Weight* row, int col, Vec s) {
    int32_t bytes;
    std::memcpy(&bytes, row + col / 2, sizeof(bytes));
    const __m128i dup = _mm_shuffle_epi8(_mm_cvtsi32_si128(bytes),
                                         _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1));
    const __m256i wide = _mm256_cvtepu8_epi32(dup);
    const __m256i up = _mm256_sllv_epi32(wide, _mm256_setr_epi32(28, 24, 28, 24, 28, 24, 28, 24));
    const __m256i w = _mm256_srai_epi32(up, 28);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(w, s));
  }
};

struct F32Avx2 {
  using Vec = __m256;
  using Acc = float;
  using Weight = float;
  static constexpr int kLanes = 8;
  static int64_t row_stride(int out) { return out; }
  static Vec coef(int8_t s) { return _mm256_set1_ps(static_cast<float>(s)); }
  static Vec load(const Acc* p) { return _mm256_loadu_ps(p); }
  static void store(Acc* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec load_n(const Acc* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void store_n(Acc* p, __m256i m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  static Vec mac(Vec acc, const Weight* row, int col, Vec s) {
    return _mm256_fmadd_ps(s, _mm256_loadu_ps(row + col), acc);
  }
};

// acc: (R, out) row-major; wt: (in, K::row_stride(out)) weight units, padded.
template <class K>
void run_avx2(const SpikeEvents& ev, const typename K::Weight* wt, int out, typename K::Acc* acc) {
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
      // Lanes j..out-1 are live: mask m has -1 in lanes l < out - j.
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(out - j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      Vec c = K::load_n(a + j, m);
      for (int32_t k = begin; k < end; ++k) c = K::mac(c, wt + idx[k] * stride, j, K::coef(val[k]));
      K::store_n(a + j, m, c);
    }
  }
}

}  // namespace

namespace detail {

void event_linear_i8_avx2(const SpikeEvents& ev, const int8_t* wt, int out, int32_t* acc) {
  run_avx2<I8Avx2>(ev, wt, out, acc);
}
void event_linear_i4_avx2(const SpikeEvents& ev, const uint8_t* wt, int out, int32_t* acc) {
  run_avx2<I4Avx2>(ev, wt, out, acc);
}
void event_linear_f32_avx2(const SpikeEvents& ev, const float* wt, int out, float* acc) {
  run_avx2<F32Avx2>(ev, wt, out, acc);
}

}  // namespace detail

#pragma GCC pop_options

}  // namespace spikefm::snn
