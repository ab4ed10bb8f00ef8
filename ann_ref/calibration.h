// Calibration data for compression (compress.h, prune.h): a teacher-forced batch of training images,
// each asked its 4 canonical questions with the true answers, and the mean cross-entropy of the
// answer tokens on it. Internal to ann_ref/ (libtorch).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "ann_ref/mfm.h"
#include "datasets/fashion_vqa.h"
#include "datasets/tokenizer.h"

namespace spikefm {

struct CalibBatch {
  torch::Tensor images, inputs, targets;  // (N, S, S), (N, T), (N, T); N = 4 · images
};

// The first n_images training images (fewer if the split is smaller) × 4 questions.
CalibBatch calib_batch(const FashionVqa& data, const WordTokenizer& tok, int64_t n_images);

// Mean cross-entropy per scored target token (answer words and <eos>), no gradient.
double calib_loss(Mfm& model, const CalibBatch& b);

// Empirical Fisher information, diagonal, of the calibration loss with respect to each of `params`
// (each a parameter of `model`): the rows of the batch are taken `chunk` at a time, g_c is the
// gradient of chunk c's mean loss, and F = chunk · mean_c(g_c ⊙ g_c). For a trained model (mean
// gradient ≈ 0) E[g_c²] = F_sample / chunk, so F estimates the per-sample Fisher diagonal, and
// ½ Σ F ⊙ ΔW² is the second-order estimate of the loss increase a weight change ΔW causes (the
// Fisher approximates the Hessian of the expected negative log-likelihood). Returns float64 tensors
// shaped like `params`.
std::vector<torch::Tensor> fisher_diagonal(Mfm& model, const CalibBatch& b, const std::vector<torch::Tensor>& params,
                                           int64_t chunk = 16);

}  // namespace spikefm
