// spikefm compress: mixed-precision weight quantization of a trained MFM (ann_ref/compress.h).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "ann_ref/compress.h"
#include "common/error.h"
#include "common/json.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Action add_compress(CLI::App& app) {
  auto o = std::make_shared<CompressOptions>();
  auto json = std::make_shared<bool>(false);
  auto report = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("compress", "Mixed-precision weight quantization: per-layer sensitivity, exact bit allocation, GPTQ/RTN");
  c->add_option("--checkpoint", o->checkpoint, "Float checkpoint (from spikefm train)")->required()->check(CLI::ExistingFile);
  c->add_option("--task", o->task, "Task")->check(CLI::IsMember({"fashion-vqa"}))->capture_default_str();
  c->add_option("--bits", o->bits, "Budget: average effective bits per weight, scales included")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--widths", o->widths, "Bit widths a layer may get")->delimiter(',')->check(CLI::IsMember({8, 4, 2}))->capture_default_str();
  c->add_option("--groups", o->groups, "Scale granularities a layer may get: columns per group, 0 = one scale per output channel")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--group", o->group, "Granularity of the uniform baselines (--compare)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--method", o->method, "Rounding: gptq (second-order, Frantar et al. 2023) or rtn")->check(CLI::IsMember({"gptq", "rtn"}))->capture_default_str();
  c->add_option("--sensitivity", o->sensitivity, "What the allocation minimises: loss (measured calibration-loss increase) or proxy (Hessian output error)")
      ->check(CLI::IsMember({"loss", "proxy"}))
      ->capture_default_str();
  c->add_option("--calib-images", o->calib_images, "Training images for calibration (x 4 questions)")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--split", o->split, "Evaluation split")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--limit", o->limit, "Evaluation samples (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_option("--out", o->out, "Write the quantized checkpoint here (dequantized /params + packed /quant)");
  c->add_flag("--compare", o->compare, "Also evaluate uniform widths, the other rounding method and mixed at the uniform budgets");
  c->add_flag("--report", *report, "Print the sensitivity of every layer and block");
  c->add_flag("--json", *json, "Print one JSON object on stdout");
  return [o, json, report] {
    CompressReport r = compress_checkpoint(*o);
    if (*json) {
      Json j;
      j["model"] = r.model;
      j["parameters"] = r.parameters;
      j["quantized_weights"] = r.weights;
      j["budget_bits"] = o->bits;
      j["method"] = o->method;
      j["groups"] = o->groups;
      j["uniform_group"] = o->group;
      j["float_calib_loss"] = r.float_loss;
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
          os.push_back({{"bits", x.bits}, {"group", x.group}, {"effective_bits", x.effective_bits},
                        {"delta_loss", x.delta_loss}, {"proxy", x.proxy}});
        }
        const auto& c = l.options[l.chosen];
        ls.push_back({{"name", l.name}, {"block", l.block}, {"rows", l.rows}, {"cols", l.cols}, {"options", os},
                      {"bits", c.bits}, {"group", c.group}, {"effective_bits", c.effective_bits}});
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
    std::printf("%s model, %lld quantized weights of %lld parameters; budget %.3g bits/weight (scales included), %s; %s split, %lld samples\n",
                r.model.c_str(), static_cast<long long>(r.weights), static_cast<long long>(r.parameters), o->bits,
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
    if (*report) {
      std::printf("sensitivity: calibration-loss increase dL when the layer alone is quantized; proxy = 1/2 tr(dW H dW^T) / rows\n");
      std::printf("  %-26s %-12s %9s", "layer", "block", "weights");
      for (const auto& x : r.layers.front().options) std::printf(" %21s", (label(x) + " dL / proxy").c_str());
      std::printf("  chosen\n");
      for (const auto& l : r.layers) {
        std::printf("  %-26s %-12s %9lld", l.name.c_str(), l.block.c_str(), static_cast<long long>(l.rows * l.cols));
        for (const auto& x : l.options) std::printf(" %10.2e/%10.2e", x.delta_loss, x.proxy);
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
