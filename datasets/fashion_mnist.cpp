#include "datasets/fashion_mnist.h"

#include <cstdlib>
#include <system_error>

#include "common/error.h"
#include "common/h5_file.h"
#include "datasets/idx_reader.h"

namespace spikefm {

namespace {

constexpr const char* kInstallHint = "install the Debian package dataset-fashion-mnist or pass --data-dir";

// The file called `name` in dir, or `name`.gz; the uncompressed one wins when both exist.
std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& name) {
  std::error_code ec;
  const auto plain = dir / name;
  if (std::filesystem::exists(plain, ec)) return plain;
  const auto gz = dir / (name + ".gz");
  if (std::filesystem::exists(gz, ec)) return gz;
  throw Error("loading Fashion-MNIST from " + dir.string(), "neither " + name + " nor " + name + ".gz is there",
              kInstallHint);
}

}  // namespace

const std::array<std::string, kFashionClasses>& fashion_class_names() {
  static const std::array<std::string, kFashionClasses> names = {
      "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"};
  return names;
}

std::filesystem::path default_fashion_mnist_dir() {
  const char* env = std::getenv("SPIKEFM_DATA_DIR");
  if (env && *env) return env;
  return "/usr/share/datasets/fashion-mnist";
}

ImageSet load_fashion_mnist(const std::filesystem::path& dir, const std::string& split) {
  const std::string what = "loading Fashion-MNIST from " + dir.string();
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    throw Error(what, "unknown split '" + split + "'", "use 'train' or 'test'");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw Error(what, "the directory does not exist", kInstallHint);

  const auto image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const auto label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(image_path);
  IdxArray labels = read_idx(label_path);

  if (images.dims.size() != 3) {
    throw Error("loading " + image_path.string(),
                "images must have 3 dimensions (n, rows, cols), the file has " + shape_str(images.dims),
                "pass the *-images-idx3-ubyte file");
  }
  if (labels.dims.size() != 1) {
    throw Error("loading " + label_path.string(),
                "labels must have 1 dimension (n), the file has " + shape_str(labels.dims),
                "pass the *-labels-idx1-ubyte file");
  }
  if (images.dims[0] != labels.dims[0]) {
    throw Error(what,
                image_path.filename().string() + " holds " + std::to_string(images.dims[0]) + " images but " +
                    label_path.filename().string() + " holds " + std::to_string(labels.dims[0]) + " labels",
                "the two files must come from the same split");
  }
  if (images.dims[0] == 0 || images.dims[1] == 0 || images.dims[2] == 0) {
    throw Error("loading " + image_path.string(), "the image set is empty: dims " + shape_str(images.dims));
  }
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= kFashionClasses) {
      throw Error("loading " + label_path.string(),
                  "label " + std::to_string(i) + " is " + std::to_string(labels.data[i]) + ", labels must be < " +
                      std::to_string(kFashionClasses),
                  "the file is not a Fashion-MNIST label file");
    }
  }

  ImageSet set;
  set.n = images.dims[0];
  set.rows = images.dims[1];
  set.cols = images.dims[2];
  set.pixels = std::move(images.data);  // (n, rows, cols)
  set.labels = std::move(labels.data);  // (n,)
  return set;
}

}  // namespace spikefm
