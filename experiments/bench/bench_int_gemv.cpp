// Integer GEMV (ann_ref/int_kernels.h) against float GEMV, one thread, in the same run.
//
// Shapes: the decode-time linear layers of our models and two bigger ones, out x in = 64x64, 192x64,
// 256x64, 384x128, 512x128, 1024x1024, 4096x1024. For each:
//   gemv/<out>x<in>/fp32/torch_mv           torch::mv, 1 intra-op thread (OpenBLAS sgemv with Debian's libtorch)
//   gemv/<out>x<in>/fp32/eigen              Eigen row-major matrix x vector (project flags: no -march=native)
//   gemv/<out>x<in>/<int8|int4>_<pc|g32>/<path>   int_gemv: float x in, float y out, including the dynamic
//                                           quantization of x; path = portable | avx2 | avx512vnni
// Prefill (T tokens at once) for two shapes, T = 16 and 64:
//   gemm/<out>x<in>/T<T>/fp32/torch_mm      torch::mm(x (T, in), Wᵀ), 1 thread
//   gemm/<out>x<in>/T<T>/<variant>/<path>   int_gemm, quantization of x included
// Counter GB/s = weight bytes streamed per call (fp32: 4·out·in; int: codes + scales of the IntMatrix,
// padding included) × calls / second. Ratios: time(fp32 torch_mv) / time(int …) — see BENCHMARKS.md.
//
//   OPENBLAS_NUM_THREADS=1 build-*/experiments/bench/bench_int_gemv --benchmark_min_time=0.2
// (OPENBLAS_NUM_THREADS=1 keeps OpenBLAS itself on one thread; torch::set_num_threads(1) covers libtorch's
// own intra-op pool.) On a shared machine compare the CPU-time column: every case here is single-threaded.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <Eigen/Core>
#include <random>
#include <string>
#include <vector>

#include "ann_ref/int_kernels.h"
#include "ann_ref/weight_quant.h"

namespace {

struct Shape {
  int out, in;
};
const Shape kShapes[] = {{64, 64}, {192, 64}, {256, 64}, {384, 128}, {512, 128}, {1024, 1024}, {4096, 1024}};

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void set_bytes(benchmark::State& state, double bytes_per_call) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_call * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void bm_torch_mv(benchmark::State& state, Shape s) {
  torch::set_num_threads(1);
  torch::manual_seed(0);
  const torch::Tensor w = torch::randn({s.out, s.in}), x = torch::randn({s.in});
  torch::Tensor y;
  for (auto _ : state) {
    y = torch::mv(w, x);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  set_bytes(state, 4.0 * s.out * s.in);
  state.SetLabel("threads=" + std::to_string(torch::get_num_threads()));
}

void bm_eigen(benchmark::State& state, Shape s) {
  using MatrixFR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MatrixFR w = MatrixFR::Random(s.out, s.in);
  const Eigen::VectorXf x = Eigen::VectorXf::Random(s.in);
  Eigen::VectorXf y(s.out);
  for (auto _ : state) {
    y.noalias() = w * x;
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 4.0 * s.out * s.in);
}

void bm_int(benchmark::State& state, Shape s, int bits, int group, spikefm::IntKernelPath path) {
  if (!spikefm::int_kernel_path_supported(path)) {
    state.SkipWithError("path not supported on this CPU");
    return;
  }
  const std::vector<float> w = randn(static_cast<size_t>(s.out) * s.in, 1);
  const std::vector<float> x = randn(s.in, 2);
  spikefm::QuantSpec spec;
  spec.bits = bits;
  spec.group = group;
  const spikefm::IntMatrix m(spikefm::quantize_rtn(w.data(), s.out, s.in, spec));
  std::vector<float> y(s.out);
  for (auto _ : state) {
    spikefm::int_gemv(m, x, y, path);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, static_cast<double>(m.stream_bytes()));
}

void bm_torch_mm(benchmark::State& state, Shape s, int T) {
  torch::set_num_threads(1);
  torch::manual_seed(0);
  const torch::Tensor w = torch::randn({s.out, s.in}), x = torch::randn({T, s.in});
  torch::Tensor y;
  for (auto _ : state) {
    y = torch::mm(x, w.t());
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  set_bytes(state, 4.0 * s.out * s.in);
  state.SetLabel("threads=" + std::to_string(torch::get_num_threads()));
}

void bm_int_gemm(benchmark::State& state, Shape s, int T, int bits, int group, spikefm::IntKernelPath path) {
  if (!spikefm::int_kernel_path_supported(path)) {
    state.SkipWithError("path not supported on this CPU");
    return;
  }
  const std::vector<float> w = randn(static_cast<size_t>(s.out) * s.in, 1);
  const std::vector<float> x = randn(static_cast<size_t>(T) * s.in, 2);
  spikefm::QuantSpec spec;
  spec.bits = bits;
  spec.group = group;
  const spikefm::IntMatrix m(spikefm::quantize_rtn(w.data(), s.out, s.in, spec));
  std::vector<float> y(static_cast<size_t>(T) * s.out);
  for (auto _ : state) {
    spikefm::int_gemm(m, x, T, y, path);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, static_cast<double>(m.stream_bytes()));
}

int register_all() {
  using spikefm::IntKernelPath;
  struct Variant {
    const char* name;
    int bits, group;
  };
  const Variant variants[] = {{"int8_pc", 8, 0}, {"int4_pc", 4, 0}, {"int4_g32", 4, 32}};
  for (const Shape s : kShapes) {
    const std::string prefix = "gemv/" + std::to_string(s.out) + "x" + std::to_string(s.in) + "/";
    benchmark::RegisterBenchmark((prefix + "fp32/torch_mv").c_str(), bm_torch_mv, s)->UseRealTime();
    benchmark::RegisterBenchmark((prefix + "fp32/eigen").c_str(), bm_eigen, s)->UseRealTime();
    for (const Variant& v : variants)
      for (IntKernelPath p : {IntKernelPath::kPortable, IntKernelPath::kAvx2, IntKernelPath::kAvx512Vnni})
        benchmark::RegisterBenchmark((prefix + v.name + "/" + spikefm::int_kernel_path_name(p)).c_str(), bm_int, s,
                                     v.bits, v.group, p)
            ->UseRealTime();
  }
  for (const Shape s : {Shape{512, 128}, Shape{1024, 1024}})
    for (int T : {16, 64}) {
      const std::string prefix =
          "gemm/" + std::to_string(s.out) + "x" + std::to_string(s.in) + "/T" + std::to_string(T) + "/";
      benchmark::RegisterBenchmark((prefix + "fp32/torch_mm").c_str(), bm_torch_mm, s, T)->UseRealTime();
      for (const Variant& v : variants)
        for (IntKernelPath p : {IntKernelPath::kAvx2, IntKernelPath::kAvx512Vnni})
          benchmark::RegisterBenchmark((prefix + v.name + "/" + spikefm::int_kernel_path_name(p)).c_str(), bm_int_gemm,
                                       s, T, v.bits, v.group, p)
              ->UseRealTime();
    }
  return 0;
}

const int registered = register_all();

}  // namespace
