#include "ann_ref/level_allocation.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "ann_ref/bit_allocation.h"
#include "ann_ref/calibration.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/quant_store.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/log.h"
#include "common/progress.h"
#include "datasets/fashion_mnist.h"
#include "datasets/fashion_vqa.h"

namespace spikefm {

namespace {

struct Site {
  std::string name;
  Qcfs q{nullptr};
  bool encoder = false;
};

bool is_encoder_site(const std::string& name) { return name.rfind("enc_blocks.", 0) == 0 || name == "q_enc"; }

}  // namespace

LevelAllocReport allocate_levels(const LevelAllocOptions& o) {
  if (!(o.spike_budget > 0) || !std::isfinite(o.spike_budget)) {
    throw Error("--act-spikes", "must be a positive fraction of the trained model's spikes (e.g. 0.6)");
  }
  if (o.levels.empty()) throw Error("--act-levels", "no levels given", "e.g. --act-levels 2,4,8");
  for (int L : o.levels) {
    if (L < 1 || L > 255) throw Error("--act-levels", "every level must be in [1, 255] (got " + std::to_string(L) + ")");
  }
  if (o.calib_images < 1) throw Error("--calib-images", "must be >= 1");
  if (o.sensitivity != "fisher" && o.sensitivity != "loss") {
    throw Error("--act-sensitivity " + o.sensitivity, "unknown measure", "use fisher or loss");
  }
  Checkpoint ck = load_checkpoint(o.checkpoint);
  Mfm& model = ck.model;
  if (!model->config().qann) {
    throw Error("allocating activation levels of " + o.checkpoint.string(), "it is not a QANN checkpoint",
                "make one with spikefm train --init M.h5 --qann");
  }
  model->eval();
  WordTokenizer tok(ck.vocab);
  FashionVqa data(o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir, static_cast<uint64_t>(ck.meta.seed));
  const CalibBatch calib = calib_batch(data, tok, o.calib_images);

  std::vector<Site> sites;
  for (auto& [name, q] : model->named_quantizers()) sites.push_back({name, q, is_encoder_site(name)});
  // The spiking engine's schedule: per image, the encoder and the decoder over the image tokens
  // (cached, shared by the image's questions); per question, the decoder over its text (prompt and
  // teacher-forced answer, no padding). `observe` sees every quantizer's input z on the way.
  const int64_t n_images = calib.images.size(0) / kQuestionTypes;  // rows are image-major: 4i + q
  const torch::Tensor lengths = (calib.inputs != WordTokenizer::kPad).sum(1);
  auto run_schedule = [&](const std::function<void(Site&, const torch::Tensor&)>& observe) {
    for (Site& s : sites) {
      Site* sp = &s;
      s.q->observer = [sp, &observe](const torch::Tensor& z, const torch::Tensor&) { observe(*sp, z.detach()); };
    }
    torch::NoGradGuard ng;
    KVCache primed;
    model->prime(model->image_prefix(calib.images.index_select(0, torch::arange(0, n_images * kQuestionTypes, kQuestionTypes))),
                 primed);
    for (int q = 0; q < kQuestionTypes; ++q) {
      std::map<int64_t, std::vector<int64_t>> by_length;  // images whose question-q text has this length
      for (int64_t i = 0; i < n_images; ++i) by_length[lengths[i * kQuestionTypes + q].item<int64_t>()].push_back(i);
      for (const auto& [len, images] : by_length) {
        const torch::Tensor idx = torch::tensor(images, torch::kInt64);
        KVCache c;
        c.len = primed.len;
        for (size_t l = 0; l < primed.k.size(); ++l) {
          c.k.push_back(primed.k[l].index_select(0, idx));
          c.v.push_back(primed.v[l].index_select(0, idx));
        }
        model->decode(torch::Tensor(), calib.inputs.index_select(0, idx * kQuestionTypes + q).narrow(1, 0, len), &c);
      }
    }
    for (Site& s : sites) s.q->observer = nullptr;
  };
  const double questions = static_cast<double>(n_images * kQuestionTypes);
  // Spikes per question of the whole model at its current levels.
  auto measure_spikes = [&]() {
    double total = 0;
    run_schedule([&](Site& s, const torch::Tensor& z) { total += s.q->counts(z).abs().sum().item<double>(); });
    return total / questions;
  };
  // The integer counts n of z at L (the quantizer's λ; L set for the count and restored); its output
  // there is n·θ, θ = λ / L.
  auto counts_at = [](Site& s, const torch::Tensor& z, int L) {
    const int keep = s.q->levels();
    s.q->set_levels(L);
    torch::Tensor n = s.q->counts(z);
    s.q->set_levels(keep);
    return n;
  };
  auto output_at = [&](Site& s, const torch::Tensor& z, int L) {
    return counts_at(s, z, L) * (s.q->lambda.item<float>() / static_cast<float>(L));
  };

  LevelAllocReport rep;
  rep.model = model->config().size_name;
  std::vector<int> trained, trained_choice;  // per site: its trained L, and that option's index
  for (const Site& s : sites) trained.push_back(s.q->levels());
  for (size_t k = 0; k < sites.size(); ++k) {
    std::set<int> ls(o.levels.begin(), o.levels.end());
    ls.insert(trained[k]);
    trained_choice.push_back(static_cast<int>(std::distance(ls.begin(), ls.find(trained[k]))));
    SiteAllocation a;
    a.name = sites[k].name;
    a.encoder = sites[k].encoder;
    a.is_signed = sites[k].q->is_signed();
    a.trained_levels = trained[k];
    for (int L : ls) a.options.push_back({L, 0, 0, 0});
    rep.sites.push_back(std::move(a));
  }

  // --- spikes of each site at each L, alone: its input does not depend on its own L ---
  run_schedule([&](Site& s, const torch::Tensor& z) {
    SiteAllocation& a = rep.sites[&s - sites.data()];
    for (SiteLevelOption& op : a.options) op.spikes += counts_at(s, z, op.levels).abs().sum().item<double>() / questions;
  });

  // --- Fisher error: ½ Σ g² (a_L − a_trained)² per scored token, g = ∂(Σ token losses)/∂a ---
  {
    std::vector<std::vector<std::pair<torch::Tensor, torch::Tensor>>> seen(sites.size());  // (z, a) per call
    for (size_t k = 0; k < sites.size(); ++k) {
      auto* list = &seen[k];
      sites[k].q->observer = [list](const torch::Tensor& z, const torch::Tensor& a) { list->emplace_back(z.detach(), a); };
    }
    int64_t tokens = 0;
    const int64_t N = calib.images.size(0), chunk = 64;
    for (int64_t i = 0; i < N; i += chunk) {
      const int64_t len = std::min(chunk, N - i);
      for (auto& l : seen) l.clear();
      torch::Tensor logits = model->forward(calib.images.narrow(0, i, len), calib.inputs.narrow(0, i, len));
      torch::Tensor t = calib.targets.narrow(0, i, len).reshape({-1});
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}), t,
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreTarget).reduction(torch::kSum));
      tokens += (t != kIgnoreTarget).sum().item<int64_t>();
      std::vector<torch::Tensor> outs;
      for (auto& l : seen) {
        for (auto& [z, a] : l) outs.push_back(a);
      }
      std::vector<torch::Tensor> grads = torch::autograd::grad({loss}, outs, {}, false, false, /*allow_unused=*/true);
      torch::NoGradGuard ng;
      size_t g = 0;
      for (size_t k = 0; k < sites.size(); ++k) {
        for (auto& [z, a] : seen[k]) {
          const torch::Tensor& grad = grads[g++];
          if (!grad.defined()) continue;
          const torch::Tensor g2 = grad.to(torch::kFloat64).square();
          const torch::Tensor at = output_at(sites[k], z, trained[k]).to(torch::kFloat64);
          for (SiteLevelOption& op : rep.sites[k].options) {
            op.fisher += 0.5 * (g2 * (output_at(sites[k], z, op.levels).to(torch::kFloat64) - at).square()).sum().item<double>();
          }
        }
      }
    }
    for (Site& s : sites) s.q->observer = nullptr;
    for (SiteAllocation& a : rep.sites) {
      for (SiteLevelOption& op : a.options) op.fisher /= static_cast<double>(std::max<int64_t>(1, tokens));
    }
  }

  // --- optionally, the measured calibration-loss increase of each site alone at each L ---
  if (o.sensitivity == "loss") {
    const double loss0 = calib_loss(model, calib);
    std::optional<Progress> progress;
    int64_t total_options = 0, done = 0;
    for (const SiteAllocation& a : rep.sites) total_options += static_cast<int64_t>(a.options.size());
    if (o.progress) progress.emplace("level sensitivity", total_options, "site-levels");
    for (size_t k = 0; k < sites.size(); ++k) {
      for (SiteLevelOption& op : rep.sites[k].options) {
        sites[k].q->set_levels(op.levels);
        op.delta_loss = calib_loss(model, calib) - loss0;
        if (progress) progress->update(++done);
      }
      sites[k].q->set_levels(trained[k]);
    }
    if (progress) progress->finish();
  }

  // --- knapsack: spikes (rounded to whole spikes per question) as the cost ---
  std::vector<AllocationUnit> units;
  for (const SiteAllocation& a : rep.sites) {
    AllocationUnit u;
    u.name = a.name;
    for (const SiteLevelOption& op : a.options) {
      const double err = o.sensitivity == "loss" ? std::max(op.delta_loss, 0.0) : op.fisher;
      u.options.push_back({op.levels, std::llround(op.spikes), err});
      if (op.levels == a.trained_levels) rep.spikes_trained += op.spikes;
    }
    units.push_back(std::move(u));
  }
  // Budgets in the knapsack's whole spikes: a fraction of the rounded costs of a reference choice
  // (the trained levels, or a uniform L), so that choice itself always fits a fraction of 1.
  auto rounded_cost = [&](auto&& pick) {
    int64_t c = 0;
    for (const AllocationUnit& u : units) c += pick(u).cost;
    return c;
  };
  auto allocate = [&](int64_t budget) { return allocate_bits(units, budget).choice; };
  auto apply = [&](const std::vector<int>& choice) {
    std::map<std::string, int> m;
    for (size_t k = 0; k < sites.size(); ++k) m[sites[k].name] = rep.sites[k].options[choice[k]].levels;
    model->set_site_levels(m);
  };
  auto apply_uniform = [&](int L) {
    std::map<std::string, int> m;
    for (const Site& s : sites) m[s.name] = L;
    model->set_site_levels(m);
  };
  auto evaluate = [&](const std::string& name) {
    LevelVariant v;
    v.name = name;
    v.calib_loss = calib_loss(model, calib);
    v.spikes = measure_spikes();
    VqaScore sc = score_fashion_vqa(model, tok, data, o.split, o.limit, 256, o.progress ? "eval " + name : "");
    v.accuracy = sc.accuracy();
    rep.eval_n = sc.n;
    log::info(name + ": " + std::to_string(v.spikes) + " spikes/question, accuracy " + std::to_string(v.accuracy));
    return v;
  };

  rep.budget = o.spike_budget * rep.spikes_trained;
  apply(trained_choice);
  rep.variants.push_back(evaluate("trained"));
  const int64_t trained_cost = rounded_cost([&](const AllocationUnit& u) -> const BitOption& {
    const size_t k = &u - units.data();
    return u.options[trained_choice[k]];
  });
  std::vector<int> chosen;
  try {
    chosen = allocate(static_cast<int64_t>(std::floor(o.spike_budget * static_cast<double>(trained_cost))));
  } catch (const Error& e) {
    throw e.with_context("--act-spikes " + std::to_string(o.spike_budget) + " (" + std::to_string(std::llround(rep.budget)) +
                         " of " + std::to_string(std::llround(rep.spikes_trained)) + " spikes per question)");
  }
  for (size_t k = 0; k < chosen.size(); ++k) {
    rep.sites[k].chosen = chosen[k];
    rep.spikes_estimate += rep.sites[k].options[chosen[k]].spikes;
  }
  apply(chosen);
  rep.variants.push_back(evaluate("allocated"));
  if (!o.out.empty()) {
    // Levels change nothing in the weights: a compressed QANN's codes go along unchanged.
    const QuantStore quant = read_quant_store(H5File::open(o.checkpoint));
    AtomicFile out(o.out);
    save_checkpoint(out.temp_path(), model, ck.vocab, ck.meta, [&](H5File& f) {
      if (!quant.empty()) write_quant_store(f, quant);
    });
    out.commit();
  }
  if (o.compare) {
    const int Lt = model->config().act_levels;
    for (int L : std::set<int>(o.levels.begin(), o.levels.end())) {
      if (L >= Lt) continue;
      apply_uniform(L);
      const LevelVariant uniform = evaluate("uniform L=" + std::to_string(L));
      // the uniform choice's own cost is the budget the allocation gets to match it
      const int64_t uniform_cost = rounded_cost([&](const AllocationUnit& u) -> const BitOption& {
        return *std::find_if(u.options.begin(), u.options.end(), [&](const BitOption& b) { return b.bits == L; });
      });
      rep.variants.push_back(uniform);
      apply(allocate(uniform_cost));
      rep.variants.push_back(evaluate("allocated @ uniform L=" + std::to_string(L) + " spikes"));
    }
    apply(chosen);
  }
  return rep;
}

}  // namespace spikefm
