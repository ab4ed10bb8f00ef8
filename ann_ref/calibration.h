// Calibration data for compression (compress.h, prune.h): a teacher-forced batch of training images,
// each asked its 4 canonical questions with the true answers, and the mean cross-entropy of the
// answer tokens on it. Internal to ann_ref/ (libtorch).
#pragma once

#include <torch/torch.h>

#include <cstdint>

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

}  // namespace spikefm
