// Tests of ann_ref/quant_store.h: the /quant group written and read back unchanged, and every kind of
// damage to it refused naming the path inside the file.
#include "ann_ref/quant_store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"
#include "common/h5_file.h"
#include "tests/test_random.h"
#include "tests/test_tmp.h"

namespace spikefm {
namespace {

// Three layers at three widths, one with a ragged last group (37 columns in groups of 8) and one
// per-channel layer.
QuantStore sample_store() {
  QuantStore s;
  s.method = "gptq";
  s.budget_bits = 3.5;
  s.hw = "loihi";
  s.qat_steps = 17;
  const std::vector<float> w = test::randn(5 * 37, 7);
  s.layers["dec_blocks.0.mlp.fc1"] = quantize_rtn(w.data(), 5, 37, QuantSpec{4, 8, ScaleType::fp16});
  s.layers["enc_blocks.1.attn.qkv"] = quantize_rtn(w.data(), 5, 37, QuantSpec{2, 16, ScaleType::fp16});
  s.layers["lm_head"] = quantize_rtn(w.data(), 5, 37, QuantSpec{8, 0, ScaleType::fp16});
  return s;
}

std::filesystem::path write_sample(const test::TempDir& d) {
  const auto p = d / "q.h5";
  H5File f = H5File::create(p);
  write_quant_store(f, sample_store());
  f.close();
  return p;
}

// Replaces dataset `ds` of file p by change(its values), with the given shape.
template <class T, class F>
void rewrite(const std::filesystem::path& p, const std::string& ds, const Shape& shape, F&& change) {
  H5File f = H5File::open_rw(p);
  std::vector<T> v = f.read<T>(ds);
  change(v);
  f.remove(ds);
  f.write(ds, v.data(), shape);
}

std::string read_error(const std::filesystem::path& p) {
  return test::error_of([&] { read_quant_store(H5File::open(p)); });
}

TEST(QuantStore, RoundTripKeepsCodesScalesSpecsAndRunAttributes) {
  test::TempDir d;
  const QuantStore want = sample_store();
  const QuantStore got = read_quant_store(H5File::open(write_sample(d)));
  EXPECT_EQ(got.method, "gptq");
  EXPECT_EQ(got.budget_bits, 3.5);
  EXPECT_EQ(got.hw, "loihi");
  EXPECT_EQ(got.qat_steps, 17);
  ASSERT_EQ(got.layers.size(), want.layers.size());
  for (const auto& [name, q] : want.layers) {
    ASSERT_TRUE(got.layers.count(name)) << name;
    const QuantizedMatrix& g = got.layers.at(name);
    EXPECT_EQ(g.rows, q.rows);
    EXPECT_EQ(g.cols, q.cols);
    EXPECT_EQ(g.spec.bits, q.spec.bits);
    EXPECT_EQ(g.groups_per_row(), q.groups_per_row()) << name;
    EXPECT_EQ(g.packed, q.packed) << name;
    EXPECT_EQ(g.scales, q.scales) << name;
    EXPECT_EQ(g.dequantize(), q.dequantize()) << name;
  }
  EXPECT_EQ(quant_path("dec_blocks.0.mlp.fc1"), "/quant/dec_blocks/0/mlp/fc1/weight");
}

TEST(QuantStore, AFileWithoutTheGroupHasAnEmptyStore) {
  test::TempDir d;
  H5File f = H5File::create(d / "plain.h5");
  f.create_group("/params");
  f.close();
  EXPECT_TRUE(read_quant_store(H5File::open(d / "plain.h5")).empty());
}

TEST(QuantStore, DamageIsRefusedNamingThePath) {
  test::TempDir d;
  const std::string fc1 = "/quant/dec_blocks/0/mlp/fc1/weight";
  {  // an unsupported width
    const auto p = write_sample(d);
    H5File::open_rw(p).set_attr(fc1, "bits", int64_t{3});
    const std::string e = read_error(p);
    EXPECT_NE(e.find(fc1), std::string::npos) << e;
    EXPECT_NE(e.find("bits = 3"), std::string::npos) << e;
  }
  {  // a group wider than the row
    const auto p = write_sample(d);
    H5File::open_rw(p).set_attr(fc1, "group", int64_t{38});
    EXPECT_NE(read_error(p).find("group = 38"), std::string::npos);
  }
  {  // codes of the wrong row length for the stated width
    const auto p = write_sample(d);
    H5File::open_rw(p).set_attr(fc1, "bits", int64_t{8});
    const std::string e = read_error(p);
    EXPECT_NE(e.find(fc1 + "/codes"), std::string::npos) << e;
    EXPECT_NE(e.find("bytes per row"), std::string::npos) << e;
  }
  {  // a NaN scale
    const auto p = write_sample(d);
    rewrite<float>(p, fc1 + "/scales", {5, 5}, [](std::vector<float>& s) { s[3] = std::numeric_limits<float>::quiet_NaN(); });
    const std::string e = read_error(p);
    EXPECT_NE(e.find(fc1 + "/scales"), std::string::npos) << e;
    EXPECT_NE(e.find("entry 3"), std::string::npos) << e;
  }
  {  // the int4 pattern 1000 (-8), outside the symmetric range the quantizers write
    const auto p = write_sample(d);
    rewrite<uint8_t>(p, fc1 + "/codes", {5, 19}, [](std::vector<uint8_t>& c) { c[0] = static_cast<uint8_t>((c[0] & 0xF0) | 0x08); });
    const std::string e = read_error(p);
    EXPECT_NE(e.find(fc1 + "/codes"), std::string::npos) << e;
    EXPECT_NE(e.find("symmetric range"), std::string::npos) << e;
  }
  {  // a missing attribute
    const auto p = write_sample(d);
    {
      H5File f = H5File::open_rw(p);
      f.remove(fc1);
      f.write(fc1 + "/codes", std::vector<uint8_t>(5 * 19).data(), {5, 19});
    }
    const std::string e = read_error(p);
    EXPECT_NE(e.find("'bits' is missing"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace spikefm
