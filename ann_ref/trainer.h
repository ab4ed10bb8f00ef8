// Training of the reference MFM (torch-free entry point for the CLI and tests).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace spikefm {

struct TrainOptions {
  std::string task = "fashion-vqa";  // fashion-vqa | med-vqa (vqa_task.h)
  std::string model = "small";        // preset: small | large
  int patch = 0;                      // > 0: override the preset's patch side (pixels)
  int stride = 0;                     // > 0: override the patch stride (0 with patch > 0: = patch)
  std::filesystem::path out;          // checkpoint to write (atomically)
  std::filesystem::path data_dir;     // empty: default_fashion_mnist_dir()
  int epochs = 8;                     // passes over the training images
  double minutes = 10.0;              // wall-clock budget; the LR schedule anneals within it
  uint64_t seed = 1;
  int batch_images = 64;              // each image is asked every question type that applies to it
  double lr = 0;                      // peak AdamW LR; 0: the preset's (small 2e-3, large 1e-3)
  double weight_decay = 0.01;
  int act_levels = -1;                // -1: preset default (8); 0: plain clipped ReLU
  std::filesystem::path init;         // start from this checkpoint (its config; --model is ignored)
  bool qann = false;                  // add the QANN quantizers and int8 weights (qcfs.h, mfm.h)
  int augment_shift = 0;              // training images move by up to this many pixels (0: off)
  bool augment_flip = false;          // and are mirrored at random where the task allows it
  int64_t limit_images = 0;           // 0: all training images
  int64_t val_images = 2000;          // validation images scored at the end (0: skip)
  int threads = 0;                    // 0: libtorch default (all cores)
  bool progress = true;
};

struct TrainReport {
  int64_t parameters = 0;
  int64_t image_tokens = 0;          // patches the encoder sees per image
  int64_t trainable_parameters = 0;  // what the optimizer updates (= parameters unless LoRA/frozen)
  int64_t steps = 0;
  int64_t samples = 0;       // text rows seen (image, question) pairs
  double seconds = 0;        // training loop only
  double samples_per_s = 0;
  double first_loss = 0;     // mean over the first 20 steps
  double last_loss = 0;      // mean over the last 20 steps
  double val_accuracy = -1;  // exact match on every question of val_images images; -1 if skipped
  bool stopped_by_time = false;
};

// Trains on opts.task (fashion-vqa or med-vqa), writes the checkpoint to opts.out, and reports.
// Throws spikefm::Error on bad options or data.
TrainReport train_vqa(const TrainOptions& opts);
// train_vqa for opts.task == "fashion-vqa" (any other task throws).
TrainReport train_fashion_vqa(const TrainOptions& opts);

}  // namespace spikefm
