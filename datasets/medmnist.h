// MedMNIST v2 (Yang et al. 2023, "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D
// biomedical image classification", Scientific Data 10:41): 2-D medical image classification sets
// (PathMNIST, ChestMNIST, DermaMNIST, OCTMNIST, PneumoniaMNIST, RetinaMNIST, BreastMNIST, BloodMNIST,
// TissueMNIST, OrganA/C/SMNIST) at 28x28 and, in MedMNIST+, 64/128/224. Each set is one .npz
// (see npz_reader.h) holding six arrays:
//
//   key            dtype          shape                         meaning
//   train_images   uint8 (|u1)    (N, H, W) or (N, H, W, 3)     grey-scale or RGB pixels 0..255
//   train_labels   any integer    (N, 1), (N, L) or (N,)        class index, or L 0/1 multi-label flags
//   val_images     ...            as train                      validation split
//   val_labels
//   test_images                                                 test split
//   test_labels
//
// Labels: PathMNIST & co. store (N, 1) class indices; ChestMNIST stores (N, 14) multi-label 0/1
// flags. Any bool/integer dtype is accepted and widened to int64 (real files use uint8 or int64);
// (N,) is read as (N, 1). Negative labels are refused.
//
// Colour: by default RGB images are converted to grey-scale with the ITU-R BT.601 luma weights,
//   Y = round(0.299 R + 0.587 G + 0.114 B), computed exactly in integers as
//   Y = (299 R + 587 G + 114 B + 500) / 1000   (floor division; ties round up)
// so every set becomes (N, H, W) like Fashion-MNIST. MedMnistOptions::keep_channels keeps the RGB
// triplets instead: pixels (N, H, W, 3), channels = 3. Grey-scale sets are returned as they are.
// The 3-D MedMNIST sets (OrganMNIST3D etc., images (N, D, H, W)) are refused: rank 4 needs a last
// dimension of 3.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

class NpzFile;

// One split of a MedMNIST set; mirrors ImageSet (fashion_mnist.h) with channels and multi-labels.
struct MedImageSet {
  int64_t n = 0, rows = 0, cols = 0;
  int64_t channels = 1;          // 1 (grey or converted to grey) or 3 (keep_channels on an RGB set)
  std::vector<uint8_t> pixels;   // (n, rows, cols) when channels == 1, else (n, rows, cols, channels); row-major
  int64_t label_width = 1;       // L: 1 for a class index, >1 for multi-label flags
  std::vector<int64_t> labels;   // (n, label_width), row-major, every value >= 0
};

struct MedMnistOptions {
  bool keep_channels = false;  // false: RGB -> BT.601 grey-scale; true: keep (H, W, 3)
};

struct MedMnist {
  MedImageSet train, val, test;
};

// split = "train", "val" or "test": reads `<split>_images` and `<split>_labels`. Throws
// spikefm::Error naming the file, the key and the rule: missing key, images not uint8, images not
// rank 3 or rank 4 with 3 channels, labels not an integer dtype or not rank 1/2, N of images and
// labels differ, an empty set, a negative label. Damage in the archive itself is reported by the
// npz reader.
MedImageSet load_medmnist_split(const NpzFile& npz, const std::string& split, const MedMnistOptions& options = {});
MedImageSet load_medmnist_split(const std::filesystem::path& path, const std::string& split,
                                const MedMnistOptions& options = {});

// All three splits of one file.
MedMnist load_medmnist(const std::filesystem::path& path, const MedMnistOptions& options = {});

// The BT.601 grey value of one RGB pixel, as documented above.
inline uint8_t medmnist_rgb_to_gray(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>((299u * r + 587u * g + 114u * b + 500u) / 1000u);
}

}  // namespace spikefm
