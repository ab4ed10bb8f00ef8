// The medical benchmark readers against files in the real formats written by independent tools:
// .npz/.npy fixtures are written by numpy (np.savez, np.savez_compressed, np.save,
// numpy.lib.format.write_array) and Python's zipfile, run from a script this test writes; the
// contents are either random bytes the test draws from a fixed seed (handed to numpy as raw files) or
// closed-form formulas evaluated independently here. VQA-RAD / SLAKE fixtures are JSON text in the
// published field layout. Damaged and malformed inputs must give a spikefm::Error naming the file,
// the key / record and the rule.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "datasets/med_vqa_json.h"
#include "datasets/medmnist.h"
#include "datasets/npz_reader.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------------------
// Fixture data drawn here (seeded) and handed to numpy as raw little-endian files.

Bytes random_u8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

std::vector<float> random_f4(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1000.0f, 1000.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  // Special values must survive bit for bit.
  v[0] = -0.0f;
  v[1] = std::numeric_limits<float>::infinity();
  v[2] = std::numeric_limits<float>::denorm_min();
  v[3] = std::numeric_limits<float>::quiet_NaN();
  return v;
}

std::vector<double> random_f8(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1e6);
  std::vector<double> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

std::vector<int32_t> random_i4(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(rng());
  return v;
}

template <typename T>
Bytes as_bytes(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Shapes of the raw fixtures (the python script below reshapes with the same numbers).
const Bytes& u8_data() { static const Bytes b = random_u8(50 * 80 * 80, 11); return b; }   // (50, 80, 80)
const std::vector<float>& f4_data() { static const auto v = random_f4(7 * 9, 12); return v; }  // (7, 9)
const std::vector<double>& f8_data() { static const auto v = random_f8(5 * 4, 13); return v; }  // (5, 4)
const std::vector<int32_t>& i4_data() { static const auto v = random_i4(11, 14); return v; }   // (11,)

struct ImageRaw {
  const char* name;
  Shape shape;
  uint32_t seed;
};
const std::vector<ImageRaw>& image_raws() {
  static const std::vector<ImageRaw> r = {
      {"g_train", {6, 7, 5}, 21},    {"g_val", {3, 7, 5}, 22},    {"g_test", {4, 7, 5}, 23},
      {"c_train", {5, 4, 3, 3}, 31}, {"c_val", {2, 4, 3, 3}, 32}, {"c_test", {2, 4, 3, 3}, 33},
  };
  return r;
}
Bytes image_data(const std::string& name) {
  for (const auto& r : image_raws()) {
    if (name == r.name) return random_u8(static_cast<size_t>(shape_numel(r.shape)), r.seed);
  }
  ADD_FAILURE() << "no raw image " << name;
  return {};
}

// The fixture writer. numpy writes every .npz; the script asserts the structural properties a test
// relies on (data descriptors, ZIP64 records, npy versions, fortran order) so a fixture can't
// silently lose the feature it is meant to exercise.
constexpr const char* kFixtureScript = R"PY(
import io, struct, sys, zipfile
import numpy as np
from numpy.lib import format as fmt

d = sys.argv[1]
def raw(name, dtype, shape):
    return np.fromfile(f'{d}/{name}.raw', dtype=dtype).reshape(shape)

arrays = dict(
    u8=raw('u8', '|u1', (50, 80, 80)),
    f4=raw('f4', '<f4', (7, 9)),
    f8=raw('f8', '<f8', (5, 4)),
    i4=raw('i4', '<i4', (11,)),
    i8=np.arange(24, dtype='<i8').reshape(2, 3, 4) * -3 + 7,
    b1=(np.arange(10) % 3) == 0,
    u2=np.arange(5, dtype='<u2') * 1000,
    i1=np.array([-128, 127, 0], dtype='|i1'),
    u8big=np.array([1, 2**63], dtype='<u8'),
    scalar=np.float64(-2.25),
    empty=np.zeros((0, 3), dtype='<f4'),
)
np.savez(f'{d}/stored.npz', **arrays)
np.savez_compressed(f'{d}/deflated.npz', **arrays)

# Written to a stream without seek/tell: zipfile then uses data descriptors (flag bit 3).
# (numpy treats an object with .read as a file; zipfile probes tell() and falls back to streaming.)
class Unseekable:
    def __init__(self, f): self.f = f
    def read(self, n=-1): raise OSError('write-only')
    def write(self, b): return self.f.write(b)
    def flush(self): self.f.flush()
with open(f'{d}/streamed.npz', 'wb') as f:
    np.savez_compressed(Unseekable(f), i8=arrays['i8'], f4=arrays['f4'])
with zipfile.ZipFile(f'{d}/streamed.npz') as z:
    assert all(zi.flag_bits & 0x08 for zi in z.infolist()), 'no data descriptors'

# ZIP64: with zipfile's 4 GiB limit lowered to 64 bytes, Python writes the real ZIP64 structures
# (extra field 0x0001 with sizes and offsets, ZIP64 EOCD record and locator) for tiny members.
limit = zipfile.ZIP64_LIMIT
zipfile.ZIP64_LIMIT = 64
np.savez(f'{d}/zip64.npz', f8=arrays['f8'], i8=arrays['i8'])
zipfile.ZIP64_LIMIT = limit
b = open(f'{d}/zip64.npz', 'rb').read()
rec = b.rfind(b'PK\x06\x06')
assert rec > 0 and b'PK\x06\x07' in b, 'no ZIP64 end records'
cd = struct.unpack('<Q', b[rec + 48:rec + 56])[0]
assert b[cd:cd + 4] == b'PK\x01\x02'
assert struct.unpack('<II', b[cd + 20:cd + 28]) == (0xffffffff, 0xffffffff), 'sizes not in ZIP64 extra'
z64 = np.load(f'{d}/zip64.npz')
assert (z64['i8'] == arrays['i8']).all()

# npy format versions 1.0, 2.0, 3.0, and a standalone .npy.
with zipfile.ZipFile(f'{d}/versions.npz', 'w', compression=zipfile.ZIP_DEFLATED) as z:
    for major in (1, 2, 3):
        buf = io.BytesIO()
        fmt.write_array(buf, arrays['f4'], version=(major, 0))
        assert buf.getvalue()[6] == major
        z.writestr(f'v{major}.npy', buf.getvalue())
np.save(f'{d}/plain.npy', arrays['i8'])

# Layouts and dtypes the reader must refuse.
fortran = np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3))
assert not fortran.flags.c_contiguous
np.savez(f'{d}/refused.npz', fortran=fortran, bigendian=np.arange(4, dtype='>i4'),
         obj=np.array([{'a': 1}, None], dtype=object), text=np.array(['ab', 'c']),
         structured=np.zeros(2, dtype=[('x', '<f4'), ('y', '<i4')]), half=np.zeros(3, dtype='<f2'))

# Damage: one member per archive, and where its data lies (from the local header, parsed here).
one = arrays['u8'][:2]
np.savez(f'{d}/one_stored.npz', u8=one)
np.savez_compressed(f'{d}/one_deflated.npz', u8=one)
with open(f'{d}/offsets.txt', 'w') as out:
    for name in ('one_stored', 'one_deflated'):
        with zipfile.ZipFile(f'{d}/{name}.npz') as z:
            zi = z.getinfo('u8.npy')
        b = open(f'{d}/{name}.npz', 'rb').read()
        n, e = struct.unpack('<HH', b[zi.header_offset + 26:zi.header_offset + 30])
        out.write(f'{name} {zi.header_offset + 30 + n + e} {zi.compress_size}\n')

buf = io.BytesIO()
fmt.write_array(buf, np.arange(10, dtype='<f4'))
good = buf.getvalue()
with zipfile.ZipFile(f'{d}/badnpy.npz', 'w') as z:
    z.writestr('badmagic.npy', b'NOTNPY' + bytes(64))
    z.writestr('short.npy', good[:-32])   # header (10,) <f4 = 40 data bytes; 8 remain
    z.writestr('long.npy', good + bytes(4))
    z.writestr('version9.npy', b'\x93NUMPY\x09\x00' + good[8:])
    z.writestr('notes.txt', b'hello')

# MedMNIST-style files (np.savez_compressed, as medmnist ships them).
def labels(n, w):  # value at (i, j) = ((i*w + j) * 7) % 9
    return (np.arange(n * w).reshape(n, w) * 7 % 9).astype(np.int64)
def multi(n):      # 14 flags per sample: 1 where (i*14 + j) % 3 == 0
    return ((np.arange(n * 14).reshape(n, 14) % 3) == 0).astype(np.uint8)
gray = dict(train_images=raw('g_train', '|u1', (6, 7, 5)), train_labels=labels(6, 1),
            val_images=raw('g_val', '|u1', (3, 7, 5)), val_labels=labels(3, 1),
            test_images=raw('g_test', '|u1', (4, 7, 5)), test_labels=labels(4, 1))
np.savez_compressed(f'{d}/gray_mnist.npz', **gray)
rgb = dict(train_images=raw('c_train', '|u1', (5, 4, 3, 3)), train_labels=multi(5),
           val_images=raw('c_val', '|u1', (2, 4, 3, 3)), val_labels=multi(2),
           test_images=raw('c_test', '|u1', (2, 4, 3, 3)), test_labels=multi(2))
np.savez_compressed(f'{d}/rgb_mnist.npz', **rgb)
def variant(name, **changes):
    a = dict(gray)
    a.update(changes)
    np.savez(f'{d}/{name}.npz', **{k: v for k, v in a.items() if v is not None})
variant('missing_key', val_labels=None)
variant('n_mismatch', test_labels=labels(5, 1))
variant('wrong_rank', train_images=gray['train_images'].reshape(6, 35))
variant('wrong_dtype', val_images=gray['val_images'].astype('<f4'))
variant('float_labels', train_labels=labels(6, 1).astype('<f8'))
variant('negative_label', test_labels=-labels(4, 1) - 1)
variant('volume3d', train_images=np.zeros((6, 4, 4, 4), dtype=np.uint8))
print('fixtures written')
)PY";

class MedFormatsTest : public ::testing::Test {
 protected:
  // numpy runs once for the whole suite (about a second), not once per test.
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() /
           ("spikefm_med_formats_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
    write(dir_ / "u8.raw", u8_data());
    write(dir_ / "f4.raw", as_bytes(f4_data()));
    write(dir_ / "f8.raw", as_bytes(f8_data()));
    write(dir_ / "i4.raw", as_bytes(i4_data()));
    for (const auto& r : image_raws()) write(dir_ / (std::string(r.name) + ".raw"), image_data(r.name));
    const auto script = dir_ / "write_fixtures.py";
    std::ofstream(script) << kFixtureScript;
    const auto log = dir_ / "python.log";
    const std::string cmd =
        "/usr/bin/python3 '" + script.string() + "' '" + dir_.string() + "' > '" + log.string() + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    fixture_log_ = ss.str();
    fixtures_ok_ = rc == 0;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(fixtures_ok_) << "the numpy fixture script failed (needs /usr/bin/python3 with python3-numpy; "
                                 "run scripts/setup-deps.sh):\n"
                              << fixture_log_;
  }

  static void write(const fs::path& p, const Bytes& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  static void write_text(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }
  static Bytes read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(f), {});
  }
  // Data offset and compressed size of the member u8.npy, as the Python script found them.
  static std::pair<uint64_t, uint64_t> member_span(const std::string& archive) {
    std::ifstream in(dir_ / "offsets.txt");
    std::string name;
    uint64_t off = 0, size = 0;
    while (in >> name >> off >> size) {
      if (name == archive) return {off, size};
    }
    ADD_FAILURE() << "no offsets for " << archive;
    return {0, 0};
  }

  static inline fs::path dir_;
  static inline bool fixtures_ok_ = false;
  static inline std::string fixture_log_;
};

// The message of the spikefm::Error that f throws (fails the test if it throws nothing else).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-spikefm exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// ---------------------------------------------------------------------------------------------------------
// npz / npy

// Every dtype and layout numpy wrote, element by element, from the STORED and the DEFLATED archive.
TEST_F(MedFormatsTest, NpzStoredAndDeflatedMatchWhatNumpyWrote) {
  for (const char* file : {"stored.npz", "deflated.npz"}) {
    SCOPED_TRACE(file);
    const NpzFile npz(dir_ / file);
    EXPECT_EQ(npz.keys(), (std::vector<std::string>{"u8", "f4", "f8", "i4", "i8", "b1", "u2", "i1", "u8big",
                                                     "scalar", "empty"}));
    const uint16_t method = std::string(file) == "stored.npz" ? 0 : 8;
    for (const auto& m : npz.members()) EXPECT_EQ(m.method, method) << m.name;

    const NpyArray u8 = npz.read("u8");  // 320000 random bytes: spans many 64 KiB inflate input chunks
    EXPECT_EQ(u8.dtype.str(), "|u1");
    EXPECT_EQ(u8.shape, (Shape{50, 80, 80}));
    EXPECT_EQ(u8.values<uint8_t>(), u8_data());

    const NpyArray f4 = npz.read("f4");
    EXPECT_EQ(f4.dtype.str(), "<f4");
    EXPECT_EQ(f4.shape, (Shape{7, 9}));
    EXPECT_TRUE(bitwise_equal(f4.values<float>(), f4_data()));  // -0, inf, denormal, NaN included

    const NpyArray f8 = npz.read("f8");
    EXPECT_EQ(f8.shape, (Shape{5, 4}));
    EXPECT_TRUE(bitwise_equal(f8.values<double>(), f8_data()));

    const NpyArray i4 = npz.read("i4.npy");  // the full member name works too
    EXPECT_EQ(i4.dtype.str(), "<i4");
    EXPECT_EQ(i4.values<int32_t>(), i4_data());

    // i8 = arange(24).reshape(2, 3, 4) * -3 + 7: element (a, b, c) = -3 * (12a + 4b + c) + 7.
    const NpyArray i8 = npz.read("i8");
    EXPECT_EQ(i8.dtype.str(), "<i8");
    ASSERT_EQ(i8.shape, (Shape{2, 3, 4}));
    const auto i8v = i8.values<int64_t>();
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 3; ++b)
        for (int c = 0; c < 4; ++c) EXPECT_EQ(i8v[12 * a + 4 * b + c], -3 * (12 * a + 4 * b + c) + 7);

    const NpyArray b1 = npz.read("b1");  // arange(10) % 3 == 0
    EXPECT_EQ(b1.dtype.str(), "|b1");
    const auto b1v = b1.values<bool>();
    ASSERT_EQ(b1v.size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(b1v[i], i % 3 == 0) << i;

    EXPECT_EQ(npz.read("u2").to_int64(), (std::vector<int64_t>{0, 1000, 2000, 3000, 4000}));
    EXPECT_EQ(npz.read("i1").to_int64(), (std::vector<int64_t>{-128, 127, 0}));
    EXPECT_EQ(npz.read("i1").to_double(), (std::vector<double>{-128.0, 127.0, 0.0}));

    const NpyArray big = npz.read("u8big");  // [1, 2^63]: 2^63 does not fit int64, is exact in double
    EXPECT_EQ(big.values<uint64_t>(), (std::vector<uint64_t>{1, uint64_t{1} << 63}));
    EXPECT_EQ(big.to_double(), (std::vector<double>{1.0, 9223372036854775808.0}));
    EXPECT_HAS(error_of([&] { big.to_int64(); }), "does not fit in int64");

    const NpyArray scalar = npz.read("scalar");  // 0-d: shape (), one element
    EXPECT_TRUE(scalar.shape.empty());
    EXPECT_EQ(scalar.values<double>(), (std::vector<double>{-2.25}));

    const NpyArray empty = npz.read("empty");
    EXPECT_EQ(empty.shape, (Shape{0, 3}));
    EXPECT_TRUE(empty.bytes.empty());
  }
}

TEST_F(MedFormatsTest, NpyValueAccessorsRefuseTheWrongDtype) {
  const NpzFile npz(dir_ / "stored.npz");
  const std::string msg = error_of([&] { npz.read("i8").values<float>(); });
  EXPECT_HAS(msg, "reading 'i8' from " + (dir_ / "stored.npz").string());
  EXPECT_HAS(msg, "dtype is <i8, expected <f4");
  EXPECT_HAS(error_of([&] { npz.read("f4").to_int64(); }), "expected a bool or integer dtype");
}

// np.savez to a non-seekable stream: local headers carry no sizes (flag bit 3, data descriptors);
// the reader takes sizes from the central directory.
TEST_F(MedFormatsTest, NpzWithDataDescriptorsFromAStream) {
  const NpzFile npz(dir_ / "streamed.npz");
  for (const auto& m : npz.members()) EXPECT_TRUE(m.flags & 0x8) << m.name;
  EXPECT_TRUE(bitwise_equal(npz.read("f4").values<float>(), f4_data()));
  EXPECT_EQ(npz.read("i8").shape, (Shape{2, 3, 4}));
}

// ZIP64 extra fields (saturated sizes and offsets) and the ZIP64 end records, written by Python's
// zipfile (see the fixture script), are followed.
TEST_F(MedFormatsTest, NpzZip64RecordsAndExtraFields) {
  const NpzFile npz(dir_ / "zip64.npz");
  ASSERT_EQ(npz.keys(), (std::vector<std::string>{"f8", "i8"}));
  EXPECT_GT(npz.members()[1].local_header_offset, 64u);  // came from the ZIP64 extra field
  EXPECT_TRUE(bitwise_equal(npz.read("f8").values<double>(), f8_data()));
  const auto i8 = npz.read("i8").values<int64_t>();
  ASSERT_EQ(i8.size(), 24u);
  for (int k = 0; k < 24; ++k) EXPECT_EQ(i8[k], -3 * k + 7);
}

TEST_F(MedFormatsTest, NpyFormatVersions1To3) {
  const NpzFile npz(dir_ / "versions.npz");
  for (const char* key : {"v1", "v2", "v3"}) {
    SCOPED_TRACE(key);
    const NpyArray a = npz.read(key);
    EXPECT_EQ(a.shape, (Shape{7, 9}));
    EXPECT_TRUE(bitwise_equal(a.values<float>(), f4_data()));
  }
}

TEST_F(MedFormatsTest, StandaloneNpyFileAndNpyPassedAsNpz) {
  const NpyArray a = read_npy(dir_ / "plain.npy");
  ASSERT_EQ(a.shape, (Shape{2, 3, 4}));
  const auto v = a.values<int64_t>();
  for (int k = 0; k < 24; ++k) EXPECT_EQ(v[k], -3 * k + 7);
  const std::string msg = error_of([&] { NpzFile(dir_ / "plain.npy"); });
  EXPECT_HAS(msg, "plain.npy");
  EXPECT_HAS(msg, "single .npy array");
}

TEST_F(MedFormatsTest, NpzRefusesFortranOrderBigEndianObjectAndOtherDtypes) {
  const NpzFile npz(dir_ / "refused.npz");
  const std::map<std::string, std::string> expected = {
      {"fortran", "fortran_order True"},        {"bigendian", "big-endian dtype '>i4'"},
      {"obj", "object arrays"},                 {"text", "dtype '<U2' is not supported"},
      {"structured", "structured dtype"},       {"half", "dtype '<f2' is not supported"},
  };
  for (const auto& [key, part] : expected) {
    const std::string msg = error_of([&] { npz.read(key); });
    EXPECT_HAS(msg, "refused.npz");
    EXPECT_HAS(msg, "'" + key + "'");
    EXPECT_HAS(msg, part);
  }
}

TEST_F(MedFormatsTest, TruncatedNpzIsRefused) {
  const Bytes full = read_all(dir_ / "stored.npz");
  for (size_t keep : {full.size() - 1, full.size() / 2, size_t{100}, size_t{10}}) {
    SCOPED_TRACE(keep);
    const auto p = dir_ / ("truncated_" + std::to_string(keep) + ".npz");
    write(p, Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(keep)));
    const std::string msg = error_of([&] { NpzFile(p).read("u8"); });
    EXPECT_HAS(msg, p.string());
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("too short") != std::string::npos) << msg;
  }
}

// A flipped bit inside the array data of a STORED member leaves the npy header valid: only the
// CRC-32 can catch it.
TEST_F(MedFormatsTest, FlippedByteInStoredMemberIsACrcMismatch) {
  Bytes b = read_all(dir_ / "one_stored.npz");
  const auto [offset, size] = member_span("one_stored");
  ASSERT_GT(size, 1000u);
  b.at(offset + 1000) ^= 0x10;  // past the 128-byte npy header, inside the pixels
  const auto p = dir_ / "flipped_stored.npz";
  write(p, b);
  const std::string msg = error_of([&] { NpzFile(p).read("u8"); });
  EXPECT_HAS(msg, "reading 'u8' from " + p.string());
  EXPECT_HAS(msg, "CRC-32 mismatch");
}

TEST_F(MedFormatsTest, FlippedByteInDeflatedMemberIsRefused) {
  Bytes b = read_all(dir_ / "one_deflated.npz");
  const auto [offset, size] = member_span("one_deflated");
  ASSERT_GT(size, 100u);
  b.at(offset + size / 2) ^= 0xFF;
  const auto p = dir_ / "flipped_deflated.npz";
  write(p, b);
  const std::string msg = error_of([&] { NpzFile(p).read("u8"); });
  EXPECT_HAS(msg, "reading 'u8' from " + p.string());
  // Depending on where the flip lands, inflate rejects the stream or the CRC catches the data.
  EXPECT_TRUE(msg.find("CRC-32 mismatch") != std::string::npos || msg.find("deflate") != std::string::npos ||
              msg.find("inflates to") != std::string::npos)
      << msg;
}

TEST_F(MedFormatsTest, BadNpyMembersAreRefused) {
  const NpzFile npz(dir_ / "badnpy.npz");
  const std::map<std::string, std::string> expected = {
      {"badmagic", "bad npy magic \"NOTNPY\""},
      {"short", "shape (10,) of <f4 needs 40 bytes of data, the array holds 8"},
      {"long", "shape (10,) of <f4 needs 40 bytes of data, the array holds 44"},
      {"version9", "npy format version 9.0 is not supported"},
      {"notes.txt", "is not a .npy array"},
  };
  for (const auto& [key, part] : expected) {
    const std::string msg = error_of([&] { npz.read(key); });
    EXPECT_HAS(msg, "badnpy.npz");
    EXPECT_HAS(msg, key);
    EXPECT_HAS(msg, part);
  }
}

TEST_F(MedFormatsTest, MissingKeyListsTheKeysPresent) {
  const NpzFile npz(dir_ / "zip64.npz");
  EXPECT_FALSE(npz.contains("train_images"));
  const std::string msg = error_of([&] { npz.read("train_images"); });
  EXPECT_HAS(msg, "zip64.npz");
  EXPECT_HAS(msg, "no key 'train_images' (keys: f8, i8)");
}

TEST_F(MedFormatsTest, CorruptCentralDirectoryOffsetIsRefused) {
  Bytes b = read_all(dir_ / "one_stored.npz");
  // numpy writes no archive comment, so the 22-byte end record is the file's tail; its
  // central-directory offset is the uint32 at byte 16 of the record.
  const size_t eocd = b.size() - 22;
  ASSERT_EQ(b[eocd], 'P');
  ASSERT_EQ(b[eocd + 1], 'K');
  b[eocd + 16] = 0xF0;
  b[eocd + 17] = b[eocd + 18] = b[eocd + 19] = 0xFF;
  const auto p = dir_ / "bad_cd.npz";
  write(p, b);
  EXPECT_HAS(error_of([&] { NpzFile{p}; }), "the central directory (offset 4294967280");
}

// Hostile-input sweep: every single-byte flip and every truncation of two small archives (one with
// ZIP64 records, one DEFLATED with data descriptors) either reads or throws spikefm::Error — never
// another exception, a crash or a huge allocation (the suite also runs clean under ASan/UBSan).
TEST_F(MedFormatsTest, EveryByteFlipAndTruncationIsReadOrRefused) {
  for (const char* file : {"zip64.npz", "streamed.npz"}) {
    SCOPED_TRACE(file);
    const Bytes orig = read_all(dir_ / file);
    const auto p = dir_ / (std::string("sweep_") + file);
    auto try_read = [&](const Bytes& b, const std::string& label) {
      write(p, b);
      try {
        const NpzFile npz(p);
        for (const auto& key : npz.keys()) npz.read(key);
      } catch (const Error&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << label << ": non-spikefm exception " << e.what();
      }
    };
    for (size_t i = 0; i < orig.size(); ++i) {
      Bytes b = orig;
      b[i] ^= 0xFF;
      try_read(b, "flip at " + std::to_string(i));
    }
    for (size_t n = 0; n < orig.size(); n += 7) try_read(Bytes(orig.begin(), orig.begin() + n), "truncated to " + std::to_string(n));
  }
}

TEST_F(MedFormatsTest, MissingAndNonZipFiles) {
  EXPECT_HAS(error_of([&] { NpzFile(dir_ / "nope.npz"); }), "does not exist");
  write_text(dir_ / "text.npz", std::string(200, 'x'));
  EXPECT_HAS(error_of([&] { NpzFile(dir_ / "text.npz"); }), "no ZIP end-of-central-directory record");
}

// ---------------------------------------------------------------------------------------------------------
// MedMNIST

TEST_F(MedFormatsTest, MedMnistGrayLoadsAllSplits) {
  const MedMnist m = load_medmnist(dir_ / "gray_mnist.npz");
  const std::vector<std::pair<const MedImageSet*, std::string>> splits = {
      {&m.train, "g_train"}, {&m.val, "g_val"}, {&m.test, "g_test"}};
  for (const auto& [set, raw] : splits) {
    SCOPED_TRACE(raw);
    EXPECT_EQ(set->rows, 7);
    EXPECT_EQ(set->cols, 5);
    EXPECT_EQ(set->channels, 1);
    EXPECT_EQ(set->pixels, image_data(raw));
    EXPECT_EQ(set->label_width, 1);
    ASSERT_EQ(static_cast<int64_t>(set->labels.size()), set->n);
    for (int64_t i = 0; i < set->n; ++i) EXPECT_EQ(set->labels[i], (i * 7) % 9) << i;  // (N, 1) int64 labels
  }
  EXPECT_EQ(m.train.n, 6);
  EXPECT_EQ(m.val.n, 3);
  EXPECT_EQ(m.test.n, 4);
}

// RGB -> grey: each value must be the integer nearest to the BT.601 luma 0.299 R + 0.587 G + 0.114 B
// (computed here in double precision); multi-label (N, 14) flags come through unchanged.
TEST_F(MedFormatsTest, MedMnistRgbToGrayIsNearestBt601Luma) {
  const MedImageSet s = load_medmnist_split(dir_ / "rgb_mnist.npz", "train");
  const Bytes rgb = image_data("c_train");  // (5, 4, 3, 3)
  EXPECT_EQ(s.n, 5);
  EXPECT_EQ(s.rows, 4);
  EXPECT_EQ(s.cols, 3);
  EXPECT_EQ(s.channels, 1);
  ASSERT_EQ(s.pixels.size(), 5u * 4 * 3);
  for (size_t p = 0; p < s.pixels.size(); ++p) {
    const double luma = 0.299 * rgb[3 * p] + 0.587 * rgb[3 * p + 1] + 0.114 * rgb[3 * p + 2];
    EXPECT_LE(std::abs(s.pixels[p] - luma), 0.5 + 1e-9) << "pixel " << p;
  }
  EXPECT_EQ(medmnist_rgb_to_gray(255, 255, 255), 255);
  EXPECT_EQ(medmnist_rgb_to_gray(0, 0, 0), 0);
  EXPECT_EQ(s.label_width, 14);
  ASSERT_EQ(s.labels.size(), 5u * 14);
  for (size_t k = 0; k < s.labels.size(); ++k) EXPECT_EQ(s.labels[k], k % 3 == 0 ? 1 : 0) << k;
}

TEST_F(MedFormatsTest, MedMnistKeepChannels) {
  MedMnistOptions opt;
  opt.keep_channels = true;
  const MedMnist m = load_medmnist(dir_ / "rgb_mnist.npz", opt);
  EXPECT_EQ(m.val.channels, 3);
  EXPECT_EQ(m.val.pixels, image_data("c_val"));  // (2, 4, 3, 3) as numpy stored it
  EXPECT_EQ(m.test.pixels, image_data("c_test"));
  EXPECT_EQ(m.test.label_width, 14);
}

TEST_F(MedFormatsTest, MedMnistErrorsNameTheKeyAndTheRule) {
  struct Case {
    std::string file, split;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"missing_key", "val", {"missing key 'val_labels'"}},
      {"n_mismatch", "test", {"N mismatch", "'test_images' holds 4 images", "'test_labels' holds 5 labels"}},
      {"wrong_rank", "train", {"'train_images' has shape (6, 35)", "rank 3 (N, H, W)"}},
      {"wrong_dtype", "val", {"'val_images' has dtype <f4", "must be |u1"}},
      {"float_labels", "train", {"'train_labels' has dtype <f8", "integer dtype"}},
      {"negative_label", "test", {"'test_labels' element 0", "is -1", ">= 0"}},
      {"volume3d", "train", {"'train_images' has shape (6, 4, 4, 4)", "3-D volumes are not supported"}},
      {"gray_mnist", "validation", {"unknown split 'validation'"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const auto p = dir_ / (c.file + ".npz");
    const std::string msg = error_of([&] { load_medmnist_split(p, c.split); });
    EXPECT_HAS(msg, p.string());
    for (const auto& part : c.parts) EXPECT_HAS(msg, part);
  }
  // The whole-file loader stops at the first bad split with the same message.
  EXPECT_HAS(error_of([&] { load_medmnist(dir_ / "missing_key.npz"); }), "missing key 'val_labels'");
}

// ---------------------------------------------------------------------------------------------------------
// VQA-RAD and SLAKE JSON (no numpy needed: the fixtures are JSON text written here)

class MedVqaJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("spikefm_med_vqa_test_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static void write_text(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

  fs::path dir_;
};

// Field layout of "VQA_RAD Dataset Public.json" (Lau et al. 2018), with the variants real files
// contain: qid as int and as string, numeric answers, lower-case / padded answer_type, absent
// optional fields.
constexpr const char* kVqaRad = R"JSON([
  {"qid": 0, "phrase_type": "freeform", "qid_linked_id": "03f451ca-de62-4617-9679-e836026a7642",
   "image_case_url": "https://medpix.nlm.nih.gov/case?id=48e1dd0e", "image_name": "synpic54610.jpg",
   "image_organ": "HEAD", "evaluation": "not evaluated", "question": "Are regions of the brain infarcted?",
   "question_rephrase": "NULL", "question_relation": "NULL", "question_frame": "NULL",
   "question_type": "PRES", "answer": "Yes", "answer_type": "CLOSED"},
  {"qid": "17", "image_name": "synpic29265.jpg", "image_organ": "CHEST",
   "question": "How many lesions are in the right lung?", "question_type": "COUNT",
   "answer": 2, "answer_type": "OPEN"},
  {"qid": 18, "image_name": "synpic31400.jpg", "image_organ": "ABD", "question": "How large is the mass (cm)?",
   "question_type": "SIZE", "answer": 2.5, "answer_type": "closed "},
  {"qid": 19, "image_name": "synpic100.jpg", "question": "Is this a CT?", "answer": "no", "answer_type": "Open",
   "question_type": null}
])JSON";

// Field layout of SLAKE train.json (Liu et al. 2021): one English and one Chinese record per
// question; the Chinese text is given as JSON \u escapes.
constexpr const char* kSlake = R"JSON([
  {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "Which part of the body does this image belong to?",
   "answer": "Abdomen", "q_lang": "en", "location": "Abdomen", "modality": "MRI", "answer_type": "OPEN",
   "base_type": "vqa", "content_type": "Position", "triple": ["vhead", "_", "_"], "qid": 0},
  {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "\u8fd9\u5f20\u56fe\u7247\u5c5e\u4e8e\u8eab\u4f53\u7684\u54ea\u4e2a\u90e8\u4f4d?",
   "answer": "\u8179\u90e8", "q_lang": "zh", "location": "Abdomen", "modality": "MRI", "answer_type": "OPEN",
   "base_type": "vqa", "content_type": "Position", "triple": ["vhead", "_", "_"], "qid": 1},
  {"img_id": "2", "img_name": "xmlab2/source.jpg", "question": "How many kidneys in this image?",
   "answer": 2, "q_lang": "en", "location": "Abdomen", "modality": "CT", "answer_type": "closed",
   "base_type": "vqa", "content_type": "Quantity", "triple": ["vhead", "_", "_"], "qid": "2"}
])JSON";

TEST_F(MedVqaJsonTest, VqaRadRecordsLoad) {
  const auto p = dir_ / "vqa_rad.json";
  write_text(p, kVqaRad);
  const auto r = read_vqa_rad_json(p);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].id, "0");
  EXPECT_EQ(r[0].image, "synpic54610.jpg");
  EXPECT_EQ(r[0].question, "Are regions of the brain infarcted?");
  EXPECT_EQ(r[0].answer, "Yes");
  EXPECT_TRUE(r[0].closed);
  EXPECT_EQ(r[0].question_type, "PRES");
  EXPECT_EQ(r[0].location, "HEAD");
  EXPECT_EQ(r[0].modality, "");
  EXPECT_EQ(r[0].lang, "en");
  EXPECT_EQ(r[1].id, "17");      // string qid
  EXPECT_EQ(r[1].answer, "2");   // integer answer -> "2"
  EXPECT_FALSE(r[1].closed);
  EXPECT_EQ(r[2].answer, "2.5");  // float answer -> "2.5"
  EXPECT_TRUE(r[2].closed);       // "closed " (lower case, trailing blank)
  EXPECT_FALSE(r[3].closed);      // "Open"
  EXPECT_EQ(r[3].location, "");   // absent image_organ
  EXPECT_EQ(r[3].question_type, "");  // null question_type
}

TEST_F(MedVqaJsonTest, SlakeLanguageFilterDefaultsToEnglish) {
  const auto p = dir_ / "slake.json";
  write_text(p, kSlake);
  const auto en = read_slake_json(p);
  ASSERT_EQ(en.size(), 2u);  // the zh record is dropped
  EXPECT_EQ(en[0].id, "0");
  EXPECT_EQ(en[0].image, "xmlab1/source.jpg");
  EXPECT_EQ(en[0].image_id, "1");
  EXPECT_EQ(en[0].answer, "Abdomen");
  EXPECT_FALSE(en[0].closed);
  EXPECT_EQ(en[0].question_type, "Position");
  EXPECT_EQ(en[0].modality, "MRI");
  EXPECT_EQ(en[0].location, "Abdomen");
  EXPECT_EQ(en[1].id, "2");
  EXPECT_EQ(en[1].image_id, "2");
  EXPECT_EQ(en[1].answer, "2");
  EXPECT_TRUE(en[1].closed);
  EXPECT_EQ(en[1].modality, "CT");

  const auto zh = read_slake_json(p, "zh");
  ASSERT_EQ(zh.size(), 1u);
  EXPECT_EQ(zh[0].id, "1");
  EXPECT_EQ(zh[0].lang, "zh");
  EXPECT_EQ(zh[0].answer, "\xe8\x85\xb9\xe9\x83\xa8");  // U+8179 U+90E8 in UTF-8, from the \u escapes
  EXPECT_EQ(read_slake_json(p, "all").size(), 3u);
  EXPECT_HAS(error_of([&] { read_slake_json(p, "de"); }), "unknown language filter 'de'");
}

TEST_F(MedVqaJsonTest, MalformedVqaRadNamesFileRecordAndField) {
  struct Case {
    std::string json;
    std::vector<std::string> parts;
  };
  const std::string ok = R"("image_name": "a.jpg", "question": "q?", "answer": "yes", "answer_type": "CLOSED")";
  const std::vector<Case> cases = {
      {R"({"qid": 1})", {"the top level is an object", "JSON array of records"}},
      {"[{" + ok + R"(}, {"qid": 5, "image_name": "b.jpg", "answer": "no", "answer_type": "OPEN"}])",
       {"record 1 (qid 5): field 'question' is missing"}},
      {R"([{"qid": 7, "image_name": "a.jpg", "question": "q?", "answer": "yes", "answer_type": "MAYBE"}])",
       {"record 0 (qid 7): field 'answer_type' is \"MAYBE\"", "CLOSED", "OPEN"}},
      {R"([{"qid": 8, "image_name": "a.jpg", "question": 42, "answer": "yes", "answer_type": "OPEN"}])",
       {"record 0 (qid 8): field 'question' is an integer, expected a string"}},
      {R"([{"qid": 9, "image_name": null, "question": "q?", "answer": "yes", "answer_type": "OPEN"}])",
       {"record 0 (qid 9): field 'image_name' is null"}},
      {R"([{"qid": 10, "image_name": "a.jpg", "question": "q?", "answer": true, "answer_type": "OPEN"}])",
       {"field 'answer' is a boolean, expected a string or a number"}},
      {"[{" + ok + R"(, "qid": 1.5}])", {"record 0: field 'qid' is a floating-point number"}},
      {"[{" + ok + "}, 3]", {"record 1 is an integer, expected an object"}},
      {"[{" + ok + R"(, "image_organ": ["HEAD"]}])", {"field 'image_organ' is an array"}},
      {"[{" + ok + "}", {"not valid JSON"}},
  };
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    const auto p = dir_ / ("bad_vqa_rad_" + std::to_string(k++) + ".json");
    write_text(p, c.json);
    const std::string msg = error_of([&] { read_vqa_rad_json(p); });
    EXPECT_HAS(msg, "reading VQA-RAD JSON " + p.string());
    for (const auto& part : c.parts) EXPECT_HAS(msg, part);
  }
  EXPECT_HAS(error_of([&] { read_vqa_rad_json(dir_ / "absent.json"); }), "does not exist");
}

TEST_F(MedVqaJsonTest, MalformedSlakeNamesFileRecordAndField) {
  struct Case {
    std::string json;
    std::string part;
  };
  const std::string base = R"("img_name": "x/source.jpg", "question": "q?", "answer": "yes", "answer_type": "CLOSED")";
  const std::vector<Case> cases = {
      {R"("just a string")", "the top level is a string"},
      {"[{" + base + R"(, "qid": 3}])", "record 0 (qid 3): field 'q_lang' is missing"},
      {"[{" + base + R"(, "q_lang": "fr", "qid": 4}])", "record 0 (qid 4): field 'q_lang' is \"fr\""},
      // A zh record is validated even though the English filter drops it.
      {"[{" + base + R"(, "q_lang": "en"}, {"img_name": "y.jpg", "answer": "a", "answer_type": "OPEN", "q_lang": "zh", "qid": 11}])",
       "record 1 (qid 11): field 'question' is missing"},
      {"[{" + base + R"(, "q_lang": "en", "modality": 3}])", "record 0: field 'modality' is an integer"},
      {"[{" + base + R"(, "q_lang": "en", "img_id": [1]}])", "field 'img_id' is an array"},
  };
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    const auto p = dir_ / ("bad_slake_" + std::to_string(k++) + ".json");
    write_text(p, c.json);
    const std::string msg = error_of([&] { read_slake_json(p); });
    EXPECT_HAS(msg, "reading SLAKE JSON " + p.string());
    EXPECT_HAS(msg, c.part);
  }
}

}  // namespace
}  // namespace spikefm
