// JSON output: one ordered object per result, keys in insertion order, units in key names
// (`energy_pj`, `seconds`). Files are written atomically.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace spikefm {

using Json = nlohmann::ordered_json;

// Writes `value` (pretty-printed, trailing newline) to `path` atomically.
void write_json_file(const std::filesystem::path& path, const Json& value);

}  // namespace spikefm
