#include "ann_ref/finetune.h"

#include <cmath>

#include "ann_ref/checkpoint.h"
#include "ann_ref/lora.h"
#include "ann_ref/train_loop.h"
#include "ann_ref/vqa_eval.h"
#include "ann_ref/vqa_task.h"
#include "ann_ref/weight_transfer.h"
#include "common/error.h"
#include "common/log.h"

namespace spikefm {

namespace {

void check(const FinetuneOptions& o) {
  if (o.method != "full" && o.method != "lora") {
    throw Error("--method " + o.method, "unknown fine-tuning method", "use full or lora");
  }
  if (o.method == "lora") LoraParams{o.rank, o.alpha}.validate();
  const TrainOptions& t = o.train;
  if (t.init.empty()) throw Error("fine-tuning", "no base checkpoint", "pass --checkpoint BASE.h5");
  if (t.out.empty()) throw Error("fine-tuning", "no output path", "pass --out FILE.h5");
  if (t.epochs < 1) throw Error("--epochs", "must be >= 1 (got " + std::to_string(t.epochs) + ")");
  if (!(t.minutes > 0)) throw Error("--minutes", "must be > 0 (got " + std::to_string(t.minutes) + ")");
  if (t.batch_images < 1) throw Error("--batch", "must be >= 1");
  if (!(t.lr >= 0) || !std::isfinite(t.lr)) throw Error("--lr", "must be finite and >= 0 (0 = the default)");
}

torch::optim::OptimizerParamGroup group(std::vector<torch::Tensor> params, double lr, double wd) {
  return torch::optim::OptimizerParamGroup(
      std::move(params), std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(wd)));
}

}  // namespace

FinetuneReport finetune_vqa(const FinetuneOptions& o) {
  check(o);
  const TrainOptions& t = o.train;
  if (t.threads > 0) torch::set_num_threads(t.threads);
  Checkpoint base = load_checkpoint(t.init);
  const MfmConfig& bc = base.model->config();
  if (bc.qann || bc.weight_bits != 0) {
    throw Error("fine-tuning " + t.init.string(), "the base is a QANN (quantizers, int8 weights)",
                "fine-tune the float model, then make the QANN with spikefm train --init M.h5 --qann");
  }
  std::unique_ptr<VqaTask> task = make_vqa_task(t.task, t.data_dir, t.seed);
  WordTokenizer tok = task->tokenizer();

  MfmConfig cfg = bc;
  task->adapt_config(cfg);
  if (t.patch > 0 || t.stride > 0) {
    if (t.patch > 0) cfg.patch = t.patch;
    cfg.stride = t.stride > 0 ? t.stride : cfg.patch;
  }
  cfg.vocab_size = tok.size();
  torch::manual_seed(t.seed);
  Mfm model(cfg);
  TransferReport tr = transfer_weights(model, tok.vocab(), base.model, base.vocab);
  FinetuneReport rep;
  rep.base_model = bc.size_name;
  rep.shared_words = tr.shared_words;
  rep.new_words = tr.new_words;
  rep.resized_tensors = tr.resized;
  log::info("fine-tuning " + bc.size_name + " base " + t.init.string() + " on " + t.task + " (" + o.method + "): " +
            std::to_string(tr.shared_words) + " of " + std::to_string(tok.size()) + " words shared with the base, " +
            std::to_string(tr.copied) + " tensors copied, " + std::to_string(tr.resized) + " resized (grid " +
            std::to_string(bc.patches_per_side()) + "x" + std::to_string(bc.patches_per_side()) + " -> " +
            std::to_string(cfg.patches_per_side()) + "x" + std::to_string(cfg.patches_per_side()) + ", patch " +
            std::to_string(bc.patch) + " -> " + std::to_string(cfg.patch) + ")");

  TrainReport tr_rep;
  if (o.method == "full") {
    const double peak_lr = t.lr > 0 ? t.lr : (cfg.size_name == "large" ? 1e-3 : 2e-3);
    std::unique_ptr<torch::optim::AdamW> opt = make_adamw(model, peak_lr, t.weight_decay);
    tr_rep = run_train_loop(model, *task, tok, t, peak_lr, *opt, model->parameters());
    tr_rep.trainable_parameters = model->parameter_count();
  } else {
    const double peak_lr = t.lr > 0 ? t.lr : 2e-3;
    LoraAdapters lora(model, LoraParams{o.rank, o.alpha});
    // New words' rows: trainable through a row mask on the gradient (shared words' rows get 0).
    torch::Tensor mask = torch::zeros({cfg.vocab_size, 1});  // (V, 1)
    for (int64_t id : tr.new_word_ids) mask[id] = 1.0f;
    std::vector<torch::Tensor> rows{model->tok_embed->weight, model->lm_head->weight, model->lm_head->bias};
    for (auto& r : rows) {
      r.set_requires_grad(true);
      torch::Tensor m = r.dim() == 2 ? mask : mask.view({-1});
      r.register_hook([m](torch::Tensor g) { return g * m; });
    }
    rep.lora_parameters = lora.parameter_count();
    rep.new_word_parameters = tr.new_words * (2 * cfg.dec_width + 1);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.push_back(group(lora.parameters(), peak_lr, 0.0));
    groups.push_back(group(rows, peak_lr, 0.0));  // no decay: frozen rows must not shrink
    torch::optim::AdamW opt(std::move(groups), torch::optim::AdamWOptions(peak_lr));
    std::vector<torch::Tensor> clip = lora.parameters();
    clip.insert(clip.end(), rows.begin(), rows.end());
    log::info("LoRA r=" + std::to_string(o.rank) + " alpha=" + std::to_string(o.alpha).substr(0, 6) + " on " +
              std::to_string(lora.layers().size()) + " layers: " + std::to_string(rep.lora_parameters) +
              " adapter + " + std::to_string(rep.new_word_parameters) + " new-word parameters trainable");
    tr_rep = run_train_loop(model, *task, tok, t, peak_lr, opt, clip);
    lora.merge();
    tr_rep.trainable_parameters = rep.lora_parameters + rep.new_word_parameters;
  }
  for (auto& p : model->parameters()) p.set_requires_grad(true);
  tr_rep.parameters = model->parameter_count();
  validate_and_save(model, *task, tok, t, tr_rep);
  rep.train = tr_rep;
  return rep;
}

}  // namespace spikefm
