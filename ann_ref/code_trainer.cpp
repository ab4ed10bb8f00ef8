#include "ann_ref/code_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>

#include "ann_ref/checkpoint.h"
#include "ann_ref/code_model.h"
#include "ann_ref/train_loop.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/log.h"
#include "common/progress.h"
#include "datasets/code_tasks.h"
#include "datasets/code_tokenizer.h"

namespace spikefm {

namespace {

void check_options(const CodeTrainOptions& o) {
  if (o.out.empty()) throw Error("training", "no output path", "pass --out FILE.h5");
  if (!(o.minutes > 0)) throw Error("--minutes", "must be > 0 (got " + std::to_string(o.minutes) + ")");
  if (o.epochs < 1) throw Error("--epochs", "must be >= 1 (got " + std::to_string(o.epochs) + ")");
  if (o.batch < 1) throw Error("--batch", "must be >= 1");
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) throw Error("--lr", "must be finite and >= 0 (0 = the preset's)");
  if (o.vocab_size < CodeTokenizer::kFirstMerge || o.vocab_size > 65536) {
    throw Error("--vocab", "must be in [261, 65536] (got " + std::to_string(o.vocab_size) + ")");
  }
  if (o.max_text_len < 16 || o.max_text_len > 4096) {
    throw Error("--max-len", "must be in [16, 4096] (got " + std::to_string(o.max_text_len) + ")");
  }
  if (!(o.prompt_loss_weight >= 0 && o.prompt_loss_weight <= 1)) throw Error("prompt loss weight", "must be in [0, 1]");
}

struct Sequence {
  std::vector<int64_t> ids;  // [<bos>] prompt solution [<eos>]
  int64_t prompt_len = 0;    // tokens before the solution (with <bos>)
};

}  // namespace

MfmConfig code_model_config(const std::string& size, int vocab_size, int max_text_len) {
  MfmConfig c = MfmConfig::preset("small");  // encoder fields stay at their defaults, unused
  c.text_only = true;
  c.vocab_size = vocab_size;
  c.max_text_len = max_text_len;
  if (size == "small") {
    c.size_name = "small";
    c.dec_width = 96;
    c.dec_layers = 2;
    c.dec_heads = 4;
  } else if (size == "large") {
    c.size_name = "large";
    c.dec_width = 128;
    c.dec_layers = 4;
    c.dec_heads = 4;
  } else {
    throw Error("code model size '" + size + "'", "unknown", "use small or large");
  }
  c.validate();
  return c;
}

CodeTrainReport train_code(const CodeTrainOptions& o) {
  check_options(o);
  if (o.threads > 0) torch::set_num_threads(o.threads);
  torch::manual_seed(o.seed);

  const std::filesystem::path task_file = o.tasks.empty() ? code_tasks_file("train") : o.tasks;
  std::vector<CodeTask> tasks = load_code_tasks(task_file);
  if (o.limit_tasks > 0 && static_cast<int64_t>(tasks.size()) > o.limit_tasks) tasks.resize(o.limit_tasks);

  CodeTrainReport rep;
  const auto tt0 = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  for (const auto& t : tasks) {
    texts.push_back(t.prompt);
    texts.push_back(t.canonical_solution);
  }
  const CodeTokenizer tok = CodeTokenizer::train(texts, o.vocab_size);
  rep.tokenizer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tt0).count();

  std::vector<Sequence> seqs;
  int64_t skipped = 0;
  for (const auto& t : tasks) {
    Sequence s;
    for (int id : code_prompt_ids(tok, t.prompt)) s.ids.push_back(id);
    s.prompt_len = static_cast<int64_t>(s.ids.size());
    for (int id : tok.encode(t.canonical_solution)) s.ids.push_back(id);
    s.ids.push_back(CodeTokenizer::kEos);
    if (static_cast<int>(s.ids.size()) > o.max_text_len) {
      ++skipped;  // never truncated: a cut solution would teach wrong code
      continue;
    }
    seqs.push_back(std::move(s));
  }
  if (seqs.empty()) throw Error("training tasks " + task_file.string(), "no task fits max_text_len " + std::to_string(o.max_text_len), "raise --max-len");
  if (skipped > 0) log::warn(std::to_string(skipped) + " tasks longer than max_text_len were skipped");

  MfmConfig cfg = code_model_config(o.model, tok.size(), o.max_text_len);
  if (o.act_levels >= 0) cfg.act_levels = o.act_levels;
  Mfm model(cfg);
  const double peak_lr = o.lr > 0 ? o.lr : (cfg.size_name == "large" ? 2e-3 : 3e-3);

  std::unique_ptr<torch::optim::AdamW> opt = make_adamw(model, peak_lr, o.weight_decay);

  const int64_t n = static_cast<int64_t>(seqs.size());
  const int64_t steps_per_epoch = (n + o.batch - 1) / o.batch;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = std::min<int64_t>(100, total_steps / 10 + 1);
  const double budget_s = o.minutes * 60.0;
  rep.parameters = model->parameter_count();
  rep.vocab_size = tok.size();
  log::info("training " + cfg.size_name + " code model (" + std::to_string(rep.parameters) + " parameters, " +
            std::to_string(cfg.dec_layers) + " x " + std::to_string(cfg.dec_width) + ", V = " +
            std::to_string(tok.size()) + ", L=" + std::to_string(cfg.act_levels) + ") on " + std::to_string(n) +
            " tasks, up to " + std::to_string(o.minutes).substr(0, 5) + " min");

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  LossLog losses;
  std::optional<Progress> progress;
  if (o.progress) {
    progress.emplace("train", total_steps, "steps");
    progress->set_time_budget(budget_s);
  }
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  int epoch = 0;
  for (; epoch < o.epochs && !rep.stopped_by_time; ++epoch) {
    // Length buckets: shuffle, sort each window of 16 batches by length, shuffle the batches; a batch
    // then holds sequences of similar length (little padding) and the batch order stays random.
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t window = 16 * static_cast<int64_t>(o.batch);
    for (int64_t w0 = 0; w0 < n; w0 += window) {
      std::stable_sort(order.begin() + w0, order.begin() + std::min(n, w0 + window), [&](int64_t a, int64_t b) {
        return seqs[a].ids.size() < seqs[b].ids.size();
      });
    }
    std::vector<int64_t> batch_order(steps_per_epoch);
    std::iota(batch_order.begin(), batch_order.end(), 0);
    std::shuffle(batch_order.begin(), batch_order.end(), rng);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (elapsed >= budget_s) {
        rep.stopped_by_time = true;
        break;
      }
      const double lr = scheduled_lr(peak_lr, rep.steps, warmup, total_steps, elapsed, budget_s);
      for (auto& g : opt->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

      const int64_t b0 = batch_order[s] * o.batch, b1 = std::min(n, b0 + o.batch), B = b1 - b0;
      int64_t T = 0;
      for (int64_t i = b0; i < b1; ++i) T = std::max<int64_t>(T, static_cast<int64_t>(seqs[order[i]].ids.size()) - 1);
      // inputs/targets: (B, T), right-padded; weights (B, T): 0 on padding
      std::vector<int64_t> in(B * T, CodeTokenizer::kPad), tg(B * T, 0);
      std::vector<float> w(B * T, 0.0f);
      for (int64_t r = 0; r < B; ++r) {
        const Sequence& sq = seqs[order[b0 + r]];
        const int64_t len = static_cast<int64_t>(sq.ids.size()) - 1;
        for (int64_t j = 0; j < len; ++j) {
          in[r * T + j] = sq.ids[j];
          tg[r * T + j] = sq.ids[j + 1];
          // target j + 1 is a solution token (or <eos>) iff j + 1 >= prompt_len
          w[r * T + j] = j + 1 >= sq.prompt_len ? 1.0f : static_cast<float>(o.prompt_loss_weight);
          rep.tokens++;
        }
      }
      torch::Tensor inputs = torch::tensor(in).view({B, T});
      torch::Tensor targets = torch::tensor(tg).view({B, T});
      torch::Tensor weights = torch::tensor(w).view({B, T});
      torch::Tensor logits = model->decode({}, inputs);  // (B, T, V)
      torch::Tensor ce = torch::nn::functional::cross_entropy(
          logits.reshape({-1, cfg.vocab_size}), targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B·T)
      torch::Tensor loss = (ce * weights.reshape({-1})).sum() / weights.sum();
      opt->zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
      opt->step();

      losses.add(loss.item<double>(), rep.steps);
      rep.steps++;
      rep.samples += B;
      if (progress) progress->update(rep.steps, losses.note(epoch, lr));
    }
  }
  if (progress) progress->finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.tokens_per_s = rep.seconds > 0 ? rep.tokens / rep.seconds : 0;
  rep.first_loss = losses.first();
  rep.last_loss = losses.last();
  rep.epochs = static_cast<double>(rep.samples) / static_cast<double>(n);
  if (rep.stopped_by_time) log::info("stopped by the time budget after " + std::to_string(rep.steps) + " steps");

  TrainMeta meta;
  meta.task = "code";
  meta.seed = static_cast<int64_t>(o.seed);
  meta.steps = rep.steps;
  meta.samples = rep.samples;
  meta.seconds = rep.seconds;
  model->eval();
  const std::vector<int64_t> flat = tok.merges_flat();
  save_checkpoint(o.out, model, tok.display_vocab(), meta, [&](H5File& f) {
    f.set_attr("/tokenizer", "type", std::string("byte-bpe"));
    f.set_attr("/tokenizer", "merges", static_cast<int64_t>(flat.size() / 2));
    if (!flat.empty()) f.write("/tokenizer/bpe_merges", flat.data(), {static_cast<int64_t>(flat.size() / 2), 2});
  });
  return rep;
}

}  // namespace spikefm
