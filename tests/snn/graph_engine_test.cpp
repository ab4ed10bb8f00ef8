// GraphEngine (snn/graph_engine.h) operator by operator, against references written here.
//
// The reference for exact coding is the QANN the graph stands for, evaluated in one pass with plain
// loops (reference_exact below): every neuron is the quantizer n = clip(floor(x/θ + 1/2), lo, hi),
// linear layers and the two attention products are integer sums of those counts times the weights
// (or of count × count), and the dense units call the shared kernels of common/dense_kernels.h, the
// contract the QANN and the engine both follow. It never looks at spikes or timesteps, so a settled
// engine must reproduce its values bit for bit: the integer state is path-independent and the float
// values are the same float operations on it. Grid tests put θ and every input on a power-of-two
// grid so that float arithmetic is exact and the integer reference (floor_div) can be compared
// directly, ties (x/θ + 1/2 an integer) included.
//
// Rate coding (if_rate) is checked statistically: the estimate converges to the clipped ANN value as
// θ/(2T) per input, so the error at T = 64 must be well below the error at T = 4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/dense_kernels.h"
#include "common/error.h"
#include "snn/graph_engine.h"
#include "snn/spiking_graph.h"
#include "snn/st_bif_neuron.h"

namespace spikefm::snn {
namespace {

// ---- graph builders -----------------------------------------------------------------------------

OpNode row_input(const std::string& name, int cols) {
  OpNode n;
  n.name = name;
  n.kind = OpKind::row_input;
  n.cols = cols;
  return n;
}

// cols = 0 makes an attention-map neuron (then `heads` must match its input).
OpNode neuron(const std::string& name, int input, int cols, NeuronKind kind, float theta, int lo, int hi,
              int burst = 1, int heads = 1) {
  OpNode n;
  n.name = name;
  n.kind = OpKind::neuron;
  n.inputs = {input};
  n.cols = cols;
  n.heads = heads;
  n.neuron = kind;
  n.theta = theta;
  n.lo = lo;
  n.hi = hi;
  n.burst = burst;
  return n;
}

// Random int8 weights (out, in) in [-127, 127]; scale_o = θ_in · s_o, s_o in [s_lo, s_hi]; bias in
// [-b, b].
OpNode linear(const std::string& name, int input, int in, int out, float theta_in, std::mt19937& rng,
              float s_lo = 0.002f, float s_hi = 0.01f, float b = 0.5f) {
  OpNode n;
  n.name = name;
  n.kind = OpKind::linear;
  n.inputs = {input};
  n.in = in;
  n.cols = out;
  std::uniform_int_distribution<int> wd(-127, 127);
  std::uniform_real_distribution<float> sd(s_lo, s_hi), bd(-b, b);
  n.weight.resize(static_cast<size_t>(out) * in);
  for (auto& w : n.weight) w = static_cast<int8_t>(wd(rng));
  for (int o = 0; o < out; ++o) n.scale.push_back(theta_in * sd(rng));
  for (int o = 0; o < out; ++o) n.bias.push_back(bd(rng));
  return n;
}

OpNode product(const std::string& name, OpKind kind, int a, int b, int heads, int cols, float prod_scale,
               bool causal) {
  OpNode n;
  n.name = name;
  n.kind = kind;
  n.inputs = {a, b};
  n.heads = heads;
  n.cols = cols;
  n.prod_scale = prod_scale;
  n.causal = causal;
  return n;
}

OpNode softmax(const std::string& name, int input, int heads, bool causal) {
  OpNode n;
  n.name = name;
  n.kind = OpKind::softmax;
  n.inputs = {input};
  n.heads = heads;
  n.cols = 0;
  n.causal = causal;
  return n;
}

SpikingGraph make_graph(std::vector<OpNode> nodes, int rows_cap, Coding coding = Coding::exact) {
  SpikingGraph g;
  g.name = "test";
  g.rows_cap = rows_cap;
  g.coding = coding;
  g.nodes = std::move(nodes);
  g.output = static_cast<int>(g.nodes.size()) - 1;
  return g;
}

// ---- plain reference ----------------------------------------------------------------------------

// floor(a / b) for b > 0, in integers.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// clip(floor(x/θ + 1/2), lo, hi) for x = x_u·u, θ = th_u·u: floor((2 x_u + th_u) / (2 th_u)).
int64_t grid_count(int64_t x_u, int64_t th_u, int64_t lo, int64_t hi) {
  return std::clamp(floor_div(2 * x_u + th_u, 2 * th_u), lo, hi);
}

// Final values of every node of an exact-coding graph for R rows, one pass in node order.
//   token nodes: v (R, cols); map nodes: v (H·R, R), row h·R + i; neurons also keep counts n, same
//   layout as v.
struct RefNode {
  std::vector<float> v;
  std::vector<int64_t> n;
};

std::vector<RefNode> reference_exact(const SpikingGraph& g, const std::map<int, std::vector<float>>& inputs, int R) {
  std::vector<RefNode> out(g.nodes.size());
  for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
    const OpNode& nd = g.nodes[idx];
    RefNode& o = out[idx];
    switch (nd.kind) {
      case OpKind::row_input:
      case OpKind::pixel_input:
        o.v = inputs.at(static_cast<int>(idx));
        break;
      case OpKind::encode_linear: {
        const std::vector<float>& px = out[nd.inputs[0]].v;  // (R, in), integer pixel values
        o.v.resize(static_cast<size_t>(R) * nd.cols);
        for (int r = 0; r < R; ++r) {
          for (int q = 0; q < nd.cols; ++q) {
            int64_t acc = 0;
            for (int i = 0; i < nd.in; ++i) {
              acc += static_cast<int64_t>(px[static_cast<size_t>(r) * nd.in + i]) * nd.weight[static_cast<size_t>(q) * nd.in + i];
            }
            o.v[static_cast<size_t>(r) * nd.cols + q] = static_cast<float>(acc) * nd.scale[q] + nd.bias[q];
          }
        }
        break;
      }
      case OpKind::neuron: {
        const std::vector<float>& x = out[nd.inputs[0]].v;  // same layout as this node
        o.v.resize(x.size());
        o.n.resize(x.size());
        for (size_t e = 0; e < x.size(); ++e) {
          o.n[e] = static_cast<int64_t>(dense::quantize_count(x[e], nd.theta, static_cast<float>(nd.lo), static_cast<float>(nd.hi)));
          o.v[e] = static_cast<float>(o.n[e]) * nd.theta;
        }
        break;
      }
      case OpKind::linear: {
        const std::vector<int64_t>& s = out[nd.inputs[0]].n;  // (R, in)
        o.v.resize(static_cast<size_t>(R) * nd.cols);
        for (int r = 0; r < R; ++r) {
          for (int q = 0; q < nd.cols; ++q) {
            int64_t acc = 0;
            for (int i = 0; i < nd.in; ++i) acc += s[static_cast<size_t>(r) * nd.in + i] * nd.weight[static_cast<size_t>(q) * nd.in + i];
            o.v[static_cast<size_t>(r) * nd.cols + q] = static_cast<float>(acc) * nd.scale[q] + nd.bias[q];
          }
        }
        break;
      }
      case OpKind::add: {
        const auto& a = out[nd.inputs[0]].v;
        const auto& b = out[nd.inputs[1]].v;
        o.v.resize(a.size());
        for (size_t e = 0; e < a.size(); ++e) o.v[e] = a[e] + b[e];
        break;
      }
      case OpKind::layer_norm: {
        const auto& x = out[nd.inputs[0]].v;
        o.v.resize(x.size());
        for (int r = 0; r < R; ++r) {
          dense::layer_norm_row(x.data() + static_cast<size_t>(r) * nd.cols, o.v.data() + static_cast<size_t>(r) * nd.cols,
                                nd.cols, nd.gamma.data(), nd.beta.data(), nd.eps);
        }
        break;
      }
      case OpKind::qk_product: {
        const auto& sq = out[nd.inputs[0]].n;  // (R, C)
        const auto& sk = out[nd.inputs[1]].n;  // (R, C)
        const int C = g.nodes[nd.inputs[0]].cols, d = C / nd.heads;
        o.v.assign(static_cast<size_t>(nd.heads) * R * R, 0.0f);  // (H, R, R)
        for (int h = 0; h < nd.heads; ++h) {
          for (int i = 0; i < R; ++i) {
            for (int j = 0; j < R; ++j) {
              if (nd.causal && j > i) continue;
              int64_t p = 0;
              for (int c = h * d; c < (h + 1) * d; ++c) p += sq[static_cast<size_t>(i) * C + c] * sk[static_cast<size_t>(j) * C + c];
              o.v[(static_cast<size_t>(h) * R + i) * R + j] = static_cast<float>(p) * nd.prod_scale;
            }
          }
        }
        break;
      }
      case OpKind::softmax: {
        const auto& x = out[nd.inputs[0]].v;  // (H, R, R)
        o.v.assign(x.size(), 0.0f);
        for (int h = 0; h < nd.heads; ++h) {
          for (int i = 0; i < R; ++i) {
            const size_t row = (static_cast<size_t>(h) * R + i) * R;
            dense::softmax_row(x.data() + row, o.v.data() + row, nd.causal ? i + 1 : R, R);
          }
        }
        break;
      }
      case OpKind::av_product: {
        const auto& sp = out[nd.inputs[0]].n;  // (H, R, R)
        const auto& sv = out[nd.inputs[1]].n;  // (R, C)
        const int C = nd.cols, d = C / nd.heads;
        o.v.resize(static_cast<size_t>(R) * C);
        for (int i = 0; i < R; ++i) {
          for (int c = 0; c < C; ++c) {
            const int h = c / d;
            int64_t acc = 0;
            for (int j = 0; j < R; ++j) acc += sp[(static_cast<size_t>(h) * R + i) * R + j] * sv[static_cast<size_t>(j) * C + c];
            o.v[static_cast<size_t>(i) * C + c] = static_cast<float>(acc) * nd.prod_scale;
          }
        }
        break;
      }
      default:
        ADD_FAILURE() << "reference_exact: kind " << op_kind_name(nd.kind) << " not covered";
    }
  }
  return out;
}

// "" if the engine's values of node `idx` (R active rows) equal the reference bit for bit (map nodes:
// columns R .. rows_cap must be 0); else the first mismatch and the count.
std::string compare_node(const GraphEngine& e, const std::vector<RefNode>& ref, int idx, int R) {
  const OpNode& nd = e.graph().nodes[idx];
  const int rc = e.graph().rows_cap;
  const bool map = nd.is_map();
  const int rows = map ? nd.heads * R : R;
  const int width = map ? R : nd.cols;
  int bad = 0;
  std::ostringstream first;
  for (int r = 0; r < rows; ++r) {
    const int sr = map ? (r / R) * rc + r % R : r;
    const float* v = e.value_row(idx, sr);
    for (int c = 0; c < (map ? rc : nd.cols); ++c) {
      const float want = c < width ? ref[idx].v[static_cast<size_t>(r) * width + c] : 0.0f;
      if (std::memcmp(&v[c], &want, sizeof(float)) != 0 && !(v[c] == 0.0f && want == 0.0f)) {
        if (bad++ == 0) {
          first.precision(9);
          first << (map ? "head " + std::to_string(r / R) + " row " + std::to_string(r % R) : "row " + std::to_string(r))
                << " col " << c << ": engine " << v[c] << ", reference " << want;
        }
      }
    }
  }
  if (bad == 0) return "";
  return "node " + nd.name + ": " + std::to_string(bad) + " mismatches, first at " + first.str();
}

std::string compare_all(const GraphEngine& e, const std::vector<RefNode>& ref, int R) {
  std::string msg;
  for (int idx = 0; idx < static_cast<int>(e.graph().nodes.size()); ++idx) {
    const std::string m = compare_node(e, ref, idx, R);
    if (!m.empty()) msg += m + "\n";
  }
  return msg;
}

// Every node of two engines on the same graph, R rows, bit for bit (+0 == -0).
std::string compare_engines(const GraphEngine& a, const GraphEngine& b, int R) {
  const SpikingGraph& g = a.graph();
  const int rc = g.rows_cap;
  std::string msg;
  for (int idx = 0; idx < static_cast<int>(g.nodes.size()); ++idx) {
    const OpNode& nd = g.nodes[idx];
    const bool map = nd.is_map();
    const int width = map ? rc : nd.cols;
    int bad = 0;
    std::ostringstream first;
    for (int h = 0; h < (map ? nd.heads : 1); ++h) {
      for (int i = 0; i < R; ++i) {
        const int sr = h * (map ? rc : 0) + i;
        const float* va = a.value_row(idx, sr);
        const float* vb = b.value_row(idx, sr);
        for (int c = 0; c < width; ++c) {
          if (va[c] != vb[c] || std::isnan(va[c]) != std::isnan(vb[c])) {
            if (bad++ == 0) {
              first.precision(9);
              first << "head " << h << " row " << i << " col " << c << ": " << va[c] << " vs " << vb[c];
            }
          }
        }
      }
    }
    if (bad) msg += "node " + nd.name + ": " + std::to_string(bad) + " mismatches, first at " + first.str() + "\n";
  }
  return msg;
}

std::vector<float> random_rows(std::mt19937& rng, int R, int C, float sigma) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(R) * C);
  for (float& v : x) v = nd(rng);
  return x;
}

void set_rows_input(GraphEngine& e, int node, const std::vector<float>& x, int C, int r0, int r1) {
  for (int r = r0; r < r1; ++r) e.set_input(node, r, x.data() + static_cast<size_t>(r) * C);
}

// Message of the spikefm::Error thrown by f; "<no spikefm::Error>" if none.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no spikefm::Error>";
}

// ---- 1. ST-BIF on a row input --------------------------------------------------------------------

// Bounds (lo, hi) exercised by the neuron tests: signed, unsigned, asymmetric.
const std::pair<int, int> kBounds[] = {{-6, 6}, {0, 8}, {-3, 11}, {0, 1}};

TEST(GraphEngine, StBifNeuronSettlesToQuantizedInputBitExact) {
  const int R = 5, C = 12, rc = 7;
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    for (auto [lo, hi] : kBounds) {
      std::mt19937 rng(seed * 100 + static_cast<uint32_t>(hi - lo));
      // θ = th_u · 2^-5, x = x_u · 2^-5: x/θ and x/θ + 1/2 are exact in float32.
      const int64_t th_u = std::uniform_int_distribution<int>(0, 1)(rng) ? 8 : 16;
      const float unit = 1.0f / 32.0f;
      const float theta = static_cast<float>(th_u) * unit;
      SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, lo, hi)}, rc);
      GraphEngine e(g);
      e.set_rows(R);
      std::vector<int64_t> xu(static_cast<size_t>(R) * C);
      std::vector<float> x(xu.size());
      std::uniform_int_distribution<int64_t> xd((lo - 3) * th_u, (hi + 3) * th_u);  // clipping on both sides
      for (size_t k = 0; k < xu.size(); ++k) {
        xu[k] = xd(rng);
        x[k] = static_cast<float>(xu[k]) * unit;
      }
      set_rows_input(e, 0, x, C, 0, R);
      const RunReport rep = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 100});

      int64_t max_n = 0, pos = 0, neg = 0;
      for (int r = 0; r < R; ++r) {
        const float* v = e.value_row(1, r);
        for (int c = 0; c < C; ++c) {
          const size_t k = static_cast<size_t>(r) * C + c;
          const int64_t n = grid_count(xu[k], th_u, lo, hi);
          max_n = std::max(max_n, std::abs(n));
          (n > 0 ? pos : neg) += std::abs(n);
          const float want = static_cast<float>(n) * theta;
          ASSERT_EQ(v[c], want) << "seed " << seed << " bounds [" << lo << ", " << hi << "] row " << r << " col " << c
                                << " x " << x[k] << " theta " << theta;
          // the contract kernel agrees with the integer form on the grid
          ASSERT_EQ(dense::quantize_count(x[k], theta, static_cast<float>(lo), static_cast<float>(hi)), static_cast<float>(n));
        }
      }
      EXPECT_TRUE(rep.settled);
      EXPECT_LE(rep.steps, max_n + 1) << "seed " << seed << " bounds [" << lo << ", " << hi << "]";
      EXPECT_EQ(rep.spikes, pos + neg);
      EXPECT_EQ(e.stats()[1].spikes_pos, pos);
      EXPECT_EQ(e.stats()[1].spikes_neg, neg);
      EXPECT_EQ(e.stats()[1].neuron_updates, int64_t{rep.steps} * R * C);  // every active neuron, every step
    }
  }
}

TEST(GraphEngine, StBifNeuronOnGenericFloatInputsEqualsQuantizeCount) {
  // Off-grid inputs and θ: the engine must use exactly the QANN quantizer (same float ops).
  const int R = 4, C = 32, rc = 4;
  for (uint32_t seed : {11u, 12u, 13u}) {
    for (auto [lo, hi] : kBounds) {
      std::mt19937 rng(seed);
      const float theta = std::uniform_real_distribution<float>(0.05f, 1.5f)(rng);
      SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, lo, hi)}, rc);
      GraphEngine e(g);
      e.set_rows(R);
      const std::vector<float> x = random_rows(rng, R, C, theta * static_cast<float>(hi - lo) * 0.6f);
      set_rows_input(e, 0, x, C, 0, R);
      const RunReport rep = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 100});
      int64_t max_n = 0;
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < C; ++c) {
          const float x_rc = x[static_cast<size_t>(r) * C + c];
          const float n = dense::quantize_count(x_rc, theta, static_cast<float>(lo), static_cast<float>(hi));
          max_n = std::max<int64_t>(max_n, static_cast<int64_t>(std::fabs(n)));
          ASSERT_EQ(e.value_row(1, r)[c], n * theta) << "seed " << seed << " row " << r << " col " << c << " x " << x_rc;
        }
      }
      EXPECT_TRUE(rep.settled);
      EXPECT_LE(rep.steps, max_n + 1);
    }
  }
}

// ---- 2. count form == membrane form --------------------------------------------------------------

TEST(GraphEngine, CountFormStBifEqualsMembraneStBifStepByStep) {
  const int R = 3, C = 10, N = R * C, T = 60;
  for (uint32_t seed : {21u, 22u, 23u, 24u}) {
    for (auto [lo, hi] : kBounds) {
      std::mt19937 rng(seed * 7 + static_cast<uint32_t>(hi));
      const float theta = 0.25f;  // increments k/16: every X, V and X/θ is exact in float32
      SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, lo, hi)}, R);
      GraphEngine e(g);
      e.set_rows(R);
      StBifNeuron mem({Eigen::ArrayXf::Constant(N, theta), hi, lo});

      std::vector<float> X(N, 0.0f), prev_count(N, 0.0f);
      std::vector<float> current(N);
      std::vector<int8_t> spikes(N);
      std::uniform_int_distribution<int> inc(-10, 10);
      std::uniform_real_distribution<float> u01(0.0f, 1.0f);
      for (int t = 0; t < T; ++t) {
        // The accumulated input changes in the first 2/3 of the steps (sometimes not at all, then
        // set_input is skipped); the rest lets the neurons settle.
        const bool feed = t < 2 * T / 3 && u01(rng) < 0.7f;
        for (int k = 0; k < N; ++k) {
          const float dx = feed ? static_cast<float>(inc(rng)) / 16.0f : 0.0f;
          current[k] = dx;
          X[k] += dx;
        }
        if (feed) set_rows_input(e, 0, X, C, 0, R);
        e.run({.timesteps = 1});
        mem.step(current.data(), spikes.data());
        for (int k = 0; k < N; ++k) {
          const float count = e.value_row(1, k / C)[k % C] / theta;
          const float engine_spike = count - prev_count[k];
          prev_count[k] = count;
          ASSERT_EQ(engine_spike, static_cast<float>(spikes[k]))
              << "seed " << seed << " bounds [" << lo << ", " << hi << "] step " << t << " neuron " << k << " X " << X[k];
          ASSERT_EQ(count, static_cast<float>(mem.state().s[k]));
        }
      }
    }
  }
}

// ---- 3. linear after a neuron -------------------------------------------------------------------

TEST(GraphEngine, LinearAfterNeuronEqualsIntegerAccumulationAndCountsEvents) {
  const int R = 4, C = 16, OUT = 9, rc = 6;
  for (uint32_t seed : {31u, 32u, 33u, 34u, 35u}) {
    std::mt19937 rng(seed);
    const float theta = 0.25f;
    const int lo = seed % 2 ? -5 : 0, hi = 5;
    SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, lo, hi),
                                 linear("lin", 1, C, OUT, theta, rng)},
                                rc);
    GraphEngine e(g);
    e.set_rows(R);
    const std::vector<float> x = random_rows(rng, R, C, 0.8f);
    set_rows_input(e, 0, x, C, 0, R);
    const RunReport rep = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 100});
    ASSERT_TRUE(rep.settled);

    // value = float(acc)·scale + bias, acc = Σ_i n_i q[o, i] in integers
    const OpNode& lin = g.nodes[2];
    int64_t input_spikes = 0;
    for (int r = 0; r < R; ++r) {
      std::vector<int64_t> n(C);
      for (int i = 0; i < C; ++i) {
        n[i] = static_cast<int64_t>(dense::quantize_count(x[static_cast<size_t>(r) * C + i], theta, static_cast<float>(lo), static_cast<float>(hi)));
        input_spikes += std::abs(n[i]);
      }
      for (int o = 0; o < OUT; ++o) {
        int64_t acc = 0;
        for (int i = 0; i < C; ++i) acc += n[i] * lin.weight[static_cast<size_t>(o) * C + i];
        const float want = static_cast<float>(acc) * lin.scale[o] + lin.bias[o];
        ASSERT_EQ(e.value_row(2, r)[o], want) << "seed " << seed << " row " << r << " out " << o << " acc " << acc;
      }
    }
    const LayerStats& st = e.stats()[2];
    EXPECT_GT(input_spikes, 0);
    EXPECT_EQ(st.events, input_spikes) << "seed " << seed;
    EXPECT_EQ(st.sops, input_spikes * OUT) << "seed " << seed;
    EXPECT_EQ(st.weight_bytes_read, st.events * OUT) << "seed " << seed;
    // The per-step totals of this (only) run add up to the per-node totals.
    LayerStats by_step, by_node;
    for (const LayerStats& s : e.step_stats()) by_step += s;
    for (const LayerStats& s : e.stats()) by_node += s;
    EXPECT_EQ(static_cast<int>(e.step_stats().size()), rep.steps);
    EXPECT_TRUE(by_step == by_node) << "seed " << seed;
  }
}

TEST(GraphEngine, EncodeLinearOnPixelsEqualsIntegerMacsOncePerNewRow) {
  // pixel counts (0..255) -> dense int MACs once per new row -> ST-BIF -> event linear.
  const int IN = 12, C = 8, OUT = 5, rc = 4;
  for (uint32_t seed : {36u, 37u, 38u}) {
    std::mt19937 rng(seed);
    OpNode px;
    px.name = "px";
    px.kind = OpKind::pixel_input;
    px.cols = IN;
    OpNode enc = linear("enc", 0, IN, C, 1.0f / 255.0f, rng, 0.002f, 0.006f, 0.3f);
    enc.kind = OpKind::encode_linear;
    const SpikingGraph g = make_graph({px, enc, neuron("n", 1, C, NeuronKind::st_bif, 0.25f, -6, 6),
                                       linear("lin", 2, C, OUT, 0.25f, rng)},
                                      rc);
    std::vector<float> pix(static_cast<size_t>(rc) * IN);
    std::uniform_int_distribution<int> pd(0, 255);
    for (float& v : pix) v = static_cast<float>(pd(rng));
    GraphEngine e(g);
    e.set_rows(3);
    set_rows_input(e, 0, pix, IN, 0, 3);
    ASSERT_TRUE(e.run({.timesteps = 1, .until_quiet = true, .max_steps = 100}).settled);
    EXPECT_EQ(e.stats()[1].dense_macs, int64_t{3} * IN * C);
    e.set_rows(4);
    set_rows_input(e, 0, pix, IN, 3, 4);
    ASSERT_TRUE(e.run({.timesteps = 1, .until_quiet = true, .max_steps = 100}).settled);
    EXPECT_EQ(e.stats()[1].dense_macs, int64_t{4} * IN * C) << "only the new row is encoded";
    EXPECT_EQ(compare_all(e, reference_exact(g, {{0, pix}}, 4), 4), "") << "seed " << seed;
  }
}

// ---- 4. attention: qk -> softmax -> map neuron -> av --------------------------------------------

// Token inputs xq, xk, xv (R, C) -> signed ST-BIF -> qk (H, R, R) -> softmax -> unsigned map neurons
// -> av (R, C). θ = 1/4, d = 4: prod_scale of qk = θ²/√d = 1/32, of av = θ_p θ_v.
SpikingGraph attention_graph(bool causal, int rows_cap) {
  const int H = 2, d = 4, C = H * d;
  const float th = 0.25f, th_p = 1.0f / 16.0f;
  return make_graph({row_input("xq", C), row_input("xk", C), row_input("xv", C),
                     neuron("nq", 0, C, NeuronKind::st_bif, th, -4, 4), neuron("nk", 1, C, NeuronKind::st_bif, th, -4, 4),
                     neuron("nv", 2, C, NeuronKind::st_bif, th, -4, 4),
                     product("qk", OpKind::qk_product, 3, 4, H, 0, th * th / std::sqrt(float(d)), causal),
                     softmax("sm", 6, H, causal), neuron("np", 7, 0, NeuronKind::st_bif, th_p, 0, 16, 1, H),
                     product("av", OpKind::av_product, 8, 5, H, C, th_p * th, causal)},
                    rows_cap);
}

TEST(GraphEngine, AttentionProductsSoftmaxAndMapNeuronsEqualQannBitExact) {
  const int R = 5, C = 8, rc = 7;
  for (bool causal : {false, true}) {
    for (uint32_t seed : {41u, 42u, 43u, 44u}) {
      std::mt19937 rng(seed + (causal ? 100 : 0));
      const SpikingGraph g = attention_graph(causal, rc);
      GraphEngine e(g);
      e.set_rows(R);
      std::map<int, std::vector<float>> in;
      for (int node : {0, 1, 2}) {
        in[node] = random_rows(rng, R, C, 0.6f);
        set_rows_input(e, node, in[node], C, 0, R);
      }
      const RunReport rep = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 200});
      ASSERT_TRUE(rep.settled);
      const auto ref = reference_exact(g, in, R);
      const std::string ctx = std::string(causal ? "causal" : "non-causal") + " seed " + std::to_string(seed);
      EXPECT_EQ(compare_all(e, ref, R), "") << ctx;

      // The attention is not degenerate: probabilities spread over several levels.
      int levels_seen = 0;
      std::vector<bool> seen(17, false);
      for (int64_t n : ref[8].n) seen[n] = true;
      for (bool s : seen) levels_seen += s;
      EXPECT_GE(levels_seen, 3) << ctx;

      // Counts: q, k, v follow their inputs monotonically (Σ|n| spikes each); every q spike of row i
      // meets the visible keys (i + 1 causal, R otherwise), every k spike of row j the queries that
      // see it (R − j causal, R otherwise); a probability spike meets d values, a v spike of row j the
      // rows that see it. The map neurons may spike up and down as the softmax settles, so their
      // spike total is taken from their own counter.
      {
        const int d = 4;
        int64_t q_ev = 0, q_sops = 0, k_ev = 0, k_sops = 0, v_ev = 0, v_sops = 0;
        for (int i = 0; i < R; ++i) {
          for (int c = 0; c < C; ++c) {
            const size_t k = static_cast<size_t>(i) * C + c;
            q_ev += std::abs(ref[3].n[k]);
            q_sops += std::abs(ref[3].n[k]) * (causal ? i + 1 : R);
            k_ev += std::abs(ref[4].n[k]);
            k_sops += std::abs(ref[4].n[k]) * (causal ? R - i : R);
            v_ev += std::abs(ref[5].n[k]);
            v_sops += std::abs(ref[5].n[k]) * (causal ? R - i : R);
          }
        }
        const auto& st = e.stats();
        EXPECT_EQ(st[3].spikes_pos + st[3].spikes_neg, q_ev) << ctx;
        EXPECT_EQ(st[4].spikes_pos + st[4].spikes_neg, k_ev) << ctx;
        EXPECT_EQ(st[6].events, q_ev + k_ev) << ctx;
        EXPECT_EQ(st[6].sops, q_sops + k_sops) << ctx;
        const int64_t p_ev = st[8].spikes_pos + st[8].spikes_neg;
        int64_t p_final = 0;
        for (int64_t n : ref[8].n) p_final += n;
        EXPECT_GE(p_ev, p_final) << ctx;
        EXPECT_EQ(st[8].spikes_pos - st[8].spikes_neg, p_final) << ctx;
        EXPECT_EQ(st[9].events, p_ev + v_ev) << ctx;
        EXPECT_EQ(st[9].sops, p_ev * d + v_sops) << ctx;
      }

      if (causal) {
        // Zeros beyond the diagonal in the logits, the probabilities and the probability counts.
        for (int node : {6, 7, 8}) {
          for (int h = 0; h < 2; ++h) {
            for (int i = 0; i < R; ++i) {
              const float* v = e.value_row(node, h * rc + i);
              for (int j = i + 1; j < rc; ++j) EXPECT_EQ(v[j], 0.0f) << ctx << " node " << g.nodes[node].name << " head " << h << " (" << i << ", " << j << ")";
            }
          }
        }
      }
    }
  }
}

// ---- 5. incremental rows and rollback -----------------------------------------------------------

// A decoder block: x -> ST-BIF -> q/k/v linears -> ST-BIF -> causal attention -> ST-BIF -> out linear
// -> residual add -> LayerNorm.
SpikingGraph decoder_graph(bool causal, int rows_cap, uint32_t seed) {
  std::mt19937 rng(seed);
  const int H = 2, d = 4, C = H * d;
  const float th = 0.25f, th_p = 1.0f / 16.0f;
  OpNode ln;
  ln.name = "ln";
  ln.kind = OpKind::layer_norm;
  ln.inputs = {14};
  ln.cols = C;
  std::uniform_real_distribution<float> gd(0.5f, 1.5f), bd(-0.3f, 0.3f);
  for (int c = 0; c < C; ++c) {
    ln.gamma.push_back(gd(rng));
    ln.beta.push_back(bd(rng));
  }
  OpNode add;
  add.name = "res";
  add.kind = OpKind::add;
  add.inputs = {0, 13};
  add.cols = C;
  return make_graph({row_input("x", C),                                              // 0
                     neuron("nx", 0, C, NeuronKind::st_bif, th, -6, 6),              // 1
                     linear("lq", 1, C, C, th, rng, 0.003f, 0.006f, 0.2f),          // 2
                     linear("lk", 1, C, C, th, rng, 0.003f, 0.006f, 0.2f),          // 3
                     linear("lv", 1, C, C, th, rng, 0.003f, 0.006f, 0.2f),          // 4
                     neuron("nq", 2, C, NeuronKind::st_bif, th, -4, 4),              // 5
                     neuron("nk", 3, C, NeuronKind::st_bif, th, -4, 4),              // 6
                     neuron("nv", 4, C, NeuronKind::st_bif, th, -4, 4),              // 7
                     product("qk", OpKind::qk_product, 5, 6, H, 0, th * th / 2.0f, causal),  // 8
                     softmax("sm", 8, H, causal),                                    // 9
                     neuron("np", 9, 0, NeuronKind::st_bif, th_p, 0, 16, 1, H),      // 10
                     product("av", OpKind::av_product, 10, 7, H, C, th_p * th, causal),  // 11
                     neuron("na", 11, C, NeuronKind::st_bif, th, -4, 4),             // 12
                     linear("lo", 12, C, C, th, rng, 0.003f, 0.006f, 0.2f),          // 13
                     add,                                                           // 14
                     ln},                                                           // 15
                    rows_cap);
}

GraphEngine fresh_engine_run(const SpikingGraph& g, const std::vector<float>& x, int R) {
  GraphEngine e(g);
  e.set_rows(R);
  set_rows_input(e, 0, x, g.nodes[0].cols, 0, R);
  const RunReport rep = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 500});
  EXPECT_TRUE(rep.settled);
  return e;
}

TEST(GraphEngine, GroupedLinearKeepsOneAccumulatorPerGroupThroughRollback) {
  // Per-group weight scales (compressed layers): value = Σ_g float(acc_g)·scale_g in group order + bias,
  // acc_g = Σ_{i in g} n_i q[o, i], with a ragged last group (C = 21 in groups of 8); the hardware reads
  // rows of weight_bits-wide codes. Rolling rows back and growing them again equals a fresh engine.
  const int R = 4, C = 21, OUT = 9, rc = 6, group = 8, G = 3;
  for (int bits : {4, 2}) {
    std::mt19937 rng(40 + bits);
    const float theta = 0.25f;
    const int qmax = (1 << (bits - 1)) - 1;
    OpNode lin = linear("lin", 1, C, OUT, theta, rng);
    std::uniform_int_distribution<int> wd(-qmax, qmax);
    std::uniform_real_distribution<float> sd(0.002f, 0.01f);
    for (auto& w : lin.weight) w = static_cast<int8_t>(wd(rng));
    lin.weight_bits = bits;
    lin.group = group;
    lin.scale.clear();
    for (int k = 0; k < OUT * G; ++k) lin.scale.push_back(theta * sd(rng));
    SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, -5, 5), lin}, rc);
    const std::vector<float> x = random_rows(rng, R, C, 0.8f);
    GraphEngine e = fresh_engine_run(g, x, R);
    int64_t input_spikes = 0;
    for (int r = 0; r < R; ++r) {
      std::vector<int64_t> n(C);
      for (int i = 0; i < C; ++i) {
        n[i] = static_cast<int64_t>(dense::quantize_count(x[static_cast<size_t>(r) * C + i], theta, -5.0f, 5.0f));
        input_spikes += std::abs(n[i]);
      }
      for (int o = 0; o < OUT; ++o) {
        float want = 0.0f;
        for (int gi = 0; gi < G; ++gi) {
          int64_t acc = 0;
          for (int i = gi * group; i < std::min(C, (gi + 1) * group); ++i) acc += n[i] * lin.weight[static_cast<size_t>(o) * C + i];
          const float term = static_cast<float>(acc) * lin.scale[static_cast<size_t>(o) * G + gi];
          want = gi == 0 ? term : want + term;
        }
        want = want + lin.bias[o];
        ASSERT_EQ(e.value_row(2, r)[o], want) << "bits " << bits << " row " << r << " out " << o;
      }
    }
    const LayerStats& st = e.stats()[2];
    EXPECT_EQ(st.events, input_spikes);
    EXPECT_EQ(st.sops, input_spikes * OUT);
    EXPECT_EQ(st.weight_bytes_read, st.events * ((OUT * bits + 7) / 8)) << "bits " << bits;
    // roll rows 2..3 back, feed other rows there: the group accumulators of the dropped rows are gone
    std::vector<float> x2 = x;
    const std::vector<float> rows23 = random_rows(rng, 2, C, 0.8f);
    std::copy(rows23.begin(), rows23.end(), x2.begin() + 2 * C);
    e.set_rows(2);
    e.set_rows(4);
    set_rows_input(e, 0, x2, C, 2, 4);
    ASSERT_TRUE(e.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    EXPECT_EQ(compare_engines(e, fresh_engine_run(g, x2, 4), 4), "") << "bits " << bits;
  }
  // validation: codes beyond the width and scales of the wrong size are refused naming the node
  std::mt19937 rng(7);
  OpNode bad = linear("lin", 1, C, OUT, 0.25f, rng);
  bad.weight_bits = 2;
  bad.weight[0] = 2;
  EXPECT_NE(error_message([&] { make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, 0.25f, -5, 5), bad}, rc).validate(); })
                .find("[-1, 1] at 2 bits"),
            std::string::npos);
  bad.weight_bits = 8;
  bad.group = group;  // 3 groups, but one scale per output
  EXPECT_NE(error_message([&] { make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, 0.25f, -5, 5), bad}, rc).validate(); })
                .find("out x groups"),
            std::string::npos);
}

TEST(GraphEngine, IncrementalRowsAndRollbackEqualFreshEngine) {
  const int C = 8, rc = 6;
  for (uint32_t seed : {51u, 52u, 53u, 54u}) {
    std::mt19937 rng(seed);
    const SpikingGraph g = decoder_graph(true, rc, seed);
    const std::vector<float> x = random_rows(rng, 4, C, 0.9f);
    std::vector<float> x2 = x;  // the same first 3 rows, another row 3
    const std::vector<float> row3b = random_rows(rng, 1, C, 0.9f);
    std::copy(row3b.begin(), row3b.end(), x2.begin() + 3 * C);

    GraphEngine inc(g);
    inc.set_rows(3);
    set_rows_input(inc, 0, x, C, 0, 3);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    inc.set_rows(4);
    set_rows_input(inc, 0, x, C, 3, 4);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);

    const GraphEngine full = fresh_engine_run(g, x, 4);
    EXPECT_EQ(compare_engines(inc, full, 4), "") << "seed " << seed << ": rows 0..2 then row 3";
    // and both equal the one-pass QANN reference
    EXPECT_EQ(compare_all(full, reference_exact(g, {{0, x}}, 4), 4), "") << "seed " << seed;

    // Rollback of row 3 and another token in its place.
    inc.set_rows(3);
    inc.set_rows(4);
    set_rows_input(inc, 0, x2, C, 3, 4);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    const GraphEngine full2 = fresh_engine_run(g, x2, 4);
    EXPECT_EQ(compare_engines(inc, full2, 4), "") << "seed " << seed << ": after rollback";

    // Rollback of two rows at once, then two new tokens.
    std::vector<float> x3 = x2;
    const std::vector<float> rows23 = random_rows(rng, 2, C, 0.9f);
    std::copy(rows23.begin(), rows23.end(), x3.begin() + 2 * C);
    inc.set_rows(2);
    inc.set_rows(4);
    set_rows_input(inc, 0, x3, C, 2, 4);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    EXPECT_EQ(compare_engines(inc, fresh_engine_run(g, x3, 4), 4), "") << "seed " << seed << ": after 2-row rollback";

    // reset() forgets everything: the same engine then equals a fresh one.
    inc.reset();
    inc.set_rows(4);
    set_rows_input(inc, 0, x2, C, 0, 4);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    EXPECT_EQ(compare_engines(inc, full2, 4), "") << "seed " << seed << ": after reset";
  }
}

TEST(GraphEngine, GrowingAndRollingBackUnsettledRowsEqualsFreshEngine) {
  // A decoder run with a fixed T may stop before its neurons settle; appending or dropping tokens
  // then must not corrupt the spikes still in flight.
  const int C = 8, rc = 6;
  for (uint32_t seed : {81u, 82u, 83u}) {
    for (int T : {1, 2, 3}) {
      std::mt19937 rng(seed);
      const SpikingGraph g = decoder_graph(true, rc, seed);
      std::vector<float> x = random_rows(rng, 5, C, 0.9f);
      GraphEngine inc(g);
      inc.set_rows(3);
      set_rows_input(inc, 0, x, C, 0, 3);
      ASSERT_FALSE(inc.run({.timesteps = T}).settled);
      inc.set_rows(5);  // grow while rows 0..2 are in flight
      set_rows_input(inc, 0, x, C, 3, 5);
      ASSERT_FALSE(inc.run({.timesteps = T}).settled);
      inc.set_rows(3);  // drop rows 3, 4 while in flight
      inc.set_rows(4);
      const std::vector<float> row3 = random_rows(rng, 1, C, 0.9f);
      std::copy(row3.begin(), row3.end(), x.begin() + 3 * C);
      set_rows_input(inc, 0, x, C, 3, 4);
      ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
      const std::string ctx = "seed " + std::to_string(seed) + " T " + std::to_string(T);
      EXPECT_EQ(compare_engines(inc, fresh_engine_run(g, x, 4), 4), "") << ctx;
      EXPECT_EQ(compare_all(inc, reference_exact(g, {{0, x}}, 4), 4), "") << ctx;
    }
  }
}

TEST(GraphEngine, GrowingRowsOfNonCausalGraphEqualsFreshEngine) {
  // Encoder attention: a new token is a new key for every earlier query too.
  const int C = 8, rc = 6;
  for (uint32_t seed : {56u, 57u, 58u}) {
    std::mt19937 rng(seed);
    const SpikingGraph g = decoder_graph(false, rc, seed);
    const std::vector<float> x = random_rows(rng, 5, C, 0.9f);
    GraphEngine inc(g);
    inc.set_rows(3);
    set_rows_input(inc, 0, x, C, 0, 3);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    inc.set_rows(5);
    set_rows_input(inc, 0, x, C, 3, 5);
    ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
    const GraphEngine full = fresh_engine_run(g, x, 5);
    EXPECT_EQ(compare_engines(inc, full, 5), "") << "seed " << seed;
    EXPECT_EQ(compare_all(full, reference_exact(g, {{0, x}}, 5), 5), "") << "seed " << seed;
  }
}

TEST(GraphEngine, NewTokenWithSilentKeyStillJoinsEveryVisibleSoftmax) {
  // A key whose spike counts are all 0 has logit 0 and still takes probability mass exp(0 − max):
  // growing the rows must recompute the softmax of every row that sees it even though no spike
  // reaches those rows' logits.
  const int C = 8, rc = 6, R0 = 3, R = 5;
  for (bool causal : {false, true}) {
    for (uint32_t seed : {59u, 60u}) {
      std::mt19937 rng(seed);
      const SpikingGraph g = attention_graph(causal, rc);
      std::map<int, std::vector<float>> in;
      for (int node : {0, 1, 2}) {
        in[node] = random_rows(rng, R, C, 0.6f);
        // rows R0.. are below θ/2 = 0.125 everywhere: silent q, k and v
        for (size_t k = static_cast<size_t>(R0) * C; k < in[node].size(); ++k) in[node][k] *= 0.01f;
      }
      GraphEngine inc(g);
      inc.set_rows(R0);
      for (int node : {0, 1, 2}) set_rows_input(inc, node, in[node], C, 0, R0);
      ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 200}).settled);
      inc.set_rows(R);
      for (int node : {0, 1, 2}) set_rows_input(inc, node, in[node], C, R0, R);
      ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 200}).settled);
      EXPECT_EQ(compare_all(inc, reference_exact(g, in, R), R), "")
          << (causal ? "causal" : "non-causal") << " seed " << seed;
    }
  }
}

TEST(GraphEngine, ChangedInputOfAnEarlierRowAfterSettlingEqualsFreshEngine) {
  // Spikes retract: changing a settled row's input moves every dependent value to the new QANN value.
  const int C = 8, rc = 5, R = 4;
  for (bool causal : {true, false}) {
    for (uint32_t seed : {65u, 66u, 67u}) {
      std::mt19937 rng(seed);
      const SpikingGraph g = decoder_graph(causal, rc, seed);
      std::vector<float> x = random_rows(rng, R, C, 0.9f);
      GraphEngine e = fresh_engine_run(g, x, R);
      const std::vector<float> row1 = random_rows(rng, 1, C, 0.9f);
      std::copy(row1.begin(), row1.end(), x.begin() + C);
      e.set_input(0, 1, row1.data());
      ASSERT_TRUE(e.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
      const std::string ctx = std::string(causal ? "causal" : "non-causal") + " seed " + std::to_string(seed);
      EXPECT_EQ(compare_engines(e, fresh_engine_run(g, x, R), R), "") << ctx;
      EXPECT_EQ(compare_all(e, reference_exact(g, {{0, x}}, R), R), "") << ctx;
    }
  }
}

// ---- 6. burst neurons ---------------------------------------------------------------------------

TEST(GraphEngine, BurstNeuronReachesStBifValuesInAThirdOfTheSteps) {
  const int R = 4, C = 12, OUT = 5, B = 3;
  for (uint32_t seed : {61u, 62u, 63u, 64u}) {
    for (auto [lo, hi] : {std::pair{-20, 20}, std::pair{0, 17}}) {
      std::mt19937 rng(seed);
      const float theta = 0.125f;
      std::mt19937 wrng(seed + 1000);
      SpikingGraph gs = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, lo, hi),
                                    linear("lin", 1, C, OUT, theta, wrng)},
                                   R);
      SpikingGraph gb = gs;
      gb.nodes[1].neuron = NeuronKind::burst;
      gb.nodes[1].burst = B;
      const std::vector<float> x = random_rows(rng, R, C, 1.5f);
      GraphEngine es = fresh_engine_run(gs, x, R);
      GraphEngine eb = fresh_engine_run(gb, x, R);
      const std::string ctx = "seed " + std::to_string(seed) + " bounds [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
      EXPECT_EQ(compare_engines(eb, es, R), "") << ctx;
      EXPECT_EQ(compare_all(eb, reference_exact(gb, {{0, x}}, R), R), "") << ctx;

      const auto ref = reference_exact(gs, {{0, x}}, R);
      int64_t max_n = 0, bursts = 0, spikes = 0;
      for (int64_t n : ref[1].n) {
        max_n = std::max(max_n, std::abs(n));
        bursts += (std::abs(n) + B - 1) / B;
        spikes += std::abs(n);
      }
      ASSERT_GE(max_n, 2 * B) << ctx << ": inputs too small to exercise bursts";
      EXPECT_LE(eb.steps_in_last_run(), (max_n + B - 1) / B + 1) << ctx << " max|n| " << max_n;
      // Events: one per burst (a burst of ±3 is one event, three spikes).
      const LayerStats& nst = eb.stats()[1];
      EXPECT_EQ(nst.spikes_pos + nst.spikes_neg, spikes) << ctx;
      EXPECT_EQ(eb.stats()[2].events, bursts) << ctx;
      EXPECT_EQ(eb.stats()[2].sops, bursts * OUT) << ctx;
    }
  }
}

TEST(GraphEngine, BurstNeuronsThroughAttentionEqualQannBitExact) {
  // Bursts of up to ±3 drive the linear layers and both spike×spike products.
  const int C = 8, rc = 5, R = 5;
  for (bool causal : {true, false}) {
    for (uint32_t seed : {68u, 69u}) {
      std::mt19937 rng(seed);
      SpikingGraph g = decoder_graph(causal, rc, seed);
      for (OpNode& n : g.nodes) {
        if (n.kind == OpKind::neuron) {
          n.neuron = NeuronKind::burst;
          n.burst = 3;
        }
      }
      const std::vector<float> x = random_rows(rng, R, C, 0.9f);
      const GraphEngine e = fresh_engine_run(g, x, R);
      EXPECT_EQ(compare_all(e, reference_exact(g, {{0, x}}, R), R), "") << (causal ? "causal" : "non-causal") << " seed " << seed;
    }
  }
}

// ---- 7. rate coding -----------------------------------------------------------------------------

TEST(GraphEngine, RateCodedIfEstimateConvergesToClippedAnnValue) {
  const int R = 3, C = 16, OUT = 6;
  const float theta = 0.5f;
  for (int lo : {0, -1}) {  // if_rate: lo < 0 means signed
    double err[2] = {0, 0};
    const int Ts[2] = {4, 64};
    for (uint32_t seed : {71u, 72u, 73u, 74u, 75u}) {
      std::mt19937 rng(seed);
      SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::if_rate, theta, lo, 0),
                                   linear("lin", 1, C, OUT, theta, rng)},
                                  R, Coding::rate);
      std::vector<float> x(static_cast<size_t>(R) * C);
      std::uniform_real_distribution<float> xd(-1.5f * theta, 1.5f * theta);
      for (float& v : x) v = xd(rng);
      // ANN reference: W · clip(x, lo·θ, θ) + b with W[o, i] = q[o, i] · s_o = q[o, i] · scale_o / θ.
      const OpNode& lin = g.nodes[2];
      std::vector<double> ann(static_cast<size_t>(R) * OUT);
      for (int r = 0; r < R; ++r) {
        for (int o = 0; o < OUT; ++o) {
          double y = lin.bias[o];
          for (int i = 0; i < C; ++i) {
            const double xi = std::clamp<double>(x[static_cast<size_t>(r) * C + i], lo < 0 ? -theta : 0.0, theta);
            y += lin.weight[static_cast<size_t>(o) * C + i] * (static_cast<double>(lin.scale[o]) / theta) * xi;
          }
          ann[static_cast<size_t>(r) * OUT + o] = y;
        }
      }
      for (int k = 0; k < 2; ++k) {
        GraphEngine e(g);
        e.set_rows(R);
        set_rows_input(e, 0, x, C, 0, R);
        const RunReport rep = e.run({.timesteps = Ts[k]});
        ASSERT_EQ(rep.steps, Ts[k]);
        for (int r = 0; r < R; ++r) {
          const std::vector<float> est = e.output_row(r);
          for (int o = 0; o < OUT; ++o) {
            const double dlt = est[o] - ann[static_cast<size_t>(r) * OUT + o];
            err[k] += dlt * dlt;
          }
        }
      }
    }
    const double n = 5.0 * R * OUT;
    const double rms4 = std::sqrt(err[0] / n), rms64 = std::sqrt(err[1] / n);
    // Per input the rate error is at most θ/(2T): 16x smaller at T = 64; ask for 4x.
    EXPECT_LT(rms64, 0.25 * rms4) << (lo < 0 ? "signed" : "unsigned") << ": RMS error T=4 " << rms4 << ", T=64 " << rms64;
    EXPECT_GT(rms4, 0.0);
  }
}

TEST(GraphEngine, RateCodedIfSpikeCountWithinOneOfTxOverTheta) {
  const int C = 24;
  const float theta = 0.5f;
  for (uint32_t seed : {76u, 77u, 78u}) {
    std::mt19937 rng(seed);
    SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::if_rate, theta, 0, 0)}, 1, Coding::rate);
    // x = k/256 in (0, θ): (t + 1)·x − t·x is exact, so the membrane sees exactly x each step.
    std::vector<float> x(C);
    std::uniform_int_distribution<int> xd(1, 127);
    for (float& v : x) v = static_cast<float>(xd(rng)) / 256.0f;
    GraphEngine e(g);
    e.set_rows(1);
    e.set_input(0, 0, x.data());
    for (int T : {1, 4, 16, 64, 100}) {  // every run restarts from zero state
      e.run({.timesteps = T});
      for (int c = 0; c < C; ++c) {
        const double count = e.value_row(1, 0)[c] / theta;
        EXPECT_NEAR(count, T * x[c] / theta, 1.0) << "seed " << seed << " T " << T << " x " << x[c];
        // With V(0) = θ/2 (IfRateNeuron's default, Bu et al. 2022) the count is the rounded rate.
        EXPECT_EQ(count, std::floor(T * static_cast<double>(x[c]) / theta + 0.5)) << "seed " << seed << " T " << T << " x " << x[c];
      }
    }
  }
}

TEST(GraphEngine, NanInputNeverDrivesSpikeCountsOutOfBounds) {
  // Regression guard: S stays in [lo, hi] (or the NaN is refused with spikefm::Error, STYLE rule 9).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  SpikingGraph g = make_graph({row_input("x", 2), neuron("n", 0, 2, NeuronKind::st_bif, 0.5f, -4, 4)}, 1);
  GraphEngine e(g);
  e.set_rows(1);
  const float x[2] = {nan, 1.0f};
  std::string err = "<no spikefm::Error>";
  RunReport rep;
  try {
    e.set_input(0, 0, x);
    rep = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 50});
  } catch (const Error& ex) {
    err = ex.what();
  }
  if (err == "<no spikefm::Error>") {
    const float v = e.value_row(1, 0)[0];
    EXPECT_GE(v, -4 * 0.5f) << "count of the NaN neuron below lo after " << rep.steps << " steps";
    EXPECT_LE(v, 4 * 0.5f);
    EXPECT_TRUE(rep.settled) << rep.steps << " steps";
    EXPECT_EQ(e.value_row(1, 0)[1], 1.0f);  // the other neuron is unaffected
  }
}

// ---- 8. bad graphs ------------------------------------------------------------------------------

TEST(GraphEngine, BadGraphsThrowErrorsNamingTheNode) {
  std::mt19937 rng(81);
  auto good = [&] {
    return make_graph({row_input("x", 4), neuron("bad_n", 0, 4, NeuronKind::st_bif, 0.5f, -2, 2),
                       linear("bad_lin", 1, 4, 3, 0.5f, rng)},
                      4);
  };
  ASSERT_NO_THROW(good().validate());

  auto expect_named = [&](const SpikingGraph& g, const std::string& node, const std::string& what) {
    const std::string m = error_message([&] { g.validate(); });
    EXPECT_NE(m.find(node), std::string::npos) << what << ": " << m;
    EXPECT_NE(m, "<no spikefm::Error>") << what;
    const std::string m2 = error_message([&] { GraphEngine e(g); });  // the engine validates too
    EXPECT_NE(m2.find(node), std::string::npos) << what << " (GraphEngine): " << m2;
  };

  {  // linear fed by a non-neuron
    SpikingGraph g = good();
    g.nodes[2].inputs = {0};
    expect_named(g, "bad_lin", "linear on a row_input");
  }
  for (float th : {std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.5f, std::numeric_limits<float>::infinity()}) {
    SpikingGraph g = good();
    g.nodes[1].theta = th;
    expect_named(g, "bad_n", "theta " + std::to_string(th));
  }
  {  // weight of wrong size
    SpikingGraph g = good();
    g.nodes[2].weight.pop_back();
    expect_named(g, "bad_lin", "weight (out, in) - 1");
  }
  {  // input index not earlier: itself, and a later node
    SpikingGraph g = good();
    g.nodes[1].inputs = {1};
    expect_named(g, "bad_n", "self input");
    g.nodes[1].inputs = {2};
    expect_named(g, "bad_n", "later input");
    g.nodes[1].inputs = {-1};
    expect_named(g, "bad_n", "negative input");
  }
  for (NeuronKind k : {NeuronKind::st_bif, NeuronKind::burst}) {  // lo > 0
    SpikingGraph g = good();
    g.nodes[1].neuron = k;
    g.nodes[1].lo = 1;
    g.nodes[1].hi = 4;
    expect_named(g, "bad_n", std::string("lo > 0, ") + neuron_kind_name(k));
  }

  {  // a neuron's bounds must be lo <= 0 <= hi, lo < hi
    SpikingGraph g = good();
    g.nodes[1].lo = -2;
    g.nodes[1].hi = -1;
    expect_named(g, "bad_n", "hi < 0");
  }

  GraphEngine e(good());
  EXPECT_NO_THROW(e.set_rows(4));
  EXPECT_NE(error_message([&] { e.set_rows(5); }), "<no spikefm::Error>");
  EXPECT_NE(error_message([&] { e.set_rows(-1); }), "<no spikefm::Error>");
  EXPECT_EQ(e.rows(), 4);  // a refused set_rows changes nothing
}

TEST(GraphEngine, LinearOnAttentionMapNeuronsIsRefusedByValidate) {
  // A linear layer needs token-row spikes; validate() must refuse one on attention-map neurons.
  SpikingGraph g = attention_graph(false, 4);
  OpNode lin;
  lin.name = "lin_on_map";
  lin.kind = OpKind::linear;
  lin.inputs = {8};  // np, the probability neurons
  lin.in = 0;
  lin.cols = 3;
  lin.scale = {1.0f, 1.0f, 1.0f};
  lin.bias = {0.0f, 0.0f, 0.0f};
  g.nodes.push_back(lin);
  g.output = static_cast<int>(g.nodes.size()) - 1;
  const std::string m = error_message([&] { g.validate(); });
  EXPECT_NE(m.find("lin_on_map"), std::string::npos) << m;
}

// ---- ANN-equivalent work (AnnWork): the MAC-array baseline's counts --------------------------------

// The work an ANN does for the same rows, counted from the one-pass reference's activations: each
// row once, MACs = visible partners × width, executed MACs skip zero activations.
TEST(GraphEngine, AnnWorkOfAttentionEqualsCountsFromTheReferenceActivations) {
  const int R = 5, C = 8, H = 2, d = 4, rc = 7;
  for (bool causal : {false, true}) {
    std::mt19937 rng(causal ? 61u : 62u);
    const SpikingGraph g = attention_graph(causal, rc);
    GraphEngine e(g);
    e.set_rows(R);
    std::map<int, std::vector<float>> in;
    for (int node : {0, 1, 2}) {
      in[node] = random_rows(rng, R, C, 0.6f);
      set_rows_input(e, node, in[node], C, 0, R);
    }
    ASSERT_TRUE(e.run({.timesteps = 1, .until_quiet = true, .max_steps = 200}).settled);
    const auto ref = reference_exact(g, in, R);
    int64_t qk_macs = 0, qk_nz = 0, av_macs = 0, av_nz = 0, sm_ops = 0, p_out = 0;
    for (int i = 0; i < R; ++i) {
      const int vis = causal ? i + 1 : R;
      int64_t q_nnz = 0;
      for (int c = 0; c < C; ++c) q_nnz += ref[3].n[static_cast<size_t>(i) * C + c] != 0;
      qk_macs += static_cast<int64_t>(vis) * C;
      qk_nz += q_nnz * vis;
      av_macs += static_cast<int64_t>(vis) * C;
      for (int h = 0; h < H; ++h) {
        for (int j = 0; j < vis; ++j) av_nz += (ref[8].n[static_cast<size_t>(h * R + i) * R + j] != 0) * d;
      }
      sm_ops += 5 * H * vis;
      p_out += H * vis;
    }
    const auto& w = e.ann_work();
    const std::string ctx = causal ? "causal" : "non-causal";
    EXPECT_EQ(w[6].macs, qk_macs) << ctx;
    EXPECT_EQ(w[6].nonzero_macs, qk_nz) << ctx;
    EXPECT_EQ(w[9].macs, av_macs) << ctx;
    EXPECT_EQ(w[9].nonzero_macs, av_nz) << ctx;
    EXPECT_GT(av_nz, 0) << ctx;
    EXPECT_EQ(w[7].dense_ops, sm_ops) << ctx;
    EXPECT_EQ(w[8].outputs, p_out) << ctx;
    EXPECT_EQ(w[3].outputs, static_cast<int64_t>(R) * C) << ctx;
    for (const AnnWork& x : w) EXPECT_EQ(x.rows == 0 || x.rows == R, true) << ctx;
  }
}

TEST(GraphEngine, AnnWorkOfLinearCountsRowsInputsAndNonzeroActivations) {
  const int R = 4, C = 16, OUT = 9, rc = 6;
  std::mt19937 rng(63);
  const float theta = 0.25f;
  SpikingGraph g = make_graph({row_input("x", C), neuron("n", 0, C, NeuronKind::st_bif, theta, 0, 5),
                               linear("lin", 1, C, OUT, theta, rng)},
                              rc);
  GraphEngine e(g);
  e.set_rows(R);
  const std::vector<float> x = random_rows(rng, R, C, 0.8f);
  set_rows_input(e, 0, x, C, 0, R);
  ASSERT_TRUE(e.run({.timesteps = 1, .until_quiet = true, .max_steps = 100}).settled);
  int64_t nnz = 0;
  for (float v : x) nnz += dense::quantize_count(v, theta, 0.0f, 5.0f) != 0;
  const AnnWork& w = e.ann_work()[2];
  EXPECT_EQ(w.rows, R);
  EXPECT_EQ(w.macs, static_cast<int64_t>(R) * C * OUT);
  EXPECT_EQ(w.nonzero_macs, nnz * OUT);
  EXPECT_GT(nnz, 0);
  EXPECT_LT(nnz, R * C);  // unsigned neurons: negative inputs give zeros
  EXPECT_EQ(w.weight_bytes, static_cast<int64_t>(C) * OUT);
  EXPECT_EQ(w.act_reads, static_cast<int64_t>(R) * C);
}

// A KV-cached ANN computes each row once: rows added one run at a time (and a rolled-back row
// computed again) cost what computing them in one run costs — except the weights, read once per run.
TEST(GraphEngine, AnnWorkOfIncrementalRowsEqualsOneRunOverTheSameRows) {
  const int C = 8, rc = 6;
  std::mt19937 rng(64);
  const SpikingGraph g = decoder_graph(true, rc, 64);
  const std::vector<float> x = random_rows(rng, 4, C, 0.9f);
  GraphEngine inc(g);
  inc.set_rows(3);
  set_rows_input(inc, 0, x, C, 0, 3);
  ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
  inc.set_rows(4);
  set_rows_input(inc, 0, x, C, 3, 4);
  ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
  const GraphEngine full = fresh_engine_run(g, x, 4);
  ASSERT_EQ(inc.ann_work().size(), full.ann_work().size());
  for (size_t k = 0; k < full.ann_work().size(); ++k) {
    AnnWork a = inc.ann_work()[k], b = full.ann_work()[k];
    EXPECT_EQ(a.weight_bytes, 2 * b.weight_bytes) << "node " << g.nodes[k].name;  // two runs, two reads
    a.weight_bytes = b.weight_bytes = 0;
    EXPECT_TRUE(a == b) << "node " << g.nodes[k].name;
  }
  // Rolling row 3 back and computing it again adds exactly one more row-3 computation.
  const std::vector<AnnWork> before = inc.ann_work();
  inc.set_rows(3);
  inc.set_rows(4);
  set_rows_input(inc, 0, x, C, 3, 4);
  ASSERT_TRUE(inc.run({.timesteps = 1, .until_quiet = true, .max_steps = 500}).settled);
  for (size_t k = 0; k < before.size(); ++k) {
    if (g.nodes[k].kind == OpKind::linear) EXPECT_EQ(inc.ann_work()[k].rows, before[k].rows + 1) << g.nodes[k].name;
  }
}

}  // namespace
}  // namespace spikefm::snn
