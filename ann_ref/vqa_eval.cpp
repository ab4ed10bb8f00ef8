#include "ann_ref/vqa_eval.h"

#include <algorithm>
#include <optional>

#include "ann_ref/vqa_batch.h"
#include "common/progress.h"

namespace spikefm {

std::vector<std::vector<int>> greedy_answers(Mfm& model, KVCache& primed, const std::vector<int>& prompt,
                                             int max_new) {
  const int64_t B = primed.k.empty() ? 0 : primed.k[0].size(0);
  KVCache cache = primed;  // shares the primed tensors; appends make new ones
  torch::Tensor p = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), torch::kInt64);
  torch::Tensor tokens = p.unsqueeze(0).expand({B, p.size(0)}).contiguous();  // (B, Lp)
  torch::Tensor logits = model->decode({}, tokens, &cache).select(1, tokens.size(1) - 1);  // (B, V)
  std::vector<std::vector<int>> out(B);
  std::vector<bool> done(B, false);
  int64_t remaining = B;
  for (int step = 0; step < max_new && remaining > 0; ++step) {
    torch::Tensor next = logits.argmax(-1);  // (B,)
    auto acc = next.accessor<int64_t, 1>();
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      if (acc[b] == WordTokenizer::kEos) {
        done[b] = true;
        --remaining;
      } else {
        out[b].push_back(static_cast<int>(acc[b]));
      }
    }
    const int64_t text_len = cache.len - model->config().num_patches();
    if (step + 1 < max_new && remaining > 0 && text_len < model->config().max_text_len) {
      logits = model->decode({}, next.view({B, 1}), &cache).select(1, 0);
    } else {
      break;
    }
  }
  return out;
}

VqaScore score_fashion_vqa(Mfm& model, const WordTokenizer& tok, const FashionVqa& data, const std::string& split,
                           int64_t limit, int batch_images, const std::string& progress_label) {
  torch::NoGradGuard no_grad;
  model->eval();
  const ImageSet& set = data.images(split);
  const int64_t total = limit > 0 ? std::min<int64_t>(limit, set.n * kQuestionTypes) : set.n * kQuestionTypes;
  const int64_t n_images = (total + kQuestionTypes - 1) / kQuestionTypes;
  std::array<std::vector<int>, kQuestionTypes> prompts;
  for (int q = 0; q < kQuestionTypes; ++q) {
    prompts[q] = prompt_tokens(tok, fashion_vqa_questions(static_cast<QuestionType>(q))[0]);
  }
  VqaScore score;
  std::optional<Progress> progress;
  if (!progress_label.empty()) progress.emplace(progress_label, total, "questions");
  for (int64_t i0 = 0; i0 < n_images; i0 += batch_images) {
    const int64_t i1 = std::min(n_images, i0 + batch_images);
    std::vector<int64_t> idx;
    for (int64_t i = i0; i < i1; ++i) idx.push_back(i);
    KVCache primed;
    model->prime(model->image_prefix(image_batch(set, idx)), primed);
    for (int q = 0; q < kQuestionTypes; ++q) {
      auto answers = greedy_answers(model, primed, prompts[q], 6);
      for (int64_t i = i0; i < i1; ++i) {
        if (i * kQuestionTypes + q >= total) continue;
        std::string want = fashion_vqa_answer(set.labels[i], static_cast<QuestionType>(q));
        bool ok = tok.decode(answers[i - i0]) == want;
        score.n++;
        score.n_type[q]++;
        score.correct += ok;
        score.correct_type[q] += ok;
      }
    }
    if (progress) progress->update(score.n, "accuracy " + std::to_string(score.accuracy()).substr(0, 6));
  }
  if (progress) progress->finish();
  return score;
}

}  // namespace spikefm
