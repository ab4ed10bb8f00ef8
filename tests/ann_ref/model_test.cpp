#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "ann_ref/checkpoint.h"
#include "ann_ref/mfm.h"
#include "common/error.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

TEST(Patchify, OverlappingStrideGivesTheRightPatchCountAndPixels) {
  MfmConfig c = test::tiny_config();  // 28x28, patch 8, stride 4
  EXPECT_EQ(c.num_patches(), 36);
  c.patch = 7;
  c.stride = 7;
  EXPECT_EQ(c.num_patches(), 16);
  c.patch = 7;
  c.stride = 3;
  EXPECT_EQ(c.num_patches(), 64);

  Mfm m = test::tiny_model(1);
  torch::Tensor img = torch::rand({2, 28, 28});
  torch::Tensor p = m->patchify(img);  // (2, 36, 64)
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2, 36, 64}));
  // Independent extraction: patch (r, c) starts at pixel (4r, 4c), row-major inside the patch.
  auto a = img.accessor<float, 3>();
  auto pa = p.accessor<float, 3>();
  for (int b = 0; b < 2; ++b)
    for (int r = 0; r < 6; ++r)
      for (int cc = 0; cc < 6; ++cc)
        for (int i = 0; i < 8; ++i)
          for (int j = 0; j < 8; ++j) ASSERT_EQ(pa[b][r * 6 + cc][i * 8 + j], a[b][4 * r + i][4 * cc + j]);
}

TEST(ModelConfig, RejectsStrideThatDropsPixelsAndNamesTheField) {
  MfmConfig c = test::tiny_config();
  c.patch = 8;
  c.stride = 3;  // (28 - 8) % 3 != 0
  try {
    c.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stride"), std::string::npos) << e.what();
  }
}

TEST(Qcfs, QuantizedOutputMatchesTheFormulaOnRandomInputs) {
  const int L = 8;
  Qcfs act(L, 2.5f);
  torch::Tensor z = torch::randn({4096}) * 3.0;
  torch::NoGradGuard ng;
  torch::Tensor a = act->forward(z);
  const double theta = 2.5 / L;
  auto za = z.accessor<float, 1>();
  auto aa = a.accessor<float, 1>();
  for (int i = 0; i < 4096; ++i) {
    double n = std::floor(za[i] / theta + 0.5);
    n = std::min<double>(L, std::max(0.0, n));
    ASSERT_NEAR(aa[i], n * theta, 1e-6) << "z = " << za[i];
    // the output is an integer number of steps θ
    ASSERT_NEAR(aa[i] / theta, std::round(aa[i] / theta), 1e-4);
  }
}

TEST(Qcfs, StraightThroughGradientReachesInputAndLambda) {
  Qcfs act(4, 1.0f);
  torch::Tensor z = torch::tensor({-0.5f, 0.3f, 0.6f, 2.0f}).requires_grad_(true);
  act->forward(z).sum().backward();
  // identity gradient inside (0, λ), zero outside
  auto g = z.grad();
  EXPECT_FLOAT_EQ(g[0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(g[1].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(g[2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(g[3].item<float>(), 0.0f);
  // dλ: θ = λ/4 = 0.25; z = 0.3: y = 1.2, n = 1 → (n − y)/L = −0.05; z = 0.6: y = 2.4, n = 2 → −0.1;
  // z = 2.0 is clipped at λ → 1; z = −0.5 is clipped at 0 → 0. Sum 0.85.
  EXPECT_NEAR(act->lambda.grad().item<float>(), 0.85f, 1e-6f);
}

TEST(Qcfs, SignedQuantizerIsSymmetricAndBounded) {
  Qcfs act(4, 2.0f, /*is_signed=*/true);  // θ = 0.5, counts in [-4, 4]
  torch::NoGradGuard ng;
  torch::Tensor z = torch::tensor({-9.0f, -1.3f, -0.2f, 0.2f, 0.74f, 0.76f, 9.0f});
  torch::Tensor n = act->counts(z);
  std::vector<float> want = {-4, -3, 0, 0, 1, 2, 4};  // floor(z/0.5 + 1/2), clipped to [-4, 4]
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(n[i].item<float>(), want[i]) << "z = " << z[i].item<float>();
  EXPECT_TRUE(torch::equal(act->forward(z), n * 0.5f));
}

TEST(Qcfs, ObserverSeesInputAndOutputAndSetLevelsKeepsLambda) {
  // The observer is how `compress --act-spikes` sees a quantizer's inputs; at any L the output it
  // hands over is θ·clip(floor(z/θ + 1/2), ±L), θ = λ/L, recomputed here in float64 from the formula.
  Qcfs act(8, 2.0f, /*is_signed=*/true);
  torch::manual_seed(5);
  torch::Tensor z = torch::randn({3, 700}) * 1.5;
  for (bool grad : {false, true}) {
    torch::AutoGradMode mode(grad);
    for (int L : {8, 3}) {
      act->set_levels(L);
      torch::Tensor seen_z, seen_a;
      act->observer = [&](const torch::Tensor& zi, const torch::Tensor& ai) {
        seen_z = zi;
        seen_a = ai;
      };
      torch::Tensor out = act->forward(z);
      act->observer = nullptr;
      ASSERT_TRUE(seen_z.defined() && seen_a.defined());
      EXPECT_TRUE(torch::equal(seen_z, z));
      EXPECT_TRUE(torch::equal(seen_a, out));
      EXPECT_EQ(seen_a.requires_grad(), grad);  // in grad mode, the graph node itself
      const double theta = 2.0 / L;
      const torch::Tensor want = torch::clamp(torch::floor(z.to(torch::kFloat64) / theta + 0.5), -L, L) * theta;
      EXPECT_LT((seen_a.detach().to(torch::kFloat64) - want).abs().max().item<double>(), 1e-6) << "L = " << L;
      EXPECT_FLOAT_EQ(act->lambda.item<float>(), 2.0f);
      EXPECT_FLOAT_EQ(act->theta(), static_cast<float>(theta));
    }
  }
  EXPECT_THROW(act->set_levels(0), Error);  // a signed quantizer needs L >= 1
  EXPECT_THROW(act->set_levels(256), Error);
}

TEST(SiteLevels, EachQuantizerTakesItsOwnLevelsAndTheCheckpointKeepsThem) {
  MfmConfig c = test::tiny_config(4);
  c.qann = true;
  c.weight_bits = 8;
  torch::manual_seed(3);
  Mfm m(c);
  m->eval();
  const auto sites = m->named_quantizers();
  ASSERT_EQ(sites.size(), m->quantizers().size());
  std::map<std::string, int> levels;
  std::mt19937 rng(9);
  for (const auto& [name, q] : sites) levels[name] = 1 + static_cast<int>(rng() % 12);
  m->set_site_levels(levels);
  for (const auto& [name, q] : m->named_quantizers()) EXPECT_EQ(q->levels(), levels[name]) << name;
  EXPECT_EQ(m->config().max_levels(), std::max(4, std::max_element(levels.begin(), levels.end(), [](auto& a, auto& b) {
                                                   return a.second < b.second;
                                                 })->second));
  torch::Tensor img = torch::rand({2, 28, 28});
  torch::Tensor tokens = torch::randint(5, c.vocab_size, {2, 6});
  torch::NoGradGuard ng;
  const torch::Tensor mixed = m->forward(img, tokens);

  test::TempDir d;
  save_checkpoint(d / "m.h5", m, FashionVqa::make_tokenizer().vocab(), TrainMeta{});
  Checkpoint back = load_checkpoint(d / "m.h5");
  for (const auto& [name, q] : back.model->named_quantizers()) EXPECT_EQ(q->levels(), levels[name]) << name;
  back.model->eval();
  EXPECT_TRUE(torch::equal(back.model->forward(img, tokens), mixed));

  // all back at act_levels: the record empties and the model computes what a uniform model does
  for (auto& [name, L] : levels) L = 4;
  m->set_site_levels(levels);
  EXPECT_TRUE(m->config().site_levels.empty());
  const torch::Tensor uniform = m->forward(img, tokens);
  EXPECT_FALSE(torch::equal(uniform, mixed));  // the levels were really in effect
  EXPECT_THROW(m->set_site_levels({{"dec_blocks.0.mlp.fc1", 3}}), Error);  // a linear layer, not a quantizer
  EXPECT_THROW(m->set_site_levels({{"dec_blocks.0.mlp.act", 0}}), Error);
}

TEST(KvCache, IncrementalDecodingMatchesFullRecomputation) {
  for (int levels : {0, 8}) {
    Mfm m = test::tiny_model(7 + levels, levels);
    torch::NoGradGuard ng;
    const int64_t B = 3, T = 9;
    torch::Tensor img = torch::rand({B, 28, 28});
    torch::Tensor tok = torch::randint(5, m->config().vocab_size, {B, T}, torch::kInt64);
    torch::Tensor prefix = m->image_prefix(img);
    torch::Tensor full = m->decode(prefix, tok);  // (B, T, V)
    KVCache cache;
    m->prime(prefix, cache);
    // prompt of 4 tokens at once, then one token at a time
    torch::Tensor inc = m->decode({}, tok.narrow(1, 0, 4), &cache);
    std::vector<torch::Tensor> parts{inc};
    for (int64_t t = 4; t < T; ++t) parts.push_back(m->decode({}, tok.narrow(1, t, 1), &cache));
    torch::Tensor got = torch::cat(parts, 1);
    double nmse = ((got - full).pow(2).sum() / full.pow(2).sum()).item<double>();
    // float32 with different summation order only: NMSE ~ 1e-14; 1e-10 leaves room, catches any real bug
    EXPECT_LT(nmse, 1e-10) << "levels " << levels;
    EXPECT_EQ(cache.len, m->config().num_patches() + T);

    // rollback: truncate the last 3 tokens and re-feed them: same logits again
    cache.truncate(cache.len - 3);
    torch::Tensor again = m->decode({}, tok.narrow(1, T - 3, 3), &cache);
    double nmse2 = ((again - full.narrow(1, T - 3, 3)).pow(2).sum() / full.pow(2).sum()).item<double>();
    EXPECT_LT(nmse2, 1e-10);
  }
}

TEST(KvCache, PrefixTokensNeverSeeTheFuture) {
  // Changing a later text token must not change logits at earlier positions (causality).
  Mfm m = test::tiny_model(3);
  torch::NoGradGuard ng;
  torch::Tensor img = torch::rand({1, 28, 28});
  torch::Tensor a = torch::randint(5, m->config().vocab_size, {1, 6}, torch::kInt64);
  torch::Tensor b = a.clone();
  b[0][5] = (a[0][5].item<int64_t>() + 1 - 5) % (m->config().vocab_size - 5) + 5;
  torch::Tensor la = m->forward(img, a), lb = m->forward(img, b);
  EXPECT_TRUE(torch::equal(la.narrow(1, 0, 5), lb.narrow(1, 0, 5)));
  EXPECT_FALSE(torch::equal(la.narrow(1, 5, 1), lb.narrow(1, 5, 1)));
}

// The QAT hook of compress --qat-epochs: the forward pass uses the hook's quantized weight, and the
// gradient reaches the float weight as if the quantizer were the identity (straight-through).
TEST(QLinear, WeightQuantHookUsesTheQuantizedWeightWithAStraightThroughGradient) {
  torch::manual_seed(3);
  QLinear lin(5, 4, 0);
  lin->weight_quant = [](const torch::Tensor& w) { return torch::round(w * 4) / 4; };
  torch::Tensor x = torch::randn({3, 5});
  torch::Tensor y = lin->forward(x);
  torch::Tensor wq = torch::round(lin->weight.detach() * 4) / 4;
  ASSERT_FALSE(torch::equal(wq, lin->weight.detach()));  // the hook really changes the weights
  EXPECT_TRUE(torch::allclose(y, torch::nn::functional::linear(x, wq, lin->bias.detach())));
  y.sum().backward();
  // d(sum y)/dW[o, i] = sum_n x[n, i] for every output row o
  EXPECT_TRUE(torch::allclose(lin->weight.grad(), x.sum(0).unsqueeze(0).expand({4, 5})));
}
