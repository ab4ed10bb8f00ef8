#include "ann_ref/qann.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "common/dense_kernels.h"
#include "common/error.h"

namespace spikefm {

QannRef::QannRef(Mfm model, const QuantStore& quant) : model_(std::move(model)) {
  const MfmConfig& c = model_->config();
  if (!c.qann || c.weight_bits != 8 || c.act_levels < 1) {
    throw Error("building the integer QANN", "the model is not QANN-configured (qann = " + std::to_string(c.qann) +
                                                 ", weight_bits = " + std::to_string(c.weight_bits) + ")",
                "fine-tune it with `spikefm train --init M.h5 --qann`");
  }
  torch::NoGradGuard ng;
  size_t used = 0;
  for (auto& item : model_->named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    auto* l = dynamic_cast<QLinearImpl*>(item.value().get());
    if (l == nullptr) continue;
    IntLinear w;
    auto stored = quant.layers.find(item.key());
    if (stored == quant.layers.end()) {
      std::tie(w.q, w.s) = quantize_weight_int8(l->weight);
      w.s = w.s.unsqueeze(1);
    } else {
      const QuantizedMatrix& qm = stored->second;
      if (qm.rows != l->weight.size(0) || qm.cols != l->weight.size(1)) {
        throw Error("building the integer QANN", "stored codes of " + item.key() + " do not match its weight shape");
      }
      std::vector<int8_t> codes = unpack_codes(qm.packed, qm.rows, qm.cols, qm.spec.bits);
      std::vector<float> scales = qm.scales;
      w.q = torch::from_blob(codes.data(), {qm.rows, qm.cols}, torch::kInt8).to(torch::kFloat32);
      w.s = torch::from_blob(scales.data(), {qm.rows, qm.groups_per_row()}, torch::kFloat32).clone();
      w.group = qm.groups_per_row() == 1 ? 0 : qm.group_size();
      w.bits = qm.spec.bits;
      ++used;
    }
    weights_[l] = w;
  }
  if (used != quant.layers.size()) {
    throw Error("building the integer QANN", std::to_string(quant.layers.size() - used) + " stored layers are not in the model");
  }
}

const IntLinear& QannRef::weights(const QLinear& layer) const { return weights_.at(layer.get()); }

torch::Tensor QannRef::counts(const Qcfs& q, const torch::Tensor& x) { return q->counts(x); }

torch::Tensor QannRef::pixel_counts(const torch::Tensor& images) { return torch::round(images * 255.0f); }

torch::Tensor QannRef::layer_norm(const torch::nn::LayerNorm& ln, const torch::Tensor& x) {
  torch::Tensor in = x.contiguous();
  torch::Tensor out = torch::empty_like(in);
  const int64_t C = in.size(-1);
  torch::Tensor g = ln->weight.detach().contiguous(), b = ln->bias.detach().contiguous();
  dense::layer_norm_rows(in.data_ptr<float>(), out.data_ptr<float>(), in.numel() / C, C, g.data_ptr<float>(),
                         b.data_ptr<float>(), static_cast<float>(ln->options.eps()));
  return out;
}

torch::Tensor QannRef::linear(const torch::Tensor& n, float theta_in, const QLinear& layer) const {
  const IntLinear& w = weights(layer);
  torch::Tensor scale = w.s * theta_in;  // (out, groups): θ_in · s in float32
  if (w.group == 0) return torch::matmul(n, w.q.t()) * scale.select(1, 0) + layer->bias.detach();  // exact integers
  const int64_t in = w.q.size(1);
  torch::Tensor y;
  for (int64_t g = 0, c0 = 0; c0 < in; ++g, c0 += w.group) {
    const int64_t len = std::min<int64_t>(w.group, in - c0);
    torch::Tensor term = torch::matmul(n.narrow(-1, c0, len), w.q.narrow(1, c0, len).t()) * scale.select(1, g);
    y = g == 0 ? term : y + term;
  }
  return y + layer->bias.detach();
}

torch::Tensor QannRef::block(Block& b, const torch::Tensor& x, QannCache* cache, int layer) {
  auto& at = b->attn;
  const int64_t B = x.size(0), t = x.size(1), H = at->heads, d = at->head_dim, C = H * d;
  // --- attention ---
  torch::Tensor n_a = counts(b->q_ln1, layer_norm(b->ln1, x));
  torch::Tensor qkv = linear(n_a, b->q_ln1->theta(), at->qkv).view({B, t, 3, H, d}).permute({2, 0, 3, 1, 4});
  torch::Tensor n_q = counts(at->q_q, qkv[0]), n_k = counts(at->q_k, qkv[1]), n_v = counts(at->q_v, qkv[2]);
  int64_t past = 0;
  if (cache) {
    past = cache->len;
    if (static_cast<int>(cache->nk.size()) <= layer) {
      cache->nk.resize(layer + 1);
      cache->nv.resize(layer + 1);
    }
    if (cache->nk[layer].defined()) {
      n_k = torch::cat({cache->nk[layer], n_k}, 2);
      n_v = torch::cat({cache->nv[layer], n_v}, 2);
    }
    cache->nk[layer] = n_k;
    cache->nv[layer] = n_v;
  }
  const int64_t keys = past + t;
  const float inv_sqrt_d = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const float score_scale = (at->q_q->theta() * at->q_k->theta()) * inv_sqrt_d;
  torch::Tensor scores = (torch::matmul(n_q, n_k.transpose(-2, -1)) * score_scale).contiguous();  // (B, H, t, keys)
  torch::Tensor probs = torch::empty_like(scores);
  const float* sp = scores.data_ptr<float>();
  float* pp = probs.data_ptr<float>();
  for (int64_t row = 0; row < B * H * t; ++row) {
    const int64_t i = row % t;
    const int64_t valid = at->causal ? past + i + 1 : keys;
    dense::softmax_row(sp + row * keys, pp + row * keys, valid, keys);
  }
  torch::Tensor n_p = counts(at->q_p, probs);
  const float av_scale = at->q_p->theta() * at->q_v->theta();
  torch::Tensor o = (torch::matmul(n_p, n_v) * av_scale).transpose(1, 2).reshape({B, t, C});  // (B, t, C)
  torch::Tensor n_o = counts(at->q_o, o);
  torch::Tensor h = x + linear(n_o, at->q_o->theta(), at->proj);
  // --- MLP ---
  torch::Tensor n_m = counts(b->q_ln2, layer_norm(b->ln2, h));
  torch::Tensor f1 = linear(n_m, b->q_ln2->theta(), b->mlp->fc1);
  torch::Tensor n_f = counts(b->mlp->act, f1);
  return h + linear(n_f, b->mlp->act->theta(), b->mlp->fc2);
}

torch::Tensor QannRef::image_prefix(const torch::Tensor& images) {
  torch::NoGradGuard ng;
  auto& m = model_;
  torch::Tensor n_pix = m->patchify(pixel_counts(images));  // (B, P, patch²), 0..255
  torch::Tensor x = linear(n_pix, kPixelTheta, m->patch_embed) + m->enc_pos.detach();
  for (const auto& mod : *m->enc_blocks) {
    Block b(std::dynamic_pointer_cast<BlockImpl>(mod));
    x = block(b, x, nullptr, 0);
  }
  torch::Tensor n_e = counts(m->q_enc, layer_norm(m->enc_ln, x));
  return linear(n_e, m->q_enc->theta(), m->projector);
}

torch::Tensor QannRef::run_decoder(torch::Tensor x, QannCache& cache) {
  int layer = 0;
  for (const auto& mod : *model_->dec_blocks) {
    Block b(std::dynamic_pointer_cast<BlockImpl>(mod));
    x = block(b, x, &cache, layer++);
  }
  cache.len += x.size(1);
  return x;
}

void QannRef::prime(const torch::Tensor& prefix, QannCache& cache) {
  torch::NoGradGuard ng;
  if (cache.len != 0) throw Error("priming the QANN cache", "the cache is not empty");
  run_decoder(prefix, cache);
}

torch::Tensor QannRef::decode(const torch::Tensor& tokens, QannCache& cache) {
  torch::NoGradGuard ng;
  auto& m = model_;
  const int64_t P = m->config().num_patches(), t = tokens.size(1), offset = cache.len - P;
  if (offset < 0) throw Error("QANN decode", "prime the cache with the image prefix first");
  if (offset + t > m->config().max_text_len) {
    throw Error("QANN decode", "text of " + std::to_string(offset + t) + " tokens exceeds max_text_len " +
                                   std::to_string(m->config().max_text_len));
  }
  torch::Tensor x = m->tok_embed->weight.detach().index_select(0, tokens.reshape({-1})).view({tokens.size(0), t, -1}) +
                    m->dec_pos.detach().narrow(0, offset, t);
  x = run_decoder(x, cache);
  torch::Tensor n_d = counts(m->q_dec, layer_norm(m->dec_ln, x));
  return linear(n_d, m->q_dec->theta(), m->lm_head);
}

torch::Tensor QannRef::forward(const torch::Tensor& images, const torch::Tensor& tokens) {
  QannCache cache;
  prime(image_prefix(images), cache);
  return decode(tokens, cache);
}

}  // namespace spikefm
