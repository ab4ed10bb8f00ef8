// Moving a model onto another task (weight_transfer.h) and fine-tuning it (finetune.h).
#include <gtest/gtest.h>

#include <map>

#include "ann_ref/checkpoint.h"
#include "ann_ref/finetune.h"
#include "ann_ref/weight_transfer.h"
#include "datasets/med_vqa.h"
#include "datasets/nifti.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {

// Med-VQA needs the head CT and the brain MR (scripts/setup-deps.sh installs both).
bool have_ct() {
  return std::filesystem::exists(default_inv3_path()) && std::filesystem::exists(default_nifti_mr_path());
}

// A tiny Fashion model with Fashion small's geometry (28 px, 7 x 7 patches, 4 x 4 grid), so moving it
// to Med-VQA (48 px, 8 x 8 patches, 6 x 6 grid) resizes both the positions and the patch filters.
MfmConfig tiny_base_config() {
  MfmConfig c = test::tiny_config(0);
  c.patch = 7;
  c.stride = 7;
  return c;
}

}  // namespace

// Bilinear resizing with align_corners off samples the old grid at (j' + 0.5)·g/g' − 0.5, clamped to
// the grid: a ramp along the columns must come out as that coordinate, a constant as itself.
TEST(WeightTransfer, PositionGridIsInterpolatedBilinearly) {
  const int g = 4, gn = 6;
  torch::Tensor pos = torch::empty({g * g, 2});
  for (int i = 0; i < g; ++i) {
    for (int j = 0; j < g; ++j) {
      pos[i * g + j][0] = static_cast<float>(j);  // ramp along columns
      pos[i * g + j][1] = 3.5f;                   // constant
    }
  }
  torch::Tensor out = resize_positions(pos, g, gn);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{gn * gn, 2}));
  for (int i = 0; i < gn; ++i) {
    for (int j = 0; j < gn; ++j) {
      const double x = std::clamp((j + 0.5) * g / gn - 0.5, 0.0, g - 1.0);
      EXPECT_NEAR(out[i * gn + j][0].item<float>(), x, 1e-6) << i << "," << j;
      EXPECT_NEAR(out[i * gn + j][1].item<float>(), 3.5, 1e-6);
    }
  }
}

TEST(WeightTransfer, PatchFiltersKeepTheirResponseToAUniformPatch) {
  torch::Tensor w = torch::ones({3, 49});  // three 7 x 7 box filters: response 49 to an all-ones patch
  torch::Tensor out = resize_patch_filters(w, 7, 8);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 64}));
  EXPECT_NEAR(out.sum(1)[0].item<float>(), 49.0, 1e-4);
  EXPECT_NEAR(out.min().item<float>(), 49.0 / 64.0, 1e-6);
}

TEST(WeightTransfer, SharedWordsKeepTheBaseRowsAndNewWordsTheirFreshInit) {
  torch::manual_seed(1);
  Mfm base(tiny_base_config());
  const auto src_vocab = FashionVqa::make_tokenizer().vocab();
  const auto dst_vocab = MedVqa::make_tokenizer().vocab();
  MfmConfig dc = tiny_base_config();
  dc.image_size = 48;
  dc.patch = 8;
  dc.stride = 8;
  dc.vocab_size = static_cast<int>(dst_vocab.size());
  torch::manual_seed(2);
  Mfm dst(dc);
  torch::Tensor fresh_embed = dst->tok_embed->weight.detach().clone();
  torch::Tensor fresh_head = dst->lm_head->weight.detach().clone();
  TransferReport r = transfer_weights(dst, dst_vocab, base, src_vocab);
  EXPECT_EQ(r.resized, 2);  // enc_pos and patch_embed.weight
  std::map<std::string, int64_t> src_id;
  for (size_t i = 0; i < src_vocab.size(); ++i) src_id[src_vocab[i]] = static_cast<int64_t>(i);
  int64_t shared = 0;
  for (size_t i = 0; i < dst_vocab.size(); ++i) {
    const auto it = src_id.find(dst_vocab[i]);
    const int64_t d = static_cast<int64_t>(i);
    if (it != src_id.end()) {
      ++shared;
      EXPECT_TRUE(torch::equal(dst->tok_embed->weight[d], base->tok_embed->weight[it->second])) << dst_vocab[i];
      EXPECT_TRUE(torch::equal(dst->lm_head->weight[d], base->lm_head->weight[it->second])) << dst_vocab[i];
      EXPECT_EQ(dst->lm_head->bias[d].item<float>(), base->lm_head->bias[it->second].item<float>()) << dst_vocab[i];
    } else {
      EXPECT_TRUE(torch::equal(dst->tok_embed->weight[d], fresh_embed[d])) << dst_vocab[i];
      EXPECT_TRUE(torch::equal(dst->lm_head->weight[d], fresh_head[d])) << dst_vocab[i];
    }
  }
  EXPECT_EQ(r.shared_words, shared);
  EXPECT_GE(shared, 10);  // the specials, "?", "is", "this", "what", "yes", "no", ...
  EXPECT_EQ(r.new_words, static_cast<int64_t>(dst_vocab.size()) - shared);
  EXPECT_TRUE(torch::equal(dst->dec_blocks[0]->as<BlockImpl>()->attn->qkv->weight,
                           base->dec_blocks[0]->as<BlockImpl>()->attn->qkv->weight));
}

TEST(Finetune, LoraFromATinyBaseKeepsSharedRowsAndFrozenTensorsAndMergesIntoAPlainCheckpoint) {
  if (!have_ct()) GTEST_SKIP() << "Cranium.inv3 not installed";
  test::TempDir dir;
  torch::manual_seed(3);
  Mfm base(tiny_base_config());
  const auto src_vocab = FashionVqa::make_tokenizer().vocab();
  save_checkpoint(dir / "base.h5", base, src_vocab, TrainMeta{});
  FinetuneOptions o;
  o.train.task = "med-vqa";
  o.train.init = dir / "base.h5";
  o.train.out = dir / "lora.h5";
  o.train.limit_images = 32;
  o.train.batch_images = 8;
  o.train.epochs = 1;  // 4 steps
  o.train.val_images = 0;
  o.train.progress = false;
  o.method = "lora";
  o.rank = 2;
  o.alpha = 4;
  FinetuneReport r = finetune_vqa(o);
  EXPECT_EQ(r.train.steps, 4);
  EXPECT_EQ(r.train.trainable_parameters, r.lora_parameters + r.new_word_parameters);
  EXPECT_LT(r.train.trainable_parameters, r.train.parameters / 2);
  Checkpoint ck = load_checkpoint(o.train.out);  // a plain checkpoint: the ordinary loader reads it
  ASSERT_EQ(ck.vocab, MedVqa::make_tokenizer().vocab());
  EXPECT_EQ(ck.model->config().image_size, 48);
  std::map<std::string, int64_t> src_id;
  for (size_t i = 0; i < src_vocab.size(); ++i) src_id[src_vocab[i]] = static_cast<int64_t>(i);
  int shared = 0;
  for (size_t i = 0; i < ck.vocab.size(); ++i) {
    const auto it = src_id.find(ck.vocab[i]);
    if (it == src_id.end()) continue;
    ++shared;
    EXPECT_TRUE(torch::equal(ck.model->tok_embed->weight[static_cast<int64_t>(i)], base->tok_embed->weight[it->second]))
        << ck.vocab[i];
    EXPECT_TRUE(torch::equal(ck.model->lm_head->weight[static_cast<int64_t>(i)], base->lm_head->weight[it->second]))
        << ck.vocab[i];
  }
  EXPECT_EQ(shared, r.shared_words);
  // Frozen: LayerNorms are the base's; adapted: qkv has moved by B·A (B left zero after 4 steps of
  // AdamW only if every gradient vanished).
  auto blk = [](Mfm& m) { return m->dec_blocks[0]->as<BlockImpl>(); };
  EXPECT_TRUE(torch::equal(blk(ck.model)->ln1->weight, blk(base)->ln1->weight));
  EXPECT_FALSE(torch::equal(blk(ck.model)->attn->qkv->weight, blk(base)->attn->qkv->weight));
}

TEST(Finetune, RejectsBadMethodRankAndQannBases) {
  test::TempDir dir;
  FinetuneOptions o;
  o.train.init = dir / "none.h5";
  o.train.out = dir / "out.h5";
  o.method = "partial";
  EXPECT_NE(test::error_of([&] { finetune_vqa(o); }).find("--method partial: unknown fine-tuning method (use full or lora)"),
            std::string::npos);
  o.method = "lora";
  o.rank = 0;
  EXPECT_NE(test::error_of([&] { finetune_vqa(o); }).find("rank must be >= 1"), std::string::npos);
  o.rank = 4;
  torch::manual_seed(4);
  MfmConfig q = tiny_base_config();
  q.qann = true;
  q.act_levels = 8;
  q.weight_bits = 8;
  Mfm qm(q);
  save_checkpoint(dir / "q.h5", qm, FashionVqa::make_tokenizer().vocab(), TrainMeta{});
  o.train.init = dir / "q.h5";
  EXPECT_NE(test::error_of([&] { finetune_vqa(o); }).find("the base is a QANN"), std::string::npos);
}
