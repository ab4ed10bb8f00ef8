// Byte-level BPE for code: lossless on any bytes, deterministic training, and merges that pay off.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "datasets/code_tasks.h"
#include "datasets/code_tokenizer.h"

using spikefm::CodeTokenizer;

namespace {

std::vector<std::string> training_texts(size_t limit) {
  auto tasks = spikefm::load_code_tasks(spikefm::code_tasks_file("train"));
  std::vector<std::string> texts;
  for (size_t i = 0; i < tasks.size() && i < limit; ++i) {
    texts.push_back(tasks[i].prompt);
    texts.push_back(tasks[i].canonical_solution);
  }
  return texts;
}

const CodeTokenizer& trained() {
  static const CodeTokenizer tok = CodeTokenizer::train(training_texts(4000), 512);
  return tok;
}

}  // namespace

TEST(CodeTokenizer, ChunksCoverEveryByteOnce) {
  const std::string s = "def f(xs):\n    return [x + 1 for x in xs]  # ok\n\n  \t\xff\xfe end ";
  std::string joined;
  for (auto c : CodeTokenizer::split_chunks(s)) {
    EXPECT_FALSE(c.empty());
    joined += c;
  }
  EXPECT_EQ(joined, s);
  auto chunks = CodeTokenizer::split_chunks("\n    return x");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], "\n    ");
  EXPECT_EQ(chunks[1], "return");
  EXPECT_EQ(chunks[2], " x");
}

TEST(CodeTokenizer, RoundTripsRandomBytes) {
  const CodeTokenizer& tok = trained();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s(rng() % 300, '\0');
    for (char& c : s) {
      // half the trials: any byte; the others: code-like bytes, so merges fire
      c = trial % 2 ? static_cast<char>(rng() % 256) : " \n\tabcxyz_019():=+-*'\"[]{}#"[rng() % 27];
    }
    std::vector<int> ids = tok.encode(s);
    for (int id : ids) {
      ASSERT_GE(id, CodeTokenizer::kFirstByte);
      ASSERT_LT(id, tok.size());
    }
    ASSERT_EQ(tok.decode(ids), s) << "trial " << trial;
  }
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(CodeTokenizer, RoundTripsEveryTaskAndMergesShortenCode) {
  const CodeTokenizer& tok = trained();
  EXPECT_EQ(tok.size(), 512);
  size_t bytes = 0, tokens = 0;
  for (const char* split : {"train", "test"}) {
    for (const auto& t : spikefm::load_code_tasks(spikefm::code_tasks_file(split))) {
      for (const std::string* s : {&t.prompt, &t.canonical_solution, &t.test}) {
        std::vector<int> ids = tok.encode(*s);
        ASSERT_EQ(tok.decode(ids), *s) << t.task_id;
        bytes += s->size();
        tokens += ids.size();
      }
    }
  }
  // 251 merges learnt from prompts and solutions halve the tokens of the byte-level encoding (1 per
  // byte), tests with their unseen literals included (measured: 0.50 tokens per byte)
  EXPECT_LT(static_cast<double>(tokens) / bytes, 0.55) << tokens << " tokens for " << bytes << " bytes";
}

TEST(CodeTokenizer, TrainingIsDeterministicAndVocabularySizeIsHonoured) {
  auto texts = training_texts(300);
  CodeTokenizer a = CodeTokenizer::train(texts, 400), b = CodeTokenizer::train(texts, 400);
  EXPECT_EQ(a.merges(), b.merges());
  EXPECT_EQ(a.size(), 400);
  EXPECT_EQ(CodeTokenizer::train(texts, 261).size(), 261);  // bytes only
  EXPECT_THROW(CodeTokenizer::train(texts, 100), spikefm::Error);
  // the vocabulary cannot outgrow the pairs that occur at least twice
  EXPECT_LT(CodeTokenizer::train({"abab"}, 1000).size(), 270);
}

TEST(CodeTokenizer, MergesSurviveTheFlatFormAndCorruptMergesAreRefused) {
  const CodeTokenizer& tok = trained();
  CodeTokenizer back = CodeTokenizer::from_flat(tok.merges_flat(), "test");
  EXPECT_EQ(back.merges(), tok.merges());
  EXPECT_EQ(back.display_vocab(), tok.display_vocab());
  EXPECT_THROW(CodeTokenizer::from_flat({5, 6, 7}, "odd"), spikefm::Error);
  EXPECT_THROW(CodeTokenizer::from_flat({5, 261}, "forward reference"), spikefm::Error);
  EXPECT_THROW(CodeTokenizer::from_flat({0, 6}, "special"), spikefm::Error);
  EXPECT_THROW(CodeTokenizer::from_flat({5, 6, 5, 6}, "repeat"), spikefm::Error);
  EXPECT_THROW(tok.decode({tok.size()}), spikefm::Error);
}

TEST(CodeTokenizer, DisplayVocabularyEscapesNonPrintableBytes) {
  EXPECT_EQ(CodeTokenizer::escape_piece("a\\ \n\xff"), "a\\\\\\x20\\x0a\\xff");
  CodeTokenizer tok;
  auto v = tok.display_vocab();
  ASSERT_EQ(v.size(), 261u);
  EXPECT_EQ(v[0], "<pad>");
  EXPECT_EQ(v[CodeTokenizer::kFirstByte + 'a'], "a");
}
