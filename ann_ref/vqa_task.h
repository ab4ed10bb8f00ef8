// A closed-answer visual question answering task as the MFM trainer and scorer see it: images of a
// split, which question types each image is asked, the paraphrases of a type (canonical first), the
// ground-truth answer, the tokenizer and the type names. One training loop (train_loop.h) and one
// scorer (vqa_eval.h) serve every task behind this interface. Internal to ann_ref (torch-free, but
// not part of the CLI's facade).
//
//   task         images            types                                      data seed
//   fashion-vqa  28 x 28 Fashion   what, footwear, upper_body, group (all 4   the training seed (it
//                -MNIST            asked of every image)                      carves val from train)
//   med-vqa      48 x 48 head CT   modality .. density (10; 3-10 per image,   0: the benchmark is
//                and brain MR      see datasets/med_vqa.h)                    fixed, whatever the seed
//                slices
//
// Model geometry comes from the task (adapt_config): Fashion keeps the presets (28 px; small 7/7,
// 16 tokens; large 8/2, an 11 x 11 grid = 121 tokens). Med-VQA uses 48 px images cut into 8 x 8
// patches: `small` at stride 8 (a 6 x 6 grid, 36 image tokens), `large` at stride 4 (an 11 x 11
// grid of overlapping patches, 121 tokens). Measured (BENCHMARKS.md, Med-VQA): at 36 tokens
// `large`'s extra width and depth buy nothing over `small`; at 121 tokens it is 4-6 points better
// (the lesion questions), at ~3x a 36-token step's cost. A Fashion base fine-tunes onto either: the
// 8 x 8 patch filters carry over (small's 7 x 7 ones are resized), and the position table is
// interpolated to the new grid where the grids differ (finetune.h; large's 11 x 11 grid is the same
// on both tasks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ann_ref/model_config.h"
#include "datasets/fashion_mnist.h"  // ImageSet
#include "datasets/tokenizer.h"

namespace spikefm {

class FashionVqa;
class MedVqa;

struct TaskSample {
  int64_t image;  // index into images(split)
  int type;       // index into type_names()
};

class VqaTask {
 public:
  virtual ~VqaTask() = default;
  virtual std::string name() const = 0;
  // split = "train" | "val" | "test"
  virtual const ImageSet& images(const std::string& split) const = 0;
  // The question types asked of image `image` of `split`, ascending.
  virtual std::vector<int> types_of(const std::string& split, int64_t image) const = 0;
  // Every (image, type) of a split, image-major, types ascending.
  std::vector<TaskSample> samples(const std::string& split) const;
  // Paraphrases of a type, canonical first (val/test ask the canonical one; training draws one).
  virtual const std::vector<std::string>& paraphrases(int type) const = 0;
  virtual std::string answer(const std::string& split, int64_t image, int type) const = 0;
  virtual WordTokenizer tokenizer() const = 0;
  virtual const std::vector<std::string>& type_names() const = 0;
  int num_types() const { return static_cast<int>(type_names().size()); }
  // Sets the image geometry of a model config to the task's (see the table above).
  virtual void adapt_config(MfmConfig& c) const = 0;
  // Whether a left-right mirror image keeps every answer (Fashion: yes; Med-VQA: no, it asks which
  // side a finding is on). Training augmentation flips only such tasks.
  virtual bool mirror_invariant() const = 0;
  // The seed the data was built with (stored as the checkpoint's train seed only for Fashion).
  virtual uint64_t data_seed() const = 0;
};

// Fashion-VQA over an existing data set (borrowed: it must outlive the task) or loaded from data_dir
// (empty: default_fashion_mnist_dir()) with the given seed.
std::unique_ptr<VqaTask> fashion_vqa_task(const FashionVqa& data);
std::unique_ptr<VqaTask> fashion_vqa_task(const std::filesystem::path& data_dir, uint64_t seed);
// Med-VQA at its default options (seed 0, 48 px, 4000/500/1000 images, 20% MR; CT from
// $SPIKEFM_CT_PATH or the invesalius-examples path, MR from $SPIKEFM_MR_PATH or python3-nibabel's).
// A count > 0 builds only that many images of its split (tests).
std::unique_ptr<VqaTask> med_vqa_task(int64_t train_images = 0, int64_t val_images = 0, int64_t test_images = 0);

// "fashion-vqa" | "med-vqa"; `seed` only matters for Fashion. Unknown names throw, listing both.
std::unique_ptr<VqaTask> make_vqa_task(const std::string& name, const std::filesystem::path& data_dir, uint64_t seed);

}  // namespace spikefm
