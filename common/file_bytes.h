// Whole-file reads for binary formats that parse from memory (DICOM, gzip'd archives).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

// The bytes of `path`. Throws spikefm::Error with `what` as context when the file does not exist
// (with `missing_fix` as the hint), is not a regular file, cannot be read, or is larger than
// `max_bytes` (checked before anything is allocated).
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path, uint64_t max_bytes, const std::string& what,
                                     const std::string& missing_fix = "check the path");

}  // namespace spikefm
