// A minimal PNG writer for 8-bit grayscale images (PNG spec, ISO/IEC 15948 / W3C PNG 2nd edition).
//
// File layout written:
//   8-byte signature   89 50 4E 47 0D 0A 1A 0A
//   IHDR  width, height (uint32 big-endian), bit depth 8, colour type 0 (grayscale), compression 0,
//         filter method 0, interlace 0 (none)
//   IDAT  one zlib stream (deflate, level 9) of the scanlines, each prefixed by filter type 0 (None)
//   IEND
// Every chunk is length (uint32 BE) + type + data + CRC-32 (of type + data; zlib's crc32, the same
// polynomial PNG specifies). Used for sample images of the built-in benchmarks (docs/img).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

// pixels: (rows, cols), row-major, 0 = black. Throws spikefm::Error unless 1 <= rows, cols <= 2^31 - 1
// and pixels.size() == rows * cols.
std::string encode_png_gray8(const std::vector<uint8_t>& pixels, int64_t rows, int64_t cols);

// encode_png_gray8, written atomically (common/atomic_file.h) to path.
void write_png_gray8(const std::filesystem::path& path, const std::vector<uint8_t>& pixels, int64_t rows, int64_t cols);

}  // namespace spikefm
