#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "common/error.h"
#include "common/h5_file.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;
using spikefm::Error;
using spikefm::H5File;
using spikefm::Shape;
using spikefm::test::slurp;
using spikefm::test::spit;
using spikefm::test::TempDir;

namespace {

// Expects `f` to throw spikefm::Error whose message contains `needle`.
template <typename Fn>
void expect_error(Fn&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected spikefm::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(H5File, RoundTripsEveryDtypeAttributesAndStrings) {
  TempDir d;
  std::mt19937 rng(7);
  std::vector<float> f32(6 * 5);
  for (auto& v : f32) v = std::uniform_real_distribution<float>(-3, 3)(rng);
  std::vector<int64_t> i64 = {1, -2, 3, 1LL << 40};
  std::vector<int8_t> i8 = {-128, 0, 127};
  std::vector<std::string> words = {"<pad>", "ankle", "boot", "t-shirt"};
  {
    H5File f = H5File::create(d / "x.h5");
    f.write("/a/b/w", f32.data(), {6, 5});
    f.write("/ints", i64.data(), {2, 2});
    f.write("/q", i8.data(), {3});
    f.write_strings("/vocab", words, {4});
    f.set_attr("/", "format_version", int64_t{3});
    f.set_attr("/a", "scale", 0.125);
    f.set_attr("/a/b/w", "name", std::string("weight"));
  }
  H5File f = H5File::open(d / "x.h5");
  Shape s;
  EXPECT_EQ(f.read<float>("/a/b/w", &s), f32);
  EXPECT_EQ(s, (Shape{6, 5}));
  EXPECT_EQ(f.read_exact<int64_t>("/ints", {2, 2}), i64);
  EXPECT_EQ(f.read<int8_t>("/q"), i8);
  EXPECT_EQ(f.read_strings("/vocab"), words);
  EXPECT_EQ(f.attr_int("/", "format_version"), 3);
  EXPECT_DOUBLE_EQ(f.attr_double("/a", "scale"), 0.125);
  EXPECT_EQ(f.attr_string("/a/b/w", "name"), "weight");
  EXPECT_EQ(f.children("/a"), std::vector<std::string>{"b"});
  EXPECT_TRUE(f.is_group("/a/b"));
  EXPECT_TRUE(f.is_dataset("/a/b/w"));
  EXPECT_FALSE(f.exists("/a/c/w"));  // missing intermediate group: false, not an HDF5 failure
}

TEST(H5File, ShapeMismatchNamesThePathAndBothShapes) {
  TempDir d;
  std::vector<float> w(12, 1.0f);
  {
    H5File f = H5File::create(d / "x.h5");
    f.write("/params/w", w.data(), {3, 4});
  }
  H5File f = H5File::open(d / "x.h5");
  expect_error([&] { f.read_exact<float>("/params/w", {4, 3}); }, "/params/w: shape (3, 4) does not match the expected (4, 3)");
  expect_error([&] { f.read<int32_t>("/params/w"); }, "stored as float, expected integer");
  expect_error([&] { f.read<float>("/params/missing"); }, "/params/missing: no such dataset");
  expect_error([&] { f.attr_int("/params", "format_version"); }, "'format_version'");
}

TEST(H5File, RejectsMissingNonHdf5AndTruncatedFiles) {
  TempDir d;
  expect_error([&] { H5File::open(d / "absent.h5"); }, "no such file");
  spit(d / "text.h5", "this is not an HDF5 file at all");
  expect_error([&] { H5File::open(d / "text.h5"); }, "not an HDF5 file");

  std::vector<float> w(4096, 0.5f);
  {
    H5File f = H5File::create(d / "full.h5");
    f.write("/w", w.data(), {64, 64});
  }
  std::string bytes = slurp(d / "full.h5");
  spit(d / "cut.h5", bytes.substr(0, bytes.size() / 2));
  // Opening or reading the cut file must fail with an Error, never return data.
  expect_error([&] {
    H5File f = H5File::open(d / "cut.h5");
    f.read<float>("/w");
  }, "cut.h5");
}

TEST(H5File, BitFlipInTensorDataFailsTheChecksum) {
  TempDir d;
  // A distinctive pattern so the test can find the tensor's bytes in the file independently of HDF5.
  std::vector<float> w(256);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1000.0f + static_cast<float>(i);
  {
    H5File f = H5File::create(d / "x.h5");
    f.write("/w", w.data(), {16, 16});
  }
  std::string bytes = slurp(d / "x.h5");
  std::string needle(reinterpret_cast<const char*>(w.data()), 64);
  size_t pos = bytes.find(needle);
  ASSERT_NE(pos, std::string::npos) << "tensor bytes not found in the file";
  bytes[pos + 40] ^= 0x01;  // flip the lowest bit of one float: a silent 1-ulp change without the checksum
  spit(d / "x.h5", bytes);
  H5File f = H5File::open(d / "x.h5");
  expect_error([&] { f.read<float>("/w"); }, "checksum");
}
