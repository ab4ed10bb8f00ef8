// NIR graphs: file round trips, files of other exporters, checks, and the simulator against
// independent references.
//
// References used here, none of them the code under test:
//   - plain loops written out in this file (dense layer + IF, gather-form convolution, pools, the
//     closed form of the Euler recursion of LI/LIF);
//   - files written by h5py (tests/snn/nir_golden.py, committed under tests/snn/data/), with the
//     expected spikes of a numpy forward pass stored inside;
//   - files crafted here with raw H5File calls to mimic other exporters.
// Where spikes are compared exactly, every value sits on a 2^-k grid so that each sum is exact in
// double precision whatever the summation order; threshold crossings then cannot differ.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/h5_file.h"
#include "snn/nir_graph.h"
#include "snn/nir_sim.h"
#include "tests/test_tmp.h"

namespace spikefm::snn {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// Expects `f` to throw spikefm::Error whose message contains every needle.
template <typename Fn>
void expect_error(Fn&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected spikefm::Error containing '" << needles.front() << "'";
  } catch (const Error& e) {
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// Absolute path from CMake (__FILE__ is relative under ccache with CCACHE_BASEDIR).
fs::path data_dir() { return fs::path(SPIKEFM_TEST_DATA); }

// Values that float32 holds exactly, so a float32 file round trip must give them back bit for bit.
std::vector<double> random_floats(std::mt19937& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

// Input(8) -> fc1 Affine(6x8) -> if1 IF(6) -> fc2 Affine(3x6) -> if2 IF(3, nonzero v_reset) -> out.
NirGraph make_mlp(std::mt19937& rng) {
  NirGraph g;
  g.add_node("in", NirNode::input({8}));
  g.add_node("fc1", NirNode::affine({6, 8}, random_floats(rng, 48), random_floats(rng, 6)));
  g.add_node("if1", NirNode::if_neuron({6}, std::vector<double>(6, 1.0), random_floats(rng, 6, 0.5f, 2.0f)));
  g.add_node("fc2", NirNode::affine({3, 6}, random_floats(rng, 18), random_floats(rng, 3)));
  g.add_node("if2", NirNode::if_neuron({3}, random_floats(rng, 3, 0.5f, 2.0f), random_floats(rng, 3, 0.5f, 2.0f),
                                       random_floats(rng, 3, -0.5f, 0.0f)));
  g.add_node("out", NirNode::output({3}));
  for (auto [a, b] : std::vector<std::pair<const char*, const char*>>{
           {"in", "fc1"}, {"fc1", "if1"}, {"if1", "fc2"}, {"fc2", "if2"}, {"if2", "out"}}) {
    g.add_edge(a, b);
  }
  return g;
}

// Input(2,8,8) -> conv Conv2d(4,2,3,3; pad 1) -> if1 IF(4,8,8) -> pool SumPool2d(2) -> flat
// Flatten((4,4,4), 0, -1) -> fc Affine(5x64) -> if2 IF(5) -> out Output(5).
NirGraph make_cnn(std::mt19937& rng) {
  NirGraph g;
  g.add_node("in", NirNode::input({2, 8, 8}));
  g.add_node("conv", NirNode::conv2d({8, 8}, {4, 2, 3, 3}, random_floats(rng, 72), random_floats(rng, 4), {1, 1},
                                     {1, 1}, {1, 1}, 1));
  g.add_node("if1", NirNode::if_neuron({4, 8, 8}, std::vector<double>(256, 1.0), random_floats(rng, 256, 0.5f, 1.5f)));
  g.add_node("pool", NirNode::sum_pool2d({2, 2}, {2, 2}));
  g.add_node("flat", NirNode::flatten({4, 4, 4}));
  g.add_node("fc", NirNode::affine({5, 64}, random_floats(rng, 320), random_floats(rng, 5)));
  g.add_node("if2", NirNode::if_neuron({5}, std::vector<double>(5, 1.0), random_floats(rng, 5, 0.5f, 1.5f)));
  g.add_node("out", NirNode::output({5}));
  const char* chain[] = {"in", "conv", "if1", "pool", "flat", "fc", "if2", "out"};
  for (int i = 0; i + 1 < 8; ++i) g.add_edge(chain[i], chain[i + 1]);
  return g;
}

// A file with /version and /node/type written; `body` adds the rest with raw H5File calls.
template <typename Fn>
void craft(const fs::path& path, Fn&& body) {
  H5File f = H5File::create(path);
  f.write_strings("/version", {"1.0.7"}, {});
  f.write_strings("/node/type", {"NIRGraph"}, {});
  body(f);
  f.close();
}

void craft_string(H5File& f, const std::string& path, const std::string& s) { f.write_strings(path, {s}, {}); }

void craft_edges(H5File& f, const std::vector<std::string>& flat) {
  f.write_strings("/node/edges", flat, {static_cast<int64_t>(flat.size() / 2), 2});
}

// ---------------------------------------------------------------------------------------------------
// Round trips

TEST(NirFile, MlpRoundTripGivesIdenticalGraphAndReferenceLayout) {
  TempDir d;
  std::mt19937 rng(1);
  const NirGraph g = make_mlp(rng);
  write_nir(d / "mlp.nir", g);
  const NirGraph back = read_nir(d / "mlp.nir");
  EXPECT_TRUE(back == g);
  EXPECT_EQ(back.version, "1.0.7");
  EXPECT_TRUE(back.warnings.empty()) << back.warnings.front();

  // The bytes as nir.read expects them (NIR.md §1, §4, §8).
  const H5File f = H5File::open(d / "mlp.nir");
  EXPECT_EQ(f.children("/"), (std::vector<std::string>{"node", "version"}));
  EXPECT_EQ(f.read_strings("/version"), std::vector<std::string>{"1.0.7"});
  EXPECT_EQ(f.children("/node"), (std::vector<std::string>{"edges", "nodes", "type"}));
  Shape s;
  EXPECT_EQ(f.read_strings("/node/edges", &s)[1], "fc1");
  EXPECT_EQ(s, (Shape{5, 2}));
  EXPECT_EQ(f.children("/node/nodes/fc1"), (std::vector<std::string>{"bias", "type", "weight"}));
  const H5DatasetInfo w = f.info("/node/nodes/fc1/weight");
  EXPECT_EQ(w.cls, H5Class::floating);
  EXPECT_EQ(w.bytes, 4);  // float32
  EXPECT_EQ(w.shape, (Shape{6, 8}));
  const H5DatasetInfo shape = f.info("/node/nodes/in/shape");
  EXPECT_EQ(shape.cls, H5Class::integer);
  EXPECT_EQ(shape.bytes, 8);  // int64
  // v_reset only where nonzero: if1 resets to 0 (omitted), if2 to negative values (written).
  EXPECT_EQ(f.children("/node/nodes/if1"), (std::vector<std::string>{"r", "type", "v_threshold"}));
  EXPECT_EQ(f.children("/node/nodes/if2"), (std::vector<std::string>{"r", "type", "v_reset", "v_threshold"}));
}

TEST(NirFile, CnnRoundTripGivesIdenticalGraphAndDerivedShapes) {
  TempDir d;
  std::mt19937 rng(2);
  const NirGraph g = make_cnn(rng);
  write_nir(d / "cnn.nir", g);
  const NirGraph back = read_nir(d / "cnn.nir");
  EXPECT_TRUE(back == g);
  const NirTypes t = check_nir_graph(back, "test");
  EXPECT_EQ(*t.at("conv").output, (Shape{4, 8, 8}));
  EXPECT_EQ(*t.at("pool").output, (Shape{4, 4, 4}));
  EXPECT_EQ(*t.at("flat").output, (Shape{64}));
  EXPECT_EQ(*t.at("fc").input, (Shape{64}));

  const H5File f = H5File::open(d / "cnn.nir");
  EXPECT_EQ(f.children("/node/nodes/conv"),
            (std::vector<std::string>{"bias", "dilation", "groups", "input_shape", "padding", "stride", "type", "weight"}));
  EXPECT_EQ(f.info("/node/nodes/conv/stride").shape, (Shape{2}));
  EXPECT_EQ(f.info("/node/nodes/conv/groups").shape, Shape{});
  EXPECT_EQ(f.children("/node/nodes/flat"), (std::vector<std::string>{"end_dim", "input_type", "start_dim", "type"}));
  EXPECT_EQ(f.read<int64_t>("/node/nodes/flat/start_dim"), std::vector<int64_t>{0});
  EXPECT_EQ(f.read<int64_t>("/node/nodes/flat/end_dim"), std::vector<int64_t>{-1});
  EXPECT_EQ(f.read<int64_t>("/node/nodes/pool/kernel_size"), (std::vector<int64_t>{2, 2}));
}

TEST(NirFile, NestedGraphMetadataAndUnsimulatedPrimitivesRoundTrip) {
  TempDir d;
  NirGraph inner;
  inner.add_node("i", NirNode::input({2}));
  NirNode cuba;
  cuba.type = "CubaLIF";
  for (const char* m : {"tau_syn", "tau_mem", "r", "v_leak", "v_threshold"}) {
    cuba.params[m] = NirParam::of_floats({2}, {0.5, 0.25});
  }
  cuba.params["v_reset"] = NirParam::of_floats({2}, {0.0, 0.0});
  cuba.params["w_in"] = NirParam::of_floats({}, {1.0});
  inner.add_node("cl", cuba);
  inner.add_node("o", NirNode::output({2}));
  inner.add_edge("i", "cl");
  inner.add_edge("cl", "o");
  inner.metadata["note"] = NirParam::of_string("inner graph");

  NirGraph g;
  g.add_node("in", NirNode::input({2}));
  g.add_node("sub", NirNode::subgraph(inner));
  NirNode delay;
  delay.type = "Delay";
  delay.params["delay"] = NirParam::of_floats({2}, {1.0, 2.0});
  g.add_node("d", delay);
  g.add_node("out", NirNode::output({2}));
  g.nodes.at("in").metadata["dt"] = NirParam::of_floats({}, {1e-4});
  g.metadata["exporter"] = NirParam::of_string("spikefm test");
  for (auto [a, b] : std::vector<std::pair<const char*, const char*>>{{"in", "sub"}, {"sub", "d"}, {"d", "out"}}) {
    g.add_edge(a, b);
  }
  write_nir(d / "nested.nir", g);
  const NirGraph back = read_nir(d / "nested.nir");
  EXPECT_TRUE(back == g);
  ASSERT_NE(back.nodes.at("sub").graph, nullptr);
  EXPECT_EQ(back.nodes.at("sub").graph->nodes.at("cl").type, "CubaLIF");
  EXPECT_EQ(back.nodes.at("in").metadata.at("dt").floats, std::vector<double>{1e-4});  // float64 metadata
}

TEST(NirFile, GraphWithoutEdgesRoundTripsAsEmptyStringTable) {
  TempDir d;
  NirGraph g;
  g.add_node("in", NirNode::input({4}));
  write_nir(d / "empty.nir", g);
  EXPECT_EQ(H5File::open(d / "empty.nir").info("/node/edges").shape, (Shape{0, 2}));
  EXPECT_TRUE(read_nir(d / "empty.nir") == g);
}

// ---------------------------------------------------------------------------------------------------
// Files of other exporters

TEST(NirFile, ReadsEmptyFloatEdgesMissingVResetAndIgnoresUnknownRootObjects) {
  TempDir d;
  craft(d / "a.nir", [](H5File& f) {
    f.create_group("/node/nodes");
    craft_string(f, "/node/nodes/in/type", "Input");
    const int64_t shape[] = {3};
    f.write("/node/nodes/in/shape", shape, {1});
    craft_string(f, "/node/nodes/lif1/type", "LIF");
    const std::vector<double> ones(3, 1.0);  // float64 parameters: the float dtype is free
    for (const char* m : {"tau", "r", "v_leak", "v_threshold"}) f.write(std::string("/node/nodes/lif1/") + m, ones.data(), {3});
    const double nothing = 0.0;
    f.write("/node/edges", &nothing, {0});  // h5py writes an empty edge list as float64 (0,)
    f.write("/exporter_extra/data", ones.data(), {3});  // not NIR: ignored
    f.set_attr("/node", "producer", std::string("hand-made"));
  });
  const NirGraph g = read_nir(d / "a.nir");
  EXPECT_TRUE(g.edges.empty());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes.at("lif1").at("v_reset").floats, (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_EQ(g.nodes.at("lif1").at("v_reset").shape, (Shape{3}));
}

TEST(NirFile, ReadsScalarConvParamsAndSamePaddingThenSimulatesThem) {
  TempDir d;
  std::mt19937 rng(3);
  const std::vector<double> w = random_floats(rng, 2 * 1 * 3 * 3);
  craft(d / "conv.nir", [&](H5File& f) {
    craft_string(f, "/node/nodes/in/type", "Input");
    const int64_t in_shape[] = {1, 5, 5}, hw[] = {5, 5}, out_shape[] = {2, 5, 5}, one = 1;
    f.write("/node/nodes/in/shape", in_shape, {3});
    craft_string(f, "/node/nodes/conv/type", "Conv2d");
    f.write("/node/nodes/conv/input_shape", hw, {2});
    f.write("/node/nodes/conv/weight", w.data(), {2, 1, 3, 3});
    const float bias[] = {0.5f, -0.25f};
    f.write("/node/nodes/conv/bias", bias, {2});
    f.write("/node/nodes/conv/stride", &one, {});    // int scalar, as nir.Conv2d accepts
    f.write("/node/nodes/conv/dilation", &one, {});
    f.write("/node/nodes/conv/groups", &one, {});
    craft_string(f, "/node/nodes/conv/padding", "same");
    craft_string(f, "/node/nodes/out/type", "Output");
    f.write("/node/nodes/out/shape", out_shape, {3});
    craft_edges(f, {"in", "conv", "conv", "out"});
  });
  const NirGraph g = read_nir(d / "conv.nir");
  EXPECT_EQ(g.nodes.at("conv").at("padding").strings, std::vector<std::string>{"same"});
  EXPECT_EQ(*check_nir_graph(g, "test").at("conv").output, (Shape{2, 5, 5}));  // "same": out = in

  NirSimulator sim(g);
  std::vector<float> x(25);
  for (float& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  const NirRunResult r = sim.run({x});
  // "same" with k = 3, dilation 1 = one zero on each side.
  for (int co = 0; co < 2; ++co) {
    for (int i = 0; i < 5; ++i) {
      for (int j = 0; j < 5; ++j) {
        double ref = co == 0 ? 0.5 : -0.25;
        for (int p = 0; p < 3; ++p) {
          for (int q = 0; q < 3; ++q) {
            const int ih = i - 1 + p, iw = j - 1 + q;
            if (ih >= 0 && ih < 5 && iw >= 0 && iw < 5) ref += w[(co * 3 + p) * 3 + q] * x[ih * 5 + iw];
          }
        }
        EXPECT_NEAR(r.output[0][(co * 5 + i) * 5 + j], ref, 1e-6 * (1 + std::abs(ref)));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Golden files written by h5py (tests/snn/nir_golden.py); numbers below are stated there.

struct Golden {
  std::vector<std::vector<float>> input;   // (S, 2*6*6)
  std::vector<std::vector<float>> output;  // (S, 3)
};

Golden load_golden() {
  const H5File f = H5File::open(data_dir() / "nir_cnn_main.nir");
  Shape si, so;
  const std::vector<float> in = f.read<float>("/spikefm_golden/input", &si);
  const std::vector<float> out = f.read<float>("/spikefm_golden/output", &so);
  EXPECT_EQ(si, (Shape{10, 2, 6, 6}));
  EXPECT_EQ(so, (Shape{10, 3}));
  Golden g;
  for (int s = 0; s < 10; ++s) {
    g.input.emplace_back(in.begin() + s * 72, in.begin() + (s + 1) * 72);
    g.output.emplace_back(out.begin() + s * 3, out.begin() + (s + 1) * 3);
  }
  return g;
}

void expect_golden_parameters(const NirGraph& g) {
  const std::vector<std::string> types = {"Conv2d", "Affine", "Flatten", "IF", "IF", "Input", "Output", "SumPool2d"};
  std::vector<std::string> got;
  for (const char* n : {"conv", "fc", "flat", "if1", "if2", "input", "output", "pool"}) got.push_back(g.nodes.at(n).type);
  EXPECT_EQ(got, types);
  const NirParam& cw = g.nodes.at("conv").at("weight");
  ASSERT_EQ(cw.shape, (Shape{4, 2, 3, 3}));
  for (int i = 0; i < 72; ++i) ASSERT_EQ(cw.floats[i], ((5 * i) % 9 - 4) / 8.0) << i;
  EXPECT_EQ(g.nodes.at("conv").at("bias").floats, (std::vector<double>{-0.1875, -0.0625, 0.0625, 0.1875}));
  const NirParam& fw = g.nodes.at("fc").at("weight");
  ASSERT_EQ(fw.shape, (Shape{3, 36}));
  for (int i = 0; i < 108; ++i) ASSERT_EQ(fw.floats[i], ((7 * i) % 11 - 3) / 16.0) << i;
  EXPECT_EQ(g.nodes.at("fc").at("bias").floats, (std::vector<double>{0.0, 0.0625, 0.125}));
  EXPECT_EQ(g.nodes.at("if1").at("r").shape, (Shape{4, 6, 6}));
  EXPECT_EQ(g.nodes.at("if2").at("v_threshold").floats, (std::vector<double>{1.0, 1.5, 2.0}));
  EXPECT_EQ(g.nodes.at("if2").at("v_reset").floats, (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_EQ(g.nodes.at("input").at("shape").ints, (std::vector<int64_t>{2, 6, 6}));
  EXPECT_EQ(g.nodes.at("pool").at("kernel_size").ints, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(g.nodes.at("flat").at("start_dim").ints, std::vector<int64_t>{0});
  EXPECT_EQ(g.edges.size(), 7u);
  EXPECT_EQ(g.edges.front(), (std::pair<std::string, std::string>{"input", "conv"}));
  const NirTypes t = check_nir_graph(g, "test");
  EXPECT_EQ(*t.at("pool").output, (Shape{4, 3, 3}));
  EXPECT_EQ(*t.at("flat").output, (Shape{36}));
}

TEST(NirGolden, H5pyMainStyleFileReadsAndSimulatesAsNumpyReference) {
  const NirGraph g = read_nir(data_dir() / "nir_cnn_main.nir");  // gzip-chunked arrays, vlen strings
  EXPECT_EQ(g.version, "1.0.7");
  EXPECT_TRUE(g.warnings.empty()) << g.warnings.front();
  expect_golden_parameters(g);
  EXPECT_EQ(g.nodes.at("conv").at("stride").ints, (std::vector<int64_t>{1, 1}));
  const Golden gold = load_golden();
  NirSimulator sim(g, NirSimOptions{1.0});
  const NirRunResult r = sim.run(gold.input);
  EXPECT_EQ(r.output, gold.output);
  EXPECT_EQ(r.node("if2").spikes, 21);  // 7 + 8 + 6, printed by nir_golden.py
}

TEST(NirGolden, H5pyLegacyFileWithFixedStringsReadsAsTheSameNetwork) {
  const NirGraph g = read_nir(data_dir() / "nir_cnn_legacy.nir");  // fixed-length strings, contiguous
  EXPECT_EQ(g.version, "0.2.0");
  expect_golden_parameters(g);
  EXPECT_EQ(g.nodes.at("conv").at("padding").strings, std::vector<std::string>{"same"});  // SPACEPAD stripped
  EXPECT_EQ(g.nodes.at("conv").at("stride").shape, Shape{});
  EXPECT_FALSE(g.nodes.at("flat").has("input_type"));
  const NirParams& meta = g.nodes.at("if1").metadata;
  EXPECT_EQ(meta.at("dt").floats, std::vector<double>{1.0});
  EXPECT_EQ(meta.at("reset").strings, std::vector<std::string>{"zero"});
  EXPECT_EQ(meta.count("soft"), 0u);  // an HDF5 enum (numpy bool): skipped with a warning
  ASSERT_EQ(g.warnings.size(), 1u);
  EXPECT_NE(g.warnings[0].find("soft"), std::string::npos) << g.warnings[0];

  const Golden gold = load_golden();
  NirSimulator sim(g);
  EXPECT_EQ(sim.run(gold.input).output, gold.output);
}

// ---------------------------------------------------------------------------------------------------
// Bad files and graphs: the documented errors

TEST(NirErrors, EdgeToMissingNodeIsNamed) {
  TempDir d;
  craft(d / "e.nir", [](H5File& f) {
    craft_string(f, "/node/nodes/a/type", "Input");
    const int64_t shape[] = {4};
    f.write("/node/nodes/a/shape", shape, {1});
    craft_edges(f, {"a", "fc9"});
  });
  expect_error([&] { read_nir(d / "e.nir"); }, {"e.nir", "edge (a, fc9): no node named fc9"});
}

TEST(NirErrors, MissingRequiredMemberIsNamed) {
  TempDir d;
  NirGraph g;
  g.add_node("in", NirNode::input({3}));
  g.add_node("lif1", NirNode::lif({3}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}));
  g.add_node("out", NirNode::output({3}));
  g.add_edge("in", "lif1");
  g.add_edge("lif1", "out");
  write_nir(d / "m.nir", g);
  H5File::open_rw(d / "m.nir").remove("/node/nodes/lif1/v_threshold");
  expect_error([&] { read_nir(d / "m.nir"); }, {"node lif1 (LIF): missing required member v_threshold"});
}

TEST(NirErrors, NanWeightIsNamedWithItsIndexOnReadAndWrite) {
  TempDir d;
  std::mt19937 rng(4);
  NirGraph g = make_mlp(rng);
  write_nir(d / "n.nir", g);
  std::vector<float> w(48, 0.5f);
  w[12] = std::numeric_limits<float>::quiet_NaN();
  {
    H5File f = H5File::open_rw(d / "n.nir");
    f.remove("/node/nodes/fc1/weight");
    f.write("/node/nodes/fc1/weight", w.data(), {6, 8});
  }
  expect_error([&] { read_nir(d / "n.nir"); }, {"node fc1 (Affine): weight contains NaN at index 12"});
  g.nodes.at("fc1").params["weight"].floats[12] = std::numeric_limits<double>::infinity();
  expect_error([&] { write_nir(d / "n2.nir", g); }, {"node fc1 (Affine): weight contains Inf at index 12"});
  EXPECT_FALSE(fs::exists(d / "n2.nir"));
}

TEST(NirErrors, TruncatedFileFailsThroughH5File) {
  TempDir d;
  std::mt19937 rng(5);
  write_nir(d / "t.nir", make_cnn(rng));
  fs::resize_file(d / "t.nir", fs::file_size(d / "t.nir") / 2);
  expect_error([&] { read_nir(d / "t.nir"); }, {"t.nir"});
}

TEST(NirErrors, ShapeMismatchOnAnEdgeIsNamedOnReadAndWrite) {
  TempDir d;
  std::mt19937 rng(6);
  NirGraph g = make_mlp(rng);
  write_nir(d / "s.nir", g);
  std::vector<float> w(15, 0.25f);  // fc2 now takes 5 inputs, if1 gives 6
  {
    H5File f = H5File::open_rw(d / "s.nir");
    f.remove("/node/nodes/fc2/weight");
    f.write("/node/nodes/fc2/weight", w.data(), {3, 5});
  }
  expect_error([&] { read_nir(d / "s.nir"); }, {"edge (if1, fc2): if1 outputs (6,) but fc2 takes (5,)"});
  g.nodes.at("fc2").params["weight"] = NirParam::of_floats({3, 5}, std::vector<double>(15, 0.25));
  expect_error([&] { write_nir(d / "s2.nir", g); }, {"edge (if1, fc2)"});
}

// Older exporters wrote e.g. Output (1, 1, 1) after a (1,) layer (NIR.md §5): tolerated, reported.
TEST(NirErrors, SameSizeShapeMismatchIsAWarningNotAnError) {
  NirGraph g;
  g.add_node("in", NirNode::input({1}));
  g.add_node("lif", NirNode::lif({1}, {2}, {1}, {0}, {1}));
  g.add_node("out", NirNode::output({1, 1, 1}));
  g.add_edge("in", "lif");
  g.add_edge("lif", "out");
  std::vector<std::string> warnings;
  check_nir_graph(g, "test", &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("edge (lif, out)"), std::string::npos) << warnings[0];
  NirSimulator sim(g);  // the simulator works on flat vectors: same size is enough
  EXPECT_EQ(sim.output_size(), 1);
}

TEST(NirErrors, NeuronParametersOfDifferentShapesAreRefused) {
  NirGraph g;
  g.add_node("lif1", NirNode::lif({3}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}));
  g.nodes.at("lif1").params["tau"] = NirParam::of_floats({4}, {2, 2, 2, 2});
  expect_error([&] { check_nir_graph(g, "test"); }, {"node lif1 (LIF): r has shape (3,) but tau has shape (4,)"});
}

TEST(NirErrors, RootThatIsNotAGraphIsRefused) {
  TempDir d;
  {
    H5File f = H5File::create(d / "r.nir");
    craft_string(f, "/node/type", "LIF");
  }
  expect_error([&] { read_nir(d / "r.nir"); }, {"/node has type 'LIF', expected 'NIRGraph'"});
}

TEST(NirErrors, SimulatorListsEveryUnsupportedNodeAtOnce) {
  NirGraph g;
  g.add_node("in", NirNode::input({2}));
  NirNode cuba, delay, thr;
  cuba.type = "CubaLIF";
  for (const char* m : {"tau_syn", "tau_mem", "r", "v_leak", "v_threshold"}) cuba.params[m] = NirParam::of_floats({2}, {1, 1});
  delay.type = "Delay";
  delay.params["delay"] = NirParam::of_floats({2}, {1, 1});
  thr.type = "Threshold";
  thr.params["threshold"] = NirParam::of_floats({2}, {1, 1});
  g.add_node("cl", cuba);
  g.add_node("d1", delay);
  g.add_node("th", thr);
  g.add_node("out", NirNode::output({2}));
  for (auto [a, b] : std::vector<std::pair<const char*, const char*>>{{"in", "cl"}, {"cl", "d1"}, {"d1", "th"}, {"th", "out"}}) {
    g.add_edge(a, b);
  }
  expect_error([&] { NirSimulator sim(g); }, {"unsupported node types: cl (CubaLIF), d1 (Delay), th (Threshold)"});
}

TEST(NirErrors, SimulatorRefusesCyclesAndGroupedConvAndWriterRefusesNonSquareKernels) {
  NirGraph g;
  g.add_node("in", NirNode::input({2}));
  g.add_node("a", NirNode::affine({2, 2}, {1, 0, 0, 1}));
  g.add_node("if", NirNode::if_neuron({2}, {1, 1}, {1, 1}));
  g.add_node("out", NirNode::output({2}));
  for (auto [a, b] : std::vector<std::pair<const char*, const char*>>{{"in", "a"}, {"a", "if"}, {"if", "a"}, {"if", "out"}}) {
    g.add_edge(a, b);
  }
  check_nir_graph(g, "test");  // cycles are legal NIR (NIR.md §3)
  expect_error([&] { NirSimulator sim(g); }, {"cycle", "a, if"});

  NirGraph c;
  c.add_node("in", NirNode::input({4, 5, 5}));
  c.add_node("conv", NirNode::conv2d({5, 5}, {4, 2, 3, 3}, std::vector<double>(72, 0.1), {}, {1, 1}, {0, 0}, {1, 1}, 2));
  c.add_node("out", NirNode::output({4, 3, 3}));
  c.add_edge("in", "conv");
  c.add_edge("conv", "out");
  expect_error([&] { NirSimulator sim(c); }, {"node conv (Conv2d): groups != 1"});

  TempDir d;
  c.nodes.at("conv") = NirNode::conv2d({5, 5}, {4, 4, 3, 1}, std::vector<double>(48, 0.1));
  c.nodes.at("out") = NirNode::output({4, 3, 5});
  expect_error([&] { write_nir(d / "k.nir", c); }, {"node conv (Conv2d): kernel 3x1 is not square"});
}

// ---------------------------------------------------------------------------------------------------
// Simulation against independent references

// Input(1) -> if1 IF(r 2, theta 1) -> syn Linear(0.5) -> if2 IF(r 1, theta 1, v_reset 0.5) -> out,
// dt = 0.5, constant input 0.25. By hand:
//   if1 gains dt * r * x = 0.25 per step: v = 0.25, 0.5, 0.75, 1.0 (not > 1: firing is strict),
//        1.25 -> spike at s = 4, reset to 0; period 5: spikes at s = 4, 9, ..., 44 (9 of them).
//   if2 gains dt * 1 * 0.5 = 0.25 per if1 spike: 0.25 (s4), 0.5 (s9), 0.75 (s14), 1.0 (s19, no),
//        1.25 (s24) -> spike, v <- 0.5 (reset to a value; subtracting theta would give 0.25 and a
//        second spike at s44, resetting to 0 one at s49); 0.75 (s29), 1.0 (s34), 1.25 (s39) -> spike.
TEST(NirSim, IfChainSpikesAtHandComputedTimes) {
  NirGraph g;
  g.add_node("in", NirNode::input({1}));
  g.add_node("if1", NirNode::if_neuron({1}, {2.0}, {1.0}));
  g.add_node("syn", NirNode::linear({1, 1}, {0.5}));
  g.add_node("if2", NirNode::if_neuron({1}, {1.0}, {1.0}, {0.5}));
  g.add_node("out", NirNode::output({1}));
  for (auto [a, b] : std::vector<std::pair<const char*, const char*>>{{"in", "if1"}, {"if1", "syn"}, {"syn", "if2"}, {"if2", "out"}}) {
    g.add_edge(a, b);
  }
  NirSimulator sim(g, NirSimOptions{0.5});
  EXPECT_EQ(sim.order(), (std::vector<std::string>{"in", "if1", "syn", "if2", "out"}));
  const NirRunResult r = sim.run(std::vector<std::vector<float>>(45, {0.25f}));
  std::vector<int> if2_times;
  for (int s = 0; s < 45; ++s) {
    if (r.output[s][0] != 0.0f) if2_times.push_back(s);
  }
  EXPECT_EQ(if2_times, (std::vector<int>{24, 39}));
  EXPECT_EQ(r.node("if1").spikes, 9);
  EXPECT_EQ(r.node("if2").spikes, 2);
  EXPECT_EQ(r.node("syn").input_events, 9);
  EXPECT_EQ(r.node("syn").synaptic_ops, 9);  // fan-out 1
  EXPECT_EQ(r.node("if1").neuron_updates, 45);
  // run() starts from t = 0 again.
  EXPECT_EQ(sim.run(std::vector<std::vector<float>>(45, {0.25f})).output, r.output);
}

TEST(NirSim, AffineIfLayerMatchesPlainLoop) {
  constexpr int kIn = 8, kOut = 5, kSteps = 40;
  constexpr double kDt = 0.5;
  std::mt19937 rng(7);
  auto grid = [&](int lo, int hi, double unit) { return std::uniform_int_distribution<int>(lo, hi)(rng) * unit; };
  std::vector<double> w(kIn * kOut), b(kOut), r(kOut), th(kOut), reset(kOut);
  for (double& v : w) v = grid(-8, 8, 1.0 / 8);
  for (int i = 0; i < kOut; ++i) {
    b[i] = grid(-4, 4, 1.0 / 16);
    r[i] = grid(1, 8, 1.0 / 4);
    th[i] = grid(1, 8, 1.0 / 4);
    reset[i] = grid(-2, 2, 1.0 / 8);
  }
  std::vector<std::vector<float>> x(kSteps, std::vector<float>(kIn));
  int64_t nonzero = 0;
  for (auto& row : x) {
    for (float& v : row) {
      v = static_cast<float>(std::uniform_int_distribution<int>(0, 3)(rng)) * 0.5f;  // 0, 0.5, 1, 1.5
      if (std::uniform_int_distribution<int>(0, 1)(rng) == 0) v = 0.0f;
      nonzero += v != 0.0f;
    }
  }
  NirGraph g;
  g.add_node("in", NirNode::input({kIn}));
  g.add_node("fc", NirNode::affine({kOut, kIn}, w, b));
  g.add_node("if", NirNode::if_neuron({kOut}, r, th, reset));
  g.add_node("out", NirNode::output({kOut}));
  g.add_edge("in", "fc");
  g.add_edge("fc", "if");
  g.add_edge("if", "out");
  const NirRunResult res = NirSimulator(g, NirSimOptions{kDt}).run(x);

  std::vector<double> v(kOut, 0.0);
  int64_t spikes = 0;
  for (int s = 0; s < kSteps; ++s) {
    for (int i = 0; i < kOut; ++i) {
      double y = b[i];
      for (int j = 0; j < kIn; ++j) y += w[i * kIn + j] * x[s][j];
      v[i] += kDt * r[i] * y;
      const bool z = v[i] > th[i];
      if (z) v[i] = reset[i];
      spikes += z;
      ASSERT_EQ(res.output[s][i], z ? 1.0f : 0.0f) << "step " << s << " neuron " << i;
    }
  }
  EXPECT_GT(spikes, 0);
  EXPECT_EQ(res.node("if").spikes, spikes);
  EXPECT_EQ(res.total_spikes(), spikes);
  EXPECT_EQ(res.node("fc").input_events, nonzero);
  EXPECT_EQ(res.node("fc").synaptic_ops, nonzero * kOut);
  EXPECT_EQ(res.node("if").neuron_updates, kSteps * kOut);
}

// Gather-form convolution, written independently of the simulator's scatter form.
struct ConvCase {
  int64_t c_in, h, w, c_out, kh, kw;
  std::array<int64_t, 2> stride, padding, dilation;
  bool same;
};

void check_conv(const ConvCase& k, std::mt19937& rng) {
  const std::vector<double> wt = random_floats(rng, k.c_out * k.c_in * k.kh * k.kw);
  const std::vector<double> bias = random_floats(rng, k.c_out);
  NirNode conv = NirNode::conv2d({k.h, k.w}, {k.c_out, k.c_in, k.kh, k.kw}, wt, bias, k.stride, k.padding, k.dilation);
  std::array<int64_t, 2> pb = k.padding;
  if (k.same) {
    conv.params["padding"] = NirParam::of_string("same");
    pb = {k.dilation[0] * (k.kh - 1) / 2, k.dilation[1] * (k.kw - 1) / 2};
  }
  const int64_t oh = k.same ? k.h : (k.h + 2 * k.padding[0] - k.dilation[0] * (k.kh - 1) - 1) / k.stride[0] + 1;
  const int64_t ow = k.same ? k.w : (k.w + 2 * k.padding[1] - k.dilation[1] * (k.kw - 1) - 1) / k.stride[1] + 1;
  NirGraph g;
  g.add_node("in", NirNode::input({k.c_in, k.h, k.w}));
  g.add_node("conv", conv);
  g.add_node("out", NirNode::output({k.c_out, oh, ow}));
  g.add_edge("in", "conv");
  g.add_edge("conv", "out");
  NirSimulator sim(g);

  std::vector<std::vector<float>> x(3, std::vector<float>(static_cast<size_t>(k.c_in * k.h * k.w)));
  for (auto& row : x) {
    for (float& v : row) v = std::uniform_int_distribution<int>(0, 1)(rng) ? std::uniform_real_distribution<float>(-1, 1)(rng) : 0.0f;
  }
  const NirRunResult r = sim.run(x);
  int64_t sops = 0;
  for (size_t s = 0; s < x.size(); ++s) {
    for (int64_t co = 0; co < k.c_out; ++co) {
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          double ref = bias[co];
          for (int64_t ci = 0; ci < k.c_in; ++ci) {
            for (int64_t p = 0; p < k.kh; ++p) {
              for (int64_t q = 0; q < k.kw; ++q) {
                const int64_t ih = i * k.stride[0] - pb[0] + p * k.dilation[0];
                const int64_t iw = j * k.stride[1] - pb[1] + q * k.dilation[1];
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                const double xv = x[s][(ci * k.h + ih) * k.w + iw];
                ref += wt[((co * k.c_in + ci) * k.kh + p) * k.kw + q] * xv;
                sops += xv != 0.0;
              }
            }
          }
          // double sums in another order, then one float32 rounding: 1e-6 relative is ample.
          ASSERT_NEAR(r.output[s][(co * oh + i) * ow + j], ref, 1e-6 * (1 + std::abs(ref)))
              << "step " << s << " at (" << co << ", " << i << ", " << j << ")";
        }
      }
    }
  }
  EXPECT_EQ(r.node("conv").synaptic_ops, sops);
}

TEST(NirSim, Conv2dMatchesNaiveLoop) {
  std::mt19937 rng(8);
  check_conv({2, 7, 6, 3, 3, 3, {2, 2}, {1, 1}, {1, 1}, false}, rng);   // stride 2, padding 1
  check_conv({3, 6, 6, 2, 3, 3, {1, 1}, {0, 0}, {2, 2}, true}, rng);    // "same", dilation 2
  check_conv({2, 7, 6, 3, 3, 2, {2, 1}, {1, 0}, {1, 2}, false}, rng);   // non-square kernel, mixed
  check_conv({1, 5, 5, 2, 4, 4, {1, 1}, {0, 0}, {1, 1}, true}, rng);    // "same" with even k: extra zero after
}

TEST(NirSim, PoolsMatchNaiveLoop) {
  std::mt19937 rng(9);
  for (const char* type : {"SumPool2d", "AvgPool2d"}) {
    NirGraph g;
    g.add_node("in", NirNode::input({3, 5, 7}));
    g.add_node("pool", std::string(type) == "SumPool2d" ? NirNode::sum_pool2d({2, 3}, {2, 2}, {1, 1})
                                                        : NirNode::avg_pool2d({2, 3}, {2, 2}, {1, 1}));
    g.add_node("out", NirNode::output({3, 3, 4}));  // H: (5+2-2)/2+1 = 3, W: (7+2-3)/2+1 = 4
    g.add_edge("in", "pool");
    g.add_edge("pool", "out");
    std::vector<float> x(105);
    for (float& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    const std::vector<float> y = NirSimulator(g).run({x}).output[0];
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 4; ++j) {
          double ref = 0;
          for (int p = 0; p < 2; ++p) {
            for (int q = 0; q < 3; ++q) {
              const int ih = 2 * i - 1 + p, iw = 2 * j - 1 + q;
              if (ih >= 0 && ih < 5 && iw >= 0 && iw < 7) ref += x[(c * 5 + ih) * 7 + iw];
            }
          }
          if (std::string(type) == "AvgPool2d") ref /= 6.0;  // zero padding counts (NIR: sum / (kH kW))
          EXPECT_NEAR(y[(c * 3 + i) * 4 + j], ref, 1e-6) << type;
        }
      }
    }
  }
}

// Forward Euler with constant input x: v_n = v_inf + (v_0 - v_inf) (1 - a)^n, a = dt / tau,
// v_inf = v_leak + r x. LI shows v itself; LIF restarts the recursion from v_reset after each
// spike, so its spike times follow from the same closed form.
TEST(NirSim, LiAndLifFollowTheClosedFormOfTheEulerRecursion) {
  const std::vector<double> tau = {4.0, 2.5, 8.0}, r = {1.0, 2.0, 0.5}, leak = {0.0, 0.25, -0.5};
  const std::vector<double> th = {1.0, 1.0, 0.5}, reset = {0.0, 0.5, -0.25};
  const std::vector<float> x = {1.5f, 0.5f, 3.0f};
  const double dt = 1.0;
  constexpr int kSteps = 60;
  for (const char* type : {"LI", "LIF"}) {
    NirGraph g;
    g.add_node("in", NirNode::input({3}));
    g.add_node("n", std::string(type) == "LI" ? NirNode::li({3}, tau, r, leak) : NirNode::lif({3}, tau, r, leak, th, reset));
    g.add_node("out", NirNode::output({3}));
    g.add_edge("in", "n");
    g.add_edge("n", "out");
    const NirRunResult res = NirSimulator(g, NirSimOptions{dt}).run(std::vector<std::vector<float>>(kSteps, x));
    for (int i = 0; i < 3; ++i) {
      const double a = dt / tau[i], v_inf = leak[i] + r[i] * x[i];
      double v0 = 0.0;
      int since = 0;  // steps since the recursion (re)started from v0
      for (int s = 0; s < kSteps; ++s) {
        ++since;
        const double v = v_inf + (v0 - v_inf) * std::pow(1.0 - a, since);
        if (std::string(type) == "LI") {
          ASSERT_NEAR(res.output[s][i], v, 1e-6 * (1 + std::abs(v))) << "neuron " << i << " step " << s;
          continue;
        }
        ASSERT_GT(std::abs(v - th[i]), 1e-9) << "test parameters too close to the threshold";
        const bool z = v > th[i];
        ASSERT_EQ(res.output[s][i], z ? 1.0f : 0.0f) << "neuron " << i << " step " << s;
        if (z) {
          v0 = reset[i];
          since = 0;
        }
      }
    }
    if (std::string(type) == "LIF") {
      EXPECT_GT(res.node("n").spikes, 20);
      EXPECT_EQ(res.node("n").neuron_updates, 3 * kSteps);
    }
  }
}

TEST(NirSim, RejectsBadOptionsAndInputRows) {
  NirGraph g;
  g.add_node("in", NirNode::input({2}));
  g.add_node("s", NirNode::scale({2}, {2.0, -1.0}));
  g.add_node("out", NirNode::output({2}));
  g.add_edge("in", "s");
  g.add_edge("s", "out");
  expect_error([&] { NirSimulator sim(g, NirSimOptions{0.0}); }, {"dt must be finite and > 0 (got 0)"});
  NirSimulator sim(g);
  EXPECT_EQ(sim.run({{1.0f, 3.0f}}).output[0], (std::vector<float>{2.0f, -3.0f}));
  expect_error([&] { sim.run({{1.0f}}); }, {"step 0: input has 1 values, the Input node takes 2"});
  expect_error([&] { sim.run({{1.0f, std::nanf("")}}); }, {"input[1] is not finite"});
}

}  // namespace
}  // namespace spikefm::snn
