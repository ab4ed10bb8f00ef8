// load_fashion_mnist on small synthetic directories (every consistency rule), and on the real files of
// the Debian package dataset-fashion-mnist when installed.
#include "datasets/fashion_mnist.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const fs::path kDebianDir = "/usr/share/datasets/fashion-mnist";

Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(d >> shift));
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::string error_of(const fs::path& dir, const std::string& split) {
  try {
    load_fashion_mnist(dir, split);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "load_fashion_mnist(" << dir << ", " << split << ") did not throw";
  return {};
}

class FashionMnistSyntheticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("spikefm_fmnist_test_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
    pixels_.resize(4 * 3 * 2);  // (4, 3, 2)
    std::iota(pixels_.begin(), pixels_.end(), uint8_t{100});
    labels_ = {9, 0, 5, 3};
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void write(const std::string& name, const Bytes& bytes, bool gzip = false) {
    const auto p = dir_ / name;
    if (gzip) {
      gzFile gz = gzopen(p.c_str(), "wb");
      ASSERT_NE(gz, nullptr);
      ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
      ASSERT_EQ(gzclose(gz), Z_OK);
    } else {
      std::ofstream f(p, std::ios::binary);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
  }
  void write_good(const std::string& prefix, bool gzip) {
    const std::string ext = gzip ? ".gz" : "";
    write(prefix + "-images-idx3-ubyte" + ext, idx_file({4, 3, 2}, pixels_), gzip);
    write(prefix + "-labels-idx1-ubyte" + ext, idx_file({4}, labels_), gzip);
  }

  fs::path dir_;
  Bytes pixels_, labels_;
};

TEST(FashionMnist, ClassNamesInLabelOrder) {
  const std::array<std::string, 10> expected = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  EXPECT_EQ(fashion_class_names(), expected);
}

TEST(FashionMnist, DefaultDirFollowsEnvironment) {
  const char* old = std::getenv("SPIKEFM_DATA_DIR");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::unsetenv("SPIKEFM_DATA_DIR");
  EXPECT_EQ(default_fashion_mnist_dir(), kDebianDir);
  ::setenv("SPIKEFM_DATA_DIR", "", 1);  // empty counts as unset
  EXPECT_EQ(default_fashion_mnist_dir(), kDebianDir);
  ::setenv("SPIKEFM_DATA_DIR", "/somewhere/else", 1);
  EXPECT_EQ(default_fashion_mnist_dir(), fs::path("/somewhere/else"));
  if (saved) {
    ::setenv("SPIKEFM_DATA_DIR", saved->c_str(), 1);
  } else {
    ::unsetenv("SPIKEFM_DATA_DIR");
  }
}

TEST_F(FashionMnistSyntheticTest, LoadsPlainTrainSplit) {
  write_good("train", false);
  const ImageSet s = load_fashion_mnist(dir_, "train");
  EXPECT_EQ(s.n, 4);
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.cols, 2);
  EXPECT_EQ(s.pixels, pixels_);
  EXPECT_EQ(s.labels, labels_);
}

TEST_F(FashionMnistSyntheticTest, LoadsGzipTestSplit) {
  write_good("t10k", true);
  const ImageSet s = load_fashion_mnist(dir_, "test");
  EXPECT_EQ(s.n, 4);
  EXPECT_EQ(s.pixels, pixels_);
  EXPECT_EQ(s.labels, labels_);
  // train files are absent: the error names both names it looked for.
  const std::string msg = error_of(dir_, "train");
  EXPECT_NE(msg.find("train-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, MixedPlainAndGzipFiles) {
  write("train-images-idx3-ubyte", idx_file({4, 3, 2}, pixels_));
  write("train-labels-idx1-ubyte.gz", idx_file({4}, labels_), true);
  EXPECT_EQ(load_fashion_mnist(dir_, "train").labels, labels_);
}

TEST_F(FashionMnistSyntheticTest, UnknownSplit) {
  write_good("train", false);
  const std::string msg = error_of(dir_, "validation");
  EXPECT_NE(msg.find("unknown split 'validation'"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, MissingDirectory) {
  const std::string msg = error_of(dir_ / "absent", "train");
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--data-dir"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, ImagesMustBe3D) {
  write("train-images-idx3-ubyte", idx_file({4, 6}, pixels_));
  write("train-labels-idx1-ubyte", idx_file({4}, labels_));
  const std::string msg = error_of(dir_, "train");
  EXPECT_NE(msg.find("train-images-idx3-ubyte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 dimensions"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, LabelsMustBe1D) {
  write("train-images-idx3-ubyte", idx_file({4, 3, 2}, pixels_));
  write("train-labels-idx1-ubyte", idx_file({2, 2}, labels_));
  const std::string msg = error_of(dir_, "train");
  EXPECT_NE(msg.find("train-labels-idx1-ubyte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 dimension"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, CountsMustMatch) {
  write("train-images-idx3-ubyte", idx_file({4, 3, 2}, pixels_));
  write("train-labels-idx1-ubyte", idx_file({3}, {1, 2, 3}));
  const std::string msg = error_of(dir_, "train");
  EXPECT_NE(msg.find("holds 4 images but train-labels-idx1-ubyte holds 3 labels"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, LabelsMustBeBelow10) {
  write("train-images-idx3-ubyte", idx_file({4, 3, 2}, pixels_));
  write("train-labels-idx1-ubyte", idx_file({4}, {1, 2, 10, 3}));
  const std::string msg = error_of(dir_, "train");
  EXPECT_NE(msg.find("label 2 is 10"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train-labels-idx1-ubyte"), std::string::npos) << msg;
}

TEST_F(FashionMnistSyntheticTest, EmptySetIsRefused) {
  write("train-images-idx3-ubyte", idx_file({0, 28, 28}, {}));
  write("train-labels-idx1-ubyte", idx_file({0}, {}));
  EXPECT_NE(error_of(dir_, "train").find("empty"), std::string::npos);
}

TEST_F(FashionMnistSyntheticTest, DamagedFileErrorNamesIt) {
  write("train-images-idx3-ubyte", idx_file({5, 3, 2}, pixels_));  // 24 of 30 bytes
  write("train-labels-idx1-ubyte", idx_file({4}, labels_));
  const std::string msg = error_of(dir_, "train");
  EXPECT_NE(msg.find("train-images-idx3-ubyte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

// The real files. Reference values computed independently with Python's gzip + struct modules.
TEST(FashionMnistReal, LoadsDebianPackage) {
  if (!fs::is_directory(kDebianDir)) GTEST_SKIP() << kDebianDir << " missing (package dataset-fashion-mnist)";
  const ImageSet train = load_fashion_mnist(kDebianDir, "train");
  const ImageSet test = load_fashion_mnist(kDebianDir, "test");
  EXPECT_EQ(train.n, 60000);
  EXPECT_EQ(test.n, 10000);
  for (const ImageSet* s : {&train, &test}) {
    EXPECT_EQ(s->rows, 28);
    EXPECT_EQ(s->cols, 28);
    EXPECT_EQ(static_cast<int64_t>(s->pixels.size()), s->n * 28 * 28);
    ASSERT_EQ(static_cast<int64_t>(s->labels.size()), s->n);
    std::array<int64_t, kFashionClasses> counts{};
    for (uint8_t l : s->labels) ++counts[l];
    for (int64_t c : counts) EXPECT_EQ(c, s->n / kFashionClasses);  // both splits are balanced
  }
  EXPECT_EQ(Bytes(train.labels.begin(), train.labels.begin() + 10), (Bytes{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(Bytes(test.labels.begin(), test.labels.begin() + 10), (Bytes{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  auto pixel_sum = [](const ImageSet& s, int64_t i) {
    return std::accumulate(s.pixels.begin() + i * 784, s.pixels.begin() + (i + 1) * 784, int64_t{0});
  };
  EXPECT_EQ(pixel_sum(train, 0), 76247);
  EXPECT_EQ(pixel_sum(train, 59999), 16684);
  EXPECT_EQ(pixel_sum(test, 0), 33456);
  EXPECT_EQ(pixel_sum(test, 9999), 24390);
}

}  // namespace
}  // namespace spikefm
