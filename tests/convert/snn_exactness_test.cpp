// The converted spiking model against the integer QANN it came from, on fresh random models and
// inputs: with ST-BIF or burst neurons run until no neuron spikes, every output must be bit-identical.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <random>
#include <string>

#include "ann_ref/checkpoint.h"
#include "ann_ref/prune_plan.h"
#include "ann_ref/qann.h"
#include "ann_ref/quant_layers.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "convert/mfm_to_snn.h"
#include "snn/snn_token_model.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {

// A random QANN (tiny size, L = 4) with clip values spread so that quantizers neither saturate nor
// round everything to zero.
Mfm random_qann(uint64_t seed, int levels = 4) {
  MfmConfig c = test::tiny_config(levels);
  c.qann = true;
  c.weight_bits = 8;
  torch::manual_seed(seed);
  Mfm m(c);
  torch::NoGradGuard ng;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (auto& q : m->quantizers()) q->lambda.fill_(std::uniform_real_distribution<float>(0.8f, 2.5f)(rng));
  m->eval();
  return m;
}

torch::Tensor random_images(int64_t B, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {B, 28, 28}).to(torch::kFloat32) / 255.0f;
}

bool bit_equal(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

struct Converted {
  test::TempDir dir;
  std::filesystem::path ck, snn;
  Mfm model;
  snn::SnnModel sm;
  Converted(uint64_t seed, const std::string& neuron, int levels = 4) : model(random_qann(seed, levels)) {
    ck = dir / "q.h5";
    snn = dir / "q.snn.h5";
    save_checkpoint(ck, model, FashionVqa::make_tokenizer().vocab(), TrainMeta{});
    ConvertOptions o;
    o.neuron = neuron;
    o.burst = 3;
    convert_checkpoint(ck, o).save(snn);
    sm = snn::SnnModel::load(snn);  // through the file, as the CLI does
  }
};

// The SNN's logits at every position of `seq` after the 3-token prompt, teacher-forced through
// begin/append, equal the QANN's bit for bit.
void expect_decoder_bit_exact(Mfm& model, const snn::SnnModel& sm, const torch::Tensor& img, const std::vector<int>& seq,
                              const QuantStore& quant = {}) {
  QannRef ref(model, quant);
  const int V = static_cast<int>(sm.vocab.size());
  QannCache cache;
  ref.prime(ref.image_prefix(img), cache);
  torch::Tensor want =
      ref.decode(torch::tensor(std::vector<int64_t>(seq.begin(), seq.end())).unsqueeze(0), cache).squeeze(0).contiguous();
  snn::SnnTokenModel tm(sm, snn::RunOptions{.timesteps = 1, .until_quiet = true, .max_steps = 4096});
  std::vector<float> got = tm.begin(std::span<const float>(img.data_ptr<float>(), 28 * 28), {seq[0], seq[1], seq[2]});
  ASSERT_TRUE(bit_equal(got.data(), want[2].data_ptr<float>(), V));
  for (size_t t = 3; t < seq.size(); ++t) {
    got = tm.append(seq[t]);
    ASSERT_TRUE(bit_equal(got.data(), want[t].data_ptr<float>(), V)) << "position " << t;
  }
  EXPECT_EQ(tm.runs_unsettled(), 0);
}

}  // namespace

class Exactness : public ::testing::TestWithParam<std::string> {};

TEST_P(Exactness, EncoderOutputEqualsTheQannBitForBit) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    Converted cv(seed, GetParam());
    QannRef ref(cv.model);
    torch::Tensor img = random_images(1, seed + 100);
    torch::Tensor want = ref.image_prefix(img).squeeze(0).contiguous();  // (P, C)
    snn::SnnTokenModel tm(cv.sm, snn::RunOptions{.timesteps = 1, .until_quiet = true, .max_steps = 4096});
    tm.begin(std::span<const float>(img.data_ptr<float>(), 28 * 28), {1, 7, 3});
    const int P = cv.sm.num_patches();
    for (int i = 0; i < P; ++i) {
      std::vector<float> got = tm.encoder().output_row(i);
      ASSERT_TRUE(bit_equal(got.data(), want[i].data_ptr<float>(), got.size())) << "seed " << seed << " row " << i;
    }
    EXPECT_EQ(tm.runs_unsettled(), 0);
  }
}

TEST_P(Exactness, DecoderLogitsEqualTheQannBitForBitThroughAppendAndRollback) {
  for (uint64_t seed : {4u, 5u, 6u}) {
    Converted cv(seed, GetParam());
    QannRef ref(cv.model);
    torch::Tensor img = random_images(1, seed + 200);
    const int V = static_cast<int>(cv.sm.vocab.size());
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<int> seq(9);
    for (int& t : seq) t = 5 + static_cast<int>(rng() % (V - 5));
    // QANN logits of every position of `seq`, teacher-forced
    QannCache cache;
    ref.prime(ref.image_prefix(img), cache);
    torch::Tensor want = ref.decode(torch::tensor(std::vector<int64_t>(seq.begin(), seq.end())).unsqueeze(0), cache)
                             .squeeze(0)
                             .contiguous();  // (9, V)
    snn::SnnTokenModel tm(cv.sm, snn::RunOptions{.timesteps = 1, .until_quiet = true, .max_steps = 4096});
    std::span<const float> px(img.data_ptr<float>(), 28 * 28);
    std::vector<float> got = tm.begin(px, {seq[0], seq[1], seq[2]});
    ASSERT_TRUE(bit_equal(got.data(), want[2].data_ptr<float>(), V)) << "seed " << seed << " prompt";
    for (int t = 3; t < 9; ++t) {
      got = tm.append(seq[t]);
      ASSERT_TRUE(bit_equal(got.data(), want[t].data_ptr<float>(), V)) << "seed " << seed << " position " << t;
    }
    // drop 4 tokens and take another path: equal to the QANN on that path
    tm.rollback(4);
    std::vector<int> alt(seq.begin(), seq.begin() + 5);
    alt.push_back(5 + (seq[5] - 5 + 1) % (V - 5));
    got = tm.append(alt.back());
    QannCache c2;
    ref.prime(ref.image_prefix(img), c2);
    torch::Tensor want2 = ref.decode(torch::tensor(std::vector<int64_t>(alt.begin(), alt.end())).unsqueeze(0), c2)
                              .squeeze(0)
                              .contiguous();
    ASSERT_TRUE(bit_equal(got.data(), want2[5].data_ptr<float>(), V)) << "seed " << seed << " after rollback";
    // same image again: the cached image rows are reused and still exact
    got = tm.begin(px, {seq[0], seq[1], seq[2]});
    ASSERT_TRUE(bit_equal(got.data(), want[2].data_ptr<float>(), V)) << "seed " << seed << " reused image";
    EXPECT_EQ(tm.runs_unsettled(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Neurons, Exactness, ::testing::Values("st_bif", "burst"));

TEST(Exactness, TooFewTimestepsIsNotExactButRateCodingApproachesTheQann) {
  // Sanity of the comparison itself: one timestep cannot settle L = 4 levels, so the outputs differ.
  Converted cv(9, "st_bif");
  QannRef ref(cv.model);
  torch::Tensor img = random_images(1, 300);
  torch::Tensor want = ref.image_prefix(img).squeeze(0).contiguous();
  snn::SnnTokenModel one(cv.sm, snn::RunOptions{.timesteps = 1});
  one.begin(std::span<const float>(img.data_ptr<float>(), 28 * 28), {1, 2});
  std::vector<float> got = one.encoder().output_row(0);
  EXPECT_FALSE(bit_equal(got.data(), want[0].data_ptr<float>(), got.size()));

  // Rate-coded IF approximates the unquantized clipped activations, so it is compared with a QANN of
  // fine levels (L = 64, close to unquantized): its error must shrink as T grows.
  Converted rate(9, "if_rate", 64);
  QannRef fine(rate.model);
  want = fine.image_prefix(img).squeeze(0).contiguous();
  double err[2];
  int k = 0;
  for (int T : {8, 256}) {
    snn::SnnTokenModel tm(rate.sm, snn::RunOptions{.timesteps = T});
    tm.begin(std::span<const float>(img.data_ptr<float>(), 28 * 28), {1, 2});
    double e = 0, norm = 0;
    for (int i = 0; i < rate.sm.num_patches(); ++i) {
      std::vector<float> row = tm.encoder().output_row(i);
      for (size_t c = 0; c < row.size(); ++c) {
        double w = want[i][static_cast<int64_t>(c)].item<float>();
        e += (row[c] - w) * (row[c] - w);
        norm += w * w;
      }
    }
    err[k++] = e / norm;
  }
  EXPECT_LT(err[1], err[0]) << "NMSE at T=8: " << err[0] << ", T=256: " << err[1];
}

TEST(SnnFile, RejectsCorruptTruncatedAndNaNFiles) {
  Converted cv(11, "st_bif");
  // NaN threshold: the graph validation names the node
  {
    H5File f = H5File::open_rw(cv.snn);
    f.set_attr("/graphs/decoder/nodes/dec.0.attn.q_q", "theta", std::nan(""));
  }
  try {
    snn::SnnModel::load(cv.snn);
    FAIL() << "NaN theta accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dec.0.attn.q_q"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("theta"), std::string::npos) << e.what();
  }
  // truncated
  std::filesystem::resize_file(cv.snn, std::filesystem::file_size(cv.snn) / 2);
  EXPECT_THROW(snn::SnnModel::load(cv.snn), Error);
  // a model checkpoint is not a spiking model
  try {
    snn::SnnModel::load(cv.ck);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a spikefm spiking model"), std::string::npos) << e.what();
  }
}

TEST(Convert, RefusesAModelThatIsNotAQann) {
  test::TempDir d;
  Mfm m = test::tiny_model(1);
  save_checkpoint(d / "f.h5", m, FashionVqa::make_tokenizer().vocab(), TrainMeta{});
  try {
    convert_checkpoint(d / "f.h5", ConvertOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--qann"), std::string::npos) << e.what();
  }
}

namespace {

// Synapses of a converted model: every int8 weight of its two graphs.
int64_t synapses(const snn::SnnModel& sm) {
  int64_t n = 0;
  for (const snn::SpikingGraph* g : {&sm.encoder, &sm.decoder}) {
    for (const auto& node : g->nodes) n += static_cast<int64_t>(node.weight.size());
  }
  return n;
}

// Weights of every linear layer of the model (QLinear modules: patch embed, blocks, projector, head).
int64_t linear_weights(Mfm& m) {
  int64_t n = 0;
  for (const auto& item : m->named_modules()) {
    if (auto* l = item.value()->as<QLinearImpl>()) n += l->weight.numel();
  }
  return n;
}

// `model` saved to dir/<name>.h5, converted with ST-BIF neurons, written to dir/<name>.snn.h5 and
// read back (through the files, as the CLI does).
snn::SnnModel convert_st_bif_via_files(Mfm& model, const std::filesystem::path& dir, const std::string& name,
                                       const QuantStore& quant = {}) {
  const auto ck = dir / (name + ".h5"), snn_path = dir / (name + ".snn.h5");
  save_checkpoint(ck, model, FashionVqa::make_tokenizer().vocab(), TrainMeta{}, [&](H5File& f) {
    if (!quant.empty()) write_quant_store(f, quant);
  });
  ConvertOptions o;
  o.neuron = "st_bif";
  convert_checkpoint(ck, o).save(snn_path);
  return snn::SnnModel::load(snn_path);
}

}  // namespace

TEST(Exactness, PrunedQannConvertsWithFewerSynapsesAndStaysBitExact) {
  // Structural pruning (prune_plan.h) composes with conversion: the pruned QANN converts, its SNN has
  // exactly the pruned model's weights as synapses, and it returns the pruned QANN's logits bit for bit.
  test::TempDir dir;
  Mfm full = random_qann(21);
  PrunePlan plan = keep_all(full);
  plan.encoder.heads[0] = {1};
  plan.decoder.heads[1] = {0};
  for (auto& ch : plan.decoder.mlp) ch.resize(80);  // keep channels 0..79 of 128
  plan.decoder.blocks = {1};
  Mfm model = apply_prune_plan(full, plan);
  model->eval();
  snn::SnnModel sm = convert_st_bif_via_files(model, dir.path(), "pruned_q");
  const int64_t full_synapses = synapses(convert_st_bif_via_files(full, dir.path(), "full_q"));
  EXPECT_EQ(synapses(sm), linear_weights(model));
  EXPECT_EQ(full_synapses, linear_weights(full));
  EXPECT_LT(synapses(sm), full_synapses);

  expect_decoder_bit_exact(model, sm, random_images(1, 321), {1, 7, 3, 9, 12});
}

TEST(Exactness, PerSiteLevelsConvertBitExactAndFollowPrunedBlocks) {
  // Every quantizer at its own L (what `compress --act-spikes` writes): the spiking neurons behind each
  // take its bounds, so the SNN still returns the QANN's logits bit for bit; the file's `levels` is
  // the largest L (the timesteps an exact run may need).
  test::TempDir dir;
  Mfm model = random_qann(41);
  std::map<std::string, int> levels;
  std::mt19937 rng(41);
  for (const auto& [name, q] : model->named_quantizers()) levels[name] = 1 + static_cast<int>(rng() % 9);
  levels["dec_blocks.1.mlp.act"] = 11;
  model->set_site_levels(levels);
  snn::SnnModel sm = convert_st_bif_via_files(model, dir.path(), "mixed_q");
  EXPECT_EQ(sm.levels, 11);

  expect_decoder_bit_exact(model, sm, random_images(1, 4141), {1, 7, 3, 9, 12, 6});

  // pruning decoder block 0 renumbers block 1 to 0: its quantizers keep their levels
  PrunePlan plan = keep_all(model);
  plan.decoder.blocks = {1};
  Mfm pruned = apply_prune_plan(model, plan);
  for (const auto& [name, q] : pruned->named_quantizers()) {
    std::string was = name;
    if (name.rfind("dec_blocks.0.", 0) == 0) was = "dec_blocks.1." + name.substr(13);
    EXPECT_EQ(q->levels(), levels.at(was)) << name;
  }
}

TEST(Exactness, CompressedGroupedWeightsConvertAtTheirWidthsAndStayBitExact) {
  // A QANN whose layers hold the per-group codes of compression (int8/int4/int2, groups that do not
  // divide the row): the converter takes the codes and group scales as stored (quant_store.h), the
  // engine keeps one accumulator per group, and the logits equal the grouped integer QANN bit for bit.
  test::TempDir dir;
  Mfm model = random_qann(31);
  const QuantSpec specs[] = {{4, 8, ScaleType::fp16}, {2, 12, ScaleType::fp16}, {8, 0, ScaleType::fp16}, {4, 0, ScaleType::fp16}};
  QuantStore store;
  {
    torch::NoGradGuard ng;
    int k = 0;
    for (auto& item : model->named_modules("", false)) {
      auto* l = dynamic_cast<QLinearImpl*>(item.value().get());
      if (l == nullptr) continue;
      const torch::Tensor w = l->weight.detach().contiguous();
      // lm_head grouped too: its float outputs are the logits, so even the order of the group sum shows
      const QuantSpec spec = item.key() == "lm_head" ? specs[1] : specs[k++ % 4];
      QuantizedMatrix q = quantize_rtn(w.data_ptr<float>(), w.size(0), w.size(1), spec);
      l->weight.copy_(dequantized_tensor(q));
      store.layers[item.key()] = std::move(q);
    }
  }
  use_stored_weights(model, store);
  // The grouped integer linear is the float product with Ŵ (an independent computation) up to rounding.
  {
    QannRef ref(model, store);
    QLinear fc1 = std::dynamic_pointer_cast<BlockImpl>(model->dec_blocks[0])->mlp->fc1;
    ASSERT_GT(ref.weights(fc1).group, 0);
    torch::manual_seed(5);
    const torch::Tensor n = torch::randint(-4, 5, {3, fc1->weight.size(1)}).to(torch::kFloat32);
    const torch::Tensor want = torch::matmul(n * 0.25f, fc1->weight.detach().t()) + fc1->bias.detach();
    EXPECT_TRUE(torch::allclose(ref.linear(n, 0.25f, fc1), want, 1e-4, 1e-5));
  }
  snn::SnnModel sm = convert_st_bif_via_files(model, dir.path(), "grouped_q", store);
  std::set<int> widths;
  int grouped = 0;
  for (const snn::SpikingGraph* g : {&sm.encoder, &sm.decoder}) {
    for (const auto& n : g->nodes) {
      if (n.kind != snn::OpKind::linear && n.kind != snn::OpKind::encode_linear) continue;
      widths.insert(n.weight_bits);
      grouped += n.group > 0;
    }
  }
  EXPECT_EQ(widths, (std::set<int>{2, 4, 8}));
  EXPECT_GT(grouped, 0);
  const snn::OpNode& head = sm.decoder.nodes[sm.decoder.find("lm_head")];
  const std::vector<int8_t> codes = unpack_codes(store.layers.at("lm_head").packed, head.cols, head.in, head.weight_bits);
  EXPECT_EQ(head.weight, codes);  // the stored codes, not a re-quantization
  expect_decoder_bit_exact(model, sm, random_images(1, 3131), {1, 7, 3, 9, 12, 6}, store);
  // the codes travel with the checkpoint: loading it gives the same model, and converting it again the same SNN
  Checkpoint back = load_checkpoint(dir / "grouped_q.h5");
  expect_decoder_bit_exact(back.model, sm, random_images(1, 3132), {1, 7, 3, 9}, store);
}
