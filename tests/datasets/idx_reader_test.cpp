// read_idx against IDX files written here byte by byte (plain and through zlib's gz* API), and
// against every kind of damage the reader promises to refuse.
#include "datasets/idx_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// IDX header for unsigned-byte data: 00 00 08 <ndims> then big-endian uint32 dims.
Bytes idx_header(const std::vector<uint32_t>& dims, uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    b.push_back(static_cast<uint8_t>(d >> 24));
    b.push_back(static_cast<uint8_t>(d >> 16));
    b.push_back(static_cast<uint8_t>(d >> 8));
    b.push_back(static_cast<uint8_t>(d));
  }
  return b;
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

class IdxReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("spikefm_idx_test_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path write_plain(const std::string& name, const Bytes& bytes) {
    const auto p = dir_ / name;
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(f.good());
    return p;
  }

  // One gzip member per part (several parts = a multi-member gzip file, as `cat a.gz b.gz` makes).
  fs::path write_gzip(const std::string& name, const std::vector<Bytes>& parts) {
    const auto p = dir_ / name;
    for (size_t i = 0; i < parts.size(); ++i) {
      gzFile gz = gzopen(p.c_str(), i == 0 ? "wb" : "ab");
      EXPECT_NE(gz, nullptr);
      if (!parts[i].empty()) {
        EXPECT_EQ(gzwrite(gz, parts[i].data(), static_cast<unsigned>(parts[i].size())),
                  static_cast<int>(parts[i].size()));
      }
      EXPECT_EQ(gzclose(gz), Z_OK);
    }
    return p;
  }

  Bytes read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(f), {});
  }

  // The message of the spikefm::Error that read_idx throws (fails the test if it throws nothing).
  std::string error_of(const fs::path& p) {
    try {
      read_idx(p);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "read_idx(" << p << ") did not throw";
    return {};
  }

  fs::path dir_;
};

TEST_F(IdxReaderTest, PlainRoundTrip) {
  const Bytes data = random_bytes(3 * 2 * 5, 1);
  const auto p = write_plain("a-idx3-ubyte", concat(idx_header({3, 2, 5}), data));
  const IdxArray a = read_idx(p);
  EXPECT_EQ(a.dims, (Shape{3, 2, 5}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxReaderTest, GzipRoundTripDetectedByMagicNotName) {
  const Bytes data = random_bytes(4 * 7, 2);
  // No .gz suffix: only the 1f 8b magic says it is compressed.
  const auto p = write_gzip("labels-without-suffix", {concat(idx_header({4, 7}), data)});
  ASSERT_EQ(read_all(p).at(0), 0x1f);
  const IdxArray a = read_idx(p);
  EXPECT_EQ(a.dims, (Shape{4, 7}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxReaderTest, PlainFileNamedGzIsReadPlain) {
  const Bytes data = random_bytes(9, 3);
  const IdxArray a = read_idx(write_plain("x-idx1-ubyte.gz", concat(idx_header({9}), data)));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxReaderTest, LargeGzipRoundTripSpansManyChunks) {
  // 3 MiB of data crosses the reader's 1 MiB output chunks and 64 KiB input buffer.
  const Bytes data = random_bytes(3 * 1024 * 1024, 4);
  const IdxArray a = read_idx(write_gzip("big.gz", {concat(idx_header({3 * 1024, 1024}), data)}));
  EXPECT_EQ(a.dims, (Shape{3 * 1024, 1024}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxReaderTest, MultiMemberGzipIsOneStream) {
  const Bytes data = random_bytes(50, 5);
  const Bytes first(data.begin(), data.begin() + 20), rest(data.begin() + 20, data.end());
  const IdxArray a = read_idx(write_gzip("multi.gz", {idx_header({50}), first, rest}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxReaderTest, ZeroSizedDimensionIsAnEmptyArray) {
  const IdxArray a = read_idx(write_plain("empty", idx_header({0, 28, 28})));
  EXPECT_EQ(a.dims, (Shape{0, 28, 28}));
  EXPECT_TRUE(a.data.empty());
}

TEST_F(IdxReaderTest, MissingFileNamesFileAndPackage) {
  const auto p = dir_ / "nope-idx3-ubyte";
  const std::string msg = error_of(p);
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--data-dir"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, DirectoryIsRefused) {
  EXPECT_NE(error_of(dir_).find("not a regular file"), std::string::npos);
}

TEST_F(IdxReaderTest, EmptyAndTinyFilesAreTooShort) {
  EXPECT_NE(error_of(write_plain("empty", {})).find("too short"), std::string::npos);
  EXPECT_NE(error_of(write_plain("three", {0, 0, 8})).find("too short"), std::string::npos);
}

TEST_F(IdxReaderTest, WrongMagic) {
  const auto p = write_plain("png", concat({0x89, 'P', 'N', 'G'}, random_bytes(100, 6)));
  const std::string msg = error_of(p);
  EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0x89"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, UnsupportedElementTypeIsNamed) {
  const std::string msg = error_of(write_plain("f32", concat(idx_header({2}, 0x0D), random_bytes(8, 7))));
  EXPECT_NE(msg.find("0x0D (float32)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, ZeroOrTooManyDimensions) {
  EXPECT_NE(error_of(write_plain("d0", {0, 0, 8, 0})).find("declares 0 dimensions"), std::string::npos);
  const auto five = write_plain("d5", concat(idx_header({1, 1, 1, 1, 1}), {42}));
  EXPECT_NE(error_of(five).find("declares 5 dimensions"), std::string::npos);
}

TEST_F(IdxReaderTest, HeaderEndingInsideDims) {
  Bytes b = idx_header({5, 5});
  b.resize(b.size() - 2);
  EXPECT_NE(error_of(write_plain("short-header", b)).find("header ends inside"), std::string::npos);
}

TEST_F(IdxReaderTest, TruncatedPlainData) {
  const std::string msg = error_of(write_plain("trunc", concat(idx_header({10}), random_bytes(7, 8))));
  EXPECT_NE(msg.find("truncated: expected 10 bytes of data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("found 7"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, TruncatedDataInsideValidGzip) {
  const std::string msg = error_of(write_gzip("trunc.gz", {concat(idx_header({4, 25}), random_bytes(60, 9))}));
  EXPECT_NE(msg.find("truncated: expected 100 bytes of data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("found 60"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, TrailingBytesPlain) {
  const std::string msg = error_of(write_plain("trail", concat(idx_header({10}), random_bytes(13, 10))));
  EXPECT_NE(msg.find("3 trailing bytes"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, TrailingBytesGzip) {
  const std::string msg = error_of(write_gzip("trail.gz", {concat(idx_header({10}), random_bytes(15, 11))}));
  EXPECT_NE(msg.find("5 trailing bytes"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, HugeDimsAreRejectedWithoutOverflow) {
  // 4 x (2^32 - 1) overflows int64 several times over; must be caught before any multiplication wraps.
  const auto p = write_plain("huge", idx_header({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  const std::string msg = error_of(p);
  EXPECT_NE(msg.find("1 GiB"), std::string::npos) << msg;
  // Just over the limit: 65536 x 16385 = 1 GiB + 64 KiB.
  EXPECT_NE(error_of(write_plain("over", idx_header({65536, 16385}))).find("1 GiB"), std::string::npos);
  // A huge dim times a zero dim is an empty array, not an overflow.
  EXPECT_TRUE(read_idx(write_plain("zero", idx_header({0xFFFFFFFFu, 0}))).data.empty());
}

TEST_F(IdxReaderTest, HeaderClaimingOneGiBOverTinyFileIsTruncated) {
  // Exactly at the limit: allowed by the cap, refused because the data is not there.
  const std::string plain = error_of(write_plain("liar", concat(idx_header({1u << 15, 1u << 15}), {1, 2, 3})));
  EXPECT_NE(plain.find("truncated: expected 1073741824 bytes of data"), std::string::npos) << plain;
  const std::string gz = error_of(write_gzip("liar.gz", {concat(idx_header({1u << 15, 1u << 15}), {1, 2, 3})}));
  EXPECT_NE(gz.find("truncated: expected 1073741824 bytes of data"), std::string::npos) << gz;
  EXPECT_NE(gz.find("found 3"), std::string::npos) << gz;
}

TEST_F(IdxReaderTest, GzipCutInHalf) {
  const auto good = write_gzip("whole.gz", {concat(idx_header({64, 64}), random_bytes(64 * 64, 12))});
  Bytes b = read_all(good);
  b.resize(b.size() / 2);
  const std::string msg = error_of(write_plain("half.gz", b));
  EXPECT_NE(msg.find("corrupt gzip stream"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, GzipWithOnlyItsTrailerMissing) {
  // The data is all there; only the CRC/length trailer is gone. Still a damaged file.
  const auto good = write_gzip("whole.gz", {concat(idx_header({10}), random_bytes(10, 13))});
  Bytes b = read_all(good);
  b.resize(b.size() - 8);
  EXPECT_NE(error_of(write_plain("notrailer.gz", b)).find("corrupt gzip stream"), std::string::npos);
}

TEST_F(IdxReaderTest, GzipWithFlippedByteFailsItsChecksum) {
  const auto good = write_gzip("whole.gz", {concat(idx_header({64, 64}), random_bytes(64 * 64, 14))});
  Bytes b = read_all(good);
  b[b.size() / 2] ^= 0x5A;  // inside the deflate data (header is 10 bytes, trailer 8)
  const std::string msg = error_of(write_plain("flipped.gz", b));
  EXPECT_NE(msg.find("corrupt gzip stream"), std::string::npos) << msg;
}

TEST_F(IdxReaderTest, GarbageAfterGzipMember) {
  const auto good = write_gzip("whole.gz", {concat(idx_header({10}), random_bytes(10, 15))});
  const Bytes b = concat(read_all(good), {'j', 'u', 'n', 'k'});
  EXPECT_NE(error_of(write_plain("junk.gz", b)).find("corrupt gzip stream"), std::string::npos);
}

TEST_F(IdxReaderTest, RandomGarbageNeverCrashes) {
  // Fuzz-style: random files, some with a valid-looking prefix; every outcome is data or an Error.
  std::mt19937 rng(16);
  for (int i = 0; i < 200; ++i) {
    Bytes b = random_bytes(rng() % 64, static_cast<uint32_t>(100 + i));
    if (i % 3 == 0 && b.size() >= 4) b[0] = b[1] = 0, b[2] = 8, b[3] = static_cast<uint8_t>(1 + rng() % 4);
    if (i % 3 == 1 && b.size() >= 2) b[0] = 0x1f, b[1] = 0x8b;
    const auto p = write_plain("fuzz" + std::to_string(i), b);
    try {
      const IdxArray a = read_idx(p);
      int64_t numel = 1;
      for (int64_t d : a.dims) numel *= d;
      EXPECT_EQ(static_cast<int64_t>(a.data.size()), numel);
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace spikefm
