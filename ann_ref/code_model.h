// A trained code model (text-only MFM decoder + byte-level BPE, from `spikefm train --task code`) and
// its sampler: the torch-free facade used by `spikefm bench` and the tests.
//
// Sequences: [<bos>] + encode(code_prompt_view(prompt)) + encode(completion) + [<eos>]. The prompt and the completion
// are encoded separately (merges never join the prompt's last "\n" with the body's indentation), so
// training and generation see the same token boundary.
//
// Sampling (per prompt, n samples at once): the prompt runs once through the decoder into a KV cache;
// the cache is copied to n rows and every step feeds only the n new tokens (cost per step O(len), not
// O(len^2)). Each step samples from softmax(logits / temperature) (temperature 0: argmax), with the
// specials other than <eos> masked. A row stops at <eos>, at max_new_tokens, at max_text_len, or when
// its text contains a HumanEval stop sequence (kCodeStopSequences; the text is cut before it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "datasets/code_tokenizer.h"

namespace spikefm {

// "\ndef", "\nclass", "\nif __name__", "\nprint", "\n#": a new top-level statement ends the body
// (Chen et al. 2021, HumanEval).
const std::vector<std::string>& code_stop_sequences();
// `text` cut before the first stop sequence it contains; true in *stopped when one was found.
std::string cut_at_stop_sequence(const std::string& text, bool* stopped = nullptr);

// What the model reads of a prompt: the prompt without its doctest examples (every ">>>" line and
// the expected-result line after it). The project's docstrings spell out every parameter in their
// first sentence, so the examples repeat it; dropping them shortens the sequences ~40%, which on 2 CPU
// cores buys proportionally more training steps. The completion is still appended to the full prompt.
std::string code_prompt_view(const std::string& prompt);

// [<bos>] + tok.encode(code_prompt_view(prompt))
std::vector<int> code_prompt_ids(const CodeTokenizer& tok, const std::string& prompt);

struct CodeSampling {
  int samples = 1;           // n completions of the prompt
  double temperature = 0.8;  // 0: greedy
  int max_new_tokens = 160;
  uint64_t seed = 1;         // completions depend only on (model, prompt, options)
};

// libtorch's intra-op threads for sampling (n >= 1).
void set_code_model_threads(int n);

class CodeModel {
 public:
  // Loads a checkpoint written by train_code (text-only config, /tokenizer/bpe_merges). Throws
  // spikefm::Error naming the file for anything else.
  static CodeModel load(const std::filesystem::path& checkpoint);
  CodeModel(CodeModel&&) noexcept;
  CodeModel& operator=(CodeModel&&) noexcept;
  ~CodeModel();

  std::vector<std::string> complete(const std::string& prompt, const CodeSampling& sampling) const;

  const CodeTokenizer& tokenizer() const;
  int64_t parameters() const;
  int max_text_len() const;
  std::string describe() const;  // e.g. "large code model: 1.52 M parameters, 4 x 160, V = 768"

  struct Impl;

 private:
  explicit CodeModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikefm
