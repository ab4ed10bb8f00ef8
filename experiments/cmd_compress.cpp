// spikefm compress: structural pruning (ann_ref/prune.h) and mixed-precision weight quantization
// (ann_ref/compress.h) of a trained MFM; with both, the pruned and recovered model is quantized.
// With --act-spikes, instead: the activation levels of a QANN under a spike budget
// (ann_ref/level_allocation.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ann_ref/compress.h"
#include "ann_ref/level_allocation.h"
#include "ann_ref/prune.h"
#include "common/error.h"
#include "common/json.h"
#include "experiments/cli.h"
#include "neuromorphic_hw/hw_spec.h"
#include "neuromorphic_hw/mapping.h"

namespace spikefm::cli {

namespace {

// Storage of one output channel at option x (codes + scales), in the whole bytes the mapper counts.
int64_t channel_bytes(const OptionSensitivity& x, int64_t cols) {
  return (std::llround(x.effective_bits * static_cast<double>(cols)) + 7) / 8;
}

Json prune_json(const PruneReport& r, const PruneOptions& o) {
  Json bs = Json::array();
  for (const auto& b : r.blocks) {
    bs.push_back({{"name", b.name}, {"influence", b.influence}, {"removed", b.removed}, {"heads", b.heads},
                  {"heads_kept", b.heads_kept}, {"mlp", b.mlp}, {"mlp_kept", b.mlp_kept}});
  }
  return Json{{"model", r.model},
              {"parameters_before", r.parameters_before},
              {"parameters_after", r.parameters_after},
              {"removed_fraction", 1.0 - static_cast<double>(r.parameters_after) / r.parameters_before},
              {"prune_blocks", o.blocks},
              {"prune_heads", o.heads},
              {"prune_mlp", o.mlp},
              {"accuracy_before", r.accuracy_before},
              {"accuracy_pruned", r.accuracy_pruned},
              {"accuracy_recovered", r.accuracy_recovered},
              {"recover_seconds", r.recover_seconds},
              {"eval_split", o.split},
              {"eval_n", r.eval_n},
              {"eval_seconds_before", r.eval_seconds_before},
              {"eval_seconds_after", r.eval_seconds_after},
              {"speedup", r.eval_seconds_after > 0 ? r.eval_seconds_before / r.eval_seconds_after : 0.0},
              {"blocks", bs}};
}

void print_prune(const PruneReport& r, const PruneOptions& o) {
  std::printf("pruning %s model: %lld -> %lld parameters (%.1f%% removed)\n", r.model.c_str(),
              static_cast<long long>(r.parameters_before), static_cast<long long>(r.parameters_after),
              100.0 * (1.0 - static_cast<double>(r.parameters_after) / r.parameters_before));
  std::printf("  %-12s %10s %8s %7s %13s\n", "block", "influence", "removed", "heads", "mlp channels");
  for (const auto& b : r.blocks) {
    char infl[32] = "-";
    if (b.influence >= 0) std::snprintf(infl, sizeof infl, "%.4f", b.influence);
    std::printf("  %-12s %10s %8s %3d/%-3d %6d/%-6d\n", b.name.c_str(), infl, b.removed ? "yes" : "no",
                b.removed ? 0 : b.heads_kept, b.heads, b.removed ? 0 : b.mlp_kept, b.mlp);
  }
  std::printf("accuracy (%s split, %lld samples): before %.2f%%, pruned %.2f%%", o.split.c_str(),
              static_cast<long long>(r.eval_n), 100 * r.accuracy_before, 100 * r.accuracy_pruned);
  if (r.accuracy_recovered >= 0) {
    std::printf(", after %.1f s recovery %.2f%% (%+.2f points vs before)", r.recover_seconds, 100 * r.accuracy_recovered,
                100 * (r.accuracy_recovered - r.accuracy_before));
  }
  std::printf("\nevaluation wall time, same run, best of 2: unpruned %.2f s, pruned %.2f s (%.2fx faster)\n",
              r.eval_seconds_before, r.eval_seconds_after,
              r.eval_seconds_after > 0 ? r.eval_seconds_before / r.eval_seconds_after : 0.0);
}

int run_level_allocation(const LevelAllocOptions& o, bool json, bool report) {
  const LevelAllocReport r = allocate_levels(o);
  if (json) {
    Json vs = Json::array();
    for (const auto& v : r.variants) {
      vs.push_back({{"name", v.name}, {"spikes_per_question", v.spikes}, {"accuracy", v.accuracy}, {"calib_loss", v.calib_loss}});
    }
    Json ss = Json::array();
    for (const auto& s : r.sites) {
      Json os = Json::array();
      for (const auto& x : s.options) {
        Json xj{{"levels", x.levels}, {"spikes", x.spikes}, {"fisher", x.fisher}};
        if (o.sensitivity == "loss") xj["delta_loss"] = x.delta_loss;
        os.push_back(xj);
      }
      ss.push_back({{"name", s.name}, {"encoder", s.encoder}, {"signed", s.is_signed}, {"trained_levels", s.trained_levels},
                    {"levels", s.options[s.chosen].levels}, {"options", os}});
    }
    Json j{{"model", r.model},
           {"spike_budget", o.spike_budget},
           {"sensitivity", o.sensitivity},
           {"spikes_trained_estimate", r.spikes_trained},
           {"budget_spikes", r.budget},
           {"spikes_allocated_estimate", r.spikes_estimate},
           {"eval_split", o.split},
           {"eval_n", r.eval_n},
           {"variants", vs},
           {"sites", ss}};
    if (!o.out.empty()) j["checkpoint"] = o.out.string();
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s QANN, %zu activation quantizers; budget %.2f x %.0f = %.0f spikes per question (per-site estimates, "
              "calibration data); %s split, %lld samples\n",
              r.model.c_str(), r.sites.size(), o.spike_budget, r.spikes_trained, r.budget, o.split.c_str(),
              static_cast<long long>(r.eval_n));
  std::printf("  %-36s %16s %10s %11s\n", "variant", "spikes/question", "accuracy", "calib loss");
  for (const auto& v : r.variants) {
    std::printf("  %-36s %16.0f %9.2f%% %11.4f\n", v.name.c_str(), v.spikes, 100 * v.accuracy, v.calib_loss);
  }
  std::printf("levels:");
  for (const auto& s : r.sites) std::printf(" %s=%d", s.name.c_str(), s.options[s.chosen].levels);
  std::printf("\n");
  if (report) {
    std::printf("per site, alone at L (the others at their trained L): spikes per question / Fisher estimate of the\n"
                "calibration-loss increase%s\n", o.sensitivity == "loss" ? " / measured increase" : "");
    for (const auto& s : r.sites) {
      std::printf("  %-26s %-3s L=%-3d ->%3d ", s.name.c_str(), s.encoder ? "enc" : "dec", s.trained_levels,
                  s.options[s.chosen].levels);
      for (const auto& x : s.options) {
        std::printf(" L%d %.0f/%.2e", x.levels, x.spikes, x.fisher);
        if (o.sensitivity == "loss") std::printf("/%+.2e", x.delta_loss);
      }
      std::printf("\n");
    }
  }
  if (!o.out.empty()) std::printf("checkpoint with the allocated levels written to %s\n", o.out.string().c_str());
  return 0;
}

}  // namespace

Action add_compress(CLI::App& app) {
  auto o = std::make_shared<CompressOptions>();
  auto po = std::make_shared<PruneOptions>();
  auto json = std::make_shared<bool>(false);
  auto report = std::make_shared<bool>(false);
  auto hw_name = std::make_shared<std::string>();
  auto hw_sram = std::make_shared<int64_t>(0);
  auto spec = std::make_shared<hw::HwSpec>();
  auto lo = std::make_shared<LevelAllocOptions>();
  CLI::App* c = app.add_subcommand("compress",
                                   "Structural pruning (blocks, heads, MLP channels) and mixed-precision weight quantization "
                                   "(per-layer sensitivity, exact bit allocation, GPTQ/RTN); prune, then quantize");
  c->add_option("--checkpoint", o->checkpoint, "Float checkpoint (from spikefm train); with --act-spikes a QANN (train --qann)")->required()->check(CLI::ExistingFile);
  c->add_option("--task", o->task, "Task")->check(CLI::IsMember({"fashion-vqa"}))->capture_default_str();
  c->add_option("--bits", o->bits, "Budget: average effective bits per weight, scales included")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--widths", o->widths, "Bit widths a layer may get")->delimiter(',')->check(CLI::IsMember({8, 4, 2}))->capture_default_str();
  c->add_option("--groups", o->groups, "Scale granularities a layer may get: columns per group, 0 = one scale per output channel")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--group", o->group, "Granularity of the uniform baselines (--compare)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--method", o->method, "Rounding: gptq (second-order, Frantar et al. 2023) or rtn")->check(CLI::IsMember({"gptq", "rtn"}))->capture_default_str();
  c->add_option("--sensitivity", o->sensitivity, "What the allocation minimises: loss (measured calibration-loss increase), proxy (layer-input Hessian output error) or fisher (Fisher-weighted weight error)")
      ->check(CLI::IsMember({"loss", "proxy", "fisher"}))
      ->capture_default_str();
  c->add_option("--calib-images", o->calib_images, "Training images for calibration (x 4 questions)")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--split", o->split, "Evaluation split")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--limit", o->limit, "Evaluation samples (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_option("--out", o->out, "Write the quantized checkpoint here (dequantized /params + packed /quant)");
  c->add_option("--qat-epochs", o->qat_epochs, "Quantization-aware fine-tune at the chosen allocation (RTN fake-quant, straight-through "
                 "gradient), then RTN; the QAT model is evaluated and written (0 = none)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--qat-minutes", o->qat_minutes, "Wall-clock cap of the QAT fine-tune")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--qat-lr", o->qat_lr, "Peak learning rate of the QAT fine-tune")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--hw", *hw_name, "Memory-hierarchy budget: every layer's weights (codes + scales) must fit the synapse SRAM "
                 "of the cores its neurons occupy on this chip (a preset name, e.g. loihi, or a TOML path). Without "
                 "--bits only these caps bound the allocation; with it, both do");
  c->add_option("--hw-sram", *hw_sram, "Override the preset's synapse SRAM per core, in bytes (what-if studies of a smaller chip)")
      ->check(CLI::PositiveNumber);
  c->add_option("--prune-blocks", po->blocks, "Remove this many whole blocks of lowest block influence (1 - cos(h_in, h_out))")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--prune-heads", po->heads, "Remove this fraction of attention heads (lowest single-head ablation loss), in [0, 1)");
  c->add_option("--prune-mlp", po->mlp, "Remove this fraction of every block's MLP hidden channels (lowest Wanda score), in [0, 1)");
  c->add_option("--recover-minutes", po->recover_minutes, "Recovery fine-tune after pruning (0 = none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--recover-lr", po->recover_lr, "Peak learning rate of the recovery fine-tune")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--act-spikes", lo->spike_budget, "Instead of weights: allocate the activation levels L of every quantizer of a "
                 "QANN checkpoint (each L is also its spike count) to minimise the calibration-loss increase within this "
                 "fraction of the trained model's spikes per question, e.g. 0.6")
      ->check(CLI::PositiveNumber);
  c->add_option("--act-sensitivity", lo->sensitivity, "What the level allocation minimises: fisher (diagonal-Fisher estimate of "
                 "the loss increase from each quantizer's output change) or loss (measured loss increase, each quantizer alone)")
      ->check(CLI::IsMember({"fisher", "loss"}))
      ->capture_default_str();
  c->add_option("--act-levels", lo->levels, "Levels a quantizer may take with --act-spikes (its trained L is always allowed)")
      ->delimiter(',')
      ->check(CLI::Range(1, 255))
      ->capture_default_str();
  c->add_flag("--compare", o->compare, "Also evaluate uniform widths, the other rounding method and mixed at the uniform budgets");
  c->add_flag("--report", *report, "Print the sensitivity of every layer and block");
  c->add_flag("--json", *json, "Print one JSON object on stdout");
  return [c, o, po, lo, json, report, hw_name, hw_sram, spec] {
    if (c->count("--act-spikes") > 0) {
      for (const char* w : {"--bits", "--widths", "--groups", "--group", "--method", "--sensitivity", "--qat-epochs", "--hw",
                            "--hw-sram", "--prune-blocks", "--prune-heads", "--prune-mlp", "--recover-minutes"}) {
        if (c->count(w) > 0) {
          throw Error(std::string("--act-spikes with ") + w, "activation levels are allocated on a QANN, weights and pruning on the float model",
                      "compress the float checkpoint first, make the QANN (spikefm train --init --qann), then allocate its levels");
        }
      }
      lo->checkpoint = o->checkpoint;
      lo->data_dir = o->data_dir;
      lo->out = o->out;
      lo->calib_images = o->calib_images;
      lo->split = o->split;
      lo->limit = o->limit;
      lo->compare = o->compare;
      lo->progress = !*json;
      return run_level_allocation(*lo, *json, *report);
    } else if (c->count("--act-levels") + c->count("--act-sensitivity") > 0) {
      throw Error("--act-levels/--act-sensitivity", "only apply with --act-spikes", "add --act-spikes 0.6 (a fraction of the trained spikes)");
    }
    if (!hw_name->empty()) {
      *spec = hw::load_hw_spec(hw::resolve_hw_preset(*hw_name));
      if (*hw_sram > 0) spec->synapse_sram_bytes = *hw_sram;
      o->hw = spec->name;
      if (c->count("--bits") == 0) o->bits = std::numeric_limits<double>::infinity();
      // One accumulator per scale group and token row: a channel of a grouped option holds rows x
      // groups neuron-state words (activity.cpp counts the same when pricing the network). A channel
      // larger than a core has no placement: cap 0 rules the option out.
      o->layer_cap_bits = [spec](const std::string&, int64_t out, int64_t, int64_t rows, int64_t groups) -> int64_t {
        if (rows * groups > spec->neurons_per_core) return 0;
        return hw::place_linear(*spec, out, rows * groups).max_unit_bytes * 8 * out;  // whole bytes per channel
      };
    } else if (c->count("--hw-sram") > 0) {
      throw Error("--hw-sram", "overrides the SRAM of a --hw preset, and no --hw was given", "add --hw loihi (or another preset)");
    }
    const bool prune = c->count("--prune-blocks") + c->count("--prune-heads") + c->count("--prune-mlp") > 0;
    const bool quantize = !prune || c->count("--bits") > 0;
    Json pj;
    std::filesystem::path pruned_tmp;
    if (prune) {
      if (o->out.empty()) throw Error("pruning", "no output path", "pass --out FILE.h5 for the pruned checkpoint");
      po->checkpoint = o->checkpoint;
      po->task = o->task;
      po->data_dir = o->data_dir;
      po->calib_images = o->calib_images;
      po->split = o->split;
      po->limit = o->limit;
      po->progress = !*json;
      // Pruned and then quantized: the pruned checkpoint is an intermediate file beside --out.
      po->out = quantize ? std::filesystem::path(o->out.string() + ".pruned.h5") : o->out;
      pruned_tmp = quantize ? po->out : std::filesystem::path();
      PruneReport pr = prune_checkpoint(*po);
      if (*json) {
        pj = prune_json(pr, *po);
      } else {
        print_prune(pr, *po);
      }
      if (!quantize) {
        if (*json) std::printf("%s\n", Json{{"prune", pj}}.dump().c_str());
        else std::printf("pruned checkpoint written to %s\n", o->out.string().c_str());
        return 0;
      }
      o->checkpoint = po->out;
      if (!*json) std::printf("\nquantizing the pruned model:\n");
    }
    CompressReport r;
    try {
      r = compress_checkpoint(*o);
    } catch (...) {
      if (!pruned_tmp.empty()) std::filesystem::remove(pruned_tmp);
      throw;
    }
    if (!pruned_tmp.empty()) std::filesystem::remove(pruned_tmp);
    if (*json) {
      Json j;
      if (prune) j["prune"] = pj;
      j["model"] = r.model;
      j["parameters"] = r.parameters;
      j["quantized_weights"] = r.weights;
      j["budget_bits"] = std::isinf(o->bits) ? Json() : Json(o->bits);
      if (!o->hw.empty()) {
        j["hw"] = {{"name", spec->name}, {"neurons_per_core", spec->neurons_per_core},
                   {"synapse_sram_bytes", spec->synapse_sram_bytes}, {"cores", spec->cores}};
      }
      j["method"] = o->method;
      j["groups"] = o->groups;
      j["uniform_group"] = o->group;
      j["float_calib_loss"] = r.float_loss;
      j["qat_steps"] = r.qat_steps;
      j["qat_seconds"] = r.qat_seconds;
      j["eval_split"] = o->split;
      j["eval_n"] = r.eval_n;
      Json vs = Json::array();
      for (const auto& v : r.variants) {
        vs.push_back({{"name", v.name}, {"effective_bits", v.effective_bits}, {"accuracy", v.accuracy}, {"calib_loss", v.calib_loss}});
      }
      j["variants"] = vs;
      Json ls = Json::array();
      for (const auto& l : r.layers) {
        Json os = Json::array();
        for (const auto& x : l.options) {
          Json xj{{"bits", x.bits}, {"group", x.group}, {"effective_bits", x.effective_bits},
                  {"delta_loss", x.delta_loss}, {"proxy", x.proxy}, {"fisher", x.fisher}};
          if (x.cap_bits >= 0) xj["cap_bits"] = x.cap_bits;
          os.push_back(xj);
        }
        const auto& c = l.options[l.chosen];
        Json lj{{"name", l.name}, {"block", l.block}, {"rows", l.rows}, {"cols", l.cols}, {"options", os},
                {"bits", c.bits}, {"group", c.group}, {"effective_bits", c.effective_bits}, {"token_rows", l.token_rows}};
        if (l.capped()) {
          const hw::LinearPlacement p = hw::place_linear(*spec, l.rows, l.token_rows * c.groups(l.cols));
          lj["hw"] = {{"cores", p.cores}, {"channels_per_core", p.units_per_core}, {"cap_bytes_per_channel", p.max_unit_bytes},
                      {"bytes_per_channel", channel_bytes(c, l.cols)}};
        }
        ls.push_back(lj);
      }
      j["layers"] = ls;
      Json bs = Json::array();
      for (const auto& b : r.blocks) {
        bs.push_back({{"name", b.name}, {"weights", b.weights}, {"widths", o->widths}, {"group", o->group}, {"delta_loss", b.delta_loss}});
      }
      j["blocks"] = bs;
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    char budget[160];
    if (std::isinf(o->bits)) std::snprintf(budget, sizeof budget, "no average budget");
    else std::snprintf(budget, sizeof budget, "budget %.3g bits/weight (scales included)", o->bits);
    std::printf("%s model, %lld quantized weights of %lld parameters; %s%s%s, %s; %s split, %lld samples\n", r.model.c_str(),
                static_cast<long long>(r.weights), static_cast<long long>(r.parameters), budget,
                o->hw.empty() ? "" : ", every layer within the synapse SRAM of its cores on ", o->hw.c_str(),
                o->method.c_str(), o->split.c_str(), static_cast<long long>(r.eval_n));
    std::printf("  %-34s %12s %10s %11s\n", "variant", "bits/weight", "accuracy", "calib loss");
    for (const auto& v : r.variants) {
      std::printf("  %-34s %12.3f %9.2f%% %11.4f\n", v.name.c_str(), v.effective_bits, 100 * v.accuracy, v.calib_loss);
    }
    auto label = [](const OptionSensitivity& x) {
      return "int" + std::to_string(x.bits) + (x.group ? "/g" + std::to_string(x.group) : std::string("/ch"));
    };
    std::printf("allocation:");
    for (const auto& l : r.layers) std::printf(" %s=%s", l.name.c_str(), label(l.options[l.chosen]).c_str());
    std::printf("\n");
    if (!o->hw.empty()) {
      std::printf("memory hierarchy (%s: %lld neuron-state words and %lld B synapse SRAM per core): each layer alone on the\n"
                  "fewest cores its neurons need (token rows x scale groups per channel); its weights fit when bytes/channel <= cap\n",
                  spec->name.c_str(), static_cast<long long>(spec->neurons_per_core), static_cast<long long>(spec->synapse_sram_bytes));
      std::printf("  %-26s %7s %6s %10s %12s %12s %8s\n", "layer", "tokens", "cores", "ch/core", "cap B/ch", "used B/ch", "chosen");
      int64_t cores = 0;
      for (const auto& l : r.layers) {
        if (!l.capped()) {
          std::printf("  %-26s %7s %6s %10s %12s %12s %8s\n", l.name.c_str(), "-", "dense", "-", "-", "-",
                      label(l.options[l.chosen]).c_str());
          continue;
        }
        const auto& x = l.options[l.chosen];
        const hw::LinearPlacement p = hw::place_linear(*spec, l.rows, l.token_rows * x.groups(l.cols));
        cores += p.cores;
        std::printf("  %-26s %7lld %6lld %10lld %12lld %12lld %8s\n", l.name.c_str(), static_cast<long long>(l.token_rows),
                    static_cast<long long>(p.cores), static_cast<long long>(p.units_per_core),
                    static_cast<long long>(p.max_unit_bytes), static_cast<long long>(channel_bytes(x, l.cols)),
                    label(x).c_str());
      }
      std::printf("linear layers alone need %lld cores of the chip's %lld%s\n", static_cast<long long>(cores),
                  static_cast<long long>(spec->cores),
                  cores > spec->cores ? " (more than it has: `spikefm energy` maps the rest off-chip)" : "");
    }
    if (*report) {
      std::printf("sensitivity: calibration-loss increase dL when the layer alone is quantized; proxy = 1/2 tr(dW H dW^T) / rows;\n"
                  "  fisher = 1/2 sum(F * dW^2), the second-order estimate of dL from the empirical Fisher diagonal F\n");
      std::printf("  %-26s %-12s %9s", "layer", "block", "weights");
      for (const auto& x : r.layers.front().options) std::printf(" %32s", (label(x) + " dL / proxy / fisher").c_str());
      std::printf("  chosen\n");
      for (const auto& l : r.layers) {
        std::printf("  %-26s %-12s %9lld", l.name.c_str(), l.block.c_str(), static_cast<long long>(l.rows * l.cols));
        for (const auto& x : l.options) std::printf(" %10.2e/%10.2e/%10.2e", x.delta_loss, x.proxy, x.fisher);
        std::printf("  %s\n", label(l.options[l.chosen]).c_str());
      }
      std::printf("blocks and model quantized as a unit (group %d): measured dL, and the sum of their layers' dL\n", o->group);
      for (const auto& b : r.blocks) {
        std::printf("  %-26s %9lld", b.name.c_str(), static_cast<long long>(b.weights));
        for (size_t w = 0; w < b.delta_loss.size(); ++w) {
          double sum = 0;
          for (const auto& l : r.layers) {
            if (b.name != "model" && l.block != b.name) continue;
            // the layer's option at this width and the block's granularity (groups >= cols are per channel)
            const int g = o->group >= l.cols ? 0 : o->group;
            for (const auto& x : l.options) {
              if (x.bits == o->widths[w] && x.group == g) {
                sum += x.delta_loss;
                break;
              }
            }
          }
          std::printf("  int%d %10.2e (sum %10.2e)", o->widths[w], b.delta_loss[w], sum);
        }
        std::printf("\n");
      }
    }
    return 0;
  };
}

}  // namespace spikefm::cli
