#include "ann_ref/prune_plan.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/error.h"

namespace spikefm {

namespace {

std::vector<Block> blocks_of(torch::nn::ModuleList& list) {
  std::vector<Block> out;
  for (const auto& m : *list) out.emplace_back(std::dynamic_pointer_cast<BlockImpl>(m));
  return out;
}

std::vector<int> iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

StackPlan keep_stack(torch::nn::ModuleList& list) {
  StackPlan s;
  std::vector<Block> bs = blocks_of(list);
  s.blocks = iota(static_cast<int>(bs.size()));
  for (Block& b : bs) {
    s.heads.push_back(iota(b->attn->heads));
    s.mlp.push_back(iota(static_cast<int>(b->mlp->fc1->weight.size(0))));
  }
  return s;
}

void check_indices(const std::vector<int>& v, int n, const std::string& what) {
  if (v.empty()) throw Error("prune plan", what + " keeps nothing", "keep at least one");
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || v[i] >= n) {
      throw Error("prune plan", what + " index " + std::to_string(v[i]) + " is out of range [0, " + std::to_string(n) + ")");
    }
    if (i > 0 && v[i] <= v[i - 1]) throw Error("prune plan", what + " indices must be ascending and distinct");
  }
}

torch::Tensor rows(const torch::Tensor& t, const std::vector<int64_t>& idx) {
  return t.index_select(0, torch::tensor(idx, torch::kInt64));
}
torch::Tensor cols(const torch::Tensor& t, const std::vector<int64_t>& idx) {
  return t.index_select(1, torch::tensor(idx, torch::kInt64));
}

void copy(torch::Tensor& dst, const torch::Tensor& src, const std::string& name) {
  if (dst.sizes() != src.sizes()) {
    throw Error("applying a prune plan", name + ": shape mismatch (internal error)");
  }
  dst.copy_(src);
}

void copy_module(torch::nn::Module& dst, torch::nn::Module& src, const std::string& name) {
  auto s = src.named_parameters();
  for (auto& p : dst.named_parameters()) copy(p.value(), s[p.key()], name + "." + p.key());
}

// dst = src block with the plan's heads and channels (both already validated).
void copy_block(Block& dst, Block& src, const std::vector<int>& heads, const std::vector<int>& channels,
                const std::string& name) {
  copy_module(*dst->ln1, *src->ln1, name + ".ln1");
  copy_module(*dst->ln2, *src->ln2, name + ".ln2");
  if (src->q_ln1) copy_module(*dst->q_ln1, *src->q_ln1, name + ".q_ln1");
  if (src->q_ln2) copy_module(*dst->q_ln2, *src->q_ln2, name + ".q_ln2");
  auto& sa = src->attn;
  auto& da = dst->attn;
  if (sa->q_q) {
    copy_module(*da->q_q, *sa->q_q, name + ".attn.q_q");
    copy_module(*da->q_k, *sa->q_k, name + ".attn.q_k");
    copy_module(*da->q_v, *sa->q_v, name + ".attn.q_v");
    copy_module(*da->q_p, *sa->q_p, name + ".attn.q_p");
    copy_module(*da->q_o, *sa->q_o, name + ".attn.q_o");
  }
  // qkv rows: [q heads | k heads | v heads], each head d rows; proj columns: heads × d.
  const int64_t d = sa->head_dim, H = sa->heads;
  std::vector<int64_t> qkv_rows, head_cols;
  for (int part = 0; part < 3; ++part) {
    for (int h : heads) {
      for (int64_t i = 0; i < d; ++i) qkv_rows.push_back(part * H * d + h * d + i);
    }
  }
  for (int h : heads) {
    for (int64_t i = 0; i < d; ++i) head_cols.push_back(h * d + i);
  }
  copy(da->qkv->weight, rows(sa->qkv->weight, qkv_rows), name + ".attn.qkv.weight");
  copy(da->qkv->bias, rows(sa->qkv->bias, qkv_rows), name + ".attn.qkv.bias");
  copy(da->proj->weight, cols(sa->proj->weight, head_cols), name + ".attn.proj.weight");
  copy(da->proj->bias, sa->proj->bias, name + ".attn.proj.bias");
  const std::vector<int64_t> ch(channels.begin(), channels.end());
  auto& sm = src->mlp;
  auto& dm = dst->mlp;
  copy(dm->fc1->weight, rows(sm->fc1->weight, ch), name + ".mlp.fc1.weight");
  copy(dm->fc1->bias, rows(sm->fc1->bias, ch), name + ".mlp.fc1.bias");
  copy(dm->fc2->weight, cols(sm->fc2->weight, ch), name + ".mlp.fc2.weight");
  copy(dm->fc2->bias, sm->fc2->bias, name + ".mlp.fc2.bias");
  copy_module(*dm->act, *sm->act, name + ".mlp.act");
}

// Sizes of the kept blocks; empty when nothing of a kind was pruned (the unpruned config).
void stack_sizes(const StackPlan& p, int full_heads, int full_mlp, std::vector<int>& heads,
                 std::vector<int>& mlp) {
  heads.clear();
  mlp.clear();
  bool heads_pruned = false, mlp_pruned = false;
  for (int b : p.blocks) {
    heads.push_back(static_cast<int>(p.heads[b].size()));
    mlp.push_back(static_cast<int>(p.mlp[b].size()));
    heads_pruned |= heads.back() != full_heads;
    mlp_pruned |= mlp.back() != full_mlp;
  }
  if (!heads_pruned) heads.clear();
  if (!mlp_pruned) mlp.clear();
}

void validate_stack(const StackPlan& p, std::vector<Block>& bs, const std::string& stack) {
  const int n = static_cast<int>(bs.size());
  if (static_cast<int>(p.heads.size()) != n || static_cast<int>(p.mlp.size()) != n) {
    throw Error("prune plan", stack + ": heads and mlp must list every block of the model (" + std::to_string(n) + ")");
  }
  if (!p.blocks.empty()) check_indices(p.blocks, n, stack + " blocks");
  for (int b : p.blocks) {
    const std::string name = stack + " block " + std::to_string(b);
    check_indices(p.heads[b], bs[b]->attn->heads, name + " heads");
    check_indices(p.mlp[b], static_cast<int>(bs[b]->mlp->fc1->weight.size(0)), name + " mlp channels");
  }
}

}  // namespace

PrunePlan keep_all(Mfm& model) { return {keep_stack(model->enc_blocks), keep_stack(model->dec_blocks)}; }

Mfm apply_prune_plan(Mfm& model, const PrunePlan& plan) {
  torch::NoGradGuard ng;
  std::vector<Block> enc = blocks_of(model->enc_blocks), dec = blocks_of(model->dec_blocks);
  validate_stack(plan.encoder, enc, "encoder");
  validate_stack(plan.decoder, dec, "decoder");
  if (plan.decoder.blocks.empty()) throw Error("prune plan", "the decoder keeps no block", "keep at least one");

  MfmConfig cfg = model->config();
  cfg.enc_layers = static_cast<int>(plan.encoder.blocks.size());
  cfg.dec_layers = static_cast<int>(plan.decoder.blocks.size());
  stack_sizes(plan.encoder, cfg.enc_heads, cfg.mlp_ratio * cfg.enc_width, cfg.enc_block_heads, cfg.enc_block_mlp);
  stack_sizes(plan.decoder, cfg.dec_heads, cfg.mlp_ratio * cfg.dec_width, cfg.dec_block_heads, cfg.dec_block_mlp);
  // Per-site levels follow their block to its new index; those of removed blocks go with them.
  cfg.site_levels.clear();
  for (const auto& [site, L] : model->config().site_levels) {
    std::string name = site;
    for (const auto& [prefix, kept] : {std::pair{std::string("enc_blocks."), &plan.encoder.blocks},
                                       std::pair{std::string("dec_blocks."), &plan.decoder.blocks}}) {
      if (site.rfind(prefix, 0) != 0) continue;
      const size_t dot = site.find('.', prefix.size());
      const int old_index = std::stoi(site.substr(prefix.size(), dot - prefix.size()));
      const auto it = std::find(kept->begin(), kept->end(), old_index);
      name = it == kept->end() ? "" : prefix + std::to_string(it - kept->begin()) + site.substr(dot);
    }
    if (!name.empty()) cfg.site_levels[name] = L;
  }
  Mfm out(cfg);
  out->train(model->is_training());

  // Everything outside the blocks has the same name and shape in both models.
  auto src = model->named_parameters();
  for (auto& p : out->named_parameters()) {
    const std::string& k = p.key();
    if (k.rfind("enc_blocks.", 0) == 0 || k.rfind("dec_blocks.", 0) == 0) continue;
    copy(p.value(), src[k], k);
  }
  std::vector<Block> enc_out = blocks_of(out->enc_blocks), dec_out = blocks_of(out->dec_blocks);
  for (size_t j = 0; j < plan.encoder.blocks.size(); ++j) {
    const int b = plan.encoder.blocks[j];
    copy_block(enc_out[j], enc[b], plan.encoder.heads[b], plan.encoder.mlp[b], "enc_blocks." + std::to_string(b));
  }
  for (size_t j = 0; j < plan.decoder.blocks.size(); ++j) {
    const int b = plan.decoder.blocks[j];
    copy_block(dec_out[j], dec[b], plan.decoder.heads[b], plan.decoder.mlp[b], "dec_blocks." + std::to_string(b));
  }
  return out;
}

std::vector<double> block_influence(Mfm& model, const CalibBatch& calib) {
  torch::NoGradGuard ng;
  const int n_blocks = static_cast<int>(model->enc_blocks->size() + model->dec_blocks->size());
  std::vector<double> sum(n_blocks, 0.0);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> io;
  model->block_io = &io;
  const int64_t N = calib.images.size(0), chunk = 256;
  std::vector<int64_t> rows_per_block(n_blocks, 0);
  try {
    for (int64_t i = 0; i < N; i += chunk) {
      const int64_t len = std::min(chunk, N - i);
      io.clear();
      model->forward(calib.images.narrow(0, i, len), calib.inputs.narrow(0, i, len));
      for (int b = 0; b < n_blocks; ++b) {
        // (B, t, C) → (B·t, C) rows; cosine per token
        torch::Tensor x = io[b].first.reshape({-1, io[b].first.size(-1)});
        torch::Tensor y = io[b].second.reshape({-1, io[b].second.size(-1)});
        torch::Tensor cos = torch::cosine_similarity(x, y, 1, 1e-8);
        sum[b] += cos.sum().item<double>();
        rows_per_block[b] += cos.size(0);
      }
    }
  } catch (...) {
    model->block_io = nullptr;
    throw;
  }
  model->block_io = nullptr;
  std::vector<double> bi(n_blocks);
  for (int b = 0; b < n_blocks; ++b) bi[b] = 1.0 - sum[b] / static_cast<double>(std::max<int64_t>(1, rows_per_block[b]));
  return bi;
}

std::vector<std::vector<std::vector<double>>> head_ablation_loss(Mfm& model, const CalibBatch& calib) {
  torch::NoGradGuard ng;
  const double base = calib_loss(model, calib);
  std::vector<std::vector<std::vector<double>>> out(2);
  torch::nn::ModuleList* stacks[] = {&model->enc_blocks, &model->dec_blocks};
  for (int s = 0; s < 2; ++s) {
    for (Block& b : blocks_of(*stacks[s])) {
      std::vector<double> dl;
      torch::Tensor& w = b->attn->proj->weight;  // (C, H·d)
      const int64_t d = b->attn->head_dim;
      for (int h = 0; h < b->attn->heads; ++h) {
        torch::Tensor saved = w.narrow(1, h * d, d).clone();
        w.narrow(1, h * d, d).zero_();
        dl.push_back(calib_loss(model, calib) - base);
        w.narrow(1, h * d, d).copy_(saved);
      }
      out[s].push_back(std::move(dl));
    }
  }
  return out;
}

std::vector<std::vector<std::vector<double>>> mlp_channel_scores(Mfm& model, const CalibBatch& calib) {
  torch::NoGradGuard ng;
  std::vector<Block> all = blocks_of(model->enc_blocks);
  const size_t n_enc = all.size();
  for (Block& b : blocks_of(model->dec_blocks)) all.push_back(b);
  // Record the inputs of every fc2 (the hidden activations a) over the calibration batch.
  std::vector<std::vector<torch::Tensor>> rec(all.size());
  for (size_t i = 0; i < all.size(); ++i) all[i]->mlp->fc2->record = &rec[i];
  try {
    calib_loss(model, calib);
  } catch (...) {
    for (Block& b : all) b->mlp->fc2->record = nullptr;
    throw;
  }
  std::vector<std::vector<std::vector<double>>> out(2);
  for (size_t i = 0; i < all.size(); ++i) {
    all[i]->mlp->fc2->record = nullptr;
    torch::Tensor a = torch::cat(rec[i], 0).to(torch::kDouble);                      // (n, hidden)
    torch::Tensor norm = a.pow(2).sum(0).sqrt();                                      // (hidden)
    torch::Tensor wsum = all[i]->mlp->fc2->weight.detach().to(torch::kDouble).abs().sum(0);  // (hidden)
    torch::Tensor score = (norm * wsum).contiguous();
    const double* p = score.data_ptr<double>();
    out[i < n_enc ? 0 : 1].emplace_back(p, p + score.numel());
  }
  return out;
}

}  // namespace spikefm
