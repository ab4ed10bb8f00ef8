#include "datasets/tokenizer.h"

#include <algorithm>
#include <limits>
#include <set>

#include "common/error.h"

namespace spikefm {

namespace {

constexpr const char* kSpecialWords[WordTokenizer::kSpecials] = {"<pad>", "<bos>", "<eos>", "<sep>", "<unk>"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_punct_word(char c) { return c == '?' || c == '!' || c == ',' || c == '.'; }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

WordTokenizer::WordTokenizer(std::vector<std::string> vocab) : vocab_(std::move(vocab)) {
  const std::string what = "building the word tokenizer";
  if (vocab_.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    throw Error(what, "the vocabulary has more than 2^31-1 words");
  }
  if (vocab_.size() < kSpecials) {
    throw Error(what, "the vocabulary has " + std::to_string(vocab_.size()) + " words, fewer than the " +
                          std::to_string(kSpecials) + " specials",
                "start it with <pad> <bos> <eos> <sep> <unk>");
  }
  for (int i = 0; i < kSpecials; ++i) {
    if (vocab_[i] != kSpecialWords[i]) {
      throw Error(what, "id " + std::to_string(i) + " must be " + kSpecialWords[i] + " (got '" + vocab_[i] + "')",
                  "start the vocabulary with <pad> <bos> <eos> <sep> <unk>");
    }
  }
  for (size_t i = 0; i < vocab_.size(); ++i) {
    const std::string& w = vocab_[i];
    if (w.empty()) throw Error(what, "word " + std::to_string(i) + " is empty");
    if (std::any_of(w.begin(), w.end(), is_space)) {
      throw Error(what, "word " + std::to_string(i) + " ('" + w + "') contains whitespace");
    }
    const auto [it, inserted] = ids_.emplace(w, static_cast<int>(i));
    if (!inserted) {
      throw Error(what, "word '" + w + "' appears twice (ids " + std::to_string(it->second) + " and " +
                            std::to_string(i) + ")");
    }
  }
}

std::vector<std::string> WordTokenizer::split_words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (char c : text) {
    if (is_space(c)) {
      flush();
    } else if (is_punct_word(c)) {
      flush();
      words.emplace_back(1, c);
    } else {
      cur += lower(c);
    }
  }
  flush();
  return words;
}

WordTokenizer WordTokenizer::build(const std::vector<std::string>& texts) {
  std::set<std::string> words;
  for (const auto& t : texts) {
    for (auto& w : split_words(t)) words.insert(std::move(w));
  }
  std::vector<std::string> vocab(std::begin(kSpecialWords), std::end(kSpecialWords));
  for (const auto& w : words) {
    if (std::find(vocab.begin(), vocab.begin() + kSpecials, w) == vocab.begin() + kSpecials) vocab.push_back(w);
  }
  return WordTokenizer(std::move(vocab));
}

std::vector<int> WordTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  for (const auto& w : split_words(text)) {
    const int i = id(w);
    ids.push_back(i < 0 ? kUnk : i);
  }
  return ids;
}

std::string WordTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int i : ids) {
    if (i < 0 || i >= size()) {
      throw Error("decoding tokens", "id " + std::to_string(i) + " is outside the vocabulary [0, " +
                                         std::to_string(size()) + ")");
    }
    if (i == kEos) break;
    if (i < kSpecials) continue;
    if (!out.empty()) out += ' ';
    out += vocab_[i];
  }
  return out;
}

int WordTokenizer::id(std::string_view word) const {
  const auto it = ids_.find(word);
  return it == ids_.end() ? -1 : it->second;
}

}  // namespace spikefm
