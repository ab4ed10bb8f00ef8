#include <gtest/gtest.h>

#include "ann_ref/checkpoint.h"
#include "ann_ref/trainer.h"
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
