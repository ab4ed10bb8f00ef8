// Is libtorch on a real BLAS? A 1024x1024 float matmul through torch::mm (OpenBLAS when Debian's
// libopenblas0-pthread is installed; reference BLAS otherwise, ~28x slower) beside the same product in
// Eigen (its own kernels, same build flags) in the same run. Counter GFLOP/s = 2 n^3 / time.
//
//   build-*/experiments/bench/bench_sgemm --benchmark_min_time=0.5
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

BENCHMARK(BM_TorchMm)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EigenMm)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
