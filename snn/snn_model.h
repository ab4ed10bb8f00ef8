// A converted multimodal model: the encoder and decoder spiking graphs plus what the driver needs to
// feed them (positions, token embeddings, vocabulary, image geometry). Written by `spikefm convert`,
// read by `spikefm simulate` — HDF5, schema in docs/formats.md. No libtorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "snn/spiking_graph.h"

namespace spikefm::snn {

inline constexpr int64_t kSnnFormatVersion = 1;

struct SnnModel {
  // provenance and defaults
  std::string source_checkpoint;
  std::string neuron = "st_bif";  // st_bif | burst | if_rate
  int levels = 0;                 // L of the QANN quantizers
  int default_timesteps = 32;
  int64_t train_seed = 0;
  // image geometry (pixels → patches: patch p at (r·stride, c·stride), row-major inside)
  int image_size = 0, patch = 0, stride = 0;
  int num_patches() const { return ((image_size - patch) / stride + 1) * ((image_size - patch) / stride + 1); }
  // driver tables
  std::vector<float> enc_pos;    // (P, Ce): added to the encoded patches (row_input "enc_pos")
  std::vector<float> tok_embed;  // (V, Cd)
  std::vector<float> dec_pos;    // (max_text_len, Cd)
  int dec_width = 0, max_text_len = 0;
  std::vector<std::string> vocab;

  SpikingGraph encoder, decoder;

  void validate() const;  // shapes of the tables against the graphs; throws spikefm::Error
  void save(const std::filesystem::path& path) const;  // atomic
  static SnnModel load(const std::filesystem::path& path);
};

// Pixel counts (0..255, as float) of every patch: image (S·S) grey values in [0, 1] → (P, patch²).
std::vector<float> patch_counts(const SnnModel& m, const float* image);

}  // namespace spikefm::snn
