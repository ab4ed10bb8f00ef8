#include "ann_ref/train_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <numeric>
#include <optional>
#include <random>

#include "ann_ref/checkpoint.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/log.h"
#include "common/progress.h"

namespace spikefm {

double LossLog::mean(const std::deque<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

void LossLog::add(double loss, int64_t step) {
  if (!std::isfinite(loss)) {
    throw Error("training", "the loss became " + std::to_string(loss) + " at step " + std::to_string(step),
                "lower --lr");
  }
  if (first_.size() < 20) first_.push_back(loss);
  recent_.push_back(loss);
  if (recent_.size() > 20) recent_.pop_front();
}

std::string LossLog::note(int epoch, double lr) const {
  char extra[96];
  std::snprintf(extra, sizeof extra, "epoch %d, loss %.4f, lr %.2e", epoch + 1, last(), lr);
  return extra;
}

int64_t samples_of_first_images(const VqaTask& task, const std::string& split, int64_t images) {
  const int64_t n = std::min(images, task.images(split).n);
  int64_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<int64_t>(task.types_of(split, i).size());
  return s;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(Mfm& model, double peak_lr, double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& item : model->named_parameters()) {
    const bool is_matrix = item.value().dim() == 2 && item.key().find("pos") == std::string::npos;
    (is_matrix ? decay : no_decay).push_back(item.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(peak_lr).weight_decay(weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(peak_lr).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(peak_lr));
}

double scheduled_lr(double peak_lr, int64_t step, int64_t warmup, int64_t total_steps, double elapsed_s,
                    double budget_s) {
  if (step < warmup) return peak_lr * static_cast<double>(step + 1) / warmup;
  const double frac = std::max(static_cast<double>(step) / total_steps, elapsed_s / budget_s);
  return peak_lr * (0.05 + 0.95 * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, frac))));
}

void validate_and_save(Mfm& model, const VqaTask& task, const WordTokenizer& tok, const TrainOptions& o,
                       TrainReport& rep, const QuantStore& quant) {
  if (o.val_images > 0) {
    VqaScore vs = score_vqa(model, tok, task, "val", samples_of_first_images(task, "val", o.val_images), 256,
                            o.progress ? "validate" : "");
    rep.val_accuracy = vs.accuracy();
  }
  TrainMeta meta;
  meta.task = o.task;
  meta.seed = static_cast<int64_t>(o.seed);
  meta.steps = rep.steps;
  meta.samples = rep.samples;
  meta.seconds = rep.seconds;
  meta.val_accuracy = rep.val_accuracy;
  save_checkpoint(o.out, model, tok.vocab(), meta, [&](H5File& f) {
    if (!quant.empty()) write_quant_store(f, quant);
  });
}

namespace {

std::string augmentation_note(const VqaTask& task, const TrainOptions& o) {
  std::string note;
  if (o.augment_shift > 0) note += ", shifts up to " + std::to_string(o.augment_shift) + " px";
  if (o.augment_flip) note += task.mirror_invariant() ? ", random mirroring" : ", no mirroring (answers depend on side)";
  return note;
}

}  // namespace

TrainReport run_train_loop(Mfm& model, const VqaTask& task, const WordTokenizer& tok, const TrainOptions& o,
                           double peak_lr, torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& clip) {
  const MfmConfig& cfg = model->config();
  const ImageSet& train = task.images("train");
  const int64_t n_images = o.limit_images > 0 ? std::min(o.limit_images, train.n) : train.n;
  if (n_images < 1) throw Error("training on " + task.name(), "the training split has no images");
  const int64_t steps_per_epoch = (n_images + o.batch_images - 1) / o.batch_images;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = std::min<int64_t>(100, total_steps / 10 + 1);
  const double budget_s = o.minutes * 60.0;
  std::vector<std::vector<int>> types(static_cast<size_t>(n_images));
  int64_t rows_per_epoch = 0;
  for (int64_t i = 0; i < n_images; ++i) {
    types[i] = task.types_of("train", i);
    rows_per_epoch += static_cast<int64_t>(types[i].size());
  }

  TrainReport rep;
  log::info("training " + cfg.size_name + " MFM on " + task.name() + " (" + std::to_string(cfg.num_patches()) +
            " image tokens, L=" + std::to_string(cfg.act_levels) + ") on " + std::to_string(n_images) + " images (" +
            std::to_string(rows_per_epoch) + " questions per epoch), up to " + std::to_string(o.epochs) +
            " epochs / " + std::to_string(o.minutes).substr(0, 5) + " min" + augmentation_note(task, o));

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(n_images);
  std::iota(order.begin(), order.end(), 0);
  LossLog losses;
  std::optional<Progress> progress;
  if (o.progress) {
    progress.emplace("train", total_steps, "steps");
    progress->set_time_budget(budget_s);
  }
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  for (int epoch = 0; epoch < o.epochs && !rep.stopped_by_time; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (elapsed >= budget_s) {
        rep.stopped_by_time = true;
        break;
      }
      const double lr = scheduled_lr(peak_lr, rep.steps, warmup, total_steps, elapsed, budget_s);
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

      std::vector<int64_t> idx(order.begin() + s * o.batch_images,
                               order.begin() + std::min(n_images, (s + 1) * o.batch_images));
      std::vector<std::string> questions, answers;
      std::vector<int64_t> row_image;
      for (size_t b = 0; b < idx.size(); ++b) {
        for (int q : types[idx[b]]) {
          const auto& para = task.paraphrases(q);
          questions.push_back(para[rng() % para.size()]);
          answers.push_back(task.answer("train", idx[b], q));
          row_image.push_back(static_cast<int64_t>(b));
        }
      }
      TextBatch tb = text_batch(tok, questions, answers);
      // The image prefix runs through the decoder once per image; its keys/values are shared by
      // the image's question rows (same math as the full sequence: the prefix never sees text).
      KVCache cache;
      torch::Tensor images = image_batch(train, idx);
      augment_images(images, rng, o.augment_shift, o.augment_flip && task.mirror_invariant());
      model->prime(model->image_prefix(images), cache);  // (B, H, P, d) per layer
      torch::Tensor rows = torch::tensor(row_image, torch::kInt64);
      for (auto& k : cache.k) k = k.index_select(0, rows);  // (rows, H, P, d)
      for (auto& v : cache.v) v = v.index_select(0, rows);
      torch::Tensor logits = model->decode({}, tb.inputs, &cache);  // (rows, T, V)
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, cfg.vocab_size}), tb.targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreTarget));
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(clip, 1.0);
      opt.step();

      losses.add(loss.item<double>(), rep.steps);
      rep.steps++;
      rep.samples += static_cast<int64_t>(questions.size());
      if (progress) progress->update(rep.steps, losses.note(epoch, lr));
    }
  }
  if (progress) progress->finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.samples_per_s = rep.seconds > 0 ? rep.samples / rep.seconds : 0;
  rep.first_loss = losses.first();
  rep.last_loss = losses.last();
  if (rep.stopped_by_time) log::info("stopped by the time budget after " + std::to_string(rep.steps) + " steps");
  return rep;
}

}  // namespace spikefm
