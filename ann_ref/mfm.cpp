#include "ann_ref/mfm.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "common/error.h"

namespace spikefm {

namespace F = torch::nn::functional;

void KVCache::truncate(int64_t new_len) {
  if (new_len < 0 || new_len > len) throw Error("KV cache", "cannot truncate to " + std::to_string(new_len));
  for (auto& t : k) t = t.narrow(2, 0, new_len);
  for (auto& t : v) t = t.narrow(2, 0, new_len);
  len = new_len;
}

std::pair<torch::Tensor, torch::Tensor> quantize_weight_int8(const torch::Tensor& w) {
  torch::Tensor s = w.detach().abs().amax(1) / 127.0;  // (out)
  s = torch::where(s > 0, s, torch::ones_like(s));
  torch::Tensor q = torch::clamp(torch::round(w.detach() / s.unsqueeze(1)), -127.0, 127.0);
  return {q, s};
}

QLinearImpl::QLinearImpl(int in, int out, int bits_) : bits(bits_) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // torch::nn::Linear's default init
  weight = register_parameter("weight", torch::empty({out, in}).uniform_(-bound, bound));
  bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
}

torch::Tensor QLinearImpl::forward(const torch::Tensor& x) {
  if (record) record->push_back(x.detach().reshape({-1, x.size(-1)}).contiguous());
  torch::Tensor w = weight;
  if (bits == 8) {
    auto [q, s] = quantize_weight_int8(weight);
    w = weight + (q * s.unsqueeze(1) - weight).detach();
  }
  if (weight_quant) w = weight + (weight_quant(weight.detach()) - weight).detach();
  if (adapter) return torch::nn::functional::linear(x, w, bias) + adapter(x);
  return torch::nn::functional::linear(x, w, bias);
}

namespace {
Qcfs make_quantizer(const MfmConfig& c, bool is_signed, float init_lambda) {
  return Qcfs(c.act_levels, init_lambda, is_signed);
}
}  // namespace

AttentionImpl::AttentionImpl(int width, int heads_, int head_dim_, bool causal_, const MfmConfig& c)
    : heads(heads_), head_dim(head_dim_), causal(causal_) {
  const int inner = heads * head_dim;  // = width unless heads were pruned
  qkv = register_module("qkv", QLinear(width, 3 * inner, c.weight_bits));
  proj = register_module("proj", QLinear(inner, width, c.weight_bits));
  if (c.qann) {
    q_q = register_module("q_q", make_quantizer(c, true, c.act_init_lambda));
    q_k = register_module("q_k", make_quantizer(c, true, c.act_init_lambda));
    q_v = register_module("q_v", make_quantizer(c, true, c.act_init_lambda));
    q_p = register_module("q_p", make_quantizer(c, false, 1.0f));
    q_o = register_module("q_o", make_quantizer(c, true, c.act_init_lambda));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, KVCache* cache, int layer) {
  const int64_t B = x.size(0), t = x.size(1), hd = head_dim, C = heads * hd;
  // qkv: (B, t, 3·H·hd) → q, k, v: (B, H, t, hd)
  auto parts = qkv->forward(x).view({B, t, 3, heads, hd}).permute({2, 0, 3, 1, 4}).unbind(0);
  torch::Tensor q = parts[0], k = parts[1], v = parts[2];
  if (q_q) {
    q = q_q->forward(q);
    k = q_k->forward(k);
    v = q_v->forward(v);
  }
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
  if (q_p) att = q_p->forward(att);
  torch::Tensor y = torch::matmul(att, v).transpose(1, 2).reshape({B, t, C});  // (B, t, C)
  if (q_o) y = q_o->forward(y);
  return proj->forward(y);
}

MlpImpl::MlpImpl(int width, int hidden, const MfmConfig& c) {
  fc1 = register_module("fc1", QLinear(width, hidden, c.weight_bits));
  act = register_module("act", Qcfs(c.act_levels, c.act_init_lambda));
  fc2 = register_module("fc2", QLinear(hidden, width, c.weight_bits));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2->forward(act->forward(fc1->forward(x))); }

BlockImpl::BlockImpl(int width, bool causal, int index, const MfmConfig& c) {
  const bool enc = !causal;
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  attn = register_module("attn", Attention(width, c.block_heads(enc, index), c.head_dim(enc), causal, c));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  mlp = register_module("mlp", Mlp(width, c.block_mlp(enc, index), c));
  if (c.qann) {
    q_ln1 = register_module("q_ln1", make_quantizer(c, true, c.act_init_lambda));
    q_ln2 = register_module("q_ln2", make_quantizer(c, true, c.act_init_lambda));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, KVCache* cache, int layer) {
  torch::Tensor a = ln1->forward(x);
  if (q_ln1) a = q_ln1->forward(a);
  torch::Tensor h = x + attn->forward(a, cache, layer);
  torch::Tensor m = ln2->forward(h);
  if (q_ln2) m = q_ln2->forward(m);
  return h + mlp->forward(m);
}

MfmImpl::MfmImpl(const MfmConfig& config) : cfg_(config) {
  cfg_.validate();
  const auto& c = cfg_;
  // Text-only mode: no encoder or projector (enc_blocks stays an empty list). Registration order is
  // unchanged for image models.
  if (!c.text_only) {
    patch_embed = register_module("patch_embed", QLinear(c.patch_dim(), c.enc_width, c.weight_bits));
    enc_pos = register_parameter("enc_pos", torch::randn({c.num_patches(), c.enc_width}) * 0.02);
  }
  enc_blocks = register_module("enc_blocks", torch::nn::ModuleList());
  if (!c.text_only) {
    for (int i = 0; i < c.enc_layers; ++i) {
      enc_blocks->push_back(Block(c.enc_width, false, i, c));
    }
    enc_ln = register_module("enc_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.enc_width})));
    if (c.qann) q_enc = register_module("q_enc", make_quantizer(c, true, c.act_init_lambda));
    projector = register_module("projector", QLinear(c.enc_width, c.dec_width, c.weight_bits));
  }
  tok_embed = register_module("tok_embed", torch::nn::Embedding(c.vocab_size, c.dec_width));
  tok_embed->weight.data().normal_(0.0, 0.02);
  dec_pos = register_parameter("dec_pos", torch::randn({c.max_text_len, c.dec_width}) * 0.02);
  dec_blocks = register_module("dec_blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.dec_layers; ++i) {
    dec_blocks->push_back(Block(c.dec_width, true, i, c));
  }
  dec_ln = register_module("dec_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dec_width})));
  if (c.qann) q_dec = register_module("q_dec", make_quantizer(c, true, c.act_init_lambda));
  lm_head = register_module("lm_head", QLinear(c.dec_width, c.vocab_size, c.weight_bits));
  if (!c.site_levels.empty()) set_site_levels(std::map<std::string, int>(c.site_levels));
}

std::vector<std::pair<std::string, Qcfs>> MfmImpl::named_quantizers() {
  std::vector<std::pair<std::string, Qcfs>> out;
  for (const auto& item : named_modules("", false)) {
    if (auto q = std::dynamic_pointer_cast<QcfsImpl>(item.value())) out.emplace_back(item.key(), Qcfs(q));
  }
  return out;
}

void MfmImpl::set_site_levels(const std::map<std::string, int>& levels) {
  auto sites = named_quantizers();
  for (const auto& [site, L] : levels) {
    auto it = std::find_if(sites.begin(), sites.end(), [&](const auto& s) { return s.first == site; });
    if (it == sites.end()) {
      throw Error("activation levels", "this model has no activation quantizer '" + site + "'",
                  "name a QCFS module path such as dec_blocks.0.mlp.act");
    }
    if (L < 1 || L > 255) throw Error("activation levels of " + site, "must be in [1, 255] (got " + std::to_string(L) + ")");
    it->second->set_levels(L);
    if (L == cfg_.act_levels) {
      cfg_.site_levels.erase(site);
    } else {
      cfg_.site_levels[site] = L;
    }
  }
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
  if (cfg_.text_only) throw Error("image prefix", "this model is text-only (it has no vision encoder)");
  torch::Tensor x = patch_embed->forward(patchify(images)) + enc_pos;  // (B, P, C_enc)
  for (const auto& m : *enc_blocks) {
    torch::Tensor y = m->as<BlockImpl>()->forward(x);
    if (block_io) block_io->emplace_back(x, y);
    x = y;
  }
  x = enc_ln->forward(x);
  if (q_enc) x = q_enc->forward(x);
  return projector->forward(x);  // (B, P, C_dec)
}

torch::Tensor MfmImpl::decode(const torch::Tensor& prefix, const torch::Tensor& tokens, KVCache* cache) {
  const int64_t P = cfg_.prefix_len(), t = tokens.size(1);
  int64_t text_offset = 0;
  bool feed_prefix = !cfg_.text_only;  // text-only: no prefix, positions start at the first token
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
    torch::Tensor y = m->as<BlockImpl>()->forward(x, cache, layer);
    if (block_io) block_io->emplace_back(x, y);
    x = y;
    ++layer;
  }
  if (cache) cache->len += x.size(1);
  if (feed_prefix) x = x.narrow(1, P, t);
  x = dec_ln->forward(x);
  if (q_dec) x = q_dec->forward(x);
  return lm_head->forward(x);  // (B, t, V)
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

std::vector<Qcfs> MfmImpl::quantizers() {
  std::vector<Qcfs> out;
  auto block = [&](Block& b) {
    for (Qcfs q : {b->q_ln1, b->attn->q_q, b->attn->q_k, b->attn->q_v, b->attn->q_p, b->attn->q_o, b->q_ln2,
                   b->mlp->act}) {
      if (q) out.push_back(q);
    }
  };
  for (const auto& m : *enc_blocks) {
    Block b(std::dynamic_pointer_cast<BlockImpl>(m));
    block(b);
  }
  if (q_enc) out.push_back(q_enc);
  for (const auto& m : *dec_blocks) {
    Block b(std::dynamic_pointer_cast<BlockImpl>(m));
    block(b);
  }
  if (q_dec) out.push_back(q_dec);
  return out;
}

int64_t MfmImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace spikefm
