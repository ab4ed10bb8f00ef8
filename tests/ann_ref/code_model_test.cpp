// The text-only MFM (code generation): no encoder, KV-cache decoding equal to full recomputation,
// checkpoints with the BPE merges, a short training run that learns, and the sampler's stop rules.
#include <gtest/gtest.h>

#include "ann_ref/checkpoint.h"
#include "ann_ref/code_model.h"
#include "ann_ref/code_trainer.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {

MfmConfig tiny_text_config() {
  MfmConfig c = code_model_config("small", 300, 40);
  c.size_name = "custom";
  c.dec_width = 32;
  c.dec_heads = 2;
  c.dec_layers = 2;
  c.act_init_lambda = 1.0f;
  return c;
}

}  // namespace

TEST(TextOnlyMfm, HasNoEncoderParametersAndRefusesImages) {
  torch::manual_seed(3);
  Mfm m(tiny_text_config());
  for (const auto& item : m->named_parameters()) {
    EXPECT_EQ(item.key().rfind("dec_", 0) == 0 || item.key().rfind("tok_embed", 0) == 0 ||
                  item.key().rfind("lm_head", 0) == 0,
              true)
        << item.key();
  }
  EXPECT_THROW(m->image_prefix(torch::rand({1, 28, 28})), Error);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(5, 300, {2, 41}, torch::kInt64);
  EXPECT_THROW(m->decode({}, tok), Error);  // beyond max_text_len
}

// The sampler feeds one token per step through the cache; its logits must equal the full causal pass.
TEST(TextOnlyMfm, KvCacheDecodingMatchesFullRecomputation) {
  torch::manual_seed(5);
  Mfm m(tiny_text_config());
  m->eval();
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(5, 300, {3, 24}, torch::kInt64);  // (B, T)
  torch::Tensor full = m->decode({}, tok);                              // (B, T, V)
  KVCache cache;
  std::vector<torch::Tensor> parts{m->decode({}, tok.narrow(1, 0, 9), &cache)};
  for (int64_t t = 9; t < 24; ++t) parts.push_back(m->decode({}, tok.narrow(1, t, 1), &cache));
  torch::Tensor inc = torch::cat(parts, 1);
  EXPECT_EQ(cache.len, 24);
  // float32 sums in a different order: differences at rounding level (logits are O(1))
  EXPECT_LT((inc - full).abs().max().item<double>(), 1e-4);
}

TEST(TextOnlyMfm, CheckpointRoundTripKeepsTheModeAndImageModelsStayUnmarked) {
  test::TempDir dir;
  torch::manual_seed(7);
  Mfm m(tiny_text_config());
  m->eval();
  std::vector<std::string> vocab = CodeTokenizer(std::vector<std::pair<int, int>>{{5 + 'a', 5 + 'b'}}).display_vocab();
  vocab.resize(300, "pad");  // any distinct-enough names: the generic loader only counts them
  save_checkpoint(dir / "t.h5", m, vocab, TrainMeta{});
  Checkpoint ck = load_checkpoint(dir / "t.h5");
  EXPECT_TRUE(ck.model->config().text_only);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(5, 300, {1, 12}, torch::kInt64);
  EXPECT_TRUE(torch::equal(m->decode({}, tok), ck.model->decode({}, tok)));

  Mfm img = test::tiny_model(1);
  save_checkpoint(dir / "i.h5", img, FashionVqa::make_tokenizer().vocab(), TrainMeta{});
  EXPECT_FALSE(H5File::open(dir / "i.h5").has_attr("/config", "text_only"));
  EXPECT_FALSE(load_checkpoint(dir / "i.h5").model->config().text_only);
  // a text-only checkpoint without the BPE is not a code model
  EXPECT_THROW(CodeModel::load(dir / "t.h5"), Error);
  EXPECT_THROW(CodeModel::load(dir / "i.h5"), Error);
}

TEST(CodeTrainer, ShortRunLowersTheLossAndSamplesLoad) {
  test::TempDir dir;
  CodeTrainOptions o;
  o.out = dir / "code.h5";
  o.limit_tasks = 32;
  o.epochs = 4;
  o.batch = 2;  // 64 steps: the first and last 20-step loss windows do not overlap
  o.threads = 1;
  o.vocab_size = 400;
  o.max_text_len = 160;
  o.lr = 3e-3;
  o.minutes = 30;  // never the limit: the run is 64 steps whatever the machine's load
  o.progress = false;
  CodeTrainReport r = train_code(o);
  EXPECT_EQ(r.steps, 64);
  EXPECT_LT(r.last_loss, 0.8 * r.first_loss) << r.first_loss << " -> " << r.last_loss;

  CodeModel model = CodeModel::load(o.out);
  EXPECT_EQ(model.tokenizer().size(), r.vocab_size);
  EXPECT_LE(r.vocab_size, 400);
  EXPECT_EQ(model.parameters(), r.parameters);
  const std::string prompt = "def f(xs: list) -> int:\n    \"\"\"Return the sum of xs.\n    \"\"\"\n";
  CodeSampling s;
  s.samples = 4;
  s.max_new_tokens = 30;
  s.temperature = 0.8;
  auto a = model.complete(prompt, s), b = model.complete(prompt, s);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a, b);  // same seed, same samples
  s.temperature = 0;
  auto g = model.complete(prompt, s);
  for (const auto& c : g) EXPECT_EQ(c, g[0]);  // greedy rows agree
  for (const auto& c : a) EXPECT_EQ(cut_at_stop_sequence(c), c);
}

TEST(CodeSampler, StopSequencesCutTheBody) {
  bool stopped = false;
  EXPECT_EQ(cut_at_stop_sequence("    return x\n\ndef g():\n", &stopped), "    return x\n");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(cut_at_stop_sequence("    return x\n#c\nprint(1)"), "    return x");
  EXPECT_EQ(cut_at_stop_sequence("    # fine\n    return x", &stopped), "    # fine\n    return x");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(cut_at_stop_sequence("    return 1\nif __name__ == '__main__':"), "    return 1");
}

TEST(CodeSampler, ModelReadsThePromptWithoutDoctestExamples) {
  const std::string p = "def f(a: int) -> int:\n    \"\"\"Return a plus 1.\n    >>> f(1)\n    2\n    >>> f(0)\n    1\n    \"\"\"\n";
  EXPECT_EQ(code_prompt_view(p), "def f(a: int) -> int:\n    \"\"\"Return a plus 1.\n    \"\"\"\n");
  EXPECT_EQ(code_prompt_view("def g():\n    pass\n"), "def g():\n    pass\n");
}
