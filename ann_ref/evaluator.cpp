#include "ann_ref/evaluator.h"

#include <chrono>

#include "ann_ref/ann_token_model.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "common/error.h"
#include "datasets/fashion_mnist.h"
#include "decoding/token_model.h"

namespace spikefm {

EvalReport evaluate_fashion_vqa(const EvalOptions& o) {
  if (o.task != "fashion-vqa") throw Error("--task " + o.task, "unknown task", "use fashion-vqa");
  if (o.limit < 0) throw Error("--limit", "must be >= 0");
  Checkpoint ck = load_checkpoint(o.checkpoint);
  WordTokenizer tok(ck.vocab);
  FashionVqa data(o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir,
                  static_cast<uint64_t>(ck.meta.seed));
  const auto t0 = std::chrono::steady_clock::now();
  VqaScore s = score_fashion_vqa(ck.model, tok, data, o.split, o.limit, o.batch_images, o.progress ? "eval" : "");
  EvalReport r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.task = o.task;
  r.split = o.split;
  r.model = ck.model->config().size_name;
  r.n = s.n;
  r.correct = s.correct;
  r.accuracy = s.accuracy();
  for (int q = 0; q < kQuestionTypes; ++q) {
    r.n_by_type[q] = s.n_type[q];
    r.accuracy_by_type[q] = s.n_type[q] ? static_cast<double>(s.correct_type[q]) / s.n_type[q] : 0.0;
  }
  r.parameters = ck.model->parameter_count();
  return r;
}

GenerateResult generate_fashion_vqa(const std::filesystem::path& checkpoint, const std::filesystem::path& data_dir,
                                    const std::string& split, int64_t index, const std::string& question) {
  AnnTokenModel model(checkpoint);
  const WordTokenizer& tok = model.tokenizer();
  FashionVqa data(data_dir.empty() ? default_fashion_mnist_dir() : data_dir, model.train_seed());
  const ImageSet& set = data.images(split);
  if (index < 0 || index >= set.n) {
    throw Error("--index " + std::to_string(index), "out of range for split '" + split + "'",
                "use 0.." + std::to_string(set.n - 1));
  }
  torch::Tensor img = image_batch(set, {index});
  std::span<const float> pixels(img.data_ptr<float>(), static_cast<size_t>(img.numel()));
  GenerateResult r;
  r.question = question;
  r.label = set.labels[index];
  std::vector<int> ids = decoding::greedy_decode(model, pixels, prompt_tokens(tok, question), WordTokenizer::kEos, 6);
  r.answer = tok.decode(ids);
  if (auto type = fashion_vqa_question_type(question)) r.expected = fashion_vqa_answer(r.label, *type);
  return r;
}

}  // namespace spikefm
