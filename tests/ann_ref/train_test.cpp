#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <set>
#include <tuple>

#include "ann_ref/checkpoint.h"
#include "ann_ref/trainer.h"
#include "ann_ref/vqa_batch.h"
#include "datasets/fashion_mnist.h"
#include "tests/test_tmp.h"

using namespace spikefm;

TEST(Training, SmokeRunOnAFewHundredImagesLowersTheLossAndWritesACheckpoint) {
  if (!std::filesystem::exists(default_fashion_mnist_dir())) GTEST_SKIP() << "Fashion-MNIST not installed";
  test::TempDir dir;
  TrainOptions o;
  o.out = dir / "smoke.h5";
  o.limit_images = 320;  // x 4 questions = 1280 samples per epoch
  o.batch_images = 16;
  o.epochs = 4;          // 80 steps
  o.minutes = 5;
  o.val_images = 50;
  o.progress = false;
  TrainReport r = train_fashion_vqa(o);
  EXPECT_EQ(r.steps, 80);
  EXPECT_FALSE(r.stopped_by_time);
  // From chance over the vocabulary (ln V ~ 3.3) to well below: the model learns the answer format.
  EXPECT_LT(r.last_loss, 0.6 * r.first_loss) << r.first_loss << " -> " << r.last_loss;
  EXPECT_GE(r.val_accuracy, 0.0);
  Checkpoint ck = load_checkpoint(o.out);
  EXPECT_EQ(ck.meta.steps, 80);
  EXPECT_EQ(ck.model->parameter_count(), r.parameters);
}

namespace {

// The reference transform, built from libtorch ops: mirror (flip the last axis), then shift by
// (dy, dx) with zero fill = pad by m on every side and cut the window starting at (m - dy, m - dx).
torch::Tensor shifted(const torch::Tensor& img, int64_t dy, int64_t dx, bool mirror, int64_t m) {
  torch::Tensor x = mirror ? img.flip({1}) : img;
  torch::Tensor padded = torch::constant_pad_nd(x, {m, m, m, m}, 0.0);
  const int64_t H = img.size(0), W = img.size(1);
  return padded.slice(0, m - dy, m - dy + H).slice(1, m - dx, m - dx + W);
}

}  // namespace

TEST(Augmentation, EveryImageIsTheReferenceShiftAndMirrorOfItsInputAndAllOffsetsOccur) {
  torch::manual_seed(7);
  const int m = 2;
  torch::Tensor in = torch::rand({300, 9, 11});  // non-square, so a transposition would show
  torch::Tensor out = in.clone();
  std::mt19937_64 rng(3);
  augment_images(out, rng, m, /*flip=*/true);
  std::set<std::tuple<int, int, bool>> seen;
  for (int64_t b = 0; b < in.size(0); ++b) {
    int matches = 0;
    for (int dy = -m; dy <= m; ++dy) {
      for (int dx = -m; dx <= m; ++dx) {
        for (bool mirror : {false, true}) {
          if (torch::equal(out[b], shifted(in[b], dy, dx, mirror, m))) {
            ++matches;
            seen.insert({dy, dx, mirror});
          }
        }
      }
    }
    EXPECT_EQ(matches, 1) << "image " << b;  // random pixels: exactly one transform fits
  }
  EXPECT_EQ(seen.size(), 50u);  // 5 x 5 offsets x {plain, mirrored}, 300 draws
}

TEST(Augmentation, OffLeavesTheBatchUntouchedAndMirrorOnlyIsAPureFlip) {
  torch::Tensor in = torch::rand({40, 6, 6});
  torch::Tensor out = in.clone();
  std::mt19937_64 rng(1);
  augment_images(out, rng, 0, false);
  EXPECT_TRUE(torch::equal(out, in));
  augment_images(out, rng, 0, true);
  int flipped = 0;
  for (int64_t b = 0; b < in.size(0); ++b) {
    const bool same = torch::equal(out[b], in[b]), mirrored = torch::equal(out[b], in[b].flip({1}));
    EXPECT_TRUE(same || mirrored) << "image " << b;
    flipped += mirrored;
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 35);
}
