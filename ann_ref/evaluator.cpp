#include "ann_ref/evaluator.h"

#include <chrono>

#include "ann_ref/ann_token_model.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "ann_ref/vqa_task.h"
#include "ann_ref/weight_transfer.h"
#include "common/log.h"
#include "common/error.h"
#include "datasets/fashion_mnist.h"
#include "decoding/token_model.h"

namespace spikefm {

EvalReport evaluate_fashion_vqa(const EvalOptions& o) {
  if (o.task != "fashion-vqa") throw Error("--task " + o.task, "unknown task", "use fashion-vqa");
  return evaluate_vqa(o);
}

EvalReport evaluate_vqa(const EvalOptions& o) {
  if (o.task != "fashion-vqa" && o.task != "med-vqa") {
    throw Error("--task " + o.task, "unknown task", "use fashion-vqa or med-vqa");
  }
  if (o.limit < 0) throw Error("--limit", "must be >= 0");
  Checkpoint ck = load_checkpoint(o.checkpoint);
  WordTokenizer tok(ck.vocab);
  std::unique_ptr<VqaTask> task = make_vqa_task(o.task, o.data_dir, static_cast<uint64_t>(ck.meta.seed));
  EvalReport r;
  MfmConfig want = ck.model->config();
  task->adapt_config(want);
  WordTokenizer task_tok = task->tokenizer();
  if (want.image_size != ck.model->config().image_size || ck.vocab != task_tok.vocab()) {
    // Zero-shot: a model of another task, moved onto this one's image geometry and vocabulary exactly
    // as fine-tuning starts (weight_transfer.h), with no training; new words keep a fixed-seed init.
    want.vocab_size = task_tok.size();
    torch::manual_seed(0);
    Mfm adapted(want);
    TransferReport tr = transfer_weights(adapted, task_tok.vocab(), ck.model, ck.vocab);
    log::info("zero-shot: " + o.checkpoint.string() + " (trained on " + ck.meta.task + ") adapted to " + o.task + ": " +
              std::to_string(tr.resized) + " tensors resized, " + std::to_string(tr.shared_words) + " of " +
              std::to_string(task_tok.size()) + " words known, no training");
    ck.model = adapted;
    tok = task_tok;
    r.zero_shot = true;
  }
  const auto t0 = std::chrono::steady_clock::now();
  VqaScore s = score_vqa(ck.model, tok, *task, o.split, o.limit, o.batch_images, o.progress ? "eval" : "",
                         o.keep_questions ? &r.questions : nullptr);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.task = o.task;
  r.split = o.split;
  r.model = ck.model->config().size_name;
  r.n = s.n;
  r.correct = s.correct;
  r.accuracy = s.accuracy();
  r.type_names = task->type_names();
  for (int q = 0; q < task->num_types(); ++q) {
    r.type_n.push_back(s.n_type[q]);
    r.type_accuracy.push_back(s.type_accuracy(q));
    if (q < 4 && o.task == "fashion-vqa") {
      r.n_by_type[q] = s.n_type[q];
      r.accuracy_by_type[q] = s.type_accuracy(q);
    }
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
