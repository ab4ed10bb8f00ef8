#include "ann_ref/quant_store.h"

#include <cmath>
#include <functional>

#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm {

namespace {

constexpr const char* kRoot = "/quant";
constexpr const char* kFix = "re-run spikefm compress to write the file again";

std::string dots_to_slashes(std::string s) {
  for (char& c : s) c = c == '.' ? '/' : c;
  return s;
}

std::string slashes_to_dots(std::string s) {
  for (char& c : s) c = c == '/' ? '.' : c;
  return s;
}

int64_t need_int_attr(const H5File& f, const std::string& obj, const std::string& name) {
  if (!f.has_attr(obj, name)) throw Error("reading " + f.filename() + ":" + obj, "attribute '" + name + "' is missing", kFix);
  return f.attr_int(obj, name);
}

QuantizedMatrix read_layer(const H5File& f, const std::string& g) {
  const std::string where = "reading " + f.filename() + ":" + g;
  const int64_t bits = need_int_attr(f, g, "bits");
  const int64_t group = need_int_attr(f, g, "group");
  const int64_t cols = need_int_attr(f, g, "cols");
  if (bits != 8 && bits != 4 && bits != 2) throw Error(where, "bits = " + std::to_string(bits) + ", expected 8, 4 or 2", kFix);
  if (cols < 1 || cols > (1 << 24)) throw Error(where, "cols = " + std::to_string(cols) + " is out of range", kFix);
  if (group < 1 || group > cols) {
    throw Error(where, "group = " + std::to_string(group) + ", expected 1..cols = " + std::to_string(cols), kFix);
  }
  if (f.has_attr(g, "scale_type") && f.attr_string(g, "scale_type") != "fp16") {
    throw Error(where, "scale_type '" + f.attr_string(g, "scale_type") + "' is not supported (fp16 only)", kFix);
  }
  QuantizedMatrix q;
  q.cols = static_cast<int>(cols);
  q.spec.bits = static_cast<int>(bits);
  q.spec.group = group == cols ? 0 : static_cast<int>(group);
  q.spec.scale = ScaleType::fp16;
  Shape shape;
  q.packed = f.read<uint8_t>(g + "/codes", &shape);
  if (shape.size() != 2 || shape[0] < 1) throw Error(where + "/codes", "expected a 2-d (out, bytes per row) array", kFix);
  q.rows = static_cast<int>(shape[0]);
  if (shape[1] != q.bytes_per_row()) {
    throw Error(where + "/codes", "has " + std::to_string(shape[1]) + " bytes per row; " + std::to_string(cols) + " columns at " +
                                      std::to_string(bits) + " bits need " + std::to_string(q.bytes_per_row()), kFix);
  }
  q.scales = f.read_exact<float>(g + "/scales", {q.rows, q.groups_per_row()});
  for (size_t k = 0; k < q.scales.size(); ++k) {
    if (!std::isfinite(q.scales[k]) || q.scales[k] < 0) {
      throw Error(where + "/scales", "entry " + std::to_string(k) + " is " + std::to_string(q.scales[k]) +
                                         "; scales must be finite and >= 0", kFix);
    }
  }
  try {
    unpack_codes(q.packed, q.rows, q.cols, q.spec.bits);  // range check of every code
  } catch (const Error& e) {
    throw e.with_context(where + "/codes");
  }
  return q;
}

}  // namespace

std::string quant_path(const std::string& layer) { return std::string(kRoot) + "/" + dots_to_slashes(layer) + "/weight"; }

void write_quant_store(H5File& f, const QuantStore& s) {
  f.create_group(kRoot);
  f.set_attr(kRoot, "method", s.method);
  f.set_attr(kRoot, "budget_bits", s.budget_bits);
  f.set_attr(kRoot, "qat_steps", s.qat_steps);
  if (!s.hw.empty()) f.set_attr(kRoot, "hw", s.hw);
  for (const auto& [name, q] : s.layers) {
    const std::string g = quant_path(name);
    f.write(g + "/codes", q.packed.data(), {q.rows, q.bytes_per_row()});
    f.write(g + "/scales", q.scales.data(), {q.rows, q.groups_per_row()});
    f.set_attr(g, "bits", int64_t{q.spec.bits});
    f.set_attr(g, "group", int64_t{q.group_size()});
    f.set_attr(g, "cols", int64_t{q.cols});
    f.set_attr(g, "scale_type", std::string(q.spec.scale == ScaleType::fp16 ? "fp16" : "fp32"));
  }
}

QuantStore read_quant_store(const H5File& f) {
  QuantStore s;
  if (!f.exists(kRoot)) return s;
  if (!f.is_group(kRoot)) throw Error("reading " + f.filename() + ":" + kRoot, "is not a group", kFix);
  if (f.has_attr(kRoot, "method")) s.method = f.attr_string(kRoot, "method");
  if (f.has_attr(kRoot, "budget_bits")) s.budget_bits = f.attr_double(kRoot, "budget_bits");
  if (f.has_attr(kRoot, "qat_steps")) s.qat_steps = f.attr_int(kRoot, "qat_steps");
  if (f.has_attr(kRoot, "hw")) s.hw = f.attr_string(kRoot, "hw");
  // Every group that holds `codes` is one layer's weight: /quant/<layer path>/weight.
  std::function<void(const std::string&)> walk = [&](const std::string& g) {
    if (f.exists(g + "/codes")) {
      const std::string suffix = "/weight";
      if (g.size() <= std::string(kRoot).size() + suffix.size() || g.compare(g.size() - suffix.size(), suffix.size(), suffix) != 0) {
        throw Error("reading " + f.filename() + ":" + g, "codes outside a '<layer>/weight' group", kFix);
      }
      const std::string layer = g.substr(std::string(kRoot).size() + 1, g.size() - suffix.size() - std::string(kRoot).size() - 1);
      s.layers[slashes_to_dots(layer)] = read_layer(f, g);
      return;
    }
    for (const std::string& c : f.children(g)) {
      if (f.is_group(g + "/" + c)) walk(g + "/" + c);
    }
  };
  walk(kRoot);
  if (s.layers.empty()) throw Error("reading " + f.filename() + ":" + kRoot, "the group holds no layer", kFix);
  return s;
}

}  // namespace spikefm
