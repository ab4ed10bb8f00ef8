// Turns Fashion-VQA samples into libtorch batches for training and evaluation of the MFM.
//
// Text layout of one sample: [<bos>, question..., <sep>, answer..., <eos>]. Training feeds
// tokens[:-1] and predicts tokens[1:]; only the answer words and <eos> are scored (targets before
// <sep> are ignored with -100). Generation prompts with [<bos>, question..., <sep>].
#pragma once

#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "datasets/fashion_vqa.h"
#include "datasets/tokenizer.h"

namespace spikefm {

inline constexpr int64_t kIgnoreTarget = -100;

// images: selected images of `set` as (B, S, S) float in [0, 1].
torch::Tensor image_batch(const ImageSet& set, const std::vector<int64_t>& indices);

// Training-time augmentation of an image batch (B, S, S), in place: each image is moved by a random
// whole-pixel offset in [-max_shift, max_shift] along each axis (uncovered pixels become 0, the
// background of every task) and, when `flip`, mirrored left-right with probability 1/2. Draws from
// `rng` only; max_shift = 0 and flip = false leave the batch untouched.
void augment_images(torch::Tensor& images, std::mt19937_64& rng, int max_shift, bool flip);

std::vector<int> prompt_tokens(const WordTokenizer& tok, const std::string& question);

struct TextBatch {
  torch::Tensor inputs;   // (N, T) int64, <pad> after the end
  torch::Tensor targets;  // (N, T) int64, kIgnoreTarget where not scored
};

// One text row per (question, answer) pair; rows padded to the longest.
TextBatch text_batch(const WordTokenizer& tok, const std::vector<std::string>& questions,
                     const std::vector<std::string>& answers);

}  // namespace spikefm
