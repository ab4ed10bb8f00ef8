// spikefm energy: simulate a spiking model on a task, then price its activity on modeled accelerators
// (neuromorphic_hw/): mapping, energy breakdown per component and layer, latency, the literature
// formula, and MAC-array baselines in the same technology.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "common/error.h"
#include "common/json.h"
#include "convert/simulate.h"
#include "experiments/cli.h"
#include "neuromorphic_hw/energy_study.h"
#include "snn/snn_model.h"

namespace spikefm::cli {

namespace {

struct EnergyCli {
  SimulateOptions sim;
  std::vector<std::string> hw{"loihi"};
  std::string mapping = "traffic-aware";
  bool list = false, json = false, all_layers = false;
  bool no_memory = false, no_neuron = false, no_noc = false, no_dense = false, no_static = false;
};

// Activation bits of the QANN behind the spiking graphs: the widest spike-count range of a neuron.
int qann_bits(const snn::SnnModel& m) {
  int bits = 0;
  for (const snn::SpikingGraph* g : {&m.encoder, &m.decoder}) {
    for (const snn::OpNode& n : g->nodes) {
      if (n.kind != snn::OpKind::neuron) continue;
      if (n.neuron == snn::NeuronKind::if_rate) {
        bits = std::max(bits, hw::bits_for_range(n.lo < 0 ? -m.levels : 0, m.levels));
      } else {
        bits = std::max(bits, hw::bits_for_range(n.lo, n.hi));
      }
    }
  }
  return std::max(bits, 1);
}

std::string si(double v, const char* unit) {
  const char* prefixes[] = {"p", "n", "u", "m", ""};  // v is in pico-units
  int k = 0;
  while (std::fabs(v) >= 1000.0 && k < 4) {
    v /= 1000.0;
    ++k;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3g %s%s", v, prefixes[k], unit);
  return buf;
}

std::string seconds(double s) {
  char buf[48];
  if (s >= 1.0) std::snprintf(buf, sizeof buf, "%.3g s", s);
  else if (s >= 1e-3) std::snprintf(buf, sizeof buf, "%.3g ms", s * 1e3);
  else if (s >= 1e-6) std::snprintf(buf, sizeof buf, "%.3g us", s * 1e6);
  else std::snprintf(buf, sizeof buf, "%.3g ns", s * 1e9);
  return buf;
}

void print_study(const hw::EnergyStudy& s, bool all_layers) {
  const double n = static_cast<double>(s.samples);
  const hw::Mapping& m = s.mapping;
  std::printf("\n== %s: %s (%s)\n", s.spec.name.c_str(), s.spec.description.c_str(), s.spec.path.c_str());
  std::printf("mapping (%s): %d of %d cores, neurons %.0f%% and synapse SRAM %.0f%% of the cores used; %s\n",
              hw::mapping_strategy_name(m.strategy), m.cores_used, s.spec.cores, 100 * m.neuron_utilization,
              100 * m.sram_utilization, m.fits() ? "fits on chip" : "DOES NOT FIT");
  if (!m.fits()) {
    std::printf("  missing: %lld neuron-state words without a core, %lld weight bytes off-chip (priced as DRAM reads)\n",
                static_cast<long long>(m.missing_neurons), static_cast<long long>(m.offchip_weight_bytes));
  }
  const double total = s.snn.total.total_pj();
  std::printf("SNN energy per sample (image + question, %.2f generated-token inferences):\n", static_cast<double>(s.tokens) / n);
  std::printf("  %-12s %14s %7s\n", "component", "energy", "share");
  for (const auto& [name, v] : s.snn.total.components()) {
    std::printf("  %-12s %14s %6.1f%%\n", name, si(v / n, "J").c_str(), total > 0 ? 100 * v / total : 0.0);
  }
  std::printf("  %-12s %14s\n", "total", si(total / n, "J").c_str());
  std::printf("latency per sample %s (", seconds(s.snn.latency_s / n).c_str());
  for (size_t g = 0; g < s.snn.graphs.size(); ++g) {
    const hw::GraphLatency& gl = s.snn.graphs[g];
    std::printf("%s%s: %.2f steps/run, depth %d, step %s", g ? "; " : "", gl.graph.c_str(),
                gl.runs ? static_cast<double>(gl.steps) / gl.runs : 0.0, gl.depth, seconds(gl.step_s).c_str());
  }
  const double tokens = static_cast<double>(s.tokens);
  std::printf(")\n  %.3g tokens/s, %s per token\n", s.snn.latency_s > 0 ? tokens / s.snn.latency_s : 0.0,
              si(tokens > 0 ? total / tokens : 0.0, "J").c_str());
  const double inferences = tokens > 0 ? tokens : n;
  std::printf("activity: %.0f spikes, %.0f SOPs per sample; %.3f SOPs per synapse per inference\n",
              static_cast<double>(s.snn.spikes) / n, static_cast<double>(s.snn.sops) / n,
              s.synapses ? static_cast<double>(s.snn.sops) / (static_cast<double>(s.synapses) * inferences) : 0.0);
  std::printf("literature formula (E_AC %.2g pJ x SOPs + E_MAC %.2g pJ x encoding MACs): SNN %s, ANN %s (E_MAC x MACs)\n",
              s.spec.formula_e_ac_pj, s.spec.formula_e_mac_pj, si(s.snn.formula_pj / n, "J").c_str(),
              si(s.baselines[0].report.formula_pj / n, "J").c_str());
  std::printf("MAC-array baselines, same table (full model):\n");
  std::printf("  %-36s %12s %12s %12s %12s %12s %10s\n", "model", "energy", "MACs", "memory", "dense", "latency", "SNN/this");
  std::printf("  %-36s %12s %12s %12s %12s %12s %10s\n", "SNN (this run)", si(total / n, "J").c_str(), "",
              si((s.snn.total.weight_read_pj + s.snn.total.membrane_pj + s.snn.total.offchip_pj) / n, "J").c_str(),
              si(s.snn.total.dense_pj / n, "J").c_str(), seconds(s.snn.latency_s / n).c_str(), "1.00");
  for (const hw::Baseline& b : s.baselines) {
    const hw::MacArrayReport& r = b.report;
    std::printf("  %-36s %12s %12s %12s %12s %12s %10.2f\n", b.label.c_str(), si(r.total_pj() / n, "J").c_str(),
                si(r.mac_pj / n, "J").c_str(), si((r.weight_read_pj + r.act_memory_pj + r.offchip_pj) / n, "J").c_str(),
                si(r.dense_pj / n, "J").c_str(), seconds(r.latency_s / n).c_str(), r.total_pj() > 0 ? total / r.total_pj() : 0.0);
  }
  if (s.break_even_spike_scale <= 0) {
    std::printf("break-even: none -- the spike-independent part (neuron updates, dense unit, static: %s) alone exceeds the ANN's %s\n",
                si(s.snn.fixed_pj / n, "J").c_str(), si(s.baselines[0].report.total_pj() / n, "J").c_str());
  } else {
    std::printf("break-even with the ANN at %.3gx this run's spikes (%s spike-driven + %s fixed per sample): the SNN %s\n",
                s.break_even_spike_scale, si(s.snn.spike_driven_pj / n, "J").c_str(), si(s.snn.fixed_pj / n, "J").c_str(),
                s.break_even_spike_scale >= 1 ? "saves energy" : "costs more");
  }
  std::vector<const hw::LayerEnergy*> layers;
  for (const auto& l : s.snn.layers) {
    if (l.energy.total_pj() > 0) layers.push_back(&l);
  }
  std::stable_sort(layers.begin(), layers.end(),
                   [](const auto* a, const auto* b) { return a->energy.total_pj() > b->energy.total_pj(); });
  const size_t shown = all_layers ? layers.size() : std::min<size_t>(layers.size(), 10);
  std::printf("per layer (%s by energy), per sample:\n", all_layers ? "all" : "top 10");
  std::printf("  %-8s %-24s %-11s %5s %11s %6s %11s %11s %11s %11s %11s\n", "graph", "layer", "kind", "cores", "total", "share",
              "synaptic", "memory", "neuron", "routing", "dense");
  for (size_t k = 0; k < shown; ++k) {
    const hw::LayerEnergy& l = *layers[k];
    const hw::EnergyBreakdown& e = l.energy;
    std::printf("  %-8s %-24s %-11s %5d %11s %5.1f%% %11s %11s %11s %11s %11s\n", l.graph.c_str(), l.name.c_str(),
                l.kind.c_str(), l.cores, si(e.total_pj() / n, "J").c_str(), total > 0 ? 100 * e.total_pj() / total : 0.0,
                si(e.synaptic_pj / n, "J").c_str(), si((e.weight_read_pj + e.membrane_pj + e.offchip_pj) / n, "J").c_str(),
                si(e.neuron_pj / n, "J").c_str(), si(e.routing_pj / n, "J").c_str(), si(e.dense_pj / n, "J").c_str());
  }
  if (shown < layers.size()) std::printf("  ... %zu more layers (--layers shows all)\n", layers.size() - shown);
}

}  // namespace

Action add_energy(CLI::App& app) {
  auto o = std::make_shared<EnergyCli>();
  o->sim.limit = 200;
  CLI::App* c = app.add_subcommand("energy", "Price a spiking model's activity on a modeled neuromorphic accelerator, beside an ANN baseline");
  c->add_option("--snn", o->sim.snn, "Spiking model (from spikefm convert)")->check(CLI::ExistingFile);
  c->add_option("--task", o->sim.task, "Task: fashion-vqa or med-vqa (default: the task the QANN was trained on)")
      ->check(CLI::IsMember({"fashion-vqa", "med-vqa"}));
  c->add_option("--split", o->sim.split, "Split")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--limit", o->sim.limit, "First N (image, question) samples simulated (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--timesteps", o->sim.timesteps, "Timesteps T per inference (0 = the file's default)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_flag("--until-quiet", o->sim.until_quiet, "Run every inference until no neuron spikes (exact neurons)");
  c->add_option("--hw", o->hw, "Accelerator preset name or TOML file; repeat or comma-separate to price one run on several")
      ->delimiter(',')
      ->capture_default_str();
  c->add_flag("--hw-list", o->list, "List the shipped presets and exit");
  c->add_option("--mapping", o->mapping, "Neuron-to-core mapping")->check(CLI::IsMember({"greedy", "traffic-aware"}))->capture_default_str();
  c->add_option("--qann", o->sim.qann_checkpoint, "QANN checkpoint (default: the one recorded at conversion)");
  c->add_option("--data-dir", o->sim.data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_flag("--no-memory", o->no_memory, "Leave out SRAM/DRAM/membrane energy (for comparisons)");
  c->add_flag("--no-neuron", o->no_neuron, "Leave out neuron-update energy");
  c->add_flag("--no-noc", o->no_noc, "Leave out spike routing energy");
  c->add_flag("--no-dense", o->no_dense, "Leave out dense-unit ops (LayerNorm, softmax); encoding MACs stay");
  c->add_flag("--no-static", o->no_static, "Leave out static power");
  c->add_flag("--layers", o->all_layers, "Print every layer, not only the top 10");
  c->add_flag("--json", o->json, "Print one JSON object on stdout");
  return [o] {
    if (o->list) {
      for (const auto& p : hw::list_hw_presets()) {
        hw::HwSpec s = hw::load_hw_spec(p);
        if (o->json) {
          std::printf("%s\n", Json{{"name", s.name}, {"description", s.description}, {"cores", s.cores}, {"file", p.string()}}.dump().c_str());
        } else {
          std::printf("%-10s %5d cores  %s  (%s)\n", s.name.c_str(), s.cores, s.description.c_str(), p.c_str());
        }
      }
      return 0;
    }
    if (o->sim.snn.empty()) throw Error("spikefm energy", "no model given", "pass --snn FILE.snn.h5 (from spikefm convert)");
    // Load every preset before the (long) simulation so a typo fails at once.
    std::vector<hw::HwSpec> specs;
    for (const std::string& h : o->hw) specs.push_back(hw::load_hw_spec(hw::resolve_hw_preset(h)));
    snn::SnnModel sm = snn::SnnModel::load(o->sim.snn);
    SimulateReport r = simulate_vqa(o->sim);

    hw::ActivityCounts counts;
    counts.samples = r.n;
    counts.tokens = r.inferences;
    for (const GraphTotals& t : r.totals) {
      const snn::SpikingGraph& g = t.graph == sm.encoder.name ? sm.encoder : sm.decoder;
      hw::add_graph_counts(counts, g, t.stats, t.ann, t.steps, t.runs);
    }
    hw::StudyOptions so;
    so.strategy = hw::mapping_strategy_from_name(o->mapping);
    so.energy.memory = !o->no_memory;
    so.energy.neuron = !o->no_neuron;
    so.energy.noc = !o->no_noc;
    so.energy.dense = !o->no_dense;
    so.energy.static_power = !o->no_static;
    so.qann_bits = qann_bits(sm);
    so.qnn_bits = hw::bits_for_timesteps(std::max(1, static_cast<int>(std::ceil(r.steps_per_inference))));

    Json studies = Json::array();
    if (!o->json) {
      std::printf("%s %s split, %s neurons, %s, %lld samples: accuracy SNN %.2f%%, QANN %.2f%%, agreement %.2f%%\n",
                  r.task.c_str(), r.split.c_str(), r.neuron.c_str(),
                  r.until_quiet ? "until quiet" : ("T = " + std::to_string(r.timesteps)).c_str(),
                  static_cast<long long>(r.n), 100 * r.accuracy, 100 * r.qann_accuracy, 100 * r.agreement);
    }
    for (const hw::HwSpec& spec : specs) {
      hw::EnergyStudy s = hw::run_energy_study(counts, spec, so);
      if (o->json) studies.push_back(hw::energy_study_json(s));
      else print_study(s, o->all_layers);
    }
    if (o->json) {
      Json j;
      j["snn"] = o->sim.snn.string();
      j.update(simulate_summary_json(r));
      j["qann_bits"] = so.qann_bits;
      j["qnn_bits"] = so.qnn_bits;
      j["hardware"] = studies;
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  };
}

}  // namespace spikefm::cli
