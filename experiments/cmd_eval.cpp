// spikefm eval: exact-match answer accuracy of a checkpoint on a task split.
#include <cstdio>
#include <memory>

#include "ann_ref/evaluator.h"
#include "ann_ref/mlp_classifier.h"
#include "common/json.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Action add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("eval", "Exact-match answer accuracy of a checkpoint");
  c->add_option("--checkpoint", o->checkpoint, "Model checkpoint (HDF5 from spikefm train)")->required()->check(CLI::ExistingFile);
  c->add_option("--task", o->task, "Task: fashion-vqa or med-vqa (MFM checkpoints; a model of the other task is scored zero-shot) or fashion-mnist (MLP classifiers)")
      ->check(CLI::IsMember({"fashion-vqa", "med-vqa", "fashion-mnist"}))
      ->capture_default_str();
  c->add_option("--split", o->split, "Split to score")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--limit", o->limit, "Score only the first N (image, question) samples (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--batch", o->batch_images, "Images per batch")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  c->add_flag("--json", *json, "Print one JSON object on stdout (progress stays on stderr)");
  return [o, json] {
    if (o->task == "fashion-mnist") {
      MlpEvalReport m = eval_mlp_classifier(o->checkpoint, o->split == "test" ? "test" : "train", o->limit, o->data_dir);
      if (*json) {
        std::printf("%s\n", Json{{"task", o->task}, {"split", m.split}, {"n", m.n}, {"accuracy", m.accuracy}, {"seconds", m.seconds}}.dump().c_str());
      } else {
        std::printf("fashion-mnist %s split: QANN accuracy %.2f%% (%lld/%lld) in %.1f s\n", m.split.c_str(), 100 * m.accuracy,
                    static_cast<long long>(m.correct), static_cast<long long>(m.n), m.seconds);
      }
      return 0;
    }
    EvalReport r = evaluate_vqa(*o);
    static const char* kTypes[] = {"what", "footwear", "upper_body", "group"};
    const bool fashion = r.task == "fashion-vqa";
    if (*json) {
      Json j;
      j["task"] = r.task;
      j["split"] = r.split;
      j["model"] = r.model;
      j["n"] = r.n;
      j["correct"] = r.correct;
      j["accuracy"] = r.accuracy;
      if (fashion) {
        Json by = Json::object();
        for (int q = 0; q < 4; ++q) by[kTypes[q]] = {{"n", r.n_by_type[q]}, {"accuracy", r.accuracy_by_type[q]}};
        j["accuracy_by_question"] = by;
      }
      j["parameters"] = r.parameters;
      j["seconds"] = r.seconds;
      Json types = Json::object();  // every task: one entry per question type
      for (size_t q = 0; q < r.type_names.size(); ++q) {
        types[r.type_names[q]] = {{"n", r.type_n[q]}, {"accuracy", r.type_accuracy[q]}};
      }
      j["accuracy_by_type"] = types;
      j["zero_shot"] = r.zero_shot;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s %s split, %s model%s: exact-match accuracy %.2f%% (%lld/%lld) in %.1f s\n", r.task.c_str(),
                  r.split.c_str(), r.model.c_str(), r.zero_shot ? " (zero-shot)" : "", 100.0 * r.accuracy,
                  static_cast<long long>(r.correct), static_cast<long long>(r.n), r.seconds);
      for (size_t q = 0; q < r.type_names.size(); ++q) {
        std::printf("  %-11s %6.2f%% of %lld\n", r.type_names[q].c_str(), 100.0 * r.type_accuracy[q],
                    static_cast<long long>(r.type_n[q]));
      }
    }
    return 0;
  };
}

}  // namespace spikefm::cli
