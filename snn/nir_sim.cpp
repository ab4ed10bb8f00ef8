#include "snn/nir_sim.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"

namespace spikefm::snn {

namespace {
const char* kWhat = "simulating NIR graph";
}  // namespace

void NirSimOptions::validate() const {
  if (!std::isfinite(dt) || !(dt > 0.0)) {
    std::ostringstream why;
    why << "dt must be finite and > 0 (got " << dt << ")";
    throw Error("NIR simulator options", why.str(), "dt is the Euler step in the time unit of the file's tau");
  }
}

const NirNodeStats& NirRunResult::node(const std::string& name) const {
  for (const NirNodeStats& s : nodes) {
    if (s.name == name) return s;
  }
  throw Error("NIR run result", "no node named " + name);
}

int64_t NirRunResult::total_spikes() const {
  int64_t n = 0;
  for (const NirNodeStats& s : nodes) n += s.spikes;
  return n;
}

int64_t NirRunResult::total_synaptic_ops() const {
  int64_t n = 0;
  for (const NirNodeStats& s : nodes) n += s.synaptic_ops;
  return n;
}

// One compiled node: its output buffer, its predecessors and its counts.
class NirOp {
 public:
  NirOp(const std::string& name, const std::string& type, int64_t in_size, int64_t out_size)
      : in_size(in_size), y(Eigen::VectorXd::Zero(out_size)) {
    stats.name = name;
    stats.type = type;
    stats.size = out_size;
  }
  virtual ~NirOp() = default;

  // Back to t = 0: state and counts.
  void reset() {
    y.setZero();
    stats.spikes = stats.neuron_updates = stats.input_events = stats.synaptic_ops = 0;
    reset_state();
  }
  // x: (in_size) the summed input of this step -> y (out_size).
  virtual void step(const Eigen::VectorXd& x) = 0;

  int64_t in_size;
  std::vector<int> inputs;  // indices of the predecessor ops
  Eigen::VectorXd y;        // (out_size) output of the current step
  NirNodeStats stats;

 protected:
  virtual void reset_state() {}
};

namespace {

Eigen::VectorXd to_vector(const NirParam& p) {
  const std::vector<double> v = p.to_doubles();
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

// Input, Output, Flatten: y = x.
class PassOp final : public NirOp {
 public:
  using NirOp::NirOp;
  void step(const Eigen::VectorXd& x) override { y = x; }
};

// Affine / Linear, event-driven: y = b + sum over nonzero x_j of x_j * W[:, j].
class DenseOp final : public NirOp {
 public:
  DenseOp(const std::string& name, const NirNode& node)
      : NirOp(name, node.type, node.at("weight").shape[1], node.at("weight").shape[0]) {
    const NirParam& w = node.at("weight");
    const std::vector<double> v = w.to_doubles();
    w_ = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        v.data(), w.shape[0], w.shape[1]);  // w: (out, in), stored column-major for column reads
    b_ = node.has("bias") ? to_vector(node.at("bias")) : Eigen::VectorXd::Zero(w.shape[0]);
  }
  void step(const Eigen::VectorXd& x) override {
    y = b_;
    for (Eigen::Index j = 0; j < x.size(); ++j) {
      if (x[j] == 0.0) continue;
      y += x[j] * w_.col(j);
      ++stats.input_events;
      stats.synaptic_ops += w_.rows();  // fan-out of input j
    }
  }

 private:
  Eigen::MatrixXd w_;  // (out, in)
  Eigen::VectorXd b_;  // (out)
};

// Scale: y = s * x.
class ScaleOp final : public NirOp {
 public:
  ScaleOp(const std::string& name, const NirNode& node, int64_t n)
      : NirOp(name, node.type, n, n), s_(to_vector(node.at("scale"))) {}
  void step(const Eigen::VectorXd& x) override { y = s_.cwiseProduct(x); }

 private:
  Eigen::VectorXd s_;  // (N)
};

// Conv2d, groups = 1, event-driven scatter: each nonzero input (ci, ih, iw) adds W[:, ci, p, q] * x
// to every output (oh, ow) whose window covers it at tap (p, q).
class ConvOp final : public NirOp {
 public:
  ConvOp(const std::string& name, const NirNode& node, const Shape& in, const Shape& out)
      : NirOp(name, node.type, shape_numel(in), shape_numel(out)),
        win_(nir_window2d(node, name)),
        c_in_(in[0]), h_(in[1]), w_(in[2]), c_out_(out[0]), oh_(out[1]), ow_(out[2]) {
    const NirParam& wp = node.at("weight");  // (C_out, C_in, kH, kW)
    const std::vector<double> v = wp.to_doubles();
    const int64_t kh = wp.shape[2], kw = wp.shape[3];
    // weights_: (C_in, kH, kW, C_out), so one tap's C_out weights are contiguous
    weights_.resize(static_cast<size_t>(c_in_ * kh * kw * c_out_));
    for (int64_t co = 0; co < c_out_; ++co) {
      for (int64_t ci = 0; ci < c_in_; ++ci) {
        for (int64_t p = 0; p < kh; ++p) {
          for (int64_t q = 0; q < kw; ++q) {
            weights_[static_cast<size_t>(((ci * kh + p) * kw + q) * c_out_ + co)] =
                v[static_cast<size_t>(((co * c_in_ + ci) * kh + p) * kw + q)];
          }
        }
      }
    }
    bias_ = to_vector(node.at("bias"));
  }

  void step(const Eigen::VectorXd& x) override {  // x: (C_in, H, W), y: (C_out, OH, OW)
    const int64_t kh = win_.kernel[0], kw = win_.kernel[1], plane = oh_ * ow_;
    for (int64_t co = 0; co < c_out_; ++co) y.segment(co * plane, plane).setConstant(bias_[co]);
    for (int64_t ci = 0; ci < c_in_; ++ci) {
      for (int64_t ih = 0; ih < h_; ++ih) {
        for (int64_t iw = 0; iw < w_; ++iw) {
          const double xv = x[(ci * h_ + ih) * w_ + iw];
          if (xv == 0.0) continue;
          ++stats.input_events;
          for (int64_t p = 0; p < kh; ++p) {
            const int64_t oh = output_index(ih, p, 0);
            if (oh < 0) continue;
            for (int64_t q = 0; q < kw; ++q) {
              const int64_t ow = output_index(iw, q, 1);
              if (ow < 0) continue;
              const double* wt = &weights_[static_cast<size_t>(((ci * kh + p) * kw + q) * c_out_)];
              double* out = y.data() + oh * ow_ + ow;
              for (int64_t co = 0; co < c_out_; ++co) out[co * plane] += wt[co] * xv;
              stats.synaptic_ops += c_out_;
            }
          }
        }
      }
    }
  }

 private:
  // The output row (dim 0) or column (dim 1) whose window puts input index i at tap k, or -1.
  int64_t output_index(int64_t i, int64_t k, int dim) const {
    const int64_t t = i + win_.pad_begin[dim] - k * win_.dilation[dim];
    if (t < 0 || t % win_.stride[dim] != 0) return -1;
    const int64_t o = t / win_.stride[dim];
    return o < (dim == 0 ? oh_ : ow_) ? o : -1;
  }

  NirWindow2d win_;
  int64_t c_in_, h_, w_, c_out_, oh_, ow_;
  std::vector<double> weights_;  // (C_in, kH, kW, C_out)
  Eigen::VectorXd bias_;         // (C_out)
};

// SumPool2d / AvgPool2d with zero padding.
class PoolOp final : public NirOp {
 public:
  PoolOp(const std::string& name, const NirNode& node, const Shape& in, const Shape& out)
      : NirOp(name, node.type, shape_numel(in), shape_numel(out)),
        win_(nir_window2d(node, name)),
        c_(in[0]), h_(in[1]), w_(in[2]), oh_(out[1]), ow_(out[2]),
        factor_(node.type == "AvgPool2d" ? 1.0 / static_cast<double>(win_.kernel[0] * win_.kernel[1]) : 1.0) {}

  void step(const Eigen::VectorXd& x) override {  // x: (C, H, W), y: (C, OH, OW)
    for (int64_t c = 0; c < c_; ++c) {
      for (int64_t oh = 0; oh < oh_; ++oh) {
        for (int64_t ow = 0; ow < ow_; ++ow) {
          double sum = 0.0;
          for (int64_t p = 0; p < win_.kernel[0]; ++p) {
            const int64_t ih = oh * win_.stride[0] - win_.pad_begin[0] + p;
            if (ih < 0 || ih >= h_) continue;
            for (int64_t q = 0; q < win_.kernel[1]; ++q) {
              const int64_t iw = ow * win_.stride[1] - win_.pad_begin[1] + q;
              if (iw >= 0 && iw < w_) sum += x[(c * h_ + ih) * w_ + iw];
            }
          }
          y[(c * oh_ + oh) * ow_ + ow] = sum * factor_;
        }
      }
    }
  }

 private:
  NirWindow2d win_;
  int64_t c_, h_, w_, oh_, ow_;
  double factor_;
};

// I, LI, IF, LIF (equations at the top of nir_sim.h).
class NeuronOp final : public NirOp {
 public:
  enum class Kind { kI, kLI, kIF, kLIF };

  struct Params {
    Eigen::ArrayXd r;            // (N) input resistance
    Eigen::ArrayXd tau;          // (N) time constant (LI/LIF), time unit of dt
    Eigen::ArrayXd v_leak;       // (N) resting potential (LI/LIF)
    Eigen::ArrayXd v_threshold;  // (N) firing threshold, strict (IF/LIF)
    Eigen::ArrayXd v_reset;      // (N) potential after a spike (IF/LIF)
  };

  struct State {
    Eigen::ArrayXd v;  // (N) membrane potential
  };

  NeuronOp(const std::string& name, const NirNode& node, int64_t n, double dt)
      : NirOp(name, node.type, n, n), dt_(dt) {
    const std::string& t = node.type;
    kind_ = t == "I" ? Kind::kI : t == "LI" ? Kind::kLI : t == "IF" ? Kind::kIF : Kind::kLIF;
    auto get = [&](const char* member) -> Eigen::ArrayXd {
      if (!node.has(member)) return Eigen::ArrayXd::Zero(n);  // v_reset of an in-memory graph
      const Eigen::ArrayXd a = to_vector(node.at(member)).array();
      if (a.size() == 1 && n != 1) return Eigen::ArrayXd::Constant(n, a[0]);
      if (a.size() != n) {
        throw Error(kWhat, "node " + name + " (" + t + "): " + member + " has " + std::to_string(a.size()) +
                               " values for " + std::to_string(n) + " neurons");
      }
      return a;
    };
    params_.r = get("r");
    if (kind_ == Kind::kLI || kind_ == Kind::kLIF) {
      params_.tau = get("tau");
      params_.v_leak = get("v_leak");
      for (Eigen::Index i = 0; i < params_.tau.size(); ++i) {
        if (!(params_.tau[i] > 0.0)) {
          std::ostringstream why;
          why << "node " << name << " (" << t << "): tau[" << i << "] must be > 0 (got " << params_.tau[i] << ")";
          throw Error(kWhat, why.str(), "tau is a time constant");
        }
      }
    }
    if (kind_ == Kind::kIF || kind_ == Kind::kLIF) {
      params_.v_threshold = get("v_threshold");
      params_.v_reset = get("v_reset");
    }
    state_.v = Eigen::ArrayXd::Zero(n);
  }

  void step(const Eigen::VectorXd& x) override {
    const auto xa = x.array();
    if (kind_ == Kind::kI || kind_ == Kind::kIF) {
      state_.v += dt_ * params_.r * xa;
    } else {
      state_.v += (dt_ / params_.tau) * (params_.v_leak - state_.v + params_.r * xa);
    }
    stats.neuron_updates += state_.v.size();
    if (kind_ == Kind::kI || kind_ == Kind::kLI) {
      y = state_.v.matrix();
      return;
    }
    for (Eigen::Index i = 0; i < state_.v.size(); ++i) {
      const bool spike = state_.v[i] > params_.v_threshold[i];
      y[i] = spike ? 1.0 : 0.0;
      if (spike) {
        state_.v[i] = params_.v_reset[i];
        ++stats.spikes;
      }
    }
  }

 protected:
  void reset_state() override { state_.v.setZero(); }

 private:
  Kind kind_;
  double dt_;
  Params params_;
  State state_;
};

const std::vector<std::string>& supported_types() {
  static const std::vector<std::string> types = {"Input",  "Output",    "Affine",    "Linear", "Scale",
                                                 "Flatten", "Conv2d",   "SumPool2d", "AvgPool2d", "I",
                                                 "LI",      "IF",       "LIF"};
  return types;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

}  // namespace

NirSimulator::NirSimulator(const NirGraph& graph, NirSimOptions options) : options_(options) {
  options_.validate();
  const NirTypes types = check_nir_graph(graph, kWhat);

  // Every unsupported node at once.
  std::vector<std::string> unsupported;
  for (const auto& [name, node] : graph.nodes) {
    const auto& ok = supported_types();
    if (std::find(ok.begin(), ok.end(), node.type) == ok.end()) unsupported.push_back(name + " (" + node.type + ")");
  }
  if (!unsupported.empty()) {
    throw Error(kWhat, "unsupported node types: " + join(unsupported),
                "the simulator runs " + join(supported_types()) + "; nested graphs are not flattened yet");
  }

  std::vector<std::string> inputs, outputs;
  for (const auto& [name, node] : graph.nodes) {
    if (node.type == "Input") inputs.push_back(name);
    if (node.type == "Output") outputs.push_back(name);
  }
  if (inputs.size() != 1 || outputs.size() != 1) {
    throw Error(kWhat,
                "the graph has " + std::to_string(inputs.size()) + " Input node(s) [" + join(inputs) + "] and " +
                    std::to_string(outputs.size()) + " Output node(s) [" + join(outputs) + "]",
                "the simulator needs exactly one Input and one Output");
  }

  // Topological order (Kahn), ties broken by name so the order is reproducible.
  std::map<std::string, int> indegree;
  std::map<std::string, std::vector<std::string>> successors, predecessors;
  for (const auto& [name, node] : graph.nodes) indegree[name] = 0;
  for (const auto& [a, b] : graph.edges) {
    ++indegree[b];
    successors[a].push_back(b);
    predecessors[b].push_back(a);
  }
  std::vector<std::string> sources;
  for (const auto& [name, d] : indegree) {
    if (d == 0 && name != inputs[0]) sources.push_back(name + " (" + graph.nodes.at(name).type + ")");
  }
  if (!sources.empty()) {
    throw Error(kWhat, "nodes without an incoming edge: " + join(sources),
                "only the Input node may be a source; connect them or remove them");
  }
  std::set<std::string> ready;
  for (const auto& [name, d] : indegree) {
    if (d == 0) ready.insert(name);
  }
  std::vector<std::string> order;
  while (!ready.empty()) {
    const std::string name = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(name);
    for (const std::string& s : successors[name]) {
      if (--indegree[s] == 0) ready.insert(s);
    }
  }
  if (order.size() != graph.nodes.size()) {
    std::vector<std::string> cyclic;
    for (const auto& [name, d] : indegree) {
      if (d > 0) cyclic.push_back(name);
    }
    throw Error(kWhat, "the edges form a cycle; nodes on or behind it: " + join(cyclic),
                "recurrent NIR graphs are not simulated yet (they need a one-step delay convention)");
  }

  // Compile in order.
  std::map<std::string, int> index;
  for (const std::string& name : order) {
    const NirNode& node = graph.nodes.at(name);
    const std::string label = "node " + name + " (" + node.type + ")";
    const NirNodeType& t = types.at(name);
    if (!t.input || !t.output) throw Error(kWhat, label + ": its input or output shape could not be derived");
    const Shape& in = *t.input;
    const Shape& out = *t.output;
    std::unique_ptr<NirOp> op;
    const std::string& type = node.type;
    if (type == "Input" || type == "Output" || type == "Flatten") {
      op = std::make_unique<PassOp>(name, type, shape_numel(in), shape_numel(out));
    } else if (type == "Affine" || type == "Linear") {
      if (node.at("weight").shape.size() != 2) {
        throw Error(kWhat, label + ": weight " + shape_str(node.at("weight").shape) + " is not 2-D (out, in)",
                    "batched (>2-D) weights are not simulated");
      }
      op = std::make_unique<DenseOp>(name, node);
    } else if (type == "Scale") {
      op = std::make_unique<ScaleOp>(name, node, shape_numel(in));
    } else if (type == "Conv2d") {
      if (node.at("groups").to_doubles()[0] != 1.0) {
        throw Error(kWhat, label + ": groups != 1", "grouped and depthwise convolutions are not simulated yet");
      }
      const NirWindow2d w = nir_window2d(node, name);
      if (w.same && (w.stride[0] != 1 || w.stride[1] != 1)) {
        throw Error(kWhat, label + ": padding 'same' with stride > 1",
                    "NIR keeps the input size there, PyTorch refuses it; give the padding as ints");
      }
      op = std::make_unique<ConvOp>(name, node, in, out);
    } else if (type == "SumPool2d" || type == "AvgPool2d") {
      op = std::make_unique<PoolOp>(name, node, in, out);
    } else {  // I, LI, IF, LIF
      op = std::make_unique<NeuronOp>(name, node, shape_numel(out), options_.dt);
    }
    for (const std::string& p : predecessors[name]) {
      const NirOp& src = *ops_[static_cast<size_t>(index.at(p))];
      if (src.y.size() != op->in_size) {
        throw Error(kWhat, "edge (" + p + ", " + name + "): " + p + " outputs " + std::to_string(src.y.size()) +
                               " values but " + name + " takes " + std::to_string(op->in_size));
      }
      op->inputs.push_back(index.at(p));
    }
    index[name] = static_cast<int>(ops_.size());
    ops_.push_back(std::move(op));
  }
  input_shape_ = *types.at(inputs[0]).output;
  output_shape_ = *types.at(outputs[0]).output;
  output_op_ = index.at(outputs[0]);
}

NirSimulator::~NirSimulator() = default;
NirSimulator::NirSimulator(NirSimulator&&) noexcept = default;
NirSimulator& NirSimulator::operator=(NirSimulator&&) noexcept = default;

std::vector<std::string> NirSimulator::order() const {
  std::vector<std::string> names;
  for (const auto& op : ops_) names.push_back(op->stats.name);
  return names;
}

NirRunResult NirSimulator::run(const std::vector<std::vector<float>>& input_per_step) {
  for (auto& op : ops_) op->reset();
  NirRunResult result;
  result.output.reserve(input_per_step.size());
  Eigen::VectorXd x;
  for (size_t s = 0; s < input_per_step.size(); ++s) {
    const std::vector<float>& row = input_per_step[s];
    if (static_cast<int64_t>(row.size()) != input_size()) {
      throw Error(kWhat, "step " + std::to_string(s) + ": input has " + std::to_string(row.size()) +
                             " values, the Input node takes " + std::to_string(input_size()) + " " +
                             shape_str(input_shape_),
                  "pass one row of input_size() values per step");
    }
    for (size_t i = 0; i < row.size(); ++i) {
      if (!std::isfinite(row[i])) {
        throw Error(kWhat, "step " + std::to_string(s) + ": input[" + std::to_string(i) + "] is not finite");
      }
    }
    ops_[0]->step(Eigen::Map<const Eigen::VectorXf>(row.data(), static_cast<Eigen::Index>(row.size())).cast<double>());
    for (size_t i = 1; i < ops_.size(); ++i) {
      NirOp& op = *ops_[i];
      x = ops_[static_cast<size_t>(op.inputs[0])]->y;
      for (size_t k = 1; k < op.inputs.size(); ++k) x += ops_[static_cast<size_t>(op.inputs[k])]->y;
      op.step(x);
    }
    const Eigen::VectorXd& y = ops_[static_cast<size_t>(output_op_)]->y;
    result.output.emplace_back(y.size());
    for (Eigen::Index i = 0; i < y.size(); ++i) result.output.back()[static_cast<size_t>(i)] = static_cast<float>(y[i]);
  }
  for (const auto& op : ops_) result.nodes.push_back(op->stats);
  return result;
}

}  // namespace spikefm::snn
