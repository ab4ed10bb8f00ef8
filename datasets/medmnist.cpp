#include "datasets/medmnist.h"

#include "common/error.h"
#include "common/h5_file.h"
#include "datasets/npz_reader.h"

namespace spikefm {

namespace {

constexpr const char* kMedMnistHint = "pass a MedMNIST .npz file (e.g. pathmnist.npz from medmnist.com)";

}  // namespace

MedImageSet load_medmnist_split(const NpzFile& npz, const std::string& split, const MedMnistOptions& options) {
  const std::string what = "loading MedMNIST split '" + split + "' from " + npz.path().string();
  if (split != "train" && split != "val" && split != "test") {
    throw Error(what, "unknown split '" + split + "'", "use 'train', 'val' or 'test'");
  }
  const std::string image_key = split + "_images", label_key = split + "_labels";
  for (const auto& key : {image_key, label_key}) {
    if (!npz.contains(key)) {
      std::string present;
      for (const auto& k : npz.keys()) present += (present.empty() ? "" : ", ") + k;
      throw Error(what, "missing key '" + key + "' (keys: " + (present.empty() ? "none" : present) + ")",
                  kMedMnistHint);
    }
  }
  NpyArray images = npz.read(image_key);
  const NpyArray labels = npz.read(label_key);

  // --- images: uint8, (N, H, W) or (N, H, W, 3) ---
  if (images.dtype != npy_dtype_of<uint8_t>()) {
    throw Error(what, "'" + image_key + "' has dtype " + images.dtype.str() + ", MedMNIST images must be |u1 (uint8)",
                kMedMnistHint);
  }
  const Shape& is = images.shape;
  const bool rgb = is.size() == 4 && is[3] == 3;
  if (is.size() != 3 && !rgb) {
    throw Error(what,
                "'" + image_key + "' has shape " + shape_str(is) +
                    ", images must be rank 3 (N, H, W) or rank 4 (N, H, W, 3); 3-D volumes are not supported",
                kMedMnistHint);
  }
  if (is[0] == 0 || is[1] == 0 || is[2] == 0) {
    throw Error(what, "'" + image_key + "' is empty: shape " + shape_str(is), kMedMnistHint);
  }

  // --- labels: integer, (N,), (N, 1) or (N, L) ---
  if (labels.dtype.kind == 'f') {
    throw Error(what, "'" + label_key + "' has dtype " + labels.dtype.str() + ", labels must be an integer dtype",
                kMedMnistHint);
  }
  const Shape& ls = labels.shape;
  if (ls.size() != 1 && ls.size() != 2) {
    throw Error(what, "'" + label_key + "' has shape " + shape_str(ls) + ", labels must be rank 2 (N, L) or rank 1 (N,)",
                kMedMnistHint);
  }
  if (ls[0] != is[0]) {
    throw Error(what,
                "N mismatch: '" + image_key + "' holds " + std::to_string(is[0]) + " images but '" + label_key +
                    "' holds " + std::to_string(ls[0]) + " labels",
                "both arrays must come from the same split");
  }
  const int64_t width = ls.size() == 2 ? ls[1] : 1;
  if (width == 0) throw Error(what, "'" + label_key + "' has shape " + shape_str(ls) + ", label width 0", kMedMnistHint);

  MedImageSet set;
  set.n = is[0];
  set.rows = is[1];
  set.cols = is[2];
  set.label_width = width;
  set.labels = labels.to_int64();  // (n, L)
  for (size_t i = 0; i < set.labels.size(); ++i) {
    if (set.labels[i] < 0) {
      throw Error(what,
                  "'" + label_key + "' element " + std::to_string(i) + " (sample " +
                      std::to_string(static_cast<int64_t>(i) / width) + ") is " + std::to_string(set.labels[i]) +
                      ", labels must be >= 0",
                  kMedMnistHint);
    }
  }

  if (!rgb) {
    set.channels = 1;
    set.pixels = std::move(images.bytes);  // (n, rows, cols)
  } else if (options.keep_channels) {
    set.channels = 3;
    set.pixels = std::move(images.bytes);  // (n, rows, cols, 3)
  } else {
    set.channels = 1;
    const size_t pixels = static_cast<size_t>(set.n * set.rows * set.cols);
    set.pixels.resize(pixels);  // (n, rows, cols) from (n, rows, cols, 3)
    const uint8_t* src = images.bytes.data();
    for (size_t p = 0; p < pixels; ++p) {
      set.pixels[p] = medmnist_rgb_to_gray(src[3 * p], src[3 * p + 1], src[3 * p + 2]);
    }
  }
  return set;
}

MedImageSet load_medmnist_split(const std::filesystem::path& path, const std::string& split,
                                const MedMnistOptions& options) {
  return load_medmnist_split(NpzFile(path), split, options);
}

MedMnist load_medmnist(const std::filesystem::path& path, const MedMnistOptions& options) {
  const NpzFile npz(path);
  MedMnist out;
  out.train = load_medmnist_split(npz, "train", options);
  out.val = load_medmnist_split(npz, "val", options);
  out.test = load_medmnist_split(npz, "test", options);
  return out;
}

}  // namespace spikefm
