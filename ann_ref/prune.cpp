#include "ann_ref/prune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <tuple>

#include "ann_ref/calibration.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/prune_plan.h"
#include "ann_ref/trainer.h"
#include "ann_ref/vqa_eval.h"
#include "common/error.h"
#include "common/log.h"
#include "datasets/fashion_mnist.h"

namespace spikefm {

namespace {

void check_options(const PruneOptions& o) {
  if (o.task != "fashion-vqa") throw Error("--task " + o.task, "unknown task", "use fashion-vqa");
  if (o.out.empty()) throw Error("pruning", "no output path", "pass --out FILE.h5");
  if (o.blocks < 0) throw Error("--prune-blocks", "must be >= 0 (got " + std::to_string(o.blocks) + ")");
  auto fraction = [](double f, const char* flag) {
    if (!(f >= 0 && f < 1)) {
      throw Error(flag, "must be a fraction in [0, 1) (got " + std::to_string(f) + ")",
                  "e.g. 0.25 removes a quarter; 1 would remove everything");
    }
  };
  fraction(o.heads, "--prune-heads");
  fraction(o.mlp, "--prune-mlp");
  if (o.blocks == 0 && o.heads == 0 && o.mlp == 0) {
    throw Error("pruning", "nothing to remove", "pass --prune-blocks N, --prune-heads F or --prune-mlp F");
  }
  if (o.calib_images < 1) throw Error("--calib-images", "must be >= 1");
  if (!(o.recover_minutes >= 0) || !std::isfinite(o.recover_minutes)) throw Error("--recover-minutes", "must be >= 0");
  if (!(o.recover_lr > 0) || !std::isfinite(o.recover_lr)) throw Error("--recover-lr", "must be > 0");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string block_name(int stack, int b) { return (stack == 0 ? "encoder." : "decoder.") + std::to_string(b); }

}  // namespace

PruneReport prune_checkpoint(const PruneOptions& o) {
  check_options(o);
  Checkpoint ck = load_checkpoint(o.checkpoint);
  Mfm model = ck.model;
  model->eval();
  const MfmConfig cfg0 = model->config();
  const int n_enc = cfg0.enc_layers, n_dec = cfg0.dec_layers;
  if (o.blocks >= n_enc + n_dec) {
    throw Error("--prune-blocks " + std::to_string(o.blocks),
                "the model has " + std::to_string(n_enc + n_dec) + " blocks and the decoder must keep one",
                "remove at most " + std::to_string(n_enc + n_dec - 1));
  }
  const std::filesystem::path dir = o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir;
  FashionVqa data(dir, static_cast<uint64_t>(ck.meta.seed));
  WordTokenizer tok = FashionVqa::make_tokenizer();
  if (ck.vocab != tok.vocab()) throw Error(o.checkpoint.string(), "its vocabulary is not Fashion-VQA's");
  const CalibBatch calib = calib_batch(data, tok, o.calib_images);

  PruneReport rep;
  rep.model = cfg0.size_name;
  rep.parameters_before = model->parameter_count();
  for (int s = 0; s < 2; ++s) {
    for (int b = 0; b < (s == 0 ? n_enc : n_dec); ++b) {
      PrunedBlock pb;
      pb.name = block_name(s, b);
      pb.influence = -1;
      pb.heads = pb.heads_kept = cfg0.block_heads(s == 0, b);
      pb.mlp = pb.mlp_kept = cfg0.block_mlp(s == 0, b);
      rep.blocks.push_back(pb);
    }
  }
  VqaScore before = score_fashion_vqa(model, tok, data, o.split, o.limit, 256, o.progress ? "eval unpruned" : "");
  rep.accuracy_before = before.accuracy();
  rep.eval_n = before.n;

  // surviving original block index of each current block, per stack
  std::vector<int> alive[2];
  alive[0].resize(n_enc);
  alive[1].resize(n_dec);
  std::iota(alive[0].begin(), alive[0].end(), 0);
  std::iota(alive[1].begin(), alive[1].end(), 0);
  auto report_block = [&](int s, int current) -> PrunedBlock& {
    return rep.blocks[(s == 0 ? 0 : n_enc) + alive[s][current]];
  };

  Mfm pruned = model;
  // --- 1. blocks ---
  if (o.blocks > 0) {
    const std::vector<double> bi = block_influence(pruned, calib);
    std::vector<int> order(bi.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bi[a] < bi[b]; });
    for (int i = 0; i < n_enc + n_dec; ++i) rep.blocks[i].influence = bi[i];
    PrunePlan plan = keep_all(pruned);
    std::vector<bool> drop(bi.size(), false);
    int removed = 0, dec_left = n_dec;
    for (int i : order) {
      if (removed == o.blocks) break;
      if (i >= n_enc && dec_left == 1) continue;  // the decoder keeps one block
      drop[i] = true;
      ++removed;
      if (i >= n_enc) --dec_left;
    }
    for (int s = 0; s < 2; ++s) {
      StackPlan& sp = s == 0 ? plan.encoder : plan.decoder;
      std::vector<int> kept, alive_kept;
      for (int b : sp.blocks) {
        const int flat = (s == 0 ? 0 : n_enc) + b;
        if (drop[flat]) {
          rep.blocks[flat].removed = true;
          log::info("pruning: removing block " + rep.blocks[flat].name + " (influence " + std::to_string(bi[flat]) + ")");
        } else {
          kept.push_back(b);
          alive_kept.push_back(alive[s][b]);
        }
      }
      sp.blocks = kept;
      alive[s] = alive_kept;
    }
    pruned = apply_prune_plan(pruned, plan);
  }
  // --- 2. heads ---
  if (o.heads > 0) {
    const auto dl = head_ablation_loss(pruned, calib);
    std::vector<std::tuple<double, int, int, int>> all;  // (ΔL, stack, block, head)
    int total = 0;
    for (int s = 0; s < 2; ++s) {
      for (size_t b = 0; b < dl[s].size(); ++b) {
        for (size_t h = 0; h < dl[s][b].size(); ++h) all.emplace_back(dl[s][b][h], s, static_cast<int>(b), static_cast<int>(h));
        total += static_cast<int>(dl[s][b].size());
      }
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    const int target = static_cast<int>(std::lround(o.heads * total));
    PrunePlan plan = keep_all(pruned);
    int removed = 0;
    for (const auto& [loss, s, b, h] : all) {
      if (removed == target) break;
      auto& kept = (s == 0 ? plan.encoder : plan.decoder).heads[b];
      if (kept.size() == 1) continue;  // every block keeps one head
      kept.erase(std::find(kept.begin(), kept.end(), h));
      ++removed;
    }
    for (int s = 0; s < 2; ++s) {
      const StackPlan& sp = s == 0 ? plan.encoder : plan.decoder;
      for (size_t b = 0; b < sp.heads.size(); ++b) report_block(s, static_cast<int>(b)).heads_kept = static_cast<int>(sp.heads[b].size());
    }
    log::info("pruning: removing " + std::to_string(removed) + " of " + std::to_string(total) + " attention heads");
    pruned = apply_prune_plan(pruned, plan);
  }
  // --- 3. MLP channels ---
  if (o.mlp > 0) {
    const auto sc = mlp_channel_scores(pruned, calib);
    PrunePlan plan = keep_all(pruned);
    for (int s = 0; s < 2; ++s) {
      StackPlan& sp = s == 0 ? plan.encoder : plan.decoder;
      for (size_t b = 0; b < sp.mlp.size(); ++b) {
        const std::vector<double>& score = sc[s][b];
        const int n = static_cast<int>(score.size());
        const int keep = std::max(1, n - static_cast<int>(std::lround(o.mlp * n)));
        std::vector<int> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return score[a] > score[c]; });
        order.resize(keep);
        std::sort(order.begin(), order.end());
        sp.mlp[b] = order;
        report_block(s, static_cast<int>(b)).mlp_kept = keep;
      }
    }
    pruned = apply_prune_plan(pruned, plan);
  }
  pruned->eval();
  rep.parameters_after = pruned->parameter_count();
  log::info("pruning: " + std::to_string(rep.parameters_before) + " → " + std::to_string(rep.parameters_after) +
            " parameters");
  rep.accuracy_pruned = score_fashion_vqa(pruned, tok, data, o.split, o.limit, 256, o.progress ? "eval pruned" : "").accuracy();

  // --- recovery fine-tune, or the pruned model as it is ---
  if (o.recover_minutes > 0) {
    const std::filesystem::path tmp = o.out.string() + ".pruned-before-recovery.h5";
    save_checkpoint(tmp, pruned, ck.vocab, ck.meta);
    TrainOptions t;
    t.init = tmp;
    t.out = o.out;
    t.data_dir = o.data_dir;
    t.minutes = o.recover_minutes;
    t.epochs = 1000;  // the time budget ends it
    t.lr = o.recover_lr;
    t.seed = o.seed;
    t.val_images = 0;
    t.threads = o.threads;
    t.progress = o.progress;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      train_fashion_vqa(t);
    } catch (...) {
      std::filesystem::remove(tmp);
      throw;
    }
    rep.recover_seconds = seconds_since(t0);
    std::filesystem::remove(tmp);
    pruned = load_checkpoint(o.out).model;
    pruned->eval();
    rep.accuracy_recovered =
        score_fashion_vqa(pruned, tok, data, o.split, o.limit, 256, o.progress ? "eval recovered" : "").accuracy();
  } else {
    save_checkpoint(o.out, pruned, ck.vocab, ck.meta);
  }

  // --- wall time of the same evaluation, unpruned vs pruned, alternating, best of 2 ---
  rep.eval_seconds_before = rep.eval_seconds_after = 1e300;
  for (int r = 0; r < 2; ++r) {
    for (int which = 0; which < 2; ++which) {
      Mfm& m = which == 0 ? model : pruned;
      const auto t0 = std::chrono::steady_clock::now();
      score_fashion_vqa(m, tok, data, o.split, o.limit, 256, "");
      double& best = which == 0 ? rep.eval_seconds_before : rep.eval_seconds_after;
      best = std::min(best, seconds_since(t0));
    }
  }
  return rep;
}

}  // namespace spikefm
