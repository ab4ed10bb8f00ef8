#include "ann_ref/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <numeric>
#include <optional>
#include <random>

#include "ann_ref/checkpoint.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "common/error.h"
#include "common/log.h"
#include "common/progress.h"
#include "datasets/fashion_mnist.h"

namespace spikefm {

namespace {

double mean(const std::deque<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

void check_options(const TrainOptions& o) {
  if (o.task != "fashion-vqa") throw Error("--task " + o.task, "unknown task", "use fashion-vqa");
  if (o.out.empty()) throw Error("training", "no output path", "pass --out FILE.h5");
  if (o.epochs < 1) throw Error("--epochs", "must be >= 1 (got " + std::to_string(o.epochs) + ")");
  if (!(o.minutes > 0)) throw Error("--minutes", "must be > 0 (got " + std::to_string(o.minutes) + ")");
  if (o.batch_images < 1) throw Error("--batch", "must be >= 1");
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) throw Error("--lr", "must be finite and >= 0 (0 = the preset's)");
}

}  // namespace

TrainReport train_fashion_vqa(const TrainOptions& o) {
  check_options(o);
  if (o.threads > 0) torch::set_num_threads(o.threads);
  torch::manual_seed(o.seed);

  const std::filesystem::path dir = o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir;
  FashionVqa data(dir, o.seed);
  WordTokenizer tok = FashionVqa::make_tokenizer();
  const ImageSet& train = data.images("train");

  std::optional<Checkpoint> init;
  MfmConfig cfg = MfmConfig::preset(o.model);
  if (!o.init.empty()) {
    init = load_checkpoint(o.init);
    cfg = init->model->config();
    if (init->vocab != tok.vocab()) throw Error("--init " + o.init.string(), "its vocabulary differs from this task's");
  }
  cfg.vocab_size = tok.size();
  if (o.act_levels >= 0) cfg.act_levels = o.act_levels;
  if (o.qann) {
    cfg.qann = true;
    cfg.weight_bits = 8;
  }
  Mfm model(cfg);
  // The deeper large preset trains better at half the small model's LR (BENCHMARKS.md).
  const double peak_lr = o.lr > 0 ? o.lr : (cfg.size_name == "large" ? 1e-3 : 2e-3);
  if (init) {
    // Copy every parameter the initial model has; quantizers it lacks are calibrated below.
    torch::NoGradGuard ng;
    auto src = init->model->named_parameters();
    int copied = 0;
    for (auto& item : model->named_parameters()) {
      if (const torch::Tensor* t = src.find(item.key())) {
        item.value().copy_(*t);
        ++copied;
      }
    }
    log::info("initialised " + std::to_string(copied) + " of " + std::to_string(model->named_parameters().size()) +
              " tensors from " + o.init.string());
  }
  if (cfg.qann) {
    // Threshold balancing: each new quantizer's clip λ starts at the 99.9th percentile of what it sees.
    std::vector<Qcfs> fresh;
    auto src = init ? init->model->named_parameters() : torch::OrderedDict<std::string, torch::Tensor>();
    for (auto& q : model->quantizers()) {
      bool loaded = false;
      for (auto& item : model->named_parameters()) {
        if (item.value().is_same(q->lambda)) loaded = src.find(item.key()) != nullptr;
      }
      if (!loaded) fresh.push_back(q);
    }
    for (auto& q : fresh) q->start_calibration();
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < std::min<int64_t>(256, train.n); ++i) idx.push_back(i);
    std::vector<std::string> qs, as;
    std::vector<int64_t> rows;
    for (size_t b = 0; b < idx.size(); ++b) {
      for (int q = 0; q < kQuestionTypes; ++q) {
        qs.push_back(fashion_vqa_questions(static_cast<QuestionType>(q))[0]);
        as.push_back(fashion_vqa_answer(train.labels[idx[b]], static_cast<QuestionType>(q)));
        rows.push_back(static_cast<int64_t>(b));
      }
    }
    {
      torch::NoGradGuard ng;
      TextBatch tb = text_batch(tok, qs, as);
      model->decode(model->image_prefix(image_batch(train, idx)).index_select(0, torch::tensor(rows)), tb.inputs);
    }
    for (auto& q : fresh) q->finish_calibration();
    log::info("calibrated " + std::to_string(fresh.size()) + " quantizer thresholds on " +
              std::to_string(idx.size()) + " images");
  }

  // No weight decay on LayerNorm, biases, positions and clip values.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& item : model->named_parameters()) {
    const std::string& n = item.key();
    bool is_matrix = item.value().dim() == 2 && n.find("pos") == std::string::npos;
    (is_matrix ? decay : no_decay).push_back(item.value());
  }
  torch::optim::AdamW opt({torch::optim::OptimizerParamGroup(
                               decay, std::make_unique<torch::optim::AdamWOptions>(
                                          torch::optim::AdamWOptions(peak_lr).weight_decay(o.weight_decay))),
                           torch::optim::OptimizerParamGroup(
                               no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                             torch::optim::AdamWOptions(peak_lr).weight_decay(0.0)))},
                          torch::optim::AdamWOptions(peak_lr));

  const int64_t n_images = o.limit_images > 0 ? std::min(o.limit_images, train.n) : train.n;
  const int64_t steps_per_epoch = (n_images + o.batch_images - 1) / o.batch_images;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = std::min<int64_t>(100, total_steps / 10 + 1);
  const double budget_s = o.minutes * 60.0;

  TrainReport rep;
  rep.parameters = model->parameter_count();
  log::info("training " + cfg.size_name + " MFM (" + std::to_string(rep.parameters) + " parameters, " +
            std::to_string(cfg.num_patches()) + " image tokens, L=" + std::to_string(cfg.act_levels) + ") on " +
            std::to_string(n_images) + " images x 4 questions, up to " + std::to_string(o.epochs) +
            " epochs / " + std::to_string(o.minutes).substr(0, 5) + " min");

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(n_images);
  std::iota(order.begin(), order.end(), 0);
  std::deque<double> first, recent;
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
      // LR: linear warm-up, then cosine to 5% over the budget (steps or time, whichever runs out first).
      const double frac = std::max(static_cast<double>(rep.steps) / total_steps, elapsed / budget_s);
      double lr = peak_lr * (rep.steps < warmup ? static_cast<double>(rep.steps + 1) / warmup
                                             : 0.05 + 0.95 * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, frac))));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

      std::vector<int64_t> idx(order.begin() + s * o.batch_images,
                               order.begin() + std::min(n_images, (s + 1) * o.batch_images));
      std::vector<std::string> questions, answers;
      std::vector<int64_t> row_image;
      for (size_t b = 0; b < idx.size(); ++b) {
        for (int q = 0; q < kQuestionTypes; ++q) {
          const auto& para = fashion_vqa_questions(static_cast<QuestionType>(q));
          questions.push_back(para[rng() % para.size()]);
          answers.push_back(fashion_vqa_answer(train.labels[idx[b]], static_cast<QuestionType>(q)));
          row_image.push_back(static_cast<int64_t>(b));
        }
      }
      TextBatch tb = text_batch(tok, questions, answers);
      // The image prefix runs through the decoder once per image; its keys/values are shared by
      // the image's 4 question rows (same math as the full sequence: the prefix never sees text).
      KVCache cache;
      model->prime(model->image_prefix(image_batch(train, idx)), cache);  // (B, H, P, d) per layer
      torch::Tensor rows = torch::tensor(row_image, torch::kInt64);
      for (auto& k : cache.k) k = k.index_select(0, rows);  // (4B, H, P, d)
      for (auto& v : cache.v) v = v.index_select(0, rows);
      torch::Tensor logits = model->decode({}, tb.inputs, &cache);  // (4B, T, V)
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, cfg.vocab_size}), tb.targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreTarget));
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
      opt.step();

      const double l = loss.item<double>();
      if (!std::isfinite(l)) {
        throw Error("training", "the loss became " + std::to_string(l) + " at step " + std::to_string(rep.steps),
                    "lower --lr");
      }
      if (first.size() < 20) first.push_back(l);
      recent.push_back(l);
      if (recent.size() > 20) recent.pop_front();
      rep.steps++;
      rep.samples += static_cast<int64_t>(questions.size());
      if (progress) {
        char extra[96];
        std::snprintf(extra, sizeof extra, "epoch %d, loss %.4f, lr %.2e", epoch + 1, mean(recent), lr);
        progress->update(rep.steps, extra);
      }
    }
  }
  if (progress) progress->finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.samples_per_s = rep.seconds > 0 ? rep.samples / rep.seconds : 0;
  rep.first_loss = mean(first);
  rep.last_loss = mean(recent);
  if (rep.stopped_by_time) log::info("stopped by the time budget after " + std::to_string(rep.steps) + " steps");

  if (o.val_images > 0) {
    VqaScore vs = score_fashion_vqa(model, tok, data, "val", o.val_images * kQuestionTypes, 256,
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
  save_checkpoint(o.out, model, tok.vocab(), meta);
  return rep;
}

}  // namespace spikefm
