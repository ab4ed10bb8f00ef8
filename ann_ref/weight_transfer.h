// Moving a trained MFM onto another task: a model of the new geometry and vocabulary initialised from
// a base model. Internal to ann_ref (libtorch); used by finetune.h and by zero-shot evaluation.
//
// What happens to each tensor of the new model:
//   same name and shape as in the base   copied
//   enc_pos, when the patch grid differs the base's g x g grid of position vectors is resized to the
//                                        new g' x g' grid by bilinear interpolation (align_corners
//                                        off), as ViT fine-tuning at a higher resolution does
//                                        ("we perform 2D interpolation of the pre-trained position
//                                        embeddings, according to their location in the original
//                                        image", Dosovitskiy et al., ICLR 2021, arXiv:2010.11929, 3.2)
//   patch_embed.weight, when the patch   each output channel's p x p filter is resized to p' x p'
//     side differs                       bilinearly and scaled by p²/p'², which keeps its response to a
//                                        uniform patch (the mean of a bilinear resize is preserved up
//                                        to edge effects)
//   tok_embed.weight, lm_head.weight and the row (entry) of every word the base vocabulary also has is
//     lm_head.bias                       copied from the base's row of that word; rows of new words
//                                        keep the new model's fresh initialisation
//   anything else                        an Error (the base is not of the same family)
#pragma once

#include <string>
#include <vector>

#include "ann_ref/mfm.h"

namespace spikefm {

struct TransferReport {
  int copied = 0;           // tensors copied whole
  int resized = 0;          // enc_pos / patch_embed.weight resized
  int64_t shared_words = 0; // vocabulary rows copied (specials included)
  int64_t new_words = 0;    // rows left at their fresh initialisation
  std::vector<int64_t> new_word_ids;  // ids (in the new vocabulary) of the new words
};

// (g·g, C) → (g'·g', C), row-major grid, bilinear.
torch::Tensor resize_positions(const torch::Tensor& pos, int old_side, int new_side);
// (C, p·p) → (C, p'·p'), bilinear, scaled by p²/p'².
torch::Tensor resize_patch_filters(const torch::Tensor& w, int old_patch, int new_patch);

// Initialises `dst` (its config already set to the new geometry and vocabulary) from `src`.
TransferReport transfer_weights(Mfm& dst, const std::vector<std::string>& dst_vocab, Mfm& src,
                                const std::vector<std::string>& src_vocab);

}  // namespace spikefm
