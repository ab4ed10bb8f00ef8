// spikefm simulate: run a spiking model on a task beside its QANN; accuracy, agreement, activity.
#include <cstdio>
#include <memory>

#include "common/json.h"
#include "convert/simulate.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Action add_simulate(CLI::App& app) {
  auto o = std::make_shared<SimulateOptions>();
  auto json = std::make_shared<bool>(false);
  auto layers = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("simulate", "Simulate a spiking model on a task and compare it with its QANN");
  c->add_option("--snn", o->snn, "Spiking model (from spikefm convert)")->required()->check(CLI::ExistingFile);
  c->add_option("--task", o->task, "Task")->check(CLI::IsMember({"fashion-vqa"}))->capture_default_str();
  c->add_option("--split", o->split, "Split")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--limit", o->limit, "First N (image, question) samples (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--timesteps", o->timesteps, "Timesteps T per inference (0 = the file's default)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_flag("--until-quiet", o->until_quiet, "Run every inference until no neuron spikes (exact neurons; T is then the observed count)");
  c->add_option("--qann", o->qann_checkpoint, "QANN checkpoint to compare with (default: the one recorded at conversion)");
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_flag("--layers", *layers, "Print activity per layer");
  c->add_flag("--json", *json, "Print one JSON object on stdout");
  return [o, json, layers] {
    SimulateReport r = simulate_fashion_vqa(*o);
    if (*json) {
      Json j;
      j["task"] = r.task;
      j["split"] = r.split;
      j["neuron"] = r.neuron;
      j["timesteps"] = r.timesteps;
      j["until_quiet"] = r.until_quiet;
      j["n"] = r.n;
      j["accuracy"] = r.accuracy;
      j["qann_accuracy"] = r.qann_accuracy;
      j["agreement"] = r.agreement;
      j["max_abs_dlogit"] = r.max_abs_dlogit;
      j["inferences"] = r.inferences;
      j["steps_per_inference"] = r.steps_per_inference;
      j["unsettled_runs"] = r.unsettled_runs;
      j["spikes_per_sample"] = r.spikes;
      j["sops_per_sample"] = r.sops;
      j["neuron_updates_per_sample"] = r.neuron_updates;
      j["dense_ops_per_sample"] = r.dense_ops;
      j["dense_macs_per_sample"] = r.dense_macs;
      j["spikes_per_neuron"] = r.spikes_per_neuron;
      j["sops_per_synapse"] = r.sops_per_synapse;
      j["snn_seconds"] = r.snn_seconds;
      j["qann_seconds"] = r.qann_seconds;
      Json ls = Json::array();
      for (const auto& l : r.layers) {
        ls.push_back({{"graph", l.graph}, {"name", l.name}, {"kind", l.kind}, {"spikes_per_sample", l.spikes},
                      {"sops_per_sample", l.sops}, {"neuron_updates_per_sample", l.neuron_updates},
                      {"dense_ops_per_sample", l.dense_ops}, {"dense_macs_per_sample", l.dense_macs}, {"synapses", l.synapses}});
      }
      j["layers"] = ls;
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("%s %s split, %s neurons, T = %d%s, %lld samples\n", r.task.c_str(), r.split.c_str(), r.neuron.c_str(),
                r.timesteps, r.until_quiet ? " (until quiet)" : "", static_cast<long long>(r.n));
    std::printf("  accuracy      SNN %.2f%%   QANN %.2f%%   agreement %.2f%%   max |dlogit| %.3g\n", 100 * r.accuracy,
                100 * r.qann_accuracy, 100 * r.agreement, r.max_abs_dlogit);
    std::printf("  per sample    %.0f spikes, %.0f SOPs, %.0f neuron updates, %.0f dense-unit ops, %.0f dense MACs\n",
                r.spikes, r.sops, r.neuron_updates, r.dense_ops, r.dense_macs);
    std::printf("  activity      %.3f spikes per neuron per inference, %.3f SOPs per synapse per inference, "
                "%.1f steps per inference, %lld unsettled runs\n",
                r.spikes_per_neuron, r.sops_per_synapse, r.steps_per_inference, static_cast<long long>(r.unsettled_runs));
    std::printf("  wall time     SNN %.2f s (one sample at a time)   QANN %.2f s (libtorch, batched)   ratio %.1fx\n",
                r.snn_seconds, r.qann_seconds, r.qann_seconds > 0 ? r.snn_seconds / r.qann_seconds : 0.0);
    if (*layers) {
      std::printf("  %-8s %-24s %-13s %12s %12s %12s %12s\n", "graph", "layer", "kind", "spikes", "SOPs", "dense ops", "dense MACs");
      for (const auto& l : r.layers) {
        if (l.spikes == 0 && l.sops == 0 && l.dense_ops == 0 && l.dense_macs == 0) continue;
        std::printf("  %-8s %-24s %-13s %12.0f %12.0f %12.0f %12.0f\n", l.graph.c_str(), l.name.c_str(), l.kind.c_str(),
                    l.spikes, l.sops, l.dense_ops, l.dense_macs);
      }
    }
    return 0;
  };
}

}  // namespace spikefm::cli
