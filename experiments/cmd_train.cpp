// spikefm train: trains the reference MFM and writes an HDF5 checkpoint.
#include <cstdio>
#include <memory>

#include "ann_ref/code_trainer.h"
#include "ann_ref/mlp_classifier.h"
#include "ann_ref/trainer.h"
#include "common/error.h"
#include "common/json.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Action add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("train", "Train the reference MFM (ViT encoder + text decoder) on a task");
  c->add_option("--task", o->task, "Task: fashion-vqa or med-vqa (the MFM), fashion-mnist (an MLP classifier, for the NIR path) or code (text-only decoder on the code tasks)")
      ->check(CLI::IsMember({"fashion-vqa", "med-vqa", "fashion-mnist", "code"}))
      ->capture_default_str();
  c->add_option("--model", o->model, "Model: small | large (fashion-vqa, med-vqa), mlp (fashion-mnist)")
      ->check(CLI::IsMember({"small", "large", "mlp"}))
      ->capture_default_str();
  c->add_option("--patch", o->patch, "Patch side in pixels, overriding the preset's (0 = preset: small 7, large 8; med-vqa 8)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--stride", o->stride, "Patch stride, overriding the preset's (0 = preset, or = --patch when --patch is given); < patch overlaps")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--out", o->out, "Checkpoint to write (HDF5, written atomically)")->required();
  c->add_option("--epochs", o->epochs, "Passes over the training images")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--minutes", o->minutes, "Wall-clock budget; the LR schedule anneals within it")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--seed", o->seed, "Seed for initialisation, shuffling and the train/val split")->capture_default_str();
  c->add_option("--batch", o->batch_images, "Images per step (each asked every question type that applies to it: 4 in fashion-vqa, 4-10 in med-vqa)")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--lr", o->lr, "Peak learning rate (AdamW); 0 = the preset's (small 2e-3, large 1e-3)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--levels", o->act_levels, "Activation quantization levels L (0 = plain clipped ReLU; -1 = preset default 8)")->check(CLI::Range(-1, 255))->capture_default_str();
  c->add_option("--init", o->init, "Start from this checkpoint (keeps its size; e.g. to fine-tune it into a QANN)")->check(CLI::ExistingFile);
  c->add_flag("--qann", o->qann, "Quantization-aware training of the QANN: L-level quantizers at every linear/product input and int8 weights (what `spikefm convert` needs)");
  c->add_option("--augment-shift", o->augment_shift, "Augment training images: random shifts of up to N pixels (0 = off)")->check(CLI::Range(0, 8))->capture_default_str();
  c->add_flag("--augment-flip", o->augment_flip, "Augment training images: random left-right mirroring (only where no answer depends on the side)");
  c->add_option("--limit", o->limit_images, "Use only the first N training images (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--val-images", o->val_images, "Validation images scored after training (0 = skip)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_option("--threads", o->threads, "libtorch threads (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_flag("--json", *json, "Print the training report as one JSON object on stdout");
  return [o, json, c] {
    if (o->task == "code") {  // text-only decoder + BPE on the code tasks (ann_ref/code_trainer.h)
      CodeTrainOptions co;
      co.model = o->model;
      co.out = o->out;
      co.minutes = o->minutes;
      co.seed = o->seed;
      co.lr = o->lr;
      co.act_levels = o->act_levels;
      co.threads = o->threads;
      co.limit_tasks = o->limit_images;
      if (c->get_option("--epochs")->count() > 0) co.epochs = o->epochs;  // else the time budget decides
      if (c->get_option("--batch")->count() > 0) co.batch = o->batch_images;
      if (o->model == "mlp") throw Error("--task code --model mlp", "the code task trains a decoder", "use small or large");
      CodeTrainReport r = train_code(co);
      Json j{{"task", "code"}, {"model", o->model}, {"checkpoint", o->out.string()}, {"parameters", r.parameters},
             {"vocab_size", r.vocab_size}, {"steps", r.steps}, {"samples", r.samples}, {"epochs", r.epochs},
             {"seconds", r.seconds}, {"tokens_per_s", r.tokens_per_s}, {"first_loss", r.first_loss},
             {"last_loss", r.last_loss}, {"stopped_by_time", r.stopped_by_time}};
      if (*json) std::printf("%s\n", j.dump().c_str());
      else std::printf("trained %s code model: %lld parameters, V = %d, %lld steps (%.1f epochs), %.0f tokens/s, %.1f s\n"
                       "loss %.4f -> %.4f\ncheckpoint written to %s\n", o->model.c_str(), static_cast<long long>(r.parameters),
                       r.vocab_size, static_cast<long long>(r.steps), r.epochs, r.tokens_per_s, r.seconds, r.first_loss,
                       r.last_loss, o->out.c_str());
      return 0;
    }
    if (o->task == "fashion-mnist" || o->model == "mlp") {
      if (o->task != "fashion-mnist" || o->model != "mlp") {
        throw Error("--task " + o->task + " --model " + o->model, "the MLP classifier trains on fashion-mnist",
                    "use --task fashion-mnist --model mlp");
      }
      MlpTrainOptions mo;
      mo.out = o->out;
      mo.data_dir = o->data_dir;
      mo.epochs = o->epochs;
      mo.minutes = o->minutes;
      mo.seed = o->seed;
      mo.threads = o->threads;
      if (o->act_levels > 0) mo.config.levels = o->act_levels;
      if (o->limit_images > 0) mo.limit = o->limit_images;
      MlpTrainReport r = train_mlp_classifier(mo);
      if (*json) {
        Json j{{"task", o->task}, {"model", "mlp"}, {"checkpoint", o->out.string()}, {"parameters", r.parameters},
               {"steps", r.steps}, {"seconds", r.seconds}, {"first_loss", r.first_loss}, {"last_loss", r.last_loss},
               {"test_accuracy", r.test_accuracy}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("trained MLP classifier (%s): %lld parameters, %lld steps, %.1f s, loss %.4f -> %.4f, QANN test accuracy %.2f%%\n"
                    "checkpoint written to %s\n", mo.config.describe().c_str(), static_cast<long long>(r.parameters),
                    static_cast<long long>(r.steps), r.seconds, r.first_loss, r.last_loss, 100.0 * r.test_accuracy, o->out.c_str());
      }
      return 0;
    }
    TrainReport r = train_vqa(*o);  // fashion-vqa or med-vqa
    Json j;
    j["task"] = o->task;
    j["model"] = o->model;
    j["checkpoint"] = o->out.string();
    j["parameters"] = r.parameters;
    j["image_tokens"] = r.image_tokens;
    j["steps"] = r.steps;
    j["samples"] = r.samples;
    j["seconds"] = r.seconds;
    j["samples_per_s"] = r.samples_per_s;
    j["first_loss"] = r.first_loss;
    j["last_loss"] = r.last_loss;
    j["val_accuracy"] = r.val_accuracy;
    j["stopped_by_time"] = r.stopped_by_time;
    if (*json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("trained %s model: %lld parameters, %lld steps, %.0f samples/s, %.1f s\n", o->model.c_str(),
                  static_cast<long long>(r.parameters), static_cast<long long>(r.steps), r.samples_per_s, r.seconds);
      std::printf("loss %.4f -> %.4f", r.first_loss, r.last_loss);
      if (r.val_accuracy >= 0) std::printf(", validation exact-match accuracy %.2f%%", 100.0 * r.val_accuracy);
      std::printf("\ncheckpoint written to %s\n", o->out.c_str());
    }
    return 0;
  };
}

}  // namespace spikefm::cli
