// Evaluation of a trained MFM checkpoint (torch-free entry point for the CLI and tests).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

namespace spikefm {

struct EvalOptions {
  std::filesystem::path checkpoint;
  std::string task = "fashion-vqa";
  std::string split = "test";       // train | val | test (val is carved from train with the checkpoint's seed)
  std::filesystem::path data_dir;   // empty: default_fashion_mnist_dir()
  int64_t limit = 0;                // first N (image, question) samples; 0 = all
  int batch_images = 256;
  bool progress = true;
};

struct EvalReport {
  std::string task, split, model;
  int64_t n = 0, correct = 0;
  double accuracy = 0;
  std::array<double, 4> accuracy_by_type{};  // what, footwear, upper_body, group
  std::array<int64_t, 4> n_by_type{};
  int64_t parameters = 0;
  double seconds = 0;                        // evaluation only (checkpoint and data loading excluded)
};

EvalReport evaluate_fashion_vqa(const EvalOptions& opts);

// One greedy answer to a free-text question about image `index` of `split`.
struct GenerateResult {
  std::string question, answer, expected;  // expected: the ground truth if the question is a known type, else ""
  int label = -1;
};
GenerateResult generate_fashion_vqa(const std::filesystem::path& checkpoint, const std::filesystem::path& data_dir,
                                    const std::string& split, int64_t index, const std::string& question);

}  // namespace spikefm
