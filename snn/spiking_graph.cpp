#include "snn/spiking_graph.h"

#include <cmath>

#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm::snn {

namespace {

const char* kKindNames[] = {"pixel_input", "row_input", "encode_linear", "linear", "neuron", "add",
                            "layer_norm",  "qk_product", "softmax",      "av_product"};
const char* kNeuronNames[] = {"st_bif", "burst", "if_rate"};

void check_finite(const std::vector<float>& v, const std::string& node, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw Error("spiking graph node " + node, std::string(what) + "[" + std::to_string(i) + "] is " + std::to_string(v[i]),
                  "the converted model has NaN/Inf parameters; re-convert a valid checkpoint");
    }
  }
}

}  // namespace

const char* op_kind_name(OpKind kind) { return kKindNames[static_cast<int>(kind)]; }

OpKind op_kind_from_name(const std::string& name) {
  for (int i = 0; i < 10; ++i) {
    if (name == kKindNames[i]) return static_cast<OpKind>(i);
  }
  throw Error("spiking graph", "unknown operator kind '" + name + "'", "the file was written by a newer spikefm");
}

const char* neuron_kind_name(NeuronKind kind) { return kNeuronNames[static_cast<int>(kind)]; }

NeuronKind neuron_kind_from_name(const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    if (name == kNeuronNames[i]) return static_cast<NeuronKind>(i);
  }
  throw Error("neuron model '" + name + "'", "unknown", "use st-bif, burst or if-rate");
}

int SpikingGraph::find(const std::string& node_name) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].name == node_name) return static_cast<int>(i);
  }
  return -1;
}

void SpikingGraph::validate() const {
  auto fail = [&](const OpNode& n, const std::string& why) {
    throw Error("spiking graph '" + name + "', node " + n.name + " (" + op_kind_name(n.kind) + ")", why);
  };
  if (rows_cap < 1) throw Error("spiking graph '" + name + "'", "rows_cap must be >= 1");
  if (output < 0 || output >= static_cast<int>(nodes.size())) throw Error("spiking graph '" + name + "'", "no output node");
  for (size_t idx = 0; idx < nodes.size(); ++idx) {
    const OpNode& n = nodes[idx];
    for (int in : n.inputs) {
      if (in < 0 || in >= static_cast<int>(idx)) fail(n, "input index " + std::to_string(in) + " is not an earlier node");
    }
    auto need_inputs = [&](size_t k) {
      if (n.inputs.size() != k) fail(n, "needs " + std::to_string(k) + " inputs, has " + std::to_string(n.inputs.size()));
    };
    auto input = [&](int k) -> const OpNode& { return nodes[n.inputs[k]]; };
    switch (n.kind) {
      case OpKind::pixel_input:
      case OpKind::row_input:
        need_inputs(0);
        if (n.cols < 1) fail(n, "cols must be >= 1");
        break;
      case OpKind::encode_linear:
      case OpKind::linear: {
        need_inputs(1);
        const OpNode& src = input(0);
        if (n.kind == OpKind::linear && src.kind != OpKind::neuron) fail(n, "input must be a neuron node (spikes)");
        if (src.is_map() || n.in < 1) fail(n, "input must be token rows with >= 1 column, not an attention map");
        if (n.kind == OpKind::encode_linear && src.kind != OpKind::pixel_input) fail(n, "input must be a pixel_input");
        if (src.cols != n.in) fail(n, "input has " + std::to_string(src.cols) + " columns, weight expects " + std::to_string(n.in));
        if (n.cols < 1 || n.weight.size() != static_cast<size_t>(n.cols) * n.in) fail(n, "weight is not (out, in)");
        if (n.weight_bits != 8 && n.weight_bits != 4 && n.weight_bits != 2) fail(n, "weight_bits must be 8, 4 or 2");
        if (n.group < 0 || n.group > n.in) fail(n, "group must be in [0, in]");
        if (n.scale.size() != static_cast<size_t>(n.cols) * n.groups() || n.bias.size() != static_cast<size_t>(n.cols)) {
          fail(n, "scale must have out x groups entries and bias `out` entries");
        }
        {
          const int qmax = (1 << (n.weight_bits - 1)) - 1;
          for (int8_t w : n.weight) {
            if (w < -qmax || w > qmax) fail(n, "weights must be in [-" + std::to_string(qmax) + ", " + std::to_string(qmax) + "] at " + std::to_string(n.weight_bits) + " bits");
          }
        }
        check_finite(n.scale, n.name, "scale");
        check_finite(n.bias, n.name, "bias");
        break;
      }
      case OpKind::neuron:
        need_inputs(1);
        if (input(0).is_map() != (n.cols == 0) || (n.cols != 0 && n.cols != input(0).cols)) fail(n, "shape differs from its input");
        if (n.cols == 0) {
          if (n.heads != input(0).heads) fail(n, "heads differ from its input");
        }
        if (!std::isfinite(n.theta) || !(n.theta > 0)) fail(n, "theta must be finite and > 0 (got " + std::to_string(n.theta) + ")");
        if (n.neuron != NeuronKind::if_rate && !(n.lo <= 0 && 0 <= n.hi && n.lo < n.hi)) {
          fail(n, "spike-count bounds must satisfy lo <= 0 <= hi, lo < hi (got " + std::to_string(n.lo) + ", " + std::to_string(n.hi) + ")");
        }
        if (n.burst < 1 || n.burst > 127) fail(n, "burst must be in [1, 127]");
        break;
      case OpKind::add:
        need_inputs(2);
        if (input(0).cols != n.cols || input(1).cols != n.cols || n.cols < 1) fail(n, "inputs must both have `cols` columns");
        break;
      case OpKind::layer_norm:
        need_inputs(1);
        if (input(0).cols != n.cols || n.cols < 1) fail(n, "shape differs from its input");
        if (n.gamma.size() != static_cast<size_t>(n.cols) || n.beta.size() != static_cast<size_t>(n.cols)) fail(n, "gamma/beta must have `cols` entries");
        check_finite(n.gamma, n.name, "gamma");
        check_finite(n.beta, n.name, "beta");
        if (!(n.eps > 0)) fail(n, "eps must be > 0");
        break;
      case OpKind::qk_product:
      case OpKind::av_product: {
        need_inputs(2);
        const OpNode& a = input(0);
        const OpNode& b = input(1);
        if (a.kind != OpKind::neuron || b.kind != OpKind::neuron) fail(n, "both inputs must be neuron nodes (spikes)");
        if (n.kind == OpKind::qk_product) {
          if (a.cols < 1 || a.cols != b.cols || a.cols % n.heads != 0) fail(n, "q and k must have equal columns, a multiple of heads");
          if (n.cols != 0) fail(n, "an attention map has cols = 0");
        } else {
          if (!a.is_map() || a.heads != n.heads) fail(n, "first input must be the attention-map neurons with the same heads");
          if (b.cols < 1 || b.cols % n.heads != 0 || n.cols != b.cols) fail(n, "v columns must be a multiple of heads and equal cols");
        }
        if (!std::isfinite(n.prod_scale)) fail(n, "prod_scale is not finite");
        break;
      }
      case OpKind::softmax:
        need_inputs(1);
        if (input(0).kind != OpKind::qk_product) fail(n, "input must be a qk_product");
        if (n.heads != input(0).heads || n.cols != 0) fail(n, "shape differs from its input");
        break;
    }
  }
}

void SpikingGraph::write(H5File& f, const std::string& g) const {
  f.create_group(g);
  f.set_attr(g, "name", name);
  f.set_attr(g, "rows_cap", int64_t{rows_cap});
  f.set_attr(g, "coding", std::string(coding == Coding::exact ? "exact" : "rate"));
  f.set_attr(g, "output", nodes[output].name);
  std::vector<std::string> order;
  for (const auto& n : nodes) order.push_back(n.name);
  f.write_strings(g + "/order", order, {static_cast<int64_t>(order.size())});
  for (const auto& n : nodes) {
    const std::string p = g + "/nodes/" + n.name;
    f.create_group(p);
    f.set_attr(p, "kind", std::string(op_kind_name(n.kind)));
    f.set_attr(p, "cols", int64_t{n.cols});
    f.set_attr(p, "heads", int64_t{n.heads});
    std::vector<std::string> ins;
    for (int i : n.inputs) ins.push_back(nodes[i].name);
    if (!ins.empty()) f.write_strings(p + "/inputs", ins, {static_cast<int64_t>(ins.size())});
    switch (n.kind) {
      case OpKind::encode_linear:
      case OpKind::linear:
        f.set_attr(p, "in", int64_t{n.in});
        f.write(p + "/weight", n.weight.data(), {n.cols, n.in});
        f.write(p + "/scale", n.scale.data(), {n.cols, n.groups()});
        f.set_attr(p, "weight_bits", int64_t{n.weight_bits});
        f.set_attr(p, "group", int64_t{n.group});
        f.write(p + "/bias", n.bias.data(), {n.cols});
        break;
      case OpKind::neuron:
        f.set_attr(p, "neuron", std::string(neuron_kind_name(n.neuron)));
        f.set_attr(p, "theta", double{n.theta});
        f.set_attr(p, "lo", int64_t{n.lo});
        f.set_attr(p, "hi", int64_t{n.hi});
        f.set_attr(p, "burst", int64_t{n.burst});
        break;
      case OpKind::layer_norm:
        f.write(p + "/gamma", n.gamma.data(), {n.cols});
        f.write(p + "/beta", n.beta.data(), {n.cols});
        f.set_attr(p, "eps", double{n.eps});
        break;
      case OpKind::qk_product:
      case OpKind::av_product:
      case OpKind::softmax:
        f.set_attr(p, "prod_scale", double{n.prod_scale});
        f.set_attr(p, "causal", int64_t{n.causal ? 1 : 0});
        break;
      default:
        break;
    }
  }
}

SpikingGraph SpikingGraph::read(const H5File& f, const std::string& g) {
  SpikingGraph sg;
  auto small_int = [&](const std::string& obj, const char* attr, int64_t lo, int64_t hi) {
    int64_t v = f.attr_int(obj, attr);
    if (v < lo || v > hi) {
      throw Error("reading " + f.filename() + ":" + obj + " attribute " + attr,
                  std::to_string(v) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return static_cast<int>(v);
  };
  sg.name = f.attr_string(g, "name");
  sg.rows_cap = small_int(g, "rows_cap", 1, 1 << 16);
  std::string coding = f.attr_string(g, "coding");
  if (coding != "exact" && coding != "rate") throw Error("reading " + f.filename() + ":" + g, "unknown coding '" + coding + "'");
  sg.coding = coding == "exact" ? Coding::exact : Coding::rate;
  std::vector<std::string> order = f.read_strings(g + "/order");
  for (const auto& name : order) {
    const std::string p = g + "/nodes/" + name;
    if (!f.is_group(p)) throw Error("reading " + f.filename() + ":" + p, "node listed in order but missing");
    OpNode n;
    n.name = name;
    n.kind = op_kind_from_name(f.attr_string(p, "kind"));
    n.cols = small_int(p, "cols", 0, 1 << 20);
    n.heads = small_int(p, "heads", 1, 1024);
    if (f.is_dataset(p + "/inputs")) {
      for (const auto& in : f.read_strings(p + "/inputs")) {
        int idx = sg.find(in);
        if (idx < 0) throw Error("reading " + f.filename() + ":" + p + "/inputs", "'" + in + "' is not an earlier node");
        n.inputs.push_back(idx);
      }
    }
    switch (n.kind) {
      case OpKind::encode_linear:
      case OpKind::linear:
        n.in = small_int(p, "in", 1, 1 << 20);
        n.weight = f.read_exact<int8_t>(p + "/weight", {n.cols, n.in});
        // weight_bits and group arrived with grouped weights; files without them hold int8 per-channel.
        if (f.has_attr(p, "weight_bits")) n.weight_bits = small_int(p, "weight_bits", 2, 8);
        if (f.has_attr(p, "group")) n.group = small_int(p, "group", 0, n.in);
        {
          Shape shape;
          n.scale = f.read<float>(p + "/scale", &shape);
          const bool old = shape == Shape{n.cols} && n.groups() == 1;  // (out), before grouped weights
          if (!old && shape != Shape{n.cols, n.groups()}) {
            throw Error("reading " + f.filename() + ":" + p + "/scale", "shape " + shape_str(shape) + ", expected (" +
                        std::to_string(n.cols) + ", " + std::to_string(n.groups()) + ")");
          }
        }
        n.bias = f.read_exact<float>(p + "/bias", {n.cols});
        break;
      case OpKind::neuron:
        n.neuron = neuron_kind_from_name(f.attr_string(p, "neuron"));
        n.theta = static_cast<float>(f.attr_double(p, "theta"));
        n.lo = small_int(p, "lo", -32767, 32767);
        n.hi = small_int(p, "hi", -32767, 32767);
        n.burst = small_int(p, "burst", 1, 127);
        break;
      case OpKind::layer_norm:
        n.gamma = f.read_exact<float>(p + "/gamma", {n.cols});
        n.beta = f.read_exact<float>(p + "/beta", {n.cols});
        n.eps = static_cast<float>(f.attr_double(p, "eps"));
        break;
      case OpKind::qk_product:
      case OpKind::av_product:
      case OpKind::softmax:
        n.prod_scale = static_cast<float>(f.attr_double(p, "prod_scale"));
        n.causal = f.attr_int(p, "causal") != 0;
        break;
      default:
        break;
    }
    sg.nodes.push_back(std::move(n));
  }
  sg.output = sg.find(f.attr_string(g, "output"));
  try {
    sg.validate();
  } catch (const Error& e) {
    throw e.with_context("reading " + f.filename() + ":" + g);
  }
  return sg;
}

}  // namespace spikefm::snn
