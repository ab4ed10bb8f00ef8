// Calibration statistics (ann_ref/calibration.h) against independent closed forms.
#include <gtest/gtest.h>

#include "ann_ref/calibration.h"
#include "ann_ref/vqa_batch.h"
#include "tests/ann_ref/tiny_model.h"

using namespace spikefm;

TEST(Calibration, FisherOfTheLmHeadBiasEqualsTheSoftmaxResidualClosedForm) {
  // For logits z = W h + b, the gradient of one token's cross-entropy with respect to b is
  // softmax(z) − onehot(target). The gradient of a row's mean loss is the mean of that over its scored
  // tokens, so with chunk = 1 the Fisher diagonal of b is the mean over rows of that vector squared —
  // computed here from the forward logits alone, without autograd.
  Mfm m = test::tiny_model(5);
  torch::manual_seed(6);
  const int64_t N = 6, T = 7, V = m->config().vocab_size;
  CalibBatch b;
  b.images = torch::rand({N, 28, 28});
  b.inputs = torch::randint(5, V, {N, T}, torch::kInt64);
  b.targets = torch::randint(5, V, {N, T}, torch::kInt64);
  b.targets.narrow(1, 0, 3).fill_(kIgnoreTarget);  // the question part is not scored
  b.targets[2][5] = kIgnoreTarget;                  // rows with different numbers of scored tokens

  const std::vector<torch::Tensor> f = fisher_diagonal(m, b, {m->lm_head->bias}, 1);
  ASSERT_EQ(f.size(), 1u);

  torch::Tensor want = torch::zeros({V}, torch::kFloat64);
  {
    torch::NoGradGuard ng;
    torch::Tensor logits = m->forward(b.images, b.inputs).to(torch::kFloat64);  // (N, T, V)
    for (int64_t r = 0; r < N; ++r) {
      torch::Tensor g = torch::zeros({V}, torch::kFloat64);
      int64_t n = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t y = b.targets[r][t].item<int64_t>();
        if (y == kIgnoreTarget) continue;
        torch::Tensor resid = torch::softmax(logits[r][t], 0);
        resid[y] -= 1.0;
        g += resid;
        ++n;
      }
      want += (g / static_cast<double>(n)).pow(2);
    }
    want /= static_cast<double>(N);
  }
  const double scale = want.abs().max().item<double>();
  EXPECT_LT((f[0] - want).abs().max().item<double>() / scale, 1e-4);  // float32 forward vs float64 here
}
