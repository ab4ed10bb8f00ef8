// The NIfTI-1 reader (datasets/nifti.h) against two independent sources of truth:
//   - small files written here field by field from the layout of nifti1.h (little and big endian,
//     every readable datatype, 2-D to 5-D, with and without scaling, extensions, trailing bytes,
//     plain and gzip'd by zlib in one or several members); the expected values are the ones the test
//     wrote, passed through value = stored * slope + inter evaluated here;
//   - the real MR series default_nifti_mr_path() (and the other NIfTI-1 files shipped with nibabel),
//     compared value for value with nibabel itself run by /usr/bin/python3. Those tests skip
//     (GTEST_SKIP) when nibabel or its files are absent.
// Damaged, truncated and unsupported files must give a spikefm::Error naming the file and the header
// field or offset, and nothing else.
#include "datasets/nifti.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/test_process.h"
#include "tests/test_reader_files.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const char* kPython = "/usr/bin/python3";

static_assert(std::endian::native == std::endian::little, "the writers below byte-swap for big endian only");

// ---------------------------------------------------------------------------------------------------------
// Writing NIfTI-1 by hand (nifti1.h).

// `v` in the file's byte order at b[off..].
template <typename T>
void put(Bytes& b, size_t off, T v, bool big) {
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  if (big) std::reverse(raw, raw + sizeof(T));
  std::copy(raw, raw + sizeof(T), b.begin() + static_cast<std::ptrdiff_t>(off));
}

template <typename T>
Bytes encode(const std::vector<T>& values, bool big) {
  Bytes b(values.size() * sizeof(T));
  for (size_t i = 0; i < values.size(); ++i) put(b, i * sizeof(T), values[i], big);
  return b;
}

// The header fields the reader interprets; the defaults describe a valid 2 x 3 x 4 int16 volume.
struct Spec {
  bool big = false;
  int32_t sizeof_hdr = 348;
  std::array<int16_t, 8> dim{3, 2, 3, 4, 1, 1, 1, 1};
  int16_t datatype = 4, bitpix = 16;
  std::array<float, 8> pixdim{-1, 0.5f, 0.75f, 2.5f, 1, 1, 1, 1};
  float vox_offset = 352, slope = 0, inter = 0;
  uint8_t xyzt_units = 2 | 8;  // mm, s
  std::string descrip = "spikefm test volume";
  int16_t qform_code = 1, sform_code = 2;
  std::string magic{"n+1\0", 4};
  Bytes extensions;  // written after the extension flag (which is 1 when this is non-empty)
};

// Header, extension flag, extensions, padding up to vox_offset.
Bytes header(const Spec& s) {
  Bytes b(348 + 4, 0);
  put(b, 0, s.sizeof_hdr, s.big);
  for (size_t i = 0; i < 8; ++i) put(b, 40 + 2 * i, s.dim[i], s.big);
  put(b, 70, s.datatype, s.big);
  put(b, 72, s.bitpix, s.big);
  for (size_t i = 0; i < 8; ++i) put(b, 76 + 4 * i, s.pixdim[i], s.big);
  put(b, 108, s.vox_offset, s.big);
  put(b, 112, s.slope, s.big);
  put(b, 116, s.inter, s.big);
  b[123] = s.xyzt_units;
  std::copy(s.descrip.begin(), s.descrip.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(s.descrip.size(), 79)),
            b.begin() + 148);
  put(b, 252, s.qform_code, s.big);
  put(b, 254, s.sform_code, s.big);
  std::copy(s.magic.begin(), s.magic.end(), b.begin() + 344);
  if (!s.extensions.empty()) {
    b[348] = 1;
    b.insert(b.end(), s.extensions.begin(), s.extensions.end());
  }
  if (std::isfinite(s.vox_offset) && s.vox_offset > static_cast<float>(b.size()) && s.vox_offset < 1e6f) {
    b.resize(static_cast<size_t>(s.vox_offset), 0);
  }
  return b;
}

Bytes nifti(const Spec& s, const Bytes& voxels) {
  Bytes b = header(s);
  b.insert(b.end(), voxels.begin(), voxels.end());
  return b;
}

// One gzip member (zlib's deflate with the gzip wrapper).
Bytes gzip(const Bytes& in, int level = Z_DEFAULT_COMPRESSION) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, static_cast<uLong>(in.size())));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// The valid default volume: 2 x 3 x 4 int16, values spanning the type.
std::vector<int16_t> default_values() {
  std::vector<int16_t> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int16_t>(1371 * static_cast<int>(i) - 15000);
  v[0] = -32768;
  v[1] = 32767;
  v[2] = -1;
  return v;
}
Bytes small_valid(bool big) {
  Spec s;
  s.big = big;
  return nifti(s, encode(default_values(), big));
}

// ---------------------------------------------------------------------------------------------------------
// Files, processes, errors.

using NiftiTest = test::ReaderFileTest;

// The message of the spikefm::Error that read_nifti throws, or "" (with a test failure) when it does not.
std::string error_of(const fs::path& p) { return test::reader_error([](const fs::path& q) { read_nifti(q); }, p); }

using spikefm::test::run_command;

// ---------------------------------------------------------------------------------------------------------
// Files written here.

TEST_F(NiftiTest, LittleEndianInt16ThreeDReadsBackExactly) {
  const std::vector<int16_t> v = default_values();
  const NiftiVolume vol = read_nifti(write("le.nii", small_valid(false)));
  EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{2, 3, 4, 1}));
  EXPECT_EQ(vol.voxels(), 24);
  EXPECT_EQ(vol.pixdim, (std::array<double, 4>{0.5, 0.75, 2.5, 0}));  // t unused in a 3-D image
  EXPECT_EQ(vol.datatype, 4);
  EXPECT_FALSE(vol.big_endian);
  EXPECT_EQ(vol.scl_slope, 0.0);  // as stored: no scaling
  EXPECT_EQ(vol.scl_inter, 0.0);
  EXPECT_EQ(vol.qform_code, 1);
  EXPECT_EQ(vol.sform_code, 2);
  EXPECT_EQ(vol.xyzt_units, 10);
  EXPECT_EQ(vol.descrip, "spikefm test volume");
  ASSERT_EQ(vol.data.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(vol.data[i], static_cast<float>(v[i])) << i;
  EXPECT_EQ(vol.at(1, 0, 0), 32767.0f);  // x fastest
  EXPECT_EQ(vol.at(0, 1, 0), static_cast<float>(v[2]));
  EXPECT_EQ(vol.at(1, 2, 3), static_cast<float>(v[23]));
}

// Big endian, float32, 4-D (2 volumes), slope 2.5 / intercept -3, time in ms (converted to s).
TEST_F(NiftiTest, BigEndianFloat32FourDScaledReadsBack) {
  Spec s;
  s.big = true;
  s.dim = {4, 3, 2, 2, 2, 1, 1, 1};
  s.datatype = 16;
  s.bitpix = 32;
  s.pixdim = {1, 1.25f, 1.5f, 3, 2000, 0, 0, 0};
  s.xyzt_units = 2 | 16;  // mm, ms
  s.slope = 2.5f;
  s.inter = -3;
  s.qform_code = 0;
  s.sform_code = 4;
  std::vector<float> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.37f * static_cast<float>(i) - 4.1f;
  v[3] = -1e30f;
  v[4] = 1e-30f;
  v[5] = -0.0f;
  const NiftiVolume vol = read_nifti(write("be.nii", nifti(s, encode(v, true))));
  EXPECT_TRUE(vol.big_endian);
  EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{3, 2, 2, 2}));
  EXPECT_EQ(vol.voxels(), 12);
  EXPECT_DOUBLE_EQ(vol.pixdim[0], 1.25);
  EXPECT_DOUBLE_EQ(vol.pixdim[1], 1.5);
  EXPECT_DOUBLE_EQ(vol.pixdim[2], 3.0);
  EXPECT_DOUBLE_EQ(vol.pixdim[3], 2.0);  // 2000 ms
  EXPECT_EQ(vol.datatype, 16);
  EXPECT_EQ(vol.scl_slope, 2.5);
  EXPECT_EQ(vol.scl_inter, -3.0);
  EXPECT_EQ(vol.qform_code, 0);
  EXPECT_EQ(vol.sform_code, 4);
  ASSERT_EQ(vol.data.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(vol.data[i], static_cast<float>(static_cast<double>(v[i]) * 2.5 - 3.0)) << i;
  }
  EXPECT_EQ(vol.at(0, 0, 0, 1), vol.data[12]);
}

// uint8 with scaling, an extension between the header and vox_offset, trailing bytes after the
// voxels; plain, gzip'd in one member, in three members split mid-header and mid-data, and with
// zero padding after the last member.
TEST_F(NiftiTest, Uint8WithExtensionAndTrailingBytesPlainAndGzip) {
  Spec s;
  s.dim = {3, 4, 3, 2, 1, 1, 1, 1};
  s.datatype = 2;
  s.bitpix = 8;
  s.slope = 0.5f;
  s.inter = 10;
  s.vox_offset = 384;
  s.extensions = {16, 0, 0, 0, 6, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};  // esize 16, ecode 6 (comment)
  s.descrip = std::string(79, 'd');
  Bytes v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 11);
  v[0] = 255;
  Bytes file = nifti(s, v);
  ASSERT_EQ(file.size(), 384u + 24u);
  const Bytes trailing = {1, 2, 3, 4, 5, 6, 7};
  file.insert(file.end(), trailing.begin(), trailing.end());

  Bytes multi;
  for (auto [from, to] : {std::pair<size_t, size_t>{0, 100}, {100, 390}, {390, file.size()}}) {
    const Bytes part =
        gzip(Bytes(file.begin() + static_cast<std::ptrdiff_t>(from), file.begin() + static_cast<std::ptrdiff_t>(to)));
    multi.insert(multi.end(), part.begin(), part.end());
  }
  Bytes padded = gzip(file);
  padded.resize(padded.size() + 512, 0);

  for (const auto& [name, bytes] : {std::pair<std::string, Bytes>{"u8.nii", file},
                                    {"u8.nii.gz", gzip(file)},
                                    {"u8_fast.nii.gz", gzip(file, 1)},
                                    {"u8_multi.nii.gz", multi},
                                    {"u8_padded.nii.gz", padded}}) {
    SCOPED_TRACE(name);
    const NiftiVolume vol = read_nifti(write(name, bytes));
    EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{4, 3, 2, 1}));
    EXPECT_EQ(vol.datatype, 2);
    EXPECT_EQ(vol.descrip, std::string(79, 'd'));
    ASSERT_EQ(vol.data.size(), v.size());
    for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(vol.data[i], static_cast<float>(v[i] * 0.5 + 10)) << i;
  }
}

// Every readable datatype, values at the ends of its range, both byte orders, plain and gzip'd.
template <typename T>
void check_type(NiftiTest& t, int16_t code, std::vector<T> values) {
  for (bool big : {false, true}) {
    for (bool gz : {false, true}) {
      SCOPED_TRACE("datatype " + std::to_string(code) + (big ? " big" : " little") + (gz ? " gzip" : ""));
      Spec s;
      s.big = big;
      s.dim = {1, static_cast<int16_t>(values.size()), 1, 1, 1, 1, 1, 1};
      s.datatype = code;
      s.bitpix = static_cast<int16_t>(8 * sizeof(T));
      Bytes file = nifti(s, encode(values, big));
      if (gz) file = gzip(file);
      const NiftiVolume vol = read_nifti(t.write("type.nii", file));
      EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{static_cast<int64_t>(values.size()), 1, 1, 1}));
      EXPECT_EQ(vol.pixdim, (std::array<double, 4>{0.5, 0, 0, 0}));
      EXPECT_EQ(vol.datatype, code);
      EXPECT_EQ(vol.big_endian, big);
      ASSERT_EQ(vol.data.size(), values.size());
      for (size_t i = 0; i < values.size(); ++i) {
        EXPECT_EQ(vol.data[i], static_cast<float>(static_cast<double>(values[i]))) << i;
      }
    }
  }
}

TEST_F(NiftiTest, EveryReadableDatatypeInBothByteOrders) {
  using L8 = std::numeric_limits<int8_t>;
  using L16 = std::numeric_limits<int16_t>;
  using L32 = std::numeric_limits<int32_t>;
  check_type<uint8_t>(*this, 2, {0, 1, 127, 128, 254, 255});
  check_type<int16_t>(*this, 4, {L16::min(), -1, 0, 1, 0x1234, L16::max()});
  check_type<int32_t>(*this, 8, {L32::min(), -16777216, -1, 0, 0x01020304, 16777215, L32::max()});
  check_type<float>(*this, 16, {-3.4e38f, -1.5f, -0.0f, 1e-40f, 0.1f, 3.4e38f});
  check_type<double>(*this, 64, {-3.0e38, -1.0 / 3.0, 0.0, 1e-300, 2.0, 65504.25, 3.0e38});
  check_type<int8_t>(*this, 256, {L8::min(), -1, 0, 1, L8::max()});
  check_type<uint16_t>(*this, 512, {0, 1, 0x1234, 0x8000, 0xFFFF});
  check_type<uint32_t>(*this, 768, {0u, 1u, 0x01020304u, 0x80000000u, 16777217u, 0xFFFFFFFFu});
}

TEST_F(NiftiTest, GzipIsDetectedByMagicBytesNotByName) {
  const Bytes plain = small_valid(false);
  const NiftiVolume a = read_nifti(write("gz_named.nii", gzip(plain)));  // gzip'd, named .nii
  const NiftiVolume b = read_nifti(write("plain_named.nii.gz", plain));  // plain, named .nii.gz
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.data.size(), 24u);
}

// pixdim is given in mm and s whatever xyzt_units says; unknown units (0) leave the values as stored.
TEST_F(NiftiTest, PixdimIsConvertedToMmAndSeconds) {
  struct Case {
    uint8_t units;
    std::array<float, 8> pixdim;
    std::array<double, 4> want;
  };
  for (const Case& c : {Case{1 | 24, {1, 0.001f, 0.002f, 0.004f, 500000, 0, 0, 0}, {1, 2, 4, 0.5}},  // m, us
                        Case{3 | 16, {1, 250, 500, 1000, 1500, 0, 0, 0}, {0.25, 0.5, 1, 1.5}},       // um, ms
                        Case{0, {1, 3, 4, 5, 6, 0, 0, 0}, {3, 4, 5, 6}}}) {                          // unknown
    Spec s;
    s.dim = {4, 1, 1, 1, 2, 1, 1, 1};
    s.xyzt_units = c.units;
    s.pixdim = c.pixdim;
    const NiftiVolume vol = read_nifti(write("units.nii", nifti(s, encode(std::vector<int16_t>{7, 8}, false))));
    EXPECT_EQ(vol.xyzt_units, c.units);
    for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(vol.pixdim[i], c.want[i], 1e-6 * c.want[i]) << int(c.units) << " " << i;
  }
}

// dim[0] counts the dimensions used: sizes past it are ignored (whatever they hold); a 5-D header
// with dim[5] = 1 is a 4-D volume.
TEST_F(NiftiTest, Dim0SaysWhichSizesCount) {
  Spec s;
  s.dim = {2, 3, 2, -7, 0, 99, 0, 0};  // dim[3..7] unused
  s.pixdim = {1, 1, 2, NAN, NAN, 0, 0, 0};
  NiftiVolume vol = read_nifti(write("2d.nii", nifti(s, encode(std::vector<int16_t>{1, 2, 3, 4, 5, 6}, false))));
  EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{3, 2, 1, 1}));
  EXPECT_EQ(vol.pixdim, (std::array<double, 4>{1, 2, 0, 0}));

  s.dim = {5, 1, 2, 1, 2, 1, 0, 0};
  s.pixdim = {1, 1, 1, 1, 1, 1, 0, 0};
  vol = read_nifti(write("5d.nii", nifti(s, encode(std::vector<int16_t>{1, 2, 3, 4}, false))));
  EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{1, 2, 1, 2}));
  EXPECT_EQ(vol.data, (std::vector<float>{1, 2, 3, 4}));
}

// ---------------------------------------------------------------------------------------------------------
// Refused files.

TEST_F(NiftiTest, MissingFileIsRefused) {
  const std::string msg = error_of(dir_ / "absent.nii");
  EXPECT_HAS(msg, "absent.nii");
  EXPECT_HAS(msg, "does not exist");
}

TEST_F(NiftiTest, WrongMagicIsRefused) {
  for (const std::string& magic : {std::string("\0\0\0\0", 4), std::string("n+2\0", 4), std::string("n+1x", 4)}) {
    Spec s;
    s.magic = magic;
    const std::string msg = error_of(write("magic.nii", nifti(s, encode(default_values(), false))));
    EXPECT_HAS(msg, "magic.nii");
    EXPECT_HAS(msg, "magic (offset 344)");
    EXPECT_HAS(msg, "not \"n+1\\0\"");
  }
  Spec s;
  s.magic = std::string("\x01n1\0", 4);
  EXPECT_HAS(error_of(write("magic.nii", nifti(s, encode(default_values(), false)))), "\"\\x01n1\\0\"");
}

TEST_F(NiftiTest, HdrImgPairIsRefusedWithAHint) {
  Spec s;
  s.magic = std::string("ni1\0", 4);
  s.vox_offset = 0;  // what a .hdr holds: the voxels are in the .img
  const std::string msg = error_of(write("pair.hdr", header(s)));
  EXPECT_HAS(msg, "pair.hdr");
  EXPECT_HAS(msg, "magic (offset 344) is \"ni1\\0\"");
  EXPECT_HAS(msg, ".hdr + .img");
  EXPECT_HAS(msg, "single .nii");
}

TEST_F(NiftiTest, Nifti2IsRefusedByName) {
  for (bool big : {false, true}) {
    Bytes b(540 + 4 + 16, 0);
    put(b, 0, int32_t{540}, big);
    std::copy_n("n+2\0\r\n\032\n", 8, b.begin() + 4);
    const std::string msg = error_of(write("two.nii", b));
    EXPECT_HAS(msg, "two.nii");
    EXPECT_HAS(msg, "sizeof_hdr (offset 0) is 540");
    EXPECT_HAS(msg, "NIfTI-2");
  }
  // sizeof_hdr neither 348 nor 540 in either order: not NIfTI
  Spec s;
  s.sizeof_hdr = 349;
  EXPECT_HAS(error_of(write("size.nii", nifti(s, {}))), "sizeof_hdr (offset 0) is 349 read little-endian");
  const std::string text = "this is a text file, not an image, long enough for a header? no.";
  EXPECT_HAS(error_of(write("text.nii", Bytes(text.begin(), text.end()))), "not a NIfTI-1 file");
}

TEST_F(NiftiTest, BadDimsAreRefused) {
  struct Case {
    std::array<int16_t, 8> dim;
    std::string needle;
  };
  for (const Case& c :
       {Case{{0, 2, 3, 4, 1, 1, 1, 1}, "dim[0] = 0"}, Case{{8, 2, 3, 4, 1, 1, 1, 1}, "dim[0] = 8"},
        Case{{-3, 2, 3, 4, 1, 1, 1, 1}, "dim[0] = -3"}, Case{{3, 2, 0, 4, 1, 1, 1, 1}, "dim[2] = 0"},
        Case{{4, 2, 3, 4, -5, 1, 1, 1}, "dim[4] = -5"}, Case{{5, 2, 3, 4, 1, 2, 1, 1}, "dim[5] = 2; only up to 4-D"},
        Case{{7, 2, 3, 4, 1, 1, 1, 3}, "dim[7] = 3"}}) {
    Spec s;
    s.dim = c.dim;
    const std::string msg = error_of(write("dim.nii", nifti(s, encode(default_values(), false))));
    EXPECT_HAS(msg, "dim.nii");
    EXPECT_HAS(msg, "dim (offset 40)");
    EXPECT_HAS(msg, c.needle);
  }
}

TEST_F(NiftiTest, UnsupportedDatatypesAreRefusedByCode) {
  struct Case {
    int16_t code, bitpix;
    const char* name;
  };
  for (const Case& c : {Case{32, 64, "complex64"}, Case{128, 24, "RGB24"}, Case{2304, 32, "RGBA32"},
                        Case{1024, 64, "int64"}, Case{1536, 128, "float128"}, Case{1792, 128, "complex128"},
                        Case{1, 1, "binary"}, Case{0, 0, "DT_UNKNOWN"}, Case{3, 16, "not a NIfTI-1 datatype code"}}) {
    Spec s;
    s.datatype = c.code;
    s.bitpix = c.bitpix;
    const std::string msg = error_of(write("dt.nii", nifti(s, Bytes(24 * 16, 0))));
    EXPECT_HAS(msg, "dt.nii");
    EXPECT_HAS(msg, "datatype (offset 70) is " + std::to_string(c.code) + " (" + c.name + ")");
  }
}

TEST_F(NiftiTest, BitpixMustMatchTheDatatype) {
  Spec s;
  s.bitpix = 8;
  const std::string msg = error_of(write("bitpix.nii", nifti(s, encode(default_values(), false))));
  EXPECT_HAS(msg, "bitpix (offset 72) is 8 but datatype 4 (int16) has 16 bits");
}

TEST_F(NiftiTest, NonFiniteFloatVoxelsAreRefused) {
  Spec s;
  s.datatype = 16;
  s.bitpix = 32;
  std::vector<float> v(24, 1.0f);
  v[5] = std::numeric_limits<float>::quiet_NaN();  // x = 1, y = 2, z = 0
  std::string msg = error_of(write("nan.nii", nifti(s, encode(v, false))));
  EXPECT_HAS(msg, "nan.nii");
  EXPECT_HAS(msg, "voxel (x, y, z, t) = (1, 2, 0, 0) at byte 372 is nan");

  s.big = true;
  s.datatype = 64;
  s.bitpix = 64;
  std::vector<double> d(24, 1.0);
  d[23] = -std::numeric_limits<double>::infinity();
  msg = error_of(write("inf.nii.gz", gzip(nifti(s, encode(d, true)))));
  EXPECT_HAS(msg, "voxel (x, y, z, t) = (1, 2, 3, 0) at byte " + std::to_string(352 + 23 * 8) + " is -inf");

  d[23] = 1e300;  // finite, but not a float
  EXPECT_HAS(error_of(write("big.nii", nifti(s, encode(d, true)))), "outside the float range");

  Spec i;  // int16 whose scaled value overflows float
  i.slope = 1e38f;
  EXPECT_HAS(error_of(write("scaled.nii", nifti(i, encode(default_values(), false)))), "outside the float range");
}

TEST_F(NiftiTest, NonFiniteScalingAndPixdimAreRefused) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  struct Case {
    float slope, inter;
    std::string needle;
  };
  for (const Case& c :
       {Case{nan, 0, "scl_slope (offset 112) is nan"}, Case{inf, 0, "scl_slope (offset 112) is inf"},
        Case{2, nan, "scl_inter (offset 116) is nan"}, Case{0, -inf, "scl_inter (offset 116) is -inf"}}) {
    Spec s;
    s.slope = c.slope;
    s.inter = c.inter;
    EXPECT_HAS(error_of(write("scl.nii", nifti(s, encode(default_values(), false)))), c.needle);
  }
  Spec s;
  s.pixdim[2] = inf;
  EXPECT_HAS(error_of(write("pixdim.nii", nifti(s, encode(default_values(), false)))),
             "pixdim (offset 76): pixdim[2] is inf");
}

TEST_F(NiftiTest, VoxOffsetBelow352OrFractionalIsRefused) {
  for (float off : {0.0f, 348.0f, 351.0f, 352.5f, -1.0f, std::numeric_limits<float>::quiet_NaN(), 3e9f}) {
    Spec s;
    s.vox_offset = off;
    const std::string msg = error_of(write("off.nii", nifti(s, encode(default_values(), false))));
    EXPECT_HAS(msg, "vox_offset (offset 108)");
    EXPECT_HAS(msg, "whole number >= 352");
  }
}

TEST_F(NiftiTest, ShortVoxelDataIsRefusedNamingTheBytes) {
  Bytes b = small_valid(false);  // 352 + 48 bytes
  b.resize(b.size() - 3);
  std::string msg = error_of(write("short.nii", b));
  EXPECT_HAS(msg, "short.nii");
  EXPECT_HAS(msg, "needs 48 bytes from vox_offset 352 (400 in all)");
  EXPECT_HAS(msg, "the file holds 397 bytes (45 after vox_offset)");

  msg = error_of(write("short.nii.gz", gzip(b)));
  EXPECT_HAS(msg, "the decompressed file holds 397 bytes");

  msg = error_of(write("hdr.nii", Bytes(b.begin(), b.begin() + 200)));
  EXPECT_HAS(msg, "truncated header: the file holds 200 bytes, the NIfTI-1 header needs 348");
}

// The limit is checked against what the header announces, before the voxels are allocated.
TEST_F(NiftiTest, HeaderAnnouncingMoreThanTheLimitIsRefused) {
  Spec s;
  s.dim = {4, 32767, 32767, 32767, 32767, 1, 1, 1};
  s.datatype = 64;
  s.bitpix = 64;
  const Bytes b = nifti(s, Bytes(64, 0));
  for (const auto& [name, bytes] : {std::pair<std::string, Bytes>{"huge.nii", b}, {"huge.nii.gz", gzip(b)}}) {
    const std::string msg = error_of(write(name, bytes));
    EXPECT_HAS(msg, "dim (offset 40): 32767 x 32767 x 32767 x 32767 x float64");
    EXPECT_HAS(msg, "pass the limit of " + std::to_string(kNiftiMaxBytes) + " bytes");
  }
}

// A valid file followed, in the same gzip stream, by more than kNiftiMaxBytes of zeros (1 MiB
// members, 1 KiB each compressed): refused while inflating, without holding the zeros.
TEST_F(NiftiTest, GzipBombIsRefused) {
  Bytes b = gzip(small_valid(false));
  const Bytes zeros_member = gzip(Bytes(size_t{1} << 20, 0), 9);
  const auto members = static_cast<size_t>(kNiftiMaxBytes >> 20) + 1;
  for (size_t i = 0; i < members; ++i) b.insert(b.end(), zeros_member.begin(), zeros_member.end());
  const std::string msg = error_of(write("bomb.nii.gz", b));
  EXPECT_HAS(msg, "bomb.nii.gz");
  EXPECT_HAS(msg, "inflates to more than the limit of " + std::to_string(kNiftiMaxBytes) + " bytes");
}

// ---------------------------------------------------------------------------------------------------------
// Damage: only spikefm::Error, never a crash or another exception.

// Every strict prefix of a valid file is refused (the data must be complete), plain and gzip'd.
TEST_F(NiftiTest, EveryTruncationIsASpikefmError) {
  Spec s4;
  s4.big = true;
  s4.dim = {4, 2, 2, 2, 3, 1, 1, 1};
  s4.datatype = 16;
  s4.bitpix = 32;
  std::vector<float> f(24);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.25f;
  const Bytes float4d = nifti(s4, encode(f, true));
  for (const Bytes& full : {small_valid(false), small_valid(true), float4d, gzip(small_valid(false)), gzip(float4d)}) {
    for (size_t n = 0; n < full.size(); ++n) {
      const fs::path p = write("prefix.nii", Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
      const std::string msg = error_of(p);
      EXPECT_HAS(msg, "prefix.nii");
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "prefix of " << n << " of " << full.size() << " bytes";
        return;
      }
    }
  }
}

// Random byte changes in the header (plain files), anywhere in a plain file, and anywhere in the gzip
// stream: each read either succeeds or throws spikefm::Error.
TEST_F(NiftiTest, RandomDamageNeverEscapesAsAnotherError) {
  std::mt19937 rng(20240612);
  const Bytes le = small_valid(false), be = small_valid(true), gz = gzip(small_valid(false));
  // Returns whether the damaged file was refused.
  auto trial = [&](Bytes b, size_t from, size_t to, const std::string& what, int i) {
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) b[from + rng() % (to - from)] = static_cast<uint8_t>(rng());
    const fs::path p = write("damaged.nii", b);
    try {
      (void)read_nifti(p);
    } catch (const Error&) {
      return true;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << " trial " << i << ": " << e.what();
    }
    return false;
  };
  int header_refused = 0, file_refused = 0, gz_refused = 0;
  for (int i = 0; i < 300; ++i) header_refused += trial(i % 2 ? le : be, 0, 352, "header", i);
  for (int i = 0; i < 200; ++i) file_refused += trial(i % 2 ? le : be, 0, le.size(), "plain file", i);
  for (int i = 0; i < 300; ++i) gz_refused += trial(gz, 0, gz.size(), "gzip stream", i);
  // Flips in unused header fields or int16 voxels read fine; the checked fields and the gzip CRC catch
  // the rest (the gzip header's MTIME / XFL / OS bytes are not checked).
  EXPECT_GT(header_refused, 10);
  EXPECT_GT(gz_refused, 240);
  std::printf("damage refused: header %d/300, plain file %d/200, gzip stream %d/300\n", header_refused, file_refused,
              gz_refused);
}

// ---------------------------------------------------------------------------------------------------------
// Real files, compared with nibabel.

// nibabel's test data folder, or "" when /usr/bin/python3 cannot import nibabel.
std::string nibabel_data_dir() {
  int status = 0;
  std::string out = run_command(std::string(kPython) +
                                    " -c 'import os, nibabel; print(os.path.join(os.path.dirname(nibabel.__file__), "
                                    "\"tests\", \"data\"))' 2>/dev/null",
                                &status);
  if (status != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return fs::is_directory(out) ? out : "";
}

// nibabel's reading of one file: the stored header fields (Nifti1Header.from_fileobj, which does not
// reset the scaling as a loaded image's header does), pixdim[1..4] converted to mm / s by nibabel's
// own unit names, and every voxel of get_fdata() (float64, slope and intercept applied by nibabel) in
// x-fastest order, written to a file.
struct NibabelVolume {
  std::array<int64_t, 4> dim{};
  std::array<double, 4> pixdim{};
  int datatype = 0, big = 0, qform = 0, sform = 0, units = 0;
  double slope = 0, inter = 0;
  std::string descrip;
  std::vector<double> data;
};

NibabelVolume nibabel_read(const fs::path& dir, const fs::path& file) {
  const fs::path script = dir / "read.py", dump = dir / "data.f64";
  {
    std::ofstream f(script);
    f << "import sys\n"
         "import numpy as np\n"
         "import nibabel as nb\n"
         "img = nb.load(sys.argv[1])\n"
         "with nb.openers.ImageOpener(sys.argv[1]) as f:\n"
         "    h = nb.Nifti1Header.from_fileobj(f)\n"
         "ndim = int(h['dim'][0])\n"
         "shape = list(img.shape) + [1] * (4 - len(img.shape))\n"
         "su, tu = h.get_xyzt_units()\n"
         "sf = {'meter': 1000.0, 'mm': 1.0, 'micron': 1e-3}.get(su, 1.0)\n"
         "tf = {'sec': 1.0, 'msec': 1e-3, 'usec': 1e-6}.get(tu, 1.0)\n"
         "pix = [float(h['pixdim'][i + 1]) * (tf if i == 3 else sf) if i < ndim else 0.0 for i in range(4)]\n"
         "print(*shape)\n"
         "print(*[repr(p) for p in pix])\n"
         "print(int(h['datatype']), 1 if h.endianness == '>' else 0, int(h['qform_code']), int(h['sform_code']),\n"
         "      int(h['xyzt_units']), repr(float(h['scl_slope'])), repr(float(h['scl_inter'])))\n"
         "print('[' + h['descrip'].tobytes().split(b'\\0')[0].decode('latin-1') + ']')\n"
         "img.get_fdata(dtype=np.float64).reshape(-1, order='F').astype('<f8').tofile(sys.argv[2])\n";
  }
  int status = 0;
  const std::string out = run_command(
      std::string(kPython) + " '" + script.string() + "' '" + file.string() + "' '" + dump.string() + "' 2>&1",
      &status);
  EXPECT_EQ(status, 0) << "nibabel failed on " << file << ":\n" << out;
  std::istringstream in(out);
  NibabelVolume r;
  for (auto& d : r.dim) in >> d;
  for (auto& p : r.pixdim) in >> p;
  in >> r.datatype >> r.big >> r.qform >> r.sform >> r.units >> r.slope >> r.inter;
  in >> std::ws;
  std::getline(in, r.descrip);
  EXPECT_TRUE(static_cast<bool>(in)) << "could not parse nibabel's output for " << file << ":\n" << out;
  if (r.descrip.size() >= 2) r.descrip = r.descrip.substr(1, r.descrip.size() - 2);
  std::ifstream d(dump, std::ios::binary);
  r.data.resize(static_cast<size_t>(r.dim[0] * r.dim[1] * r.dim[2] * r.dim[3]));
  d.read(reinterpret_cast<char*>(r.data.data()), static_cast<std::streamsize>(r.data.size() * sizeof(double)));
  EXPECT_EQ(static_cast<size_t>(d.gcount()), r.data.size() * sizeof(double)) << "nibabel's dump of " << file;
  return r;
}

// Every field and every voxel of `file` equal to nibabel's reading of it. nibabel scales in float64;
// this reader rounds the same double to float, so values agree to within half a float ulp, at most
// 2^-24 relative (exactly, for unscaled integers below 2^24).
void expect_matches_nibabel(const fs::path& dir, const fs::path& file) {
  SCOPED_TRACE(file.string());
  const NibabelVolume ref = nibabel_read(dir, file);
  const NiftiVolume vol = read_nifti(file);
  EXPECT_EQ(vol.dim, ref.dim);
  for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(vol.pixdim[i], ref.pixdim[i]) << "pixdim " << i;
  EXPECT_EQ(vol.datatype, ref.datatype);
  EXPECT_EQ(vol.big_endian, ref.big != 0);
  EXPECT_EQ(vol.qform_code, ref.qform);
  EXPECT_EQ(vol.sform_code, ref.sform);
  EXPECT_EQ(vol.xyzt_units, ref.units);
  EXPECT_EQ(vol.scl_slope, ref.slope);
  EXPECT_EQ(vol.scl_inter, ref.inter);
  EXPECT_EQ(vol.descrip, ref.descrip);
  ASSERT_EQ(vol.data.size(), ref.data.size());
  const size_t per_volume = static_cast<size_t>(vol.voxels());
  std::vector<double> sum(static_cast<size_t>(vol.dim[3])), ref_sum(sum.size()), ref_abs(sum.size());
  int64_t bad = 0;
  for (size_t i = 0; i < ref.data.size(); ++i) {
    const double r = ref.data[i];
    sum[i / per_volume] += vol.data[i];
    ref_sum[i / per_volume] += r;
    ref_abs[i / per_volume] += std::abs(r);
    if (std::abs(vol.data[i] - r) > std::ldexp(1.0, -24) * std::abs(r)) {
      if (++bad <= 5) ADD_FAILURE() << "voxel " << i << ": " << vol.data[i] << " vs nibabel " << r;
    }
  }
  EXPECT_EQ(bad, 0);
  for (size_t t = 0; t < sum.size(); ++t) EXPECT_NEAR(sum[t], ref_sum[t], 1e-7 * ref_abs[t]) << "volume " << t;
}

// The real MR series: 128 x 96 x 24 x 2 int16 EPI, gzip'd, little endian, an extension before
// vox_offset 416. Its pixdim[4] is 2000 with xyzt_units 10 (mm, s): FSL 3.3 stored the TR in ms under
// a seconds label, and the reader reports what the file says.
TEST_F(NiftiTest, RealMrSeriesMatchesNibabel) {
  const fs::path file = default_nifti_mr_path();
  if (!fs::exists(file)) GTEST_SKIP() << file << " absent (apt-get install python3-nibabel)";
  if (nibabel_data_dir().empty()) GTEST_SKIP() << "nibabel not importable by " << kPython;
  const NiftiVolume vol = read_nifti(file);
  EXPECT_EQ(vol.dim, (std::array<int64_t, 4>{128, 96, 24, 2}));
  EXPECT_EQ(vol.datatype, 4);
  EXPECT_NEAR(vol.pixdim[2], 2.2, 1e-6);
  EXPECT_DOUBLE_EQ(vol.pixdim[3], 2000.0);
  EXPECT_EQ(vol.xyzt_units, 10);
  EXPECT_EQ(vol.descrip, "FSL3.3");
  expect_matches_nibabel(dir_, file);
}

// nibabel's other NIfTI-1 test files: big-endian int16 and float32, a scaled int16 4-D fMRI series
// (scl_slope 0.0754, scl_inter 3100.76), gzip'd uint8. resampled_anat_moved.nii (float32) holds NaN
// outside the resampled field of view, which the reader refuses, naming the first such voxel.
TEST_F(NiftiTest, NibabelTestFilesMatchNibabel) {
  const std::string dir = nibabel_data_dir();
  if (dir.empty()) GTEST_SKIP() << "nibabel not importable by " << kPython << " (apt-get install python3-nibabel)";
  int read = 0;
  for (const char* name : {"anatomical.nii", "functional.nii", "reoriented_anat_moved.nii", "standard.nii.gz"}) {
    const fs::path file = fs::path(dir) / name;
    if (!fs::exists(file)) continue;
    expect_matches_nibabel(dir_, file);
    ++read;
  }
  if (const fs::path nan_file = fs::path(dir) / "resampled_anat_moved.nii"; fs::exists(nan_file)) {
    EXPECT_HAS(error_of(nan_file), "voxel (x, y, z, t) = (0, 0, 0, 0) at byte 352 is nan");
  }
  if (read == 0) GTEST_SKIP() << "none of the listed files in " << dir;
}

TEST_F(NiftiTest, RealNifti2FileIsRefused) {
  const std::string dir = nibabel_data_dir();
  const fs::path file = fs::path(dir) / "example_nifti2.nii.gz";
  if (dir.empty() || !fs::exists(file)) GTEST_SKIP() << "nibabel's example_nifti2.nii.gz absent";
  const std::string msg = error_of(file);
  EXPECT_HAS(msg, "example_nifti2.nii.gz");
  EXPECT_HAS(msg, "NIfTI-2");
}

}  // namespace
}  // namespace spikefm
