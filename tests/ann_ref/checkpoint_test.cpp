#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "ann_ref/ann_token_model.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/quant_layers.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;
namespace fs = std::filesystem;

using spikefm::test::error_of;
using spikefm::test::slurp;
using spikefm::test::spit;

namespace {

struct Fixture {
  test::TempDir dir;
  fs::path path = dir / "m.h5";
  Mfm model = test::tiny_model(11);
  torch::Tensor img = torch::rand({2, 28, 28});
  torch::Tensor tok = torch::randint(5, model->config().vocab_size, {2, 7}, torch::kInt64);
  Fixture() {
    TrainMeta meta;
    meta.seed = 42;
    meta.steps = 3;
    save_checkpoint(path, model, FashionVqa::make_tokenizer().vocab(), meta);
  }
  torch::Tensor logits(Mfm& m) {
    torch::NoGradGuard ng;
    return m->forward(img, tok);
  }
};

}  // namespace

TEST(Checkpoint, RoundTripGivesIdenticalLogitsConfigAndVocab) {
  Fixture fx;
  Checkpoint ck = load_checkpoint(fx.path);
  EXPECT_TRUE(torch::equal(fx.logits(fx.model), fx.logits(ck.model)));
  EXPECT_EQ(ck.vocab, FashionVqa::make_tokenizer().vocab());
  EXPECT_EQ(ck.meta.seed, 42);
  EXPECT_EQ(ck.model->config().patch, 8);
  EXPECT_EQ(ck.model->config().stride, 4);
  EXPECT_EQ(ck.model->config().act_levels, 8);
  EXPECT_EQ(ck.model->parameter_count(), fx.model->parameter_count());
}

TEST(Checkpoint, RejectsWrongVersionNamingTheAttribute) {
  Fixture fx;
  H5File::open_rw(fx.path).set_attr("/", "format_version", int64_t{99});
  std::string msg = error_of([&] { load_checkpoint(fx.path); });
  EXPECT_NE(msg.find("format_version"), std::string::npos) << msg;
  EXPECT_NE(msg.find("99"), std::string::npos) << msg;
}

TEST(Checkpoint, RejectsMalformedOrUnknownSiteLevels) {
  // The float tiny model has one QCFS quantizer per MLP (mlp.act): a valid entry loads, a malformed
  // one or one naming no quantizer is refused naming site_levels / the site.
  Fixture fx;
  H5File::open_rw(fx.path).set_attr("/config", "site_levels", std::string("dec_blocks.1.mlp.act=3"));
  Checkpoint ok = load_checkpoint(fx.path);
  EXPECT_EQ(ok.model->config().site_levels.at("dec_blocks.1.mlp.act"), 3);
  for (const char* bad : {"dec_blocks.1.mlp.act=x", "dec_blocks.1.mlp.act", "=3", "a=1,a=2", "dec_blocks.1.mlp.act=3,",
                          "dec_blocks.1.mlp.act=1000"}) {
    H5File::open_rw(fx.path).set_attr("/config", "site_levels", std::string(bad));
    std::string msg = error_of([&] { load_checkpoint(fx.path); });
    EXPECT_NE(msg.find("site_levels"), std::string::npos) << bad << ": " << msg;
  }
  H5File::open_rw(fx.path).set_attr("/config", "site_levels", std::string("dec_blocks.1.mlp.fc1=3"));
  std::string msg = error_of([&] { load_checkpoint(fx.path); });
  EXPECT_NE(msg.find("dec_blocks.1.mlp.fc1"), std::string::npos) << msg;
}

TEST(Checkpoint, RejectsNaNWeightsMissingTensorsWrongShapesAndUnknownTensors) {
  const std::string w = "/params/dec_blocks/1/mlp/fc1/weight";
  {
    Fixture fx;
    H5File f = H5File::open_rw(fx.path);
    Shape s;
    std::vector<float> data = f.read<float>(w, &s);
    data[17] = std::nanf("");
    f.remove(w);
    f.write(w, data.data(), s);
    f.close();
    std::string msg = error_of([&] { load_checkpoint(fx.path); });
    EXPECT_NE(msg.find(w + ": element 17 is nan"), std::string::npos) << msg;
  }
  {
    Fixture fx;
    H5File::open_rw(fx.path).remove(w);
    std::string msg = error_of([&] { load_checkpoint(fx.path); });
    EXPECT_NE(msg.find(w + ": missing tensor"), std::string::npos) << msg;
  }
  {
    Fixture fx;
    H5File f = H5File::open_rw(fx.path);
    f.remove(w);
    std::vector<float> wrong(10 * 3, 0.0f);
    f.write(w, wrong.data(), {10, 3});
    f.close();
    std::string msg = error_of([&] { load_checkpoint(fx.path); });
    EXPECT_NE(msg.find(w + ": shape (10, 3) does not match the expected (128, 32)"), std::string::npos) << msg;
  }
  {
    Fixture fx;
    std::vector<float> extra(4, 1.0f);
    H5File::open_rw(fx.path).write("/params/dec_blocks/9/extra", extra.data(), {4});
    std::string msg = error_of([&] { load_checkpoint(fx.path); });
    EXPECT_NE(msg.find("/params/dec_blocks/9/extra: unknown tensor"), std::string::npos) << msg;
  }
}

TEST(Checkpoint, TruncatedFilesAreRejected) {
  Fixture fx;
  std::string bytes = slurp(fx.path);
  for (double frac : {0.1, 0.5, 0.9, 0.999}) {
    spit(fx.path, bytes.substr(0, static_cast<size_t>(bytes.size() * frac)));
    std::string msg = error_of([&] { load_checkpoint(fx.path); });
    EXPECT_NE(msg.find("loading checkpoint"), std::string::npos) << "cut at " << frac << ": " << msg;
  }
}

TEST(Checkpoint, BitFlipsAreDetectedOrHarmlessNeverSilent) {
  // Flip one random bit at a time. Every flip must either be rejected with an Error or leave the model
  // bit-identical (a flip in unused padding); a silently changed weight is the failure this guards.
  Fixture fx;
  const std::string bytes = slurp(fx.path);
  const torch::Tensor want = fx.logits(fx.model);
  std::mt19937_64 rng(2024);
  int rejected = 0, harmless = 0;
  for (int trial = 0; trial < 120; ++trial) {
    std::string b = bytes;
    size_t pos = rng() % b.size();
    b[pos] = static_cast<char>(b[pos] ^ (1 << (rng() % 8)));
    spit(fx.path, b);
    try {
      Checkpoint ck = load_checkpoint(fx.path);
      ASSERT_TRUE(torch::equal(fx.logits(ck.model), want)) << "flip at byte " << pos << " changed the model silently";
      ++harmless;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  std::cout << "bit flips: " << rejected << " rejected, " << harmless << " harmless\n";
}

TEST(AnnTokenModel, GreedyThroughTheInterfaceMatchesBatchedGeneration) {
  Fixture fx;
  AnnTokenModel tm(fx.path);
  WordTokenizer tok(FashionVqa::make_tokenizer());
  std::vector<int> prompt = prompt_tokens(tok, "what is this?");
  torch::NoGradGuard ng;
  KVCache primed;
  fx.model->prime(fx.model->image_prefix(fx.img), primed);
  auto batched = greedy_answers(fx.model, primed, prompt, 5);
  for (int b = 0; b < 2; ++b) {
    torch::Tensor one = fx.img[b].contiguous();
    std::span<const float> px(one.data_ptr<float>(), 28 * 28);
    // greedy_answers stops at <eos>; the interface's decoder does the same
    std::vector<int> got = decoding::greedy_decode(tm, px, prompt, WordTokenizer::kEos, 5);
    EXPECT_EQ(got, batched[b]) << "image " << b;
  }
  // rollback then append reproduces the logits seen before
  torch::Tensor one = fx.img[0].contiguous();
  std::span<const float> px(one.data_ptr<float>(), 28 * 28);
  tm.begin(px, prompt);
  std::vector<float> l1 = tm.append(7);
  std::vector<float> l2 = tm.append(9);
  tm.rollback(1);
  EXPECT_EQ(tm.text_length(), static_cast<int>(prompt.size()) + 1);
  std::vector<float> l2b = tm.append(9);
  ASSERT_EQ(l2.size(), l2b.size());
  for (size_t i = 0; i < l2.size(); ++i) EXPECT_NEAR(l2[i], l2b[i], 1e-5f);
  (void)l1;
}

namespace {

// A QANN whose fc1 layers were compressed (int4, groups of 8), saved with their codes.
struct Compressed {
  test::TempDir dir;
  fs::path path = dir / "c.h5";
  Mfm model{nullptr};
  QuantStore store;
  Compressed() {
    MfmConfig c = test::tiny_config(4);
    c.qann = true;
    c.weight_bits = 8;
    torch::manual_seed(3);
    model = Mfm(c);
    model->eval();
    torch::NoGradGuard ng;
    for (auto& item : model->named_modules("", false)) {
      auto* l = dynamic_cast<QLinearImpl*>(item.value().get());
      if (l == nullptr || item.key().find("fc1") == std::string::npos) continue;
      const torch::Tensor w = l->weight.detach().contiguous();
      QuantizedMatrix q = quantize_rtn(w.data_ptr<float>(), w.size(0), w.size(1), QuantSpec{4, 8, ScaleType::fp16});
      l->weight.copy_(dequantized_tensor(q));
      store.layers[item.key()] = std::move(q);
    }
    save_checkpoint(path, model, FashionVqa::make_tokenizer().vocab(), TrainMeta{},
                    [&](H5File& f) { write_quant_store(f, store); });
  }
};

}  // namespace

TEST(Checkpoint, ACompressedQannComputesWithItsStoredWeightsNotAnInt8Requantization) {
  Compressed cx;
  ASSERT_EQ(cx.store.layers.size(), 3u);  // the fc1 of the encoder block and of both decoder blocks
  Checkpoint ck = load_checkpoint(cx.path);
  torch::NoGradGuard ng;
  const torch::Tensor img = torch::rand({2, 28, 28});
  const torch::Tensor tok = torch::randint(5, cx.model->config().vocab_size, {2, 7}, torch::kInt64);
  const torch::Tensor loaded = ck.model->forward(img, tok);
  // the in-memory model re-quantizes every weight to int8 per channel (QLinear bits = 8) ...
  const torch::Tensor requantized = cx.model->forward(img, tok);
  // ... unless told to use the stored weights as they are: then it equals the loaded model exactly
  use_stored_weights(cx.model, cx.store);
  EXPECT_TRUE(torch::equal(loaded, cx.model->forward(img, tok)));
  EXPECT_FALSE(torch::equal(loaded, requantized));  // int4 group codes are not int8 per-channel ones
}

TEST(Checkpoint, StaleOrForeignCompressionCodesAreRefused) {
  {  // a weight changed after compression
    Compressed cx;
    const std::string p = "/params/dec_blocks/0/mlp/fc1/weight";
    {
      H5File f = H5File::open_rw(cx.path);
      std::vector<float> w = f.read<float>(p);
      w[5] += 1e-3f;
      f.remove(p);
      f.write(p, w.data(), {128, 32});
    }
    const std::string msg = error_of([&] { load_checkpoint(cx.path); });
    EXPECT_NE(msg.find("/quant/dec_blocks/0/mlp/fc1/weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("changed after compression"), std::string::npos) << msg;
  }
  {  // codes for a layer the model does not have
    Compressed cx;
    {
      H5File f = H5File::open_rw(cx.path);
      QuantStore extra;
      const std::vector<float> w(4 * 8, 0.5f);
      extra.layers["dec_blocks.7.mlp.fc1"] = quantize_rtn(w.data(), 4, 8, QuantSpec{});
      f.remove("/quant");
      write_quant_store(f, extra);
    }
    const std::string msg = error_of([&] { load_checkpoint(cx.path); });
    EXPECT_NE(msg.find("no linear layer 'dec_blocks.7.mlp.fc1'"), std::string::npos) << msg;
  }
}
