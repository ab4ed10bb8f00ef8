// `spikefm compress --prune-*`: structural pruning of a trained MFM (torch-free entry point; the
// scores and the physical removal are in prune_plan.h).
//
// Steps, each scored on the model the previous step left:
//   1. blocks  remove the `blocks` blocks of lowest block influence (encoder and decoder ranked
//              together; the decoder keeps at least one block);
//   2. heads   remove round(heads × remaining heads) attention heads of lowest single-head ablation
//              loss, globally, keeping at least one head per block;
//   3. mlp     remove round(mlp × hidden) MLP hidden channels of lowest Wanda score in every block.
// Then a short recovery fine-tune (the ordinary trainer, started from the pruned model) and the
// pruned checkpoint is written: an ordinary checkpoint whose /config lists the per-block sizes
// (docs/formats.md), so every loader, the converter and the compressor take it unchanged.
// Accuracy before, after pruning and after recovery, and the wall time of the same evaluation of
// the unpruned and the pruned model measured in the same run, are reported.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

struct PruneOptions {
  std::filesystem::path checkpoint;
  std::string task = "fashion-vqa";
  std::filesystem::path data_dir;  // empty: default_fashion_mnist_dir()
  std::filesystem::path out;       // the pruned (and recovered) checkpoint; required
  int blocks = 0;                  // whole blocks to remove
  double heads = 0;                // fraction of attention heads to remove, in [0, 1)
  double mlp = 0;                  // fraction of every block's MLP hidden channels to remove, in [0, 1)
  int64_t calib_images = 128;      // training images for the scores (× 4 questions)
  double recover_minutes = 2.0;    // recovery fine-tune budget (0 = none)
  double recover_lr = 5e-4;        // its peak AdamW learning rate
  std::string split = "test";      // evaluation split
  int64_t limit = 0;               // evaluation samples (0 = all)
  uint64_t seed = 1;               // recovery fine-tune shuffling
  int threads = 0;                 // libtorch threads for the fine-tune (0 = default)
  bool progress = true;
};

// One block of the original model.
struct PrunedBlock {
  std::string name;        // "encoder.0", "decoder.1"
  double influence = 0;    // 1 − mean cos(h_in, h_out); -1 when blocks were not scored
  bool removed = false;
  int heads = 0, heads_kept = 0;
  int mlp = 0, mlp_kept = 0;
};

struct PruneReport {
  std::string model;
  int64_t parameters_before = 0, parameters_after = 0;
  std::vector<PrunedBlock> blocks;
  double accuracy_before = 0;     // the checkpoint as given
  double accuracy_pruned = 0;     // right after removal
  double accuracy_recovered = -1; // after the fine-tune (-1: none)
  double recover_seconds = 0;
  int64_t eval_n = 0;
  double eval_seconds_before = 0;  // the same evaluation, unpruned vs pruned, best of 2, same run
  double eval_seconds_after = 0;
};

// Validates the options (fractions in [0, 1), blocks fewer than the model has, ...) before any work.
PruneReport prune_checkpoint(const PruneOptions& opts);

}  // namespace spikefm
