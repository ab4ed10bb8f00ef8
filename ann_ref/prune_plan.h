// Structural pruning of the MFM: what to keep (PrunePlan), the scores that choose it, and its
// physical application — smaller matrices and fewer blocks, with the config updated, so the result
// is an ordinary model that saves, reloads and converts like any other. Internal to ann_ref/
// (libtorch); the torch-free entry point is prune.h.
//
// Scores, all measured on a calibration batch (calibration.h):
//   block    block influence BI_b = 1 − mean_tokens cos(h_in, h_out) of the block's input and output
//            rows (Men et al., "ShortGPT: Layers in Large Language Models are More Redundant Than You
//            Expect", 2024): a block that barely turns its input is cheap to drop.
//   head     ΔL_h = calibration loss with head h's output removed (its d columns of W_o zeroed, which
//            is exactly what removing it does) − loss of the model (single-head ablation as in Michel
//            et al., "Are Sixteen Heads Really Better than One?", NeurIPS 2019).
//   channel  Wanda-style (Sun et al., "A Simple and Effective Pruning Approach for Large Language
//            Models", ICLR 2024) for a whole hidden channel j of an MLP: S_j = ||a_j||₂ · Σ_i |W2[i, j]|,
//            a_j the channel's activations over the calibration tokens (the input of fc2), W2 (C, hidden).
//
// Removal (apply_prune_plan): a removed block is dropped and the later ones renumbered; a removed
// head drops its d rows of each of q, k and v in W_qkv (and their biases) and its d columns of W_o;
// a removed channel drops row j of W1 and b1 and column j of W2. Layer norms, quantizer clips and
// every other parameter are copied unchanged. The head width d = C / H of the unpruned model stays.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "ann_ref/calibration.h"
#include "ann_ref/mfm.h"

namespace spikefm {

// What one stack (encoder or decoder) keeps, indexed by the blocks of the model it is applied to.
struct StackPlan {
  std::vector<int> blocks;              // kept block indices, ascending
  std::vector<std::vector<int>> heads;  // per block of the model: kept head indices, ascending
  std::vector<std::vector<int>> mlp;    // per block of the model: kept hidden channels, ascending
};

struct PrunePlan {
  StackPlan encoder, decoder;
};

// A plan that keeps everything of `model`.
PrunePlan keep_all(Mfm& model);

// A new model (config with the pruned sizes) holding the kept weights. Throws spikefm::Error on an
// index out of range, an unsorted or repeated index, an empty head/channel list of a kept block, or a
// decoder with no block left.
Mfm apply_prune_plan(Mfm& model, const PrunePlan& plan);

// Scores (see above). Blocks: encoder blocks first, then decoder blocks.
std::vector<double> block_influence(Mfm& model, const CalibBatch& calib);
// [stack][block][head]: stack 0 encoder, 1 decoder.
std::vector<std::vector<std::vector<double>>> head_ablation_loss(Mfm& model, const CalibBatch& calib);
// [stack][block][channel]
std::vector<std::vector<std::vector<double>>> mlp_channel_scores(Mfm& model, const CalibBatch& calib);

}  // namespace spikefm
