// Evaluation of a trained MFM checkpoint (torch-free entry point for the CLI and tests).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

// One scored question (per-question results of `spikefm bench --out`).
struct QuestionResult {
  int64_t image = 0;        // index into the split
  std::string type;         // question type name
  std::string question;     // the canonical question asked
  std::string answer;       // ground truth
  std::string prediction;   // the model's greedy answer
  bool correct() const { return prediction == answer; }
};

struct EvalOptions {
  std::filesystem::path checkpoint;
  std::string task = "fashion-vqa";  // fashion-vqa | med-vqa
  std::string split = "test";       // train | val | test (Fashion: val is carved from train with the checkpoint's seed)
  std::filesystem::path data_dir;   // Fashion-MNIST; empty: default_fashion_mnist_dir()
  int64_t limit = 0;                // first N (image, question) samples; 0 = all
  int batch_images = 256;
  bool keep_questions = false;      // fill EvalReport::questions
  bool progress = true;
};

struct EvalReport {
  std::string task, split, model;
  int64_t n = 0, correct = 0;
  double accuracy = 0;
  std::array<double, 4> accuracy_by_type{};  // fashion-vqa only: what, footwear, upper_body, group
  std::array<int64_t, 4> n_by_type{};
  // Every task: the question types, and per type the samples scored and the accuracy.
  std::vector<std::string> type_names;
  std::vector<int64_t> type_n;
  std::vector<double> type_accuracy;
  int64_t parameters = 0;
  bool zero_shot = false;                    // the checkpoint was adapted to the task untrained (evaluate_vqa)
  double seconds = 0;                        // evaluation only (checkpoint and data loading excluded)
  std::vector<QuestionResult> questions;     // every scored question, when EvalOptions::keep_questions
};

// Scores a checkpoint on opts.task; Med-VQA is always the benchmark at its default seed 0. A
// checkpoint of another task (other image size or vocabulary) is scored zero-shot: moved onto the
// task's geometry and vocabulary as fine-tuning starts (weight_transfer.h), untrained.
EvalReport evaluate_vqa(const EvalOptions& opts);
// evaluate_vqa for opts.task == "fashion-vqa" (any other task throws).
EvalReport evaluate_fashion_vqa(const EvalOptions& opts);

// One greedy answer to a free-text question about image `index` of `split`.
struct GenerateResult {
  std::string question, answer, expected;  // expected: the ground truth if the question is a known type, else ""
  int label = -1;
};
GenerateResult generate_fashion_vqa(const std::filesystem::path& checkpoint, const std::filesystem::path& data_dir,
                                    const std::string& split, int64_t index, const std::string& question);

}  // namespace spikefm
