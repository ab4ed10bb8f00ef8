// TokenModel: the one next-token interface every backend implements (ANN, quantized ANN, spiking).
// Decoders (greedy, sampling, speculative, cascade) are written against it and never know what runs
// underneath.
//
// A TokenModel holds the state of one sequence: an image prefix, then text tokens. `begin` starts a
// sequence and returns the logits for the token after the prompt; `append` feeds one token and returns
// the logits for the next; `rollback` drops the last n text tokens (speculative decoding rejects drafts
// this way).
#pragma once

#include <span>
#include <vector>

namespace spikefm::decoding {

class TokenModel {
 public:
  virtual ~TokenModel() = default;

  virtual int vocab_size() const = 0;
  // The image the backend expects: (image_size, image_size) grey pixels in [0, 1], row-major.
  virtual int image_size() const = 0;

  // image: (image_size * image_size), prompt: token ids (non-empty). Returns logits (vocab_size).
  virtual std::vector<float> begin(std::span<const float> image, const std::vector<int>& prompt) = 0;
  // Feeds one token; returns logits (vocab_size) for the token after it.
  virtual std::vector<float> append(int token) = 0;
  // Drops the last n text tokens (0 <= n <= text_length() - 1; the prompt's first token stays).
  virtual void rollback(int n) = 0;
  // Number of text tokens in the current sequence (prompt + appended).
  virtual int text_length() const = 0;
};

// Index of the largest logit (first one on ties).
int argmax(std::span<const float> logits);

// Greedy decoding: begin(image, prompt), then append the argmax until `eos` or `max_new` tokens.
// Returns the generated tokens, `eos` excluded.
std::vector<int> greedy_decode(TokenModel& model, std::span<const float> image, const std::vector<int>& prompt,
                               int eos, int max_new);

}  // namespace spikefm::decoding
