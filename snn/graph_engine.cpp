#include "snn/graph_engine.h"

#include <algorithm>
#include <cmath>

#include "common/dense_kernels.h"
#include "common/error.h"

namespace spikefm::snn {

namespace {
bool is_rate(const SpikingGraph& g) { return g.coding == Coding::rate; }

// Bytes of one stored weight row of `out` outputs at the node's width (the fan-out one event reads).
int64_t weight_row_bytes(const OpNode& n) { return (static_cast<int64_t>(n.cols) * n.weight_bits + 7) / 8; }

// Weights and scales as the hardware stores them: codes at weight_bits, fp16 scales of a grouped layer
// (a per-channel layer's one scale per output is folded into its neurons' threshold).
int64_t stored_weight_bytes(const OpNode& n) {
  const int64_t scales = n.group > 0 ? static_cast<int64_t>(n.cols) * n.groups() * 2 : 0;
  return n.in * weight_row_bytes(n) + scales;
}

// Σ_g acc_g · scale_g in group order; acc: (groups, out) of one row, scale: (out, groups).
inline float grouped_sum(const int32_t* acc, const float* scale, int o, int groups, int out) {
  float v = static_cast<float>(acc[o]) * scale[static_cast<size_t>(o) * groups];
  for (int g = 1; g < groups; ++g) v = v + static_cast<float>(acc[static_cast<size_t>(g) * out + o]) * scale[static_cast<size_t>(o) * groups + g];
  return v;
}

// Re-rows the events of rows r into rows r·G + (index / group), keeping their order: the event-driven
// kernel then adds each spike into the accumulator of its input's group.
void regroup(const SpikeEvents& ev, int group, int groups, SpikeEvents& out) {
  out.rows = ev.rows * groups;
  out.width = ev.width;
  out.row_ptr.assign(static_cast<size_t>(out.rows) + 1, 0);
  out.index.resize(ev.index.size());
  out.value.resize(ev.value.size());
  // Counting sort without scratch: row_ptr[k] first holds the start of row k, is advanced past each
  // event placed there (ending at the start of row k + 1), then shifted back by one row.
  for (int r = 0; r < ev.rows; ++r) {
    for (int32_t k = ev.row_ptr[r]; k < ev.row_ptr[r + 1]; ++k) ++out.row_ptr[static_cast<size_t>(r) * groups + ev.index[k] / group + 1];
  }
  for (int k = 0; k < out.rows; ++k) out.row_ptr[k + 1] += out.row_ptr[k];
  for (int r = 0; r < ev.rows; ++r) {
    for (int32_t k = ev.row_ptr[r]; k < ev.row_ptr[r + 1]; ++k) {
      const int32_t dst = out.row_ptr[static_cast<size_t>(r) * groups + ev.index[k] / group]++;
      out.index[dst] = ev.index[k];
      out.value[dst] = ev.value[k];
    }
  }
  for (int k = out.rows; k > 0; --k) out.row_ptr[k] = out.row_ptr[k - 1];
  out.row_ptr[0] = 0;
}
}  // namespace

GraphEngine::GraphEngine(SpikingGraph graph) : g_(std::move(graph)) {
  g_.validate();
  const int rc = g_.rows_cap;
  rt_.resize(g_.nodes.size());
  changed_.resize(g_.nodes.size());
  stats_.assign(g_.nodes.size(), LayerStats{});
  ann_.assign(g_.nodes.size(), AnnWork{});
  for (size_t idx = 0; idx < g_.nodes.size(); ++idx) {
    const OpNode& n = g_.nodes[idx];
    NodeRt& r = rt_[idx];
    const bool map = n.is_map();
    r.srows = map ? n.heads * rc : rc;
    r.scols = map ? rc : n.cols;
    r.value.assign(static_cast<size_t>(r.srows) * r.scols, 0.0f);
    r.fresh.assign(r.srows, 0);
    changed_[idx].assign(r.srows, 0);
    switch (n.kind) {
      case OpKind::pixel_input:
      case OpKind::row_input:
        r.input.assign(static_cast<size_t>(rc) * n.cols, 0.0f);
        break;
      case OpKind::encode_linear:
        r.acc.assign(static_cast<size_t>(rc) * n.groups() * n.cols, 0);
        break;
      case OpKind::linear:
        r.acc.assign(static_cast<size_t>(rc) * n.groups() * n.cols, 0);
        r.lin = std::make_unique<EventLinearI8>(
            EventLinearI8::from_weight(Eigen::Map<const MatrixI8R>(n.weight.data(), n.cols, n.in)));
        break;
      case OpKind::neuron:
        r.acc.assign(r.value.size(), 0);
        r.delta.assign(r.value.size(), 0);
        r.pending.assign(r.srows, 0);
        r.events.rows = r.srows;
        r.events.width = r.scols;
        r.events.row_ptr.assign(r.srows + 1, 0);
        if (n.neuron == NeuronKind::if_rate) {
          r.membrane.assign(r.value.size(), 0.0f);
          r.prev.assign(r.value.size(), 0.0f);
        } else {
          r.target.assign(r.value.size(), 0);
        }
        break;
      case OpKind::qk_product:
        r.acc.assign(r.value.size(), 0);
        break;
      case OpKind::av_product:
        r.acc.assign(static_cast<size_t>(rc) * n.cols, 0);
        break;
      default:
        break;
    }
  }
}

void GraphEngine::reset() {
  for (auto& r : rt_) {
    std::fill(r.value.begin(), r.value.end(), 0.0f);
    std::fill(r.acc.begin(), r.acc.end(), 0);
    std::fill(r.target.begin(), r.target.end(), 0);
    std::fill(r.membrane.begin(), r.membrane.end(), 0.0f);
    std::fill(r.prev.begin(), r.prev.end(), 0.0f);
    std::fill(r.delta.begin(), r.delta.end(), 0);
    std::fill(r.pending.begin(), r.pending.end(), 0);
    std::fill(r.input.begin(), r.input.end(), 0.0f);
    std::fill(r.fresh.begin(), r.fresh.end(), 0);
    r.ev_rows.clear();
  }
  rows_ = 0;
  ann_from_ = 0;
}

void GraphEngine::reset_stats() {
  stats_.assign(g_.nodes.size(), LayerStats{});
  ann_.assign(g_.nodes.size(), AnnWork{});
  step_stats_.clear();
}

void GraphEngine::set_rows(int rows) {
  if (rows < 0 || rows > g_.rows_cap) {
    throw Error("spiking graph '" + g_.name + "'", std::to_string(rows) + " rows do not fit rows_cap " +
                                                       std::to_string(g_.rows_cap),
                "the sequence is longer than the model's maximum");
  }
  const int rc = g_.rows_cap;
  for (size_t idx = 0; idx < g_.nodes.size(); ++idx) {
    const OpNode& n = g_.nodes[idx];
    NodeRt& r = rt_[idx];
    const bool map = n.is_map();
    const int heads = map ? n.heads : 1;
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < rc; ++i) {
        const int sr = h * (map ? rc : 0) + i;
        if (i >= rows && i < rows_) {
          // rollback: the removed token's state goes away
          auto zero = [&](auto& v, size_t width) {
            if (!v.empty()) std::fill(v.begin() + sr * width, v.begin() + (sr + 1) * width, 0);
          };
          const size_t w = r.scols;
          std::fill(r.value.begin() + sr * w, r.value.begin() + (sr + 1) * w, 0.0f);
          if (!r.membrane.empty()) std::fill(r.membrane.begin() + sr * w, r.membrane.begin() + (sr + 1) * w, 0.0f);
          if (!r.prev.empty()) std::fill(r.prev.begin() + sr * w, r.prev.begin() + (sr + 1) * w, 0.0f);
          zero(r.acc, r.acc.size() / r.srows);  // storage width, times the groups of a grouped linear
          zero(r.target, w);
          zero(r.delta, w);
          if (!r.pending.empty()) r.pending[sr] = 0;
          if (!r.input.empty()) std::fill(r.input.begin() + sr * w, r.input.begin() + (sr + 1) * w, 0.0f);
          r.fresh[sr] = 0;
        }
        if (i >= rows_ && i < rows) r.fresh[sr] = 1;  // new token: computed at the next step
      }
    }
    // Kept rows of a map lose the columns of removed keys (zero already when causal).
    if (map && rows < rows_) {
      for (int sr = 0; sr < r.srows; ++sr) {
        for (int j = rows; j < rows_; ++j) {
          r.value[static_cast<size_t>(sr) * rc + j] = 0.0f;
          if (!r.acc.empty()) r.acc[static_cast<size_t>(sr) * rc + j] = 0;
          if (!r.target.empty()) r.target[static_cast<size_t>(sr) * rc + j] = 0;
        }
      }
    }
    // A non-causal map (encoder attention) sees new keys in every row: recompute all of them.
    if (map && rows > rows_ && !n.causal) std::fill(r.fresh.begin(), r.fresh.end(), 1);
    r.ev_rows.erase(std::remove_if(r.ev_rows.begin(), r.ev_rows.end(),
                                   [&](int32_t sr) { return (map ? sr % rc : sr) >= rows; }),
                    r.ev_rows.end());
  }
  rows_ = rows;
  ann_from_ = std::min(ann_from_, rows);
}

void GraphEngine::set_input(int node, int row, const float* values) {
  const OpNode& n = g_.nodes.at(node);
  if (n.kind != OpKind::pixel_input && n.kind != OpKind::row_input) {
    throw Error("spiking graph '" + g_.name + "'", "node " + n.name + " is not an input");
  }
  if (row < 0 || row >= rows_) throw Error("spiking graph '" + g_.name + "'", "input row " + std::to_string(row) + " is not active");
  for (int c = 0; c < n.cols; ++c) {
    if (!std::isfinite(values[c])) {
      throw Error("input of spiking graph '" + g_.name + "', node " + n.name + ", row " + std::to_string(row),
                  "value " + std::to_string(c) + " is " + std::to_string(values[c]), "check the model and its input");
    }
  }
  NodeRt& r = rt_[node];
  std::copy(values, values + n.cols, r.input.begin() + static_cast<size_t>(row) * n.cols);
  r.fresh[row] = 1;
}

const float* GraphEngine::value_row(int node, int row) const {
  const NodeRt& r = rt_.at(node);
  return r.value.data() + static_cast<size_t>(row) * r.scols;
}

std::vector<float> GraphEngine::output_row(int row) const {
  const OpNode& n = g_.nodes[g_.output];
  const float* v = value_row(g_.output, row);
  std::vector<float> out(v, v + n.cols);
  if (is_rate(g_) && t_ > 0) {
    for (float& x : out) x /= static_cast<float>(t_);
  }
  return out;
}

RunReport GraphEngine::run(const RunOptions& opts) {
  if (opts.timesteps < 1 && !opts.until_quiet) throw Error("spiking simulation", "timesteps must be >= 1");
  RunReport rep;
  if (is_rate(g_)) {
    // Rate coding restarts from zero state every run: inputs and biases are re-injected each step.
    for (size_t idx = 0; idx < g_.nodes.size(); ++idx) {
      NodeRt& r = rt_[idx];
      std::fill(r.value.begin(), r.value.end(), 0.0f);
      std::fill(r.acc.begin(), r.acc.end(), 0);
      std::fill(r.membrane.begin(), r.membrane.end(), 0.0f);
      std::fill(r.prev.begin(), r.prev.end(), 0.0f);
      std::fill(r.delta.begin(), r.delta.end(), 0);
      std::fill(r.pending.begin(), r.pending.end(), 0);
      std::fill(r.fresh.begin(), r.fresh.end(), 1);
      r.ev_rows.clear();  // r.input (the driver's rows) is kept
    }
  }
  const int limit = opts.until_quiet && !is_rate(g_) ? opts.max_steps : opts.timesteps;
  step_stats_.clear();
  trace_.clear();
  t_ = 0;
  for (int s = 0; s < limit; ++s) {
    const float k = is_rate(g_) ? static_cast<float>(s + 1) : 1.0f;
    step_stats_.push_back(LayerStats{});
    if (trace_on_) trace_.emplace_back(g_.nodes.size());
    for (auto& c : changed_) std::fill(c.begin(), c.end(), 0);
    for (size_t idx = 0; idx < g_.nodes.size(); ++idx) step_node(static_cast<int>(idx), k);
    for (auto& r : rt_) std::fill(r.fresh.begin(), r.fresh.end(), 0);
    ++t_;
    const LayerStats& st = step_stats_.back();
    const int64_t spikes = st.spikes_pos + st.spikes_neg;
    rep.spikes += spikes;
    rep.settled = spikes == 0;
    if (opts.until_quiet && !is_rate(g_) && spikes == 0) break;
  }
  rep.steps = t_;
  count_ann_work();
  return rep;
}

void GraphEngine::count_ann_work() {
  // Only the rows new since the last run, whatever the coding: the baseline ANN keeps a KV cache even
  // when a rate-coded SNN re-simulates every row.
  const int a = ann_from_, R = rows_;
  const int nr = R - a;
  ann_from_ = R;
  if (nr <= 0) return;
  const int rc = g_.rows_cap;
  auto visible = [&](const OpNode& n, int i) { return n.causal ? i + 1 : R; };
  auto nnz = [](const int32_t* x, int len) {
    int64_t c = 0;
    for (int k = 0; k < len; ++k) c += x[k] != 0;
    return c;
  };
  for (size_t idx = 0; idx < g_.nodes.size(); ++idx) {
    const OpNode& n = g_.nodes[idx];
    AnnWork w;
    switch (n.kind) {
      case OpKind::encode_linear: {
        const NodeRt& px = rt_[n.inputs[0]];
        w.rows = nr;
        w.macs = static_cast<int64_t>(nr) * n.in * n.cols;
        for (int i = a; i < R; ++i) {
          const float* x = px.value.data() + static_cast<size_t>(i) * n.in;
          w.nonzero_macs += static_cast<int64_t>(std::count_if(x, x + n.in, [](float v) { return v != 0.0f; })) * n.cols;
        }
        w.weight_bytes = stored_weight_bytes(n);
        w.act_reads = static_cast<int64_t>(nr) * n.in;
        break;
      }
      case OpKind::linear: {
        const NodeRt& s = rt_[n.inputs[0]];
        w.rows = nr;
        w.macs = static_cast<int64_t>(nr) * n.in * n.cols;
        for (int i = a; i < R; ++i) w.nonzero_macs += nnz(s.acc.data() + static_cast<size_t>(i) * n.in, n.in) * n.cols;
        w.weight_bytes = stored_weight_bytes(n);
        w.act_reads = static_cast<int64_t>(nr) * n.in;
        break;
      }
      case OpKind::neuron:
        w.rows = nr;
        if (n.is_map()) {
          for (int i = a; i < R; ++i) w.outputs += static_cast<int64_t>(n.heads) * visible(g_.nodes[n.inputs[0]], i);
        } else {
          w.outputs = static_cast<int64_t>(nr) * n.cols;
        }
        break;
      case OpKind::add:
        w.rows = nr;
        w.dense_ops = static_cast<int64_t>(nr) * n.cols;
        break;
      case OpKind::layer_norm:
        w.rows = nr;
        w.dense_ops = static_cast<int64_t>(nr) * (8 * static_cast<int64_t>(n.cols) + 2);
        break;
      case OpKind::softmax:
        w.rows = nr;
        for (int i = a; i < R; ++i) w.dense_ops += 5 * static_cast<int64_t>(n.heads) * visible(n, i);
        break;
      case OpKind::qk_product: {
        // Q(i) · K(j)ᵀ per head over the visible keys; zero-skipping on the query's activations.
        const NodeRt& q = rt_[n.inputs[0]];
        const int C = g_.nodes[n.inputs[0]].cols;
        w.rows = nr;
        for (int i = a; i < R; ++i) {
          const int vis = visible(n, i);
          w.macs += static_cast<int64_t>(vis) * C;
          w.nonzero_macs += nnz(q.acc.data() + static_cast<size_t>(i) * C, C) * vis;
          w.act_reads += static_cast<int64_t>(vis + 1) * C;  // the query row and the visible keys
        }
        break;
      }
      case OpKind::av_product: {
        // P(i, j) · V(j) per head over the visible keys; zero-skipping on the attention counts.
        const NodeRt& p = rt_[n.inputs[0]];
        const int C = n.cols, d = C / n.heads;
        w.rows = nr;
        for (int i = a; i < R; ++i) {
          const int vis = visible(n, i);
          w.macs += static_cast<int64_t>(vis) * C;
          for (int h = 0; h < n.heads; ++h) w.nonzero_macs += nnz(p.acc.data() + static_cast<size_t>(h * rc + i) * rc, vis) * d;
          w.act_reads += static_cast<int64_t>(vis) * (C + n.heads);  // the visible values and the attention row
        }
        break;
      }
      default:
        break;
    }
    ann_[idx] += w;
  }
}

void GraphEngine::step_node(int idx, float k) {
  const OpNode& n = g_.nodes[idx];
  NodeRt& r = rt_[idx];
  std::vector<uint8_t>& ch = changed_[idx];
  LayerStats st;
  const int rc = g_.rows_cap;
  const bool rate = is_rate(g_);

  switch (n.kind) {
    case OpKind::pixel_input:
    case OpKind::row_input:
      for (int i = 0; i < rows_; ++i) {
        if (!r.fresh[i] && !rate) continue;
        ch[i] = 1;
        const float* in = r.input.data() + static_cast<size_t>(i) * n.cols;
        float* v = r.value.data() + static_cast<size_t>(i) * n.cols;
        for (int c = 0; c < n.cols; ++c) v[c] = (n.kind == OpKind::row_input) ? in[c] * k : in[c];
      }
      break;

    case OpKind::encode_linear: {
      const int src = n.inputs[0];
      for (int i = 0; i < rows_; ++i) {
        const bool new_input = changed_[src][i] && (r.fresh[i] || rt_[src].fresh[i]);
        if (new_input) {
          const float* px = rt_[src].value.data() + static_cast<size_t>(i) * n.in;
          const int G = n.groups(), gs = n.group > 0 ? n.group : n.in;
          int32_t* acc = r.acc.data() + static_cast<size_t>(i) * G * n.cols;
          for (int o = 0; o < n.cols; ++o) {
            const int8_t* w = n.weight.data() + static_cast<size_t>(o) * n.in;
            for (int g = 0; g < G; ++g) {
              int32_t sum = 0;
              for (int c = g * gs; c < std::min(n.in, (g + 1) * gs); ++c) sum += static_cast<int32_t>(px[c]) * w[c];
              acc[static_cast<size_t>(g) * n.cols + o] = sum;
            }
          }
          st.dense_macs += static_cast<int64_t>(n.in) * n.cols;
        }
        if (new_input || changed_[src][i] || r.fresh[i] || rate) {
          ch[i] = 1;
          const int G = n.groups();
          const int32_t* acc = r.acc.data() + static_cast<size_t>(i) * G * n.cols;
          float* v = r.value.data() + static_cast<size_t>(i) * n.cols;
          for (int o = 0; o < n.cols; ++o) v[o] = (grouped_sum(acc, n.scale.data(), o, G, n.cols) + n.bias[o]) * k;
        }
      }
      break;
    }

    case OpKind::linear: {
      const NodeRt& s = rt_[n.inputs[0]];
      const int out = n.cols;
      const int G = n.groups();
      if (!s.ev_rows.empty()) {
        LayerStats k_st;  // the kernel also counts spikes; those belong to the neuron node
        if (G == 1) {
          r.lin->accumulate(s.events, r.acc.data(), &k_st);
        } else {
          regroup(s.events, n.group, G, r.grouped);
          r.lin->accumulate(r.grouped, r.acc.data(), &k_st);
        }
        st.events += k_st.events;
        st.sops += k_st.sops;
        // The kernel reads int8 rows; the hardware reads rows of weight_bits-wide codes.
        st.weight_bytes_read += k_st.events * weight_row_bytes(n);
        for (int32_t row : s.ev_rows) ch[row] = 1;
      }
      for (int i = 0; i < rows_; ++i) {
        if (!(ch[i] || r.fresh[i] || rate)) continue;
        ch[i] = 1;
        const int32_t* acc = r.acc.data() + static_cast<size_t>(i) * G * out;
        float* v = r.value.data() + static_cast<size_t>(i) * out;
        for (int o = 0; o < out; ++o) v[o] = grouped_sum(acc, n.scale.data(), o, G, out) + n.bias[o] * k;
      }
      break;
    }

    case OpKind::neuron: {
      const int src = n.inputs[0];
      const NodeRt& in = rt_[src];
      const int w = r.scols;
      const int cols = n.is_map() ? rows_ : n.cols;
      const int heads = n.is_map() ? n.heads : 1;
      for (int32_t row : r.ev_rows) std::fill(r.delta.begin() + static_cast<size_t>(row) * w, r.delta.begin() + static_cast<size_t>(row + 1) * w, 0);
      r.ev_rows.clear();
      SpikeEvents& ev = r.events;
      std::fill(ev.row_ptr.begin(), ev.row_ptr.end(), 0);
      ev.index.clear();
      ev.value.clear();
      const float lo = static_cast<float>(n.lo), hi = static_cast<float>(n.hi);
      for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < rows_; ++i) {
          const int sr = n.is_map() ? h * rc + i : i;
          const size_t base = static_cast<size_t>(sr) * w;
          const float* x = in.value.data() + base;
          st.neuron_updates += cols;
          if (r.fresh[sr]) {
            ch[sr] = 1;  // value θ·S = 0 for a new row
            if (n.neuron == NeuronKind::if_rate) {
              std::fill(r.membrane.begin() + base, r.membrane.begin() + base + w, n.theta * 0.5f);
              std::fill(r.prev.begin() + base, r.prev.begin() + base + w, 0.0f);
            }
          }
          if (changed_[src][sr] || r.fresh[sr]) {
            if (n.neuron == NeuronKind::if_rate) {
              for (int c = 0; c < cols; ++c) {
                r.membrane[base + c] += x[c] - r.prev[base + c];
                r.prev[base + c] = x[c];
              }
            } else {
              for (int c = 0; c < cols; ++c) {
                r.target[base + c] = static_cast<int32_t>(dense::quantize_count(x[c], n.theta, lo, hi));
              }
            }
            r.pending[sr] = 1;
          }
          if (!r.pending[sr]) continue;
          bool spiked = false, still = false;
          int32_t* S = r.acc.data() + base;
          int8_t* d = r.delta.data() + base;
          float* v = r.value.data() + base;
          for (int c = 0; c < cols; ++c) {
            int32_t sp = 0;
            if (n.neuron == NeuronKind::if_rate) {
              float& V = r.membrane[base + c];
              if (V >= n.theta) sp = 1;
              else if (n.lo < 0 && V < 0.0f) sp = -1;
              V -= static_cast<float>(sp) * n.theta;
              still |= V >= n.theta || (n.lo < 0 && V < 0.0f);
            } else {
              const int32_t gap = r.target[base + c] - S[c];
              const int32_t b = n.neuron == NeuronKind::burst ? n.burst : 1;
              sp = std::clamp(gap, -b, b);
              still |= gap != sp;
            }
            if (sp != 0) {
              S[c] += sp;
              d[c] = static_cast<int8_t>(sp);
              ev.index.push_back(c);
              ev.value.push_back(static_cast<int8_t>(sp));
              ev.row_ptr[sr + 1] += 1;
              v[c] = static_cast<float>(S[c]) * n.theta;
              spiked = true;
              st.events += 1;  // one event (packet) per neuron and step, a burst included
              if (sp > 0) st.spikes_pos += sp;
              else st.spikes_neg -= sp;
            }
          }
          r.pending[sr] = still;
          if (spiked) {
            r.ev_rows.push_back(sr);
            ch[sr] = 1;
          }
        }
      }
      for (int q = 0; q < r.srows; ++q) ev.row_ptr[q + 1] += ev.row_ptr[q];  // counts → CSR offsets
      break;
    }

    case OpKind::add: {
      const int a = n.inputs[0], b = n.inputs[1];
      for (int i = 0; i < rows_; ++i) {
        if (!(changed_[a][i] || changed_[b][i] || r.fresh[i] || rate)) continue;
        ch[i] = 1;
        const float* va = rt_[a].value.data() + static_cast<size_t>(i) * n.cols;
        const float* vb = rt_[b].value.data() + static_cast<size_t>(i) * n.cols;
        float* v = r.value.data() + static_cast<size_t>(i) * n.cols;
        for (int c = 0; c < n.cols; ++c) v[c] = va[c] + vb[c];
      }
      break;
    }

    case OpKind::layer_norm: {
      const int src = n.inputs[0];
      std::vector<float> tmp(rate ? n.cols : 0);
      for (int i = 0; i < rows_; ++i) {
        if (!(changed_[src][i] || r.fresh[i] || rate)) continue;
        ch[i] = 1;
        const float* x = rt_[src].value.data() + static_cast<size_t>(i) * n.cols;
        float* y = r.value.data() + static_cast<size_t>(i) * n.cols;
        if (rate) {
          for (int c = 0; c < n.cols; ++c) tmp[c] = x[c] / k;
          dense::layer_norm_row(tmp.data(), y, n.cols, n.gamma.data(), n.beta.data(), n.eps);
          for (int c = 0; c < n.cols; ++c) y[c] *= k;
        } else {
          dense::layer_norm_row(x, y, n.cols, n.gamma.data(), n.beta.data(), n.eps);
        }
        st.dense_ops += 8 * static_cast<int64_t>(n.cols) + 2;
      }
      break;
    }

    case OpKind::qk_product: {
      const NodeRt& q = rt_[n.inputs[0]];
      const NodeRt& kk = rt_[n.inputs[1]];
      const int C = g_.nodes[n.inputs[0]].cols, d = C / n.heads;
      // ΔS_q · S_k(t−1)ᵀ
      for (int32_t r_q : q.ev_rows) {
        const int jmax = n.causal ? r_q + 1 : rows_;
        for (int c = 0; c < C; ++c) {
          const int32_t dq = q.delta[static_cast<size_t>(r_q) * C + c];
          if (dq == 0) continue;
          const int sr = (c / d) * rc + r_q;
          int32_t* P = r.acc.data() + static_cast<size_t>(sr) * rc;
          for (int j = 0; j < jmax; ++j) {
            const size_t kc = static_cast<size_t>(j) * C + c;
            P[j] += dq * (kk.acc[kc] - kk.delta[kc]);
          }
          st.events += 1;
          st.sops += jmax;
          ch[sr] = 1;
        }
      }
      // S_q(t) · ΔS_kᵀ
      for (int32_t r_k : kk.ev_rows) {
        const int i0 = n.causal ? r_k : 0;
        for (int c = 0; c < C; ++c) {
          const int32_t dk = kk.delta[static_cast<size_t>(r_k) * C + c];
          if (dk == 0) continue;
          const int h = c / d;
          for (int i = i0; i < rows_; ++i) {
            const int sr = h * rc + i;
            r.acc[static_cast<size_t>(sr) * rc + r_k] += dk * q.acc[static_cast<size_t>(i) * C + c];
            ch[sr] = 1;
          }
          st.events += 1;
          st.sops += rows_ - i0;
        }
      }
      for (int h = 0; h < n.heads; ++h) {
        for (int i = 0; i < rows_; ++i) {
          const int sr = h * rc + i;
          if (!(ch[sr] || r.fresh[sr] || rate)) continue;
          ch[sr] = 1;
          const int valid = n.causal ? i + 1 : rows_;
          const int32_t* P = r.acc.data() + static_cast<size_t>(sr) * rc;
          float* v = r.value.data() + static_cast<size_t>(sr) * rc;
          for (int j = 0; j < valid; ++j) v[j] = static_cast<float>(P[j]) * n.prod_scale / k;
          for (int j = valid; j < rows_; ++j) v[j] = 0.0f;
        }
      }
      break;
    }

    case OpKind::softmax: {
      const int src = n.inputs[0];
      std::vector<float> tmp(rate ? rc : 0);
      for (int h = 0; h < n.heads; ++h) {
        for (int i = 0; i < rows_; ++i) {
          const int sr = h * rc + i;
          if (!(changed_[src][sr] || r.fresh[sr] || rate)) continue;
          ch[sr] = 1;
          const int valid = n.causal ? i + 1 : rows_;
          const float* x = rt_[src].value.data() + static_cast<size_t>(sr) * rc;
          float* y = r.value.data() + static_cast<size_t>(sr) * rc;
          if (rate) {
            for (int j = 0; j < valid; ++j) tmp[j] = x[j] / k;
            dense::softmax_row(tmp.data(), y, valid, rows_);
            for (int j = 0; j < valid; ++j) y[j] *= k;
          } else {
            dense::softmax_row(x, y, valid, rows_);
          }
          st.dense_ops += 5 * static_cast<int64_t>(valid);
        }
      }
      break;
    }

    case OpKind::av_product: {
      const NodeRt& p = rt_[n.inputs[0]];
      const NodeRt& vv = rt_[n.inputs[1]];
      const int C = n.cols, d = C / n.heads;
      // ΔS_p · S_v(t−1)
      for (int32_t sr : p.ev_rows) {
        const int h = sr / rc, i = sr % rc;
        int32_t* O = r.acc.data() + static_cast<size_t>(i) * C + h * d;
        const int8_t* dp_row = p.delta.data() + static_cast<size_t>(sr) * rc;
        for (int j = 0; j < rows_; ++j) {
          const int32_t dp = dp_row[j];
          if (dp == 0) continue;
          const size_t vb = static_cast<size_t>(j) * C + h * d;
          for (int c = 0; c < d; ++c) O[c] += dp * (vv.acc[vb + c] - vv.delta[vb + c]);
          st.events += 1;
          st.sops += d;
        }
        ch[i] = 1;
      }
      // S_p(t) · ΔS_v
      for (int32_t r_v : vv.ev_rows) {
        const int i0 = n.causal ? r_v : 0;
        for (int c = 0; c < C; ++c) {
          const int32_t dv = vv.delta[static_cast<size_t>(r_v) * C + c];
          if (dv == 0) continue;
          const int h = c / d;
          for (int i = i0; i < rows_; ++i) {
            const int32_t pc = p.acc[static_cast<size_t>(h * rc + i) * rc + r_v];
            if (pc == 0) continue;
            r.acc[static_cast<size_t>(i) * C + c] += dv * pc;
            ch[i] = 1;
          }
          st.events += 1;
          st.sops += rows_ - i0;
        }
      }
      for (int i = 0; i < rows_; ++i) {
        if (!(ch[i] || r.fresh[i] || rate)) continue;
        ch[i] = 1;
        const int32_t* O = r.acc.data() + static_cast<size_t>(i) * C;
        float* v = r.value.data() + static_cast<size_t>(i) * C;
        for (int c = 0; c < C; ++c) v[c] = static_cast<float>(O[c]) * n.prod_scale / k;
      }
      break;
    }
  }
  stats_[idx] += st;
  step_stats_.back() += st;
  if (trace_on_) trace_.back()[idx] = st;
}

}  // namespace spikefm::snn
