// Checkpoints of the reference MFM: HDF5, schema in docs/formats.md (format_version 1).
//
//   /                attrs format_version (int), kind = "spikefm-mfm", producer
//   /config          attrs: every MfmConfig field
//   /tokenizer/vocab (V,) UTF-8 strings; ids are positions
//   /params/<name>   float32, one dataset per parameter; <name> is the libtorch parameter name with
//                    '.' replaced by '/', e.g. /params/dec_blocks/0/attn/qkv/weight (3C, C)
//   /train           attrs: task, seed, steps, samples, seconds, val_accuracy
//
// Saving is atomic. Loading checks the version, every tensor name and shape, rejects unknown tensors
// and NaN/Inf values, and names the path inside the file in every error.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ann_ref/mfm.h"

namespace spikefm {

class H5File;

inline constexpr int64_t kCheckpointFormatVersion = 1;

struct TrainMeta {
  std::string task = "fashion-vqa";
  int64_t seed = 0;
  int64_t steps = 0;
  int64_t samples = 0;
  double seconds = 0;
  double val_accuracy = -1;  // -1: not measured
};

struct Checkpoint {
  Mfm model{nullptr};
  std::vector<std::string> vocab;
  TrainMeta meta;
};

// `extra`, when given, writes further objects into the open file before it is committed (e.g. the
// BPE merges of a code model, /tokenizer/bpe_merges); the loader ignores objects outside /params.
void save_checkpoint(const std::filesystem::path& path, Mfm& model, const std::vector<std::string>& vocab,
                     const TrainMeta& meta, const std::function<void(H5File&)>& extra = {});
Checkpoint load_checkpoint(const std::filesystem::path& path);

// "/params/" + name with '.' → '/'
std::string param_path(const std::string& torch_name);

}  // namespace spikefm
