// Fashion-MNIST classifier MLP with QCFS hidden activations: the QANN of the NIR export path
// (convert/mlp_to_nir.h). Torch-free facade; the libtorch module lives in mlp_classifier.cpp.
//
// What it computes (K hidden layers, default K = 1: 784-128-10)
//   x      = n_pix / 255                        n_pix in 0..255 (θ_in = 1/255, as ann_ref/qann.h)
//   z_k    = W_k h_{k-1} + b_k,  h_0 = x        W_k: (out, in) row-major, float32 (NIR is float)
//   n_k    = clip(floor(z_k / θ_k + 1/2), 0, L) integer count, θ_k = λ_k / L
//   h_k    = θ_k · n_k                          unsigned QCFS, ann_ref/qcfs.h (k = 1..K)
//   logits = W_{K+1} h_K + b_{K+1}              (B, 10); class = argmax
// Training is quantization-aware (QCFS straight-through estimator, learnable λ), Adam, cross-entropy.
// Each λ starts at the 99.9th percentile of |z_k| on the first training batch (threshold balancing).
//
// | parameter | meaning                                   | default |
// |-----------|-------------------------------------------|---------|
// | hidden    | hidden layer widths                        | {128}   |
// | levels L  | QCFS levels (> 0)                          | 8       |
// | epochs    | passes over the (limited) training set     | 3       |
// | minutes   | wall-clock budget of the training loop     | 1.0     |
// | lr        | Adam learning rate, cosine-annealed to 0   | 2e-3    |
// | batch     | images per step                            | 128     |
//
// Checkpoint (HDF5, written atomically; every dataset float32):
//   /                     attrs format_version = 1 (int), kind = "spikefm-mlp", producer
//   /config               attrs input_size (int, 784), classes (int, 10), levels (int, L),
//                         hidden_sizes (string, comma-separated widths, e.g. "128"),
//                         input_scale (double, 1/255)
//   /params/fc<k>/weight  (out, in)      k = 1..K+1
//   /params/fc<k>/bias    (out,)
//   /params/fc<k>/act/lambda  ()         scalar, hidden layers k = 1..K only
//   /train                attrs seed, epochs, steps, samples (int), seconds, test_accuracy (double,
//                         -1 = not measured)
// Loading checks kind, version, the config, every tensor name and shape, rejects unknown tensors,
// NaN/Inf values and λ <= 0, and names the file and the path inside it in every error.
//
// After: Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking Neural
// Networks", ICLR 2022 (QCFS).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

inline constexpr int64_t kMlpCheckpointFormatVersion = 1;
inline constexpr const char* kMlpCheckpointKind = "spikefm-mlp";
// θ_in: the classifier's input is x = n_pix · kMlpInputScale (float32), n_pix in 0..255.
inline constexpr float kMlpInputScale = 1.0f / 255.0f;

struct MlpConfig {
  int input_size = 784;
  std::vector<int> hidden = {128};
  int classes = 10;
  int levels = 8;

  // Throws spikefm::Error naming the field and the rule ("levels must be > 0 (got 0)").
  void validate() const;
  // "784-128-10"
  std::string describe() const;
};

// One affine layer of a loaded checkpoint (torch-free; what the NIR exporter reads).
struct MlpLayerWeights {
  std::string name;           // "fc1", "fc2", ...
  int64_t in = 0, out = 0;
  std::vector<float> weight;  // (out, in), row-major
  std::vector<float> bias;    // (out,)
  bool has_act = false;       // hidden layers: QCFS after the affine map
  float lambda = 0;           // QCFS clip λ (has_act only); θ = λ / levels
};

struct MlpTrainMeta {
  int64_t seed = 0, epochs = 0, steps = 0, samples = 0;
  double seconds = 0;
  double test_accuracy = -1;  // -1: not measured
};

struct MlpCheckpoint {
  MlpConfig config;
  std::vector<MlpLayerWeights> layers;  // K + 1, input to output
  MlpTrainMeta meta;
};

// Reads and checks a checkpoint (see the top of this file). Throws spikefm::Error
// "loading MLP checkpoint <path>: <file>:<path inside>: <why>".
MlpCheckpoint load_mlp_checkpoint(const std::filesystem::path& path);

struct MlpTrainOptions {
  std::filesystem::path out;        // checkpoint to write (atomically); required
  std::filesystem::path data_dir;   // empty: default_fashion_mnist_dir()
  MlpConfig config;
  int epochs = 3;
  double minutes = 1.0;             // training stops at the end of the step that crosses it
  uint64_t seed = 1;
  double lr = 2e-3;
  int batch = 128;
  int64_t limit = 0;                // first N training images; 0 = all 60000
  int64_t test_limit = 0;           // test images scored at the end: 0 = all, < 0 = skip
  int threads = 0;                  // 0: libtorch default
  bool progress = true;

  void validate() const;
};

struct MlpTrainReport {
  int64_t parameters = 0;
  int64_t steps = 0;
  int64_t samples = 0;         // images seen (with repetition over epochs)
  int epochs_done = 0;         // complete passes
  double seconds = 0;          // training loop only
  double first_loss = 0;       // mean over the first 20 steps
  double last_loss = 0;        // mean over the last 20 steps
  double test_accuracy = -1;   // QANN accuracy on the test images; -1 if skipped
  int64_t test_n = 0;
  bool stopped_by_time = false;
};

// Trains the QANN, writes the checkpoint to opts.out and reports. Throws spikefm::Error on bad options
// or data.
MlpTrainReport train_mlp_classifier(const MlpTrainOptions& opts);

struct MlpEvalReport {
  std::string split;
  int64_t n = 0, correct = 0;
  double accuracy = 0;
  std::vector<int> predictions;  // (n,) QANN class of each evaluated image, in dataset order
  std::vector<float> logits;     // (n, classes) row-major: the QANN logits
  double seconds = 0;            // evaluation only
};

// QANN accuracy of a checkpoint on the first `limit` images (0 = all) of split "train" or "test".
MlpEvalReport eval_mlp_classifier(const std::filesystem::path& checkpoint, const std::string& split = "test",
                                  int64_t limit = 0, const std::filesystem::path& data_dir = {});

}  // namespace spikefm
