// Structural pruning (ann_ref/prune_plan.h): the physically smaller model must compute exactly what
// the original computes with the removed parts silenced, and must save and reload like any model.
#include <gtest/gtest.h>

#include <random>

#include "ann_ref/checkpoint.h"
#include "ann_ref/prune_plan.h"
#include "common/error.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {

// Random images (B, 28, 28) and tokens (B, T) of the tiny model's vocabulary.
struct Inputs {
  torch::Tensor images, tokens;
};

Inputs random_inputs(const Mfm& m, uint64_t seed, int64_t B = 3, int64_t T = 6) {
  torch::manual_seed(seed);
  return {torch::rand({B, 28, 28}), torch::randint(5, m->config().vocab_size, {B, T}, torch::kInt64)};
}

torch::Tensor logits(Mfm& m, const Inputs& in) {
  torch::NoGradGuard ng;
  return m->forward(in.images, in.tokens);
}

// The tiny model (1 encoder block, 2 decoder blocks, 2 heads, MLP 128) with its LayerNorm affine
// parameters randomised too, so a copy that mixed blocks up would show.
Mfm random_model(uint64_t seed) {
  Mfm m = test::tiny_model(seed);
  torch::NoGradGuard ng;
  for (auto& p : m->named_parameters()) {
    if (p.key().find("ln") != std::string::npos) p.value().uniform_(0.5, 1.5);
  }
  return m;
}

Block block(Mfm& m, bool encoder, int i) {
  return std::dynamic_pointer_cast<BlockImpl>((encoder ? m->enc_blocks : m->dec_blocks)->ptr(i));
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  // Removing a zero column from a sum changes only the order of float additions: relative error of a
  // few ulps of the partial sums, far below 1e-4 of the logits' scale.
  const double scale = b.abs().max().item<double>() + 1e-6;
  EXPECT_LT((a - b).abs().max().item<double>() / scale, 1e-5) << what;
}

std::vector<int> all_but(int n, const std::vector<int>& drop) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) {
    if (std::find(drop.begin(), drop.end(), i) == drop.end()) v.push_back(i);
  }
  return v;
}

}  // namespace

TEST(Prune, KeepAllReproducesTheModelBitForBit) {
  for (uint64_t seed : {1u, 2u}) {
    Mfm m = random_model(seed);
    Mfm p = apply_prune_plan(m, keep_all(m));
    EXPECT_FALSE(p->config().pruned());
    EXPECT_EQ(p->parameter_count(), m->parameter_count());
    Inputs in = random_inputs(m, seed + 10);
    EXPECT_TRUE(torch::equal(logits(p, in), logits(m, in)));
  }
}

TEST(Prune, RemovedHeadsEqualTheirOutputColumnsZeroed) {
  for (uint64_t seed : {3u, 4u, 5u}) {
    Mfm m = random_model(seed);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    PrunePlan plan = keep_all(m);
    // drop one random head in the encoder block and in decoder block 1
    const int he = static_cast<int>(rng() % 2), hd = static_cast<int>(rng() % 2);
    plan.encoder.heads[0] = all_but(2, {he});
    plan.decoder.heads[1] = all_but(2, {hd});
    Mfm p = apply_prune_plan(m, plan);
    EXPECT_EQ(p->config().enc_block_heads, std::vector<int>({1}));
    EXPECT_EQ(p->config().dec_block_heads, std::vector<int>({2, 1}));
    // Independent computation: the original with the removed heads' W_o columns zeroed.
    {
      torch::NoGradGuard ng;
      const int64_t d = 16;
      block(m, true, 0)->attn->proj->weight.narrow(1, he * d, d).zero_();
      block(m, false, 1)->attn->proj->weight.narrow(1, hd * d, d).zero_();
    }
    Inputs in = random_inputs(m, seed + 20);
    expect_close(logits(p, in), logits(m, in), "seed " + std::to_string(seed));
    // q/k/v rows of the head are gone: qkv shrinks from (96, 32) to (48, 32), proj from (32, 32) to (32, 16)
    EXPECT_EQ(block(p, true, 0)->attn->qkv->weight.sizes(), torch::IntArrayRef({48, 32}));
    EXPECT_EQ(block(p, true, 0)->attn->proj->weight.sizes(), torch::IntArrayRef({32, 16}));
  }
}

TEST(Prune, RemovedMlpChannelsEqualTheirDownColumnsZeroed) {
  for (uint64_t seed : {6u, 7u}) {
    Mfm m = random_model(seed);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    PrunePlan plan = keep_all(m);
    std::vector<std::vector<int>> dropped(3);
    for (int b = 0; b < 3; ++b) {
      for (int j = 0; j < 128; ++j) {
        if (rng() % 3 == 0) dropped[b].push_back(j);
      }
      (b == 0 ? plan.encoder.mlp[0] : plan.decoder.mlp[b - 1]) = all_but(128, dropped[b]);
    }
    Mfm p = apply_prune_plan(m, plan);
    {
      torch::NoGradGuard ng;
      for (int b = 0; b < 3; ++b) {
        Block blk = block(m, b == 0, b == 0 ? 0 : b - 1);
        for (int j : dropped[b]) blk->mlp->fc2->weight.select(1, j).zero_();
      }
    }
    Inputs in = random_inputs(m, seed + 30);
    expect_close(logits(p, in), logits(m, in), "seed " + std::to_string(seed));
    EXPECT_EQ(p->config().dec_block_mlp[1], 128 - static_cast<int>(dropped[2].size()));
    EXPECT_LT(p->parameter_count(), m->parameter_count());
  }
}

TEST(Prune, RemovedBlockEqualsTheBlockWithItsResidualBranchesSilenced) {
  Mfm m = random_model(8);
  PrunePlan plan = keep_all(m);
  plan.decoder.blocks = {1};  // drop decoder block 0
  plan.encoder.blocks = {};   // and the whole encoder stack (patches → LN → projector)
  Mfm p = apply_prune_plan(m, plan);
  EXPECT_EQ(p->config().dec_layers, 1);
  EXPECT_EQ(p->config().enc_layers, 0);
  {
    // A pre-LN block adds W_o·(...) + b_o and W2·(...) + b2 to the residual stream: with those zero
    // it passes its input through unchanged, which is what removing it means.
    torch::NoGradGuard ng;
    for (Block b : {block(m, true, 0), block(m, false, 0)}) {
      b->attn->proj->weight.zero_();
      b->attn->proj->bias.zero_();
      b->mlp->fc2->weight.zero_();
      b->mlp->fc2->bias.zero_();
    }
  }
  Inputs in = random_inputs(m, 40);
  expect_close(logits(p, in), logits(m, in), "block removal");
}

TEST(Prune, PrunedCheckpointReloadsWithTheOrdinaryLoaderAndEqualsTheInMemoryModel) {
  test::TempDir dir;
  Mfm m = random_model(9);
  PrunePlan plan = keep_all(m);
  plan.encoder.heads[0] = {1};
  plan.decoder.mlp[0] = all_but(128, {0, 5, 77, 127});
  plan.decoder.blocks = {0};
  Mfm p = apply_prune_plan(m, plan);
  const auto path = dir / "pruned.h5";
  save_checkpoint(path, p, FashionVqa::make_tokenizer().vocab(), TrainMeta{});
  Checkpoint ck = load_checkpoint(path);
  ck.model->eval();
  EXPECT_EQ(ck.model->config().enc_block_heads, p->config().enc_block_heads);
  EXPECT_EQ(ck.model->config().dec_block_mlp, p->config().dec_block_mlp);
  EXPECT_EQ(ck.model->config().dec_layers, 1);
  EXPECT_EQ(ck.model->parameter_count(), p->parameter_count());
  Inputs in = random_inputs(m, 50);
  EXPECT_TRUE(torch::equal(logits(ck.model, in), logits(p, in)));
}

TEST(Prune, BadPlansAreRejectedWithTheReason) {
  Mfm m = random_model(10);
  auto err = [&](const PrunePlan& plan) { return test::error_of([&] { apply_prune_plan(m, plan); }); };
  PrunePlan p = keep_all(m);
  p.encoder.heads[0] = {0, 2};
  EXPECT_NE(err(p).find("out of range"), std::string::npos) << err(p);
  p = keep_all(m);
  p.decoder.mlp[1] = {3, 1};
  EXPECT_NE(err(p).find("ascending"), std::string::npos) << err(p);
  p = keep_all(m);
  p.decoder.heads[0] = {};
  EXPECT_NE(err(p).find("keeps nothing"), std::string::npos) << err(p);
  p = keep_all(m);
  p.decoder.blocks = {};
  EXPECT_NE(err(p).find("decoder keeps no block"), std::string::npos) << err(p);
  p = keep_all(m);
  p.decoder.heads.pop_back();
  EXPECT_NE(err(p).find("every block"), std::string::npos) << err(p);
}

TEST(Prune, ScoresSeeSilencedUnitsAsFree) {
  // A block, head or channel whose output is already zero contributes nothing: its block influence,
  // ablation loss and Wanda score must be exactly 0 whatever the data.
  Mfm m = random_model(11);
  {
    torch::NoGradGuard ng;
    Block d1 = block(m, false, 1);
    d1->attn->proj->weight.zero_();
    d1->attn->proj->bias.zero_();
    d1->mlp->fc2->weight.zero_();
    d1->mlp->fc2->bias.zero_();
    block(m, true, 0)->attn->proj->weight.narrow(1, 16, 16).zero_();  // encoder head 1
    block(m, false, 0)->mlp->fc2->weight.select(1, 9).zero_();        // decoder block 0, channel 9
  }
  CalibBatch calib;
  Inputs in = random_inputs(m, 60, 8, 6);
  calib.images = in.images;
  calib.inputs = in.tokens;
  calib.targets = torch::randint(5, m->config().vocab_size, {8, 6}, torch::kInt64);

  const std::vector<double> bi = block_influence(m, calib);
  ASSERT_EQ(bi.size(), 3u);
  EXPECT_NEAR(bi[2], 0.0, 1e-6);  // decoder block 1: output = input
  EXPECT_GT(bi[1], 1e-4);         // an active block turns its input

  const auto dl = head_ablation_loss(m, calib);
  EXPECT_EQ(dl[0][0][1], 0.0);
  EXPECT_NE(dl[0][0][0], 0.0);

  const auto sc = mlp_channel_scores(m, calib);
  ASSERT_EQ(sc[1][0].size(), 128u);
  EXPECT_EQ(sc[1][0][9], 0.0);
  EXPECT_GT(sc[1][0][8], 0.0);
}
