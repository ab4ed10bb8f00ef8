#include "datasets/fashion_vqa.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <random>

#include "common/error.h"

namespace spikefm {

namespace {

int type_index(QuestionType type, const std::string& what) {
  const int t = static_cast<int>(type);
  if (t < 0 || t >= kQuestionTypes) {
    throw Error(what, "question type " + std::to_string(t) + " is not one of the " +
                          std::to_string(kQuestionTypes) + " Fashion-VQA types");
  }
  return t;
}

// Lower-case, whitespace runs -> one space, ends trimmed, one trailing '?' dropped.
std::string normalise_question(std::string_view q) {
  std::string out;
  bool pending_space = false;
  for (char c : q) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (!out.empty() && out.back() == '?') out.pop_back();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Uniform in [0, n) from the fully specified mt19937_64 output (std::uniform_int_distribution and
// std::shuffle differ between standard libraries; this does not). Rejection keeps it unbiased.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

// SplitMix64 finaliser (Steele, Lea & Flood 2014): a well-mixed 64-bit hash.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int train_paraphrase(int64_t image, QuestionType type, uint64_t seed) {
  const uint64_t key = static_cast<uint64_t>(image) * kQuestionTypes + static_cast<uint64_t>(type);
  const uint64_t h = mix64(mix64(seed) ^ (key * 0x9E3779B97F4A7C15ULL));
  return static_cast<int>(h % fashion_vqa_questions(type).size());
}

// The images of `src` at `indices` (ascending), copied into one contiguous set.
ImageSet gather(const ImageSet& src, const std::vector<int64_t>& indices) {
  ImageSet out;
  out.n = static_cast<int64_t>(indices.size());
  out.rows = src.rows;
  out.cols = src.cols;
  const size_t image_bytes = static_cast<size_t>(src.rows * src.cols);
  out.pixels.resize(indices.size() * image_bytes);  // (n, rows, cols)
  out.labels.resize(indices.size());                // (n,)
  for (size_t i = 0; i < indices.size(); ++i) {
    const auto j = static_cast<size_t>(indices[i]);
    std::copy_n(src.pixels.begin() + j * image_bytes, image_bytes, out.pixels.begin() + i * image_bytes);
    out.labels[i] = src.labels[j];
  }
  return out;
}

}  // namespace

const char* question_type_name(QuestionType type) {
  static constexpr const char* names[kQuestionTypes] = {"what", "footwear", "upper_body", "group"};
  return names[type_index(type, "naming a question type")];
}

std::string fashion_vqa_answer(int label, QuestionType type) {
  const std::string what = "answering a Fashion-VQA question";
  if (label < 0 || label >= kFashionClasses) {
    throw Error(what, "label " + std::to_string(label) + " is outside 0.." + std::to_string(kFashionClasses - 1));
  }
  // Per label, in Fashion-MNIST order: t-shirt trouser pullover dress coat sandal shirt sneaker bag ankle-boot
  static constexpr bool kFootwear[kFashionClasses] = {false, false, false, false, false,
                                                      true,  false, true,  false, true};
  static constexpr bool kUpperBody[kFashionClasses] = {true,  false, true,  false, true,
                                                       false, true,  false, false, false};
  static constexpr const char* kGroup[kFashionClasses] = {"tops",     "bottoms", "tops",     "dresses", "tops",
                                                          "footwear", "tops",    "footwear", "bags",    "footwear"};
  switch (static_cast<QuestionType>(type_index(type, what))) {
    case QuestionType::what: return fashion_class_names()[label];
    case QuestionType::footwear: return kFootwear[label] ? "yes" : "no";
    case QuestionType::upper_body: return kUpperBody[label] ? "yes" : "no";
    case QuestionType::group: return kGroup[label];
  }
  return {};  // unreachable: type_index rejected anything else
}

const std::vector<std::string>& fashion_vqa_questions(QuestionType type) {
  static const std::array<std::vector<std::string>, kQuestionTypes> questions = {{
      {"what is this?", "what item is shown?", "what is in the picture?"},
      {"is this footwear?", "is this something you wear on your feet?"},
      {"is it worn on the upper body?", "is this a top?"},
      {"which category group?", "which group does this belong to?"},
  }};
  return questions[type_index(type, "listing Fashion-VQA questions")];
}

std::optional<QuestionType> fashion_vqa_question_type(std::string_view question) {
  const std::string q = normalise_question(question);
  for (int t = 0; t < kQuestionTypes; ++t) {
    const auto type = static_cast<QuestionType>(t);
    for (const auto& p : fashion_vqa_questions(type)) {
      if (normalise_question(p) == q) return type;
    }
  }
  return std::nullopt;
}

FashionVqa::FashionVqa(const std::filesystem::path& data_dir, uint64_t seed, int64_t val_images) : seed_(seed) {
  ImageSet official_train = load_fashion_mnist(data_dir, "train");
  test_.images = load_fashion_mnist(data_dir, "test");
  test_.source.resize(static_cast<size_t>(test_.images.n));
  std::iota(test_.source.begin(), test_.source.end(), int64_t{0});

  const int64_t n = official_train.n;
  if (val_images < 0 || val_images >= n) {
    throw Error("building Fashion-VQA", "val_images must be in [0, " + std::to_string(n - 1) + "] (got " +
                                            std::to_string(val_images) + ")",
                "leave at least one training image");
  }
  // Fisher-Yates shuffle of 0..n-1; its first val_images entries are the validation set.
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(i + 1)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  val_.source.assign(perm.begin(), perm.begin() + val_images);
  train_.source.assign(perm.begin() + val_images, perm.end());
  std::sort(val_.source.begin(), val_.source.end());
  std::sort(train_.source.begin(), train_.source.end());
  val_.images = gather(official_train, val_.source);
  train_.images = gather(official_train, train_.source);
}

const FashionVqa::Split& FashionVqa::split(const std::string& name) const {
  if (name == "train") return train_;
  if (name == "val") return val_;
  if (name == "test") return test_;
  throw Error("selecting a Fashion-VQA split", "unknown split '" + name + "'", "use one of: train, val, test");
}

const ImageSet& FashionVqa::images(const std::string& name) const { return split(name).images; }

const std::vector<int64_t>& FashionVqa::source_indices(const std::string& name) const { return split(name).source; }

std::vector<VqaSample> FashionVqa::samples(const std::string& name) const {
  const ImageSet& set = images(name);
  const bool vary = name == "train";
  std::vector<VqaSample> out;
  out.reserve(static_cast<size_t>(set.n) * kQuestionTypes);
  for (int64_t i = 0; i < set.n; ++i) {
    for (int t = 0; t < kQuestionTypes; ++t) {
      const auto type = static_cast<QuestionType>(t);
      out.push_back({i, type, vary ? train_paraphrase(i, type, seed_) : 0});
    }
  }
  return out;
}

std::string FashionVqa::question_text(const VqaSample& s) const {
  const auto& qs = fashion_vqa_questions(s.type);
  if (s.paraphrase < 0 || s.paraphrase >= static_cast<int>(qs.size())) {
    throw Error("building a Fashion-VQA question", "paraphrase " + std::to_string(s.paraphrase) + " of type " +
                                                       question_type_name(s.type) + " is outside 0.." +
                                                       std::to_string(qs.size() - 1));
  }
  return qs[static_cast<size_t>(s.paraphrase)];
}

std::string FashionVqa::answer(const std::string& name, const VqaSample& s) const {
  const ImageSet& set = images(name);
  if (s.image < 0 || s.image >= set.n) {
    throw Error("answering a Fashion-VQA question", "image " + std::to_string(s.image) + " is outside the " +
                                                        name + " split (" + std::to_string(set.n) + " images)");
  }
  return fashion_vqa_answer(set.labels[static_cast<size_t>(s.image)], s.type);
}

WordTokenizer FashionVqa::make_tokenizer() {
  std::vector<std::string> texts;
  for (int t = 0; t < kQuestionTypes; ++t) {
    const auto type = static_cast<QuestionType>(t);
    for (const auto& q : fashion_vqa_questions(type)) texts.push_back(q);
    for (int label = 0; label < kFashionClasses; ++label) texts.push_back(fashion_vqa_answer(label, type));
  }
  return WordTokenizer::build(texts);
}

}  // namespace spikefm
