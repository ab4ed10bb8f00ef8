// Byte-level BPE tokenizer for code (Sennrich et al. 2016, "Neural Machine Translation of Rare Words
// with Subword Units"; byte-level as in GPT-2), trained here on the code tasks.
//
// Ids:   0..4          the specials "<pad>" "<bos>" "<eos>" "<sep>" "<unk>" (as WordTokenizer)
//        5..260        one token per byte value b (id = 5 + b): any byte string is encodable
//        261..V-1      merge i (0-based) joins the pair merges[i] = (left id, right id) into id 261 + i
// The merges alone define the tokenizer; the piece of every id is the bytes it spells.
//
// Pre-tokenization (chunks; merges never cross a chunk boundary), scanning bytes left to right:
//   - '\n' followed by its run of spaces ("\n    ": a line break with its indentation);
//   - a word: an optional single space, then a run of [A-Za-z0-9_] or bytes >= 0x80;
//   - punctuation: an optional single space, then a run of other bytes (not space, '\n', word bytes);
//   - a run of spaces not taken by the rules above (a single space before a word or punctuation run
//     belongs to it).
// Every byte lands in exactly one chunk, so encode is lossless: decode(encode(s)) == s for any s.
//
// Encoding a chunk: start from its bytes; repeatedly merge every occurrence (left to right) of the
// adjacent pair with the lowest merge index, until no pair of the chunk has a merge.
// Training: count the chunks of the texts; repeatedly take the most frequent adjacent pair over all
// chunks (ties: the smallest (left, right)), record it as a merge and apply it, until the vocabulary
// has vocab_size ids or no pair occurs twice. Deterministic: the same texts give the same merges.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spikefm {

class CodeTokenizer {
 public:
  static constexpr int kPad = 0, kBos = 1, kEos = 2, kSep = 3, kUnk = 4;
  static constexpr int kSpecials = 5;
  static constexpr int kFirstByte = 5;
  static constexpr int kFirstMerge = kFirstByte + 256;  // 261: the smallest vocabulary (no merges)

  // Throws spikefm::Error unless every merge i joins two ids < kFirstMerge + i that are not specials.
  explicit CodeTokenizer(std::vector<std::pair<int, int>> merges = {});

  // Trains on `texts` (each text chunked separately). vocab_size in [261, 65536].
  static CodeTokenizer train(const std::vector<std::string>& texts, int vocab_size);

  // The chunking rule above, as views into `text`.
  static std::vector<std::string_view> split_chunks(std::string_view text);

  std::vector<int> encode(std::string_view text) const;  // no specials added
  // The bytes of every id concatenated; specials contribute nothing. An id outside [0, size()) throws.
  std::string decode(const std::vector<int>& ids) const;

  int size() const { return static_cast<int>(pieces_.size()); }
  const std::vector<std::pair<int, int>>& merges() const { return merges_; }
  const std::string& piece(int id) const;  // the bytes of id ("" for the specials)

  // Printable names of the ids (stored as /tokenizer/vocab): the specials by name; a piece with its
  // bytes 0x21..0x7e as they are, '\' as "\\" and every other byte as "\xHH" (lower-case hex).
  std::vector<std::string> display_vocab() const;
  static std::string escape_piece(std::string_view bytes);

  // Merge pairs flattened as (M, 2) row-major int64 (the checkpoint dataset /tokenizer/bpe_merges),
  // and back (throws naming `origin` on an odd length or an invalid merge).
  std::vector<int64_t> merges_flat() const;
  static CodeTokenizer from_flat(const std::vector<int64_t>& flat, const std::string& origin);

 private:
  void encode_chunk(std::string_view chunk, std::vector<int>& out) const;
  std::vector<std::pair<int, int>> merges_;
  std::vector<std::string> pieces_;                 // (V,)
  std::unordered_map<uint64_t, int> rank_;          // (left << 32 | right) → merge index
};

}  // namespace spikefm
