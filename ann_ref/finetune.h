// Fine-tuning a trained MFM on another VQA task (torch-free entry point for the CLI and tests), e.g.
// a Fashion-VQA model continued on Med-VQA.
//
// The new model has the base's architecture with the task's image geometry (vqa_task.h: Med-VQA 48 px,
// patch 8, stride 8) and the task's vocabulary; weight_transfer.h says how each tensor is initialised
// (copied; position grid interpolated; patch filters resized; rows of shared words copied, new words
// fresh). Then it trains with the shared loop (train_loop.h):
//   full  every parameter, AdamW as spikefm train (weight decay on matrices only).
//   lora  LoRA adapters (lora.h) on attention qkv/proj and MLP fc1/fc2 of every block, plus the rows
//         of the *new* words in tok_embed, lm_head.weight and lm_head.bias (gradient-masked, no
//         weight decay, so the rows of shared words stay exactly the base's); everything else frozen
//         (LayerNorms, patch embedding, positions, projector included). The adapters are merged into
//         the weights before saving, so the output is a plain checkpoint every tool loads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "ann_ref/trainer.h"

namespace spikefm {

struct FinetuneOptions {
  // train.init = the base checkpoint, train.out = the result, train.task = the new task; epochs,
  // minutes, batch, seed, limit_images, val_images, threads, progress as for training. train.lr = 0
  // picks the default: full: the preset's (small 2e-3, large 1e-3); lora: 2e-3.
  TrainOptions train;
  std::string method = "full";  // full | lora
  int rank = 8;                 // LoRA rank r
  double alpha = 16;            // LoRA alpha (scale alpha / r)
};

struct FinetuneReport {
  TrainReport train;              // parameters = all of the model; trainable_parameters = updated ones
  int64_t lora_parameters = 0;    // A and B (lora only)
  int64_t new_word_parameters = 0;  // trainable rows of new words (lora only)
  int64_t shared_words = 0, new_words = 0;
  int resized_tensors = 0;        // enc_pos / patch_embed resized to the new geometry
  std::string base_model;         // size name of the base
};

// Throws spikefm::Error on bad options (method, rank, alpha), an unreadable base or a QANN base.
FinetuneReport finetune_vqa(const FinetuneOptions& opts);

}  // namespace spikefm
