#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace spikefm::log {

namespace {
spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_color_mt("spikefm");
    lg->set_pattern("[%H:%M:%S %^%l%$] %v");
    lg->set_level(spdlog::level::info);
    return lg;
  }();
  return *l;
}
}  // namespace

void set_level(Level level) {
  switch (level) {
    case Level::debug: logger().set_level(spdlog::level::debug); break;
    case Level::info: logger().set_level(spdlog::level::info); break;
    case Level::warn: logger().set_level(spdlog::level::warn); break;
    case Level::error: logger().set_level(spdlog::level::err); break;
    case Level::off: logger().set_level(spdlog::level::off); break;
  }
}
void debug(std::string_view msg) { logger().debug("{}", msg); }
void info(std::string_view msg) { logger().info("{}", msg); }
void warn(std::string_view msg) { logger().warn("{}", msg); }
void error(std::string_view msg) { logger().error("{}", msg); }

}  // namespace spikefm::log
