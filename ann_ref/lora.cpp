#include "ann_ref/lora.h"

#include <cmath>

#include "common/error.h"

namespace spikefm {

void LoraParams::validate() const {
  if (rank < 1) throw Error("LoRA", "rank must be >= 1 (got " + std::to_string(rank) + ")", "pass --rank 4, 8 or 16");
  if (!std::isfinite(alpha) || !(alpha > 0)) {
    throw Error("LoRA", "alpha must be finite and > 0 (got " + std::to_string(alpha) + ")", "pass e.g. --alpha 16");
  }
}

LoraAdapters::LoraAdapters(Mfm& model, const LoraParams& p) : model_(model), scale_(p.alpha / p.rank) {
  p.validate();
  if (model->config().weight_bits != 0) {
    throw Error("LoRA", "the model has int8 fake-quantized weights (a QANN); merged adapters would change its outputs",
                "adapt the float model, then make the QANN with spikefm train --init M.h5 --qann");
  }
  auto add = [&](const std::string& name, QLinear& l) {
    const int64_t out = l->weight.size(0), in = l->weight.size(1);
    if (p.rank > std::min(in, out)) {
      throw Error("LoRA", "rank must be <= min(in, out) = " + std::to_string(std::min(in, out)) + " of layer " + name +
                              " (got " + std::to_string(p.rank) + ")",
                  "pass a smaller --rank");
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Layer L;
    L.name = name;
    L.linear = l;
    L.a = torch::empty({p.rank, in}).uniform_(-bound, bound).set_requires_grad(true);  // (r, in)
    L.b = torch::zeros({out, p.rank}).set_requires_grad(true);                         // (out, r)
    layers_.push_back(L);
  };
  auto blocks = [&](torch::nn::ModuleList& list, const std::string& prefix) {
    for (size_t i = 0; i < list->size(); ++i) {
      auto blk = (*list)[i]->as<BlockImpl>();
      const std::string n = prefix + "." + std::to_string(i);
      add(n + ".attn.qkv", blk->attn->qkv);
      add(n + ".attn.proj", blk->attn->proj);
      add(n + ".mlp.fc1", blk->mlp->fc1);
      add(n + ".mlp.fc2", blk->mlp->fc2);
    }
  };
  if (model->enc_blocks) blocks(model->enc_blocks, "enc_blocks");
  blocks(model->dec_blocks, "dec_blocks");
  for (auto& t : model->parameters()) t.set_requires_grad(false);
  const double s = scale_;
  for (auto& L : layers_) {
    torch::Tensor a = L.a, b = L.b;
    // x: (..., in) → (..., r) → (..., out)
    L.linear->adapter = [a, b, s](const torch::Tensor& x) {
      return torch::nn::functional::linear(torch::nn::functional::linear(x, a), b) * s;
    };
  }
  attached_ = true;
}

LoraAdapters::~LoraAdapters() {
  if (attached_) detach();
}

void LoraAdapters::detach() {
  for (auto& L : layers_) L.linear->adapter = nullptr;
  for (auto& t : model_->parameters()) t.set_requires_grad(true);
  attached_ = false;
}

std::vector<torch::Tensor> LoraAdapters::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& L : layers_) {
    out.push_back(L.a);
    out.push_back(L.b);
  }
  return out;
}

int64_t LoraAdapters::parameter_count() const {
  int64_t n = 0;
  for (const auto& L : layers_) n += L.a.numel() + L.b.numel();
  return n;
}

void LoraAdapters::merge() {
  if (!attached_) throw Error("LoRA", "the adapters were already merged");
  torch::NoGradGuard ng;
  for (auto& L : layers_) L.linear->weight.add_(torch::matmul(L.b, L.a) * scale_);  // (out, r)(r, in)
  detach();
}

}  // namespace spikefm
