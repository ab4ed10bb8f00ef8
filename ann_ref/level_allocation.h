// Activation-level allocation (`spikefm compress --act-spikes`): the levels L of every QCFS quantizer
// of a QANN, chosen per layer input under a spike budget (torch-free entry point; the implementation
// uses libtorch).
//
// A quantizer's integer count n is the number of spikes the integrate-and-fire neuron behind it emits
// (qcfs.h), so its L is both its precision and its spiking cost. Every quantizer (a "site": the
// neurons at one layer input, e.g. dec_blocks.1.mlp.act) may take any L in `levels`:
//   cost   spikes[s][L] = Σ|n| per question of site s at L on calibration data (4 questions per
//          image, answers teacher-forced), counted as the spiking engine schedules the work: the
//          encoder and the decoder over the image tokens once per image (cached and shared by its
//          questions), the decoder over each question's text once per question;
//   error  err[s][L]    = ½ Σ_e g_e² (a_L(z_e) − a_trained(z_e))² per scored answer token: the
//          diagonal-Fisher estimate of the calibration-loss increase when site s alone goes to L
//          (g: gradient of the summed token losses with respect to the site's output; z: its
//          inputs; λ kept, θ = λ / L). Positive and smooth in L, unlike the measured difference of
//          two losses, which at most sites is below its own noise (`--act-sensitivity loss` uses
//          that instead: max(measured ΔL of the site alone, 0)).
// Minimise Σ_s err subject to Σ_s spikes ≤ spike_budget × (the spikes at the checkpoint's
// levels) — the same exact multiple-choice knapsack as the weight bits (bit_allocation.h), with the
// spiking cost as the knapsack weight. The chosen L go into the config (MfmConfig::site_levels) and
// convert unchanged: each spiking neuron group takes its bounds from its quantizer.
//
// Costs and errors are per site alone; interactions (a coarser input changes the counts downstream)
// are not modelled, so the report also measures the whole allocation: its calibration loss, spikes
// and accuracy. A short QANN fine-tune at the new levels (`spikefm train --init OUT --qann`) recovers
// what the allocation loses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

struct LevelAllocOptions {
  std::filesystem::path checkpoint;  // a QANN (spikefm train --qann)
  std::filesystem::path data_dir;    // empty: default_fashion_mnist_dir()
  std::filesystem::path out;         // empty: do not write a checkpoint
  double spike_budget = 0.7;         // fraction of the spikes at the checkpoint's levels, > 0
  std::vector<int> levels{2, 3, 4, 6, 8, 12, 16};  // L each site may take (the trained L is added)
  int64_t calib_images = 128;        // training images for calibration (× 4 questions)
  std::string sensitivity = "fisher";  // what the allocation minimises: fisher | loss (see above)
  std::string split = "test";        // evaluation split
  int64_t limit = 0;                 // evaluation samples (0 = all)
  bool compare = false;              // also uniform L at every level below the trained one, and the
                                     // allocation at each uniform level's spike count
  bool progress = true;
};

struct SiteLevelOption {
  int levels = 0;
  double spikes = 0;       // per question, this site alone at `levels`
  double fisher = 0;       // Fisher estimate of the calibration-loss increase, this site alone at `levels`
  double delta_loss = 0;   // measured calibration-loss increase, this site alone (sensitivity "loss" only)
};

struct SiteAllocation {
  std::string name;        // module path, e.g. "enc_blocks.0.q_ln1"
  bool encoder = false;    // runs once per image
  bool is_signed = false;
  int trained_levels = 0;
  std::vector<SiteLevelOption> options;  // ascending L
  int chosen = -1;         // index into options
};

struct LevelVariant {
  std::string name;        // "trained", "allocated", "uniform L=4", "allocated @ uniform L=4 spikes"
  double spikes = 0;       // measured per question with every site at its level (calibration data)
  double calib_loss = 0;
  double accuracy = 0;
};

struct LevelAllocReport {
  std::string model;
  double spikes_trained = 0;   // Σ of the per-site estimates at the trained levels (= the budget's base)
  double budget = 0;           // spike_budget × spikes_trained
  double spikes_estimate = 0;  // Σ of the chosen options' per-site estimates
  std::vector<SiteAllocation> sites;
  std::vector<LevelVariant> variants;  // [0] trained, [1] allocated, then comparisons
  int64_t eval_n = 0;
};

LevelAllocReport allocate_levels(const LevelAllocOptions& opts);

}  // namespace spikefm
