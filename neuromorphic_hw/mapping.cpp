#include "neuromorphic_hw/mapping.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace spikefm::hw {

namespace {

const char* const kWhat = "mapping layers onto cores";
constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

// Units that still fit in `free_amount` when each needs `per_unit` (0 per unit: any number).
int64_t units_that_fit(int64_t free_amount, int64_t per_unit) {
  if (per_unit <= 0) return kUnlimited;
  return free_amount > 0 ? free_amount / per_unit : 0;
}

void validate(const ActivityCounts& counts, const HwSpec& spec) {
  if (spec.cores <= 0) throw Error(kWhat, "chip.cores must be > 0 (got " + std::to_string(spec.cores) + ")");
  if (spec.mesh_cols <= 0 || spec.mesh_rows <= 0 ||
      static_cast<int64_t>(spec.mesh_cols) * spec.mesh_rows < spec.cores) {
    throw Error(kWhat,
                "the mesh " + std::to_string(spec.mesh_cols) + " x " + std::to_string(spec.mesh_rows) +
                    " has fewer positions than chip.cores = " + std::to_string(spec.cores),
                "set mesh_cols x mesh_rows >= cores in the preset");
  }
  if (spec.neurons_per_core <= 0 || spec.synapse_sram_bytes <= 0) {
    throw Error(kWhat, "neurons_per_core and synapse_sram_bytes must be > 0 (got " +
                           std::to_string(spec.neurons_per_core) + ", " + std::to_string(spec.synapse_sram_bytes) +
                           ")");
  }
  const int n_layers = static_cast<int>(counts.layers.size());
  for (int l = 0; l < n_layers; ++l) {
    const LayerCounts& lc = counts.layers[l];
    if (lc.units < 0 || lc.neurons_per_unit < 0 || lc.synapses_per_unit < 0 || lc.weight_bits <= 0) {
      throw Error(kWhat, "layer " + lc.graph + "/" + lc.name +
                             ": units, neurons_per_unit, synapses_per_unit must be >= 0 and weight_bits > 0");
    }
    for (int t : lc.spike_targets) {
      if (t < 0 || t >= n_layers) {
        throw Error(kWhat, "layer " + lc.graph + "/" + lc.name + ": spike target " + std::to_string(t) +
                               " is not a layer index (0.." + std::to_string(n_layers - 1) + ")");
      }
    }
  }
}

// Appends `units` of a layer on `core`, merging with the previous part when it is the same core and
// the same residence of the weights (consecutive units on one core form one part).
void add_part(std::vector<CorePart>& parts, int core, int64_t units, bool offchip) {
  if (!parts.empty() && parts.back().core == core && parts.back().offchip == offchip) {
    parts.back().units += units;
  } else {
    parts.push_back(CorePart{core, units, offchip});
  }
}

// The greedy partition: which units of which layer go to which (virtual) core. Positions are set by
// the caller. Returns the mapping with x = y = 0.
Mapping partition(const ActivityCounts& counts, const HwSpec& spec) {
  Mapping m;
  m.cores.assign(static_cast<size_t>(spec.cores), CoreUse{});
  m.layers.assign(counts.layers.size(), {});
  const int64_t cap_n = spec.neurons_per_core;
  const int64_t cap_b = spec.synapse_sram_bytes;

  int cursor = 0;  // the core being filled (phase 1 never goes back)
  for (size_t l = 0; l < counts.layers.size(); ++l) {
    const LayerCounts& lc = counts.layers[l];
    if (lc.units == 0) continue;
    const int64_t npu = lc.neurons_per_unit;
    const int64_t bpu = lc.synapse_bytes_per_unit();
    if (npu > cap_n) {  // one unit alone exceeds a core: never placeable
      m.missing_neurons += lc.units * npu;
      continue;
    }
    const bool weights_too_big = bpu > cap_b;  // one unit's weights exceed a core's SRAM: off-chip
    std::vector<CorePart>& parts = m.layers[l];
    int64_t remaining = lc.units;

    // Phase 1: fill cores in order, both constraints.
    while (remaining > 0 && cursor < spec.cores) {
      CoreUse& c = m.cores[cursor];
      const int64_t fit_b = weights_too_big ? kUnlimited : units_that_fit(cap_b - c.sram_bytes, bpu);
      const int64_t k = std::min({remaining, units_that_fit(cap_n - c.neurons, npu), fit_b});
      if (k > 0) {
        const bool offchip = weights_too_big && bpu > 0;
        add_part(parts, cursor, k, offchip);
        c.neurons += k * npu;
        if (offchip) {
          m.offchip_weight_bytes += k * bpu;
        } else {
          c.sram_bytes += k * bpu;
        }
        remaining -= k;
      }
      if (remaining > 0) ++cursor;  // this core is full for these units
    }

    // Phase 2: the cores ran out. Place the rest where neurons still fit, weights off-chip (units
    // without weights have nothing to put off-chip and stay on-chip).
    for (int core = 0; core < spec.cores && remaining > 0; ++core) {
      CoreUse& c = m.cores[core];
      const int64_t k = std::min(remaining, units_that_fit(cap_n - c.neurons, npu));
      if (k <= 0) continue;
      const bool offchip = bpu > 0;
      add_part(parts, core, k, offchip);
      c.neurons += k * npu;
      m.offchip_weight_bytes += k * bpu;
      remaining -= k;
    }
    m.missing_neurons += remaining * npu;  // still no room for their neurons
  }
  return m;
}

// Sorted distinct cores holding a part of each layer.
std::vector<std::vector<int>> layer_cores(const Mapping& m) {
  std::vector<std::vector<int>> out(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    for (const CorePart& p : m.layers[l]) out[l].push_back(p.core);
    std::sort(out[l].begin(), out[l].end());
    out[l].erase(std::unique(out[l].begin(), out[l].end()), out[l].end());
  }
  return out;
}

// Σ hops over all layers, summed the same way everywhere (the strategy comparison and the tests).
double total_hops(const std::vector<LayerTraffic>& traffic) {
  double sum = 0;
  for (const LayerTraffic& t : traffic) sum += t.hops_ew + t.hops_ns;
  return sum;
}

void set_row_major(Mapping& m, int cols) {
  for (size_t i = 0; i < m.cores.size(); ++i) {
    m.cores[i].x = static_cast<int>(i) % cols;
    m.cores[i].y = static_cast<int>(i) / cols;
  }
}

// Placement of virtual cores on the mesh positions 0..cores-1 (row-major index p at (p % cols, p / cols))
// minimising Σ w × manhattan over the undirected core-to-core traffic graph.
class Placer {
 public:
  Placer(const ActivityCounts& counts, const Mapping& m, int cols) : cols_(cols), n_(static_cast<int>(m.cores.size())) {
    build_graph(counts, m);
  }

  // Returns the row-major position index of every core.
  std::vector<int> place() {
    // Snake order of the positions 0..n-1: row y even left to right, odd right to left.
    const int rows = (n_ + cols_ - 1) / cols_;
    std::vector<int> snake;  // rank -> position
    snake.reserve(static_cast<size_t>(n_));
    for (int y = 0; y < rows; ++y) {
      for (int i = 0; i < cols_; ++i) {
        const int x = (y % 2 == 0) ? i : cols_ - 1 - i;
        const int p = y * cols_ + x;
        if (p < n_) snake.push_back(p);
      }
    }
    // Core v starts at snake rank v. rank_of_core / core_at_rank are kept in sync under swaps.
    rank_of_core_.resize(static_cast<size_t>(n_));
    core_at_rank_.resize(static_cast<size_t>(n_));
    x_.resize(static_cast<size_t>(n_));
    y_.resize(static_cast<size_t>(n_));
    for (int v = 0; v < n_; ++v) {
      rank_of_core_[v] = v;
      core_at_rank_[v] = v;
      x_[v] = snake[v] % cols_;
      y_[v] = snake[v] / cols_;
    }
    snake_ = std::move(snake);
    hill_climb();
    std::vector<int> pos(static_cast<size_t>(n_));
    for (int v = 0; v < n_; ++v) pos[v] = snake_[rank_of_core_[v]];
    return pos;
  }

 private:
  // Bounds of the search (deterministic: counted in edge visits, not time). A pass over 4096 cores
  // with a window of ±16 ranks is about 1.3e5 swap evaluations times the degrees; the budget keeps
  // dense traffic graphs of 4096 cores well under a second.
  static constexpr int kMaxPasses = 8;
  static constexpr int kFullSearchUsed = 256;  // up to this many used cores, try every used pair
  static constexpr int kWindow = 16;           // and the positions within ±kWindow snake ranks
  static constexpr int64_t kBudget = 40'000'000;  // edge visits over the whole search

  struct Edge {
    int to;
    double w;
  };

  // Undirected core-to-core weights: w(a, b) = Σ events × unit share sent from core a to core b (the
  // packets of spike_traffic). Both directions, when both exist, are two entries of the adjacency
  // lists; the cost sums them. Accumulated per source core in a dense scratch row: linear in the
  // number of (part, target core) pairs.
  void build_graph(const ActivityCounts& counts, const Mapping& m) {
    const std::vector<std::vector<int>> cores_of = layer_cores(m);
    struct Send {
      int layer;
      double w;
    };
    std::vector<std::vector<Send>> sends(static_cast<size_t>(n_));  // per source core
    for (size_t l = 0; l < counts.layers.size(); ++l) {
      const LayerCounts& lc = counts.layers[l];
      if (lc.kind != snn::OpKind::neuron || lc.units <= 0 || lc.snn.events <= 0) continue;
      const double events = static_cast<double>(lc.snn.events);
      for (const CorePart& part : m.layers[l]) {
        sends[part.core].push_back({static_cast<int>(l), events * static_cast<double>(part.units) /
                                                             static_cast<double>(lc.units)});
      }
    }
    adj_.assign(static_cast<size_t>(n_), {});
    std::vector<double> row(static_cast<size_t>(n_), 0.0);
    std::vector<int> touched;
    for (int a = 0; a < n_; ++a) {
      for (const Send& s : sends[a]) {
        for (int t : counts.layers[s.layer].spike_targets) {
          for (int b : cores_of[t]) {
            if (b == a) continue;
            if (row[b] == 0.0) touched.push_back(b);
            row[b] += s.w;
          }
        }
      }
      std::sort(touched.begin(), touched.end());  // deterministic order of the adjacency lists
      for (int b : touched) {
        adj_[a].push_back({b, row[b]});
        adj_[b].push_back({a, row[b]});
        total_w_ += row[b];
        row[b] = 0.0;
      }
      touched.clear();
    }
  }

  // Cost change if cores i and j exchange positions (the i-j edge keeps its length).
  double swap_delta(int i, int j) {
    const int xi = x_[i], yi = y_[i], xj = x_[j], yj = y_[j];
    double d = 0;
    for (const Edge& e : adj_[i]) {
      if (e.to == j) continue;
      const int xk = x_[e.to], yk = y_[e.to];
      d += e.w * (std::abs(xj - xk) + std::abs(yj - yk) - std::abs(xi - xk) - std::abs(yi - yk));
    }
    for (const Edge& e : adj_[j]) {
      if (e.to == i) continue;
      const int xk = x_[e.to], yk = y_[e.to];
      d += e.w * (std::abs(xi - xk) + std::abs(yi - yk) - std::abs(xj - xk) - std::abs(yj - yk));
    }
    budget_ -= static_cast<int64_t>(adj_[i].size() + adj_[j].size()) + 1;
    return d;
  }

  void do_swap(int i, int j) {
    std::swap(rank_of_core_[i], rank_of_core_[j]);
    std::swap(x_[i], x_[j]);
    std::swap(y_[i], y_[j]);
    core_at_rank_[rank_of_core_[i]] = i;
    core_at_rank_[rank_of_core_[j]] = j;
  }

  // Tries i <-> j and keeps it when the cost drops. Returns true if swapped.
  bool try_swap(int i, int j) {
    if (i == j) return false;
    if (swap_delta(i, j) < -eps_) {
      do_swap(i, j);
      return true;
    }
    return false;
  }

  void hill_climb() {
    if (total_w_ <= 0) return;
    eps_ = 1e-12 * total_w_;
    std::vector<int> used;  // cores with traffic (the others only offer their positions)
    for (int v = 0; v < n_; ++v) {
      if (!adj_[v].empty()) used.push_back(v);
    }
    const bool full = static_cast<int>(used.size()) <= kFullSearchUsed;
    budget_ = kBudget;
    for (int pass = 0; pass < kMaxPasses && budget_ > 0; ++pass) {
      bool improved = false;
      for (size_t a = 0; a < used.size() && budget_ > 0; ++a) {
        const int i = used[a];
        if (full) {
          for (size_t b = a + 1; b < used.size() && budget_ > 0; ++b) improved |= try_swap(i, used[b]);
        }
        // Positions near i in snake order (used or not); their owners change as swaps happen.
        for (int d = 1; d <= kWindow && budget_ > 0; ++d) {
          for (int sign : {1, -1}) {
            const int r = rank_of_core_[i] + sign * d;
            if (r < 0 || r >= n_) continue;
            const int j = core_at_rank_[r];
            if (full && !adj_[j].empty()) continue;  // used pairs are covered above
            improved |= try_swap(i, j);
          }
        }
      }
      if (!improved) break;
    }
  }

  int cols_;
  int n_;
  std::vector<std::vector<Edge>> adj_;
  double total_w_ = 0;
  double eps_ = 0;
  int64_t budget_ = 0;
  std::vector<int> snake_;          // rank -> row-major position index
  std::vector<int> rank_of_core_;   // core -> snake rank of its position
  std::vector<int> core_at_rank_;   // snake rank -> core
  std::vector<int> x_, y_;          // core -> mesh position
};

void finish(Mapping& m, const HwSpec& spec) {
  int64_t neurons = 0, bytes = 0;
  m.cores_used = 0;
  std::vector<char> used(m.cores.size(), 0);
  for (const std::vector<CorePart>& parts : m.layers) {
    for (const CorePart& p : parts) used[p.core] = 1;
  }
  for (size_t i = 0; i < m.cores.size(); ++i) {
    if (!used[i]) continue;
    ++m.cores_used;
    neurons += m.cores[i].neurons;
    bytes += m.cores[i].sram_bytes;
  }
  if (m.cores_used > 0) {
    m.neuron_utilization = static_cast<double>(neurons) / (static_cast<double>(spec.neurons_per_core) * m.cores_used);
    m.sram_utilization = static_cast<double>(bytes) / (static_cast<double>(spec.synapse_sram_bytes) * m.cores_used);
  } else {
    m.neuron_utilization = 0;
    m.sram_utilization = 0;
  }
}

}  // namespace

const char* mapping_strategy_name(MappingStrategy s) {
  switch (s) {
    case MappingStrategy::greedy:
      return "greedy";
    case MappingStrategy::traffic_aware:
      return "traffic-aware";
  }
  return "?";
}

MappingStrategy mapping_strategy_from_name(const std::string& name) {
  for (MappingStrategy s : {MappingStrategy::greedy, MappingStrategy::traffic_aware}) {
    if (name == mapping_strategy_name(s)) return s;
  }
  throw Error("mapping strategy", "unknown name '" + name + "'", "use one of: greedy, traffic-aware");
}

LinearPlacement place_linear(const HwSpec& spec, int64_t out_channels, int64_t rows) {
  const char* what = "placing a linear layer on cores";
  if (out_channels < 1 || rows < 1) {
    throw Error(what, "out_channels and rows must be >= 1 (got " + std::to_string(out_channels) + ", " +
                          std::to_string(rows) + ")");
  }
  if (spec.neurons_per_core <= 0 || spec.synapse_sram_bytes <= 0) {
    throw Error(what, "the preset's neurons_per_core and synapse_sram must be > 0");
  }
  if (rows > spec.neurons_per_core) {
    throw Error(what, "one output channel holds " + std::to_string(rows) + " neuron-state words (token rows), more than a " +
                          spec.name + " core's " + std::to_string(spec.neurons_per_core),
                "use a chip with more neurons per core or a model with fewer tokens");
  }
  LinearPlacement p;
  const int64_t per_core = spec.neurons_per_core / rows;  // whole channels a core's neurons take
  p.cores = (out_channels + per_core - 1) / per_core;
  p.units_per_core = (out_channels + p.cores - 1) / p.cores;
  p.max_unit_bytes = spec.synapse_sram_bytes / p.units_per_core;
  return p;
}

Mapping map_layers(const ActivityCounts& counts, const HwSpec& spec, MappingStrategy strategy) {
  validate(counts, spec);
  Mapping m = partition(counts, spec);
  m.strategy = strategy;
  set_row_major(m, spec.mesh_cols);
  finish(m, spec);
  if (strategy == MappingStrategy::greedy) return m;

  // traffic_aware: the same partition, placed by the snake + swap search. Kept only when it lowers
  // Σ hops as spike_traffic counts them, so it is never worse than greedy.
  Placer placer(counts, m, spec.mesh_cols);
  const std::vector<int> pos = placer.place();
  Mapping placed = m;
  for (size_t i = 0; i < placed.cores.size(); ++i) {
    placed.cores[i].x = pos[i] % spec.mesh_cols;
    placed.cores[i].y = pos[i] / spec.mesh_cols;
  }
  if (total_hops(spike_traffic(counts, placed)) < total_hops(spike_traffic(counts, m))) return placed;
  return m;
}

// Layers that were not placed (units = 0, or all units missing) send and receive nothing: a missing
// layer has no core, so its events are not modelled (the mapping then says fits() = false). For a
// partly placed layer, only the placed units' share of the events is sent (share = u_part / units).
std::vector<LayerTraffic> spike_traffic(const ActivityCounts& counts, const Mapping& mapping) {
  if (mapping.layers.size() != counts.layers.size()) {
    throw Error("spike traffic", "the mapping has " + std::to_string(mapping.layers.size()) +
                                     " layers but the counts have " + std::to_string(counts.layers.size()),
                "map these counts with map_layers first");
  }
  const std::vector<std::vector<int>> cores_of = layer_cores(mapping);
  std::vector<LayerTraffic> out(counts.layers.size());
  for (size_t l = 0; l < counts.layers.size(); ++l) {
    const LayerCounts& lc = counts.layers[l];
    if (lc.kind != snn::OpKind::neuron || lc.units <= 0) continue;  // only neurons send spikes
    const double events = static_cast<double>(lc.snn.events);
    LayerTraffic& tr = out[l];
    for (const CorePart& part : mapping.layers[l]) {
      const double sent = events * static_cast<double>(part.units) / static_cast<double>(lc.units);
      const CoreUse& a = mapping.cores[part.core];
      for (int t : lc.spike_targets) {
        if (t < 0 || t >= static_cast<int>(counts.layers.size())) {
          throw Error("spike traffic", "layer " + lc.graph + "/" + lc.name + ": spike target " + std::to_string(t) +
                                           " is not a layer index");
        }
        for (int b : cores_of[t]) {
          tr.packets += sent;
          if (b == part.core) continue;
          const CoreUse& c = mapping.cores[b];
          tr.remote += sent;
          tr.hops_ew += sent * std::abs(c.x - a.x);
          tr.hops_ns += sent * std::abs(c.y - a.y);
        }
      }
    }
  }
  return out;
}

}  // namespace spikefm::hw
