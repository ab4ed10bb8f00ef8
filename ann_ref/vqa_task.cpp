#include "ann_ref/vqa_task.h"

#include <map>

#include "common/error.h"
#include "datasets/fashion_vqa.h"
#include "datasets/med_vqa.h"

namespace spikefm {

std::vector<TaskSample> VqaTask::samples(const std::string& split) const {
  std::vector<TaskSample> out;
  const int64_t n = images(split).n;
  for (int64_t i = 0; i < n; ++i) {
    for (int t : types_of(split, i)) out.push_back({i, t});
  }
  return out;
}

namespace {

class FashionTask : public VqaTask {
 public:
  explicit FashionTask(std::shared_ptr<const FashionVqa> data) : data_(std::move(data)) {
    for (int q = 0; q < kQuestionTypes; ++q) names_.push_back(question_type_name(static_cast<QuestionType>(q)));
  }
  std::string name() const override { return "fashion-vqa"; }
  const ImageSet& images(const std::string& split) const override { return data_->images(split); }
  std::vector<int> types_of(const std::string&, int64_t) const override { return {0, 1, 2, 3}; }
  const std::vector<std::string>& paraphrases(int type) const override {
    return fashion_vqa_questions(static_cast<QuestionType>(type));
  }
  std::string answer(const std::string& split, int64_t image, int type) const override {
    return fashion_vqa_answer(data_->images(split).labels[image], static_cast<QuestionType>(type));
  }
  WordTokenizer tokenizer() const override { return FashionVqa::make_tokenizer(); }
  const std::vector<std::string>& type_names() const override { return names_; }
  void adapt_config(MfmConfig& c) const override {
    // The presets are made for 28 x 28; a model of another geometry falls back to small's 7/7.
    if (c.image_size != 28) {
      c.image_size = 28;
      c.patch = 7;
      c.stride = 7;
    }
  }
  bool mirror_invariant() const override { return true; }
  uint64_t data_seed() const override { return data_->seed(); }

 private:
  std::shared_ptr<const FashionVqa> data_;
  std::vector<std::string> names_;
};

class MedTask : public VqaTask {
 public:
  explicit MedTask(const MedVqaOptions& o) : data_(o) {
    for (const char* split : {"train", "val", "test"}) {
      auto& per_image = types_[split];
      const auto& recs = data_.records(split);
      per_image.resize(recs.size());
      for (size_t i = 0; i < recs.size(); ++i) {
        for (int t = 0; t < kMedQuestionTypes; ++t) {
          if (MedVqa::applies(recs[i], t)) per_image[i].push_back(t);
        }
      }
    }
  }
  std::string name() const override { return "med-vqa"; }
  const ImageSet& images(const std::string& split) const override { return data_.images(split); }
  std::vector<int> types_of(const std::string& split, int64_t image) const override {
    data_.images(split);  // validates the split name
    return types_.at(split).at(static_cast<size_t>(image));
  }
  const std::vector<std::string>& paraphrases(int type) const override { return MedVqa::questions(type); }
  std::string answer(const std::string& split, int64_t image, int type) const override {
    return data_.answer_for(data_.records(split).at(static_cast<size_t>(image)), type);
  }
  WordTokenizer tokenizer() const override { return MedVqa::make_tokenizer(); }
  const std::vector<std::string>& type_names() const override { return MedVqa::type_names(); }
  void adapt_config(MfmConfig& c) const override {
    c.image_size = static_cast<int>(data_.options().image_size);
    c.patch = 8;
    // small: stride 8, 6 x 6 = 36 image tokens; large: stride 4, 11 x 11 = 121 overlapping tokens at
    // 48 px (see vqa_task.h). "custom" sizes take small's geometry.
    c.stride = c.size_name == "large" ? 4 : 8;
  }
  bool mirror_invariant() const override { return false; }
  uint64_t data_seed() const override { return data_.options().seed; }

 private:
  MedVqa data_;
  std::map<std::string, std::vector<std::vector<int>>> types_;
};

}  // namespace

std::unique_ptr<VqaTask> fashion_vqa_task(const FashionVqa& data) {
  return std::make_unique<FashionTask>(std::shared_ptr<const FashionVqa>(&data, [](const FashionVqa*) {}));
}

std::unique_ptr<VqaTask> fashion_vqa_task(const std::filesystem::path& data_dir, uint64_t seed) {
  return std::make_unique<FashionTask>(
      std::make_shared<const FashionVqa>(data_dir.empty() ? default_fashion_mnist_dir() : data_dir, seed));
}

std::unique_ptr<VqaTask> med_vqa_task(int64_t train_images, int64_t val_images, int64_t test_images) {
  MedVqaOptions o;
  if (train_images > 0) o.train_images = train_images;
  if (val_images > 0) o.val_images = val_images;
  if (test_images > 0) o.test_images = test_images;
  return std::make_unique<MedTask>(o);
}

std::unique_ptr<VqaTask> make_vqa_task(const std::string& name, const std::filesystem::path& data_dir, uint64_t seed) {
  if (name == "fashion-vqa") return fashion_vqa_task(data_dir, seed);
  if (name == "med-vqa") return med_vqa_task();
  throw Error("--task " + name, "unknown visual question answering task", "use fashion-vqa or med-vqa");
}

}  // namespace spikefm
