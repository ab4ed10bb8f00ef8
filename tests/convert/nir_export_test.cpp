// The NIR path for plain classifiers: MLP checkpoint format, QANN -> NIR export, and the NIR simulation
// of the export against the libtorch QANN (two independent computations: libtorch forward vs
// snn::NirSimulator on the file read back).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <memory>

#include "ann_ref/mlp_classifier.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "convert/mlp_to_nir.h"
#include "datasets/fashion_mnist.h"
#include "snn/nir_graph.h"
#include "snn/nir_sim.h"
#include "tests/test_tmp.h"

using namespace spikefm;

using spikefm::test::error_of;
using spikefm::test::slurp;
using spikefm::test::spit;

namespace {

bool have_data() { return std::filesystem::exists(default_fashion_mnist_dir()); }

// A checkpoint written by hand with H5File, following the schema of ann_ref/mlp_classifier.h (not
// through the code under test): in -> hidden -> classes, L levels, known values.
struct HandCheckpoint {
  test::TempDir dir;
  std::filesystem::path path;
  int in = 6, hidden = 4, classes = 3, levels = 8;
  float lambda = 2.0f;
  std::vector<float> w1, b1, w2, b2;

  HandCheckpoint() {
    path = dir / "hand.h5";
    for (int i = 0; i < hidden * in; ++i) w1.push_back(0.125f * static_cast<float>(i % 7) - 0.25f);
    for (int i = 0; i < hidden; ++i) b1.push_back(0.0625f * static_cast<float>(i));
    for (int i = 0; i < classes * hidden; ++i) w2.push_back(0.5f - 0.125f * static_cast<float>(i % 5));
    for (int i = 0; i < classes; ++i) b2.push_back(-0.25f * static_cast<float>(i));
    H5File f = H5File::create(path);
    f.set_attr("/", "format_version", int64_t{1});
    f.set_attr("/", "kind", std::string("spikefm-mlp"));
    f.create_group("/config");
    f.set_attr("/config", "input_size", int64_t{in});
    f.set_attr("/config", "classes", int64_t{classes});
    f.set_attr("/config", "levels", int64_t{levels});
    f.set_attr("/config", "hidden_sizes", std::to_string(hidden));
    f.set_attr("/config", "input_scale", static_cast<double>(1.0f / 255.0f));
    f.write("/params/fc1/weight", w1.data(), {hidden, in});
    f.write("/params/fc1/bias", b1.data(), {hidden});
    f.write("/params/fc1/act/lambda", &lambda, {});
    f.write("/params/fc2/weight", w2.data(), {classes, hidden});
    f.write("/params/fc2/bias", b2.data(), {classes});
    f.close();
  }
};

// One small QANN trained once for every test that needs data: 2000 images, 1 epoch.
struct Trained {
  test::TempDir dir;
  std::filesystem::path ck;
  MlpTrainReport report;
  ImageSet test_images;
};

const Trained& trained() {
  static std::unique_ptr<Trained> t = [] {
    auto r = std::make_unique<Trained>();
    r->ck = r->dir / "mlp.h5";
    MlpTrainOptions o;
    o.out = r->ck;
    o.epochs = 1;
    o.limit = 2000;
    o.batch = 32;
    o.seed = 2;  // T = 8 then disagrees on 7 of the 200 images, T = 64 on none (libtorch 1.13, 2 threads)
    o.test_limit = -1;
    o.progress = false;
    r->report = train_mlp_classifier(o);
    r->test_images = load_fashion_mnist(default_fashion_mnist_dir(), "test");
    return r;
  }();
  return *t;
}

double agreement(const std::vector<int>& a, const std::vector<int>& b) {
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

const std::vector<double>& floats_of(const snn::NirGraph& g, const std::string& node, const std::string& member) {
  return g.nodes.at(node).at(member).floats;
}

}  // namespace

// --- checkpoint format (no data needed) -------------------------------------------------------------

TEST(MlpCheckpoint, HandWrittenFileLoadsWithItsValues) {
  HandCheckpoint h;
  MlpCheckpoint ck = load_mlp_checkpoint(h.path);
  EXPECT_EQ(ck.config.describe(), "6-4-3");
  ASSERT_EQ(ck.layers.size(), 2u);
  EXPECT_EQ(ck.layers[0].name, "fc1");
  EXPECT_TRUE(ck.layers[0].has_act);
  EXPECT_EQ(ck.layers[0].lambda, h.lambda);
  EXPECT_EQ(ck.layers[0].weight, h.w1);
  EXPECT_FALSE(ck.layers[1].has_act);
  EXPECT_EQ(ck.layers[1].bias, h.b2);
}

// A NaN weight must be refused with the file and the tensor path, not exported.
TEST(MlpCheckpoint, NaNWeightIsRefusedNamingFileAndTensor) {
  HandCheckpoint h;
  {
    H5File f = H5File::open_rw(h.path);
    std::vector<float> w = h.w1;
    w[5] = std::nanf("");
    f.remove("/params/fc1/weight");
    f.write("/params/fc1/weight", w.data(), {h.hidden, h.in});
    f.close();
  }
  for (const std::string& msg : {error_of([&] { load_mlp_checkpoint(h.path); }),
                                 error_of([&] { mlp_to_nir(h.path, 16); })}) {
    EXPECT_NE(msg.find(h.path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("/params/fc1/weight: element 5 is nan"), std::string::npos) << msg;
  }
}

// A file cut short (a copy interrupted mid-way) must be refused naming the path.
TEST(MlpCheckpoint, TruncatedFileIsRefusedNamingThePath) {
  HandCheckpoint h;
  const auto size = std::filesystem::file_size(h.path);
  std::filesystem::resize_file(h.path, size / 2);
  const std::string msg = error_of([&] { load_mlp_checkpoint(h.path); });
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find(h.path.string()), std::string::npos) << msg;
}

TEST(MlpCheckpoint, WrongKindShapeAndUnknownTensorAreRefused) {
  {
    HandCheckpoint h;
    H5File f = H5File::open_rw(h.path);
    f.set_attr("/", "kind", std::string("spikefm-mfm"));
    f.close();
    EXPECT_NE(error_of([&] { load_mlp_checkpoint(h.path); }).find("spikefm-mlp"), std::string::npos);
  }
  {
    HandCheckpoint h;
    H5File f = H5File::open_rw(h.path);
    f.remove("/params/fc2/bias");
    std::vector<float> b(4, 0.0f);
    f.write("/params/fc2/bias", b.data(), {4});
    f.close();
    const std::string msg = error_of([&] { load_mlp_checkpoint(h.path); });
    EXPECT_NE(msg.find("/params/fc2/bias"), std::string::npos) << msg;
  }
  {
    HandCheckpoint h;
    H5File f = H5File::open_rw(h.path);
    float x = 1;
    f.write("/params/fc2/act/lambda", &x, {});
    f.close();
    const std::string msg = error_of([&] { load_mlp_checkpoint(h.path); });
    EXPECT_NE(msg.find("/params/fc2/act/lambda: unknown tensor"), std::string::npos) << msg;
  }
}

// --- export (no data needed) -------------------------------------------------------------------------

// The mapping documented in convert/mlp_to_nir.h, checked value by value on a hand-written checkpoint:
// V = T·λ/L, bias + θ/2, r = 1, the readout weight scaled by V, and a lossless write_nir/read_nir trip.
TEST(NirExport, HandCheckpointMapsToDocumentedNodesAndRoundTrips) {
  HandCheckpoint h;
  const int T = 32;
  const snn::NirGraph g = mlp_to_nir(h.path, T);
  const std::vector<std::pair<std::string, std::string>> edges = {
      {"input", "fc1"}, {"fc1", "if1"}, {"if1", "clip1"}, {"clip1", "neg1"},
      {"if1", "fc2"},   {"neg1", "fc2"}, {"fc2", "output"}};
  EXPECT_EQ(g.edges, edges);
  EXPECT_EQ(g.nodes.at("input").at("shape").ints, std::vector<int64_t>{h.in});
  EXPECT_EQ(g.nodes.at("output").at("shape").ints, std::vector<int64_t>{h.classes});
  const float theta = h.lambda / static_cast<float>(h.levels);
  const float V = static_cast<float>(T) * theta;
  for (double v : floats_of(g, "if1", "v_threshold")) EXPECT_EQ(v, V);
  for (double r : floats_of(g, "if1", "r")) EXPECT_EQ(r, 1.0);
  for (double v : floats_of(g, "if1", "v_reset")) EXPECT_EQ(v, 0.0);
  for (double v : floats_of(g, "clip1", "v_threshold")) EXPECT_EQ(v, h.levels + 0.5);
  for (double v : floats_of(g, "clip1", "v_reset")) EXPECT_EQ(v, h.levels);
  for (double v : floats_of(g, "neg1", "scale")) EXPECT_EQ(v, -1.0);
  for (int i = 0; i < h.hidden; ++i) EXPECT_EQ(floats_of(g, "fc1", "bias")[i], h.b1[i] + 0.5f * theta);
  EXPECT_EQ(floats_of(g, "fc1", "weight")[7], h.w1[7]);
  for (int i = 0; i < h.classes * h.hidden; ++i) EXPECT_EQ(floats_of(g, "fc2", "weight")[i], h.w2[i] * V);
  EXPECT_EQ(floats_of(g, "fc2", "bias")[2], h.b2[2]);
  EXPECT_EQ(g.metadata.at("timesteps").ints, std::vector<int64_t>{T});
  EXPECT_EQ(g.metadata.at("dt").floats, std::vector<double>{1.0});
  EXPECT_TRUE(g.metadata.count("qann_deviation"));

  test::TempDir d;
  snn::write_nir(d / "mlp.nir", g);
  const snn::NirGraph back = snn::read_nir(d / "mlp.nir");
  EXPECT_TRUE(back == g);
  EXPECT_TRUE(back.warnings.empty());
}

// The count formula min(c(u), L) the header and the file's metadata state is what the simulator does
// with one exported hidden neuron (if + clip + neg) under constant current (u + 1/2)·θ.
TEST(NirExport, HiddenCountFormulaMatchesTheSimulator) {
  const int T = 64, L = 8;
  const double theta = 0.25;
  for (double u : {0.3, 0.6, 1.49, 2.5, 4.6, 6.6, 7.6, 8.0, 12.0, 40.0, 70.0}) {
    snn::NirGraph g;
    g.add_node("in", snn::NirNode::input({1}));
    g.add_node("fc", snn::NirNode::affine({1, 1}, {1.0}, {0.5 * theta}));
    g.add_node("if", snn::NirNode::if_neuron({1}, {1.0}, {T * theta}));
    g.add_node("clip", snn::NirNode::if_neuron({1}, {1.0}, {L + 0.5}, {static_cast<double>(L)}));
    g.add_node("neg", snn::NirNode::scale({1}, {-1.0}));
    g.add_node("out", snn::NirNode::output({1}));
    for (auto [a, b] : std::vector<std::pair<const char*, const char*>>{
             {"in", "fc"}, {"fc", "if"}, {"if", "clip"}, {"clip", "neg"}, {"if", "out"}, {"neg", "out"}}) {
      g.add_edge(a, b);
    }
    snn::NirSimulator sim(g);
    const auto r = sim.run(std::vector<std::vector<float>>(T, {static_cast<float>(u * theta)}));
    const int64_t c = static_cast<int64_t>(std::floor(T / (std::floor(T / (u + 0.5)) + 1)));
    EXPECT_EQ(r.node("if").spikes, c) << "u = " << u;
    double passed = 0;
    for (const auto& row : r.output) passed += row[0];
    EXPECT_EQ(passed, static_cast<double>(std::min<int64_t>(c, L))) << "u = " << u;
  }
  const NirCountError e64 = nir_if_count_error(64, 8), e8 = nir_if_count_error(8, 8);
  EXPECT_NEAR(e64.match_fraction, 0.88, 0.01);
  EXPECT_EQ(e64.max_abs, 1.0);
  EXPECT_NEAR(e8.match_fraction, 0.49, 0.01);
  EXPECT_EQ(e8.max_abs, 4.0);
}

// The simulation path must refuse a file with a node it cannot run, listing it, instead of skipping it.
TEST(NirExport, FileWithUnsupportedNodeIsRefusedListingIt) {
  snn::NirGraph g;
  g.add_node("in", snn::NirNode::input({4}));
  g.add_node("fc", snn::NirNode::affine({4, 4}, std::vector<double>(16, 0.5)));
  snn::NirNode cuba;
  cuba.type = "CubaLIF";
  for (const char* m : {"tau_syn", "tau_mem", "r", "v_leak", "v_threshold"}) {
    cuba.params[m] = snn::NirParam::of_floats({4}, {1, 1, 1, 1});
  }
  g.add_node("lif1", cuba);
  g.add_node("out", snn::NirNode::output({4}));
  g.add_edge("in", "fc");
  g.add_edge("fc", "lif1");
  g.add_edge("lif1", "out");
  test::TempDir d;
  snn::write_nir(d / "cuba.nir", g);
  const std::string msg = error_of([&] { run_nir_file(d / "cuba.nir", {0.1f, 0.2f, 0.3f, 0.4f}, 8); });
  EXPECT_NE(msg.find((d / "cuba.nir").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("unsupported node types: lif1 (CubaLIF)"), std::string::npos) << msg;

  ImageSet tiny;
  tiny.n = 1, tiny.rows = 2, tiny.cols = 2;
  tiny.pixels = {1, 2, 3, 4};
  tiny.labels = {0};
  const std::string msg2 = error_of([&] { simulate_nir_classifier(snn::read_nir(d / "cuba.nir"), tiny, 8); });
  EXPECT_NE(msg2.find("lif1 (CubaLIF)"), std::string::npos) << msg2;
}

TEST(NirExport, RunNirFileChecksInputSizeAndTimesteps) {
  HandCheckpoint h;
  test::TempDir d;
  snn::write_nir(d / "m.nir", mlp_to_nir(h.path, 8));
  EXPECT_NE(error_of([&] { run_nir_file(d / "m.nir", {1, 2, 3}, 8); }).find("takes 6"), std::string::npos);
  EXPECT_NE(error_of([&] { run_nir_file(d / "m.nir", std::vector<float>(6, 0.5f), 0); }).find("timesteps must be >= 1"),
            std::string::npos);
  EXPECT_EQ(run_nir_file(d / "m.nir", std::vector<float>(6, 0.5f), 8).size(), 3u);
}

// --- trained QANN vs NIR simulation (needs Fashion-MNIST) --------------------------------------------

TEST(NirExport, TrainedQannExportAgreesWithQannAndImprovesWithTimesteps) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  const Trained& t = trained();
  const MlpEvalReport qann = eval_mlp_classifier(t.ck, "test", 200);
  ASSERT_EQ(qann.n, 200);
  EXPECT_GT(qann.accuracy, 0.6);  // 2000 images, 1 epoch: a working classifier, not a good one

  test::TempDir d;
  std::map<int, double> agree, nmse;
  for (int T : {8, 64}) {
    const auto file = d / ("mlp_T" + std::to_string(T) + ".nir");
    snn::write_nir(file, mlp_to_nir(t.ck, T));
    const NirRunReport r = simulate_nir_classifier(snn::read_nir(file), t.test_images, T, 200);
    ASSERT_EQ(r.n, 200);
    ASSERT_EQ(r.outputs.size(), qann.logits.size());
    agree[T] = agreement(r.predictions, qann.predictions);
    // Normalized error of the mean Output (the logits estimate) against the QANN logits.
    double num = 0, den = 0;
    for (size_t j = 0; j < r.outputs.size(); ++j) {
      num += (r.outputs[j] - qann.logits[j]) * (r.outputs[j] - qann.logits[j]);
      den += qann.logits[j] * qann.logits[j];
    }
    nmse[T] = num / den;
    EXPECT_GT(r.spikes, 0);
    EXPECT_GT(r.synaptic_ops, 0);
    std::printf("T=%d: agreement with QANN %.3f, logit NMSE %.5f, NIR accuracy %.3f (QANN %.3f), %.0f spikes/img, "
                "%.0f SOPs/img\n",
                T, agree[T], nmse[T], r.accuracy, qann.accuracy, r.spikes, r.synaptic_ops);
  }
  EXPECT_GE(agree[64], 0.90);
  EXPECT_GT(agree[64], agree[8]);
  // The continuous error falls with T too (hard-reset staircase shrinks): about 20x here.
  EXPECT_LT(nmse[64], nmse[8] / 5);
  EXPECT_LT(nmse[64], 0.01);
}

// run_nir_file (the CLI's single-input path) gives the class simulate_nir_classifier gives.
TEST(NirExport, RunNirFileOnOneImageMatchesClassifierSimulation) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  const Trained& t = trained();
  test::TempDir d;
  const int T = 32;
  const snn::NirGraph g = mlp_to_nir(t.ck, T);
  snn::write_nir(d / "m.nir", g);
  const NirRunReport r = simulate_nir_classifier(g, t.test_images, T, 3);
  for (int i = 0; i < 3; ++i) {
    std::vector<float> x(784);
    for (int j = 0; j < 784; ++j) x[j] = static_cast<float>(t.test_images.pixels[i * 784 + j]) * kMlpInputScale;
    const std::vector<float> logits = run_nir_file(d / "m.nir", x, T);
    ASSERT_EQ(logits.size(), 10u);
    EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), r.predictions[i]) << "image " << i;
  }
}

