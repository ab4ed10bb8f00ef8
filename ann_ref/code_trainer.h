// Training of the code model: the MFM's decoder in text-only mode (no encoder, no projector) on the
// HumanEval-format training tasks (docs/code_tasks.md), with a byte-level BPE tokenizer trained on the
// same tasks first. Torch-free entry point for the CLI (`spikefm train --task code`) and the tests.
//
// Loss: next-token cross-entropy over [<bos>] prompt solution [<eos>], each position weighted: 1 on
// the solution tokens and <eos> (what the benchmark scores), prompt_loss_weight (default 0.1) on the
// prompt tokens. The small prompt weight still teaches the embeddings of the names and constants the
// solution must copy (they occur in the prompt first), without spending the tiny model's capacity on
// reproducing templated docstrings; 0 gives the pure solution-only loss.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "ann_ref/model_config.h"

namespace spikefm {

struct CodeTrainOptions {
  std::string model = "small";          // code preset: small | large (code_model_config)
  std::filesystem::path out;            // checkpoint to write (atomically)
  std::filesystem::path tasks;          // training tasks; empty: the shipped code_train.jsonl
  double minutes = 10.0;                // wall-clock budget; the LR schedule anneals within it
  int epochs = 1000;                    // upper bound on passes over the tasks (time usually ends first)
  uint64_t seed = 1;
  int batch = 32;                       // sequences per step
  double lr = 0;                        // peak AdamW LR; 0: the preset's (small 3e-3, large 2e-3)
  double weight_decay = 0.01;
  int vocab_size = 768;                 // BPE vocabulary (>= 261)
  int max_text_len = 192;               // decoder positions (prompt + completion tokens)
  int act_levels = -1;                  // -1: preset default (8); 0: plain clipped ReLU
  double prompt_loss_weight = 0.1;      // see above
  int64_t limit_tasks = 0;              // 0: all
  int threads = 0;                      // 0: libtorch default
  bool progress = true;
};

struct CodeTrainReport {
  int64_t parameters = 0;
  int vocab_size = 0;
  int64_t steps = 0;
  int64_t samples = 0;           // sequences seen
  int64_t tokens = 0;            // non-pad tokens seen
  double seconds = 0;            // training loop only (tokenizer training excluded)
  double tokenizer_seconds = 0;
  double tokens_per_s = 0;
  double first_loss = 0;         // weighted loss, mean over the first 20 steps
  double last_loss = 0;          // ... over the last 20 steps
  double epochs = 0;             // passes over the tasks
  bool stopped_by_time = false;
};

// The code presets: text-only decoders of the MFM family. small: 2 blocks x 96 wide, 4 heads;
// large: 4 blocks x 128 wide, 4 heads (head width 32 in both). Other names throw.
MfmConfig code_model_config(const std::string& size, int vocab_size, int max_text_len);

// Trains, writes the checkpoint to opts.out, and reports. Throws spikefm::Error on bad options or data.
CodeTrainReport train_code(const CodeTrainOptions& opts);

}  // namespace spikefm
