// Fashion-VQA: the answer table against a table written out by hand here, question parsing, the
// tokenizer over the benchmark's texts, and the train/val/test splits on the real data.
#include "datasets/fashion_vqa.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;

const fs::path kDebianDir = "/usr/share/datasets/fashion-mnist";
constexpr QuestionType kTypes[] = {QuestionType::what, QuestionType::footwear, QuestionType::upper_body,
                                   QuestionType::group};

// Independent reference, one row per label: what, footwear, upper_body, group.
const std::vector<std::vector<std::string>> kExpected = {
    {"t-shirt", "no", "yes", "tops"},          // 0
    {"trouser", "no", "no", "bottoms"},        // 1
    {"pullover", "no", "yes", "tops"},         // 2
    {"dress", "no", "no", "dresses"},          // 3: a one-piece is not upper-body
    {"coat", "no", "yes", "tops"},             // 4
    {"sandal", "yes", "no", "footwear"},       // 5
    {"shirt", "no", "yes", "tops"},            // 6
    {"sneaker", "yes", "no", "footwear"},      // 7
    {"bag", "no", "no", "bags"},               // 8
    {"ankle boot", "yes", "no", "footwear"},   // 9
};

TEST(FashionVqaTable, AnswersMatchHandWrittenTable) {
  for (int label = 0; label < kFashionClasses; ++label) {
    for (int t = 0; t < kQuestionTypes; ++t) {
      EXPECT_EQ(fashion_vqa_answer(label, kTypes[t]), kExpected[label][t])
          << "label " << label << " type " << question_type_name(kTypes[t]);
    }
  }
}

TEST(FashionVqaTable, BadLabelOrTypeThrows) {
  EXPECT_THROW(fashion_vqa_answer(-1, QuestionType::what), Error);
  EXPECT_THROW(fashion_vqa_answer(10, QuestionType::group), Error);
  EXPECT_THROW(fashion_vqa_answer(0, static_cast<QuestionType>(4)), Error);
  EXPECT_THROW(fashion_vqa_questions(static_cast<QuestionType>(-1)), Error);
}

TEST(FashionVqaQuestions, ParaphrasesAsSpecified) {
  EXPECT_EQ(fashion_vqa_questions(QuestionType::what),
            (std::vector<std::string>{"what is this?", "what item is shown?", "what is in the picture?"}));
  EXPECT_EQ(fashion_vqa_questions(QuestionType::footwear),
            (std::vector<std::string>{"is this footwear?", "is this something you wear on your feet?"}));
  EXPECT_EQ(fashion_vqa_questions(QuestionType::upper_body),
            (std::vector<std::string>{"is it worn on the upper body?", "is this a top?"}));
  EXPECT_EQ(fashion_vqa_questions(QuestionType::group),
            (std::vector<std::string>{"which category group?", "which group does this belong to?"}));
}

TEST(FashionVqaQuestions, EveryParaphraseParsesToItsType) {
  for (QuestionType type : kTypes) {
    for (const auto& q : fashion_vqa_questions(type)) {
      EXPECT_EQ(fashion_vqa_question_type(q), type) << q;
      // Without '?', upper-cased, with stray whitespace.
      std::string loud = "  ";
      for (char c : q.substr(0, q.size() - 1)) {
        loud += (c == ' ') ? std::string(" \t ") : std::string(1, static_cast<char>(std::toupper(c)));
      }
      EXPECT_EQ(fashion_vqa_question_type(loud + "  "), type) << loud;
    }
  }
  EXPECT_EQ(fashion_vqa_question_type("Is this a top ?"), QuestionType::upper_body);
}

TEST(FashionVqaQuestions, UnrelatedQuestionsAreRejected) {
  EXPECT_EQ(fashion_vqa_question_type("what colour is this?"), std::nullopt);
  EXPECT_EQ(fashion_vqa_question_type("is this"), std::nullopt);
  EXPECT_EQ(fashion_vqa_question_type("what is this? really"), std::nullopt);
  EXPECT_EQ(fashion_vqa_question_type(""), std::nullopt);
  EXPECT_EQ(fashion_vqa_question_type("?"), std::nullopt);
}

TEST(FashionVqaTokenizer, EveryAnswerAndQuestionRoundTrips) {
  const WordTokenizer tok = FashionVqa::make_tokenizer();
  for (QuestionType type : kTypes) {
    for (int label = 0; label < kFashionClasses; ++label) {
      const std::string a = fashion_vqa_answer(label, type);
      const std::vector<int> ids = tok.encode(a);
      EXPECT_EQ(std::count(ids.begin(), ids.end(), WordTokenizer::kUnk), 0) << a;
      EXPECT_EQ(tok.decode(ids), a);
    }
    for (const auto& q : fashion_vqa_questions(type)) {
      const std::vector<int> ids = tok.encode(q);
      EXPECT_EQ(std::count(ids.begin(), ids.end(), WordTokenizer::kUnk), 0) << q;
      // decode puts '?' after a space; the parser still recognises the question.
      EXPECT_EQ(fashion_vqa_question_type(tok.decode(ids)), type) << tok.decode(ids);
    }
  }
  EXPECT_EQ(tok.encode("t-shirt").size(), 1u);
  EXPECT_EQ(tok.encode("ankle boot").size(), 2u);
}

TEST(FashionVqaTokenizer, VocabularyIsFixed) {
  const WordTokenizer a = FashionVqa::make_tokenizer();
  const WordTokenizer b = FashionVqa::make_tokenizer();
  EXPECT_EQ(a.vocab(), b.vocab());
  // Exactly the specials plus the distinct words of all questions and answers, nothing else.
  std::set<std::string> words;
  for (QuestionType type : kTypes) {
    for (const auto& q : fashion_vqa_questions(type)) {
      for (auto& w : WordTokenizer::split_words(q)) words.insert(w);
    }
    for (int label = 0; label < kFashionClasses; ++label) {
      for (auto& w : WordTokenizer::split_words(fashion_vqa_answer(label, type))) words.insert(w);
    }
  }
  EXPECT_EQ(a.size(), WordTokenizer::kSpecials + static_cast<int>(words.size()));
  EXPECT_TRUE(std::is_sorted(a.vocab().begin() + WordTokenizer::kSpecials, a.vocab().end()));
}

// ---- real data ----------------------------------------------------------------------------------------

class FashionVqaReal : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::is_directory(kDebianDir)) return;
    seed1_ = std::make_unique<FashionVqa>(kDebianDir, 1);
    seed1_again_ = std::make_unique<FashionVqa>(kDebianDir, 1);
    seed2_ = std::make_unique<FashionVqa>(kDebianDir, 2, 1000);
    official_train_ = std::make_unique<ImageSet>(load_fashion_mnist(kDebianDir, "train"));
  }
  static void TearDownTestSuite() {
    seed1_.reset();
    seed1_again_.reset();
    seed2_.reset();
    official_train_.reset();
  }
  void SetUp() override {
    if (!seed1_) GTEST_SKIP() << kDebianDir << " missing (package dataset-fashion-mnist)";
  }

  static std::unique_ptr<FashionVqa> seed1_, seed1_again_, seed2_;
  static std::unique_ptr<ImageSet> official_train_;
};
std::unique_ptr<FashionVqa> FashionVqaReal::seed1_, FashionVqaReal::seed1_again_, FashionVqaReal::seed2_;
std::unique_ptr<ImageSet> FashionVqaReal::official_train_;

TEST_F(FashionVqaReal, SplitSizes) {
  EXPECT_EQ(seed1_->images("train").n, 55000);
  EXPECT_EQ(seed1_->images("val").n, 5000);
  EXPECT_EQ(seed1_->images("test").n, 10000);
  EXPECT_EQ(seed2_->images("train").n, 59000);
  EXPECT_EQ(seed2_->images("val").n, 1000);
  for (const char* split : {"train", "val", "test"}) {
    const ImageSet& s = seed1_->images(split);
    EXPECT_EQ(s.rows, 28);
    EXPECT_EQ(s.cols, 28);
    EXPECT_EQ(static_cast<int64_t>(s.pixels.size()), s.n * 28 * 28) << split;
    EXPECT_EQ(static_cast<int64_t>(s.labels.size()), s.n) << split;
    EXPECT_EQ(static_cast<int64_t>(seed1_->source_indices(split).size()), s.n) << split;
  }
}

TEST_F(FashionVqaReal, SameSeedSameSplitDifferentSeedDifferentSplit) {
  EXPECT_EQ(seed1_->source_indices("val"), seed1_again_->source_indices("val"));
  EXPECT_EQ(seed1_->images("val").pixels, seed1_again_->images("val").pixels);
  EXPECT_EQ(seed1_->images("train").labels, seed1_again_->images("train").labels);
  const FashionVqa seed2_5000(kDebianDir, 2);
  EXPECT_NE(seed1_->source_indices("val"), seed2_5000.source_indices("val"));
  EXPECT_NE(seed1_->images("val").pixels, seed2_5000.images("val").pixels);
}

TEST_F(FashionVqaReal, TrainAndValPartitionTheOfficialTrainFile) {
  for (const FashionVqa* v : {seed1_.get(), seed2_.get()}) {
    const auto& train = v->source_indices("train");
    const auto& val = v->source_indices("val");
    EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
    EXPECT_TRUE(std::is_sorted(val.begin(), val.end()));
    std::vector<int64_t> both;
    std::set_intersection(train.begin(), train.end(), val.begin(), val.end(), std::back_inserter(both));
    EXPECT_TRUE(both.empty()) << both.size() << " images in both train and val";
    std::vector<int64_t> all;
    std::merge(train.begin(), train.end(), val.begin(), val.end(), std::back_inserter(all));
    ASSERT_EQ(all.size(), 60000u);
    for (int64_t i = 0; i < 60000; ++i) ASSERT_EQ(all[static_cast<size_t>(i)], i);
  }
}

TEST_F(FashionVqaReal, SplitImagesAreCopiesOfTheOfficialOnes) {
  for (const char* split : {"train", "val"}) {
    const ImageSet& s = seed1_->images(split);
    const auto& src = seed1_->source_indices(split);
    for (int64_t i = 0; i < s.n; i += 997) {  // a spread of images, first one included
      const auto j = static_cast<size_t>(src[static_cast<size_t>(i)]);
      EXPECT_EQ(s.labels[static_cast<size_t>(i)], official_train_->labels[j]);
      EXPECT_TRUE(std::equal(s.pixels.begin() + i * 784, s.pixels.begin() + (i + 1) * 784,
                             official_train_->pixels.begin() + static_cast<int64_t>(j) * 784))
          << split << " image " << i;
    }
  }
}

TEST_F(FashionVqaReal, ValSplitIsRoughlyStratifiedByChance) {
  // 5000 random images of a balanced set: each class 500 +- ~5 sigma (sigma ~ 21).
  std::array<int, kFashionClasses> counts{};
  for (uint8_t l : seed1_->images("val").labels) ++counts[l];
  for (int c : counts) EXPECT_NEAR(c, 500, 110);
}

TEST_F(FashionVqaReal, SamplesPairEveryImageWithEveryType) {
  for (const char* split : {"train", "val", "test"}) {
    const auto samples = seed1_->samples(split);
    const int64_t n = seed1_->images(split).n;
    ASSERT_EQ(static_cast<int64_t>(samples.size()), n * kQuestionTypes) << split;
    for (size_t k = 0; k < samples.size(); k += 1231) {
      EXPECT_EQ(samples[k].image, static_cast<int64_t>(k / kQuestionTypes));
      EXPECT_EQ(samples[k].type, kTypes[k % kQuestionTypes]);
    }
  }
}

TEST_F(FashionVqaReal, EvalSplitsAskTheCanonicalQuestion) {
  for (const char* split : {"val", "test"}) {
    for (const VqaSample& s : seed1_->samples(split)) ASSERT_EQ(s.paraphrase, 0) << split;
  }
}

TEST_F(FashionVqaReal, TrainParaphrasesSpreadEvenlyAndDependOnSeed) {
  const auto a = seed1_->samples("train");
  const auto a_again = seed1_again_->samples("train");
  std::map<std::pair<int, int>, int64_t> counts;  // (type, paraphrase) -> count
  for (const VqaSample& s : a) ++counts[{static_cast<int>(s.type), s.paraphrase}];
  const int64_t n = seed1_->images("train").n;
  for (QuestionType type : kTypes) {
    const int k = static_cast<int>(fashion_vqa_questions(type).size());
    for (int p = 0; p < k; ++p) {
      const double share = static_cast<double>(counts[{static_cast<int>(type), p}]) / static_cast<double>(n);
      EXPECT_NEAR(share, 1.0 / k, 0.02) << question_type_name(type) << " paraphrase " << p;
    }
  }
  ASSERT_EQ(a.size(), a_again.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i].paraphrase, a_again[i].paraphrase);
  // Another seed re-draws the paraphrases (about half of them change).
  const auto b = seed2_->samples("train");
  size_t differ = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) differ += a[i].paraphrase != b[i].paraphrase;
  EXPECT_GT(differ, a.size() / 4);
}

TEST_F(FashionVqaReal, QuestionAndAnswerFollowTheLabel) {
  const ImageSet& test = seed1_->images("test");
  const auto samples = seed1_->samples("test");
  for (size_t k = 0; k < samples.size(); k += 37) {
    const VqaSample& s = samples[k];
    const int label = test.labels[static_cast<size_t>(s.image)];
    EXPECT_EQ(seed1_->answer("test", s), kExpected[label][static_cast<int>(s.type)]);
    EXPECT_EQ(seed1_->question_text(s), fashion_vqa_questions(s.type)[0]);
  }
  // Test image 0 is an ankle boot (label 9).
  EXPECT_EQ(seed1_->answer("test", {0, QuestionType::what, 0}), "ankle boot");
  EXPECT_EQ(seed1_->answer("test", {0, QuestionType::group, 0}), "footwear");
  for (const VqaSample& s : seed1_->samples("train")) {
    const std::string q = seed1_->question_text(s);
    ASSERT_EQ(fashion_vqa_question_type(q), s.type) << q;
  }
}

TEST_F(FashionVqaReal, BadArgumentsThrow) {
  try {
    seed1_->images("validation");
    ADD_FAILURE() << "unknown split accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train, val, test"), std::string::npos) << e.what();
  }
  EXPECT_THROW(seed1_->samples("eval"), Error);
  EXPECT_THROW(seed1_->answer("test", {10000, QuestionType::what, 0}), Error);
  EXPECT_THROW(seed1_->answer("test", {-1, QuestionType::what, 0}), Error);
  EXPECT_THROW(seed1_->question_text({0, QuestionType::footwear, 2}), Error);
  EXPECT_THROW(FashionVqa(kDebianDir, 1, 60000), Error);
  EXPECT_THROW(FashionVqa(kDebianDir, 1, -1), Error);
}

TEST(FashionVqaMissingData, ConstructorNamesTheDirectory) {
  const fs::path dir = fs::temp_directory_path() / "spikefm_no_such_fashion_dir";
  try {
    FashionVqa v(dir, 1);
    ADD_FAILURE() << "missing data accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spikefm
