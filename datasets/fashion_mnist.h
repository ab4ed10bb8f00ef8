// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747): 70,000 grey-scale 28x28 images of
// clothing in 10 classes, 60,000 for training and 10,000 for testing, stored as four IDX files
// (see idx_reader.h):
//
//   split   images                          labels
//   train   train-images-idx3-ubyte[.gz]    train-labels-idx1-ubyte[.gz]    (60000, 28, 28) / (60000,)
//   test    t10k-images-idx3-ubyte[.gz]     t10k-labels-idx1-ubyte[.gz]     (10000, 28, 28) / (10000,)
//
// Pixels are uint8 0..255 (0 = background); labels are uint8 0..9 in the order of
// fashion_class_names(). Debian ships the files in the package dataset-fashion-mnist under
// /usr/share/datasets/fashion-mnist.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

inline constexpr int kFashionClasses = 10;

// Index = label: "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
// "bag", "ankle boot".
const std::array<std::string, kFashionClasses>& fashion_class_names();

// The directory holding the four files: $SPIKEFM_DATA_DIR when set and non-empty, else
// /usr/share/datasets/fashion-mnist.
std::filesystem::path default_fashion_mnist_dir();

struct ImageSet {
  int64_t n = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // (n, rows, cols), row-major
  std::vector<uint8_t> labels;  // (n,), values 0..kFashionClasses-1
};

// split = "train" or "test". For each file the uncompressed name is used when present, else the .gz
// one. Throws spikefm::Error naming the file and the rule when a file is missing or unreadable, the
// images are not 3-D, the labels not 1-D, the counts differ, the set is empty, or a label is >= 10.
ImageSet load_fashion_mnist(const std::filesystem::path& dir, const std::string& split);

}  // namespace spikefm
