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

VqaScore score_vqa(Mfm& model, const WordTokenizer& tok, const VqaTask& task, const std::string& split, int64_t limit,
                   int batch_images, const std::string& progress_label, std::vector<QuestionResult>* questions) {
  torch::NoGradGuard no_grad;
  model->eval();
  const ImageSet& set = task.images(split);
  std::vector<TaskSample> all = task.samples(split);
  const int64_t total = limit > 0 ? std::min<int64_t>(limit, static_cast<int64_t>(all.size()))
                                  : static_cast<int64_t>(all.size());
  all.resize(static_cast<size_t>(total));
  const int64_t n_images = total > 0 ? all.back().image + 1 : 0;
  const int T = task.num_types();
  std::vector<std::vector<int>> prompts(T);
  for (int q = 0; q < T; ++q) prompts[q] = prompt_tokens(tok, task.paraphrases(q)[0]);
  VqaScore score;
  score.n_type.assign(T, 0);
  score.correct_type.assign(T, 0);
  std::optional<Progress> progress;
  if (!progress_label.empty()) progress.emplace(progress_label, total, "questions");
  size_t next = 0;  // first sample of the current batch in `all`
  for (int64_t i0 = 0; i0 < n_images; i0 += batch_images) {
    const int64_t i1 = std::min(n_images, i0 + batch_images);
    // The samples of images i0..i1-1 that are within the limit, by type: rows of the batch.
    std::vector<std::vector<int64_t>> rows(T);
    for (; next < all.size() && all[next].image < i1; ++next) rows[all[next].type].push_back(all[next].image - i0);
    std::vector<int64_t> idx;
    for (int64_t i = i0; i < i1; ++i) idx.push_back(i);
    KVCache primed;
    model->prime(model->image_prefix(image_batch(set, idx)), primed);
    for (int q = 0; q < T; ++q) {
      if (rows[q].empty()) continue;
      const bool whole = static_cast<int64_t>(rows[q].size()) == i1 - i0;  // every image asked: no gather
      KVCache sub = primed;
      if (!whole) {
        torch::Tensor r = torch::tensor(rows[q], torch::kInt64);
        for (auto& k : sub.k) k = k.index_select(0, r);  // (rows, H, P, d)
        for (auto& v : sub.v) v = v.index_select(0, r);
      }
      auto answers = greedy_answers(model, sub, prompts[q], 6);
      for (size_t j = 0; j < rows[q].size(); ++j) {
        const int64_t i = i0 + rows[q][j];
        const std::string got = tok.decode(answers[j]), want = task.answer(split, i, q);
        const bool ok = got == want;
        if (questions) questions->push_back({i, task.type_names()[q], task.paraphrases(q)[0], want, got});
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

VqaScore score_fashion_vqa(Mfm& model, const WordTokenizer& tok, const FashionVqa& data, const std::string& split,
                           int64_t limit, int batch_images, const std::string& progress_label) {
  return score_vqa(model, tok, *fashion_vqa_task(data), split, limit, batch_images, progress_label);
}

}  // namespace spikefm
