#include "datasets/png_writer.h"

#include <zlib.h>

#include "common/atomic_file.h"
#include "common/error.h"

namespace spikefm {

namespace {

void put_u32_be(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

// length, type, data, CRC-32 over type + data.
void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32_be(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out.size();
  out.append(type, 4);
  out += data;
  const auto* p = reinterpret_cast<const Bytef*>(out.data() + type_at);
  put_u32_be(out, static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), p, static_cast<uInt>(4 + data.size()))));
}

}  // namespace

std::string encode_png_gray8(const std::vector<uint8_t>& pixels, int64_t rows, int64_t cols) {
  const std::string what = "encoding a PNG image";
  constexpr int64_t kMax = (int64_t{1} << 31) - 1;  // PNG dimensions are positive int32
  if (rows < 1 || cols < 1 || rows > kMax || cols > kMax) {
    throw Error(what,
                "size " + std::to_string(rows) + "x" + std::to_string(cols) + " is outside 1..2^31-1 pixels per side");
  }
  if (static_cast<uint64_t>(pixels.size()) / static_cast<uint64_t>(cols) != static_cast<uint64_t>(rows) ||
      pixels.size() % static_cast<size_t>(cols) != 0) {
    throw Error(what, std::to_string(pixels.size()) + " pixels given for a " + std::to_string(rows) + "x" +
                          std::to_string(cols) + " image");
  }
  // Scanlines: filter byte 0 (None) + the row.
  std::string raw;
  raw.reserve(static_cast<size_t>(rows * (cols + 1)));
  for (int64_t r = 0; r < rows; ++r) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(pixels.data() + r * cols), static_cast<size_t>(cols));
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  if (compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                static_cast<uLong>(raw.size()), 9) != Z_OK) {
    throw Error(what, "zlib compress2 failed (out of memory?)");
  }
  z.resize(zlen);

  std::string ihdr;
  put_u32_be(ihdr, static_cast<uint32_t>(cols));  // width
  put_u32_be(ihdr, static_cast<uint32_t>(rows));  // height
  ihdr += '\x08';                                 // bit depth
  ihdr += '\x00';                                 // colour type: grayscale
  ihdr += '\x00';                                 // compression: deflate
  ihdr += '\x00';                                 // filter method 0
  ihdr += '\x00';                                 // no interlace

  std::string out("\x89PNG\r\n\x1a\n", 8);
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", "");
  return out;
}

void write_png_gray8(const std::filesystem::path& path, const std::vector<uint8_t>& pixels, int64_t rows,
                     int64_t cols) {
  try {
    write_file_atomic(path, encode_png_gray8(pixels, rows, cols));
  } catch (const Error& e) {
    throw e.with_context("writing PNG " + path.string());
  }
}

}  // namespace spikefm
