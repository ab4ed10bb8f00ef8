// `spikefm compress`: hierarchy-aware mixed-precision weight quantization of a trained MFM
// (torch-free entry point; the implementation uses libtorch).
//
// 1. Calibration: the float model runs teacher-forced on `calib_images` training images × 4
//    questions; every linear layer (QLinear: patch embed, q/k/v, attention out, MLP up/down,
//    projector, LM head) records its inputs X, giving its input Hessian H = 2/n XᵀX (GPTQ).
// 2. Sensitivity, per layer and width: the layer alone is quantized (the others stay float) and the
//    calibration loss increase ΔL is measured; beside it the second-order proxy
//    ½·tr((W − Ŵ) H (W − Ŵ)ᵀ) / n_out and the Fisher estimate ½ Σ F ⊙ (W − Ŵ)² of the loss increase
//    (F: the empirical Fisher diagonal of the calibration loss, calibration.h). Blocks (an encoder/decoder layer, the ends) and the whole
//    model are also measured quantized as a unit, for the report.
// 3. Allocation: one option per layer — a width from `widths` and a scale granularity from `groups`
//    (group 32: finer scales, +0.5 bit of fp16 scales per weight; per channel: +16/in) — minimising
//    Σ max(ΔL, 0) (or Σ proxy) under the budget Σ storage bits ≤ bits × weights (scales included):
//    an exact multiple-choice knapsack (bit_allocation.h). With a memory-hierarchy budget
//    (`layer_cap_bits`, from a hardware preset: `spikefm compress --hw`), every layer that runs on the
//    chip's cores also gets a cap: its storage must fit the synapse SRAM of the cores its neurons
//    occupy (neuromorphic_hw place_linear). The cap is per option: with per-group scales the spiking
//    layer holds one accumulator per group and token row (graph_engine), so a grouped option's
//    neurons spread over more cores, with more SRAM per channel. The patch embedding runs on the
//    dense unit (no cap).
// 4. The chosen options are applied (RTN or GPTQ, per-group scales), the model is evaluated, and the
//    checkpoint is written: /params hold the dequantized weights (so every reader loads it), /quant
//    the packed codes and scales they come from (docs/formats.md).
// 5. QAT (`qat_epochs` > 0): starting from the float weights, the model is fine-tuned on the
//    training split with every layer fake-quantized at its chosen option by RTN in each forward pass
//    (straight-through gradient, as in Jacob et al., CVPR 2018), then quantized by RTN — the quantizer
//    it trained against — at the same allocation; that model is evaluated and written instead.
// Baselines for the same run (`compare`): uniform widths and other budgets, RTN and GPTQ.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace spikefm {

struct CompressOptions {
  std::filesystem::path checkpoint;
  std::string task = "fashion-vqa";
  std::filesystem::path data_dir;  // empty: default_fashion_mnist_dir()
  std::filesystem::path out;       // empty: do not write a checkpoint
  double bits = 4.5;               // budget: average effective bits per weight, scales included
                                   // (+infinity: none, only the per-layer caps below)
  // Memory-hierarchy budget: the most storage bits (codes + scales) layer `name` (out x in weights)
  // may take with one option, or -1 for no cap. Each output channel holds token_rows x groups
  // neuron-state words: token_rows = the spiking graph's rows_cap, groups = the option's scale groups
  // per channel (ceil(in / group); 1 per channel). May throw spikefm::Error. Empty: no per-layer
  // caps. `hw` names the chip in reports.
  std::function<int64_t(const std::string& name, int64_t out, int64_t in, int64_t token_rows, int64_t groups)>
      layer_cap_bits;
  std::string hw;
  std::vector<int> widths{8, 4, 2};
  std::vector<int> groups{32, 0};  // scale granularities a layer may get (0 = per output channel)
  int group = 32;                  // granularity of the uniform baselines
  std::string method = "gptq";     // gptq | rtn
  int64_t calib_images = 128;      // training images for calibration (× 4 questions)
  std::string split = "test";      // evaluation split
  int64_t limit = 0;               // evaluation samples (0 = all)
  std::string sensitivity = "loss"; // what the allocation minimises: loss (measured ΔL) | proxy | fisher
  bool compare = false;            // also evaluate uniform widths and RTN/GPTQ at the same budgets
  int qat_epochs = 0;              // quantization-aware fine-tune at the chosen allocation (0: none)
  double qat_minutes = 10;         // wall-clock cap of the QAT fine-tune
  double qat_lr = 5e-4;            // its peak AdamW LR (warm-up, cosine decay: train_loop.h)
  bool progress = true;
};

struct OptionSensitivity {
  int bits = 8, group = 0;          // group as applied (0 = per output channel)
  double effective_bits = 0;        // scales included
  double delta_loss = 0;            // calibration-loss increase, this layer alone quantized
  double proxy = 0;                 // ½ tr(ΔW H ΔWᵀ) / rows
  double fisher = 0;                // ½ Σ F ⊙ ΔW²: F the empirical Fisher diagonal (calibration.h)
  int64_t cap_bits = -1;            // memory-hierarchy cap on the layer's storage at this option (-1: none)
  // Accumulators per output channel in the spiking layer: one per scale group (1: per channel).
  int64_t groups(int64_t cols) const { return group > 0 ? (cols + group - 1) / group : 1; }
};

struct LayerSensitivity {
  std::string name;                 // e.g. "dec_blocks.1.mlp.fc1"
  std::string block;                // "encoder.0", "decoder.1", "patch_embed", "projector", "lm_head"
  int64_t rows = 0, cols = 0;
  std::vector<OptionSensitivity> options;  // widths × groups
  int chosen = -1;                  // index into options
  int64_t token_rows = 0;           // rows its output neurons hold in the SNN (0: runs on the dense unit)
  bool capped() const { return !options.empty() && options.front().cap_bits >= 0; }
};

// A whole block (or the whole model: name "model") quantized at one width, the rest float.
struct BlockSensitivity {
  std::string name;
  int64_t weights = 0;
  std::vector<double> delta_loss;  // per width of CompressOptions::widths, at granularity `group`
};

struct CompressVariant {
  std::string name;     // "float", "mixed gptq", "uniform int4 rtn", ...
  double effective_bits = 32;
  double accuracy = 0;
  double calib_loss = 0;
};

struct CompressReport {
  std::string model;
  int64_t weights = 0;      // quantized weights (all linear layers)
  int64_t parameters = 0;   // all parameters
  double float_loss = 0;    // calibration loss of the float model
  std::vector<LayerSensitivity> layers;
  std::vector<BlockSensitivity> blocks;   // measured per block, then "model"
  std::vector<CompressVariant> variants;  // [0] float, [1] the chosen allocation, then comparisons
  int64_t eval_n = 0;
  int64_t qat_steps = 0;    // QAT fine-tune steps (0: none)
  double qat_seconds = 0;
};

CompressReport compress_checkpoint(const CompressOptions& opts);

}  // namespace spikefm
