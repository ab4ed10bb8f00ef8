// Is libtorch on a real BLAS? A 1024x1024 float matmul through torch::mm (OpenBLAS when Debian's
// libopenblas0-pthread is installed; reference BLAS otherwise, ~28x slower) beside the same product in
// Eigen (its own kernels, same build flags) in the same run. Counter GFLOP/s = 2 n^3 / time.
//
//   build-*/experiments/bench/bench_sgemm --benchmark_min_time=0.5
// libtorch's default intra-op thread count is 1 on the development VM (its CPU probe finds one core);
// the 2-thread row shows what set_num_threads(2) buys.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <Eigen/Core>

namespace {

void set_flops(benchmark::State& state, int64_t n) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void BM_TorchMm(benchmark::State& state) {
  const int64_t n = state.range(0);
  torch::set_num_threads(static_cast<int>(state.range(1)));
  torch::manual_seed(0);
  torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n}), c;
  for (auto _ : state) {
    c = torch::mm(a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  set_flops(state, n);
  state.SetLabel("threads=" + std::to_string(torch::get_num_threads()));
}

void BM_EigenMm(benchmark::State& state) {
  const int64_t n = state.range(0);
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, n);
}

}  // namespace

// Args: n, libtorch intra-op threads (libtorch defaults to 1 on this VM: spikefm sets all cores).
BENCHMARK(BM_TorchMm)->Args({256, 1})->Args({1024, 1})->Args({1024, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EigenMm)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
