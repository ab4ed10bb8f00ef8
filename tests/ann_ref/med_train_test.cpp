// Med-VQA through the shared training loop and scorer (vqa_task.h, train_loop.h, vqa_eval.h).
#include <gtest/gtest.h>

#include <set>

#include "ann_ref/checkpoint.h"
#include "ann_ref/evaluator.h"
#include "ann_ref/trainer.h"
#include "ann_ref/vqa_task.h"
#include "datasets/med_vqa.h"
#include "datasets/nifti.h"
#include "tests/test_tmp.h"

using namespace spikefm;

namespace {
// Med-VQA needs the head CT and the brain MR (scripts/setup-deps.sh installs both).
bool have_ct() {
  return std::filesystem::exists(default_inv3_path()) && std::filesystem::exists(default_nifti_mr_path());
}
}  // namespace

TEST(MedVqaTask, SamplesAndAnswersAreTheDatasetsOwn) {
  if (!have_ct()) GTEST_SKIP() << "Cranium.inv3 not installed";
  MedVqaOptions mo;
  mo.train_images = 40;
  mo.val_images = 10;
  mo.test_images = 30;
  MedVqa data(mo);
  auto task = med_vqa_task(40, 10, 30);
  EXPECT_EQ(task->num_types(), kMedQuestionTypes);
  for (const char* split : {"train", "test"}) {
    std::vector<MedVqaSample> want = data.samples(split);
    std::vector<TaskSample> got = task->samples(split);
    ASSERT_EQ(got.size(), want.size()) << split;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].image, want[i].image);
      ASSERT_EQ(got[i].type, want[i].type);
      EXPECT_EQ(task->answer(split, got[i].image, got[i].type), data.answer(split, want[i]));
    }
  }
  EXPECT_EQ(task->paraphrases(6)[0], MedVqa::questions(6)[0]);
  // small: 8 x 8 patches at stride 8 on 48 px, (48 - 8) / 8 + 1 = 6 per side; large at stride 4:
  // (48 - 8) / 4 + 1 = 11 per side.
  MfmConfig small = MfmConfig::preset("small");
  task->adapt_config(small);
  EXPECT_EQ(small.image_size, 48);
  EXPECT_EQ(small.num_patches(), 6 * 6);
  MfmConfig large = MfmConfig::preset("large");
  task->adapt_config(large);
  EXPECT_EQ(large.image_size, 48);
  EXPECT_EQ(large.patch, 8);
  EXPECT_EQ(large.num_patches(), 11 * 11);
}

TEST(Training, MedVqaSmokeRunOnAFewHundredQuestionsLowersTheLossAndEvaluatesPerType) {
  if (!have_ct()) GTEST_SKIP() << "Cranium.inv3 not installed";
  test::TempDir dir;
  TrainOptions o;
  o.task = "med-vqa";
  o.out = dir / "med.h5";
  o.limit_images = 64;  // x 3..10 questions = ~450 samples per epoch
  o.batch_images = 16;
  o.epochs = 12;        // 48 steps
  o.minutes = 5;
  o.val_images = 20;
  o.progress = false;
  TrainReport r = train_vqa(o);
  EXPECT_EQ(r.steps, 48);
  EXPECT_GT(r.samples, 48 * 16 * 3);  // every image is asked at least modality, plane and organ
  // From chance over the vocabulary (ln V ~ 4) to well below: the answer format and the constant
  // answer (organ) are learned first.
  EXPECT_LT(r.last_loss, 0.6 * r.first_loss) << r.first_loss << " -> " << r.last_loss;
  Checkpoint ck = load_checkpoint(o.out);
  EXPECT_EQ(ck.model->config().image_size, 48);
  EXPECT_EQ(ck.vocab, MedVqa::make_tokenizer().vocab());
  EXPECT_EQ(ck.meta.task, "med-vqa");

  EvalOptions e;
  e.checkpoint = o.out;
  e.task = "med-vqa";
  e.limit = 100;
  e.progress = false;
  EvalReport er = evaluate_vqa(e);
  EXPECT_FALSE(er.zero_shot);
  EXPECT_EQ(er.n, 100);
  ASSERT_EQ(er.type_names.size(), 10u);
  int64_t n = 0, correct = 0;
  for (size_t t = 0; t < er.type_names.size(); ++t) {
    n += er.type_n[t];
    correct += static_cast<int64_t>(er.type_accuracy[t] * er.type_n[t] + 0.5);
  }
  EXPECT_EQ(n, 100);
  EXPECT_EQ(correct, er.correct);
  // 'organ' is always "brain" and asked of every image (CT and MR): learned within 48 steps.
  // ('modality' is not constant: ct or mri.)
  EXPECT_GT(er.type_n[2], 0);
  EXPECT_GE(er.type_accuracy[2], 0.9);
}
