// `spikefm simulate`: the converted model on a task, side by side with the QANN it came from, on the
// same samples (torch-free entry point).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ann_ref/evaluator.h"  // QuestionResult
#include "snn/layer_stats.h"

namespace spikefm {

struct SimulateOptions {
  std::filesystem::path snn;
  std::string task;                       // fashion-vqa | med-vqa; empty: the task the QANN was trained on
  std::string split = "test";
  std::filesystem::path data_dir;         // Fashion-MNIST; empty: default_fashion_mnist_dir()
  std::filesystem::path qann_checkpoint;  // empty: the checkpoint recorded in the SNN file
  int64_t limit = 0;                      // first N (image, question) samples; 0 = all
  int timesteps = 0;                      // 0: the file's default T
  bool until_quiet = false;               // exact neurons: run each inference until no neuron spikes
  int max_new_tokens = 6;
  std::filesystem::path trace;  // optional HDF5 trace: per-layer, per-timestep counts of every run
  int64_t trace_samples = 8;    // of the first N samples
  bool keep_questions = false;  // fill SimulateReport::questions (the SNN's answers)
  bool progress = true;
};

struct LayerActivity {
  std::string graph, name, kind;
  double spikes = 0, sops = 0, neuron_updates = 0, dense_ops = 0, dense_macs = 0, weight_bytes = 0;  // per sample
  int64_t synapses = 0;  // linear layers: in × out (weights)
};

// Raw totals of one spiking graph over every run of a simulation: the energy model's input
// (neuromorphic_hw/activity.h).
struct GraphTotals {
  std::string graph;
  std::vector<snn::LayerStats> stats;  // per node
  std::vector<snn::AnnWork> ann;       // per node
  int64_t steps = 0, runs = 0;
};

struct SimulateReport {
  std::string task, split, neuron;
  int timesteps = 0;
  bool until_quiet = false;
  int64_t n = 0;
  double accuracy = 0, qann_accuracy = 0;
  double agreement = 0;        // fraction of samples whose SNN answer equals the QANN's
  double max_abs_dlogit = 0;   // over every generated position (QANN teacher-forced on the SNN's tokens)
  int64_t inferences = 0;      // spiking inferences (decoder runs) in total
  double steps_per_inference = 0;
  int64_t unsettled_runs = 0;  // runs that ended with neurons still spiking
  // per sample (one image + one question, all generated tokens)
  double spikes = 0, sops = 0, neuron_updates = 0, dense_ops = 0, dense_macs = 0, weight_bytes = 0;
  double spikes_per_neuron = 0;  // spikes / (neurons x rows) per inference, over spiking layers
  double sops_per_synapse = 0;   // SOPs / weights per inference, over linear layers
  double snn_seconds = 0, qann_seconds = 0;  // wall time of generation on the same samples
  std::vector<LayerActivity> layers;
  std::vector<GraphTotals> totals;  // encoder, decoder
  // per question type of the task: name, samples, SNN and QANN correct answers
  std::vector<std::string> type_names;
  std::vector<int64_t> type_n, type_correct, type_qann_correct;
  std::vector<QuestionResult> questions;  // every question with the SNN's answer, when keep_questions
};

// Runs the spiking model on every (image, question type) of the split in the order of
// VqaTask::samples (the first opts.limit), asking the canonical question of each type. Throws
// spikefm::Error when the task is not the QANN's or its images or vocabulary are not the model's.
SimulateReport simulate_vqa(const SimulateOptions& opts);

}  // namespace spikefm
