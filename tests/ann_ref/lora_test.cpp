// LoRA (lora.h): merge arithmetic, merged vs adapted forward, what gets gradients.
#include <gtest/gtest.h>

#include "ann_ref/lora.h"
#include "tests/ann_ref/tiny_model.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {

torch::Tensor logits_of(Mfm& m, const torch::Tensor& img, const torch::Tensor& tok) {
  torch::NoGradGuard ng;
  return m->forward(img, tok);
}

}  // namespace

TEST(Lora, AttachesToQkvProjFc1Fc2OfEveryBlockAndCountsRTimesInPlusOut) {
  Mfm m = test::tiny_model(3, 0);
  LoraAdapters lora(m, LoraParams{4, 8});
  const MfmConfig& c = m->config();
  ASSERT_EQ(lora.layers().size(), static_cast<size_t>(4 * (c.enc_layers + c.dec_layers)));
  EXPECT_EQ(lora.layers()[0].name, "enc_blocks.0.attn.qkv");
  EXPECT_EQ(lora.layers().back().name, "dec_blocks." + std::to_string(c.dec_layers - 1) + ".mlp.fc2");
  // Independent count from the config: per block qkv (C -> 3C), proj (C -> C), fc1 (C -> 4C), fc2 (4C -> C).
  auto per_block = [](int64_t C, int64_t r) { return r * ((C + 3 * C) + (C + C) + (C + 4 * C) + (4 * C + C)); };
  EXPECT_EQ(lora.parameter_count(), c.enc_layers * per_block(c.enc_width, 4) + c.dec_layers * per_block(c.dec_width, 4));
  EXPECT_DOUBLE_EQ(lora.scale(), 2.0);
}

TEST(Lora, StartsAsTheUnchangedModelAndOnlyAAndBGetGradients) {
  Mfm m = test::tiny_model(4, 0);
  torch::Tensor img = torch::rand({2, 28, 28});
  torch::Tensor tok = torch::randint(5, m->config().vocab_size, {2, 6}, torch::kInt64);
  torch::Tensor before = logits_of(m, img, tok);
  {
    LoraAdapters lora(m, LoraParams{4, 16});
    // B = 0, so the adapter adds exact zeros.
    EXPECT_TRUE(torch::equal(logits_of(m, img, tok), before));
    m->train();
    torch::Tensor out = m->forward(img, tok);
    (out * torch::randn_like(out)).sum().backward();
    for (const auto& p : m->named_parameters()) {
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
    for (const auto& L : lora.layers()) {
      ASSERT_TRUE(L.a.grad().defined()) << L.name;
      ASSERT_TRUE(L.b.grad().defined()) << L.name;
      // dL/dA = s Bᵀ (dL/dy)ᵀ x is zero while B = 0; dL/dB is not.
      EXPECT_EQ(L.a.grad().abs().max().item<float>(), 0.0f) << L.name;
      EXPECT_GT(L.b.grad().abs().max().item<float>(), 0.0f) << L.name;
    }
  }
  // Destroyed without merge: detached, the model is unchanged and trainable again.
  m->eval();
  EXPECT_TRUE(torch::equal(logits_of(m, img, tok), before));
  for (const auto& p : m->parameters()) EXPECT_TRUE(p.requires_grad());
}

// Merging must give exactly W + (alpha/r)·B·A. With W, A, B on dyadic grids (k/64, k/4, k/8, small k)
// every product and sum is exactly representable in float32, so the reference computed here in
// double by explicit loops must match bit for bit, whatever order the code sums in.
TEST(Lora, MergedWeightsAreExactlyWPlusScaledBA) {
  Mfm m = test::tiny_model(5, 0);
  LoraAdapters lora(m, LoraParams{4, 8});  // s = 2
  std::vector<torch::Tensor> expected;
  {
    torch::NoGradGuard ng;
    for (auto& L : lora.layers()) {
      L.linear->weight.copy_(torch::round(L.linear->weight * 64) / 64);
      L.a.copy_(torch::randint(-2, 3, L.a.sizes()).to(torch::kFloat32) / 4);
      L.b.copy_(torch::randint(-2, 3, L.b.sizes()).to(torch::kFloat32) / 8);
      torch::Tensor w64 = L.linear->weight.to(torch::kFloat64), a64 = L.a.to(torch::kFloat64),
                    b64 = L.b.to(torch::kFloat64);
      auto W = w64.accessor<double, 2>();
      auto A = a64.accessor<double, 2>();
      auto B = b64.accessor<double, 2>();
      const int64_t out = L.b.size(0), in = L.a.size(1), r = L.a.size(0);
      torch::Tensor ref = torch::empty({out, in}, torch::kFloat64);
      auto R = ref.accessor<double, 2>();
      for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < in; ++i) {
          double acc = 0;
          for (int64_t k = 0; k < r; ++k) acc += B[o][k] * A[k][i];
          R[o][i] = W[o][i] + 2.0 * acc;
        }
      }
      expected.push_back(ref.to(torch::kFloat32));
    }
  }
  lora.merge();
  for (size_t l = 0; l < expected.size(); ++l) {
    EXPECT_TRUE(torch::equal(lora.layers()[l].linear->weight, expected[l])) << lora.layers()[l].name;
    EXPECT_FALSE(lora.layers()[l].linear->adapter) << "still attached";
  }
}

// The merged model computes x (W + s·B·A)ᵀ where the adapted one computed x Wᵀ + s·(x Aᵀ) Bᵀ: the same
// real numbers summed in another order. float32 rounding (eps 6e-8 per operation, sums of <= 128
// terms, 3 blocks with LayerNorm) leaves differences of order 1e-6 relative; 1e-4 of the logit scale
// is far above that and far below any real change (B·A here moves the logits by ~0.1).
TEST(Lora, MergedModelLogitsEqualTheAdaptedForward) {
  Mfm m = test::tiny_model(6, 0);  // levels 0: plain clipped ReLU, no rounding step to flip
  torch::Tensor img = torch::rand({3, 28, 28});
  torch::Tensor tok = torch::randint(5, m->config().vocab_size, {3, 8}, torch::kInt64);
  torch::Tensor base = logits_of(m, img, tok);
  LoraAdapters lora(m, LoraParams{4, 8});
  {
    torch::NoGradGuard ng;
    for (auto& L : lora.layers()) L.b.normal_(0.0, 0.05);
  }
  torch::Tensor adapted = logits_of(m, img, tok);
  EXPECT_GT((adapted - base).abs().max().item<float>(), 1e-2f) << "the adapters should change the model";
  lora.merge();
  torch::Tensor merged = logits_of(m, img, tok);
  const float scale = adapted.abs().max().item<float>();
  EXPECT_LE((merged - adapted).abs().max().item<float>(), 1e-4f * scale);
}

TEST(Lora, RejectsBadRankAndAlphaAndQuantizedWeights) {
  Mfm m = test::tiny_model(7, 0);
  EXPECT_NE(test::error_of([&] { LoraAdapters l(m, LoraParams{0, 16}); }).find("rank must be >= 1 (got 0)"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { LoraAdapters l(m, LoraParams{33, 16}); }).find("rank must be <= min(in, out) = 32"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { LoraAdapters l(m, LoraParams{4, -1}); }).find("alpha must be finite and > 0"),
            std::string::npos);
  for (const auto& p : m->parameters()) EXPECT_TRUE(p.requires_grad()) << "a refused adapter must not freeze";
  MfmConfig q = test::tiny_config(8);
  q.qann = true;
  q.weight_bits = 8;
  Mfm qm(q);
  EXPECT_NE(test::error_of([&] { LoraAdapters l(qm, LoraParams{4, 16}); }).find("int8"), std::string::npos);
}
