// The reference MFM in libtorch: ViT encoder → linear projector → pre-LN causal text decoder with the
// image tokens as a prefix (LLaVA-style), plus a KV cache for generation. Internal to ann_ref/ and
// convert/ (includes libtorch); other modules use the torch-free facades (trainer.h, evaluator.h,
// ann_token_model.h).
//
// Shapes: images (B, image_size, image_size) in [0, 1]; P = num_patches image tokens; T text tokens;
// C width; V vocabulary.
//
// Block (pre-LN, both stacks):  x = x + Attn(LN1(x));  x = x + W2 · QCFS(W1 · LN2(x) + b1) + b2
// Attention: qkv = W_qkv x + b; per head softmax(q kᵀ / sqrt(d) + causal mask) v; out = W_o · (...) + b,
// head width d = C / H of the unpruned model; a head-pruned block keeps H_b ≤ H heads (qkv: (3·H_b·d, C)).
//
// With config.qann, quantizers Q (qcfs.h) sit at every input of a linear layer or product:
//   Block:     x = x + Attn(Q_ln1(LN1(x)));  x = x + W2 · Q_mlp(W1 · Q_ln2(LN2(x)) + b1) + b2
//   Attention: q, k, v = Q_q, Q_k, Q_v of the qkv split;  p = Q_p(softmax(q kᵀ/√(C/H) + mask));
//              out = W_o · Q_o(p v) + b
//   Ends:      prefix = W_proj · Q_enc(LN_enc(x)) + b;   logits = W_head · Q_dec(LN_dec(x)) + b
// and weight_bits = 8 fake-quantizes every weight to int8 per output channel (QLinear). qann.h
// evaluates the same model in integer form: the exact reference of the spiking network.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ann_ref/model_config.h"
#include "ann_ref/qcfs.h"

namespace spikefm {

// Keys and values of every decoder layer for the tokens seen so far.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer: (B, H, len, C/H)
  int64_t len = 0;                  // tokens cached (image prefix + text)
  void clear() { k.clear(); v.clear(); len = 0; }
  void truncate(int64_t new_len);   // drop everything after the first new_len tokens
};

// Symmetric int8 weight quantization, one scale per output row: s_o = max_i |W_oi| / 127 (1 for a zero
// row), q = clip(round(W / s), −127, 127). Returns q (out, in) as integer-valued float and s (out).
std::pair<torch::Tensor, torch::Tensor> quantize_weight_int8(const torch::Tensor& w);

// y = x Wᵀ + b with W fake-quantized to int8 (straight-through gradient) when bits = 8.
// Parameter names match torch::nn::Linear ("weight" (out, in), "bias" (out)).
class QLinearImpl : public torch::nn::Module {
 public:
  QLinearImpl(int in, int out, int bits);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int bits;
  // Calibration (compress.h): when set, forward() appends its input rows (n, in) here.
  std::vector<torch::Tensor>* record = nullptr;
  // Low-rank adapter (lora.h): when set, forward() adds adapter(x) (…, out) to x Wᵀ + b.
  std::function<torch::Tensor(const torch::Tensor&)> adapter;
  // Quantization-aware training (compress.h, --qat-epochs): when set, forward() uses
  // weight_quant(W) (the fake-quantized weight, same shape) with a straight-through gradient to W.
  std::function<torch::Tensor(const torch::Tensor&)> weight_quant;
};
TORCH_MODULE(QLinear);

class AttentionImpl : public torch::nn::Module {
 public:
  // heads × head_dim may be less than width after head pruning (prune.h).
  AttentionImpl(int width, int heads, int head_dim, bool causal, const MfmConfig& cfg);
  // x: (B, t, C). With a cache of layer `layer`, keys/values of x are appended to it and the queries
  // attend to everything cached (causal offset = cached length).
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, int layer = 0);

  QLinear qkv{nullptr}, proj{nullptr};
  Qcfs q_q{nullptr}, q_k{nullptr}, q_v{nullptr}, q_p{nullptr}, q_o{nullptr};  // qann only
  int heads, head_dim;
  bool causal;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int width, int hidden, const MfmConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // (B, t, C) → (B, t, C)
  QLinear fc1{nullptr}, fc2{nullptr};
  Qcfs act{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  // Block `index` of the encoder (causal = false) or decoder; its heads and MLP width come from cfg.
  BlockImpl(int width, bool causal, int index, const MfmConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, int layer = 0);
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  Qcfs q_ln1{nullptr}, q_ln2{nullptr};  // qann only
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

class MfmImpl : public torch::nn::Module {
 public:
  explicit MfmImpl(const MfmConfig& config);

  // images (B, S, S) → image tokens in decoder width (B, P, C_dec). Throws for a text-only model,
  // whose encoder modules (patch_embed, enc_pos, enc_ln, projector) are null/undefined.
  torch::Tensor image_prefix(const torch::Tensor& images);
  // Patches (B, P, patch*patch) of images (B, S, S).
  torch::Tensor patchify(const torch::Tensor& images) const;

  // Decoder pass over text tokens (B, t) → logits (B, t, V).
  // Without cache: prefix (B, P, C) is required and the whole sequence [prefix, tokens] is computed.
  // With cache: if cache->len == 0 the prefix is fed first and cached; later calls feed only new
  // tokens (prefix ignored). Text-only models (config.text_only) take no prefix: pass {}.
  torch::Tensor decode(const torch::Tensor& prefix, const torch::Tensor& tokens, KVCache* cache = nullptr);

  // Runs the image prefix (B, P, C_dec) through the decoder into an empty cache (cache.len becomes P),
  // so several prompts can share it: copies of a KVCache share the cached tensors safely.
  void prime(const torch::Tensor& prefix, KVCache& cache);

  // Full teacher-forced forward: images (B, S, S), tokens (B, T) → logits (B, T, V).
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& tokens);

  const MfmConfig& config() const { return cfg_; }
  // Sets each named QCFS quantizer's levels (λ kept) and records them in config().site_levels; a site
  // set back to act_levels is dropped from the record. Throws spikefm::Error naming an unknown site.
  void set_site_levels(const std::map<std::string, int>& levels);
  // Every QCFS quantizer with its module path (e.g. "dec_blocks.0.mlp.act"), in registration order.
  std::vector<std::pair<std::string, Qcfs>> named_quantizers();
  int64_t parameter_count() const;

  // Every quantizer of the model, in a fixed order (for calibration).
  std::vector<Qcfs> quantizers();

  QLinear patch_embed{nullptr};
  torch::Tensor enc_pos;  // (P, C_enc)
  torch::nn::ModuleList enc_blocks{nullptr};
  torch::nn::LayerNorm enc_ln{nullptr};
  Qcfs q_enc{nullptr};  // qann only
  QLinear projector{nullptr};
  torch::nn::Embedding tok_embed{nullptr};
  torch::Tensor dec_pos;  // (max_text_len, C_dec), text positions only
  torch::nn::ModuleList dec_blocks{nullptr};
  torch::nn::LayerNorm dec_ln{nullptr};
  Qcfs q_dec{nullptr};  // qann only
  QLinear lm_head{nullptr};

  // Block influence (prune_plan.h): when set, image_prefix() and decode() append (input, output) of
  // every block they run, each (B, t, C), in the order run (encoder blocks, then decoder blocks).
  std::vector<std::pair<torch::Tensor, torch::Tensor>>* block_io = nullptr;

 private:
  MfmConfig cfg_;
};
TORCH_MODULE(Mfm);

}  // namespace spikefm
