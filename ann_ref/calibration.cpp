#include "ann_ref/calibration.h"

#include <algorithm>
#include <string>
#include <vector>

#include "ann_ref/vqa_batch.h"

namespace spikefm {

CalibBatch calib_batch(const FashionVqa& data, const WordTokenizer& tok, int64_t n_images) {
  const ImageSet& set = data.images("train");
  n_images = std::min<int64_t>(n_images, set.n);
  std::vector<int64_t> idx;
  std::vector<std::string> questions, answers;
  for (int64_t i = 0; i < n_images; ++i) {
    for (int q = 0; q < kQuestionTypes; ++q) {
      idx.push_back(i);
      questions.push_back(fashion_vqa_questions(static_cast<QuestionType>(q))[0]);
      answers.push_back(fashion_vqa_answer(set.labels[i], static_cast<QuestionType>(q)));
    }
  }
  TextBatch tb = text_batch(tok, questions, answers);
  return {image_batch(set, idx), tb.inputs, tb.targets};
}

double calib_loss(Mfm& model, const CalibBatch& b) {
  torch::NoGradGuard ng;
  double total = 0;
  int64_t count = 0;
  const int64_t N = b.images.size(0), chunk = 256;
  for (int64_t i = 0; i < N; i += chunk) {
    const int64_t len = std::min(chunk, N - i);
    torch::Tensor logits = model->forward(b.images.narrow(0, i, len), b.inputs.narrow(0, i, len));
    torch::Tensor t = b.targets.narrow(0, i, len).reshape({-1});
    torch::Tensor l = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), t,
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreTarget).reduction(torch::kSum));
    total += l.item<double>();
    count += (t != kIgnoreTarget).sum().item<int64_t>();
  }
  return total / std::max<int64_t>(1, count);
}

std::vector<torch::Tensor> fisher_diagonal(Mfm& model, const CalibBatch& b, const std::vector<torch::Tensor>& params,
                                           int64_t chunk) {
  std::vector<torch::Tensor> fisher;
  for (const torch::Tensor& p : params) fisher.push_back(torch::zeros(p.sizes(), torch::kFloat64));
  const int64_t N = b.images.size(0);
  int64_t chunks = 0;
  for (int64_t i = 0; i + chunk <= N; i += chunk) {  // full chunks only: every g_c has the same variance
    torch::Tensor logits = model->forward(b.images.narrow(0, i, chunk), b.inputs.narrow(0, i, chunk));
    torch::Tensor t = b.targets.narrow(0, i, chunk).reshape({-1});
    if ((t != kIgnoreTarget).sum().item<int64_t>() == 0) continue;
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), t,
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreTarget));
    std::vector<torch::Tensor> g = torch::autograd::grad({loss}, params);
    for (size_t k = 0; k < params.size(); ++k) fisher[k] += g[k].to(torch::kFloat64).pow(2);
    ++chunks;
  }
  for (torch::Tensor& f : fisher) f *= static_cast<double>(chunk) / static_cast<double>(std::max<int64_t>(1, chunks));
  return fisher;
}

}  // namespace spikefm
