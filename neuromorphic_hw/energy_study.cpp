#include "neuromorphic_hw/energy_study.h"

#include "common/error.h"

namespace spikefm::hw {

EnergyStudy run_energy_study(const ActivityCounts& counts, const HwSpec& spec, const StudyOptions& opts) {
  if (counts.samples <= 0) throw Error("energy study", "no samples counted", "simulate at least one sample");
  EnergyStudy s;
  s.spec = spec;
  s.samples = counts.samples;
  s.tokens = counts.tokens;
  s.mapping = map_layers(counts, spec, opts.strategy);
  s.snn = price_snn(counts, s.mapping, spec, opts.energy);
  int64_t weight_bytes = 0;
  for (const LayerCounts& l : counts.layers) {
    if (l.kind == snn::OpKind::linear) s.synapses += l.synapses();
    weight_bytes += l.units * l.synapse_bytes_per_unit();
  }
  const double offchip = weight_bytes > 0 ? static_cast<double>(s.mapping.offchip_weight_bytes) / weight_bytes : 0.0;
  s.baselines.push_back({"ann_int8", "ANN, 8-bit activations", price_mac_array(counts, spec, 8, true, offchip, opts.energy)});
  s.baselines.push_back({"qann", "QANN, " + std::to_string(opts.qann_bits) + "-bit activations",
                         price_mac_array(counts, spec, opts.qann_bits, true, offchip, opts.energy)});
  s.baselines.push_back({"qnn_T", "QNN, " + std::to_string(opts.qnn_bits) + "-bit = ceil(log2(T+1))",
                         price_mac_array(counts, spec, opts.qnn_bits, true, offchip, opts.energy)});
  const int dec = counts.graph_index("decoder");
  const int g = dec >= 0 ? dec : static_cast<int>(counts.graphs.size()) - 1;
  if (g >= 0 && counts.graph_runs[g] > 0) {
    s.steps_per_inference = static_cast<double>(counts.graph_steps[g]) / static_cast<double>(counts.graph_runs[g]);
  }
  const double ann = s.baselines[0].report.total_pj();
  s.break_even_spike_scale = s.snn.spike_driven_pj > 0 ? (ann - s.snn.fixed_pj) / s.snn.spike_driven_pj : 0.0;
  return s;
}

Json energy_study_json(const EnergyStudy& s) {
  const double n = static_cast<double>(s.samples);
  Json j;
  j["hw"] = s.spec.name;
  j["hw_file"] = s.spec.path.string();
  j["samples"] = s.samples;
  j["tokens_per_sample"] = static_cast<double>(s.tokens) / n;
  Json m;
  m["strategy"] = mapping_strategy_name(s.mapping.strategy);
  m["cores_used"] = s.mapping.cores_used;
  m["cores"] = s.spec.cores;
  m["fits"] = s.mapping.fits();
  m["missing_neurons"] = s.mapping.missing_neurons;
  m["offchip_weight_bytes"] = s.mapping.offchip_weight_bytes;
  m["neuron_utilization"] = s.mapping.neuron_utilization;
  m["sram_utilization"] = s.mapping.sram_utilization;
  j["mapping"] = m;
  Json e;
  for (const auto& [name, v] : s.snn.total.components()) e[std::string(name) + "_pj"] = v / n;
  e["total_pj"] = s.snn.total.total_pj() / n;
  j["snn_energy_per_sample"] = e;
  j["snn_formula_pj"] = s.snn.formula_pj / n;
  j["snn_latency_s"] = s.snn.latency_s / n;
  const double tokens = static_cast<double>(s.tokens);
  j["snn_tokens_per_s"] = s.snn.latency_s > 0 ? tokens / s.snn.latency_s : 0.0;
  j["snn_energy_per_token_pj"] = tokens > 0 ? s.snn.total.total_pj() / tokens : 0.0;
  Json graphs = Json::array();
  for (const GraphLatency& g : s.snn.graphs) {
    graphs.push_back({{"graph", g.graph}, {"steps", g.steps}, {"runs", g.runs}, {"depth", g.depth},
                      {"step_s", g.step_s}, {"latency_per_sample_s", g.latency_s / n}});
  }
  j["snn_graphs"] = graphs;
  j["sops_per_sample"] = static_cast<double>(s.snn.sops) / n;
  j["spikes_per_sample"] = static_cast<double>(s.snn.spikes) / n;
  j["steps_per_inference"] = s.steps_per_inference;
  const double inferences = tokens > 0 ? tokens : n;
  j["sops_per_synapse_per_inference"] = s.synapses > 0 ? static_cast<double>(s.snn.sops) / (static_cast<double>(s.synapses) * inferences) : 0.0;
  j["spike_driven_pj"] = s.snn.spike_driven_pj / n;
  j["fixed_pj"] = s.snn.fixed_pj / n;
  j["break_even_spike_scale"] = s.break_even_spike_scale;
  Json bs = Json::array();
  for (const Baseline& b : s.baselines) {
    const MacArrayReport& r = b.report;
    bs.push_back({{"name", b.name},
                  {"label", b.label},
                  {"act_bits", r.act_bits},
                  {"mac_pj", r.mac_pj / n},
                  {"weight_read_pj", r.weight_read_pj / n},
                  {"act_memory_pj", r.act_memory_pj / n},
                  {"dense_pj", r.dense_pj / n},
                  {"offchip_pj", r.offchip_pj / n},
                  {"static_pj", r.static_pj / n},
                  {"total_pj", r.total_pj() / n},
                  {"formula_pj", r.formula_pj / n},
                  {"macs_per_sample", static_cast<double>(r.macs) / n},
                  {"executed_macs_per_sample", static_cast<double>(r.executed_macs) / n},
                  {"latency_s", r.latency_s / n},
                  {"snn_over_baseline", r.total_pj() > 0 ? s.snn.total.total_pj() / r.total_pj() : 0.0}});
  }
  j["baselines"] = bs;
  Json ls = Json::array();
  for (const LayerEnergy& l : s.snn.layers) {
    if (l.energy.total_pj() == 0) continue;
    Json x{{"graph", l.graph}, {"name", l.name}, {"kind", l.kind}, {"cores", l.cores}};
    for (const auto& [name, v] : l.energy.components()) x[std::string(name) + "_pj"] = v / n;
    x["total_pj"] = l.energy.total_pj() / n;
    ls.push_back(x);
  }
  j["layers"] = ls;
  return j;
}

}  // namespace spikefm::hw
