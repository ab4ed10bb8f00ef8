#include <algorithm>

#include "common/error.h"
#include "decoding/token_model.h"

namespace spikefm::decoding {

int argmax(std::span<const float> logits) {
  if (logits.empty()) throw Error("argmax", "empty logits");
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<int> greedy_decode(TokenModel& model, std::span<const float> image, const std::vector<int>& prompt,
                               int eos, int max_new) {
  std::vector<int> out;
  std::vector<float> logits = model.begin(image, prompt);
  for (int i = 0; i < max_new; ++i) {
    int next = argmax(logits);
    if (next == eos) break;
    out.push_back(next);
    if (i + 1 < max_new) logits = model.append(next);
  }
  return out;
}

}  // namespace spikefm::decoding
