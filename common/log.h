// Logging to stderr (spdlog underneath, kept out of this header). stdout is reserved for results,
// so `spikefm ... --json | jq` always sees one clean JSON object.
#pragma once

#include <string_view>

namespace spikefm::log {

enum class Level { debug, info, warn, error, off };

void set_level(Level level);
void debug(std::string_view msg);
void info(std::string_view msg);
void warn(std::string_view msg);
void error(std::string_view msg);

}  // namespace spikefm::log
