#include "neuromorphic_hw/energy_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "common/error.h"

namespace spikefm::hw {

namespace {

using snn::OpKind;

constexpr double kPjPerJ = 1e12;

bool is_product(OpKind k) { return k == OpKind::qk_product || k == OpKind::av_product; }

// Multiplier energy scales with the product of the operand widths (array multiplier), relative to
// the table's int8 × int8 price.
double mult_pj(const HwSpec& s, int a_bits, int b_bits) { return s.mult8_pj * a_bits * b_bits / 64.0; }

}  // namespace

EnergyBreakdown& EnergyBreakdown::operator+=(const EnergyBreakdown& o) {
  synaptic_pj += o.synaptic_pj;
  weight_read_pj += o.weight_read_pj;
  membrane_pj += o.membrane_pj;
  neuron_pj += o.neuron_pj;
  routing_pj += o.routing_pj;
  dense_pj += o.dense_pj;
  offchip_pj += o.offchip_pj;
  static_pj += o.static_pj;
  return *this;
}

std::vector<std::pair<const char*, double>> EnergyBreakdown::components() const {
  return {{"synaptic", synaptic_pj}, {"weight_read", weight_read_pj}, {"membrane", membrane_pj},
          {"neuron", neuron_pj},     {"routing", routing_pj},         {"dense", dense_pj},
          {"offchip", offchip_pj},   {"static", static_pj}};
}

SnnEnergyReport price_snn(const ActivityCounts& counts, const Mapping& mapping, const HwSpec& s,
                          const EnergyOptions& opts) {
  if (mapping.layers.size() != counts.layers.size()) {
    throw Error("pricing the SNN", "the mapping has " + std::to_string(mapping.layers.size()) + " layers, the counts " +
                                       std::to_string(counts.layers.size()),
                "map the same counts that are priced");
  }
  const std::vector<LayerTraffic> traffic = spike_traffic(counts, mapping);
  SnnEnergyReport rep;
  const double words_per_byte = 8.0 / s.sram_word_bits;
  for (size_t k = 0; k < counts.layers.size(); ++k) {
    const LayerCounts& l = counts.layers[k];
    const auto& parts = mapping.layers[k];
    LayerEnergy le;
    le.graph = l.graph;
    le.name = l.name;
    le.kind = snn::op_kind_name(l.kind);
    std::vector<int> cores;
    int64_t offchip_units = 0;
    for (const CorePart& p : parts) {
      if (std::find(cores.begin(), cores.end(), p.core) == cores.end()) cores.push_back(p.core);
      if (p.offchip) offchip_units += p.units;
    }
    le.cores = static_cast<int>(cores.size());
    EnergyBreakdown& e = le.energy;
    const double sops = static_cast<double>(l.snn.sops);
    const double updates = static_cast<double>(l.snn.neuron_updates);
    double spike_memory = 0;  // memory energy driven by SOPs
    if (l.kind == OpKind::linear) {
      e.synaptic_pj = sops * s.synop_pj;
      const double f = l.units > 0 ? static_cast<double>(offchip_units) / l.units : 0.0;
      const double bytes = static_cast<double>(l.snn.weight_bytes_read);
      if (opts.memory) {
        if (!s.synop_all_in) {
          e.weight_read_pj = (1.0 - f) * bytes * words_per_byte * s.sram_read_word_pj;
          e.membrane_pj = sops * (s.membrane_read_pj + s.membrane_write_pj);  // the accumulator update
        }
        e.offchip_pj = f * bytes * s.dram_byte_pj;
        spike_memory = e.weight_read_pj + e.membrane_pj;
      }
    } else if (is_product(l.kind)) {
      // One SOP adds a partner's spike count into a product accumulator.
      e.synaptic_pj = sops * s.synop_pj;
      if (opts.memory && !s.synop_all_in) {
        e.membrane_pj = sops * (2 * s.membrane_read_pj + s.membrane_write_pj);
        spike_memory = e.membrane_pj;
      }
    } else if (l.kind == OpKind::neuron) {
      if (opts.neuron) e.neuron_pj = updates * s.neuron_update_pj;
      if (opts.memory && !s.neuron_update_all_in) e.membrane_pj = updates * (s.membrane_read_pj + s.membrane_write_pj);
      if (opts.noc) {
        const LayerTraffic& t = traffic[k];
        e.routing_pj = t.packets * s.spike_local_pj + t.hops_ew * s.hop_ew_pj + t.hops_ns * s.hop_ns_pj;
      }
      rep.spikes += l.spikes();
      rep.neuron_updates += l.snn.neuron_updates;
    }
    // Dense unit: LayerNorm / softmax ops; the encoding layer's MACs always (the formula has them too).
    if (opts.dense) e.dense_pj += static_cast<double>(l.snn.dense_ops) * s.dense_op_pj;
    e.dense_pj += static_cast<double>(l.snn.dense_macs) * s.dense_mac_pj;
    rep.sops += l.snn.sops;
    rep.encoding_macs += l.snn.dense_macs;
    rep.dense_ops += l.snn.dense_ops;
    rep.spike_driven_pj += e.synaptic_pj + spike_memory + e.routing_pj + e.offchip_pj;
    rep.total += e;
    rep.layers.push_back(std::move(le));
  }
  rep.fixed_pj = rep.total.total_pj() - rep.spike_driven_pj;

  // --- latency, graph by graph ---
  for (size_t g = 0; g < counts.graphs.size(); ++g) {
    GraphLatency gl;
    gl.graph = counts.graphs[g];
    gl.steps = counts.graph_steps[g];
    gl.runs = counts.graph_runs[g];
    gl.depth = g < counts.graph_depth.size() ? counts.graph_depth[g] : 1;
    std::map<int, double> core_cycles;
    int max_hops = 0;
    for (size_t k = 0; k < counts.layers.size(); ++k) {
      const LayerCounts& l = counts.layers[k];
      if (l.graph != gl.graph) continue;
      if (l.units == 0) {
        gl.dense_cycles += static_cast<double>(l.snn.dense_ops + l.snn.dense_macs) * s.dense_op_cycles / s.dense_lanes;
        continue;
      }
      const double work = static_cast<double>(l.snn.sops) * s.synop_cycles +
                          static_cast<double>(l.snn.neuron_updates) * s.neuron_update_cycles +
                          traffic[k].packets * s.packet_cycles;
      for (const CorePart& p : mapping.layers[k]) {
        core_cycles[p.core] += work * static_cast<double>(p.units) / l.units;
        for (int t : l.spike_targets) {
          for (const CorePart& q : mapping.layers[t]) {
            const CoreUse &a = mapping.cores[p.core], &b = mapping.cores[q.core];
            max_hops = std::max(max_hops, std::abs(a.x - b.x) + std::abs(a.y - b.y));
          }
        }
      }
    }
    for (const auto& [core, cycles] : core_cycles) gl.busiest_core_cycles = std::max(gl.busiest_core_cycles, cycles);
    gl.noc_cycles_per_step = max_hops * s.hop_cycles;
    if (gl.steps > 0) {
      const double step_cycles = std::max(gl.busiest_core_cycles, gl.dense_cycles) / gl.steps + gl.noc_cycles_per_step;
      gl.step_s = std::max(step_cycles / s.clock_hz, s.min_step_s);
      gl.latency_s = (static_cast<double>(gl.steps) + static_cast<double>(gl.runs) * std::max(0, gl.depth - 1)) * gl.step_s;
    }
    rep.latency_s += gl.latency_s;
    rep.graphs.push_back(gl);
  }
  if (opts.static_power) {
    rep.total.static_pj = s.static_w_per_core * mapping.cores_used * rep.latency_s * kPjPerJ;
    rep.fixed_pj += rep.total.static_pj;
  }
  rep.formula_pj = s.formula_e_ac_pj * static_cast<double>(rep.sops) + s.formula_e_mac_pj * static_cast<double>(rep.encoding_macs);
  return rep;
}

MacArrayReport price_mac_array(const ActivityCounts& counts, const HwSpec& s, int act_bits, bool zero_skipping,
                               double offchip_fraction, const EnergyOptions& opts) {
  if (act_bits < 1 || act_bits > 32) throw Error("MAC-array baseline", "activation bits must be in 1..32 (got " + std::to_string(act_bits) + ")");
  if (!(offchip_fraction >= 0.0 && offchip_fraction <= 1.0)) throw Error("MAC-array baseline", "off-chip fraction must be in [0, 1]");
  MacArrayReport r;
  r.act_bits = act_bits;
  r.zero_skipping = zero_skipping;
  const double words_per_bit = 1.0 / s.sram_word_bits;
  double mac_cycles = 0, dense_cycles = 0;
  for (const LayerCounts& l : counts.layers) {
    const snn::AnnWork& w = l.ann;
    const double executed = static_cast<double>(zero_skipping ? w.nonzero_macs : w.macs);
    int a = act_bits, b = 8;  // activation × weight
    if (l.kind == OpKind::encode_linear) a = 8;        // 8-bit pixels
    if (is_product(l.kind)) b = act_bits;               // activation × activation
    r.mac_pj += executed * (mult_pj(s, a, b) + s.add32_pj);
    r.macs += w.macs;
    r.executed_macs += static_cast<int64_t>(executed);
    if (opts.memory) {
      const double wbytes = static_cast<double>(w.weight_bytes);
      r.weight_read_pj += (1.0 - offchip_fraction) * wbytes * 8.0 * words_per_bit * s.sram_read_word_pj;
      r.offchip_pj += offchip_fraction * wbytes * s.dram_byte_pj;
      const int op_bits = l.kind == OpKind::encode_linear ? 8 : act_bits;
      r.act_memory_pj += static_cast<double>(w.act_reads + w.outputs) * op_bits * words_per_bit * s.sram_read_word_pj;
    }
    if (opts.dense) r.dense_pj += static_cast<double>(w.dense_ops) * s.dense_op_pj;
    mac_cycles += static_cast<double>(w.macs) / s.mac_units;
    dense_cycles += static_cast<double>(w.dense_ops) * s.dense_op_cycles / s.dense_lanes;
  }
  r.latency_s = (mac_cycles + dense_cycles) / s.mac_clock_hz;
  if (opts.static_power) r.static_pj = s.mac_static_w * r.latency_s * kPjPerJ;
  r.formula_pj = s.formula_e_mac_pj * static_cast<double>(r.macs);
  return r;
}

int bits_for_range(int lo, int hi) {
  if (hi < lo) throw Error("activation range", "hi < lo");
  const int64_t levels = static_cast<int64_t>(hi) - lo + 1;
  int bits = 0;
  while ((int64_t{1} << bits) < levels) ++bits;
  return std::max(bits, 1);
}

int bits_for_timesteps(int timesteps) {
  if (timesteps < 1) throw Error("timesteps", "must be >= 1");
  return bits_for_range(0, timesteps);  // counts 0..T: ⌈log2(T + 1)⌉ bits
}

}  // namespace spikefm::hw
