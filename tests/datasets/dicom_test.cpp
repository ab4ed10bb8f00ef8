// The DICOM reader (datasets/dicom.h) against two independent sources of truth:
//   - small Part 10 files written here byte by byte from the encoding rules of DICOM PS3.5 / PS3.10
//     (helpers below append one element at a time); the expected pixels are the values the test chose
//     and wrote, passed through value = stored * slope + intercept evaluated here;
//   - the test files shipped with pydicom (Debian package python3-pydicom), compared with what pydicom
//     itself computes (ds.pixel_array * slope + intercept) in a /usr/bin/python3 subprocess. Those
//     tests skip (GTEST_SKIP) when pydicom or its files are absent.
// Damaged, malformed and unsupported inputs must give a spikefm::Error naming the file and the tag,
// offset or transfer syntax.
#include "datasets/dicom.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
const char* kImplicitLE = "1.2.840.10008.1.2";
const char* kExplicitLE = "1.2.840.10008.1.2.1";

// ---------------------------------------------------------------------------------------------------------
// Writing DICOM by hand (PS3.5 section 7.1, PS3.10 section 7.1).

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v & 0xFF));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xFF));
}
void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

bool long_form(const std::string& vr) {
  for (const char* v : {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}) {
    if (vr == v) return true;
  }
  return false;
}

constexpr uint32_t kUndefined = 0xFFFFFFFFu;

// Appends data elements in one encoding. `length` overrides the written length field (for undefined
// lengths and for damaged files); by default it is value.size().
struct DataSet {
  bool explicit_vr = true;
  Bytes bytes;

  explicit DataSet(bool explicit_vr_) : explicit_vr(explicit_vr_) {}

  // Element header only: tag, then (explicit) VR + 2-byte length or VR + 2 reserved + 4-byte length,
  // or (implicit) 4-byte length.
  DataSet& header(uint16_t group, uint16_t element, const std::string& vr, uint32_t length) {
    put16(bytes, group);
    put16(bytes, element);
    if (explicit_vr) {
      bytes.push_back(static_cast<uint8_t>(vr[0]));
      bytes.push_back(static_cast<uint8_t>(vr[1]));
      if (long_form(vr)) {
        put16(bytes, 0);  // reserved
        put32(bytes, length);
      } else {
        put16(bytes, static_cast<uint16_t>(length));
      }
    } else {
      put32(bytes, length);
    }
    return *this;
  }
  DataSet& raw(uint16_t group, uint16_t element, const std::string& vr, const Bytes& value) {
    header(group, element, vr, static_cast<uint32_t>(value.size()));
    append(bytes, value);
    return *this;
  }
  // Text VRs are padded to even length with a space (UI with a NUL), PS3.5 6.2.
  DataSet& str(uint16_t group, uint16_t element, const std::string& vr, std::string s) {
    if (s.size() % 2) s.push_back(vr == "UI" ? '\0' : ' ');
    return raw(group, element, vr, Bytes(s.begin(), s.end()));
  }
  DataSet& us(uint16_t group, uint16_t element, uint16_t v) {
    Bytes b;
    put16(b, v);
    return raw(group, element, "US", b);
  }
  // Item, item delimiter, sequence delimiter: tag + 4-byte length in both encodings (PS3.5 7.5).
  DataSet& item(uint32_t length = kUndefined) {
    put16(bytes, 0xFFFE);
    put16(bytes, 0xE000);
    put32(bytes, length);
    return *this;
  }
  DataSet& item_end() {
    put16(bytes, 0xFFFE);
    put16(bytes, 0xE00D);
    put32(bytes, 0);
    return *this;
  }
  DataSet& seq_end() {
    put16(bytes, 0xFFFE);
    put16(bytes, 0xE0DD);
    put32(bytes, 0);
    return *this;
  }
};

// Preamble, "DICM", file meta group 0002 (explicit VR LE, with its group length), then the data set.
Bytes part10(const std::string& transfer_syntax, const Bytes& dataset) {
  DataSet meta(true);
  meta.raw(0x0002, 0x0001, "OB", {0x00, 0x01});                    // FileMetaInformationVersion
  meta.str(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7");     // MediaStorageSOPClassUID (SC)
  meta.str(0x0002, 0x0003, "UI", "1.2.826.0.1.3680043.2.1125.1");  // MediaStorageSOPInstanceUID
  meta.str(0x0002, 0x0010, "UI", transfer_syntax);                 // TransferSyntaxUID
  Bytes out(128, 0);
  for (char c : std::string("DICM")) out.push_back(static_cast<uint8_t>(c));
  DataSet group_length(true);
  Bytes len;
  put32(len, static_cast<uint32_t>(meta.bytes.size()));
  group_length.raw(0x0002, 0x0000, "UL", len);
  append(out, group_length.bytes);
  append(out, meta.bytes);
  append(out, dataset);
  return out;
}

// The Image Pixel module of a grey-scale image (everything but the pixel data).
void image_pixel_module(DataSet& ds, uint16_t rows, uint16_t cols, uint16_t bits, bool is_signed,
                        uint16_t bits_stored = 0, uint16_t samples = 1,
                        const std::string& photometric = "MONOCHROME2") {
  ds.us(0x0028, 0x0002, samples);
  ds.str(0x0028, 0x0004, "CS", photometric);
  ds.us(0x0028, 0x0010, rows);
  ds.us(0x0028, 0x0011, cols);
  ds.us(0x0028, 0x0100, bits);
  ds.us(0x0028, 0x0101, bits_stored ? bits_stored : bits);
  ds.us(0x0028, 0x0102, static_cast<uint16_t>((bits_stored ? bits_stored : bits) - 1));
  ds.us(0x0028, 0x0103, is_signed ? 1 : 0);
}

Bytes words16(const std::vector<int32_t>& v) {  // each value's low 16 bits, little endian
  Bytes b;
  for (int32_t x : v) put16(b, static_cast<uint16_t>(x & 0xFFFF));
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Files, processes, errors.

using DicomTest = test::ReaderFileTest;

// The message of the spikefm::Error that read_dicom throws, or "" (with a test failure) when it does not.
std::string error_of(const fs::path& p) { return test::reader_error([](const fs::path& q) { read_dicom(q); }, p); }

using spikefm::test::run_command;

// ---------------------------------------------------------------------------------------------------------
// Files written here.

// A CT-like slice: explicit VR, signed 16-bit, RescaleSlope 2 / RescaleIntercept -1024, plus the
// optional attributes. Expected values: the stored samples (extremes included) through 2 v - 1024.
TEST_F(DicomTest, ExplicitVrSigned16AppliesRescale) {
  const uint16_t rows = 3, cols = 4;
  std::vector<int32_t> stored(rows * cols);
  for (int i = 0; i < rows * cols; ++i) stored[i] = -1000 + 173 * i;
  stored[0] = -32768;
  stored[1] = 32767;
  stored[2] = -1;
  DataSet ds(true);
  ds.str(0x0008, 0x0060, "CS", "CT");
  image_pixel_module(ds, rows, cols, 16, true);
  ds.str(0x0028, 0x0030, "DS", "0.5\\0.25");
  ds.str(0x0028, 0x1050, "DS", "40\\-600");
  ds.str(0x0028, 0x1051, "DS", " 400 ");
  ds.str(0x0028, 0x1052, "DS", "-1024");
  ds.str(0x0028, 0x1053, "DS", "2");
  ds.raw(0x7FE0, 0x0010, "OW", words16(stored));
  const DicomImage img = read_dicom(write("ct.dcm", part10(kExplicitLE, ds.bytes)));

  EXPECT_EQ(img.rows, rows);
  EXPECT_EQ(img.cols, cols);
  EXPECT_EQ(img.frames, 1);
  EXPECT_EQ(img.samples_per_pixel, 1);
  EXPECT_EQ(img.bits_allocated, 16);
  EXPECT_TRUE(img.is_signed);
  EXPECT_EQ(img.modality, "CT");
  EXPECT_EQ(img.photometric, "MONOCHROME2");
  EXPECT_EQ(img.transfer_syntax_uid, kExplicitLE);
  EXPECT_DOUBLE_EQ(img.rescale_slope, 2.0);
  EXPECT_DOUBLE_EQ(img.rescale_intercept, -1024.0);
  ASSERT_TRUE(img.pixel_spacing_mm.has_value());
  EXPECT_DOUBLE_EQ((*img.pixel_spacing_mm)[0], 0.5);
  EXPECT_DOUBLE_EQ((*img.pixel_spacing_mm)[1], 0.25);
  ASSERT_TRUE(img.window_center && img.window_width);
  EXPECT_DOUBLE_EQ(*img.window_center, 40.0);  // the first of two values
  EXPECT_DOUBLE_EQ(*img.window_width, 400.0);
  ASSERT_EQ(img.pixels.size(), stored.size());
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      EXPECT_EQ(img.at(0, y, x), static_cast<float>(2 * stored[y * cols + x] - 1024)) << y << "," << x;
    }
  }
  EXPECT_EQ(img.pixels[0], -66560.0f);  // -32768 * 2 - 1024
  EXPECT_EQ(img.pixels[1], 64510.0f);   //  32767 * 2 - 1024
}

// Implicit VR, 8-bit unsigned, no rescale attributes (defaults 1 / 0), no optional attributes. 3 x 3
// is an odd byte count, so the pixel data carries the one padding byte PS3.5 requires.
TEST_F(DicomTest, ImplicitVrUnsigned8WithPaddingByte) {
  const Bytes stored = {0, 1, 127, 128, 200, 254, 255, 17, 42};
  DataSet ds(false);
  image_pixel_module(ds, 3, 3, 8, false);
  Bytes padded = stored;
  padded.push_back(0);
  ds.raw(0x7FE0, 0x0010, "OB", padded);
  const DicomImage img = read_dicom(write("u8.dcm", part10(kImplicitLE, ds.bytes)));
  EXPECT_EQ(img.transfer_syntax_uid, kImplicitLE);
  EXPECT_EQ(img.bits_allocated, 8);
  EXPECT_FALSE(img.is_signed);
  EXPECT_EQ(img.modality, "");
  EXPECT_DOUBLE_EQ(img.rescale_slope, 1.0);
  EXPECT_DOUBLE_EQ(img.rescale_intercept, 0.0);
  EXPECT_FALSE(img.pixel_spacing_mm.has_value());
  EXPECT_FALSE(img.window_center.has_value());
  ASSERT_EQ(img.pixels.size(), stored.size());
  for (size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(img.pixels[i], static_cast<float>(stored[i])) << i;
}

// Signed 8-bit: 0x80..0xFF are negative in two's complement.
TEST_F(DicomTest, Signed8BitIsTwosComplement) {
  DataSet ds(true);
  image_pixel_module(ds, 1, 4, 8, true);
  ds.raw(0x7FE0, 0x0010, "OB", {0x00, 0x7F, 0x80, 0xFF});
  const DicomImage img = read_dicom(write("s8.dcm", part10(kExplicitLE, ds.bytes)));
  EXPECT_EQ(img.pixels, (std::vector<float>{0, 127, -128, -1}));
}

// Sequences before the pixel data, in both encodings: undefined-length sequences with undefined- and
// defined-length items, nested three deep, a UN of undefined length (implicit VR inside, PS3.5
// 6.2.2), and a defined-length sequence. Items hold decoy Rows / Columns / PixelData (like an icon
// image) that must not be taken for the image's own.
Bytes nested_sequence_file(bool explicit_vr, const std::vector<int32_t>& stored) {
  DataSet ds(explicit_vr);
  ds.str(0x0008, 0x0060, "CS", "MR");
  // (0008,1140) ReferencedImageSequence, undefined length
  ds.header(0x0008, 0x1140, "SQ", kUndefined);
  {
    ds.item();  // item 1, undefined length
    ds.str(0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.4");
    ds.header(0x0040, 0xA170, "SQ", kUndefined);  // nested sequence, undefined length
    {
      DataSet inner(explicit_vr);  // item of defined length holding a decoy Rows
      inner.us(0x0028, 0x0010, 999);
      inner.us(0x0028, 0x0011, 999);
      ds.item(static_cast<uint32_t>(inner.bytes.size()));
      append(ds.bytes, inner.bytes);
      ds.item();                                    // item of undefined length holding a third-level sequence
      ds.header(0x0088, 0x0200, "SQ", kUndefined);  // IconImageSequence with its own pixels
      ds.item();
      ds.us(0x0028, 0x0010, 2);
      ds.us(0x0028, 0x0011, 2);
      ds.raw(0x7FE0, 0x0010, "OB", {9, 9, 9, 9});
      ds.item_end();
      ds.seq_end();
      ds.item_end();
      ds.item(0);  // an empty item
    }
    ds.seq_end();
    ds.item_end();
  }
  ds.item();  // item 2, empty, undefined length
  ds.item_end();
  ds.seq_end();
  // (0009,1010) a private UN of undefined length: its content is implicit VR little endian.
  if (explicit_vr) {
    ds.header(0x0009, 0x1010, "UN", kUndefined);
    DataSet inner(false);
    inner.item();
    inner.us(0x0028, 0x0010, 777);
    inner.item_end();
    inner.seq_end();
    append(ds.bytes, inner.bytes);
  }
  // (0018,6011) SequenceOfUltrasoundRegions with a defined length: skipped whole.
  DataSet body(explicit_vr);
  body.item();
  body.us(0x0028, 0x0011, 555);
  body.item_end();
  ds.header(0x0018, 0x6011, "SQ", static_cast<uint32_t>(body.bytes.size()));
  append(ds.bytes, body.bytes);
  // An empty sequence of undefined length.
  ds.header(0x0020, 0x9222, "SQ", kUndefined);
  ds.seq_end();

  image_pixel_module(ds, 2, 3, 16, false);
  // A private sequence after the Image Pixel module, so its decoys come after the real values.
  ds.header(0x0029, 0x1010, "SQ", kUndefined);
  ds.item();
  ds.us(0x0028, 0x0010, 4);
  ds.us(0x0028, 0x0011, 1);
  ds.str(0x0028, 0x1053, "DS", "100");
  ds.item_end();
  ds.seq_end();
  ds.raw(0x7FE0, 0x0010, "OW", words16(stored));
  return part10(explicit_vr ? kExplicitLE : kImplicitLE, ds.bytes);
}

TEST_F(DicomTest, NestedUndefinedLengthSequencesBeforePixelDataAreWalked) {
  const std::vector<int32_t> stored = {0, 1, 65535, 4096, 300, 12345};
  for (bool explicit_vr : {true, false}) {
    SCOPED_TRACE(explicit_vr ? "explicit VR" : "implicit VR");
    const DicomImage img = read_dicom(write("seq.dcm", nested_sequence_file(explicit_vr, stored)));
    EXPECT_EQ(img.rows, 2);
    EXPECT_EQ(img.cols, 3);
    EXPECT_EQ(img.modality, "MR");
    ASSERT_EQ(img.pixels.size(), stored.size());
    for (size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(img.pixels[i], static_cast<float>(stored[i])) << i;
  }
}

// Explicit VR long forms (2 reserved bytes + 4-byte length): a UT longer than 65535 bytes, OB, OF and a
// defined-length UN ahead of the image. A reader using a 2-byte length for them would lose its place.
TEST_F(DicomTest, ExplicitLongFormLengthsAreFourBytes) {
  DataSet ds(true);
  ds.str(0x0008, 0x0060, "CS", "OT");
  ds.raw(0x0009, 0x1001, "OB", Bytes(70001 + 1, 0x28));  // private OB, 70002 bytes
  ds.str(0x0018, 0x0015, "CS", "HEAD");
  ds.raw(0x0019, 0x1002, "OF", Bytes(12, 0x10));           // private OF
  ds.raw(0x0019, 0x1003, "UN", Bytes(65536 + 8, 0x10));    // private UN, > 64 KiB
  ds.str(0x0020, 0x4000, "UT", std::string(100000, 'x'));  // ImageComments as UT
  ds.str(0x0020, 0x0013, "IS", "7");                       // short form after them
  image_pixel_module(ds, 2, 2, 16, false);
  ds.raw(0x7FE0, 0x0010, "OW", words16({10, 20, 30, 40}));
  const DicomImage img = read_dicom(write("long.dcm", part10(kExplicitLE, ds.bytes)));
  EXPECT_EQ(img.modality, "OT");
  EXPECT_EQ(img.pixels, (std::vector<float>{10, 20, 30, 40}));
}

// NumberOfFrames 3: pixels are (frames, rows, cols) with value 1000 f + 10 y + x, minus 100 via the
// intercept, times 0.5 via the slope.
TEST_F(DicomTest, MultiFrameIsFramesRowsCols) {
  const int frames = 3, rows = 4, cols = 5;
  std::vector<int32_t> stored;
  for (int f = 0; f < frames; ++f)
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) stored.push_back(1000 * f + 10 * y + x);
  DataSet ds(true);
  ds.str(0x0008, 0x0060, "CS", "NM");
  ds.str(0x0028, 0x0008, "IS", "3");
  image_pixel_module(ds, rows, cols, 16, false);
  ds.str(0x0028, 0x1052, "DS", "-100");
  ds.str(0x0028, 0x1053, "DS", "0.5");
  ds.raw(0x7FE0, 0x0010, "OW", words16(stored));
  const DicomImage img = read_dicom(write("mf.dcm", part10(kExplicitLE, ds.bytes)));
  ASSERT_EQ(img.frames, frames);
  ASSERT_EQ(img.pixels.size(), static_cast<size_t>(frames * rows * cols));
  for (int f = 0; f < frames; ++f)
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x)
        EXPECT_EQ(img.at(f, y, x), static_cast<float>(0.5 * (1000 * f + 10 * y + x) - 100)) << f << y << x;
}

// BitsStored 12 / HighBit 11 in 16-bit words: the 4 bits above the sample (overlay or garbage in old
// files) are ignored and the 12-bit sample is sign-extended.
TEST_F(DicomTest, BitsStoredMasksAndSignExtends) {
  const std::vector<int32_t> samples = {-2048, -1, 0, 1, 2047, -1000};
  std::vector<int32_t> words;
  for (size_t i = 0; i < samples.size(); ++i)
    words.push_back(((0xA + static_cast<int32_t>(i)) << 12) | (samples[i] & 0xFFF));
  DataSet ds(true);
  image_pixel_module(ds, 2, 3, 16, true, /*bits_stored=*/12);
  ds.raw(0x7FE0, 0x0010, "OW", words16(words));
  const DicomImage img = read_dicom(write("b12.dcm", part10(kExplicitLE, ds.bytes)));
  EXPECT_EQ(img.bits_stored, 12);
  ASSERT_EQ(img.pixels.size(), samples.size());
  for (size_t i = 0; i < samples.size(); ++i) EXPECT_EQ(img.pixels[i], static_cast<float>(samples[i])) << i;
}

// ---------------------------------------------------------------------------------------------------------
// Damaged and unsupported files.

Bytes small_valid(bool explicit_vr = true) {
  DataSet ds(explicit_vr);
  ds.str(0x0008, 0x0060, "CS", "CT");
  image_pixel_module(ds, 2, 2, 16, true);
  ds.str(0x0028, 0x1053, "DS", "1");
  ds.raw(0x7FE0, 0x0010, "OW", words16({1, 2, 3, 4}));
  return part10(explicit_vr ? kExplicitLE : kImplicitLE, ds.bytes);
}

TEST_F(DicomTest, SmallValidFileReads) {  // the base of the damaged variants below
  EXPECT_EQ(read_dicom(write("ok.dcm", small_valid())).pixels, (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(DicomTest, WrongMagicIsRefused) {
  Bytes b = small_valid();
  b[128] = 'D', b[129] = 'I', b[130] = 'C', b[131] = 'X';
  const std::string msg = error_of(write("magic.dcm", b));
  EXPECT_HAS(msg, "magic.dcm");
  EXPECT_HAS(msg, "'DICM'");
  EXPECT_HAS(msg, "offset 128");
}

TEST_F(DicomTest, FileShorterThanPreambleIsRefused) {
  const std::string msg = error_of(write("short.dcm", Bytes(100, 0)));
  EXPECT_HAS(msg, "short.dcm");
  EXPECT_HAS(msg, "100 bytes");
}

TEST_F(DicomTest, TruncationInsideATagHeaderNamesTheOffset) {
  const Bytes full = small_valid();
  // Find the Rows element (28 00 10 00 'U' 'S') and cut 3 bytes into its header.
  const Bytes rows_tag = {0x28, 0x00, 0x10, 0x00, 'U', 'S'};
  const auto it = std::search(full.begin(), full.end(), rows_tag.begin(), rows_tag.end());
  ASSERT_NE(it, full.end());
  const size_t rows_offset = static_cast<size_t>(it - full.begin());
  const std::string msg = error_of(write("cut_tag.dcm", Bytes(full.begin(), full.begin() + rows_offset + 3)));
  EXPECT_HAS(msg, "cut_tag.dcm");
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "offset " + std::to_string(rows_offset));
  // 5 bytes in: the tag is known, its length field is cut.
  const std::string msg5 = error_of(write("cut_tag5.dcm", Bytes(full.begin(), full.begin() + rows_offset + 5)));
  EXPECT_HAS(msg5, "truncated");
  EXPECT_HAS(msg5, "(0028,0010) Rows");
}

TEST_F(DicomTest, TruncationInsidePixelDataNamesTheTag) {
  const Bytes full = small_valid();
  const std::string msg = error_of(write("cut_px.dcm", Bytes(full.begin(), full.end() - 3)));
  EXPECT_HAS(msg, "cut_px.dcm");
  EXPECT_HAS(msg, "(7FE0,0010)");
  EXPECT_HAS(msg, "runs past the end of the file");
}

// Every prefix of a valid file (in both encodings, with nested sequences) is refused with a
// spikefm::Error, never read past its end or answered with another exception.
TEST_F(DicomTest, EveryTruncationIsAnError) {
  for (const Bytes& full : {small_valid(true), small_valid(false), nested_sequence_file(true, {1, 2, 3, 4, 5, 6}),
                            nested_sequence_file(false, {1, 2, 3, 4, 5, 6})}) {
    for (size_t n = 0; n < full.size(); ++n) {
      const fs::path p = write("prefix.dcm", Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
      EXPECT_FALSE(error_of(p).empty()) << "prefix of " << n << " of " << full.size() << " bytes";
    }
  }
}

TEST_F(DicomTest, LengthPastTheEndIsRefused) {
  DataSet ds(true);
  image_pixel_module(ds, 2, 2, 16, false);
  ds.header(0x0009, 0x1001, "OB", 0x7FFFFFF0u);  // a private OB claiming ~2 GiB
  ds.raw(0x7FE0, 0x0010, "OW", words16({1, 2, 3, 4}));
  const std::string msg = error_of(write("len.dcm", part10(kExplicitLE, ds.bytes)));
  EXPECT_HAS(msg, "len.dcm");
  EXPECT_HAS(msg, "(0009,1001)");
  EXPECT_HAS(msg, std::to_string(0x7FFFFFF0u));
  EXPECT_HAS(msg, "runs past the end of the file");

  DataSet im(false);  // the same in implicit VR, on a short-form element
  im.header(0x0010, 0x0010, "PN", 0xFFFFFF00u);
  im.bytes.resize(im.bytes.size() + 10, 'A');
  EXPECT_HAS(error_of(write("len_i.dcm", part10(kImplicitLE, im.bytes))), "(0010,0010)");
}

TEST_F(DicomTest, UnsupportedTransferSyntaxesAreRefusedByUid) {
  struct Case {
    const char* uid;
    const char* name;
  };
  for (const Case& c : {Case{"1.2.840.10008.1.2.4.50", "JPEG Baseline"}, Case{"1.2.840.10008.1.2.4.90", "JPEG 2000"},
                        Case{"1.2.840.10008.1.2.5", "RLE"}, Case{"1.2.840.10008.1.2.2", "Big Endian"},
                        Case{"1.2.840.10008.1.2.1.99", "Deflated"}, Case{"1.2.3.4", "unknown"}}) {
    DataSet ds(true);  // the data set itself is plain; the syntax alone decides
    image_pixel_module(ds, 2, 2, 16, false);
    ds.raw(0x7FE0, 0x0010, "OW", words16({1, 2, 3, 4}));
    const std::string msg = error_of(write("ts.dcm", part10(c.uid, ds.bytes)));
    EXPECT_HAS(msg, "ts.dcm");
    EXPECT_HAS(msg, std::string("transfer syntax ") + c.uid + " (");
    EXPECT_HAS(msg, c.name);
    EXPECT_HAS(msg, "not supported");
  }
}

TEST_F(DicomTest, MissingTransferSyntaxIsRefused) {
  Bytes out(128, 0);
  for (char c : std::string("DICM")) out.push_back(static_cast<uint8_t>(c));
  DataSet meta(true);
  meta.raw(0x0002, 0x0001, "OB", {0x00, 0x01});
  append(out, meta.bytes);
  DataSet ds(true);
  image_pixel_module(ds, 1, 1, 8, false);
  ds.raw(0x7FE0, 0x0010, "OB", {1, 0});
  append(out, ds.bytes);
  EXPECT_HAS(error_of(write("nots.dcm", out)), "(0002,0010) TransferSyntaxUID");
}

TEST_F(DicomTest, ColourAndOtherLayoutsAreRefused) {
  {
    DataSet ds(true);
    image_pixel_module(ds, 2, 2, 8, false, 0, /*samples=*/3, "RGB");
    ds.raw(0x7FE0, 0x0010, "OB", Bytes(12, 7));
    const std::string msg = error_of(write("rgb.dcm", part10(kExplicitLE, ds.bytes)));
    EXPECT_HAS(msg, "rgb.dcm");
    EXPECT_HAS(msg, "(0028,0002) SamplesPerPixel is 3");
  }
  {
    DataSet ds(true);
    image_pixel_module(ds, 2, 2, 8, false, 0, 1, "PALETTE COLOR");
    ds.raw(0x7FE0, 0x0010, "OB", Bytes(4, 7));
    EXPECT_HAS(error_of(write("pal.dcm", part10(kExplicitLE, ds.bytes))), "'PALETTE COLOR'");
  }
  {
    DataSet ds(true);
    image_pixel_module(ds, 2, 2, 32, false);
    ds.raw(0x7FE0, 0x0010, "OB", Bytes(16, 7));
    EXPECT_HAS(error_of(write("b32.dcm", part10(kExplicitLE, ds.bytes))), "(0028,0100) BitsAllocated is 32");
  }
}

TEST_F(DicomTest, MissingRequiredAttributesAreNamed) {
  {
    DataSet ds(true);  // no Rows
    ds.us(0x0028, 0x0002, 1);
    ds.str(0x0028, 0x0004, "CS", "MONOCHROME2");
    ds.us(0x0028, 0x0011, 2);
    ds.us(0x0028, 0x0100, 8);
    ds.us(0x0028, 0x0101, 8);
    ds.us(0x0028, 0x0102, 7);
    ds.us(0x0028, 0x0103, 0);
    ds.raw(0x7FE0, 0x0010, "OB", {1, 2});
    const std::string msg = error_of(write("norows.dcm", part10(kExplicitLE, ds.bytes)));
    EXPECT_HAS(msg, "norows.dcm");
    EXPECT_HAS(msg, "(0028,0010) Rows");
  }
  {
    DataSet ds(true);  // no Columns
    ds.us(0x0028, 0x0002, 1);
    ds.str(0x0028, 0x0004, "CS", "MONOCHROME2");
    ds.us(0x0028, 0x0010, 2);
    ds.us(0x0028, 0x0100, 8);
    ds.raw(0x7FE0, 0x0010, "OB", {1, 2});
    EXPECT_HAS(error_of(write("nocols.dcm", part10(kExplicitLE, ds.bytes))), "(0028,0011) Columns");
  }
  {
    DataSet ds(true);  // no PixelData
    image_pixel_module(ds, 2, 2, 8, false);
    const std::string msg = error_of(write("nopx.dcm", part10(kExplicitLE, ds.bytes)));
    EXPECT_HAS(msg, "(7FE0,0010) PixelData");
  }
}

TEST_F(DicomTest, PixelDataLengthMismatchIsRefused) {
  for (size_t n : {6u, 10u, 7u}) {  // 8 expected; 9 would not be the padding of an even count either
    DataSet ds(true);
    image_pixel_module(ds, 2, 2, 16, false);
    ds.raw(0x7FE0, 0x0010, "OW", Bytes(n, 1));
    const std::string msg = error_of(write("mismatch.dcm", part10(kExplicitLE, ds.bytes)));
    EXPECT_HAS(msg, "(7FE0,0010)");
    EXPECT_HAS(msg, "holds " + std::to_string(n) + " bytes");
    EXPECT_HAS(msg, "= 8 bytes");
  }
}

TEST_F(DicomTest, EncapsulatedPixelDataInNativeSyntaxIsRefused) {
  DataSet ds(true);
  image_pixel_module(ds, 2, 2, 8, false);
  ds.header(0x7FE0, 0x0010, "OB", kUndefined);
  ds.item(0);
  ds.item(4);
  append(ds.bytes, {1, 2, 3, 4});
  ds.seq_end();
  EXPECT_HAS(error_of(write("encap.dcm", part10(kExplicitLE, ds.bytes))), "encapsulated");
}

TEST_F(DicomTest, SequenceWithoutDelimiterIsTruncation) {
  DataSet ds(true);
  ds.header(0x0008, 0x1140, "SQ", kUndefined);
  ds.item();
  ds.str(0x0008, 0x1150, "UI", "1.2.3");
  ds.item_end();
  // no sequence delimiter: everything after is taken for items and the walk runs off the end
  image_pixel_module(ds, 1, 2, 8, false);
  ds.raw(0x7FE0, 0x0010, "OB", {1, 2});
  const std::string msg = error_of(write("nodelim.dcm", part10(kExplicitLE, ds.bytes)));
  EXPECT_HAS(msg, "in sequence (0008,1140)");
}

// A sequence holds items only; a bare element where an item belongs is damage, not something to skip.
TEST_F(DicomTest, ElementWhereAnItemBelongsIsRefused) {
  DataSet ds(true);
  ds.header(0x0008, 0x1140, "SQ", kUndefined);
  ds.str(0x0008, 0x1150, "UI", "1.2.3");  // no item header before it
  ds.seq_end();
  image_pixel_module(ds, 1, 2, 8, false);
  ds.raw(0x7FE0, 0x0010, "OB", {1, 2});
  const std::string msg = error_of(write("noitem.dcm", part10(kExplicitLE, ds.bytes)));
  EXPECT_HAS(msg, "expected an item (FFFE,E000)");
  EXPECT_HAS(msg, "found (0008,1150)");
}

TEST_F(DicomTest, BadNumbersAreNamed) {
  DataSet ds(true);
  image_pixel_module(ds, 1, 2, 8, false);
  ds.str(0x0028, 0x1053, "DS", "two");
  ds.raw(0x7FE0, 0x0010, "OB", {1, 2});
  EXPECT_HAS(error_of(write("ds.dcm", part10(kExplicitLE, ds.bytes))), "(0028,1053) RescaleSlope");

  DataSet f(true);
  f.str(0x0028, 0x0008, "IS", "1A");
  image_pixel_module(f, 1, 2, 8, false);
  f.raw(0x7FE0, 0x0010, "OB", {1, 2});
  EXPECT_HAS(error_of(write("is.dcm", part10(kExplicitLE, f.bytes))), "(0028,0008) NumberOfFrames");

  DataSet v(true);  // Rows written with the wrong VR
  image_pixel_module(v, 1, 2, 8, false);
  v.str(0x0028, 0x0010, "IS", "1");
  v.raw(0x7FE0, 0x0010, "OB", {1, 2});
  EXPECT_HAS(error_of(write("vr.dcm", part10(kExplicitLE, v.bytes))), "(0028,0010) Rows");
}

// Random byte damage to valid files: each result is either a successful read or a spikefm::Error.
TEST_F(DicomTest, RandomDamageNeverEscapesAsAnotherError) {
  std::mt19937 rng(20240611);
  const std::vector<Bytes> bases = {small_valid(true), small_valid(false),
                                    nested_sequence_file(true, {1, 2, 3, 4, 5, 6}),
                                    nested_sequence_file(false, {1, 2, 3, 4, 5, 6})};
  for (int trial = 0; trial < 2000; ++trial) {
    Bytes b = bases[static_cast<size_t>(trial) % bases.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[132 + rng() % (b.size() - 132)] = static_cast<uint8_t>(rng());
    const fs::path p = write("damaged.dcm", b);
    try {
      (void)read_dicom(p);
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << ": " << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// pydicom's test files, compared with pydicom.

// pydicom's data folder (holding test_files/ and charset_files/), or "" when /usr/bin/python3 cannot
// import pydicom.
std::string pydicom_data_dir() {
  int status = 0;
  std::string out = run_command(std::string(kPython) +
                            " -c 'import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), "
                            "\"data\"))' 2>/dev/null",
                        &status);
  if (status != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return fs::is_directory(fs::path(out) / "test_files") ? out : "";
}

// pydicom's reading of one file: shape, modality, rescale and every value of
// pixel_array * slope + intercept (float64), printed by a script this test writes.
struct PydicomImage {
  int64_t rows = 0, cols = 0, frames = 0;
  std::string modality, photometric;
  double slope = 0, intercept = 0, spacing0 = 0, spacing1 = 0;
  std::vector<double> values;
};

PydicomImage pydicom_read(const fs::path& script_dir, const fs::path& file) {
  const fs::path script = script_dir / "read.py";
  {
    std::ofstream f(script);
    f << "import sys\n"
         "import numpy as np\n"
         "import pydicom\n"
         "ds = pydicom.dcmread(sys.argv[1])\n"
         "slope = float(ds.get('RescaleSlope', 1))\n"
         "intercept = float(ds.get('RescaleIntercept', 0))\n"
         "a = ds.pixel_array.astype(np.float64) * slope + intercept\n"
         "sp = ds.get('PixelSpacing', [0, 0])\n"
         "print(ds.Rows, ds.Columns, int(ds.get('NumberOfFrames', 1)), ds.get('Modality', '-') or '-',\n"
         "      ds.PhotometricInterpretation, repr(slope), repr(intercept), repr(float(sp[0])), repr(float(sp[1])))\n"
         "print(a.size)\n"
         "print('\\n'.join(repr(float(v)) for v in a.ravel()))\n";
  }
  int status = 0;
  const std::string out =
      run_command(std::string(kPython) + " '" + script.string() + "' '" + file.string() + "' 2>/dev/null", &status);
  EXPECT_EQ(status, 0) << "pydicom failed on " << file;
  std::istringstream in(out);
  PydicomImage p;
  in >> p.rows >> p.cols >> p.frames >> p.modality >> p.photometric >> p.slope >> p.intercept >> p.spacing0 >>
      p.spacing1;
  size_t n = 0;
  in >> n;
  p.values.resize(n);
  for (auto& v : p.values) in >> v;
  EXPECT_TRUE(static_cast<bool>(in)) << "could not parse pydicom's output for " << file;
  return p;
}

// The uncompressed little-endian grey-scale files: CT (explicit VR, signed 16-bit, intercept -1024),
// MR in explicit and implicit VR, and two 8-bit unsigned images. Every pixel must equal pydicom's.
TEST_F(DicomTest, PydicomUncompressedFilesMatchPydicom) {
  const std::string dir = pydicom_data_dir();
  if (dir.empty()) GTEST_SKIP() << "pydicom not importable by " << kPython << " (apt-get install python3-pydicom)";
  int read = 0;
  for (const char* name : {"test_files/CT_small.dcm", "test_files/MR_small.dcm", "test_files/MR_small_implicit.dcm",
                           "charset_files/chrGerm.dcm", "charset_files/chrH31.dcm"}) {
    SCOPED_TRACE(name);
    const fs::path file = fs::path(dir) / name;
    if (!fs::exists(file)) continue;
    const PydicomImage ref = pydicom_read(dir_, file);
    const DicomImage img = read_dicom(file);
    EXPECT_EQ(img.rows, ref.rows);
    EXPECT_EQ(img.cols, ref.cols);
    EXPECT_EQ(img.frames, ref.frames);
    EXPECT_EQ(img.modality, ref.modality);
    EXPECT_EQ(img.photometric, ref.photometric);
    EXPECT_DOUBLE_EQ(img.rescale_slope, ref.slope);
    EXPECT_DOUBLE_EQ(img.rescale_intercept, ref.intercept);
    if (ref.spacing0 == 0) {  // the script prints 0 0 when PixelSpacing is absent
      EXPECT_FALSE(img.pixel_spacing_mm.has_value());
    } else {
      ASSERT_TRUE(img.pixel_spacing_mm.has_value());
      EXPECT_DOUBLE_EQ((*img.pixel_spacing_mm)[0], ref.spacing0);
      EXPECT_DOUBLE_EQ((*img.pixel_spacing_mm)[1], ref.spacing1);
    }
    ASSERT_EQ(img.pixels.size(), ref.values.size());
    // The values are integers of magnitude < 2^24 here (slope 1, integer intercept), exact in float;
    // the bound allows float rounding (2^-24 relative) should a file use a fractional slope.
    double sum = 0, ref_sum = 0;
    int64_t bad = 0;
    for (size_t i = 0; i < ref.values.size(); ++i) {
      sum += img.pixels[i];
      ref_sum += ref.values[i];
      if (std::abs(img.pixels[i] - ref.values[i]) > 1e-6 * std::max(1.0, std::abs(ref.values[i]))) {
        if (++bad <= 5) ADD_FAILURE() << "pixel " << i << ": " << img.pixels[i] << " vs pydicom " << ref.values[i];
      }
    }
    EXPECT_EQ(bad, 0);
    EXPECT_DOUBLE_EQ(sum, ref_sum);
    ++read;
  }
  if (read == 0) GTEST_SKIP() << "none of the listed files in " << dir;
}

// pydicom files this reader refuses, each with the reason that must appear in the message.
TEST_F(DicomTest, PydicomFilesOutsideTheSupportedSetAreRefused) {
  const std::string data = pydicom_data_dir();
  const std::string dir = data.empty() ? "" : data + "/test_files";
  if (dir.empty()) GTEST_SKIP() << "pydicom not importable by " << kPython << " (apt-get install python3-pydicom)";
  struct Case {
    const char* file;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"JPEG2000.dcm", {"transfer syntax 1.2.840.10008.1.2.4.91 (JPEG 2000)", "not supported"}},
      {"JPEG-lossy.dcm", {"transfer syntax 1.2.840.10008.1.2.4.51", "not supported"}},
      {"MR_small_jpeg_ls_lossless.dcm", {"transfer syntax 1.2.840.10008.1.2.4.80 (JPEG-LS Lossless)"}},
      {"MR_small_RLE.dcm", {"transfer syntax 1.2.840.10008.1.2.5 (RLE Lossless)"}},
      {"MR_small_bigendian.dcm", {"transfer syntax 1.2.840.10008.1.2.2 (Explicit VR Big Endian"}},
      {"image_dfl.dcm", {"transfer syntax 1.2.840.10008.1.2.1.99 (Deflated"}},
      {"MR_truncated.dcm", {"(7FE0,0010) PixelData", "runs past the end of the file"}},
      {"MR_small_padded.dcm", {"(7FE0,0010) PixelData", "holds 8320 bytes", "= 8192 bytes"}},
      {"SC_rgb_small_odd.dcm", {"(0028,0002) SamplesPerPixel is 3"}},
      {"liver_1frame.dcm", {"(0028,0100) BitsAllocated is 1"}},
      {"rtdose.dcm", {"(0028,0100) BitsAllocated is 32"}},
      {"no_meta.dcm", {"'DICM'"}},
      {"meta_missing_tsyntax.dcm", {"(0002,0010) TransferSyntaxUID"}},
      {"rtplan.dcm", {"has no (7FE0,0010) PixelData"}},
  };
  int tried = 0;
  for (const Case& c : cases) {
    const fs::path file = fs::path(dir) / c.file;
    if (!fs::exists(file)) continue;
    ++tried;
    const std::string msg = error_of(file);
    EXPECT_HAS(msg, c.file);
    for (const auto& needle : c.needles) EXPECT_HAS(msg, needle);
  }
  if (tried == 0) GTEST_SKIP() << "none of the listed files in " << dir;
}

}  // namespace
}  // namespace spikefm
