// spikefm simulate: run a spiking model on a task beside its QANN; accuracy, agreement, activity.
#include <cstdio>
#include <memory>

#include "common/error.h"
#include "common/json.h"
#include "convert/mlp_to_nir.h"
#include "datasets/fashion_mnist.h"
#include "snn/nir_graph.h"
#include <fstream>
#include "convert/simulate.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Json simulate_summary_json(const SimulateReport& r) {
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
  j["weight_bytes_per_sample"] = r.weight_bytes;
  j["spikes_per_neuron"] = r.spikes_per_neuron;
  j["sops_per_synapse"] = r.sops_per_synapse;
  j["snn_seconds"] = r.snn_seconds;
  j["qann_seconds"] = r.qann_seconds;
  return j;
}

Action add_simulate(CLI::App& app) {
  auto o = std::make_shared<SimulateOptions>();
  auto json = std::make_shared<bool>(false);
  auto layers = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("simulate", "Simulate a spiking model on a task and compare it with its QANN");
  auto nir = std::make_shared<std::filesystem::path>();
  auto input = std::make_shared<std::filesystem::path>();
  auto input_index = std::make_shared<int64_t>(-1);
  auto* snn_opt = c->add_option("--snn", o->snn, "Spiking model (from spikefm convert)")->check(CLI::ExistingFile);
  auto* nir_opt = c->add_option("--nir", *nir, "A NIR file instead (Affine/Linear, IF/LIF, Conv2d, SumPool2d, Flatten, ...)")->check(CLI::ExistingFile);
  snn_opt->excludes(nir_opt);
  c->add_option("--input", *input, "With --nir: a text file of whitespace-separated floats, the Input presented as a constant current");
  c->add_option("--input-index", *input_index, "With --nir: Fashion-MNIST test image I as the input (pixel/255)");
  c->add_option("--task", o->task,
                "Task: fashion-vqa or med-vqa (--snn; default: the task its QANN was trained on), or fashion-mnist "
                "(--nir, accuracy over the test split)")
      ->check(CLI::IsMember({"fashion-vqa", "med-vqa", "fashion-mnist"}));
  c->add_option("--split", o->split, "Split")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--limit", o->limit, "First N (image, question) samples (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--timesteps", o->timesteps, "Timesteps T per inference (0 = the file's default)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_flag("--until-quiet", o->until_quiet, "Run every inference until no neuron spikes (exact neurons; T is then the observed count)");
  c->add_option("--qann", o->qann_checkpoint, "QANN checkpoint to compare with (default: the one recorded at conversion)");
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_option("--trace", o->trace, "Write per-layer, per-timestep spike/SOP counts of the first samples to this HDF5 file");
  c->add_option("--trace-samples", o->trace_samples, "Samples traced with --trace")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_flag("--layers", *layers, "Print activity per layer");
  c->add_flag("--json", *json, "Print one JSON object on stdout");
  return [o, json, layers, nir, input, input_index] {
    if (!nir->empty()) {
      const int T = o->timesteps > 0 ? o->timesteps : 32;
      if (!input->empty() || *input_index >= 0) {
        std::vector<float> x;
        if (!input->empty()) {
          std::ifstream in(*input);
          if (!in) throw Error("--input " + input->string(), "cannot open it");
          std::string tok;
          while (in >> tok) {
            try {
              size_t used = 0;
              x.push_back(std::stof(tok, &used));
              if (used != tok.size()) throw std::invalid_argument(tok);
            } catch (const std::exception&) {
              throw Error("--input " + input->string(), "'" + tok + "' is not a number", "write whitespace-separated floats");
            }
          }
        } else {
          ImageSet set = load_fashion_mnist(o->data_dir.empty() ? default_fashion_mnist_dir() : o->data_dir, "test");
          if (*input_index >= set.n) throw Error("--input-index", "out of range (test split has " + std::to_string(set.n) + " images)");
          for (int64_t p = 0; p < set.rows * set.cols; ++p) x.push_back(set.pixels[*input_index * set.rows * set.cols + p] / 255.0f);
        }
        std::vector<float> y = run_nir_file(*nir, x, T);
        int best = 0;
        for (size_t k = 0; k < y.size(); ++k) {
          if (y[k] > y[best]) best = static_cast<int>(k);
        }
        if (*json) {
          std::printf("%s\n", Json{{"nir", nir->string()}, {"timesteps", T}, {"output", y}, {"argmax", best}}.dump().c_str());
        } else {
          std::printf("output (mean over %d steps):", T);
          for (float v : y) std::printf(" %.4g", v);
          std::printf("\nargmax %d\n", best);
        }
        return 0;
      }
      if (o->task != "fashion-mnist") throw Error("--nir", "needs --input, --input-index or --task fashion-mnist");
      snn::NirGraph g = snn::read_nir(*nir);
      ImageSet set = load_fashion_mnist(o->data_dir.empty() ? default_fashion_mnist_dir() : o->data_dir, o->split == "test" ? "test" : "train");
      NirRunReport r = simulate_nir_classifier(g, set, T, o->limit, o->progress);
      if (*json) {
        std::printf("%s\n", Json{{"nir", nir->string()}, {"task", "fashion-mnist"}, {"timesteps", T}, {"n", r.n}, {"accuracy", r.accuracy},
                                 {"spikes_per_sample", r.spikes}, {"sops_per_sample", r.synaptic_ops}, {"seconds", r.seconds}}.dump().c_str());
      } else {
        std::printf("NIR %s on fashion-mnist %s, T = %d, %lld images: accuracy %.2f%%, %.0f spikes and %.0f SOPs per image, %.1f s\n",
                    nir->c_str(), o->split.c_str(), T, static_cast<long long>(r.n), 100 * r.accuracy, r.spikes, r.synaptic_ops, r.seconds);
      }
      return 0;
    }
    if (o->snn.empty()) throw Error("spikefm simulate", "no model given", "pass --snn FILE.snn.h5 or --nir FILE.nir");
    SimulateReport r = simulate_vqa(*o);
    if (*json) {
      Json j = simulate_summary_json(r);
      Json ls = Json::array();
      for (const auto& l : r.layers) {
        ls.push_back({{"graph", l.graph}, {"name", l.name}, {"kind", l.kind}, {"spikes_per_sample", l.spikes},
                      {"sops_per_sample", l.sops}, {"neuron_updates_per_sample", l.neuron_updates},
                      {"dense_ops_per_sample", l.dense_ops}, {"dense_macs_per_sample", l.dense_macs}, {"weight_bytes_per_sample", l.weight_bytes},
                      {"synapses", l.synapses}});
      }
      j["layers"] = ls;
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("%s %s split, %s neurons, T = %d%s, %lld samples\n", r.task.c_str(), r.split.c_str(), r.neuron.c_str(),
                r.timesteps, r.until_quiet ? " (until quiet)" : "", static_cast<long long>(r.n));
    std::printf("  accuracy      SNN %.2f%%   QANN %.2f%%   agreement %.2f%%   max |dlogit| %.3g\n", 100 * r.accuracy,
                100 * r.qann_accuracy, 100 * r.agreement, r.max_abs_dlogit);
    std::printf("  per sample    %.0f spikes, %.0f SOPs, %.0f neuron updates, %.0f dense-unit ops, %.0f dense MACs, "
                "%.0f weight bytes read\n",
                r.spikes, r.sops, r.neuron_updates, r.dense_ops, r.dense_macs, r.weight_bytes);
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
