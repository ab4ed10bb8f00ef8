// The one exception type of spikefm.
//
// Every error a user can cause (bad file, bad flag, bad shape, NaN weight) is thrown as spikefm::Error
// at the boundary where it is detected, with three parts: what failed, why, and how to fix it. Layers
// above may prepend context ("loading checkpoint m.h5: ..."). The CLI prints
//   spikefm: error: <what>: <why> (<fix>)
// and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace spikefm {

class Error : public std::runtime_error {
 public:
  // what: the operation or object ("reading /encoder/blocks/0/attn/qkv/weight in m.h5"),
  // why: the cause ("shape (64, 3) does not match the expected (192, 64)"),
  // fix: an actionable hint, may be empty ("re-export the checkpoint with this version of spikefm").
  Error(const std::string& what, const std::string& why, const std::string& fix = "");

  // A copy of this error with "context: " in front of its message.
  Error with_context(const std::string& context) const;

 private:
  explicit Error(std::string full_message);
};

}  // namespace spikefm
