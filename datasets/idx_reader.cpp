#include "datasets/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>

#include "common/error.h"

namespace spikefm {

namespace {

constexpr const char* kReinstallHint =
    "the file is damaged: reinstall the Debian package dataset-fashion-mnist or re-download it";

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(b));
  return buf;
}

std::string type_name(uint8_t type) {
  switch (type) {
    case 0x08: return "0x08 (unsigned byte)";
    case 0x09: return "0x09 (signed byte)";
    case 0x0B: return "0x0B (int16)";
    case 0x0C: return "0x0C (int32)";
    case 0x0D: return "0x0D (float32)";
    case 0x0E: return "0x0E (float64)";
    default: return hex_byte(type) + " (not an IDX type)";
  }
}

// A byte stream over a plain or gzip-compressed file. read() returns fewer bytes than asked only at
// the end of the data; damage and I/O failures throw.
class ByteSource {
 public:
  explicit ByteSource(const std::filesystem::path& path) : what_("reading IDX file " + path.string()) {
    file_.open(path, std::ios::binary);
    if (!file_) throw Error(what_, "cannot open the file", "check its permissions");
    // gzip is recognised by its magic bytes 1f 8b, whatever the file is called.
    uint8_t magic[2] = {0, 0};
    file_.read(reinterpret_cast<char*>(magic), 2);
    const auto got = file_.gcount();
    file_.clear();
    file_.seekg(0);
    gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzip_) {
      zs_ = std::make_unique<z_stream>();
      // 16 + MAX_WBITS: expect a gzip wrapper (header and CRC-32 trailer are checked by zlib).
      if (inflateInit2(zs_.get(), 16 + MAX_WBITS) != Z_OK) {
        zs_.reset();
        throw Error(what_, "zlib could not be initialised (out of memory?)");
      }
    }
  }
  ~ByteSource() {
    if (zs_) inflateEnd(zs_.get());
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzip() const { return gzip_; }
  const std::string& what() const { return what_; }

  size_t read(uint8_t* dst, size_t n) {
    if (n == 0) return 0;
    if (!gzip_) {
      file_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
      if (file_.bad()) throw Error(what_, "I/O error while reading");
      return static_cast<size_t>(file_.gcount());
    }
    return inflate_into(dst, n);
  }

 private:
  void refill() {
    if (file_eof_) return;
    file_.read(reinterpret_cast<char*>(in_.data()), static_cast<std::streamsize>(in_.size()));
    if (file_.bad()) throw Error(what_, "I/O error while reading");
    const auto got = static_cast<uInt>(file_.gcount());
    if (got < in_.size()) file_eof_ = true;
    zs_->next_in = in_.data();
    zs_->avail_in = got;
  }

  size_t inflate_into(uint8_t* dst, size_t n) {
    z_stream& zs = *zs_;
    zs.next_out = dst;
    zs.avail_out = static_cast<uInt>(n);  // callers ask for at most 1 MiB at a time
    while (zs.avail_out > 0) {
      if (member_done_) {
        // A gzip file may hold several members back to back; anything else after one is damage
        // (reported by inflate as a bad header).
        if (zs.avail_in == 0) refill();
        if (zs.avail_in == 0) break;
        inflateReset(&zs);
        member_done_ = false;
      }
      if (zs.avail_in == 0) refill();
      const int ret = inflate(&zs, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        member_done_ = true;
      } else if (ret == Z_BUF_ERROR) {
        if (zs.avail_in == 0 && file_eof_) {
          throw Error(what_, "corrupt gzip stream: the compressed data ends before the end of the stream "
                             "(file truncated?)", kReinstallHint);
        }
      } else if (ret != Z_OK) {
        const std::string why = zs.msg ? zs.msg : "zlib error " + std::to_string(ret);
        throw Error(what_, "corrupt gzip stream: " + why, kReinstallHint);
      }
    }
    return n - zs.avail_out;
  }

  std::string what_;
  std::ifstream file_;
  bool gzip_ = false;
  std::unique_ptr<z_stream> zs_;
  std::array<uint8_t, 1 << 16> in_{};
  bool file_eof_ = false, member_done_ = false;
};

constexpr size_t kChunk = 1 << 20;  // bytes read per call while streaming gzip data

}  // namespace

IdxArray read_idx(const std::filesystem::path& path) {
  const std::string what = "reading IDX file " + path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    throw Error(what, "the file does not exist",
                "install the Debian package dataset-fashion-mnist or pass --data-dir");
  }
  if (!std::filesystem::is_regular_file(status)) throw Error(what, "not a regular file");

  ByteSource src(path);

  // --- header: 00 00 <type> <ndims>, then ndims big-endian uint32 dims ---
  uint8_t magic[4];
  const size_t got_magic = src.read(magic, 4);
  if (got_magic < 4) {
    throw Error(what, "too short for an IDX header (" + std::to_string(got_magic) + " bytes)", kReinstallHint);
  }
  if (magic[0] != 0 || magic[1] != 0) {
    throw Error(what,
                "bad magic " + hex_byte(magic[0]) + " " + hex_byte(magic[1]) + " " + hex_byte(magic[2]) + " " +
                    hex_byte(magic[3]) + ": not an IDX file (expected 0x00 0x00 <type> <ndims>)",
                "pass the *-idx?-ubyte or *-idx?-ubyte.gz file");
  }
  const uint8_t type = magic[2];
  const int ndims = magic[3];
  if (type != 0x08) {
    throw Error(what, "element type " + type_name(type) + " is not supported; only 0x08 (unsigned byte) is");
  }
  if (ndims == 0 || ndims > 4) {
    throw Error(what, "the header declares " + std::to_string(ndims) + " dimensions; 1 to 4 are supported",
                kReinstallHint);
  }

  uint8_t dim_bytes[16];
  const size_t want_dims = 4 * static_cast<size_t>(ndims);
  if (src.read(dim_bytes, want_dims) < want_dims) {
    throw Error(what, "truncated: the header ends inside its " + std::to_string(ndims) + " dimension sizes",
                kReinstallHint);
  }

  IdxArray out;
  int64_t numel = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* b = dim_bytes + 4 * d;
    const int64_t dim = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    out.dims.push_back(dim);
  }
  // Overflow-safe product, capped before anything is allocated. Any zero dim makes the array empty,
  // whatever the others say.
  const bool empty = std::find(out.dims.begin(), out.dims.end(), 0) != out.dims.end();
  for (int64_t dim : out.dims) {
    if (empty) {
      numel = 0;
      break;
    }
    if (numel > kIdxMaxDataBytes / dim) {
      throw Error(what,
                  "the header declares dims " + shape_str(out.dims) + ", more than the " +
                      std::to_string(kIdxMaxDataBytes) + "-byte (1 GiB) limit",
                  "this is not a real dataset file; " + std::string(kReinstallHint));
    }
    numel *= dim;
  }
  const int64_t header_bytes = 4 + 4 * int64_t{ndims};

  // --- data ---
  if (!src.gzip()) {
    // The file size says everything up front: no allocation for a header that lies.
    const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
    const int64_t available = file_bytes - header_bytes;
    if (available < numel) {
      throw Error(what,
                  "truncated: expected " + std::to_string(numel) + " bytes of data for dims " + shape_str(out.dims) +
                      ", found " + std::to_string(available),
                  kReinstallHint);
    }
    if (available > numel) {
      throw Error(what,
                  std::to_string(available - numel) + " trailing bytes after the " + std::to_string(numel) +
                      " bytes of data for dims " + shape_str(out.dims),
                  kReinstallHint);
    }
    out.data.resize(static_cast<size_t>(numel));
    const size_t got = src.read(out.data.data(), out.data.size());
    if (got < out.data.size()) {  // the file shrank while we read it
      throw Error(what, "truncated: expected " + std::to_string(numel) + " bytes of data, found " +
                            std::to_string(got));
    }
    return out;
  }

  // gzip: the decompressed size is unknown until the end, so grow in chunks; a header claiming
  // 1 GiB over a 100-byte stream costs one chunk, not a gigabyte.
  while (static_cast<int64_t>(out.data.size()) < numel) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(numel - static_cast<int64_t>(out.data.size()), kChunk));
    const size_t old = out.data.size();
    out.data.resize(old + want);
    const size_t got = src.read(out.data.data() + old, want);
    out.data.resize(old + got);
    if (got < want) {
      throw Error(what,
                  "truncated: expected " + std::to_string(numel) + " bytes of data for dims " + shape_str(out.dims) +
                      ", found " + std::to_string(out.data.size()),
                  kReinstallHint);
    }
  }
  // Count what follows the data, inflating at most 64 MiB of it (a gzip bomb stays cheap).
  constexpr int64_t kMaxTrailingCount = int64_t{64} << 20;
  std::vector<uint8_t> scratch(1 << 16);
  int64_t trailing = 0;
  while (trailing < kMaxTrailingCount) {
    const size_t got = src.read(scratch.data(), scratch.size());
    trailing += static_cast<int64_t>(got);
    if (got < scratch.size()) break;
  }
  if (trailing > 0) {
    throw Error(what,
                (trailing >= kMaxTrailingCount ? "at least " : "") + std::to_string(trailing) +
                    " trailing bytes after the " + std::to_string(numel) + " bytes of data for dims " +
                    shape_str(out.dims),
                kReinstallHint);
  }
  return out;
}

}  // namespace spikefm
