#include "datasets/code_tokenizer.h"

#include <algorithm>
#include <map>

#include "common/error.h"

namespace spikefm {

namespace {

const char* const kSpecialNames[CodeTokenizer::kSpecials] = {"<pad>", "<bos>", "<eos>", "<sep>", "<unk>"};

uint64_t pair_key(int a, int b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}
bool is_punct_byte(unsigned char c) { return c != ' ' && c != '\n' && !is_word_byte(c); }

// Merges every occurrence of (a, b) in `s`, left to right, into `id`.
void apply_merge(std::vector<int>& s, int a, int b, int id) {
  size_t w = 0;
  for (size_t r = 0; r < s.size(); ++r) {
    if (r + 1 < s.size() && s[r] == a && s[r + 1] == b) {
      s[w++] = id;
      ++r;
    } else {
      s[w++] = s[r];
    }
  }
  s.resize(w);
}

}  // namespace

CodeTokenizer::CodeTokenizer(std::vector<std::pair<int, int>> merges) : merges_(std::move(merges)) {
  pieces_.resize(kFirstMerge + merges_.size());
  for (int b = 0; b < 256; ++b) pieces_[kFirstByte + b] = std::string(1, static_cast<char>(b));
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto [a, b] = merges_[i];
    const int limit = kFirstMerge + static_cast<int>(i);
    if (a < kFirstByte || a >= limit || b < kFirstByte || b >= limit) {
      throw Error("BPE merge " + std::to_string(i), "joins ids (" + std::to_string(a) + ", " + std::to_string(b) +
                                                        "); both must be in [5, " + std::to_string(limit) + ")",
                  "the merge list is corrupt; retrain the tokenizer");
    }
    pieces_[limit] = pieces_[a] + pieces_[b];
    if (!rank_.emplace(pair_key(a, b), static_cast<int>(i)).second) {
      throw Error("BPE merge " + std::to_string(i), "repeats an earlier merge", "the merge list is corrupt; retrain the tokenizer");
    }
  }
}

std::vector<std::string_view> CodeTokenizer::split_chunks(std::string_view s) {
  std::vector<std::string_view> out;
  const size_t n = s.size();
  size_t i = 0;
  auto run = [&](size_t j, auto pred) {
    while (j < n && pred(static_cast<unsigned char>(s[j]))) ++j;
    return j;
  };
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t j;
    if (c == '\n') {
      j = run(i + 1, [](unsigned char x) { return x == ' '; });
    } else if (c == ' ') {
      const size_t end = run(i, [](unsigned char x) { return x == ' '; });
      if (end < n && s[end] != '\n') {
        if (end - i >= 2) {
          j = end - 1;  // the last space goes with what follows
        } else {
          const unsigned char next = static_cast<unsigned char>(s[end]);
          j = is_word_byte(next) ? run(end, is_word_byte) : run(end, is_punct_byte);
        }
      } else {
        j = end;
      }
    } else if (is_word_byte(c)) {
      j = run(i, is_word_byte);
    } else {
      j = run(i, is_punct_byte);
    }
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

CodeTokenizer CodeTokenizer::train(const std::vector<std::string>& texts, int vocab_size) {
  if (vocab_size < kFirstMerge || vocab_size > 65536) {
    throw Error("BPE vocabulary size", "must be in [" + std::to_string(kFirstMerge) + ", 65536] (got " +
                                           std::to_string(vocab_size) + ")");
  }
  std::map<std::string, int64_t> counts;  // ordered: deterministic
  for (const auto& t : texts) {
    for (auto ch : split_chunks(t)) counts[std::string(ch)]++;
  }
  std::vector<std::vector<int>> words;
  std::vector<int64_t> freq;
  for (const auto& [w, f] : counts) {
    std::vector<int> s;
    for (unsigned char b : w) s.push_back(kFirstByte + b);
    if (s.size() < 2) continue;  // a single byte never takes part in a merge
    words.push_back(std::move(s));
    freq.push_back(f);
  }
  std::vector<std::pair<int, int>> merges;
  std::unordered_map<uint64_t, int64_t> pairs;
  while (kFirstMerge + static_cast<int>(merges.size()) < vocab_size) {
    pairs.clear();
    for (size_t w = 0; w < words.size(); ++w) {
      const auto& s = words[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs[pair_key(s[i], s[i + 1])] += freq[w];
    }
    uint64_t best = 0;
    int64_t best_count = 0;
    for (const auto& [k, c] : pairs) {
      if (c > best_count || (c == best_count && k < best)) {
        best = k;
        best_count = c;
      }
    }
    if (best_count < 2) break;
    const int a = static_cast<int>(best >> 32), b = static_cast<int>(best & 0xffffffffu);
    const int id = kFirstMerge + static_cast<int>(merges.size());
    merges.emplace_back(a, b);
    size_t keep = 0;
    for (size_t w = 0; w < words.size(); ++w) {
      apply_merge(words[w], a, b, id);
      if (words[w].size() >= 2) {  // fully merged chunks leave the pair count
        if (keep != w) {
          words[keep] = std::move(words[w]);
          freq[keep] = freq[w];
        }
        ++keep;
      }
    }
    words.resize(keep);
    freq.resize(keep);
  }
  return CodeTokenizer(std::move(merges));
}

void CodeTokenizer::encode_chunk(std::string_view chunk, std::vector<int>& out) const {
  std::vector<int> s;
  s.reserve(chunk.size());
  for (unsigned char b : chunk) s.push_back(kFirstByte + b);
  while (s.size() >= 2) {
    int best = -1;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      auto it = rank_.find(pair_key(s[i], s[i + 1]));
      if (it != rank_.end() && (best < 0 || it->second < best)) best = it->second;
    }
    if (best < 0) break;
    apply_merge(s, merges_[best].first, merges_[best].second, kFirstMerge + best);
  }
  out.insert(out.end(), s.begin(), s.end());
}

std::vector<int> CodeTokenizer::encode(std::string_view text) const {
  std::vector<int> out;
  out.reserve(text.size() / 2 + 1);
  for (auto ch : split_chunks(text)) encode_chunk(ch, out);
  return out;
}

std::string CodeTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) out += piece(id);
  return out;
}

const std::string& CodeTokenizer::piece(int id) const {
  if (id < 0 || id >= size()) {
    throw Error("decoding token id " + std::to_string(id), "outside the vocabulary [0, " + std::to_string(size()) + ")");
  }
  return pieces_[id];
}

std::string CodeTokenizer::escape_piece(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x21 && c <= 0x7e) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::vector<std::string> CodeTokenizer::display_vocab() const {
  std::vector<std::string> v;
  v.reserve(pieces_.size());
  for (int i = 0; i < kSpecials; ++i) v.emplace_back(kSpecialNames[i]);
  for (size_t i = kSpecials; i < pieces_.size(); ++i) v.push_back(escape_piece(pieces_[i]));
  return v;
}

std::vector<int64_t> CodeTokenizer::merges_flat() const {
  std::vector<int64_t> flat;
  flat.reserve(2 * merges_.size());
  for (auto [a, b] : merges_) {
    flat.push_back(a);
    flat.push_back(b);
  }
  return flat;
}

CodeTokenizer CodeTokenizer::from_flat(const std::vector<int64_t>& flat, const std::string& origin) {
  if (flat.size() % 2 != 0) throw Error(origin, "has " + std::to_string(flat.size()) + " values; merges are pairs");
  std::vector<std::pair<int, int>> merges;
  for (size_t i = 0; i < flat.size(); i += 2) {
    for (int64_t v : {flat[i], flat[i + 1]}) {
      if (v < 0 || v > 65536) throw Error(origin, "merge " + std::to_string(i / 2) + " has id " + std::to_string(v) + " out of range");
    }
    merges.emplace_back(static_cast<int>(flat[i]), static_cast<int>(flat[i + 1]));
  }
  try {
    return CodeTokenizer(std::move(merges));
  } catch (const Error& e) {
    throw e.with_context(origin);
  }
}

}  // namespace spikefm
