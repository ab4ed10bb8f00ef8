#include "ann_ref/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "ann_ref/checkpoint.h"
#include "ann_ref/quant_layers.h"
#include "ann_ref/train_loop.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/log.h"
#include "ann_ref/vqa_task.h"

namespace spikefm {

namespace {

void check_options(const TrainOptions& o) {
  if (o.task != "fashion-vqa" && o.task != "med-vqa") {
    throw Error("--task " + o.task, "unknown task", "use fashion-vqa or med-vqa");
  }
  if (o.out.empty()) throw Error("training", "no output path", "pass --out FILE.h5");
  if (o.epochs < 1) throw Error("--epochs", "must be >= 1 (got " + std::to_string(o.epochs) + ")");
  if (!(o.minutes > 0)) throw Error("--minutes", "must be > 0 (got " + std::to_string(o.minutes) + ")");
  if (o.batch_images < 1) throw Error("--batch", "must be >= 1");
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) throw Error("--lr", "must be finite and >= 0 (0 = the preset's)");
}

}  // namespace

TrainReport train_fashion_vqa(const TrainOptions& o) {
  if (o.task != "fashion-vqa") throw Error("--task " + o.task, "unknown task", "use fashion-vqa");
  return train_vqa(o);
}

TrainReport train_vqa(const TrainOptions& o) {
  check_options(o);
  if (o.threads > 0) torch::set_num_threads(o.threads);
  torch::manual_seed(o.seed);

  std::unique_ptr<VqaTask> task = make_vqa_task(o.task, o.data_dir, o.seed);
  WordTokenizer tok = task->tokenizer();
  const ImageSet& train = task->images("train");

  std::optional<Checkpoint> init;
  MfmConfig cfg = MfmConfig::preset(o.model);
  task->adapt_config(cfg);
  if (o.patch > 0 || o.stride > 0) {
    if (!o.init.empty()) throw Error("--patch/--stride with --init", "the initial model fixes the geometry", "drop --patch/--stride");
    if (o.patch > 0) cfg.patch = o.patch;
    cfg.stride = o.stride > 0 ? o.stride : cfg.patch;
  }
  if (!o.init.empty()) {
    init = load_checkpoint(o.init);
    const MfmConfig& ic = init->model->config();
    if (init->vocab != tok.vocab()) {
      throw Error("--init " + o.init.string(), "its vocabulary differs from this task's",
                  "continue a model of another task with spikefm finetune");
    }
    if (ic.image_size != cfg.image_size) {
      throw Error("--init " + o.init.string(), "it reads " + std::to_string(ic.image_size) + " px images, " + o.task +
                  " has " + std::to_string(cfg.image_size), "use spikefm finetune");
    }
    cfg = ic;
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
  // A compressed initial model (/quant): a QANN keeps its layers' widths and groups, trained against
  // RTN at them and saved with the codes of its final weights; float training drops the codes.
  QuantStore quant;
  if (init) {
    quant = read_quant_store(H5File::open(o.init));
    if (!quant.empty() && !cfg.qann) {
      log::info("the stored codes of " + o.init.string() + " are not kept (float training); compress the result again");
      quant = {};
    }
    if (!quant.empty()) {
      fake_quantize_as_stored(model, quant);
      log::info("kept the widths of " + std::to_string(quant.layers.size()) + " compressed layers (RTN fake-quantized while training)");
    }
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
      for (int q : task->types_of("train", idx[b])) {
        qs.push_back(task->paraphrases(q)[0]);
        as.push_back(task->answer("train", idx[b], q));
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

  std::unique_ptr<torch::optim::AdamW> opt = make_adamw(model, peak_lr, o.weight_decay);

  TrainReport rep = run_train_loop(model, *task, tok, o, peak_lr, *opt, model->parameters());
  rep.parameters = model->parameter_count();
  rep.image_tokens = cfg.num_patches();
  rep.trainable_parameters = rep.parameters;
  if (!quant.empty()) quant = requantize_as_stored(model, quant, rep.steps);

  validate_and_save(model, *task, tok, o, rep, quant);
  return rep;
}

}  // namespace spikefm
