// Reader for NumPy's `.npy` arrays and `.npz` archives of them (np.save, np.savez,
// np.savez_compressed) — the format MedMNIST ships its splits in.
//
// .npz = a ZIP archive with one member `<key>.npy` per array. Read here without libzip:
//   - the End Of Central Directory record (EOCD, signature PK\5\6) is found by scanning the last
//     22 + 65535 bytes of the file backwards; when a field is saturated (0xFFFF / 0xFFFFFFFF) the
//     ZIP64 EOCD locator (PK\6\7) and record (PK\6\6) give the 64-bit values;
//   - each central-directory entry (PK\1\2) gives name, method, CRC-32, compressed and uncompressed
//     size and the offset of the member's local header (PK\3\4), with ZIP64 extra field 0x0001
//     supplying the saturated ones. Sizes are taken from the central directory, never from the local
//     header (numpy writes local headers with ZIP64 placeholders or a data descriptor);
//   - methods 0 (STORED, np.savez) and 8 (DEFLATED, np.savez_compressed, inflated as raw deflate by
//     zlib) are supported; encrypted members, other methods and multi-disk archives are refused;
//   - the CRC-32 of every member is verified against the central directory after reading it.
//
// .npy layout (NEP 1, numpy/lib/format.py):
//   offset 0   6 bytes   magic "\x93NUMPY"
//   offset 6   uint8     major version (1, 2 or 3), uint8 minor version (0)
//   offset 8   uint16 LE (v1) or uint32 LE (v2, v3): header length HLEN
//   then       HLEN bytes: a Python dict literal, ASCII (v1, v2) or UTF-8 (v3), space-padded, '\n'-ended:
//                {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
//   then       prod(shape) * itemsize bytes of data, C order (row-major), nothing after them
// Supported descr: |b1 (bool), |i1 <i2 <i4 <i8, |u1 <u2 <u4 <u8, <f4 <f8 (little-endian; '=' is
// accepted as native = little on the machines spikefm runs on, and 1-byte types accept any order
// mark). Refused with an Error naming the file and member: fortran_order True, big-endian ('>'),
// object ('O') and every other dtype (strings, structured, float16, complex).
//
// Hostile input is refused, never trusted: every offset and size is bounds-checked against the file
// size before it is used; a DEFLATED member may not claim more than 1032x its compressed size (the
// largest ratio deflate can reach); element counts are computed with overflow checks; a member's
// data size must equal what its npy header announces exactly.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "common/h5_file.h"  // Shape, shape_str

namespace spikefm {

// Largest uncompressed member accepted (64 GiB): far above any MedMNIST file (MedMNIST+ 224x224
// splits are a few GiB), small enough to reject an absurd size before allocating.
inline constexpr uint64_t kNpzMaxMemberBytes = uint64_t{1} << 36;

// Element type of an npy array: kind 'b' (bool), 'i' (signed), 'u' (unsigned), 'f' (IEEE float)
// and the size of one element in bytes.
struct NpyDtype {
  char kind = 'u';
  int itemsize = 1;

  std::string str() const;  // numpy's descr, e.g. "|u1", "<f4", "|b1"
  bool operator==(const NpyDtype&) const = default;
};

// The dtype matching a C++ element type (bool -> |b1, uint8_t -> |u1, int64_t -> <i8, float -> <f4, ...).
template <typename T>
constexpr NpyDtype npy_dtype_of() {
  if constexpr (std::is_same_v<T, bool>) {
    return {'b', 1};
  } else if constexpr (std::is_floating_point_v<T>) {
    return {'f', static_cast<int>(sizeof(T))};
  } else {
    static_assert(std::is_integral_v<T>, "npy elements are bool, integers or floats");
    return {std::is_signed_v<T> ? 'i' : 'u', static_cast<int>(sizeof(T))};
  }
}

struct NpyArray {
  std::string source;          // where it came from, for messages: "'train_images' from m.npz"
  NpyDtype dtype;
  Shape shape;                 // outermost first; () for a 0-d scalar (one element)
  std::vector<uint8_t> bytes;  // numel() * dtype.itemsize bytes, row-major, little-endian

  int64_t numel() const { return shape_numel(shape); }

  // The elements as T; throws spikefm::Error naming `source` unless dtype == npy_dtype_of<T>().
  template <typename T>
  std::vector<T> values() const {
    check_dtype(npy_dtype_of<T>());
    std::vector<T> out(static_cast<size_t>(numel()));
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < out.size(); ++i) out[i] = bytes[i] != 0;  // std::vector<bool> is packed
    } else if (!out.empty()) {
      std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    }
    return out;
  }

  // Any bool or integer dtype widened to int64 (a uint64 above INT64_MAX is an Error); float dtypes
  // are refused.
  std::vector<int64_t> to_int64() const;
  // Any dtype converted to double (int64/uint64 beyond 2^53 round to the nearest double).
  std::vector<double> to_double() const;

 private:
  void check_dtype(const NpyDtype& want) const;
};

// Parses one .npy image held in memory. `source` names it in errors ("'x' from m.npz" or a file path).
NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& source);

// Reads a standalone .npy file (np.save).
NpyArray read_npy(const std::filesystem::path& path);

// One member of the archive, as its central-directory entry describes it.
struct NpzMember {
  std::string name;                  // file name inside the archive, e.g. "train_images.npy"
  std::string key;                   // name without the ".npy" suffix: what np.load(...)[key] uses
  uint16_t method = 0;               // 0 STORED, 8 DEFLATED
  uint16_t flags = 0;                // general-purpose bit flags (bit 0: encrypted)
  uint32_t crc32 = 0;                // of the uncompressed bytes
  uint64_t compressed_bytes = 0;     // size in the archive
  uint64_t uncompressed_bytes = 0;   // size of the .npy image
  uint64_t local_header_offset = 0;  // of its PK\3\4 record
};

// An opened .npz: the constructor reads and validates the central directory only; read() reads,
// inflates, CRC-checks and parses one member. Members are read on demand, so a caller that needs
// one split of a multi-GiB MedMNIST file does not pay for the others.
class NpzFile {
 public:
  explicit NpzFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<NpzMember>& members() const { return members_; }
  std::vector<std::string> keys() const;  // archive order
  bool contains(const std::string& key) const;

  // The array stored under `key` (the member "<key>.npy", or a member named exactly `key`).
  // Throws spikefm::Error naming the file and key: missing key (listing the keys present),
  // truncated or corrupt data, CRC-32 mismatch, bad npy header, unsupported dtype.
  NpyArray read(const std::string& key) const;

 private:
  std::filesystem::path path_;
  uint64_t file_bytes_ = 0;
  std::vector<NpzMember> members_;
};

}  // namespace spikefm
