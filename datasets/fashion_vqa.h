// Fashion-VQA: closed-form visual question answering on Fashion-MNIST images (fashion_mnist.h).
//
// Every image is asked each of four question types; the answer follows from the image's label alone:
//
//   label  class        what          footwear  upper_body  group
//   0      t-shirt      "t-shirt"     no        yes         tops
//   1      trouser      "trouser"     no        no          bottoms
//   2      pullover     "pullover"    no        yes         tops
//   3      dress        "dress"       no        no          dresses   (a one-piece, not an upper-body item)
//   4      coat         "coat"        no        yes         tops
//   5      sandal       "sandal"      yes       no          footwear
//   6      shirt        "shirt"       no        yes         tops
//   7      sneaker      "sneaker"     yes       no          footwear
//   8      bag          "bag"         no        no          bags
//   9      ankle boot   "ankle boot"  yes       no          footwear
//
// Questions (the first paraphrase of each type is canonical):
//   what        "what is this?", "what item is shown?", "what is in the picture?"
//   footwear    "is this footwear?", "is this something you wear on your feet?"
//   upper_body  "is it worn on the upper body?", "is this a top?"
//   group       "which category group?", "which group does this belong to?"
//
// Splits: the official 60,000 training images are divided by a seeded shuffle into "val"
// (val_images images) and "train" (the rest); "test" is the official 10,000 t10k images. Within a
// split images keep the order of the official file. Train questions use all paraphrases (a
// deterministic hash of image, type and seed picks one); val and test ask the canonical question,
// so scores are comparable across seeds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/fashion_mnist.h"
#include "datasets/tokenizer.h"

namespace spikefm {

enum class QuestionType { what, footwear, upper_body, group };
inline constexpr int kQuestionTypes = 4;

// "what", "footwear", "upper_body", "group" (for reports and configs).
const char* question_type_name(QuestionType type);

// The answer of the table above; a label outside 0..9 or an invalid type throws.
std::string fashion_vqa_answer(int label, QuestionType type);

// The paraphrases of a type, canonical first.
const std::vector<std::string>& fashion_vqa_questions(QuestionType type);

// The type whose paraphrase equals `question` after normalisation (ASCII lower-case, runs of
// whitespace collapsed to one space, ends trimmed, one trailing '?' optional), else std::nullopt.
std::optional<QuestionType> fashion_vqa_question_type(std::string_view question);

struct VqaSample {
  int64_t image;      // index into images(split)
  QuestionType type;
  int paraphrase;     // index into fashion_vqa_questions(type)
};

class FashionVqa {
 public:
  // Loads both official splits from data_dir and splits train/val with std::mt19937_64(seed).
  // 0 <= val_images < 60000 (the size of the official train file).
  FashionVqa(const std::filesystem::path& data_dir, uint64_t seed, int64_t val_images = 5000);

  // split = "train" | "val" | "test"; any other name throws an Error listing these.
  const ImageSet& images(const std::string& split) const;
  // source_indices(split)[i] = index of images(split) image i in its official file (the train file
  // for "train" and "val", t10k for "test"); ascending.
  const std::vector<int64_t>& source_indices(const std::string& split) const;

  // Every image of the split with every question type, image-major: (image 0, what), (image 0,
  // footwear), ..., (image n-1, group). Size = images(split).n * kQuestionTypes.
  std::vector<VqaSample> samples(const std::string& split) const;
  std::string question_text(const VqaSample& s) const;
  std::string answer(const std::string& split, const VqaSample& s) const;

  uint64_t seed() const { return seed_; }

  // Over every paraphrase and every answer; independent of data and seed.
  static WordTokenizer make_tokenizer();

 private:
  struct Split {
    ImageSet images;
    std::vector<int64_t> source;  // (n,) indices into the official file
  };
  const Split& split(const std::string& name) const;

  uint64_t seed_;
  Split train_, val_, test_;
};

}  // namespace spikefm
