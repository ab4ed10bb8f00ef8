// Throughput of the event-driven linear layers (snn/event_linear.h) against a dense float matmul
// doing the same product, in one run.
//
// For each layer shape (in, out) and spike density d, a batch of R = 128 rows of random +-1 spikes
// (R, in) is drawn once; one iteration is one accumulate() call over the whole batch (including the
// event checks and the LayerStats counting it does). Counters:
//   SOP/s    synaptic operations per second, SOPs = events * out (for the dense baseline: the same
//            SOP count of the same product, so the figures compare wall time directly)
//   MAC/s    dense baseline only: R * in * out multiply-accumulates per second actually executed
//   events   events per call
// Paths the CPU cannot run are reported as errors ("skipped") rather than measured.
//
// Run: build/experiments/bench/bench_event_linear --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "snn/event_linear.h"
#include "snn/layer_stats.h"
#include "snn/spike_events.h"

namespace {

using namespace spikefm::snn;

constexpr int kRows = 128;  // R = tokens x samples in one batch

struct Shape {
  int in;
  int out;
};
const Shape kShapes[] = {{128, 512}, {512, 128}, {256, 256}};
const double kDensities[] = {0.01, 0.05, 0.20};

// spikes: (R, in) with +-1 at the given density.
MatrixI8R random_spikes(int rows, int in, double density, unsigned seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution on(density), neg(0.5);
  MatrixI8R s = MatrixI8R::Zero(rows, in);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < in; ++i)
      if (on(rng)) s(r, i) = neg(rng) ? -1 : 1;
  return s;
}

// The same events with every value negated: alternating the two leaves the accumulator where it
// started, so int32 sums cannot overflow however many iterations run.
SpikeEvents negated(SpikeEvents ev) {
  for (int8_t& v : ev.value) v = static_cast<int8_t>(-v);
  return ev;
}

void set_counters(benchmark::State& state, const SpikeEvents& ev, int out) {
  const double sops = static_cast<double>(ev.size()) * out;
  state.counters["SOP/s"] = benchmark::Counter(sops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["events"] = static_cast<double>(ev.size());
}

template <class Layer, class Acc>
void run_event_linear(benchmark::State& state, const Layer& layer, const SpikeEvents& ev, KernelPath path) {
  if (!kernel_path_supported(path)) {
    state.SkipWithError((std::string("this CPU cannot run the ") + kernel_path_name(path) + " path").c_str());
    return;
  }
  const SpikeEvents ev_neg = negated(ev);
  Acc acc = Acc::Zero(ev.rows, layer.out());  // (R, out)
  LayerStats stats;
  bool flip = false;
  for (auto _ : state) {
    layer.accumulate(flip ? ev_neg : ev, acc, &stats, path);
    flip = !flip;
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, ev, layer.out());
}

void bm_i8(benchmark::State& state, Shape shape, double density, KernelPath path) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> wd(-128, 127);
  MatrixI8R w(shape.out, shape.in);  // (out, in)
  for (int j = 0; j < shape.out; ++j)
    for (int i = 0; i < shape.in; ++i) w(j, i) = static_cast<int8_t>(wd(rng));
  const EventLinearI8 layer = EventLinearI8::from_weight(w);
  const SpikeEvents ev = SpikeEvents::from_dense(random_spikes(kRows, shape.in, density, 2));
  run_event_linear<EventLinearI8, MatrixI32R>(state, layer, ev, path);
}

void bm_i4(benchmark::State& state, Shape shape, double density, KernelPath path) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> wd(-8, 7);
  MatrixI8R w(shape.out, shape.in);  // (out, in)
  for (int j = 0; j < shape.out; ++j)
    for (int i = 0; i < shape.in; ++i) w(j, i) = static_cast<int8_t>(wd(rng));
  const EventLinearI4 layer = EventLinearI4::from_weight(w);
  const SpikeEvents ev = SpikeEvents::from_dense(random_spikes(kRows, shape.in, density, 2));
  run_event_linear<EventLinearI4, MatrixI32R>(state, layer, ev, path);
}

void bm_f32(benchmark::State& state, Shape shape, double density, KernelPath path) {
  const MatrixFR w = MatrixFR::Random(shape.out, shape.in);           // (out, in)
  const Eigen::ArrayXf theta = Eigen::ArrayXf::Random(shape.in).abs() + 0.1f;  // (in)
  const EventLinearF32 layer = EventLinearF32::from_weight(w, theta);
  const SpikeEvents ev = SpikeEvents::from_dense(random_spikes(kRows, shape.in, density, 2));
  run_event_linear<EventLinearF32, MatrixFR>(state, layer, ev, path);
}

// Dense baseline: the same spikes as a float matrix times the float weights, Eigen GEMM.
void bm_dense(benchmark::State& state, Shape shape, double density) {
  const MatrixI8R spikes = random_spikes(kRows, shape.in, density, 2);
  const Eigen::MatrixXf s = spikes.cast<float>();                    // (R, in)
  const Eigen::MatrixXf wt = Eigen::MatrixXf::Random(shape.in, shape.out);  // (in, out) = W^T
  Eigen::MatrixXf acc = Eigen::MatrixXf::Zero(kRows, shape.out);     // (R, out)
  for (auto _ : state) {
    acc.noalias() += s * wt;
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, SpikeEvents::from_dense(spikes), shape.out);
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(kRows) * shape.in * shape.out,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

std::string name(const char* kind, const char* path, Shape shape, double density) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%s/%s/in:%d/out:%d/density:%g%%", kind, path, shape.in, shape.out,
                density * 100);
  return buf;
}

const bool registered = [] {
  const KernelPath paths[] = {KernelPath::kAvx512, KernelPath::kAvx2, KernelPath::kPortable};
  for (const Shape& shape : kShapes) {
    for (const double d : kDensities) {
      for (const KernelPath p : paths) {
        benchmark::RegisterBenchmark(name("EventLinearI8", kernel_path_name(p), shape, d).c_str(), bm_i8, shape, d, p);
      }
      for (const KernelPath p : paths) {
        benchmark::RegisterBenchmark(name("EventLinearF32", kernel_path_name(p), shape, d).c_str(), bm_f32, shape, d, p);
      }
      for (const KernelPath p : paths) {
        benchmark::RegisterBenchmark(name("EventLinearI4", kernel_path_name(p), shape, d).c_str(), bm_i4, shape, d, p);
      }
      benchmark::RegisterBenchmark(name("DenseEigenF32", "gemm", shape, d).c_str(), bm_dense, shape, d);
    }
  }
  return true;
}();

}  // namespace
