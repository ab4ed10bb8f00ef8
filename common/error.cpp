#include "common/error.h"

namespace spikefm {

namespace {
std::string compose(const std::string& what, const std::string& why, const std::string& fix) {
  std::string msg = what;
  if (!why.empty()) msg += (msg.empty() ? "" : ": ") + why;
  if (!fix.empty()) msg += " (" + fix + ")";
  return msg;
}
}  // namespace

Error::Error(const std::string& what, const std::string& why, const std::string& fix)
    : std::runtime_error(compose(what, why, fix)) {}

Error::Error(std::string full_message) : std::runtime_error(std::move(full_message)) {}

Error Error::with_context(const std::string& context) const {
  return Error(context + ": " + what());
}

}  // namespace spikefm
