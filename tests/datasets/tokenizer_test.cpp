// WordTokenizer: the split rule, the fixed specials, vocabulary validation and deterministic build().
#include "datasets/tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"

namespace spikefm {
namespace {

using Words = std::vector<std::string>;

const Words kSpecials = {"<pad>", "<bos>", "<eos>", "<sep>", "<unk>"};

Words with_specials(const Words& words) {
  Words v = kSpecials;
  v.insert(v.end(), words.begin(), words.end());
  return v;
}

std::string ctor_error(const Words& vocab) {
  try {
    WordTokenizer t(vocab);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "WordTokenizer accepted an invalid vocabulary";
  return {};
}

TEST(WordTokenizer, SpecialIdsAreFixed) {
  const WordTokenizer t(with_specials({"a"}));
  EXPECT_EQ(t.id("<pad>"), WordTokenizer::kPad);
  EXPECT_EQ(t.id("<bos>"), WordTokenizer::kBos);
  EXPECT_EQ(t.id("<eos>"), WordTokenizer::kEos);
  EXPECT_EQ(t.id("<sep>"), WordTokenizer::kSep);
  EXPECT_EQ(t.id("<unk>"), WordTokenizer::kUnk);
  EXPECT_EQ(t.id("a"), 5);
  EXPECT_EQ(t.id("b"), -1);
  EXPECT_EQ(t.size(), 6);
}

TEST(WordTokenizer, SplitRule) {
  EXPECT_EQ(WordTokenizer::split_words("  What is\tTHIS?\n"), (Words{"what", "is", "this", "?"}));
  EXPECT_EQ(WordTokenizer::split_words("yes,no.stop!"), (Words{"yes", ",", "no", ".", "stop", "!"}));
  EXPECT_EQ(WordTokenizer::split_words("T-Shirt"), (Words{"t-shirt"}));  // hyphen stays inside
  EXPECT_EQ(WordTokenizer::split_words("ankle boot"), (Words{"ankle", "boot"}));
  EXPECT_EQ(WordTokenizer::split_words("??"), (Words{"?", "?"}));
  EXPECT_TRUE(WordTokenizer::split_words(" \t ").empty());
}

TEST(WordTokenizer, EncodeMapsUnknownWordsToUnk) {
  const WordTokenizer t(with_specials({"?", "is", "this", "what"}));
  EXPECT_EQ(t.encode("What is THIS?"), (std::vector<int>{8, 6, 7, 5}));
  EXPECT_EQ(t.encode("what is that"), (std::vector<int>{8, 6, WordTokenizer::kUnk}));
  EXPECT_TRUE(t.encode("").empty());
}

TEST(WordTokenizer, DecodeSkipsSpecialsAndStopsAtEos) {
  const WordTokenizer t(with_specials({"ankle", "boot", "no"}));
  using W = WordTokenizer;
  EXPECT_EQ(t.decode({W::kBos, 5, W::kPad, 6, W::kEos, 7}), "ankle boot");
  EXPECT_EQ(t.decode({W::kSep, 7, W::kUnk, 7}), "no no");
  EXPECT_EQ(t.decode({W::kEos, 5}), "");
  EXPECT_EQ(t.decode({}), "");
}

TEST(WordTokenizer, DecodeRejectsIdsOutsideVocab) {
  const WordTokenizer t(with_specials({"a"}));
  EXPECT_THROW(t.decode({5, 6}), Error);
  EXPECT_THROW(t.decode({-1}), Error);
}

TEST(WordTokenizer, ConstructorValidates) {
  EXPECT_NE(ctor_error({"<pad>", "<bos>"}).find("fewer than the 5 specials"), std::string::npos);
  EXPECT_NE(ctor_error({"<pad>", "<eos>", "<bos>", "<sep>", "<unk>"}).find("id 1 must be <bos>"), std::string::npos);
  EXPECT_NE(ctor_error(with_specials({"a", "b", "a"})).find("'a' appears twice (ids 5 and 7)"), std::string::npos);
  EXPECT_NE(ctor_error(with_specials({"<unk>"})).find("appears twice"), std::string::npos);
  EXPECT_NE(ctor_error(with_specials({""})).find("word 5 is empty"), std::string::npos);
  EXPECT_NE(ctor_error(with_specials({"ankle boot"})).find("contains whitespace"), std::string::npos);
  EXPECT_NE(ctor_error(with_specials({"tab\tword"})).find("contains whitespace"), std::string::npos);
}

TEST(WordTokenizer, BuildIsSortedAndIndependentOfTextOrder) {
  const WordTokenizer a = WordTokenizer::build({"is this a top?", "Ankle boot", "t-shirt"});
  const WordTokenizer b = WordTokenizer::build({"t-shirt", "ankle BOOT", "is this a top?", "t-shirt"});
  const Words expected = with_specials({"?", "a", "ankle", "boot", "is", "t-shirt", "this", "top"});
  EXPECT_EQ(a.vocab(), expected);
  EXPECT_EQ(b.vocab(), expected);
}

TEST(WordTokenizer, BuildDoesNotDuplicateSpecialsFoundInText) {
  const WordTokenizer t = WordTokenizer::build({"<eos> yes"});
  EXPECT_EQ(t.vocab(), with_specials({"yes"}));
}

TEST(WordTokenizer, RoundTripThroughBuiltVocab) {
  const std::vector<std::string> texts = {"t-shirt", "ankle boot", "which group does this belong to?"};
  const WordTokenizer t = WordTokenizer::build(texts);
  EXPECT_EQ(t.decode(t.encode("t-shirt")), "t-shirt");
  EXPECT_EQ(t.encode("t-shirt").size(), 1u);
  EXPECT_EQ(t.decode(t.encode("Ankle  Boot")), "ankle boot");
  EXPECT_EQ(t.decode(t.encode("which group does this belong to?")), "which group does this belong to ?");
}

}  // namespace
}  // namespace spikefm
