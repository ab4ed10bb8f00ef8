#include "common/file_bytes.h"

#include <fstream>
#include <system_error>

#include "common/error.h"

namespace spikefm {

std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path, uint64_t max_bytes, const std::string& what,
                                     const std::string& missing_fix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(what, "the file does not exist", missing_fix);
  if (!fs::is_regular_file(status)) throw Error(what, "not a regular file", "pass a file, not a directory or device");
  const auto size = fs::file_size(path, ec);
  if (ec) throw Error(what, "cannot read its size: " + ec.message());
  if (size > max_bytes) {
    throw Error(what, "the file is " + std::to_string(size) + " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(what, "cannot open the file", "check its permissions");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(f.gcount()) != size) throw Error(what, "I/O error while reading");
  return bytes;
}

}  // namespace spikefm
