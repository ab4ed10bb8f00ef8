// Med-VQA and its readers/writers:
//   - the .inv3 reader on the real Cranium.inv3 against an independent reader (/usr/bin/python3 with
//     tarfile + plistlib + numpy), and on small archives written here byte by byte (POSIX ustar
//     layout, zlib's gz* API) with every kind of damage the reader promises to refuse;
//   - the PNG writer against a decoder written in python (zlib + struct);
//   - the benchmark: determinism, split sizes and disjointness, answers against the generation
//     record and against what the rendered slices show (difference images with and without the
//     lesions, read in radiological convention), tokenizer coverage, balance.
// The tests that need the CT skip (GTEST_SKIP) only when the file is absent.
#include "datasets/med_vqa.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "datasets/inv3_reader.h"
#include "datasets/nifti.h"
#include "datasets/png_writer.h"
#include "tests/test_process.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const char* kPython = "/usr/bin/python3";

// ---- helpers -----------------------------------------------------------------------------------------

fs::path make_temp_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir =
      fs::temp_directory_path() / ("spikefm_medvqa_" + tag + "_" + std::to_string(::getpid()) + "_" +
                                   (info ? std::string(info->name()) : std::string("suite")) + "_" +
                                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << p;
}

Bytes read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

using spikefm::test::run_command;

// One POSIX ustar entry (header + data padded to 512 bytes), written from the format spec.
Bytes tar_entry(const std::string& name, const Bytes& data, char type = '0') {
  Bytes h(512, 0);
  std::copy(name.begin(), name.end(), h.begin());
  auto put_octal = [&](size_t off, size_t width, uint64_t v) {
    // width - 1 octal digits, then NUL
    for (size_t i = 0; i < width - 1; ++i) {
      h[off + width - 2 - i] = static_cast<uint8_t>('0' + (v & 7));
      v >>= 3;
    }
    h[off + width - 1] = 0;
  };
  put_octal(100, 8, 0644);          // mode
  put_octal(108, 8, 0);             // uid
  put_octal(116, 8, 0);             // gid
  put_octal(124, 12, data.size());  // size
  put_octal(136, 12, 1347635530);   // mtime
  h[156] = static_cast<uint8_t>(type);
  const char magic[] = "ustar";
  std::copy(magic, magic + 6, h.begin() + 257);  // "ustar\0"
  h[263] = '0';
  h[264] = '0';
  std::fill(h.begin() + 148, h.begin() + 156, ' ');  // checksum computed with its field as spaces
  unsigned sum = 0;
  for (uint8_t b : h) sum += b;
  char chk[8];
  std::snprintf(chk, sizeof chk, "%06o", sum);
  std::copy(chk, chk + 6, h.begin() + 148);
  h[154] = 0;
  h[155] = ' ';
  Bytes out((512 + data.size() + 511) / 512 * 512, 0);  // header, data, zero padding
  std::copy(h.begin(), h.end(), out.begin());
  for (size_t i = 0; i < data.size(); ++i) out[512 + i] = data[i];
  return out;
}

Bytes tar_end() { return Bytes(1024, 0); }

Bytes concat(std::vector<Bytes> parts) {
  Bytes out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A main.plist in InVesalius's layout (keys sorted, tabs, the Apple DOCTYPE).
std::string main_plist(const std::string& dtype, const std::string& shape_xml, const std::string& spacing_xml,
                       const std::string& extra = "") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" "
         "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
         "<plist version=\"1.0\">\n<dict>\n"
         "\t<key>annotations</key>\n\t<dict>\n\t</dict>\n"
         "\t<key>format_version</key>\n\t<integer>1</integer>\n"
         "\t<key>matrix</key>\n\t<dict>\n"
         "\t\t<key>dtype</key>\n\t\t<string>" +
         dtype +
         "</string>\n"
         "\t\t<key>filename</key>\n\t\t<string>matrix.dat</string>\n"
         "\t\t<key>shape</key>\n\t\t<array>\n" +
         shape_xml +
         "\t\t</array>\n"
         "\t</dict>\n"
         "\t<key>modality</key>\n\t<string>CT</string>\n"
         "\t<key>name</key>\n\t<string>Test &amp; phantom &#x41;</string>\n"
         "\t<key>scalar_range</key>\n\t<array>\n\t\t<integer>-1024</integer>\n\t\t<integer>3071</integer>\n\t</array>\n"
         "\t<key>spacing</key>\n\t<array>\n" +
         spacing_xml +
         "\t</array>\n"
         "\t<key>visible</key>\n\t<true/>\n" +
         extra + "</dict>\n</plist>\n";
}

const std::string kShape456 = "\t\t\t<integer>4</integer>\n\t\t\t<integer>5</integer>\n\t\t\t<integer>6</integer>\n";
const std::string kSpacing = "\t\t<real>0.5</real>\n\t\t<real>0.75</real>\n\t\t<integer>2</integer>\n";

// (4, 5, 6) int16 little-endian volume with values v(i) = (i * 37) % 2000 - 1000.
Bytes small_volume(size_t voxels = 4 * 5 * 6) {
  Bytes b;
  for (size_t i = 0; i < voxels; ++i) {
    const auto v = static_cast<int16_t>(static_cast<int>((i * 37) % 2000) - 1000);
    const auto u = static_cast<uint16_t>(v);
    b.push_back(static_cast<uint8_t>(u & 0xff));
    b.push_back(static_cast<uint8_t>(u >> 8));
  }
  return b;
}

class Inv3SmallTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("inv3"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path gzip_file(const std::string& name, const Bytes& raw) {
    const auto p = dir_ / name;
    gzFile gz = gzopen(p.c_str(), "wb9");
    EXPECT_NE(gz, nullptr);
    if (!raw.empty()) {
      EXPECT_EQ(gzwrite(gz, raw.data(), static_cast<unsigned>(raw.size())), static_cast<int>(raw.size()));
    }
    EXPECT_EQ(gzclose(gz), Z_OK);
    return p;
  }

  // The message of the spikefm::Error load_inv3 throws (fails the test if it throws nothing).
  std::string error_of(const fs::path& p) {
    try {
      load_inv3(p);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "load_inv3(" << p << ") did not throw";
    return {};
  }

  Bytes good_tar(const std::string& plist) {
    return concat({tar_entry("tmpabc", {}, '5'), tar_entry("tmpabc/main.plist", text_bytes(plist)),
                   tar_entry("tmpabc/matrix.dat", small_volume()), tar_end()});
  }

  fs::path dir_;
};

TEST_F(Inv3SmallTest, ReadsAHandWrittenArchive) {
  const auto p = gzip_file("ok.inv3", good_tar(main_plist("int16", kShape456, kSpacing)));
  const CtVolume v = load_inv3(p);
  EXPECT_EQ(v.depth, 4);
  EXPECT_EQ(v.rows, 5);
  EXPECT_EQ(v.cols, 6);
  // plist spacing is (x, y, z) = (0.5, 0.75, 2); CtVolume holds (z, y, x).
  EXPECT_EQ(v.spacing_mm, (std::array<double, 3>{2.0, 0.75, 0.5}));
  EXPECT_EQ(v.modality, "CT");
  ASSERT_EQ(v.hu.size(), 120u);
  for (size_t i = 0; i < v.hu.size(); ++i) {
    ASSERT_EQ(v.hu[i], static_cast<int16_t>(static_cast<int>((i * 37) % 2000) - 1000)) << i;
  }
  EXPECT_EQ(v.at(3, 4, 5), v.hu[119]);
}

TEST_F(Inv3SmallTest, NotGzip) {
  const auto p = dir_ / "plain.inv3";
  write_bytes(p, good_tar(main_plist("int16", kShape456, kSpacing)));
  EXPECT_NE(error_of(p).find("not gzip"), std::string::npos) << error_of(p);
}

TEST_F(Inv3SmallTest, MissingFileSaysSo) {
  EXPECT_NE(error_of(dir_ / "nope.inv3").find("does not exist"), std::string::npos);
}

TEST_F(Inv3SmallTest, TruncatedGzip) {
  const auto p = gzip_file("full.inv3", good_tar(main_plist("int16", kShape456, kSpacing)));
  Bytes gz = read_bytes(p);
  gz.resize(gz.size() * 6 / 10);
  const auto cut = dir_ / "cut.inv3";
  write_bytes(cut, gz);
  const std::string e = error_of(cut);
  EXPECT_NE(e.find("truncated gzip"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, TarWithMatrixCutShort) {
  Bytes tar = good_tar(main_plist("int16", kShape456, kSpacing));
  // Entries: dir header (512), plist header + 1 block of data, matrix header (512) + data. Cut the
  // archive 100 bytes into matrix.dat's data.
  const size_t matrix_header = 512 + 512 + (main_plist("int16", kShape456, kSpacing).size() + 511) / 512 * 512;
  tar.resize(matrix_header + 512 + 100);
  const std::string e = error_of(gzip_file("short.inv3", tar));
  EXPECT_NE(e.find("truncated tar"), std::string::npos) << e;
  EXPECT_NE(e.find("tmpabc/matrix.dat"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, MissingPlist) {
  const Bytes tar = concat({tar_entry("tmpabc/matrix.dat", small_volume()), tar_end()});
  const std::string e = error_of(gzip_file("noplist.inv3", tar));
  EXPECT_NE(e.find("missing member main.plist"), std::string::npos) << e;
  EXPECT_NE(e.find("tmpabc/matrix.dat"), std::string::npos) << e;  // lists what the archive holds
}

TEST_F(Inv3SmallTest, MissingMatrix) {
  const Bytes tar =
      concat({tar_entry("tmpabc/main.plist", text_bytes(main_plist("int16", kShape456, kSpacing))), tar_end()});
  const std::string e = error_of(gzip_file("nomatrix.inv3", tar));
  EXPECT_NE(e.find("missing member 'tmpabc/matrix.dat'"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, SizeNotShapeTimesDtype) {
  const Bytes tar = concat({tar_entry("tmpabc/main.plist", text_bytes(main_plist("int16", kShape456, kSpacing))),
                            tar_entry("tmpabc/matrix.dat", small_volume(119)), tar_end()});
  const std::string e = error_of(gzip_file("size.inv3", tar));
  EXPECT_NE(e.find("238 bytes, but shape (4, 5, 6) x int16 (2 bytes) = 240 bytes"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, UnknownDtype) {
  const std::string e = error_of(gzip_file("dtype.inv3", good_tar(main_plist("float32", kShape456, kSpacing))));
  EXPECT_NE(e.find("unknown dtype 'float32'"), std::string::npos) << e;
  EXPECT_NE(e.find("main.plist"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, BadShapeAndSpacing) {
  const std::string two = "\t\t\t<integer>4</integer>\n\t\t\t<integer>5</integer>\n";
  EXPECT_NE(
      error_of(gzip_file("s2.inv3", good_tar(main_plist("int16", two, kSpacing)))).find("matrix/shape' has 2 elements"),
      std::string::npos);
  const std::string neg = "\t\t<real>0.5</real>\n\t\t<real>-1</real>\n\t\t<real>2</real>\n";
  EXPECT_NE(error_of(gzip_file("sp.inv3", good_tar(main_plist("int16", kShape456, neg)))).find("'spacing' element 1"),
            std::string::npos);
}

TEST_F(Inv3SmallTest, MalformedPlistNamesMemberAndLine) {
  const std::string data_elem = "\t<key>blob</key>\n\t<data>AAAA</data>\n";
  std::string e = error_of(gzip_file("data.inv3", good_tar(main_plist("int16", kShape456, kSpacing, data_elem))));
  EXPECT_NE(e.find("tmpabc/main.plist, line"), std::string::npos) << e;
  EXPECT_NE(e.find("unsupported plist element <data>"), std::string::npos) << e;

  std::string broken = main_plist("int16", kShape456, kSpacing);
  broken.resize(broken.size() / 2);  // ends inside the dict
  e = error_of(gzip_file("half.inv3", good_tar(broken)));
  EXPECT_NE(e.find("main.plist, line"), std::string::npos) << e;

  const std::string bad_int = main_plist(
      "int16", "\t\t\t<integer>4x</integer>\n\t\t\t<integer>5</integer>\n\t\t\t<integer>6</integer>\n", kSpacing);
  e = error_of(gzip_file("int.inv3", good_tar(bad_int)));
  EXPECT_NE(e.find("<integer> '4x'"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, BadTarChecksum) {
  Bytes tar = good_tar(main_plist("int16", kShape456, kSpacing));
  tar[512 + 10] ^= 0x20;  // a byte of the plist entry's name
  const std::string e = error_of(gzip_file("chk.inv3", tar));
  EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
}

TEST_F(Inv3SmallTest, ByteSwappedDataFailsScalarRange) {
  Bytes vol = small_volume();
  for (size_t i = 0; i + 1 < vol.size(); i += 2) std::swap(vol[i], vol[i + 1]);
  const Bytes tar = concat({tar_entry("tmpabc/main.plist", text_bytes(main_plist("int16", kShape456, kSpacing))),
                            tar_entry("tmpabc/matrix.dat", vol), tar_end()});
  const std::string e = error_of(gzip_file("swap.inv3", tar));
  EXPECT_NE(e.find("outside the scalar_range"), std::string::npos) << e;
}

// ---- the real volume ------------------------------------------------------------------------------------

bool have_ct() { return fs::exists(default_inv3_path()); }

std::shared_ptr<const CtVolume> shared_ct() {
  static std::shared_ptr<const CtVolume> ct = std::make_shared<const CtVolume>(load_inv3(default_inv3_path()));
  return ct;
}

#define SKIP_WITHOUT_CT() \
  if (!have_ct()) GTEST_SKIP() << default_inv3_path() << " is absent (apt-get install invesalius-examples)"

bool have_mr() { return fs::exists(default_nifti_mr_path()); }

std::shared_ptr<const NiftiVolume> shared_mr() {
  static std::shared_ptr<const NiftiVolume> mr =
      std::make_shared<const NiftiVolume>(read_nifti(default_nifti_mr_path()));
  return mr;
}

// Med-VQA needs both scans.
#define SKIP_WITHOUT_SCANS()                                                                                 \
  SKIP_WITHOUT_CT();                                                                                         \
  if (!have_mr()) GTEST_SKIP() << default_nifti_mr_path() << " is absent (apt-get install python3-nibabel)"

TEST(Inv3Real, MatchesPythonReader) {
  SKIP_WITHOUT_CT();
  const CtVolume v = *shared_ct();
  // Independent reader: python's tarfile + plistlib + numpy.
  const fs::path dir = make_temp_dir("py");
  const fs::path script = dir / "read_inv3.py";
  {
    std::ofstream f(script);
    f << "import sys, tarfile, plistlib\n"
         "import numpy as np\n"
         "with tarfile.open(sys.argv[1], 'r:gz') as t:\n"
         "    main = [n for n in t.getnames() if n.split('/')[-1] == 'main.plist'][0]\n"
         "    d = plistlib.loads(t.extractfile(main).read())\n"
         "    folder = main.rsplit('/', 1)[0] + '/' if '/' in main else ''\n"
         "    raw = t.extractfile(folder + d['matrix']['filename']).read()\n"
         "assert d['matrix']['dtype'] == 'int16'\n"
         "a = np.frombuffer(raw, dtype='<i2').reshape(d['matrix']['shape']).astype(np.int64)\n"
         "sp = d['spacing']\n"
         "flat = a.ravel()\n"
         "weighted = int((flat * (np.arange(flat.size) % 65521)).sum())\n"
         "print(a.shape[0], a.shape[1], a.shape[2], repr(float(sp[0])), repr(float(sp[1])), repr(float(sp[2])),\n"
         "      int(flat.sum()), weighted, int(a.min()), int(a.max()))\n"
         "for z, y, x in [(0, 0, 0), (54, 128, 128), (107, 255, 255), (30, 100, 200), (80, 180, 60)]:\n"
         "    print(int(a[z, y, x]))\n";
  }
  int status = 0;
  const std::string out =
      run_command(std::string(kPython) + " " + script.string() + " " + default_inv3_path().string(), &status);
  fs::remove_all(dir);
  ASSERT_EQ(status, 0) << "python reader failed: " << out;
  std::istringstream in(out);
  int64_t d, r, c, sum, weighted, lo, hi;
  double sx, sy, sz;
  in >> d >> r >> c >> sx >> sy >> sz >> sum >> weighted >> lo >> hi;
  ASSERT_FALSE(in.fail()) << out;
  EXPECT_EQ(v.depth, d);
  EXPECT_EQ(v.rows, r);
  EXPECT_EQ(v.cols, c);
  EXPECT_EQ(v.spacing_mm, (std::array<double, 3>{sz, sy, sx}));  // python prints plist order (x, y, z)
  int64_t my_sum = 0, my_weighted = 0;
  int16_t my_lo = 32767, my_hi = -32768;
  for (size_t i = 0; i < v.hu.size(); ++i) {
    my_sum += v.hu[i];
    my_weighted += static_cast<int64_t>(v.hu[i]) * static_cast<int64_t>(i % 65521);
    my_lo = std::min(my_lo, v.hu[i]);
    my_hi = std::max(my_hi, v.hu[i]);
  }
  EXPECT_EQ(my_sum, sum);
  EXPECT_EQ(my_weighted, weighted);
  EXPECT_EQ(my_lo, lo);
  EXPECT_EQ(my_hi, hi);
  const int64_t at[5][3] = {{0, 0, 0}, {54, 128, 128}, {107, 255, 255}, {30, 100, 200}, {80, 180, 60}};
  for (const auto& p : at) {
    int64_t want;
    in >> want;
    ASSERT_FALSE(in.fail());
    if (p[0] < v.depth && p[1] < v.rows && p[2] < v.cols) {
      EXPECT_EQ(v.at(p[0], p[1], p[2]), want);
    }
  }
}

TEST(Inv3Real, HounsfieldRangeIsPlausible) {
  SKIP_WITHOUT_CT();
  const CtVolume& v = *shared_ct();
  // Physics: air is -1000 HU, cortical bone > 700 HU; a head CT has much of both.
  size_t air = 0, bone = 0;
  for (int16_t h : v.hu) {
    air += h >= -1050 && h <= -950;
    bone += h > 700;
  }
  EXPECT_GT(static_cast<double>(air) / v.hu.size(), 0.2);
  EXPECT_GT(bone, 10000u);
  // The corner voxel (outside the head) is air.
  EXPECT_NEAR(v.at(0, 0, 0), -1000, 60);
  EXPECT_EQ(v.modality, "CT");
}

// ---- PNG writer ---------------------------------------------------------------------------------------------

TEST(PngWriter, PythonDecodesTheSamePixels) {
  const fs::path dir = make_temp_dir("png");
  const int64_t rows = 37, cols = 53;  // odd sizes, not square
  std::vector<uint8_t> px(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 131 + i / 7) % 256);
  const fs::path png = dir / "t.png";
  write_png_gray8(png, px, rows, cols);
  // Independent decoder: chunk walk with CRC check, zlib inflate, filter-0 scanlines.
  const fs::path script = dir / "dec.py";
  {
    std::ofstream f(script);
    f << "import sys, struct, zlib\n"
         "d = open(sys.argv[1], 'rb').read()\n"
         "assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
         "pos, idat = 8, b''\n"
         "while pos < len(d):\n"
         "    n, = struct.unpack('>I', d[pos:pos+4]); t = d[pos+4:pos+8]; c = d[pos+8:pos+8+n]\n"
         "    crc, = struct.unpack('>I', d[pos+8+n:pos+12+n])\n"
         "    assert crc == zlib.crc32(t + c) & 0xffffffff, t\n"
         "    if t == b'IHDR':\n"
         "        w, h, depth, ctype, comp, filt, inter = struct.unpack('>IIBBBBB', c)\n"
         "        assert (depth, ctype, comp, filt, inter) == (8, 0, 0, 0, 0)\n"
         "    if t == b'IDAT': idat += c\n"
         "    pos += 12 + n\n"
         "    if t == b'IEND': break\n"
         "assert pos == len(d)\n"
         "raw = zlib.decompress(idat)\n"
         "assert len(raw) == h * (w + 1)\n"
         "out = b''\n"
         "for r in range(h):\n"
         "    assert raw[r * (w + 1)] == 0\n"
         "    out += raw[r * (w + 1) + 1:(r + 1) * (w + 1)]\n"
         "print(h, w, out.hex())\n";
  }
  int status = 0;
  const std::string out = run_command(std::string(kPython) + " " + script.string() + " " + png.string(), &status);
  ASSERT_EQ(status, 0) << out;
  std::istringstream in(out);
  int64_t h, w;
  std::string hex;
  in >> h >> w >> hex;
  EXPECT_EQ(h, rows);
  EXPECT_EQ(w, cols);
  std::string want;
  for (uint8_t b : px) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", b);
    want += buf;
  }
  EXPECT_EQ(hex, want);
  fs::remove_all(dir);
}

TEST(PngWriter, RefusesBadSizes) {
  EXPECT_THROW(encode_png_gray8(std::vector<uint8_t>(10), 3, 3), Error);
  EXPECT_THROW(encode_png_gray8({}, 0, 5), Error);
}

// ---- the benchmark ----------------------------------------------------------------------------------------

MedVqaOptions small_options(uint64_t seed) {
  MedVqaOptions o;
  o.seed = seed;
  o.train_images = 240;
  o.val_images = 40;
  o.test_images = 80;
  return o;
}

const char* kSplits[] = {"train", "val", "test"};

// The table of docs/benchmarks.md, written out here: which types each image gets.
int expected_question_count(const MedVqaImageRecord& r) {
  if (r.modality == MedModality::mr) return 3;                               // modality, plane, organ
  int n = 4;                                                                 // modality, plane, organ, window
  if (r.plane == CtPlane::axial) ++n;                                        // level
  if (r.window == CtWindow::brain) n += 4 + (r.plane != CtPlane::sagittal);  // abnormal count size density (+side)
  return n;
}

TEST(MedVqa, DeterministicForASeedAndDifferentAcrossSeeds) {
  SKIP_WITHOUT_SCANS();
  const MedVqa a(small_options(7), shared_ct(), shared_mr()), b(small_options(7), shared_ct(), shared_mr());
  const MedVqa c(small_options(8), shared_ct(), shared_mr());
  for (const char* s : kSplits) {
    EXPECT_EQ(a.images(s).pixels, b.images(s).pixels) << s;
    EXPECT_EQ(a.images(s).labels, b.images(s).labels) << s;
    EXPECT_NE(a.images(s).pixels, c.images(s).pixels) << s;
    const auto sa = a.samples(s), sb = b.samples(s);
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      ASSERT_EQ(a.question_text(sa[i]), b.question_text(sb[i]));
      ASSERT_EQ(a.answer(s, sa[i]), b.answer(s, sb[i]));
    }
  }
}

TEST(MedVqa, SplitSizesAndNoSharedImage) {
  SKIP_WITHOUT_SCANS();
  const MedVqaOptions o = small_options(3);
  const MedVqa m(o, shared_ct(), shared_mr());
  const int64_t want[3] = {o.train_images, o.val_images, o.test_images};
  std::map<std::pair<int, int64_t>, int> owner;  // (CT plane 0..2 or MR 3, slice) -> split
  std::set<std::string> pixels_seen;
  for (int s = 0; s < 3; ++s) {
    const ImageSet& set = m.images(kSplits[s]);
    ASSERT_EQ(set.n, want[s]);
    ASSERT_EQ(set.rows, 48);
    ASSERT_EQ(set.cols, 48);
    ASSERT_EQ(set.pixels.size(), static_cast<size_t>(want[s] * 48 * 48));
    const auto& recs = m.records(kSplits[s]);
    ASSERT_EQ(static_cast<int64_t>(recs.size()), want[s]);
    size_t questions = 0;
    for (size_t i = 0; i < recs.size(); ++i) {
      const int source = recs[i].modality == MedModality::mr ? 3 : static_cast<int>(recs[i].plane);
      const auto key = std::make_pair(source, recs[i].slice);
      const auto [it, fresh] = owner.emplace(key, s);
      EXPECT_EQ(it->second, s) << "slice " << recs[i].slice << " of plane " << key.first << " is in two splits";
      // The documented dealing rule: slice index mod 10 in 0..6 train, 7 val, 8..9 test.
      const int64_t mod = recs[i].slice % 10;
      EXPECT_EQ(s, mod <= 6 ? 0 : (mod == 7 ? 1 : 2));
      const std::string px(set.pixels.begin() + static_cast<std::ptrdiff_t>(i * 48 * 48),
                           set.pixels.begin() + static_cast<std::ptrdiff_t>((i + 1) * 48 * 48));
      EXPECT_TRUE(pixels_seen.insert(px).second) << "image " << i << " of " << kSplits[s] << " repeats";
      questions += static_cast<size_t>(expected_question_count(recs[i]));
    }
    EXPECT_EQ(m.samples(kSplits[s]).size(), questions);
  }
  EXPECT_THROW(m.images("dev"), Error);
}

TEST(MedVqa, AnswersFollowTheGenerationRecord) {
  SKIP_WITHOUT_SCANS();
  const MedVqa m(small_options(11), shared_ct(), shared_mr());
  const auto mid = m.midline();
  const auto& names = MedVqa::type_names();
  // Size classes by longest diameter (mm), as documented.
  auto size_of = [](double diameter) -> std::string {
    if (diameter >= 10 && diameter <= 16) return "small";
    if (diameter >= 20 && diameter <= 28) return "medium";
    if (diameter >= 32 && diameter <= 40) return "large";
    return "outside every class";
  };
  for (const char* s : kSplits) {
    const auto& recs = m.records(s);
    const ImageSet& set = m.images(s);
    for (const auto& smp : m.samples(s)) {
      const MedVqaImageRecord& r = recs[static_cast<size_t>(smp.image)];
      const std::string ans = m.answer(s, smp);
      const std::string& type = names[static_cast<size_t>(smp.type)];
      const auto n = r.lesions.size();
      if (type == "count") {
        EXPECT_EQ(ans, std::to_string(n));
      } else if (type == "abnormal") {
        EXPECT_EQ(ans, n ? "yes" : "no");
      } else if (type == "plane") {
        EXPECT_EQ(ans, (std::array<const char*, 3>{"axial", "coronal", "sagittal"})[static_cast<size_t>(r.plane)]);
      } else if (type == "window") {
        EXPECT_EQ(ans, r.window == CtWindow::brain ? "brain" : "bone");
      } else if (type == "side") {
        // Side from the lesion centre and the midline plane x = a + b*y + c*z (patient left = +x).
        std::set<std::string> sides;
        for (const auto& l : r.lesions) {
          sides.insert(l.center_mm[2] > mid[0] + mid[1] * l.center_mm[1] + mid[2] * l.center_mm[0] ? "left" : "right");
        }
        EXPECT_EQ(ans, sides.empty() ? "none" : (sides.size() == 2 ? "both" : *sides.begin()));
      } else if (type == "size") {
        double longest = 0;
        for (const auto& l : r.lesions) longest = std::max(longest, 2 * l.semi_axes_mm[0]);
        EXPECT_EQ(ans, n ? size_of(longest) : "none");
      } else if (type == "density") {
        EXPECT_EQ(ans, n ? (r.lesions[0].delta_hu > 0 ? "hyperdense" : "hypodense") : "none");
        for (const auto& l : r.lesions) {
          EXPECT_TRUE((l.delta_hu >= 35 && l.delta_hu <= 55) || (l.delta_hu >= -30 && l.delta_hu <= -15)) << l.delta_hu;
          EXPECT_EQ(l.delta_hu > 0, r.lesions[0].delta_hu > 0);  // one density per image
        }
      } else if (type == "modality") {
        EXPECT_EQ(ans, r.modality == MedModality::mr ? "mri" : "ct");
      } else if (type == "organ") {
        EXPECT_EQ(ans, "brain");
      }
      if (r.modality == MedModality::mr) {
        EXPECT_EQ(set.labels[static_cast<size_t>(smp.image)], 24);
        EXPECT_EQ(r.plane, CtPlane::axial);
        EXPECT_TRUE(r.lesions.empty());
      } else {
        EXPECT_EQ(set.labels[static_cast<size_t>(smp.image)],
                  static_cast<int>(r.plane) + 3 * static_cast<int>(r.window) + 6 * static_cast<int>(n));
      }
      // val/test ask the canonical question.
      if (std::string(s) != "train") {
        EXPECT_EQ(smp.paraphrase, 0);
      }
    }
    for (const auto& r : recs) {
      EXPECT_LE(r.lesions.size(), 3u);
      for (int t = 0; t < kMedQuestionTypes; ++t) {
        if (!MedVqa::applies(r, t)) {
          EXPECT_THROW(m.answer_for(r, t), Error);
        }
      }
    }
  }
}

// 4-connected components of a boolean (N, N) image.
std::vector<std::vector<int64_t>> components(const std::vector<uint8_t>& on, int64_t N) {
  std::vector<uint8_t> seen(on.size(), 0);
  std::vector<std::vector<int64_t>> out;
  for (int64_t s = 0; s < N * N; ++s) {
    if (!on[static_cast<size_t>(s)] || seen[static_cast<size_t>(s)]) continue;
    std::vector<int64_t> comp = {s};
    seen[static_cast<size_t>(s)] = 1;
    for (size_t q = 0; q < comp.size(); ++q) {
      const int64_t y = comp[q] / N, x = comp[q] % N;
      const int64_t nb[4][2] = {{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}};
      for (const auto& p : nb) {
        if (p[0] < 0 || p[0] >= N || p[1] < 0 || p[1] >= N) continue;
        const int64_t j = p[0] * N + p[1];
        if (on[static_cast<size_t>(j)] && !seen[static_cast<size_t>(j)]) {
          seen[static_cast<size_t>(j)] = 1;
          comp.push_back(j);
        }
      }
    }
    out.push_back(comp);
  }
  return out;
}

// What the rendered slices show, read without the generator's geometry: the difference between the
// slice with and without the lesions has one blob per lesion, as wide as its diameter, raising
// (hyperdense) or lowering (hypodense) the HU by about delta, and — radiological convention, no
// augmentation — on the image's right half exactly when the lesion is on the patient's left.
TEST(MedVqa, RenderedLesionsMatchTheAnswers) {
  SKIP_WITHOUT_SCANS();
  MedVqaOptions o = small_options(5);
  o.augment = false;
  o.image_size = 128;
  o.train_images = 0;
  o.val_images = 0;
  o.test_images = 60;
  const MedVqa m(o, shared_ct(), shared_mr());
  const int64_t N = o.image_size;
  const double pix = m.fov_mm() / static_cast<double>(N);
  const auto mid = m.midline();
  int checked = 0, sided = 0;
  for (const auto& r : m.records("test")) {
    if (r.lesions.empty()) continue;
    const std::vector<float> with = m.render_hu(r, true, false), without = m.render_hu(r, false, false);
    double min_abs_delta = 1e9;
    for (const auto& l : r.lesions) min_abs_delta = std::min(min_abs_delta, std::abs(l.delta_hu));
    std::vector<uint8_t> on(static_cast<size_t>(N * N));
    bool any_left_col = false, any_right_col = false;  // changed pixels in the image's left/right half
    for (int64_t i = 0; i < N * N; ++i) {
      const double d = with[static_cast<size_t>(i)] - without[static_cast<size_t>(i)];
      on[static_cast<size_t>(i)] = std::abs(d) > 0.5 * min_abs_delta;
      if (d != 0) ((i % N) < N / 2 ? any_left_col : any_right_col) = true;
    }
    const auto comps = components(on, N);
    EXPECT_EQ(comps.size(), r.lesions.size()) << "plane " << static_cast<int>(r.plane) << " slice " << r.slice;
    // Each blob: HU raised/lowered by most of delta, extent close to the nominal diameter.
    std::vector<double> extents;
    for (const auto& comp : comps) {
      double sum = 0;
      int64_t r0 = N, r1 = -1, c0 = N, c1 = -1;
      for (int64_t i : comp) {
        sum += with[static_cast<size_t>(i)] - without[static_cast<size_t>(i)];
        r0 = std::min(r0, i / N), r1 = std::max(r1, i / N), c0 = std::min(c0, i % N), c1 = std::max(c1, i % N);
      }
      const double mean = sum / static_cast<double>(comp.size());
      if (r.lesions[0].delta_hu > 0) {
        EXPECT_GT(mean, 0.6 * min_abs_delta);
      } else {
        EXPECT_LT(mean, -0.6 * min_abs_delta);
      }
      extents.push_back(std::max(r1 - r0 + 1, c1 - c0 + 1) * pix);
    }
    // Longest blob vs longest nominal diameter (a blob's bounding box is between b and a wide, so
    // compare the largest of each; 2 pixels of slack for the soft edge and the threshold).
    double longest = 0;
    for (const auto& l : r.lesions) longest = std::max(longest, 2 * l.semi_axes_mm[0]);
    if (!extents.empty()) {
      const double got = *std::max_element(extents.begin(), extents.end());
      EXPECT_GT(got, 0.7 * longest - 2 * pix);
      EXPECT_LT(got, longest + 2 * pix);
    }
    // Side, from the midline only (not from the record's side field).
    if (r.plane != CtPlane::sagittal) {
      bool left = false, right = false;
      for (const auto& l : r.lesions) {
        (l.center_mm[2] > mid[0] + mid[1] * l.center_mm[1] + mid[2] * l.center_mm[0] ? left : right) = true;
      }
      if (left != right) {
        // Patient left = image right: only that half changes.
        EXPECT_EQ(any_right_col, left);
        EXPECT_EQ(any_left_col, right);
        ++sided;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 15);
  EXPECT_GT(sided, 3);
}

// The stored pixels are the standard window applied to the rendered HU (with noise).
TEST(MedVqa, PixelsAreTheWindowedSlice) {
  SKIP_WITHOUT_SCANS();
  const MedVqa m(small_options(9), shared_ct(), shared_mr());
  const ImageSet& set = m.images("val");
  const auto& recs = m.records("val");
  size_t mismatched = 0, total = 0;
  int mr_images = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    const std::vector<float> hu = m.render_hu(recs[i], true, true);
    // Brain W 80 / L 40, bone W 2000 / L 500 (standard head-CT presets); MR: 255 at the reference.
    const bool mr = recs[i].modality == MedModality::mr;
    mr_images += mr;
    const double w = mr ? m.mr_reference() : (recs[i].window == CtWindow::brain ? 80 : 2000);
    const double l = mr ? w / 2 : (recs[i].window == CtWindow::brain ? 40 : 500);
    for (size_t k = 0; k < hu.size(); ++k) {
      const double g = std::clamp(std::round(255.0 * (hu[k] - (l - w / 2)) / w), 0.0, 255.0);
      const int got = set.pixels[i * hu.size() + k];
      ASSERT_LE(std::abs(got - static_cast<int>(g)), 1);
      mismatched += got != static_cast<int>(g);
      ++total;
    }
  }
  EXPECT_LT(static_cast<double>(mismatched), 0.001 * static_cast<double>(total));
  EXPECT_GT(mr_images, 0);
}

TEST(MedVqa, TokenizerCoversEveryQuestionAndAnswer) {
  SKIP_WITHOUT_SCANS();
  const WordTokenizer tok = MedVqa::make_tokenizer();
  const MedVqa m(small_options(2), shared_ct(), shared_mr());
  for (const char* s : kSplits) {
    for (const auto& smp : m.samples(s)) {
      for (const std::string& text : {m.question_text(smp), m.answer(s, smp)}) {
        for (int id : tok.encode(text)) ASSERT_NE(id, WordTokenizer::kUnk) << text;
      }
    }
  }
  for (int t = 0; t < kMedQuestionTypes; ++t) {
    for (const auto& q : MedVqa::questions(t)) {
      EXPECT_EQ(MedVqa::question_type(q), t) << q;
      for (int id : tok.encode(q)) EXPECT_NE(id, WordTokenizer::kUnk) << q;
    }
    for (const auto& a : MedVqa::answers(t)) {
      for (int id : tok.encode(a)) EXPECT_NE(id, WordTokenizer::kUnk) << a;
    }
  }
  EXPECT_EQ(MedVqa::question_type("  HOW many   lesions are there"), 6);
  EXPECT_FALSE(MedVqa::question_type("what is this?").has_value());
  // Train uses the paraphrases, not only the canonical one.
  std::set<int> paraphrases;
  for (const auto& smp : m.samples("train")) paraphrases.insert(smp.paraphrase);
  EXPECT_EQ(paraphrases.size(), 3u);
}

TEST(MedVqa, AnswersAreBalanced) {
  SKIP_WITHOUT_SCANS();
  MedVqaOptions o = small_options(21);
  o.train_images = 1500;
  const MedVqa m(o, shared_ct(), shared_mr());
  std::map<std::string, std::map<std::string, int>> hist;
  const auto& recs = m.records("train");
  for (const auto& smp : m.samples("train")) {
    // Planes among CT images (MR images are all axial).
    if (recs[static_cast<size_t>(smp.image)].modality == MedModality::mr) continue;
    hist[MedVqa::type_names()[static_cast<size_t>(smp.type)]][m.answer("train", smp)]++;
  }
  int64_t mr = 0;
  for (const auto& r : recs) mr += r.modality == MedModality::mr;
  // 1,500 images at p = 0.2: sd 0.010.
  EXPECT_NEAR(static_cast<double>(mr) / static_cast<double>(recs.size()), 0.2, 0.04);
  auto share = [&](const std::string& type, const std::string& answer, const std::vector<std::string>& among) {
    double n = 0;
    for (const auto& a : among) n += hist[type][a];
    return hist[type][answer] / n;
  };
  EXPECT_NEAR(share("abnormal", "yes", {"yes", "no"}), 0.5, 0.06);
  for (const char* side : {"left", "right", "both"})
    EXPECT_NEAR(share("side", side, {"left", "right", "both"}), 1.0 / 3, 0.08) << side;
  for (const char* size : {"small", "medium", "large"})
    EXPECT_NEAR(share("size", size, {"small", "medium", "large"}), 1.0 / 3, 0.07) << size;
  for (const char* count : {"1", "2", "3"}) EXPECT_NEAR(share("count", count, {"1", "2", "3"}), 1.0 / 3, 0.07) << count;
  EXPECT_NEAR(share("window", "bone", {"brain", "bone"}), 0.25, 0.05);
  for (const char* plane : {"axial", "coronal", "sagittal"}) {
    EXPECT_NEAR(share("plane", plane, {"axial", "coronal", "sagittal"}), 1.0 / 3, 0.05) << plane;
  }
}

TEST(MedVqa, SamplePngsAndBadOptions) {
  SKIP_WITHOUT_SCANS();
  const MedVqa m(small_options(4), shared_ct(), shared_mr());
  const fs::path dir = make_temp_dir("samples");
  const auto paths = m.write_sample_pngs(dir, 6);
  ASSERT_EQ(paths.size(), 6u);
  for (const auto& p : paths) {
    const Bytes b = read_bytes(p);
    ASSERT_GT(b.size(), 8u);
    EXPECT_EQ(b[1], 'P');
  }
  EXPECT_TRUE(fs::exists(dir / "med_vqa_samples.md"));
  EXPECT_THROW(m.write_sample_pngs(dir, 1000), Error);
  fs::remove_all(dir);

  MedVqaOptions bad = small_options(1);
  bad.image_size = 16;
  EXPECT_THROW(MedVqa(bad, shared_ct(), shared_mr()), Error);
  bad = small_options(1);
  bad.val_images = -1;
  EXPECT_THROW(MedVqa(bad, shared_ct(), shared_mr()), Error);
  for (double share : {-0.1, 1.0, std::nan("")}) {
    bad = small_options(1);
    bad.mr_fraction = share;
    EXPECT_THROW(MedVqa(bad, shared_ct(), shared_mr()), Error) << share;
  }
}

// The MR share is drawn apart from everything else: the CT images at the indices that stay CT are
// those of a CT-only build, pixel for pixel, and a CT-only build has no MR at all.
TEST(MedVqa, MrShareLeavesTheCtImagesAsTheyWere) {
  SKIP_WITHOUT_SCANS();
  MedVqaOptions ct_only = small_options(13);
  ct_only.mr_fraction = 0;
  const MedVqa a(ct_only, shared_ct()), b(small_options(13), shared_ct(), shared_mr());
  EXPECT_TRUE(a.mr_slices("train").empty());
  EXPECT_THROW(a.mr_reference(), Error);
  for (const char* s : kSplits) {
    const auto &ra = a.records(s), &rb = b.records(s);
    const ImageSet &ia = a.images(s), &ib = b.images(s);
    const size_t px = static_cast<size_t>(ia.rows * ia.cols);
    int mr = 0, ct = 0;
    for (size_t i = 0; i < ra.size(); ++i) {
      EXPECT_EQ(ra[i].modality, MedModality::ct);
      if (rb[i].modality == MedModality::mr) {
        ++mr;
        continue;
      }
      ++ct;
      EXPECT_EQ(ra[i].plane, rb[i].plane);
      EXPECT_EQ(ra[i].slice, rb[i].slice);
      EXPECT_EQ(ra[i].lesions.size(), rb[i].lesions.size());
      EXPECT_TRUE(std::equal(ia.pixels.begin() + static_cast<std::ptrdiff_t>(i * px),
                             ia.pixels.begin() + static_cast<std::ptrdiff_t>((i + 1) * px),
                             ib.pixels.begin() + static_cast<std::ptrdiff_t>(i * px)))
          << s << " image " << i;
    }
    EXPECT_GT(mr, 0) << s;
    EXPECT_GT(ct, mr) << s;
  }
}

// An un-augmented MR image is the axial slice itself, read here straight from the volume at each
// pixel centre (x = cx + u toward the patient's left, y = cy - v toward the front, as documented),
// and not its upside-down or mirrored version; slices are dealt to splits by index mod 10.
TEST(MedVqa, MrImagesAreTheAxialSliceInRadiologicalConvention) {
  SKIP_WITHOUT_SCANS();
  MedVqaOptions o = small_options(17);
  o.augment = false;
  o.image_size = 96;
  o.train_images = 0;
  o.val_images = 0;
  o.test_images = 60;
  const MedVqa m(o, shared_ct(), shared_mr());
  const NiftiVolume& v = *shared_mr();
  const int64_t N = o.image_size, X = v.dim[0], Y = v.dim[1], Z = v.dim[2];
  const double pix = m.fov_mm() / static_cast<double>(N), ref = m.mr_reference();
  const auto c = m.mr_centre_mm();
  for (const char* s : kSplits) {
    for (int64_t z : m.mr_slices(s)) {
      const int64_t mod = z % 10;
      EXPECT_EQ(std::string(s), mod <= 6 ? "train" : (mod == 7 ? "val" : "test"));
    }
  }
  int checked = 0;
  for (const auto& r : m.records("test")) {
    if (r.modality != MedModality::mr) continue;
    ASSERT_EQ(r.rotation_rad, 0);
    const std::vector<float> got = m.render_hu(r, false, false);
    auto at = [&](double x, double y) {  // bilinear in voxel units, 0 outside
      const auto x0 = static_cast<int64_t>(std::floor(x)), y0 = static_cast<int64_t>(std::floor(y));
      const double fx = x - std::floor(x), fy = y - std::floor(y);
      auto val = [&](int64_t xi, int64_t yi) -> double {
        if (xi < 0 || xi >= X || yi < 0 || yi >= Y) return 0.0;
        return v.data[static_cast<size_t>(((r.frame * Z + r.slice) * Y + yi) * X + xi)];
      };
      return (1 - fy) * ((1 - fx) * val(x0, y0) + fx * val(x0 + 1, y0)) +
             fy * ((1 - fx) * val(x0, y0 + 1) + fx * val(x0 + 1, y0 + 1));
    };
    double diff = 0, flipped = 0, mirrored = 0;
    for (int64_t row = 0; row < N; ++row) {
      for (int64_t col = 0; col < N; ++col) {
        const double u = (static_cast<double>(col) + 0.5 - 0.5 * static_cast<double>(N)) * pix;
        const double vv = (static_cast<double>(row) + 0.5 - 0.5 * static_cast<double>(N)) * pix;
        const double want = at((c[0] + u) / v.pixdim[0], (c[1] - vv) / v.pixdim[1]);
        const double g = got[static_cast<size_t>(row * N + col)];
        diff += std::abs(g - want);
        flipped += std::abs(got[static_cast<size_t>((N - 1 - row) * N + col)] - want);
        mirrored += std::abs(got[static_cast<size_t>(row * N + (N - 1 - col))] - want);
      }
    }
    const double n = static_cast<double>(N * N);
    // Four sub-samples per pixel against one centre sample: close, but not bit-equal.
    EXPECT_LT(diff / n, 0.02 * ref) << "slice " << r.slice;
    EXPECT_GT(flipped, 3 * diff) << "slice " << r.slice;
    EXPECT_GT(mirrored, 1.5 * diff) << "slice " << r.slice;
    ++checked;
  }
  EXPECT_GT(checked, 5);
}

}  // namespace
}  // namespace spikefm
