#include "ann_ref/mfm.h"

#include <cmath>

#include "common/error.h"

namespace spikefm {

namespace F = torch::nn::functional;

void KVCache::truncate(int64_t new_len) {
  if (new_len < 0 || new_len > len) throw Error("KV cache", "cannot truncate to " + std::to_string(new_len));
  for (auto& t : k) t = t.narrow(2, 0, new_len);
  for (auto& t : v) t = t.narrow(2, 0, new_len);
  len = new_len;
}

AttentionImpl::AttentionImpl(int width, int heads_, bool causal_) : heads(heads_), causal(causal_) {
  qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  proj = register_module("proj", torch::nn::Linear(width, width));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, KVCache* cache, int layer) {
  const int64_t B = x.size(0), t = x.size(1), C = x.size(2), hd = C / heads;
  // qkv: (B, t, 3C) → q, k, v: (B, H, t, hd)
  auto parts = qkv->forward(x).view({B, t, 3, heads, hd}).permute({2, 0, 3, 1, 4}).unbind(0);
  torch::Tensor q = parts[0], k = parts[1], v = parts[2];
  int64_t past = 0;
  if (cache) {
    past = cache->len;
    if (static_cast<int>(cache->k.size()) <= layer) {
      cache->k.resize(layer + 1);
      cache->v.resize(layer + 1);
    }
    if (cache->k[layer].defined()) {
      k = torch::cat({cache->k[layer], k}, 2);
      v = torch::cat({cache->v[layer], v}, 2);
    }
    cache->k[layer] = k;
    cache->v[layer] = v;
  }
  // att: (B, H, t, past + t)
  torch::Tensor att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(hd)));
  if (causal && t > 1) {
    // query i (absolute past + i) sees key j iff j <= past + i
    auto mask = torch::ones({t, past + t}, torch::kBool).triu(past + 1);
    att = att.masked_fill(mask, -std::numeric_limits<float>::infinity());
  }
  att = torch::softmax(att, -1);
  torch::Tensor y = torch::matmul(att, v).transpose(1, 2).reshape({B, t, C});  // (B, t, C)
  return proj->forward(y);
}

MlpImpl::MlpImpl(int width, int hidden, int levels, float init_lambda) {
  fc1 = register_module("fc1", torch::nn::Linear(width, hidden));
  act = register_module("act", Qcfs(levels, init_lambda));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2->forward(act->forward(fc1->forward(x))); }

BlockImpl::BlockImpl(int width, int heads, int mlp_ratio, bool causal, int levels, float init_lambda) {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  attn = register_module("attn", Attention(width, heads, causal));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  mlp = register_module("mlp", Mlp(width, mlp_ratio * width, levels, init_lambda));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, KVCache* cache, int layer) {
  torch::Tensor h = x + attn->forward(ln1->forward(x), cache, layer);
  return h + mlp->forward(ln2->forward(h));
}

MfmImpl::MfmImpl(const MfmConfig& config) : cfg_(config) {
  cfg_.validate();
  const auto& c = cfg_;
  patch_embed = register_module("patch_embed", torch::nn::Linear(c.patch_dim(), c.enc_width));
  enc_pos = register_parameter("enc_pos", torch::randn({c.num_patches(), c.enc_width}) * 0.02);
  enc_blocks = register_module("enc_blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.enc_layers; ++i) {
    enc_blocks->push_back(Block(c.enc_width, c.enc_heads, c.mlp_ratio, false, c.act_levels, c.act_init_lambda));
  }
  enc_ln = register_module("enc_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.enc_width})));
  projector = register_module("projector", torch::nn::Linear(c.enc_width, c.dec_width));
  tok_embed = register_module("tok_embed", torch::nn::Embedding(c.vocab_size, c.dec_width));
  tok_embed->weight.data().normal_(0.0, 0.02);
  dec_pos = register_parameter("dec_pos", torch::randn({c.max_text_len, c.dec_width}) * 0.02);
  dec_blocks = register_module("dec_blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.dec_layers; ++i) {
    dec_blocks->push_back(Block(c.dec_width, c.dec_heads, c.mlp_ratio, true, c.act_levels, c.act_init_lambda));
  }
  dec_ln = register_module("dec_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dec_width})));
  lm_head = register_module("lm_head", torch::nn::Linear(c.dec_width, c.vocab_size));
}

torch::Tensor MfmImpl::patchify(const torch::Tensor& images) const {
  const auto& c = cfg_;
  if (images.dim() != 3 || images.size(1) != c.image_size || images.size(2) != c.image_size) {
    throw Error("image batch", "expected shape (B, " + std::to_string(c.image_size) + ", " +
                                   std::to_string(c.image_size) + ")");
  }
  const int64_t B = images.size(0), n = c.patches_per_side();
  // (B, S, S) → (B, n, n, patch, patch) → (B, P, patch*patch)
  return images.unfold(1, c.patch, c.stride).unfold(2, c.patch, c.stride).reshape({B, n * n, c.patch_dim()});
}

torch::Tensor MfmImpl::image_prefix(const torch::Tensor& images) {
  torch::Tensor x = patch_embed->forward(patchify(images)) + enc_pos;  // (B, P, C_enc)
  for (const auto& m : *enc_blocks) x = m->as<BlockImpl>()->forward(x);
  return projector->forward(enc_ln->forward(x));  // (B, P, C_dec)
}

torch::Tensor MfmImpl::decode(const torch::Tensor& prefix, const torch::Tensor& tokens, KVCache* cache) {
  const int64_t P = cfg_.num_patches(), t = tokens.size(1);
  int64_t text_offset = 0;
  bool feed_prefix = true;
  if (cache && cache->len > 0) {
    text_offset = cache->len - P;
    feed_prefix = false;
  }
  if (text_offset + t > cfg_.max_text_len) {
    throw Error("decoding", "text of " + std::to_string(text_offset + t) + " tokens exceeds max_text_len " +
                                std::to_string(cfg_.max_text_len));
  }
  torch::Tensor x = tok_embed->forward(tokens) + dec_pos.narrow(0, text_offset, t);  // (B, t, C)
  if (feed_prefix) {
    if (!prefix.defined()) throw Error("decoding", "the image prefix is required for a new sequence");
    x = torch::cat({prefix, x}, 1);  // (B, P + t, C)
  }
  int layer = 0;
  for (const auto& m : *dec_blocks) {
    x = m->as<BlockImpl>()->forward(x, cache, layer);
    ++layer;
  }
  if (cache) cache->len += x.size(1);
  if (feed_prefix) x = x.narrow(1, P, t);
  return lm_head->forward(dec_ln->forward(x));  // (B, t, V)
}

void MfmImpl::prime(const torch::Tensor& prefix, KVCache& cache) {
  if (cache.len != 0) throw Error("priming the KV cache", "the cache is not empty");
  torch::Tensor x = prefix;
  int layer = 0;
  for (const auto& m : *dec_blocks) x = m->as<BlockImpl>()->forward(x, &cache, layer++);
  cache.len = prefix.size(1);
}

torch::Tensor MfmImpl::forward(const torch::Tensor& images, const torch::Tensor& tokens) {
  return decode(image_prefix(images), tokens, nullptr);
}

int64_t MfmImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace spikefm
