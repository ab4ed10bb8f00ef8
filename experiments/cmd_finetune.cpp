// spikefm finetune: continues a trained MFM on another VQA task (full or LoRA) and writes a plain
// checkpoint (LoRA adapters merged into the weights).
#include <cstdio>
#include <memory>

#include "ann_ref/finetune.h"
#include "common/error.h"
#include "common/json.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Action add_finetune(CLI::App& app) {
  auto o = std::make_shared<FinetuneOptions>();
  o->train.task = "med-vqa";
  auto json = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand(
      "finetune", "Fine-tune a trained MFM on another task (e.g. Fashion-VQA -> Med-VQA): full or LoRA, merged on save");
  c->add_option("--checkpoint", o->train.init, "Base checkpoint (HDF5 from spikefm train; float, not a QANN)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--task", o->train.task, "Task to fine-tune on: med-vqa or fashion-vqa")
      ->check(CLI::IsMember({"med-vqa", "fashion-vqa"}))
      ->capture_default_str();
  c->add_option("--method", o->method, "full (every parameter) or lora (low-rank adapters + rows of new words)")
      ->capture_default_str();
  auto* rank = c->add_option("--rank", o->rank, "LoRA rank r (>= 1)")->capture_default_str();
  auto* alpha = c->add_option("--alpha", o->alpha, "LoRA alpha; the update is scaled by alpha / r")->capture_default_str();
  c->add_option("--patch", o->train.patch, "Patch side in pixels, overriding the task's (0 = the task's: med-vqa 8); the base's "
                 "patch filters and position grid are resized")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--stride", o->train.stride, "Patch stride, overriding the task's (0 = the task's, or = --patch when --patch is "
                 "given); < patch overlaps")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--out", o->train.out, "Checkpoint to write (HDF5, written atomically)")->required();
  c->add_option("--minutes", o->train.minutes, "Wall-clock budget; the LR schedule anneals within it")->capture_default_str();
  c->add_option("--epochs", o->train.epochs, "Passes over the training images")->capture_default_str();
  c->add_option("--seed", o->train.seed, "Seed for new rows, adapters and shuffling")->capture_default_str();
  c->add_option("--batch", o->train.batch_images, "Images per step (each asked every question type that applies)")->capture_default_str();
  c->add_option("--lr", o->train.lr, "Peak learning rate (AdamW); 0 = default (full: the preset's, lora: 2e-3)")->capture_default_str();
  c->add_option("--augment-shift", o->train.augment_shift, "Augment training images: random shifts of up to N pixels (0 = off; "
                 "fine-tuning never mirrors, Med-VQA asks for sides)")->check(CLI::Range(0, 8))->capture_default_str();
  c->add_option("--limit", o->train.limit_images, "Use only the first N training images (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--val-images", o->train.val_images, "Validation images scored after training (0 = skip)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--data-dir", o->train.data_dir, "Fashion-MNIST IDX files (fashion-vqa only)");
  c->add_option("--threads", o->train.threads, "libtorch threads (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_flag("--json", *json, "Print the report as one JSON object on stdout");
  return [o, json, rank, alpha] {
    if (o->method == "full" && (rank->count() > 0 || alpha->count() > 0)) {
      throw Error("--rank/--alpha", "only apply to --method lora", "drop them or pass --method lora");
    }
    FinetuneReport r = finetune_vqa(*o);
    const TrainReport& t = r.train;
    Json j;
    j["task"] = o->train.task;
    j["method"] = o->method;
    j["base"] = o->train.init.string();
    j["base_model"] = r.base_model;
    j["checkpoint"] = o->train.out.string();
    if (o->method == "lora") {
      j["rank"] = o->rank;
      j["alpha"] = o->alpha;
      j["lora_parameters"] = r.lora_parameters;
      j["new_word_parameters"] = r.new_word_parameters;
    }
    j["parameters"] = t.parameters;
    j["trainable_parameters"] = t.trainable_parameters;
    j["shared_words"] = r.shared_words;
    j["new_words"] = r.new_words;
    j["resized_tensors"] = r.resized_tensors;
    j["steps"] = t.steps;
    j["samples"] = t.samples;
    j["seconds"] = t.seconds;
    j["samples_per_s"] = t.samples_per_s;
    j["first_loss"] = t.first_loss;
    j["last_loss"] = t.last_loss;
    j["val_accuracy"] = t.val_accuracy;
    j["stopped_by_time"] = t.stopped_by_time;
    if (*json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("fine-tuned %s base on %s (%s): %lld of %lld parameters trainable, %lld steps, %.0f samples/s, %.1f s\n",
                  r.base_model.c_str(), o->train.task.c_str(), o->method.c_str(),
                  static_cast<long long>(t.trainable_parameters), static_cast<long long>(t.parameters),
                  static_cast<long long>(t.steps), t.samples_per_s, t.seconds);
      std::printf("vocabulary: %lld words shared with the base, %lld new; %d tensors resized to the new geometry\n",
                  static_cast<long long>(r.shared_words), static_cast<long long>(r.new_words), r.resized_tensors);
      std::printf("loss %.4f -> %.4f", t.first_loss, t.last_loss);
      if (t.val_accuracy >= 0) std::printf(", validation exact-match accuracy %.2f%%", 100.0 * t.val_accuracy);
      std::printf("\ncheckpoint written to %s\n", o->train.out.c_str());
    }
    return 0;
  };
}

}  // namespace spikefm::cli
