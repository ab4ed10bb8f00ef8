// LoRA: low-rank adaptation of the MFM's linear layers (Hu et al., "LoRA: Low-Rank Adaptation of
// Large Language Models", ICLR 2022, arXiv:2106.09685).
//
// Each adapted layer y = x Wᵀ + b becomes
//     y = x Wᵀ + b + s · (x Aᵀ) Bᵀ,     s = alpha / r
// with A (r, in) drawn small and random (Kaiming-uniform, bound 1/sqrt(in), as the paper's reference
// code does) and B (out, r) = 0, so training starts from the unchanged model. The base weights are
// frozen (requires_grad off); only A and B are trained. merge() folds the update into the weights,
//     W' = W + s · B A,
// and detaches the adapters: the model is then an ordinary MFM, saved as a plain checkpoint.
//
// Adapted layers: in every encoder and decoder block, the attention qkv and output projection and the
// MLP fc1 and fc2 (QLinear, mfm.h) — 4 per block. The patch embedding, projector, token embedding
// and LM head are not adapted (finetune.h says what else it trains).
//
//   parameter  meaning                             default  rule
//   rank r     inner dimension of B A              8        1 <= r <= min(in, out) of every layer
//   alpha      scale numerator (s = alpha / r)     16       finite, > 0
//
// Per layer the adapter adds r · (in + out) parameters. Float weights only: a QANN layer
// (weight_bits = 8) fake-quantizes W but not B A, so merging would change its outputs; the adapter
// refuses it.
#pragma once

#include <string>
#include <vector>

#include "ann_ref/mfm.h"

namespace spikefm {

struct LoraParams {
  int rank = 8;
  double alpha = 16;
  void validate() const;  // names the parameter and the rule
};

class LoraAdapters {
 public:
  // Attaches an adapter to every qkv/proj/fc1/fc2 layer of `model` and freezes every model parameter.
  LoraAdapters(Mfm& model, const LoraParams& params);
  ~LoraAdapters();  // detaches the adapters if merge() was not called (the model keeps W unchanged)
  LoraAdapters(const LoraAdapters&) = delete;
  LoraAdapters& operator=(const LoraAdapters&) = delete;

  struct Layer {
    std::string name;  // the QLinear's parameter prefix, e.g. "dec_blocks.0.attn.qkv"
    QLinear linear{nullptr};
    torch::Tensor a, b;  // a: (r, in), b: (out, r); both require grad
  };
  const std::vector<Layer>& layers() const { return layers_; }
  std::vector<Layer>& layers() { return layers_; }
  std::vector<torch::Tensor> parameters() const;  // A and B of every layer
  int64_t parameter_count() const;
  double scale() const { return scale_; }

  // W += s · B A for every layer, detaches the adapters and makes every model parameter trainable
  // again. Afterwards the model computes what the adapted model computed (up to float rounding).
  void merge();

 private:
  void detach();
  Mfm model_;
  std::vector<Layer> layers_;
  double scale_;
  bool attached_ = false;
};

}  // namespace spikefm
