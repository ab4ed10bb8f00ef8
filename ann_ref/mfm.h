// The reference MFM in libtorch: ViT encoder → linear projector → pre-LN causal text decoder with the
// image tokens as a prefix (LLaVA-style), plus a KV cache for generation. Internal to ann_ref/ and
// convert/ (includes libtorch); other modules use the torch-free facades (trainer.h, evaluator.h,
// ann_token_model.h).
//
// Shapes: images (B, image_size, image_size) in [0, 1]; P = num_patches image tokens; T text tokens;
// C width; V vocabulary.
//
// Block (pre-LN, both stacks):  x = x + Attn(LN1(x));  x = x + W2 · QCFS(W1 · LN2(x) + b1) + b2
// Attention: qkv = W_qkv x + b; per head softmax(q kᵀ / sqrt(C/H) + causal mask) v; out = W_o · (...) + b.
#pragma once

#include <torch/torch.h>

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

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int width, int heads, bool causal);
  // x: (B, t, C). With a cache of layer `layer`, keys/values of x are appended to it and the queries
  // attend to everything cached (causal offset = cached length).
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, int layer = 0);

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int heads;
  bool causal;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int width, int hidden, int levels, float init_lambda);
  torch::Tensor forward(const torch::Tensor& x);  // (B, t, C) → (B, t, C)
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  Qcfs act{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int width, int heads, int mlp_ratio, bool causal, int levels, float init_lambda);
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, int layer = 0);
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

class MfmImpl : public torch::nn::Module {
 public:
  explicit MfmImpl(const MfmConfig& config);

  // images (B, S, S) → image tokens in decoder width (B, P, C_dec).
  torch::Tensor image_prefix(const torch::Tensor& images);
  // Patches (B, P, patch*patch) of images (B, S, S).
  torch::Tensor patchify(const torch::Tensor& images) const;

  // Decoder pass over text tokens (B, t) → logits (B, t, V).
  // Without cache: prefix (B, P, C) is required and the whole sequence [prefix, tokens] is computed.
  // With cache: if cache->len == 0 the prefix is fed first and cached; later calls feed only new
  // tokens (prefix ignored).
  torch::Tensor decode(const torch::Tensor& prefix, const torch::Tensor& tokens, KVCache* cache = nullptr);

  // Runs the image prefix (B, P, C_dec) through the decoder into an empty cache (cache.len becomes P),
  // so several prompts can share it: copies of a KVCache share the cached tensors safely.
  void prime(const torch::Tensor& prefix, KVCache& cache);

  // Full teacher-forced forward: images (B, S, S), tokens (B, T) → logits (B, T, V).
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& tokens);

  const MfmConfig& config() const { return cfg_; }
  int64_t parameter_count() const;

  torch::nn::Linear patch_embed{nullptr};
  torch::Tensor enc_pos;  // (P, C_enc)
  torch::nn::ModuleList enc_blocks{nullptr};
  torch::nn::LayerNorm enc_ln{nullptr};
  torch::nn::Linear projector{nullptr};
  torch::nn::Embedding tok_embed{nullptr};
  torch::Tensor dec_pos;  // (max_text_len, C_dec), text positions only
  torch::nn::ModuleList dec_blocks{nullptr};
  torch::nn::LayerNorm dec_ln{nullptr};
  torch::nn::Linear lm_head{nullptr};

 private:
  MfmConfig cfg_;
};
TORCH_MODULE(Mfm);

}  // namespace spikefm
