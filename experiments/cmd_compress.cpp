// spikefm compress: mixed-precision weight quantization of a trained MFM (ann_ref/compress.h).
#include <cstdio>
#include <map>
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
  c->add_option("--group", o->group, "Columns per scale group (0 = one scale per output channel)")->check(CLI::NonNegativeNumber)->capture_default_str();
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
      j["group"] = o->group;
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
        ls.push_back({{"name", l.name}, {"block", l.block}, {"rows", l.rows}, {"cols", l.cols}, {"widths", o->widths},
                      {"delta_loss", l.delta_loss}, {"proxy", l.proxy}, {"bits", l.chosen_bits}, {"effective_bits", l.effective_bits}});
      }
      j["layers"] = ls;
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("%s model, %lld quantized weights of %lld parameters; budget %.3g bits/weight, %s, group %d; %s split, %lld samples\n",
                r.model.c_str(), static_cast<long long>(r.weights), static_cast<long long>(r.parameters), o->bits,
                o->method.c_str(), o->group, o->split.c_str(), static_cast<long long>(r.eval_n));
    std::printf("  %-34s %12s %10s %11s\n", "variant", "bits/weight", "accuracy", "calib loss");
    for (const auto& v : r.variants) {
      std::printf("  %-34s %12.3f %9.2f%% %11.4f\n", v.name.c_str(), v.effective_bits, 100 * v.accuracy, v.calib_loss);
    }
    std::printf("allocation (bits per layer):");
    for (const auto& l : r.layers) std::printf(" %s=%d", l.name.c_str(), l.chosen_bits);
    std::printf("\n");
    if (*report) {
      std::printf("sensitivity: calibration-loss increase when the layer alone is quantized (proxy: 1/2 tr(dW H dW^T) / rows)\n");
      std::printf("  %-26s %-12s %10s", "layer", "block", "weights");
      for (int b : o->widths) std::printf(" %11s %11s", ("dL int" + std::to_string(b)).c_str(), ("proxy" + std::to_string(b)).c_str());
      std::printf(" %5s\n", "bits");
      std::map<std::string, std::vector<double>> blocks;
      for (const auto& l : r.layers) {
        std::printf("  %-26s %-12s %10lld", l.name.c_str(), l.block.c_str(), static_cast<long long>(l.rows * l.cols));
        auto& agg = blocks[l.block];
        agg.resize(o->widths.size());
        for (size_t w = 0; w < o->widths.size(); ++w) {
          std::printf(" %11.3g %11.3g", l.delta_loss[w], l.proxy[w]);
          agg[w] += l.delta_loss[w];
        }
        std::printf(" %5d\n", l.chosen_bits);
      }
      std::printf("per block (sum of the layers' dL):\n");
      std::vector<double> model_sum(o->widths.size());
      for (const auto& [block, agg] : blocks) {
        std::printf("  %-26s", block.c_str());
        for (size_t w = 0; w < agg.size(); ++w) {
          std::printf(" int%d %10.3g", o->widths[w], agg[w]);
          model_sum[w] += agg[w];
        }
        std::printf("\n");
      }
      std::printf("  %-26s", "model");
      for (size_t w = 0; w < model_sum.size(); ++w) std::printf(" int%d %10.3g", o->widths[w], model_sum[w]);
      std::printf("\n");
    }
    return 0;
  };
}

}  // namespace spikefm::cli
