#include "ann_ref/compress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>

#include "ann_ref/bit_allocation.h"
#include "ann_ref/calibration.h"
#include "ann_ref/checkpoint.h"
#include "ann_ref/train_loop.h"
#include "ann_ref/trainer.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_eval.h"
#include "ann_ref/vqa_task.h"
#include "ann_ref/quant_layers.h"
#include "ann_ref/weight_quant.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/log.h"
#include "common/progress.h"
#include "datasets/fashion_mnist.h"
#include "datasets/fashion_vqa.h"

namespace spikefm {

namespace {

// One linear layer of the model and what calibration learned about it.
struct Layer {
  std::string name, block;
  QLinearImpl* lin = nullptr;
  torch::Tensor w0;               // float weights (out, in)
  std::vector<double> hessian;    // (in, in)
  std::vector<QuantizedMatrix> q; // per option (width × group)
  std::vector<torch::Tensor> deq; // per option: Ŵ (out, in)
};

std::string block_of(const std::string& name) {
  for (const char* stack : {"enc_blocks.", "dec_blocks."}) {
    if (name.rfind(stack, 0) == 0) {
      const std::string rest = name.substr(std::string(stack).size());
      return std::string(stack[0] == 'e' ? "encoder." : "decoder.") + rest.substr(0, rest.find('.'));
    }
  }
  return name;
}

// Token rows a layer's output neurons hold in the converted SNN (convert/mfm_to_snn: the encoder
// graph's rows_cap is num_patches, the decoder's num_patches + max_text_len); 0 for the patch
// embedding, which the converter runs on the dense unit.
int64_t token_rows_of(const std::string& name, const MfmConfig& c) {
  if (name == "patch_embed") return 0;
  if (name == "projector" || name.rfind("enc_blocks.", 0) == 0) return c.num_patches();
  return c.prefix_len() + c.max_text_len;
}

// Storage of a layer at one option, in bits (codes + scales): the knapsack's cost.
int64_t option_cost_bits(const OptionSensitivity& x, const LayerSensitivity& l) {
  return std::llround(x.effective_bits * static_cast<double>(l.rows * l.cols));
}

// A cap no option of the layer meets: say which layer, what the chip allows and what the narrowest
// option needs.
void check_cap(const LayerSensitivity& l, const std::string& hw) {
  if (!l.capped()) return;
  const OptionSensitivity* least = nullptr;
  for (const OptionSensitivity& x : l.options) {
    if (x.cap_bits < 0 || option_cost_bits(x, l) <= x.cap_bits) return;
    if (!least || x.effective_bits < least->effective_bits) least = &x;
  }
  const double need = least->effective_bits * static_cast<double>(l.cols);  // bits per output channel
  char msg[256];
  std::snprintf(msg, sizeof msg, "layer %s needs %.0f bits per output channel even at int%d, but its cores' synapse SRAM allows %lld",
                l.name.c_str(), need, least->bits, static_cast<long long>(least->cap_bits / l.rows));
  throw Error("the memory-hierarchy budget of " + (hw.empty() ? std::string("the chip") : hw), msg,
              "use a chip with more synapse SRAM per core, or allow narrower widths (--widths) or coarser scales (--groups 0)");
}

void set_weight(QLinearImpl* lin, const torch::Tensor& w) {
  torch::NoGradGuard ng;
  lin->weight.copy_(w);
}

QuantSpec spec_for(int bits, int group, int64_t cols) {
  QuantSpec s;
  s.bits = bits;
  s.group = group >= cols ? 0 : group;
  s.scale = ScaleType::fp16;
  return s;
}

}  // namespace

CompressReport compress_checkpoint(const CompressOptions& o) {
  if (o.task != "fashion-vqa") throw Error("--task " + o.task, "unknown task", "use fashion-vqa");
  if (o.method != "gptq" && o.method != "rtn") throw Error("--method " + o.method, "unknown method", "use gptq or rtn");
  if (o.sensitivity != "loss" && o.sensitivity != "proxy" && o.sensitivity != "fisher") {
    throw Error("--sensitivity " + o.sensitivity, "unknown measure", "use loss, proxy or fisher");
  }
  if (o.widths.empty()) throw Error("--widths", "no bit widths given", "e.g. --widths 8,4,2");
  if (o.groups.empty()) throw Error("--groups", "no scale granularity given", "e.g. --groups 32,0");
  for (int g : o.groups) {
    if (g < 0) throw Error("--groups", "a group size must be >= 0 (0 = per output channel), got " + std::to_string(g));
  }
  if (!(o.bits > 0) || (std::isinf(o.bits) && !o.layer_cap_bits)) {
    throw Error("--bits", "must be a positive number of bits per weight");
  }
  if (o.calib_images < 1) throw Error("--calib-images", "must be >= 1");
  if (o.qat_epochs < 0) throw Error("--qat-epochs", "must be >= 0");
  if (o.qat_epochs > 0 && !(o.qat_minutes > 0 && o.qat_lr > 0)) {
    throw Error("quantization-aware training", "--qat-minutes and --qat-lr must be > 0");
  }
  Checkpoint ck = load_checkpoint(o.checkpoint);
  Mfm& model = ck.model;
  if (model->config().qann || model->config().weight_bits != 0) {
    throw Error("compressing " + o.checkpoint.string(), "it is already a QANN / quantized checkpoint",
                "compress the float checkpoint (from spikefm train without --qann)");
  }
  model->eval();
  WordTokenizer tok(ck.vocab);
  FashionVqa data(o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir, static_cast<uint64_t>(ck.meta.seed));
  const CalibBatch calib = calib_batch(data, tok, o.calib_images);

  // --- 1. calibration: inputs of every linear layer ---
  std::vector<Layer> layers;
  for (const auto& item : model->named_modules("", false)) {
    if (auto* lin = dynamic_cast<QLinearImpl*>(item.value().get())) {
      Layer l;
      l.name = item.key();
      l.block = block_of(l.name);
      l.lin = lin;
      l.w0 = lin->weight.detach().clone();
      layers.push_back(std::move(l));
    }
  }
  std::vector<std::vector<torch::Tensor>> recorded(layers.size());
  for (size_t k = 0; k < layers.size(); ++k) layers[k].lin->record = &recorded[k];
  CompressReport rep;
  rep.model = model->config().size_name;
  rep.parameters = model->parameter_count();
  rep.float_loss = calib_loss(model, calib);
  for (size_t k = 0; k < layers.size(); ++k) {
    layers[k].lin->record = nullptr;
    torch::Tensor x = torch::cat(recorded[k], 0).contiguous();  // (n, in)
    recorded[k].clear();
    layers[k].hessian = input_hessian(x.data_ptr<float>(), x.size(0), static_cast<int>(x.size(1)));
    rep.weights += layers[k].w0.numel();
  }
  std::vector<torch::Tensor> fisher;
  {
    std::vector<torch::Tensor> weights;
    for (const Layer& l : layers) weights.push_back(l.lin->weight);
    fisher = fisher_diagonal(model, calib, weights);
  }

  // --- 2. every layer at every option: quantize, measure the loss increase alone ---
  struct Opt {
    int bits, group;
  };
  std::vector<Opt> opts;
  for (int b : o.widths) {
    for (int g : o.groups) opts.push_back({b, g});
  }
  auto quantize = [&](const Layer& l, int bits, int group, const std::string& method) {
    const int rows = static_cast<int>(l.w0.size(0)), cols = static_cast<int>(l.w0.size(1));
    const QuantSpec spec = spec_for(bits, group, cols);
    return method == "gptq" ? quantize_gptq(l.w0.data_ptr<float>(), rows, cols, l.hessian, spec)
                            : quantize_rtn(l.w0.data_ptr<float>(), rows, cols, spec);
  };
  std::optional<Progress> progress;
  if (o.progress) progress.emplace("sensitivity", static_cast<int64_t>(layers.size() * opts.size()), "layer-options");
  int64_t done = 0;
  for (size_t li = 0; li < layers.size(); ++li) {
    Layer& l = layers[li];
    LayerSensitivity s;
    s.name = l.name;
    s.block = l.block;
    s.rows = l.w0.size(0);
    s.cols = l.w0.size(1);
    s.token_rows = token_rows_of(l.name, model->config());
    torch::Tensor H = torch::from_blob(l.hessian.data(), {s.cols, s.cols}, torch::kFloat64);
    for (const Opt& op : opts) {
      l.q.push_back(quantize(l, op.bits, op.group, o.method));
      l.deq.push_back(dequantized_tensor(l.q.back()));
      OptionSensitivity os;
      os.bits = op.bits;
      os.group = l.q.back().spec.group;
      os.effective_bits = l.q.back().effective_bits();
      set_weight(l.lin, l.deq.back());
      os.delta_loss = calib_loss(model, calib) - rep.float_loss;
      set_weight(l.lin, l.w0);
      torch::Tensor dw = (l.w0 - l.deq.back()).to(torch::kFloat64);
      os.proxy = 0.5 * (dw.mm(H) * dw).sum().item<double>() / static_cast<double>(s.rows);
      os.fisher = 0.5 * (fisher[li] * dw * dw).sum().item<double>();
      if (o.layer_cap_bits && s.token_rows > 0) {
        os.cap_bits = o.layer_cap_bits(s.name, s.rows, s.cols, s.token_rows, os.groups(s.cols));
      }
      s.options.push_back(os);
      if (progress) progress->update(++done);
    }
    check_cap(s, o.hw);  // before the remaining layers' sensitivities are spent on an impossible budget
    rep.layers.push_back(std::move(s));
  }
  if (progress) progress->finish();

  // A layer at (bits, group) with `method`: the option computed above when there is one, else quantized
  // now. Returns the effective bits and Ŵ.
  auto quantized_at = [&](const Layer& l, int bits, int group, const std::string& method) {
    const int applied = spec_for(bits, group, l.w0.size(1)).group;
    if (method == o.method) {
      for (size_t i = 0; i < l.q.size(); ++i) {
        if (l.q[i].spec.bits == bits && l.q[i].spec.group == applied) return std::make_pair(l.q[i].effective_bits(), l.deq[i]);
      }
    }
    const QuantizedMatrix q = quantize(l, bits, group, method);
    return std::make_pair(q.effective_bits(), dequantized_tensor(q));
  };

  // Blocks and the whole model, each quantized as a unit at every width (granularity o.group).
  {
    std::vector<std::string> names;
    for (const Layer& l : layers) {
      if (std::find(names.begin(), names.end(), l.block) == names.end()) names.push_back(l.block);
    }
    names.push_back("model");
    for (const std::string& b : names) {
      BlockSensitivity bs;
      bs.name = b;
      for (const Layer& l : layers) {
        if (b == "model" || l.block == b) bs.weights += l.w0.numel();
      }
      for (int bits : o.widths) {
        for (const Layer& l : layers) {
          if (b == "model" || l.block == b) set_weight(l.lin, quantized_at(l, bits, o.group, o.method).second);
        }
        bs.delta_loss.push_back(calib_loss(model, calib) - rep.float_loss);
        for (const Layer& l : layers) set_weight(l.lin, l.w0);
      }
      rep.blocks.push_back(std::move(bs));
    }
  }

  // --- 3. allocation under the budget: one option index per layer ---
  auto allocate = [&](double bits_budget) {
    std::vector<AllocationUnit> units;
    for (size_t k = 0; k < layers.size(); ++k) {
      AllocationUnit u;
      u.name = layers[k].name;
      for (const OptionSensitivity& os : rep.layers[k].options) {
        BitOption opt;
        opt.bits = os.bits;
        opt.cost = option_cost_bits(os, rep.layers[k]);
        opt.cap = os.cap_bits;
        opt.error = o.sensitivity == "proxy"    ? os.proxy
                    : o.sensitivity == "fisher" ? os.fisher
                                                : std::max(0.0, os.delta_loss);
        u.options.push_back(opt);
      }
      units.push_back(std::move(u));
    }
    const int64_t budget = std::isinf(bits_budget)
                               ? std::numeric_limits<int64_t>::max() / 2
                               : static_cast<int64_t>(std::floor(bits_budget * static_cast<double>(rep.weights)));
    return allocate_bits(units, budget).choice;
  };

  // --- 4. evaluate variants: per layer an option index (>= 0) or a uniform (bits, group, method) ---
  auto evaluate = [&](const std::string& name, const std::vector<int>& chosen, std::optional<Opt> uniform,
                      const std::string& method) {
    CompressVariant v;
    v.name = name;
    double storage = 0;
    for (size_t k = 0; k < layers.size(); ++k) {
      Layer& l = layers[k];
      if (chosen.empty() && !uniform) {
        set_weight(l.lin, l.w0);
        continue;
      }
      if (!chosen.empty() && method == o.method) {
        storage += rep.layers[k].options[chosen[k]].effective_bits * static_cast<double>(l.w0.numel());
        set_weight(l.lin, l.deq[chosen[k]]);
        continue;
      }
      const Opt op = uniform ? *uniform : opts[chosen[k]];
      const auto [bits, w] = quantized_at(l, op.bits, op.group, method);
      storage += bits * static_cast<double>(l.w0.numel());
      set_weight(l.lin, w);
    }
    v.effective_bits = chosen.empty() && !uniform ? 32.0 : storage / static_cast<double>(rep.weights);
    v.calib_loss = calib_loss(model, calib);
    VqaScore sc = score_fashion_vqa(model, tok, data, o.split, o.limit, 256, o.progress ? "eval " + name : "");
    v.accuracy = sc.accuracy();
    rep.eval_n = sc.n;
    log::info(name + ": " + std::to_string(v.effective_bits) + " bits/weight, accuracy " + std::to_string(v.accuracy));
    return v;
  };
  rep.variants.push_back(evaluate("float", {}, std::nullopt, o.method));
  const std::vector<int> chosen = allocate(o.bits);
  for (size_t k = 0; k < layers.size(); ++k) rep.layers[k].chosen = chosen[k];
  // The chosen model (dequantized weights + packed codes) to o.out, atomically.
  auto write_checkpoint = [&](const std::vector<int>& choice, const std::string& method) {
    for (size_t k = 0; k < layers.size(); ++k) set_weight(layers[k].lin, layers[k].deq[choice[k]]);
    AtomicFile out(o.out);
    save_checkpoint(out.temp_path(), model, ck.vocab, ck.meta);
    QuantStore store;
    store.method = method;
    store.budget_bits = o.bits;
    store.qat_steps = rep.qat_steps;
    store.hw = o.hw;
    for (size_t k = 0; k < layers.size(); ++k) store.layers[layers[k].name] = layers[k].q[choice[k]];
    {
      H5File f = H5File::open_rw(out.temp_path());
      write_quant_store(f, store);
      f.close();
    }
    out.commit();
  };
  rep.variants.push_back(evaluate("mixed " + o.method, chosen, std::nullopt, o.method));
  if (o.compare) {
    const std::string other = o.method == "gptq" ? "rtn" : "gptq";
    const std::string gname = o.group == 0 ? "per-channel" : "g" + std::to_string(o.group);
    for (int b : o.widths) {
      for (const std::string& m : {o.method, other}) {
        rep.variants.push_back(evaluate("uniform int" + std::to_string(b) + " " + gname + " " + m, {}, Opt{b, o.group}, m));
      }
    }
    rep.variants.push_back(evaluate("mixed " + other, chosen, std::nullopt, other));
    // mixed at the budget of each uniform width below 8 (its exact effective bits)
    for (int b : o.widths) {
      if (b == 8) continue;
      double eff = 0;
      for (const Layer& l : layers) {
        eff += quantized_at(l, b, o.group, o.method).first * static_cast<double>(l.w0.numel());
      }
      eff /= static_cast<double>(rep.weights);
      rep.variants.push_back(evaluate("mixed " + o.method + " @ uniform int" + std::to_string(b) + " budget",
                                      allocate(eff), std::nullopt, o.method));
    }
  }
  std::string written_method = o.method;
  if (o.qat_epochs > 0) {
    // Fine-tune from the float weights with every layer fake-quantized (RTN) at its chosen option.
    for (size_t k = 0; k < layers.size(); ++k) {
      Layer& l = layers[k];
      set_weight(l.lin, l.w0);
      const QuantSpec spec = spec_for(opts[chosen[k]].bits, opts[chosen[k]].group, l.w0.size(1));
      l.lin->weight_quant = rtn_weight_quant(spec);
    }
    TrainOptions t;
    t.epochs = o.qat_epochs;
    t.minutes = o.qat_minutes;
    t.seed = static_cast<uint64_t>(ck.meta.seed);
    t.progress = o.progress;
    const std::unique_ptr<VqaTask> task = fashion_vqa_task(data);
    std::unique_ptr<torch::optim::AdamW> adamw = make_adamw(model, o.qat_lr, 0.01);
    const TrainReport tr = run_train_loop(model, *task, tok, t, o.qat_lr, *adamw, model->parameters());
    model->eval();
    rep.qat_steps = tr.steps;
    rep.qat_seconds = tr.seconds;
    for (size_t k = 0; k < layers.size(); ++k) {
      Layer& l = layers[k];
      l.lin->weight_quant = nullptr;
      const torch::Tensor w = l.lin->weight.detach().contiguous();
      const QuantSpec spec = spec_for(opts[chosen[k]].bits, opts[chosen[k]].group, w.size(1));
      l.q[chosen[k]] = quantize_rtn(w.data_ptr<float>(), static_cast<int>(w.size(0)), static_cast<int>(w.size(1)), spec);
      l.deq[chosen[k]] = dequantized_tensor(l.q[chosen[k]]);
    }
    rep.variants.push_back(evaluate("mixed + QAT (" + std::to_string(tr.steps) + " steps), rtn", chosen, std::nullopt, o.method));
    written_method = "rtn";
  }
  if (!o.out.empty()) write_checkpoint(chosen, written_method);
  for (Layer& l : layers) set_weight(l.lin, l.w0);
  return rep;
}

}  // namespace spikefm
