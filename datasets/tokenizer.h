// Word-level tokenizer for the small, closed vocabularies of the built-in VQA benchmarks.
//
// Splitting (encode): ASCII letters are lower-cased; words are separated by whitespace; each of
// '?' '!' ',' '.' is a word of its own ("what is this?" -> what | is | this | ?). Every other
// character, hyphens included, stays inside its word ("t-shirt" is one word, "ankle boot" two).
// A word not in the vocabulary becomes kUnk. encode() adds no <bos>/<eos>; callers frame sequences.
//
// Vocabulary: ids 0..4 are always "<pad>", "<bos>", "<eos>", "<sep>", "<unk>"; the other words follow.
// build() makes the vocabulary deterministic: the specials, then every word of the texts, sorted
// by byte value, so the same texts give the same ids on any machine.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace spikefm {

class WordTokenizer {
 public:
  static constexpr int kPad = 0, kBos = 1, kEos = 2, kSep = 3, kUnk = 4;
  static constexpr int kSpecials = 5;

  // Throws spikefm::Error unless the specials sit at 0..4 and every word is non-empty, unique and
  // free of whitespace.
  explicit WordTokenizer(std::vector<std::string> vocab);

  // The specials, then every distinct word of `texts` (split as encode() does), sorted.
  static WordTokenizer build(const std::vector<std::string>& texts);

  // The split rule above, as words (no vocabulary lookup).
  static std::vector<std::string> split_words(std::string_view text);

  std::vector<int> encode(std::string_view text) const;
  // Words joined by single spaces; every special (<pad> <bos> <sep> <unk>) is skipped and decoding
  // stops at the first kEos. An id outside [0, size()) throws.
  std::string decode(const std::vector<int>& ids) const;

  int size() const { return static_cast<int>(vocab_.size()); }
  const std::vector<std::string>& vocab() const { return vocab_; }
  int id(std::string_view word) const;  // -1 if absent

 private:
  std::vector<std::string> vocab_;
  std::map<std::string, int, std::less<>> ids_;
};

}  // namespace spikefm
