#include "ann_ref/weight_transfer.h"

#include <map>

#include "common/error.h"

namespace spikefm {

namespace F = torch::nn::functional;

torch::Tensor resize_positions(const torch::Tensor& pos, int old_side, int new_side) {
  const int64_t C = pos.size(1);
  if (pos.size(0) != static_cast<int64_t>(old_side) * old_side) {
    throw Error("resizing position embeddings", "expected " + std::to_string(old_side * old_side) + " rows, got " +
                                                    std::to_string(pos.size(0)));
  }
  // (g·g, C) → (1, C, g, g) → (1, C, g', g') → (g'·g', C)
  torch::Tensor grid = pos.detach().reshape({old_side, old_side, C}).permute({2, 0, 1}).unsqueeze(0);
  torch::Tensor out = F::interpolate(grid, F::InterpolateFuncOptions()
                                               .size(std::vector<int64_t>{new_side, new_side})
                                               .mode(torch::kBilinear)
                                               .align_corners(false));
  return out.squeeze(0).permute({1, 2, 0}).reshape({static_cast<int64_t>(new_side) * new_side, C}).contiguous();
}

torch::Tensor resize_patch_filters(const torch::Tensor& w, int old_patch, int new_patch) {
  const int64_t C = w.size(0);
  // (C, p·p) → (C, 1, p, p) → (C, 1, p', p') → (C, p'·p')
  torch::Tensor f = w.detach().reshape({C, 1, old_patch, old_patch});
  torch::Tensor out = F::interpolate(f, F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{new_patch, new_patch})
                                            .mode(torch::kBilinear)
                                            .align_corners(false));
  const double keep = static_cast<double>(old_patch * old_patch) / (new_patch * new_patch);
  return (out * keep).reshape({C, static_cast<int64_t>(new_patch) * new_patch}).contiguous();
}

TransferReport transfer_weights(Mfm& dst, const std::vector<std::string>& dst_vocab, Mfm& src,
                                const std::vector<std::string>& src_vocab) {
  torch::NoGradGuard ng;
  const MfmConfig &dc = dst->config(), &sc = src->config();
  std::map<std::string, int64_t> src_id;
  for (size_t i = 0; i < src_vocab.size(); ++i) src_id[src_vocab[i]] = static_cast<int64_t>(i);
  // row_src[i] = base row of new word i, or -1
  std::vector<int64_t> row_src(dst_vocab.size(), -1);
  TransferReport rep;
  for (size_t i = 0; i < dst_vocab.size(); ++i) {
    auto it = src_id.find(dst_vocab[i]);
    if (it != src_id.end()) {
      row_src[i] = it->second;
      rep.shared_words++;
    } else {
      rep.new_words++;
      rep.new_word_ids.push_back(static_cast<int64_t>(i));
    }
  }
  auto copy_rows = [&](torch::Tensor& d, const torch::Tensor& s) {
    for (size_t i = 0; i < row_src.size(); ++i) {
      if (row_src[i] >= 0) d[static_cast<int64_t>(i)].copy_(s[row_src[i]]);
    }
  };
  auto sp = src->named_parameters();
  for (auto& item : dst->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& d = item.value();
    const torch::Tensor* s = sp.find(name);
    if (!s) throw Error("initialising from the base model", "the base has no tensor '" + name + "'");
    if (name == "tok_embed.weight" || name == "lm_head.weight" || name == "lm_head.bias") {
      copy_rows(d, *s);
    } else if (d.sizes() == s->sizes() && !(name == "enc_pos" && dc.patches_per_side() != sc.patches_per_side())) {
      d.copy_(*s);
      rep.copied++;
    } else if (name == "enc_pos") {
      d.copy_(resize_positions(*s, sc.patches_per_side(), dc.patches_per_side()));
      rep.resized++;
    } else if (name == "patch_embed.weight" && dc.patch != sc.patch) {
      d.copy_(resize_patch_filters(*s, sc.patch, dc.patch));
      rep.resized++;
    } else {
      throw Error("initialising from the base model", "tensor '" + name + "' has another shape in the base",
                  "fine-tune a base of the same model family");
    }
  }
  return rep;
}

}  // namespace spikefm
