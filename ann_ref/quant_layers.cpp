#include "ann_ref/quant_layers.h"

#include <cstring>

#include "common/error.h"

namespace spikefm {

torch::Tensor dequantized_tensor(const QuantizedMatrix& q) {
  std::vector<float> d = q.dequantize();
  return torch::from_blob(d.data(), {q.rows, q.cols}, torch::kFloat32).clone();
}

std::function<torch::Tensor(const torch::Tensor&)> rtn_weight_quant(const QuantSpec& spec) {
  return [spec](const torch::Tensor& w) {
    const torch::Tensor c = w.detach().to(torch::kFloat32).contiguous();
    return dequantized_tensor(quantize_rtn(c.data_ptr<float>(), static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), spec));
  };
}

QLinearImpl* linear_named(Mfm& model, const std::string& name) {
  for (auto& item : model->named_modules("", /*include_self=*/false)) {
    if (item.key() == name) return dynamic_cast<QLinearImpl*>(item.value().get());
  }
  return nullptr;
}

void check_quant_store(Mfm& model, const QuantStore& s, const std::string& where) {
  const std::string fix = "re-run spikefm compress on the model, or train from it with `spikefm train --init`";
  for (const auto& [name, q] : s.layers) {
    QLinearImpl* l = linear_named(model, name);
    if (l == nullptr) throw Error(where + ":" + quant_path(name), "the model has no linear layer '" + name + "'", fix);
    if (l->weight.size(0) != q.rows || l->weight.size(1) != q.cols) {
      throw Error(where + ":" + quant_path(name), "codes are (" + std::to_string(q.rows) + ", " + std::to_string(q.cols) +
                                                      "), the weight is (" + std::to_string(l->weight.size(0)) + ", " +
                                                      std::to_string(l->weight.size(1)) + ")", fix);
    }
    const std::vector<float> d = q.dequantize();
    const torch::Tensor w = l->weight.detach().to(torch::kFloat32).contiguous();
    if (std::memcmp(d.data(), w.data_ptr<float>(), d.size() * sizeof(float)) != 0) {
      throw Error(where + ":" + quant_path(name), "the stored codes do not reproduce the layer's weights (changed after compression)", fix);
    }
  }
}

void use_stored_weights(Mfm& model, const QuantStore& s) {
  for (const auto& item : s.layers) {
    if (QLinearImpl* l = linear_named(model, item.first)) l->weight_quant = [](const torch::Tensor& w) { return w; };
  }
}

void fake_quantize_as_stored(Mfm& model, const QuantStore& s) {
  for (const auto& [name, q] : s.layers) {
    QLinearImpl* l = linear_named(model, name);
    if (l == nullptr) throw Error("fake-quantizing stored layers", "the model has no linear layer '" + name + "'");
    l->weight_quant = rtn_weight_quant(q.spec);
  }
}

QuantStore requantize_as_stored(Mfm& model, const QuantStore& s, int64_t steps) {
  QuantStore out = s;
  out.method = "rtn";
  out.qat_steps = s.qat_steps + steps;
  torch::NoGradGuard ng;
  for (auto& [name, q] : out.layers) {
    QLinearImpl* l = linear_named(model, name);
    if (l == nullptr) throw Error("re-quantizing stored layers", "the model has no linear layer '" + name + "'");
    const torch::Tensor w = l->weight.detach().to(torch::kFloat32).contiguous();
    q = quantize_rtn(w.data_ptr<float>(), q.rows, q.cols, q.spec);
    l->weight.copy_(dequantized_tensor(q));
    l->weight_quant = [](const torch::Tensor& x) { return x; };
  }
  return out;
}

}  // namespace spikefm
