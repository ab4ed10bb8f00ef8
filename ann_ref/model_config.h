// Configuration of the reference MFM (multimodal foundation model): a ViT encoder over the image, a
// linear projector, and a pre-LN causal text decoder that sees the projected image tokens as a prefix.
// Torch-free: the CLI, the converter and the checkpoint reader share it.
//
// Dimension names used across spikefm (docs/architecture.md): B batch, P image tokens (patches),
// T text tokens, C channels (model width), H heads, V vocabulary, S timesteps (spiking engine).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace spikefm {

class H5File;

struct MfmConfig {
  std::string size_name = "small";  // preset this was made from ("small", "large" or "custom")
  // --- vision encoder ---
  int image_size = 28;   // square grey images, pixels in [0, 1]
  int patch = 7;         // patch side in pixels
  int stride = 7;        // patch stride; stride < patch gives overlapping patches
  int enc_width = 64;    // C of the encoder
  int enc_layers = 2;
  int enc_heads = 4;
  // --- text decoder ---
  int dec_width = 64;
  int dec_layers = 2;
  int dec_heads = 4;
  int mlp_ratio = 4;     // MLP hidden = mlp_ratio * width
  // --- structural pruning (prune.h); empty = every block keeps the full size ---
  // Heads kept in each block (head width stays width / heads) and MLP hidden channels of each block.
  std::vector<int> enc_block_heads, dec_block_heads;  // (enc_layers,), (dec_layers,) or empty
  std::vector<int> enc_block_mlp, dec_block_mlp;      // (enc_layers,), (dec_layers,) or empty
  int vocab_size = 0;    // set from the tokenizer
  int max_text_len = 24; // prompt + answer tokens
  // --- spiking-friendly activation (QCFS) ---
  int act_levels = 8;            // L of a = λ·clip(floor(z·L/λ + 1/2)/L, 0, 1); 0 = plain clipped ReLU
  float act_init_lambda = 4.0f;  // initial clip λ of every activation
  // Per-quantizer levels (level_allocation.h): module path of a QCFS quantizer (e.g.
  // "dec_blocks.1.mlp.act", "enc_blocks.0.q_ln1") → its L, overriding act_levels there. Empty = every
  // quantizer at act_levels. Stored as the attribute site_levels only when set.
  std::map<std::string, int> site_levels;
  // --- QANN: the model the spiking network reproduces exactly ---
  // qann = true adds L-level quantizers (L = act_levels) at every input of a linear layer, of the
  // attention products and after softmax: signed after LayerNorm, q/k/v and the attention output,
  // unsigned after softmax and in the MLP. weight_bits = 8 quantizes every linear weight to int8 with
  // one scale per output channel (0 = float weights).
  bool qann = false;
  int weight_bits = 0;
  // --- text-only mode (code generation) ---
  // No encoder and no projector: the decoder runs on text alone (the encoder fields are ignored and
  // no encoder parameters exist). Stored as the attribute text_only = 1 only when set.
  bool text_only = false;

  static MfmConfig preset(const std::string& name);  // "small" | "large"; other names throw

  // Per block, pruning applied: heads (H_b), head width (d = width / heads), MLP hidden channels.
  int block_heads(bool encoder, int block) const;
  int head_dim(bool encoder) const { return encoder ? enc_width / enc_heads : dec_width / dec_heads; }
  int block_mlp(bool encoder, int block) const;
  bool pruned() const {
    return !enc_block_heads.empty() || !dec_block_heads.empty() || !enc_block_mlp.empty() || !dec_block_mlp.empty();
  }

  // Decoder positions taken by the image prefix: num_patches(), or 0 in text-only mode.
  int prefix_len() const { return text_only ? 0 : num_patches(); }
  int patches_per_side() const { return (image_size - patch) / stride + 1; }
  int num_patches() const { return patches_per_side() * patches_per_side(); }
  int patch_dim() const { return patch * patch; }
  // The most levels any quantizer has (act_levels, or a larger per-site value).
  int max_levels() const;

  // Throws spikefm::Error naming the field and the rule it breaks.
  void validate() const;

  // Attributes of `group` in an HDF5 file (see docs/formats.md).
  void write(H5File& file, const std::string& group) const;
  static MfmConfig read(const H5File& file, const std::string& group);
};

}  // namespace spikefm
