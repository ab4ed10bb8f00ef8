// Activation-level allocation (ann_ref/level_allocation.h) on a tiny random QANN and real Fashion-VQA
// calibration images: its spike accounting against first principles and its own whole-model
// measurement, the budget, the written checkpoint, and the errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "ann_ref/calibration.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/level_allocation.h"
#include "ann_ref/vqa_batch.h"
#include "common/error.h"
#include "datasets/fashion_mnist.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {

bool have_data() { return std::filesystem::exists(default_fashion_mnist_dir()); }

// A random tiny QANN at L = 4, clip values spread so the quantizers neither saturate nor round all to 0.
void write_random_qann(const std::filesystem::path& path, bool qann = true) {
  MfmConfig c = test::tiny_config(4);
  c.qann = qann;
  c.weight_bits = qann ? 8 : 0;
  torch::manual_seed(17);
  Mfm m(c);
  torch::NoGradGuard ng;
  std::mt19937 rng(17);
  for (auto& q : m->quantizers()) q->lambda.fill_(std::uniform_real_distribution<float>(0.8f, 2.5f)(rng));
  TrainMeta meta;
  meta.seed = 3;
  save_checkpoint(path, m, FashionVqa::make_tokenizer().vocab(), meta);
}

LevelAllocOptions small_run(const std::filesystem::path& ck) {
  LevelAllocOptions o;
  o.checkpoint = ck;
  o.levels = {1, 2, 6};
  o.calib_images = 8;
  o.limit = 24;
  o.progress = false;
  return o;
}

}  // namespace

TEST(LevelAllocation, SpikeEstimatesAreConsistentAndTheBudgetHolds) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  test::TempDir d;
  write_random_qann(d / "q.h5");
  LevelAllocOptions o = small_run(d / "q.h5");
  o.spike_budget = 0.5;
  o.out = d / "q_lv.h5";
  const LevelAllocReport r = allocate_levels(o);

  ASSERT_FALSE(r.sites.empty());
  double trained_sum = 0, chosen_sum = 0;
  for (const SiteAllocation& s : r.sites) {
    ASSERT_EQ(s.trained_levels, 4) << s.name;
    ASSERT_EQ(s.options.size(), 4u) << s.name;  // {1, 2, 6} and the trained 4, ascending
    for (size_t k = 0; k < s.options.size(); ++k) {
      // A site's input does not depend on its own L, and |clip(floor(z·L/λ + 1/2), ±L)| never falls as
      // L grows: its spikes are non-decreasing in L.
      if (k > 0) {
        EXPECT_LT(s.options[k - 1].levels, s.options[k].levels) << s.name;
        EXPECT_LE(s.options[k - 1].spikes, s.options[k].spikes) << s.name;
      }
      EXPECT_GE(s.options[k].fisher, 0.0) << s.name;
      if (s.options[k].levels == 4) {
        trained_sum += s.options[k].spikes;
        EXPECT_EQ(s.options[k].fisher, 0.0) << s.name;  // the trained model itself
      }
    }
    ASSERT_GE(s.chosen, 0);
    chosen_sum += s.options[s.chosen].spikes;
  }
  EXPECT_NEAR(r.spikes_trained, trained_sum, 1e-9 * trained_sum);
  EXPECT_NEAR(r.budget, 0.5 * trained_sum, 1e-9 * trained_sum);
  // the knapsack counts whole spikes: each site's estimate rounds by at most 1/2
  EXPECT_LE(chosen_sum, r.budget + 0.5 * static_cast<double>(r.sites.size()));
  EXPECT_NEAR(r.spikes_estimate, chosen_sum, 1e-9 * chosen_sum);

  // The trained variant is measured with every site at once; each per-site estimate saw the others at
  // their trained L too, so the totals agree.
  ASSERT_GE(r.variants.size(), 2u);
  EXPECT_EQ(r.variants[0].name, "trained");
  EXPECT_NEAR(r.variants[0].spikes, trained_sum, 1e-9 * trained_sum);
  EXPECT_LT(r.variants[1].spikes, r.variants[0].spikes);  // half the budget: fewer spikes, measured
  EXPECT_GE(r.eval_n, 24);

  // the written checkpoint carries the chosen levels
  Checkpoint back = load_checkpoint(o.out);
  for (const auto& [name, q] : back.model->named_quantizers()) {
    const SiteAllocation* s = nullptr;
    for (const auto& x : r.sites) s = x.name == name ? &x : s;
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(q->levels(), s->options[s->chosen].levels) << name;
  }
}

TEST(LevelAllocation, FisherErrorOfTheLastQuantizerMatchesTheClosedForm) {
  // q_dec quantizes the decoder's last LayerNorm output, which feeds only the LM head: the gradient of
  // the summed token losses with respect to its output a is (softmax(logits) − onehot(target)) · W for
  // every scored token (W the int8-dequantized head weight), 0 elsewhere — no autograd needed. With z
  // seen through the quantizer's observer, ½ Σ g² (a_L(z) − a_4(z))² per scored token must equal
  // what the allocation reports for that site.
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  test::TempDir d;
  write_random_qann(d / "q.h5");
  const LevelAllocOptions o = small_run(d / "q.h5");
  const LevelAllocReport r = allocate_levels(o);
  const SiteAllocation* site = nullptr;
  for (const auto& s : r.sites) site = s.name == "q_dec" ? &s : site;
  ASSERT_NE(site, nullptr);

  Checkpoint ck = load_checkpoint(d / "q.h5");
  Mfm& m = ck.model;
  m->eval();
  WordTokenizer tok(ck.vocab);
  FashionVqa data(default_fashion_mnist_dir(), 3);
  const CalibBatch b = calib_batch(data, tok, o.calib_images);
  torch::Tensor z;
  m->q_dec->observer = [&](const torch::Tensor& in, const torch::Tensor&) { z = in.detach().clone(); };
  torch::NoGradGuard ng;
  const torch::Tensor logits = m->forward(b.images, b.inputs).to(torch::kFloat64);  // (N, T, V)
  m->q_dec->observer = nullptr;
  const torch::Tensor scored = (b.targets != kIgnoreTarget);
  torch::Tensor resid = torch::softmax(logits, -1);
  resid -= torch::one_hot(b.targets.clamp_min(0), logits.size(-1)).to(torch::kFloat64);
  resid *= scored.unsqueeze(-1).to(torch::kFloat64);
  auto [q, s] = quantize_weight_int8(m->lm_head->weight);
  const torch::Tensor w = (q * s.unsqueeze(1)).to(torch::kFloat64);  // (V, C)
  const torch::Tensor g2 = resid.matmul(w).square();                // (N, T, C)
  const double tokens = scored.sum().item<double>();
  auto output_at = [&](int L) {
    m->q_dec->set_levels(L);
    torch::Tensor a = (m->q_dec->counts(z) * m->q_dec->theta()).to(torch::kFloat64);
    m->q_dec->set_levels(4);
    return a;
  };
  const torch::Tensor a4 = output_at(4);
  int nonzero = 0;
  for (const SiteLevelOption& op : site->options) {
    const double want = 0.5 * (g2 * (output_at(op.levels) - a4).square()).sum().item<double>() / tokens;
    EXPECT_NEAR(op.fisher, want, 1e-4 * want + 1e-12) << "L = " << op.levels;
    nonzero += want > 0;
  }
  EXPECT_GE(nonzero, 3);  // every L but the trained one moves the output
}

TEST(LevelAllocation, AFullBudgetNeverLosesAndImpossibleRequestsAreRefused) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  test::TempDir d;
  write_random_qann(d / "q.h5");
  LevelAllocOptions o = small_run(d / "q.h5");
  o.spike_budget = 1.0;  // the trained levels fit, at no estimated loss: nothing worse is chosen
  const LevelAllocReport r = allocate_levels(o);
  for (const SiteAllocation& s : r.sites) EXPECT_EQ(s.options[s.chosen].fisher, 0.0) << s.name;

  o.spike_budget = 1e-6;  // below every site at L = 1
  std::string msg = test::error_of([&] { allocate_levels(o); });
  EXPECT_NE(msg.find("--act-spikes"), std::string::npos) << msg;
  o.spike_budget = 0.5;
  o.levels = {0};
  msg = test::error_of([&] { allocate_levels(o); });
  EXPECT_NE(msg.find("--act-levels"), std::string::npos) << msg;

  write_random_qann(d / "f.h5", /*qann=*/false);
  o = small_run(d / "f.h5");
  msg = test::error_of([&] { allocate_levels(o); });
  EXPECT_NE(msg.find("--qann"), std::string::npos) << msg;
}
