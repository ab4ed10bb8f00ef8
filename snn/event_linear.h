// Event-driven linear layer: y[r, :] += sum over spike events (r, i, s) of s * W[:, i].
//
// What it computes
//   The linear layer of a converted transformer, driven by the spikes of one timestep instead of a
//   dense activation matrix. With the dense spike matrix S: (R, in) and weights W: (out, in),
//
//     acc (R, out) += S (R, in) * W^T (in, out)
//
//   but only the nonzero entries of S are visited: each event (r, i, s) adds s times row i of
//   wt = W^T to row r of the accumulator. Work is E * out synaptic operations (SOPs) for E events,
//   instead of R * in * out MACs for the dense product; at spike density d the saving is 1/d.
//
//   Weights are stored transposed, wt: (in, out) row-major, so the fan-out of one input is one
//   contiguous row read front to back (one SRAM row per event on the modeled hardware).
//
// Variants
//   EventLinearI8   int8 weights, int32 accumulator: exact. The caller scales the integer result by
//                   (weight scale x theta) once, after all timesteps or per step. This needs one
//                   theta for all inputs of the layer (per-tensor QCFS lambda) and one weight scale
//                   per output (per-channel) -- per-group scales along `in` do not factor out
//                   of the sum: the graph engine keeps one accumulator per group instead (each
//                   event re-rowed to row · groups + its input's group, graph_engine.cpp); nor
//                   does per-input theta: use EventLinearF32 there.
//                   acc[r, j] += s * wt[i, j]
//                   Exact while |acc| < 2^31: one call adds at most 128 * sum_i |s_i| per entry,
//                   e.g. 128 * in for +-1 spikes (2^31 / (128 * 4096) = 4096 full-density steps at
//                   in = 4096). Overflow wraps on the SIMD paths; keep the caller's range in check.
//   EventLinearI4   int4 weights packed two per byte (low nibble = even output column), int32
//                   accumulator: exact, half the weight bytes.
//   EventLinearF32  float weights with the per-input scale theta_i folded in at construction:
//                   wt_scaled[i, j] = fl(theta_i * wt[i, j]),  acc[r, j] += s * wt_scaled[i, j]
//                   (float accumulation; fused multiply-add on the SIMD paths).
//
// Kernel paths (KernelPath)
//   kPortable  plain loops, auto-vectorized for the baseline ISA; runs everywhere.
//   kAvx2      AVX2 (+FMA) intrinsics, register-tiled (64 int32/float outputs per tile).
//   kAvx512    AVX-512F/BW intrinsics, register-tiled (128 outputs per tile).
//   kAuto      the fastest path this CPU supports (checked at run time with __builtin_cpu_supports,
//              so the default build stays portable; the SIMD code is compiled with target attributes).
//   All paths give bit-identical int32 results; float results differ only by rounding (FMA).
//   Requesting a path the CPU lacks throws spikefm::Error.
//
// Counts (LayerStats, snn/layer_stats.h): events, spikes_pos, spikes_neg, sops = E * out,
//   weight_bytes_read = E * (bytes of one wt row: out for int8, 4 * out for float, ceil(out / 2) int4).
//
// Papers: event-driven synaptic accumulation as in SpikeZIP-TF (You et al., ICML 2024) and Spikformer
//   (Zhou et al., ICLR 2023) energy accounting (SOPs = spikes x fan-out).
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

#include "snn/layer_stats.h"
#include "snn/spike_events.h"

namespace spikefm::snn {

enum class KernelPath { kAuto, kPortable, kAvx2, kAvx512 };

// "auto", "portable", "avx2", "avx512".
const char* kernel_path_name(KernelPath path);
// Whether this CPU (and OS) can run the path; kAuto and kPortable always can.
bool kernel_path_supported(KernelPath path);
// kAuto -> the fastest supported path; any other path is returned if supported, else throws.
KernelPath resolve_kernel_path(KernelPath path);

using MatrixI8R = Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixI32R = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixFR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class EventLinearI8 {
 public:
  // wt: (in, out) row-major int8, i.e. W^T of the QANN weight W: (out, in).
  EventLinearI8(int in, int out, const int8_t* wt);
  // w: (out, in), the weight as the QANN stores it; transposed here.
  static EventLinearI8 from_weight(const MatrixI8R& w);

  int in() const { return in_; }
  int out() const { return out_; }
  // (in, out) row-major, followed by zero padding.
  const int8_t* wt() const { return wt_.data(); }

  // acc: (ev.rows, out) row-major int32; acc[r, :] += s * wt[i, :] for every event (r, i, s).
  // ev.width must equal in(). stats, if given, is incremented (not overwritten).
  void accumulate(const SpikeEvents& ev, int32_t* acc, LayerStats* stats = nullptr,
                  KernelPath path = KernelPath::kAuto) const;
  // Same, checking that acc is (ev.rows, out).
  void accumulate(const SpikeEvents& ev, MatrixI32R& acc, LayerStats* stats = nullptr,
                  KernelPath path = KernelPath::kAuto) const;

 private:
  int in_;
  int out_;
  std::vector<int8_t> wt_;  // (in, out) row-major + kWeightPadBytes of zeros (SIMD tails over-read)
};

class EventLinearI4 {
 public:
  // w: (out, in) with every entry in [-8, 7]; packed here as wt: (in, ceil(out / 2)) bytes, row i
  // holding columns j = 2m (low nibble) and 2m + 1 (high nibble) of W^T in byte m.
  static EventLinearI4 from_weight(const MatrixI8R& w);

  int in() const { return in_; }
  int out() const { return out_; }
  int row_bytes() const { return (out_ + 1) / 2; }
  // (in, row_bytes()) packed nibbles, followed by zero padding.
  const uint8_t* wt_packed() const { return wt_.data(); }

  // acc: (ev.rows, out) row-major int32; acc[r, :] += s * W^T[i, :] for every event (r, i, s).
  void accumulate(const SpikeEvents& ev, int32_t* acc, LayerStats* stats = nullptr,
                  KernelPath path = KernelPath::kAuto) const;
  void accumulate(const SpikeEvents& ev, MatrixI32R& acc, LayerStats* stats = nullptr,
                  KernelPath path = KernelPath::kAuto) const;

 private:
  EventLinearI4(int in, int out) : in_(in), out_(out) {}
  int in_;
  int out_;
  std::vector<uint8_t> wt_;  // (in, row_bytes) + padding
};

class EventLinearF32 {
 public:
  // wt: (in, out) row-major float = W^T; input_scale: (in), theta of each input neuron (finite, > 0).
  // Every weight must be finite. theta is folded into the stored rows.
  EventLinearF32(int in, int out, const float* wt, const float* input_scale);
  // w: (out, in) as the QANN stores it; input_scale: (in).
  static EventLinearF32 from_weight(const MatrixFR& w, const Eigen::ArrayXf& input_scale);

  int in() const { return in_; }
  int out() const { return out_; }
  // (in, out) row-major theta_i * wt[i, :], followed by zero padding.
  const float* wt_scaled() const { return wt_.data(); }

  // acc: (ev.rows, out) row-major float; acc[r, :] += s * wt_scaled[i, :] for every event (r, i, s).
  void accumulate(const SpikeEvents& ev, float* acc, LayerStats* stats = nullptr,
                  KernelPath path = KernelPath::kAuto) const;
  void accumulate(const SpikeEvents& ev, MatrixFR& acc, LayerStats* stats = nullptr,
                  KernelPath path = KernelPath::kAuto) const;

 private:
  int in_;
  int out_;
  std::vector<float> wt_;  // (in, out) row-major + padding
};

// The kernels behind the classes, one per weight type and path. They trust their arguments: ev is
// valid with width == in, acc is (ev.rows, out), wt holds `in` rows of `out` weights (int4: of
// ceil(out / 2) bytes) and stays readable kWeightPadBytes past its last row, because the SIMD
// paths load whole vectors for the last, partial vector of a row and mask the accumulator instead.
// Use the classes above; these are exposed for tests and benchmarks.
namespace detail {
inline constexpr int kWeightPadBytes = 128;
// wt: (in, out) int8; acc: (R, out) int32
void event_linear_i8_portable(const SpikeEvents& ev, const int8_t* wt, int out, int32_t* acc);
void event_linear_i8_avx2(const SpikeEvents& ev, const int8_t* wt, int out, int32_t* acc);
void event_linear_i8_avx512(const SpikeEvents& ev, const int8_t* wt, int out, int32_t* acc);
// wt: (in, ceil(out / 2)) packed int4; acc: (R, out) int32
void event_linear_i4_portable(const SpikeEvents& ev, const uint8_t* wt, int out, int32_t* acc);
void event_linear_i4_avx2(const SpikeEvents& ev, const uint8_t* wt, int out, int32_t* acc);
void event_linear_i4_avx512(const SpikeEvents& ev, const uint8_t* wt, int out, int32_t* acc);
// wt: (in, out) float; acc: (R, out) float
void event_linear_f32_portable(const SpikeEvents& ev, const float* wt, int out, float* acc);
void event_linear_f32_avx2(const SpikeEvents& ev, const float* wt, int out, float* acc);
void event_linear_f32_avx512(const SpikeEvents& ev, const float* wt, int out, float* acc);
}  // namespace detail

}  // namespace spikefm::snn
