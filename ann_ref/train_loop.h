// The training loop shared by every VQA task and by fine-tuning: shuffled image batches, every image
// asked each question type that applies to it with a paraphrase drawn per row, teacher-forced
// cross-entropy on the answer tokens, AdamW with linear warm-up then cosine decay to 5% of the peak
// LR over the step or wall-clock budget (whichever runs out first), gradient-norm clipping at 1.
// Internal to ann_ref (libtorch).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "ann_ref/mfm.h"
#include "ann_ref/quant_store.h"
#include "ann_ref/trainer.h"
#include "ann_ref/vqa_task.h"

namespace spikefm {

// The loss record of a training loop: add() refuses a non-finite loss (naming the step, suggesting a
// lower --lr) and keeps the first 20 losses and a sliding window of the last 20, whose means a report
// gives as first/last loss; note() is the progress-line text.
class LossLog {
 public:
  void add(double loss, int64_t step);
  double first() const { return mean(first_); }
  double last() const { return mean(recent_); }
  std::string note(int epoch, double lr) const;  // "epoch E, loss L, lr R" (epoch from 0)

 private:
  static double mean(const std::deque<double>& v);
  std::deque<double> first_, recent_;
};

// Trains `model` on task.images("train") with `opt`, whose param groups' LR it sets every step.
// Uses o.epochs, o.minutes, o.batch_images, o.seed (shuffling, paraphrases), o.limit_images,
// o.progress. `clip` are the tensors whose gradient norm is clipped (the trainable ones). Fills every
// TrainReport field except parameters and val_accuracy.
TrainReport run_train_loop(Mfm& model, const VqaTask& task, const WordTokenizer& tok, const TrainOptions& o,
                           double peak_lr, torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& clip);

// AdamW over every parameter of `model` at `peak_lr`: weight decay on the 2-D weight matrices, none on
// LayerNorms, biases, positions and clip values.
std::unique_ptr<torch::optim::AdamW> make_adamw(Mfm& model, double peak_lr, double weight_decay);

// The LR of step `step`: linear warm-up over `warmup` steps, then cosine from peak_lr to 5% of it
// over the step or wall-clock budget, whichever runs out first.
double scheduled_lr(double peak_lr, int64_t step, int64_t warmup, int64_t total_steps, double elapsed_s,
                    double budget_s);

// The samples of the first `images` images of a split (for "validate on N images").
int64_t samples_of_first_images(const VqaTask& task, const std::string& split, int64_t images);

// The end of every VQA training run: scores the first o.val_images validation images (when > 0) into
// rep.val_accuracy, then writes the checkpoint to o.out with rep's counts as its /train metadata and,
// when `quant` holds layers, their stored codes (/quant, quant_store.h).
void validate_and_save(Mfm& model, const VqaTask& task, const WordTokenizer& tok, const TrainOptions& o,
                       TrainReport& rep, const QuantStore& quant = {});

}  // namespace spikefm
