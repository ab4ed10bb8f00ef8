#include "datasets/npz_reader.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include "common/error.h"

namespace spikefm {

static_assert(std::endian::native == std::endian::little,
              "the npy reader copies little-endian data as is; a big-endian host needs byte swapping");

namespace {

namespace fs = std::filesystem;

constexpr const char* kResaveHint = "re-create the file with np.savez / np.savez_compressed";
constexpr const char* kDamagedHint = "the file is damaged or incomplete: copy or download it again";

// ZIP record signatures (APPNOTE.TXT 4.3) and fixed sizes.
constexpr uint32_t kSigLocal = 0x04034b50;          // PK\3\4 local file header, 30 bytes + name + extra
constexpr uint32_t kSigCentral = 0x02014b50;        // PK\1\2 central directory entry, 46 bytes + ...
constexpr uint32_t kSigEocd = 0x06054b50;           // PK\5\6 end of central directory, 22 bytes + comment
constexpr uint32_t kSigZip64Eocd = 0x06064b50;      // PK\6\6 ZIP64 end of central directory, 56 bytes
constexpr uint32_t kSigZip64Locator = 0x07064b50;   // PK\6\7 ZIP64 EOCD locator, 20 bytes
constexpr uint64_t kLocalBytes = 30, kCentralBytes = 46, kEocdBytes = 22, kZip64EocdBytes = 56,
                   kZip64LocatorBytes = 20;
constexpr uint16_t kExtraZip64 = 0x0001;
// Deflate emits at least one bit per 258 bytes of output, so a stream inflates at most ~1032x.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
uint64_t le64(const uint8_t* p) { return uint64_t{le32(p)} | (uint64_t{le32(p + 4)} << 32); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
      s += static_cast<char>(p[i]);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(p[i]));
      s += buf;
    }
  }
  return s;
}

// Positioned reads of a file whose size is known; every request is bounds-checked first.
class FileReader {
 public:
  FileReader(const fs::path& path, const std::string& what) : what_(what) {
    file_.open(path, std::ios::binary);
    if (!file_) throw Error(what_, "cannot open the file", "check its permissions");
  }
  void read_at(uint64_t offset, uint8_t* dst, uint64_t n, uint64_t file_bytes, const std::string& item) {
    if (offset > file_bytes || n > file_bytes - offset) {
      throw Error(what_,
                  item + " at offset " + std::to_string(offset) + " (" + std::to_string(n) +
                      " bytes) lies past the end of the " + std::to_string(file_bytes) + "-byte file (truncated?)",
                  kDamagedHint);
    }
    file_.clear();
    file_.seekg(static_cast<std::streamoff>(offset));
    file_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (static_cast<uint64_t>(file_.gcount()) != n) {
      throw Error(what_, "I/O error or file shrank while reading " + item);
    }
  }

 private:
  std::string what_;
  std::ifstream file_;
};

// ---------------------------------------------------------------------------------------------------------
// npy header: a Python dict literal with string keys and string / bool / tuple-of-int values.

struct PyValue {
  enum Kind { kString, kBool, kTuple, kOther } kind = kOther;
  std::string str;            // kString; kOther: the raw text, for messages
  bool b = false;             // kBool
  std::vector<int64_t> ints;  // kTuple
};

class DictParser {
 public:
  DictParser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  std::vector<std::pair<std::string, PyValue>> parse() {
    std::vector<std::pair<std::string, PyValue>> out;
    skip_ws();
    expect('{');
    skip_ws();
    while (peek() != '}') {
      if (peek() != '\'' && peek() != '"') fail("expected a quoted key");
      std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      PyValue v = parse_value();
      out.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    ++i_;
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the closing '}'");
    return out;
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(what_, "malformed npy header at character " + std::to_string(i_) + ": " + why + " in \"" +
                           printable(reinterpret_cast<const uint8_t*>(s_.data()), std::min<size_t>(s_.size(), 200)) +
                           "\"",
                kResaveHint);
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string parse_string() {
    const char quote = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\') fail("escape sequences are not supported");
      out += s_[i_++];
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;
    return out;
  }
  PyValue parse_value() {
    PyValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = PyValue::kString;
      v.str = parse_string();
    } else if (s_.compare(i_, 4, "True") == 0) {
      v.kind = PyValue::kBool;
      v.b = true;
      i_ += 4;
    } else if (s_.compare(i_, 5, "False") == 0) {
      v.kind = PyValue::kBool;
      i_ += 5;
    } else if (c == '(') {
      v.kind = PyValue::kTuple;
      ++i_;
      skip_ws();
      while (peek() != ')') {
        v.ints.push_back(parse_int());
        skip_ws();
        if (peek() == ',') {
          ++i_;
          skip_ws();
        } else if (peek() != ')') {
          fail("expected ',' or ')' in the shape tuple");
        }
      }
      ++i_;
    } else if (c == '[' || c == '{') {
      // A list or dict value (structured dtype): keep the raw bracketed text for the message.
      const size_t start = i_;
      int depth = 0;
      do {
        const char d = peek();
        if (d == '\0') fail("unterminated bracket");
        if (d == '[' || d == '{' || d == '(') ++depth;
        if (d == ']' || d == '}' || d == ')') --depth;
        ++i_;
      } while (depth > 0);
      v.str = s_.substr(start, i_ - start);
    } else {
      fail("expected a string, True, False or a tuple");
    }
    return v;
  }
  int64_t parse_int() {
    if (peek() < '0' || peek() > '9') fail("expected a non-negative integer dimension");
    int64_t x = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (x > (std::numeric_limits<int64_t>::max() / 4) / 10) fail("dimension too large");
      x = x * 10 + (s_[i_++] - '0');
    }
    if (peek() == 'L') ++i_;  // Python 2 long suffix, as old numpy wrote it
    return x;
  }

  const std::string& s_;
  std::string what_;
  size_t i_ = 0;
};

// The dtype named by descr, or an Error saying why it is refused.
NpyDtype parse_descr(const std::string& descr, const std::string& what) {
  const std::string quoted = "'" + descr + "'";
  if (descr.size() < 2) throw Error(what, "unknown dtype descr " + quoted, kResaveHint);
  const char order = descr[0];
  const char kind = descr[1];
  const std::string digits = descr.substr(2);
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    throw Error(what, "dtype descr " + quoted + " does not start with a byte-order mark (<, >, |, =)", kResaveHint);
  }
  if (kind == 'O') {
    throw Error(what, "object arrays (dtype " + quoted + ", pickled Python objects) are not supported",
                "store numeric arrays; object arrays need Python to unpickle");
  }
  int itemsize = 0;
  bool digits_ok = !digits.empty() && digits.size() <= 2;
  for (char d : digits) digits_ok = digits_ok && d >= '0' && d <= '9';
  if (digits_ok) itemsize = std::stoi(digits);
  bool supported = false;
  switch (kind) {
    case 'b': supported = itemsize == 1; break;
    case 'i':
    case 'u': supported = itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8; break;
    case 'f': supported = itemsize == 4 || itemsize == 8; break;
    default: break;
  }
  if (!supported) {
    throw Error(what,
                "dtype " + quoted + " is not supported (supported: |b1, |i1, <i2, <i4, <i8, |u1, <u2, <u4, <u8, <f4, <f8)",
                "convert the array, e.g. arr.astype('<f4'), and save it again");
  }
  if (itemsize > 1 && order == '>') {
    throw Error(what, "big-endian dtype " + quoted + " is not supported",
                std::string("convert with arr.astype('<") + kind + digits + "') and save it again");
  }
  if (itemsize > 1 && order == '|') {
    throw Error(what, "dtype " + quoted + " has no byte order but elements of " + digits + " bytes", kResaveHint);
  }
  return {kind, itemsize};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

std::string NpyDtype::str() const {
  return std::string(1, itemsize == 1 ? '|' : '<') + kind + std::to_string(itemsize);
}

void NpyArray::check_dtype(const NpyDtype& want) const {
  if (!(dtype == want)) {
    throw Error("reading " + source, "dtype is " + dtype.str() + ", expected " + want.str());
  }
}

std::vector<int64_t> NpyArray::to_int64() const {
  const size_t n = static_cast<size_t>(numel());
  std::vector<int64_t> out(n);
  const uint8_t* p = bytes.data();
  auto load = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      if constexpr (std::is_same_v<T, uint64_t>) {
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          throw Error("reading " + source, "element " + std::to_string(i) + " = " + std::to_string(v) +
                                               " does not fit in int64");
        }
      }
      out[i] = static_cast<int64_t>(v);
    }
  };
  if (dtype.kind == 'b' || (dtype.kind == 'u' && dtype.itemsize == 1)) {
    load(uint8_t{});
  } else if (dtype.kind == 'u') {
    if (dtype.itemsize == 2) load(uint16_t{});
    if (dtype.itemsize == 4) load(uint32_t{});
    if (dtype.itemsize == 8) load(uint64_t{});
  } else if (dtype.kind == 'i') {
    if (dtype.itemsize == 1) load(int8_t{});
    if (dtype.itemsize == 2) load(int16_t{});
    if (dtype.itemsize == 4) load(int32_t{});
    if (dtype.itemsize == 8) load(int64_t{});
  } else {
    throw Error("reading " + source, "dtype is " + dtype.str() + ", expected a bool or integer dtype");
  }
  return out;
}

std::vector<double> NpyArray::to_double() const {
  if (dtype.kind == 'f') {
    const size_t n = static_cast<size_t>(numel());
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
      if (dtype.itemsize == 4) {
        float v;
        std::memcpy(&v, bytes.data() + 4 * i, 4);
        out[i] = v;
      } else {
        std::memcpy(&out[i], bytes.data() + 8 * i, 8);
      }
    }
    return out;
  }
  if (dtype.kind == 'u' && dtype.itemsize == 8) {
    const auto u = values<uint64_t>();
    return std::vector<double>(u.begin(), u.end());
  }
  const auto v = to_int64();
  return std::vector<double>(v.begin(), v.end());
}

namespace {

// Validates the npy image in data[0, size) and fills arr's source, dtype and shape; returns the
// offset of the element data (whose size has been checked to match the shape exactly).
size_t parse_npy_header(const uint8_t* data, size_t size, const std::string& source, NpyArray& arr) {
  const std::string what = "reading " + source;
  static constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) {
    throw Error(what,
                "bad npy magic \"" + printable(data, std::min<size_t>(size, 6)) +
                    "\": not a .npy array (expected \"\\x93NUMPY\")",
                kResaveHint);
  }
  const int major = data[6], minor = data[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    throw Error(what,
                "npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " is not supported (1.0, 2.0 and 3.0 are)",
                kResaveHint);
  }
  const size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix) throw Error(what, "truncated: the npy header length field is cut off", kResaveHint);
  const uint64_t header_len = major == 1 ? le16(data + 8) : le32(data + 8);
  if (header_len > size - prefix) {
    throw Error(what,
                "truncated: the npy header announces " + std::to_string(header_len) + " bytes, only " +
                    std::to_string(size - prefix) + " follow",
                kResaveHint);
  }
  const std::string header(reinterpret_cast<const char*>(data + prefix), static_cast<size_t>(header_len));

  const auto items = DictParser(header, what).parse();
  std::optional<PyValue> descr, fortran, shape;
  for (const auto& [key, value] : items) {
    if (key == "descr") {
      descr = value;
    } else if (key == "fortran_order") {
      fortran = value;
    } else if (key == "shape") {
      shape = value;
    } else {
      throw Error(what, "npy header has the unexpected key '" + key + "' (expected descr, fortran_order, shape)",
                  kResaveHint);
    }
  }
  if (!descr || !fortran || !shape) {
    const std::string missing = !descr ? "descr" : !fortran ? "fortran_order" : "shape";
    throw Error(what, "npy header lacks the key '" + missing + "'", kResaveHint);
  }
  if (descr->kind != PyValue::kString) {
    throw Error(what, "structured dtype " + descr->str + " is not supported; only plain numeric arrays are",
                "save each field as its own array");
  }
  if (fortran->kind != PyValue::kBool) throw Error(what, "npy header: fortran_order must be True or False", kResaveHint);
  if (shape->kind != PyValue::kTuple) throw Error(what, "npy header: shape must be a tuple of integers", kResaveHint);

  arr.source = source;
  arr.dtype = parse_descr(descr->str, what);
  if (fortran->b) {
    throw Error(what, "fortran_order True (column-major data) is not supported",
                "save np.ascontiguousarray(arr) instead");
  }
  arr.shape = shape->ints;

  // The product of the non-zero dimensions is capped at 2^59 elements (2^62 bytes), so neither the
  // byte count below nor numel() (a plain int64 product) can overflow, even for an empty array.
  uint64_t nonzero_product = 1;
  for (int64_t d : arr.shape) {
    if (d == 0) continue;
    if (nonzero_product > (uint64_t{1} << 59) / static_cast<uint64_t>(d)) {
      throw Error(what, "the header's shape " + shape_str(arr.shape) + " has too many elements", kResaveHint);
    }
    nonzero_product *= static_cast<uint64_t>(d);
  }
  const bool empty = std::find(arr.shape.begin(), arr.shape.end(), 0) != arr.shape.end();
  const uint64_t need = empty ? 0 : nonzero_product * static_cast<uint64_t>(arr.dtype.itemsize);
  const uint64_t available = size - prefix - header_len;
  if (need != available) {
    throw Error(what,
                "the header's shape " + shape_str(arr.shape) + " of " + arr.dtype.str() + " needs " +
                    std::to_string(need) + " bytes of data, the array holds " + std::to_string(available),
                kResaveHint);
  }
  if (arr.dtype.kind == 'b') {
    for (uint64_t i = 0; i < available; ++i) {
      const uint8_t byte = data[prefix + header_len + i];
      if (byte > 1) {
        throw Error(what, "bool element " + std::to_string(i) + " holds the byte " + std::to_string(byte) +
                              " (must be 0 or 1)",
                    kDamagedHint);
      }
    }
  }
  return static_cast<size_t>(prefix + header_len);
}

// parse_npy on a buffer it may reuse: the element data is moved to the front in place, so a
// multi-GiB member is not held twice.
NpyArray parse_npy_owned(std::vector<uint8_t>&& buf, const std::string& source) {
  NpyArray arr;
  const size_t offset = parse_npy_header(buf.data(), buf.size(), source, arr);
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(offset));
  arr.bytes = std::move(buf);
  return arr;
}

}  // namespace

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& source) {
  NpyArray arr;
  const size_t offset = parse_npy_header(data, size, source, arr);
  arr.bytes.assign(data + offset, data + size);
  return arr;
}

NpyArray read_npy(const fs::path& path) {
  const std::string what = "reading npy file " + path.string();
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(what, "the file does not exist", "check the path");
  if (!fs::is_regular_file(status)) throw Error(what, "not a regular file");
  const uint64_t file_bytes = fs::file_size(path, ec);
  if (ec) throw Error(what, "cannot read the file size: " + ec.message());
  if (file_bytes > kNpzMaxMemberBytes) {
    throw Error(what, "the file is " + std::to_string(file_bytes) + " bytes, above the 64 GiB limit");
  }
  std::vector<uint8_t> buf(static_cast<size_t>(file_bytes));
  FileReader(path, what).read_at(0, buf.data(), file_bytes, file_bytes, "the array");
  return parse_npy_owned(std::move(buf), path.string());
}

// ---------------------------------------------------------------------------------------------------------

NpzFile::NpzFile(const fs::path& path) : path_(path) {
  const std::string what = "reading npz file " + path.string();
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(what, "the file does not exist", "check the path");
  if (!fs::is_regular_file(status)) throw Error(what, "not a regular file");
  file_bytes_ = fs::file_size(path, ec);
  if (ec) throw Error(what, "cannot read the file size: " + ec.message());
  FileReader in(path, what);

  if (file_bytes_ >= 6) {
    uint8_t head[6];
    in.read_at(0, head, 6, file_bytes_, "the file header");
    if (std::memcmp(head, "\x93NUMPY", 6) == 0) {
      throw Error(what, "this is a single .npy array, not an .npz archive", "read it with read_npy");
    }
  }
  if (file_bytes_ < kEocdBytes) {
    throw Error(what, "too short (" + std::to_string(file_bytes_) + " bytes) for a ZIP archive", kDamagedHint);
  }

  // --- End Of Central Directory: the last PK\5\6 whose comment ends exactly at the end of the file ---
  const uint64_t tail_bytes = std::min<uint64_t>(file_bytes_, kEocdBytes + 0xFFFF);
  std::vector<uint8_t> tail(static_cast<size_t>(tail_bytes));
  in.read_at(file_bytes_ - tail_bytes, tail.data(), tail_bytes, file_bytes_, "the end of the archive");
  std::optional<uint64_t> eocd_in_tail;
  for (uint64_t i = tail_bytes - kEocdBytes + 1; i-- > 0;) {
    if (le32(&tail[i]) == kSigEocd && i + kEocdBytes + le16(&tail[i + 20]) == tail_bytes) {
      eocd_in_tail = i;
      break;
    }
  }
  if (!eocd_in_tail) {
    throw Error(what, "no ZIP end-of-central-directory record: not an .npz archive, or the file is truncated",
                kDamagedHint);
  }
  const uint8_t* eocd = &tail[*eocd_in_tail];
  const uint64_t eocd_pos = file_bytes_ - tail_bytes + *eocd_in_tail;
  uint64_t disk = le16(eocd + 4), cd_disk = le16(eocd + 6);
  uint64_t entries_disk = le16(eocd + 8), entries = le16(eocd + 10);
  uint64_t cd_size = le32(eocd + 12), cd_offset = le32(eocd + 16);
  uint64_t cd_end_limit = eocd_pos;  // the central directory ends before this

  // --- ZIP64: a locator right before the EOCD points at the ZIP64 EOCD record with 64-bit values ---
  bool zip64 = false;
  if (eocd_pos >= kZip64LocatorBytes) {
    uint8_t loc[kZip64LocatorBytes];
    in.read_at(eocd_pos - kZip64LocatorBytes, loc, kZip64LocatorBytes, file_bytes_, "the ZIP64 locator");
    if (le32(loc) == kSigZip64Locator) {
      zip64 = true;
      const uint64_t rec_pos = le64(loc + 8);
      if (le32(loc + 4) != 0 || le32(loc + 16) > 1) {
        throw Error(what, "multi-disk (split) ZIP archives are not supported", "join the parts into one file");
      }
      if (rec_pos > eocd_pos - kZip64LocatorBytes || eocd_pos - kZip64LocatorBytes - rec_pos < kZip64EocdBytes) {
        throw Error(what, "the ZIP64 locator points at offset " + std::to_string(rec_pos) + ", outside the archive",
                    kDamagedHint);
      }
      uint8_t rec[kZip64EocdBytes];
      in.read_at(rec_pos, rec, kZip64EocdBytes, file_bytes_, "the ZIP64 end-of-central-directory record");
      if (le32(rec) != kSigZip64Eocd) {
        throw Error(what, "no ZIP64 end-of-central-directory record where the locator points (offset " +
                              std::to_string(rec_pos) + ")",
                    kDamagedHint);
      }
      disk = le32(rec + 16);
      cd_disk = le32(rec + 20);
      entries_disk = le64(rec + 24);
      entries = le64(rec + 32);
      cd_size = le64(rec + 40);
      cd_offset = le64(rec + 48);
      cd_end_limit = rec_pos;
    }
  }
  if (!zip64 && (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF)) {
    throw Error(what, "the end-of-central-directory record needs ZIP64 values but no ZIP64 locator precedes it",
                kDamagedHint);
  }
  if (disk != 0 || cd_disk != 0 || entries_disk != entries) {
    throw Error(what, "multi-disk (split) ZIP archives are not supported", "join the parts into one file");
  }
  if (cd_offset > cd_end_limit || cd_size > cd_end_limit - cd_offset) {
    throw Error(what,
                "the central directory (offset " + std::to_string(cd_offset) + ", " + std::to_string(cd_size) +
                    " bytes) does not fit before the end record at offset " + std::to_string(cd_end_limit),
                kDamagedHint);
  }
  if (entries > cd_size / kCentralBytes) {
    throw Error(what, "the end record announces " + std::to_string(entries) + " members, more than a " +
                          std::to_string(cd_size) + "-byte central directory can hold",
                kDamagedHint);
  }

  // --- central directory entries ---
  std::vector<uint8_t> cd(static_cast<size_t>(cd_size));
  in.read_at(cd_offset, cd.data(), cd_size, file_bytes_, "the central directory");
  uint64_t pos = 0;
  for (uint64_t e = 0; e < entries; ++e) {
    const std::string entry = "central directory entry " + std::to_string(e);
    if (cd_size - pos < kCentralBytes || le32(&cd[pos]) != kSigCentral) {
      throw Error(what, entry + " is missing or has a bad signature", kDamagedHint);
    }
    const uint8_t* h = &cd[pos];
    const uint64_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
    if (kCentralBytes + name_len + extra_len + comment_len > cd_size - pos) {
      throw Error(what, entry + " runs past the end of the central directory", kDamagedHint);
    }
    NpzMember m;
    m.flags = le16(h + 8);
    m.method = le16(h + 10);
    m.crc32 = le32(h + 16);
    m.compressed_bytes = le32(h + 20);
    m.uncompressed_bytes = le32(h + 24);
    uint64_t disk_start = le16(h + 34);
    m.local_header_offset = le32(h + 42);
    m.name.assign(reinterpret_cast<const char*>(h + kCentralBytes), static_cast<size_t>(name_len));

    // ZIP64 extra field: the 64-bit values of exactly the saturated fields, in this order.
    const bool need_usize = m.uncompressed_bytes == 0xFFFFFFFF, need_csize = m.compressed_bytes == 0xFFFFFFFF,
               need_offset = m.local_header_offset == 0xFFFFFFFF, need_disk = disk_start == 0xFFFF;
    bool zip64_found = false;
    const uint8_t* x = h + kCentralBytes + name_len;
    const uint8_t* x_end = x + extra_len;
    while (x_end - x >= 4) {
      const uint16_t id = le16(x), len = le16(x + 2);
      if (len > x_end - x - 4) throw Error(what, entry + " ('" + m.name + "') has a truncated extra field", kDamagedHint);
      if (id == kExtraZip64) {
        zip64_found = true;
        const uint8_t* f = x + 4;
        const uint8_t* f_end = f + len;
        auto take64 = [&](uint64_t& dst) {
          if (f_end - f < 8) throw Error(what, entry + " ('" + m.name + "') has a short ZIP64 extra field", kDamagedHint);
          dst = le64(f);
          f += 8;
        };
        if (need_usize) take64(m.uncompressed_bytes);
        if (need_csize) take64(m.compressed_bytes);
        if (need_offset) take64(m.local_header_offset);
        if (need_disk) {
          if (f_end - f < 4) throw Error(what, entry + " ('" + m.name + "') has a short ZIP64 extra field", kDamagedHint);
          disk_start = le32(f);
        }
      }
      x += 4 + len;
    }
    if ((need_usize || need_csize || need_offset || need_disk) && !zip64_found) {
      throw Error(what, entry + " ('" + m.name + "') has saturated sizes but no ZIP64 extra field", kDamagedHint);
    }
    if (disk_start != 0) throw Error(what, "multi-disk (split) ZIP archives are not supported", "join the parts");
    if (m.local_header_offset > cd_offset || m.compressed_bytes > cd_offset - m.local_header_offset) {
      throw Error(what,
                  "member '" + m.name + "' (offset " + std::to_string(m.local_header_offset) + ", " +
                      std::to_string(m.compressed_bytes) + " bytes) does not fit before the central directory",
                  kDamagedHint);
    }
    m.key = m.name;
    if (m.key.size() > 4 && m.key.compare(m.key.size() - 4, 4, ".npy") == 0) m.key.resize(m.key.size() - 4);
    for (const auto& other : members_) {
      if (other.name == m.name) throw Error(what, "member '" + m.name + "' appears twice", kResaveHint);
    }
    members_.push_back(std::move(m));
    pos += kCentralBytes + name_len + extra_len + comment_len;
  }
}

std::vector<std::string> NpzFile::keys() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m.key);
  return out;
}

bool NpzFile::contains(const std::string& key) const {
  return std::any_of(members_.begin(), members_.end(), [&](const NpzMember& m) { return m.key == key; });
}

NpyArray NpzFile::read(const std::string& key) const {
  const NpzMember* m = nullptr;
  for (const auto& c : members_) {
    if (c.key == key) m = &c;
  }
  for (const auto& c : members_) {  // an exact member name wins over a stripped key
    if (c.name == key) m = &c;
  }
  const std::string source = "'" + key + "' from " + path_.string();
  const std::string what = "reading " + source;
  if (!m) {
    std::string present;
    for (const auto& c : members_) present += (present.empty() ? "" : ", ") + c.key;
    throw Error(what, "the archive has no key '" + key + "' (keys: " + (present.empty() ? "none" : present) + ")",
                "check that this is the right file");
  }
  if (m->flags & 0x1) throw Error(what, "the member is encrypted", "store the archive without encryption");
  if (m->method != 0 && m->method != 8) {
    throw Error(what, "compression method " + std::to_string(m->method) + " is not supported (0 STORED, 8 DEFLATED are)",
                kResaveHint);
  }
  if (m->uncompressed_bytes > kNpzMaxMemberBytes) {
    throw Error(what, "the member is " + std::to_string(m->uncompressed_bytes) + " bytes, above the 64 GiB limit");
  }
  if (m->method == 0 && m->compressed_bytes != m->uncompressed_bytes) {
    throw Error(what,
                "a STORED member is " + std::to_string(m->compressed_bytes) + " bytes in the archive but claims " +
                    std::to_string(m->uncompressed_bytes) + " uncompressed",
                kDamagedHint);
  }
  if (m->method == 8 && m->uncompressed_bytes / kMaxDeflateRatio > m->compressed_bytes) {
    throw Error(what,
                "the member claims " + std::to_string(m->uncompressed_bytes) + " bytes from " +
                    std::to_string(m->compressed_bytes) + " compressed ones, more than deflate can produce",
                kDamagedHint);
  }

  FileReader in(path_, "reading npz file " + path_.string());
  uint8_t local[kLocalBytes];
  in.read_at(m->local_header_offset, local, kLocalBytes, file_bytes_, "the local header of '" + m->name + "'");
  if (le32(local) != kSigLocal) {
    throw Error(what, "no local file header at offset " + std::to_string(m->local_header_offset), kDamagedHint);
  }
  const uint64_t name_len = le16(local + 26), extra_len = le16(local + 28);
  std::string local_name(static_cast<size_t>(name_len), '\0');
  in.read_at(m->local_header_offset + kLocalBytes, reinterpret_cast<uint8_t*>(local_name.data()), name_len, file_bytes_,
             "the local header of '" + m->name + "'");
  if (local_name != m->name) {
    throw Error(what, "the local header names '" + local_name + "', the central directory '" + m->name + "'",
                kDamagedHint);
  }
  const uint64_t data_pos = m->local_header_offset + kLocalBytes + name_len + extra_len;
  if (data_pos > file_bytes_ || m->compressed_bytes > file_bytes_ - data_pos) {
    throw Error(what, "the member's " + std::to_string(m->compressed_bytes) + " bytes at offset " +
                          std::to_string(data_pos) + " run past the end of the file (truncated?)",
                kDamagedHint);
  }

  std::vector<uint8_t> buf(static_cast<size_t>(m->uncompressed_bytes));
  if (m->method == 0) {
    in.read_at(data_pos, buf.data(), m->compressed_bytes, file_bytes_, "member '" + m->name + "'");
  } else {
    // Raw deflate (windowBits < 0: no zlib/gzip wrapper), streamed from the file in 64 KiB pieces.
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error(what, "zlib could not be initialised (out of memory?)");
    struct End {
      z_stream* z;
      ~End() { inflateEnd(z); }
    } end{&zs};
    std::array<uint8_t, 1 << 16> chunk{};
    uint64_t consumed = 0, produced = 0;
    bool done = false;
    while (!done) {
      if (zs.avail_in == 0 && consumed < m->compressed_bytes) {
        const uint64_t n = std::min<uint64_t>(chunk.size(), m->compressed_bytes - consumed);
        in.read_at(data_pos + consumed, chunk.data(), n, file_bytes_, "member '" + m->name + "'");
        consumed += n;
        zs.next_in = chunk.data();
        zs.avail_in = static_cast<uInt>(n);
      }
      const uint64_t room = buf.size() - produced;
      // One spare byte of output space (a local) catches a stream that inflates to more than recorded.
      uint8_t spare = 0;
      if (room > 0) {
        zs.next_out = buf.data() + produced;
        zs.avail_out = static_cast<uInt>(std::min<uint64_t>(room, 1u << 30));
      } else {
        zs.next_out = &spare;
        zs.avail_out = 1;
      }
      const uInt out_before = zs.avail_out;
      const uInt in_before = zs.avail_in;
      const int ret = inflate(&zs, Z_NO_FLUSH);
      const uint64_t got = out_before - zs.avail_out;
      if (room == 0 && got > 0) {
        throw Error(what, "the member inflates to more than the " + std::to_string(buf.size()) +
                              " bytes the central directory records",
                    kDamagedHint);
      }
      produced += got;
      if (ret == Z_STREAM_END) {
        done = true;
      } else if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT || ret == Z_MEM_ERROR || ret == Z_STREAM_ERROR) {
        throw Error(what, std::string("corrupt deflate data: ") + (zs.msg ? zs.msg : "zlib error " + std::to_string(ret)),
                    kDamagedHint);
      } else if (zs.avail_in == 0 && consumed == m->compressed_bytes && got == 0 && in_before == 0) {
        throw Error(what, "the deflate stream ends before its end marker (truncated?)", kDamagedHint);
      }
    }
    if (zs.avail_in > 0 || consumed < m->compressed_bytes) {
      throw Error(what, "bytes follow the end of the deflate stream inside the member", kDamagedHint);
    }
    if (produced != buf.size()) {
      throw Error(what, "the member inflates to " + std::to_string(produced) + " bytes, the central directory records " +
                            std::to_string(buf.size()),
                  kDamagedHint);
    }
  }

  uLong crc = crc32_z(0L, Z_NULL, 0);
  crc = crc32_z(crc, buf.data(), buf.size());
  if (static_cast<uint32_t>(crc) != m->crc32) {
    throw Error(what, "CRC-32 mismatch: the data hashes to " + hex32(static_cast<uint32_t>(crc)) +
                          ", the archive records " + hex32(m->crc32),
                kDamagedHint);
  }
  if (m->name.size() < 4 || m->name.compare(m->name.size() - 4, 4, ".npy") != 0) {
    throw Error(what, "member '" + m->name + "' is not a .npy array", "np.load reads it as raw bytes; spikefm does not");
  }
  return parse_npy_owned(std::move(buf), source);
}

}  // namespace spikefm
