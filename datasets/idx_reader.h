// Reader for the IDX file format (Yann LeCun's MNIST format, used by Fashion-MNIST).
//
// Layout, all integers big-endian:
//   offset 0   uint8  0x00
//   offset 1   uint8  0x00
//   offset 2   uint8  element type   (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
//                                     0x0C int32, 0x0D float32, 0x0E float64)
//   offset 3   uint8  ndims          (1..4 accepted here)
//   offset 4   uint32 dims[ndims]    outermost first
//   then       prod(dims) elements, row-major, nothing after them
//
// Only element type 0x08 is supported (all Fashion-MNIST files use it). The file may be stored plain
// or gzip-compressed; gzip is recognised by its magic bytes 1f 8b, not by the file name, and
// concatenated gzip members are read as one stream.
//
// Hostile input is refused, never trusted: the element count is computed with overflow checks and
// capped at kIdxMaxDataBytes before anything is allocated, a plain file's size must equal header +
// data exactly, and a gzip stream is inflated only up to the size the header announces (+1 byte to
// detect trailing data). Every failure is a spikefm::Error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/h5_file.h"  // Shape

namespace spikefm {

// Largest data section accepted (1 GiB): far above any real IDX file, small enough to allocate.
inline constexpr int64_t kIdxMaxDataBytes = int64_t{1} << 30;

struct IdxArray {
  Shape dims;                 // e.g. (N, rows, cols) for images, (N,) for labels
  std::vector<uint8_t> data;  // prod(dims) bytes, row-major
};

// A dimension of size 0 is accepted (an empty array); callers that need data check for it.
IdxArray read_idx(const std::filesystem::path& path);

}  // namespace spikefm
