#include "snn/nir_graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace spikefm::snn {

// --- NirParam -----------------------------------------------------------------------------------------

namespace {

void check_fill(const Shape& shape, size_t count, const char* kind) {
  for (int64_t d : shape) {
    if (d < 0) throw Error("building a NIR parameter", "negative dimension in shape " + shape_str(shape));
  }
  if (static_cast<int64_t>(count) != shape_numel(shape)) {
    throw Error("building a NIR parameter",
                std::to_string(count) + " " + kind + " values do not fill shape " + shape_str(shape),
                "give one value per element, row-major");
  }
}

}  // namespace

NirParam NirParam::of_floats(Shape shape, std::vector<double> values) {
  check_fill(shape, values.size(), "float");
  NirParam p;
  p.kind = Kind::kFloat;
  p.shape = std::move(shape);
  p.floats = std::move(values);
  return p;
}

NirParam NirParam::of_ints(Shape shape, std::vector<int64_t> values) {
  check_fill(shape, values.size(), "integer");
  NirParam p;
  p.kind = Kind::kInt;
  p.shape = std::move(shape);
  p.ints = std::move(values);
  return p;
}

NirParam NirParam::of_string(std::string text) {
  NirParam p;
  p.kind = Kind::kString;
  p.strings = {std::move(text)};
  return p;
}

std::vector<double> NirParam::to_doubles() const {
  if (kind == Kind::kFloat) return floats;
  if (kind == Kind::kInt) return {ints.begin(), ints.end()};
  throw Error("converting a NIR parameter", "it holds strings, not numbers");
}

// --- NirNode ------------------------------------------------------------------------------------------

NirNode::NirNode() = default;
NirNode::NirNode(NirNode&& other) noexcept = default;
NirNode& NirNode::operator=(NirNode&& other) noexcept = default;
NirNode::~NirNode() = default;

NirNode::NirNode(const NirNode& other)
    : type(other.type),
      params(other.params),
      metadata(other.metadata),
      graph(other.graph ? std::make_unique<NirGraph>(*other.graph) : nullptr) {}

NirNode& NirNode::operator=(const NirNode& other) {
  if (this != &other) *this = NirNode(other);
  return *this;
}

const NirParam& NirNode::at(const std::string& member) const {
  auto it = params.find(member);
  if (it == params.end()) throw Error("NIR " + type + " node", "no member " + member);
  return it->second;
}

bool operator==(const NirNode& a, const NirNode& b) {
  if (a.type != b.type || a.params != b.params || a.metadata != b.metadata) return false;
  if ((a.graph == nullptr) != (b.graph == nullptr)) return false;
  return a.graph == nullptr || *a.graph == *b.graph;
}

namespace {

NirParam floats_or_zeros(const Shape& shape, std::vector<double> values) {
  if (values.empty()) values.assign(static_cast<size_t>(shape_numel(shape)), 0.0);
  return NirParam::of_floats(shape, std::move(values));
}

NirParam pair(std::array<int64_t, 2> v) { return NirParam::of_ints({2}, {v[0], v[1]}); }

NirNode node_of(const char* type) {
  NirNode n;
  n.type = type;
  return n;
}

}  // namespace

NirNode NirNode::input(const Shape& shape) {
  NirNode n = node_of("Input");
  n.params["shape"] = NirParam::of_ints({static_cast<int64_t>(shape.size())}, shape);
  return n;
}

NirNode NirNode::output(const Shape& shape) {
  NirNode n = node_of("Output");
  n.params["shape"] = NirParam::of_ints({static_cast<int64_t>(shape.size())}, shape);
  return n;
}

NirNode NirNode::affine(const Shape& weight_shape, std::vector<double> weight, std::vector<double> bias) {
  NirNode n = node_of("Affine");
  n.params["weight"] = NirParam::of_floats(weight_shape, std::move(weight));
  const Shape bias_shape(weight_shape.begin(), weight_shape.empty() ? weight_shape.end() : weight_shape.end() - 1);
  n.params["bias"] = floats_or_zeros(bias_shape, std::move(bias));
  return n;
}

NirNode NirNode::linear(const Shape& weight_shape, std::vector<double> weight) {
  NirNode n = node_of("Linear");
  n.params["weight"] = NirParam::of_floats(weight_shape, std::move(weight));
  return n;
}

NirNode NirNode::scale(const Shape& shape, std::vector<double> scale) {
  NirNode n = node_of("Scale");
  n.params["scale"] = NirParam::of_floats(shape, std::move(scale));
  return n;
}

NirNode NirNode::integrator(const Shape& shape, std::vector<double> r) {
  NirNode n = node_of("I");
  n.params["r"] = NirParam::of_floats(shape, std::move(r));
  return n;
}

NirNode NirNode::if_neuron(const Shape& shape, std::vector<double> r, std::vector<double> v_threshold,
                           std::vector<double> v_reset) {
  NirNode n = node_of("IF");
  n.params["r"] = NirParam::of_floats(shape, std::move(r));
  n.params["v_threshold"] = NirParam::of_floats(shape, std::move(v_threshold));
  n.params["v_reset"] = floats_or_zeros(shape, std::move(v_reset));
  return n;
}

NirNode NirNode::li(const Shape& shape, std::vector<double> tau, std::vector<double> r,
                    std::vector<double> v_leak) {
  NirNode n = node_of("LI");
  n.params["tau"] = NirParam::of_floats(shape, std::move(tau));
  n.params["r"] = NirParam::of_floats(shape, std::move(r));
  n.params["v_leak"] = NirParam::of_floats(shape, std::move(v_leak));
  return n;
}

NirNode NirNode::lif(const Shape& shape, std::vector<double> tau, std::vector<double> r,
                     std::vector<double> v_leak, std::vector<double> v_threshold,
                     std::vector<double> v_reset) {
  NirNode n = node_of("LIF");
  n.params["tau"] = NirParam::of_floats(shape, std::move(tau));
  n.params["r"] = NirParam::of_floats(shape, std::move(r));
  n.params["v_leak"] = NirParam::of_floats(shape, std::move(v_leak));
  n.params["v_threshold"] = NirParam::of_floats(shape, std::move(v_threshold));
  n.params["v_reset"] = floats_or_zeros(shape, std::move(v_reset));
  return n;
}

NirNode NirNode::conv2d(const Shape& input_hw, const Shape& weight_shape, std::vector<double> weight,
                        std::vector<double> bias, std::array<int64_t, 2> stride,
                        std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  NirNode n = node_of("Conv2d");
  n.params["input_shape"] = NirParam::of_ints({static_cast<int64_t>(input_hw.size())}, input_hw);
  n.params["weight"] = NirParam::of_floats(weight_shape, std::move(weight));
  n.params["bias"] = floats_or_zeros({weight_shape.empty() ? 0 : weight_shape[0]}, std::move(bias));
  n.params["stride"] = pair(stride);
  n.params["padding"] = pair(padding);
  n.params["dilation"] = pair(dilation);
  n.params["groups"] = NirParam::of_ints({}, {groups});
  return n;
}

NirNode NirNode::sum_pool2d(std::array<int64_t, 2> kernel_size, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding) {
  NirNode n = node_of("SumPool2d");
  n.params["kernel_size"] = pair(kernel_size);
  n.params["stride"] = pair(stride);
  n.params["padding"] = pair(padding);
  return n;
}

NirNode NirNode::avg_pool2d(std::array<int64_t, 2> kernel_size, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding) {
  NirNode n = sum_pool2d(kernel_size, stride, padding);
  n.type = "AvgPool2d";
  return n;
}

NirNode NirNode::flatten(const Shape& input_type, int64_t start_dim, int64_t end_dim) {
  NirNode n = node_of("Flatten");
  n.params["input_type"] = NirParam::of_ints({static_cast<int64_t>(input_type.size())}, input_type);
  n.params["start_dim"] = NirParam::of_ints({}, {start_dim});
  n.params["end_dim"] = NirParam::of_ints({}, {end_dim});
  return n;
}

NirNode NirNode::subgraph(NirGraph graph) {
  NirNode n = node_of("NIRGraph");
  n.graph = std::make_unique<NirGraph>(std::move(graph));
  return n;
}

// --- NirGraph -----------------------------------------------------------------------------------------

NirNode& NirGraph::add_node(const std::string& name, NirNode node) {
  if (name.empty() || name == "." || name.find('/') != std::string::npos) {
    throw Error("adding NIR node '" + name + "'", "a node name must be non-empty, not '.', and contain no '/'",
                "it becomes an HDF5 group name");
  }
  auto [it, inserted] = nodes.emplace(name, std::move(node));
  if (!inserted) throw Error("adding NIR node " + name, "a node of that name exists already");
  return it->second;
}

void NirGraph::add_edge(const std::string& source, const std::string& target) {
  edges.emplace_back(source, target);
}

bool operator==(const NirGraph& a, const NirGraph& b) {
  return a.nodes == b.nodes && a.edges == b.edges && a.metadata == b.metadata;
}

// --- member tables (§4) -------------------------------------------------------------------------------

namespace {

enum class Want { kFloat, kInt, kIntOrString };

struct MemberSpec {
  const char* name;
  Want want;
  bool required;
};

struct TypeSpec {
  const char* type;
  std::vector<MemberSpec> members;
  std::vector<const char*> same_shape;  // parameter arrays that must share one shape (neurons)
  const char* shape_member;             // the member whose shape is the node's type, or nullptr
  std::vector<const char*> ignored;     // accepted by nir.read but derived: input_type/output_type
};

const std::vector<TypeSpec>& type_specs() {
  static const std::vector<const char*> io = {"input_type", "output_type"};
  static const std::vector<MemberSpec> conv = {
      {"input_shape", Want::kInt, true}, {"weight", Want::kFloat, true},    {"stride", Want::kInt, true},
      {"padding", Want::kIntOrString, true}, {"dilation", Want::kInt, true}, {"groups", Want::kInt, true},
      {"bias", Want::kFloat, true}};
  static const std::vector<MemberSpec> pool = {
      {"kernel_size", Want::kInt, true}, {"stride", Want::kInt, true}, {"padding", Want::kInt, true}};
  static const std::vector<TypeSpec> specs = {
      {"Input", {{"shape", Want::kInt, true}}, {}, nullptr, {"input_type"}},
      {"Output", {{"shape", Want::kInt, true}}, {}, nullptr, {"output_type"}},
      {"Affine", {{"weight", Want::kFloat, true}, {"bias", Want::kFloat, true}}, {}, nullptr, io},
      {"Linear", {{"weight", Want::kFloat, true}}, {}, nullptr, {}},
      {"Scale", {{"scale", Want::kFloat, true}}, {}, "scale", {}},
      {"I", {{"r", Want::kFloat, true}}, {}, "r", io},
      {"IF",
       {{"r", Want::kFloat, true}, {"v_threshold", Want::kFloat, true}, {"v_reset", Want::kFloat, false}},
       {"r", "v_threshold", "v_reset"}, "r", io},
      {"LI",
       {{"tau", Want::kFloat, true}, {"r", Want::kFloat, true}, {"v_leak", Want::kFloat, true}},
       {"tau", "r", "v_leak"}, "r", io},
      {"LIF",
       {{"tau", Want::kFloat, true}, {"r", Want::kFloat, true}, {"v_leak", Want::kFloat, true},
        {"v_threshold", Want::kFloat, true}, {"v_reset", Want::kFloat, false}},
       {"tau", "r", "v_leak", "v_threshold", "v_reset"}, "r", io},
      {"CubaLI",
       {{"tau_syn", Want::kFloat, true}, {"tau_mem", Want::kFloat, true}, {"r", Want::kFloat, true},
        {"v_leak", Want::kFloat, true}, {"w_in", Want::kFloat, false}},
       {"tau_syn", "tau_mem", "r", "v_leak"}, "v_leak", io},
      {"CubaLIF",
       {{"tau_syn", Want::kFloat, true}, {"tau_mem", Want::kFloat, true}, {"r", Want::kFloat, true},
        {"v_leak", Want::kFloat, true}, {"v_threshold", Want::kFloat, true}, {"v_reset", Want::kFloat, false},
        {"w_in", Want::kFloat, false}},
       {"tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset"}, "v_threshold", io},
      {"Delay", {{"delay", Want::kFloat, true}}, {}, "delay", io},
      {"Threshold", {{"threshold", Want::kFloat, true}}, {}, "threshold", io},
      {"Flatten",
       {{"input_type", Want::kInt, false}, {"start_dim", Want::kInt, false}, {"end_dim", Want::kInt, false}},
       {}, nullptr, {"output_type"}},
      {"Conv1d", conv, {}, nullptr, io},
      {"Conv2d", conv, {}, nullptr, {}},
      {"SumPool2d", pool, {}, nullptr, io},
      {"AvgPool2d", pool, {}, nullptr, {}},
  };
  return specs;
}

const TypeSpec* find_spec(const std::string& type) {
  for (const TypeSpec& s : type_specs()) {
    if (type == s.type) return &s;
  }
  return nullptr;
}

bool contains(const std::vector<const char*>& names, const std::string& name) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

std::string label_of(const std::string& scoped_name, const NirNode& node) {
  return "node " + scoped_name + " (" + node.type + ")";
}

// The values of an integer member (kInt, or kFloat holding integers), checked.
std::vector<int64_t> int_values(const NirParam& p, const std::string& label, const std::string& member,
                                const std::string& what) {
  if (p.kind == NirParam::Kind::kInt) return p.ints;
  if (p.kind == NirParam::Kind::kFloat) {
    std::vector<int64_t> out;
    for (double v : p.floats) {
      if (!(std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e15)) {
        throw Error(what, label + ": " + member + " must hold integers (got " + std::to_string(v) + ")");
      }
      out.push_back(static_cast<int64_t>(v));
    }
    return out;
  }
  throw Error(what, label + ": " + member + " must be numeric (got a string)");
}

// A shape member (Input/Output shape, Flatten input_type, Conv2d input_shape): 1-D, dims >= 1.
Shape shape_values(const NirParam& p, const std::string& label, const std::string& member,
                   const std::string& what) {
  if (p.shape.size() != 1) {
    throw Error(what, label + ": " + member + " must be a 1-D int64 array (got shape " + shape_str(p.shape) + ")",
                "store the shape without the batch dimension, e.g. [2, 34, 34]");
  }
  Shape s = int_values(p, label, member, what);
  for (int64_t d : s) {
    if (d < 1) throw Error(what, label + ": " + member + " " + shape_str(s) + " has a dimension < 1");
  }
  return s;
}

// An int or per-dimension ints broadcast to `nd` values.
std::array<int64_t, 2> per_dim(const NirParam& p, int nd, const std::string& label, const std::string& member,
                               const std::string& what) {
  std::vector<int64_t> v = int_values(p, label, member, what);
  if (p.shape.size() > 1 || (v.size() != 1 && static_cast<int>(v.size()) != nd)) {
    throw Error(what, label + ": " + member + " must be an int or " + std::to_string(nd) +
                          " ints (got shape " + shape_str(p.shape) + ")");
  }
  std::array<int64_t, 2> out{v[0], v[0]};
  if (v.size() == 2) out[1] = v[1];
  return out;
}

// Window geometry of a Conv1d/Conv2d (nd = 1/2) or a pool (nd = 2).
NirWindow2d parse_window(const NirNode& node, const std::string& label, int nd, const std::string& what) {
  const bool conv = node.type == "Conv1d" || node.type == "Conv2d";
  NirWindow2d w;
  if (conv) {
    const Shape& ws = node.at("weight").shape;
    if (static_cast<int>(ws.size()) != 2 + nd) {
      throw Error(what, label + ": weight must have " + std::to_string(2 + nd) + " dimensions (C_out, C_in / groups" +
                            (nd == 2 ? ", kH, kW" : ", K") + "), got shape " + shape_str(ws));
    }
    w.kernel = {ws[2], nd == 2 ? ws[3] : ws[2]};
    w.dilation = per_dim(node.at("dilation"), nd, label, "dilation", what);
  } else {
    w.kernel = per_dim(node.at("kernel_size"), nd, label, "kernel_size", what);
  }
  w.stride = per_dim(node.at("stride"), nd, label, "stride", what);
  for (int i = 0; i < nd; ++i) {
    if (w.kernel[i] < 1) throw Error(what, label + ": kernel size must be >= 1 (got " + std::to_string(w.kernel[i]) + ")");
    if (w.stride[i] < 1) throw Error(what, label + ": stride must be >= 1 (got " + std::to_string(w.stride[i]) + ")");
    if (w.dilation[i] < 1) {
      throw Error(what, label + ": dilation must be >= 1 (got " + std::to_string(w.dilation[i]) + ")");
    }
  }
  const NirParam& pad = node.at("padding");
  if (pad.kind == NirParam::Kind::kString) {
    const std::string text = pad.strings.size() == 1 ? pad.strings[0] : "";
    if (text == "same") {
      w.same = true;
      for (int i = 0; i < 2; ++i) {
        const int64_t total = w.dilation[i] * (w.kernel[i] - 1);
        w.pad_begin[i] = total / 2;  // PyTorch: the extra zero of an odd total goes after
        w.pad_end[i] = total - w.pad_begin[i];
      }
    } else if (text != "valid") {
      throw Error(what, label + ": padding must be 'same', 'valid' or ints (got '" + text + "')");
    }
  } else {
    w.pad_begin = w.pad_end = per_dim(pad, nd, label, "padding", what);
    for (int i = 0; i < nd; ++i) {
      if (w.pad_begin[i] < 0) throw Error(what, label + ": padding must be >= 0 (got " + std::to_string(w.pad_begin[i]) + ")");
    }
  }
  return w;
}

}  // namespace

std::array<int64_t, 2> NirWindow2d::output_size(std::array<int64_t, 2> input_hw) const {
  if (same) return input_hw;
  std::array<int64_t, 2> out{};
  for (int i = 0; i < 2; ++i) {
    const int64_t span = input_hw[i] + pad_begin[i] + pad_end[i] - dilation[i] * (kernel[i] - 1) - 1;
    // floor division, also for a negative span (window larger than the padded input)
    out[i] = (span >= 0 ? span / stride[i] : -((-span + stride[i] - 1) / stride[i])) + 1;
  }
  return out;
}

NirWindow2d nir_window2d(const NirNode& node, const std::string& name) {
  if (node.type != "Conv2d" && node.type != "SumPool2d" && node.type != "AvgPool2d") {
    throw Error("reading window geometry of node " + name, "type " + node.type + " has none");
  }
  return parse_window(node, label_of(name, node), 2, "NIR node " + name);
}

// --- checks (§4, §5) ----------------------------------------------------------------------------------

namespace {

class GraphChecker {
 public:
  GraphChecker(std::string what, std::vector<std::string>* warnings) : what_(std::move(what)), warnings_(warnings) {}

  void check_graph(const NirGraph& g, const std::string& scope);
  NirTypes take_types() { return std::move(types_); }

 private:
  [[noreturn]] void fail(const std::string& why, const std::string& fix = "") const { throw Error(what_, why, fix); }
  void warn(const std::string& w) {
    if (warnings_ != nullptr) warnings_->push_back(w);
  }
  void check_members(const std::string& label, const NirNode& node);
  NirNodeType declared_type(const std::string& label, const NirNode& node);
  std::optional<Shape> output_from_input(const std::string& label, const NirNode& node, const Shape& input);
  Shape flatten_output(const std::string& label, const NirNode& node, const Shape& input);

  std::string what_;
  std::vector<std::string>* warnings_;
  NirTypes types_;
};

void GraphChecker::check_members(const std::string& label, const NirNode& node) {
  const TypeSpec* spec = find_spec(node.type);
  if (spec == nullptr) {
    warn(label + ": type " + node.type + " is not a NIR " + kNirFormatVersion +
         " primitive; kept unchecked (nir.read would reject it)");
  } else {
    for (const MemberSpec& m : spec->members) {
      auto it = node.params.find(m.name);
      if (it == node.params.end()) {
        if (m.required) fail(label + ": missing required member " + m.name, "the file does not follow NIR §4");
        continue;
      }
      const NirParam& p = it->second;
      if (p.kind == NirParam::Kind::kString && m.want != Want::kIntOrString) {
        fail(label + ": member " + std::string(m.name) + " must be numeric (got a string)");
      }
      if (p.kind == NirParam::Kind::kString && p.strings.size() != 1) {
        fail(label + ": member " + std::string(m.name) + " must be one string (got shape " + shape_str(p.shape) + ")");
      }
      if (m.want != Want::kFloat && p.kind == NirParam::Kind::kFloat) int_values(p, label, m.name, what_);
    }
    for (const auto& [name, p] : node.params) {
      const bool known = std::any_of(spec->members.begin(), spec->members.end(),
                                     [&](const MemberSpec& m) { return name == m.name; });
      if (!known && !contains(spec->ignored, name)) {
        warn(label + ": member " + name + " is not a field of " + node.type +
             "; kept, but nir.read would reject it and write_nir refuses it");
      }
    }
  }
  // No NaN or Inf passed on, in any parameter of any node type.
  for (const auto& [name, p] : node.params) {
    if (p.kind != NirParam::Kind::kFloat) continue;
    for (size_t i = 0; i < p.floats.size(); ++i) {
      const double v = p.floats[i];
      if (!std::isfinite(v)) {
        fail(label + ": " + name + " contains " + (std::isnan(v) ? "NaN" : (v > 0 ? "Inf" : "-Inf")) +
                 " at index " + std::to_string(i),
             "the exporter wrote a diverged parameter; re-export from a finite model");
      }
    }
  }
  if (spec == nullptr) return;
  // Parameter arrays of a neuron node share one shape (§4 "all same shape").
  const NirParam* first = nullptr;
  const char* first_name = nullptr;
  for (const char* name : spec->same_shape) {
    auto it = node.params.find(name);
    if (it == node.params.end()) continue;
    if (first == nullptr) {
      first = &it->second;
      first_name = name;
    } else if (it->second.shape != first->shape) {
      fail(label + ": " + name + " has shape " + shape_str(it->second.shape) + " but " + first_name + " has shape " +
               shape_str(first->shape),
           "all parameter arrays of a " + node.type + " node must have one shape, one value per neuron");
    }
  }
  if (first != nullptr && node.has("w_in")) {
    const Shape& ws = node.at("w_in").shape;
    if (ws != first->shape && shape_numel(ws) != 1) {
      fail(label + ": w_in has shape " + shape_str(ws) + ", expected a scalar or " + shape_str(first->shape));
    }
  }
  // Shapes and geometry.
  if (node.type == "Input" || node.type == "Output") shape_values(node.at("shape"), label, "shape", what_);
  if (node.type == "Flatten" && node.has("input_type")) shape_values(node.at("input_type"), label, "input_type", what_);
  if (node.type == "Affine" || node.type == "Linear") {
    const Shape& ws = node.at("weight").shape;
    if (ws.size() < 2) {
      fail(label + ": weight must be at least 2-D (out, in), got shape " + shape_str(ws));
    }
    if (node.type == "Affine") {
      const Shape out(ws.begin(), ws.end() - 1);
      if (node.at("bias").size() != shape_numel(out)) {
        fail(label + ": bias has shape " + shape_str(node.at("bias").shape) + ", expected " + shape_str(out) +
             " (one per output of weight " + shape_str(ws) + ")");
      }
    }
  }
  if (node.type == "Conv1d" || node.type == "Conv2d") {
    const int nd = node.type == "Conv2d" ? 2 : 1;
    parse_window(node, label, nd, what_);
    const Shape& ws = node.at("weight").shape;
    const std::vector<int64_t> groups = int_values(node.at("groups"), label, "groups", what_);
    if (groups.size() != 1 || groups[0] < 1 || ws[0] % groups[0] != 0) {
      fail(label + ": groups must be one int >= 1 that divides C_out = " + std::to_string(ws[0]));
    }
    if (node.at("bias").size() != ws[0]) {
      fail(label + ": bias has shape " + shape_str(node.at("bias").shape) + ", expected (" + std::to_string(ws[0]) +
           ",) (C_out)");
    }
    const NirParam& in = node.at("input_shape");
    const std::vector<int64_t> hw = int_values(in, label, "input_shape", what_);
    if (static_cast<int>(hw.size()) != nd || in.shape.size() > 1) {
      fail(label + ": input_shape must hold " + std::to_string(nd) + " spatial size(s), got shape " + shape_str(in.shape));
    }
    for (int64_t d : hw) {
      if (d < 1) fail(label + ": input_shape has a dimension < 1");
    }
  }
  if (node.type == "SumPool2d" || node.type == "AvgPool2d") parse_window(node, label, 2, what_);
}

Shape GraphChecker::flatten_output(const std::string& label, const NirNode& node, const Shape& input) {
  const int64_t nd = static_cast<int64_t>(input.size());
  int64_t start = node.has("start_dim") ? int_values(node.at("start_dim"), label, "start_dim", what_).at(0) : 1;
  int64_t end = node.has("end_dim") ? int_values(node.at("end_dim"), label, "end_dim", what_).at(0) : -1;
  const int64_t s = start < 0 ? start + nd : start;
  const int64_t e = end < 0 ? end + nd : end;
  if (s < 0 || e >= nd || s > e) {
    fail(label + ": start_dim " + std::to_string(start) + " / end_dim " + std::to_string(end) +
             " do not fit the input " + shape_str(input),
         "shapes exclude the batch dimension: flattening (C, H, W) to a vector needs start_dim = 0");
  }
  Shape out(input.begin(), input.begin() + s);
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged *= input[i];
  out.push_back(merged);
  out.insert(out.end(), input.begin() + e + 1, input.end());
  return out;
}

NirNodeType GraphChecker::declared_type(const std::string& label, const NirNode& node) {
  NirNodeType t;
  const std::string& type = node.type;
  if (type == "Input" || type == "Output") {
    t.input = t.output = shape_values(node.at("shape"), label, "shape", what_);
  } else if (type == "Affine" || type == "Linear") {
    const Shape& ws = node.at("weight").shape;
    Shape in(ws.begin(), ws.end() - 2), out = in;
    in.push_back(ws.back());
    out.push_back(ws[ws.size() - 2]);
    t.input = in;
    t.output = out;
  } else if (const TypeSpec* spec = find_spec(type); spec != nullptr && spec->shape_member != nullptr) {
    t.input = t.output = node.at(spec->shape_member).shape;
  } else if (type == "Flatten" && node.has("input_type")) {
    t.input = shape_values(node.at("input_type"), label, "input_type", what_);
    t.output = flatten_output(label, node, *t.input);
  } else if (type == "Conv1d" || type == "Conv2d") {
    const int nd = type == "Conv2d" ? 2 : 1;
    const NirWindow2d w = parse_window(node, label, nd, what_);
    const Shape& ws = node.at("weight").shape;
    const int64_t groups = int_values(node.at("groups"), label, "groups", what_)[0];
    const std::vector<int64_t> hw = int_values(node.at("input_shape"), label, "input_shape", what_);
    const std::array<int64_t, 2> out_hw = w.output_size({hw[0], nd == 2 ? hw[1] : hw[0]});
    Shape in{ws[1] * groups}, out{ws[0]};
    for (int i = 0; i < nd; ++i) {
      in.push_back(hw[i]);
      out.push_back(out_hw[i]);
      if (out_hw[i] < 1) {
        fail(label + ": output size " + std::to_string(out_hw[i]) + " < 1 for input size " + std::to_string(hw[i]),
             "the kernel (with dilation) is larger than the padded input");
      }
    }
    t.input = in;
    t.output = out;
  } else if (type == "NIRGraph") {
    // §3: a subgraph's type is its Input/Output shape; edges only type-check with exactly one each.
    std::vector<const NirNode*> ins, outs;
    for (const auto& [name, n] : node.graph->nodes) {
      if (n.type == "Input") ins.push_back(&n);
      if (n.type == "Output") outs.push_back(&n);
    }
    if (ins.size() == 1) t.input = shape_values(ins[0]->at("shape"), label, "shape", what_);
    if (outs.size() == 1) t.output = shape_values(outs[0]->at("shape"), label, "shape", what_);
  }
  return t;
}

std::optional<Shape> GraphChecker::output_from_input(const std::string& label, const NirNode& node,
                                                     const Shape& input) {
  if (node.type == "Flatten") return flatten_output(label, node, input);
  if (node.type == "SumPool2d" || node.type == "AvgPool2d") {
    if (input.size() != 3) fail(label + ": input " + shape_str(input) + " is not (C, H, W)");
    const NirWindow2d w = parse_window(node, label, 2, what_);
    const std::array<int64_t, 2> hw = w.output_size({input[1], input[2]});
    if (hw[0] < 1 || hw[1] < 1) {
      fail(label + ": output size (" + std::to_string(hw[0]) + ", " + std::to_string(hw[1]) + ") is empty for input " +
           shape_str(input));
    }
    return Shape{input[0], hw[0], hw[1]};
  }
  return std::nullopt;
}

void GraphChecker::check_graph(const NirGraph& g, const std::string& scope) {
  const std::string in_graph = scope.empty() ? "" : " of subgraph " + scope.substr(0, scope.size() - 1);
  // Members of every node (nested graphs first, as nir.read constructs them).
  for (const auto& [name, node] : g.nodes) {
    const std::string label = label_of(scope + name, node);
    if (node.type == "NIRGraph") {
      if (node.graph == nullptr) fail(label + ": nested graph missing");
      check_graph(*node.graph, scope + name + "/");
    } else {
      check_members(label, node);
    }
  }
  for (const auto& [a, b] : g.edges) {
    for (const std::string* end : {&a, &b}) {
      if (g.nodes.count(*end) == 0) {
        fail("edge (" + a + ", " + b + ")" + in_graph + ": no node named " + *end,
             "every edge must connect two nodes of the same graph");
      }
    }
  }
  // Shapes: declared by the nodes' own parameters, then propagated along the edges until nothing
  // changes (pools and Flatten without input_type take their input from the predecessor).
  std::map<std::string, NirNodeType> t;
  for (const auto& [name, node] : g.nodes) t[name] = declared_type(label_of(scope + name, node), node);
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& [a, b] : g.edges) {
      if (t[a].output && !t[b].input) {
        t[b].input = t[a].output;
        changed = true;
      }
    }
    for (auto& [name, nt] : t) {
      if (nt.input && !nt.output) {
        const NirNode& node = g.nodes.at(name);
        nt.output = output_from_input(label_of(scope + name, node), node, *nt.input);
        changed = changed || nt.output.has_value();
      }
    }
  }
  for (const auto& [a, b] : g.edges) {
    if (!t[a].output || !t[b].input || *t[a].output == *t[b].input) continue;
    const std::string why = "edge (" + a + ", " + b + ")" + in_graph + ": " + a + " outputs " + shape_str(*t[a].output) +
                            " but " + b + " takes " + shape_str(*t[b].input);
    if (shape_numel(*t[a].output) != shape_numel(*t[b].input)) {
      fail(why, "the parameters of the two nodes disagree on the layer size");
    }
    warn(why + "; same number of elements, accepted as older exporters wrote it");
  }
  for (auto& [name, nt] : t) types_[scope + name] = nt;
}

}  // namespace

NirTypes check_nir_graph(const NirGraph& graph, const std::string& what, std::vector<std::string>* warnings) {
  GraphChecker checker(what, warnings);
  checker.check_graph(graph, "");
  return checker.take_types();
}

// --- reading (§2, §3, §8 "Read") ----------------------------------------------------------------------

namespace {

NirParam read_param(const H5File& f, const std::string& path) {
  const H5DatasetInfo di = f.info(path);
  switch (di.cls) {
    case H5Class::floating: return NirParam::of_floats(di.shape, f.read<double>(path));
    case H5Class::integer: return NirParam::of_ints(di.shape, f.read<int64_t>(path));
    case H5Class::string: {
      NirParam p;
      p.kind = NirParam::Kind::kString;
      p.strings = f.read_strings(path, &p.shape);
      return p;
    }
    default:
      throw Error("reading " + f.filename() + ":" + path, "unsupported HDF5 datatype (not float, integer or string)",
                  "NIR parameters are numeric arrays or strings");
  }
}

std::string read_scalar_string(const H5File& f, const std::string& path) {
  const H5DatasetInfo di = f.info(path);
  if (di.cls != H5Class::string || shape_numel(di.shape) != 1) {
    throw Error("reading " + f.filename() + ":" + path, "expected one string, got a " + shape_str(di.shape) +
                                                             (di.cls == H5Class::string ? " string" : " non-string") +
                                                             " dataset");
  }
  return f.read_strings(path)[0];
}

// Datasets of a metadata group; anything else there is skipped with a warning (metadata is a hint
// that consumers must not rely on, §6).
NirParams read_metadata(const H5File& f, const std::string& group, std::vector<std::string>& warnings) {
  NirParams out;
  for (const std::string& key : f.children(group)) {
    const std::string path = group + "/" + key;
    try {
      if (!f.is_dataset(path)) throw Error(path, "a group");
      out[key] = read_param(f, path);
    } catch (const Error& e) {
      warnings.push_back("metadata " + path + " skipped: " + e.what());
    }
  }
  return out;
}

NirGraph read_graph(const H5File& f, const std::string& group, const std::string& what);

NirNode read_node(const H5File& f, const std::string& group, const std::string& name, const std::string& what,
                  std::vector<std::string>& warnings) {
  if (!f.is_group(group)) {
    throw Error(what, "node " + name + ": " + group + " is not a group", "every node of a NIR graph is an HDF5 group");
  }
  if (!f.is_dataset(group + "/type")) {
    throw Error(what, "node " + name + ": missing required member type", "the file does not follow NIR §2");
  }
  NirNode node;
  node.type = read_scalar_string(f, group + "/type");
  if (node.type == "NIRGraph") {
    node.graph = std::make_unique<NirGraph>(read_graph(f, group, what));
    warnings.insert(warnings.end(), node.graph->warnings.begin(), node.graph->warnings.end());
    node.graph->warnings.clear();
    return node;
  }
  for (const std::string& member : f.children(group)) {
    const std::string path = group + "/" + member;
    if (member == "type") continue;
    if (member == "metadata" && f.is_group(path)) {
      node.metadata = read_metadata(f, path, warnings);
    } else if (f.is_dataset(path)) {
      node.params[member] = read_param(f, path);
    } else {
      warnings.push_back("node " + name + " (" + node.type + "): group member " + member + " ignored");
    }
  }
  // §7: missing v_reset reads as zeros (nir >= 1.0.6).
  if ((node.type == "IF" || node.type == "LIF" || node.type == "CubaLIF") && !node.has("v_reset") &&
      node.has("v_threshold")) {
    const Shape& s = node.params["v_threshold"].shape;
    node.params["v_reset"] = NirParam::of_floats(s, std::vector<double>(static_cast<size_t>(shape_numel(s)), 0.0));
  }
  return node;
}

NirGraph read_graph(const H5File& f, const std::string& group, const std::string& what) {
  NirGraph g;
  for (const char* member : {"nodes", "edges"}) {
    if (!f.exists(group + "/" + member)) {
      throw Error(what, group + ": missing required member " + member, "a NIRGraph has both nodes and edges (§3)");
    }
  }
  if (!f.is_group(group + "/nodes")) throw Error(what, group + "/nodes is not a group");
  for (const std::string& name : f.children(group + "/nodes")) {
    g.nodes.emplace(name, read_node(f, group + "/nodes/" + name, name, what, g.warnings));
  }
  const std::string edges = group + "/edges";
  if (!f.is_dataset(edges)) throw Error(what, edges + " is not a dataset");
  const H5DatasetInfo di = f.info(edges);
  if (shape_numel(di.shape) > 0) {  // h5py writes an empty edge list as float64 (0,): any empty one is fine
    if (di.cls != H5Class::string) {
      throw Error(what, edges + ": stored as a non-string dataset of shape " + shape_str(di.shape),
                  "edges are (E, 2) strings (source, target)");
    }
    Shape shape;
    const std::vector<std::string> flat = f.read_strings(edges, &shape);
    if (shape.size() != 2 || shape[1] != 2) {
      throw Error(what, edges + ": shape " + shape_str(shape) + ", expected (E, 2)", "one row per edge: (source, target)");
    }
    for (size_t i = 0; i + 1 < flat.size(); i += 2) g.edges.emplace_back(flat[i], flat[i + 1]);
  }
  if (f.is_group(group + "/metadata")) g.metadata = read_metadata(f, group + "/metadata", g.warnings);
  return g;
}

}  // namespace

NirGraph read_nir(const std::filesystem::path& path) {
  const H5File f = H5File::open(path);
  const std::string what = "reading NIR file " + path.string();
  if (!f.is_group("/node")) {
    throw Error(what, "no /node group", "a NIR file holds its graph in /node; is this a NIR file?");
  }
  if (!f.is_dataset("/node/type")) throw Error(what, "/node: missing required member type");
  const std::string root_type = read_scalar_string(f, "/node/type");
  if (root_type != "NIRGraph") {
    throw Error(what, "/node has type '" + root_type + "', expected 'NIRGraph'", "the root of a NIR file is a graph (§1)");
  }
  NirGraph g = read_graph(f, "/node", what);
  if (f.is_dataset("/version")) {
    try {
      g.version = read_scalar_string(f, "/version");
    } catch (const Error& e) {
      g.warnings.push_back(std::string("/version unreadable, ignored: ") + e.what());
    }
  }
  check_nir_graph(g, what, &g.warnings);
  return g;
}

// --- writing (§8 "Write") -----------------------------------------------------------------------------

namespace {

class GraphWriter {
 public:
  GraphWriter(H5File& f, std::string what, const NirTypes& types) : f_(f), what_(std::move(what)), types_(types) {}
  void write_graph(const std::string& group, const NirGraph& g, const std::string& scope);

 private:
  void write_node(const std::string& group, const std::string& scoped_name, const NirNode& node);
  void write_float32(const std::string& path, const std::string& label, const std::string& member, const NirParam& p);
  void write_int64(const std::string& path, const std::string& label, const std::string& member, const NirParam& p,
                   std::optional<Shape> as_shape = std::nullopt);
  void write_any(const std::string& path, const std::string& label, const std::string& member, const NirParam& p,
                 bool float64);
  void write_params(const std::string& group, const NirParams& params, const std::string& label, bool float64);

  H5File& f_;
  std::string what_;
  const NirTypes& types_;
};

void GraphWriter::write_float32(const std::string& path, const std::string& label, const std::string& member,
                                const NirParam& p) {
  std::vector<float> v;
  v.reserve(static_cast<size_t>(p.size()));
  for (double d : p.to_doubles()) {
    if (std::abs(d) > std::numeric_limits<float>::max()) {
      throw Error(what_, label + ": " + member + " value " + std::to_string(d) + " does not fit float32");
    }
    v.push_back(static_cast<float>(d));
  }
  f_.write(path, v.data(), p.shape);
}

void GraphWriter::write_int64(const std::string& path, const std::string& label, const std::string& member,
                              const NirParam& p, std::optional<Shape> as_shape) {
  const std::vector<int64_t> v = int_values(p, label, member, what_);
  f_.write(path, v.data(), as_shape ? *as_shape : p.shape);
}

void GraphWriter::write_any(const std::string& path, const std::string& label, const std::string& member,
                            const NirParam& p, bool float64) {
  switch (p.kind) {
    case NirParam::Kind::kFloat:
      if (float64) {
        f_.write(path, p.floats.data(), p.shape);
      } else {
        write_float32(path, label, member, p);
      }
      break;
    case NirParam::Kind::kInt: f_.write(path, p.ints.data(), p.shape); break;
    case NirParam::Kind::kString: f_.write_strings(path, p.strings, p.shape); break;
  }
}

void GraphWriter::write_params(const std::string& group, const NirParams& params, const std::string& label,
                               bool float64) {
  for (const auto& [name, p] : params) write_any(group + "/" + name, label, name, p, float64);
}

void GraphWriter::write_node(const std::string& group, const std::string& scoped_name, const NirNode& node) {
  const std::string label = label_of(scoped_name, node);
  f_.write_strings(group + "/type", {node.type}, {});
  if (!node.metadata.empty()) write_params(group + "/metadata", node.metadata, label, true);
  const TypeSpec* spec = find_spec(node.type);
  if (spec == nullptr) {  // not a §4 primitive: written as kept
    write_params(group, node.params, label, false);
    return;
  }
  for (const auto& [name, p] : node.params) {
    const bool known = std::any_of(spec->members.begin(), spec->members.end(),
                                   [&](const MemberSpec& m) { return name == m.name; });
    if (!known && !contains(spec->ignored, name)) {
      throw Error(what_, label + ": member " + name + " is not a field of " + node.type + " in NIR " + kNirFormatVersion,
                  "nir.read rejects unexpected members; remove it or put it in the node's metadata");
    }
  }
  const bool conv = node.type == "Conv1d" || node.type == "Conv2d";
  if (conv) {
    const Shape& ws = node.at("weight").shape;
    if (node.type == "Conv2d" && ws[2] != ws[3]) {
      throw Error(what_, label + ": kernel " + std::to_string(ws[2]) + "x" + std::to_string(ws[3]) + " is not square",
                  "the reference nir.read computes the output width from kH and would reject the file");
    }
    if (int_values(node.at("groups"), label, "groups", what_)[0] != 1) {
      throw Error(what_, label + ": groups != 1",
                  "the reference nir.read takes C_in = weight.shape[1] and would reject the file");
    }
  }
  const bool pool = node.type == "SumPool2d" || node.type == "AvgPool2d";
  for (const MemberSpec& m : spec->members) {
    const std::string path = group + "/" + m.name;
    const std::string name = m.name;
    if (node.type == "Flatten") {
      if (name == "input_type") {
        const NirNodeType& t = types_.at(scoped_name);
        if (!t.input) throw Error(what_, label + ": input shape unknown", "give the Flatten node an input_type");
        f_.write(path, t.input->data(), {static_cast<int64_t>(t.input->size())});
      } else {  // start_dim / end_dim, written even when absent (NIR defaults 1 / -1)
        const int64_t v = node.has(name) ? int_values(node.at(name), label, name, what_)[0] : (name == "start_dim" ? 1 : -1);
        f_.write(path, &v, {});
      }
      continue;
    }
    if (!node.has(name)) continue;
    const NirParam& p = node.at(name);
    if (name == "v_reset") {
      const std::vector<double> v = p.to_doubles();
      if (std::all_of(v.begin(), v.end(), [](double x) { return x == 0.0; })) continue;
    }
    if (m.want == Want::kFloat) {
      write_float32(path, label, name, p);
    } else if (p.kind == NirParam::Kind::kString) {
      f_.write_strings(path, p.strings, {});
    } else if (name == "groups") {
      write_int64(path, label, name, p, Shape{});
    } else if ((node.type == "Conv2d" || pool) && name != "input_shape") {  // ints expanded to pairs, as nir.write
      const std::array<int64_t, 2> v = per_dim(p, 2, label, name, what_);
      f_.write(path, v.data(), {2});
    } else if (node.type == "Conv1d") {  // stride, padding, dilation and input_shape: ints
      write_int64(path, label, name, p, Shape{});
    } else {
      write_int64(path, label, name, p);
    }
  }
}

void GraphWriter::write_graph(const std::string& group, const NirGraph& g, const std::string& scope) {
  f_.write_strings(group + "/type", {"NIRGraph"}, {});
  f_.create_group(group + "/nodes");
  for (const auto& [name, node] : g.nodes) {
    if (name.empty() || name == "." || name.find('/') != std::string::npos) {
      throw Error(what_, "node name '" + scope + name + "' cannot be an HDF5 group name", "rename the node");
    }
    const std::string path = group + "/nodes/" + name;
    if (node.type == "NIRGraph") {
      write_graph(path, *node.graph, scope + name + "/");
    } else {
      write_node(path, scope + name, node);
    }
  }
  std::vector<std::string> flat;
  flat.reserve(g.edges.size() * 2);
  for (const auto& [a, b] : g.edges) {
    flat.push_back(a);
    flat.push_back(b);
  }
  f_.write_strings(group + "/edges", flat, {static_cast<int64_t>(g.edges.size()), 2});
  if (!g.metadata.empty()) write_params(group + "/metadata", g.metadata, "graph " + scope, true);
}

}  // namespace

void write_nir(const std::filesystem::path& path, const NirGraph& graph) {
  const std::string what = "writing NIR file " + path.string();
  const NirTypes types = check_nir_graph(graph, what);
  AtomicFile out(path);
  H5File f = H5File::create(out.temp_path());
  f.write_strings("/version", {kNirFormatVersion}, {});
  GraphWriter(f, what, types).write_graph("/node", graph, "");
  f.close();
  out.commit();
}

}  // namespace spikefm::snn
