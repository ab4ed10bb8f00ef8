// Exact-match scoring of the MFM on a VQA task (vqa_task.h) with batched greedy generation and a KV
// cache. Internal to ann_ref (libtorch); the torch-free entry point is evaluator.h.
#pragma once

#include <string>
#include <vector>

#include "ann_ref/evaluator.h"
#include "ann_ref/mfm.h"
#include "ann_ref/vqa_task.h"
#include "datasets/fashion_vqa.h"

namespace spikefm {

struct VqaScore {
  int64_t n = 0, correct = 0;
  std::vector<int64_t> n_type, correct_type;  // (number of question types of the task,)
  double accuracy() const { return n ? static_cast<double>(correct) / n : 0.0; }
  double type_accuracy(int t) const { return n_type[t] ? static_cast<double>(correct_type[t]) / n_type[t] : 0.0; }
};

// Scores the first `limit` samples of `split` (0 = all) in the task's image-major order
// (VqaTask::samples), each asked with its canonical question. Shows progress when `progress_label`
// is non-empty. With `questions`, appends every scored question (in scoring order: per batch of
// images, by type).
VqaScore score_vqa(Mfm& model, const WordTokenizer& tok, const VqaTask& task, const std::string& split, int64_t limit,
                   int batch_images, const std::string& progress_label,
                   std::vector<QuestionResult>* questions = nullptr);

// Fashion-VQA: image i, question type q is sample 4i + q. Same as score_vqa on fashion_vqa_task(data).
VqaScore score_fashion_vqa(Mfm& model, const WordTokenizer& tok, const FashionVqa& data, const std::string& split,
                           int64_t limit, int batch_images, const std::string& progress_label);

// Greedy answers (token ids, <eos> excluded) for a batch of images asked the same prompt.
std::vector<std::vector<int>> greedy_answers(Mfm& model, KVCache& primed, const std::vector<int>& prompt,
                                             int max_new);

}  // namespace spikefm
