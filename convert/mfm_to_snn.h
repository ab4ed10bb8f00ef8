// QANN → SNN conversion of the reference MFM (torch-free entry point).
//
// Each quantizer of the QANN becomes a population of spiking neurons with threshold θ = λ/L and
// spike-count bounds [lo, hi] = [−L, L] (signed) or [0, L]; each linear layer an event-driven layer
// with the QANN's int8 weights and scale θ_in·s; q kᵀ and p v become spike×spike products; LayerNorm
// and softmax stay dense units. The result runs in snn::GraphEngine and reproduces the integer QANN
// (ann_ref/qann.h) exactly once every neuron has settled (ST-BIF, burst).
//
// Neuron models (one table, one interface):
//   st_bif   signed IF with count bounds (SpikeZIP-TF, You et al., ICML 2024) — exact
//   burst    ST-BIF that may fire up to `burst` spikes per step (after Li & Zeng, IJCAI 2022) — exact,
//            fewer steps
//   if_rate  rate-coded IF with reset by subtraction, threshold balanced to the activation clip λ
//            (the 99.9th-percentile calibrated and then trained QCFS clip), inputs and biases
//            injected every step (classic ANN→SNN conversion, Rueckauer et al. 2017; signed neurons
//            where the activation is signed) — approximate, improves with T
#pragma once

#include <filesystem>
#include <string>

#include "snn/snn_model.h"

namespace spikefm {

struct ConvertOptions {
  std::string neuron = "st_bif";  // st_bif | burst | if_rate
  int burst = 4;                  // burst: max spikes per step
  int timesteps = 32;             // default T stored in the file
};

// Loads a QANN checkpoint (trained with --qann) and converts it.
snn::SnnModel convert_checkpoint(const std::filesystem::path& checkpoint, const ConvertOptions& opts);

}  // namespace spikefm
