// spikefm generate: answer one question about one image, greedily, through the TokenModel interface.
#include <cstdio>
#include <memory>

#include "ann_ref/evaluator.h"
#include "experiments/cli.h"

namespace spikefm::cli {

Action add_generate(CLI::App& app) {
  struct Opts {
    std::filesystem::path checkpoint, data_dir;
    std::string task = "fashion-vqa", split = "test", question = "what is this?";
    int64_t index = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("generate", "Answer a question about one image of the task");
  c->add_option("--checkpoint", o->checkpoint, "Model checkpoint (HDF5 from spikefm train)")->required()->check(CLI::ExistingFile);
  c->add_option("--task", o->task, "Task")->check(CLI::IsMember({"fashion-vqa"}))->capture_default_str();
  c->add_option("--split", o->split, "Split the image comes from")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  c->add_option("--index", o->index, "Image index within the split")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--question", o->question, "Question, e.g. \"is this footwear?\"")->capture_default_str();
  c->add_option("--data-dir", o->data_dir, "Fashion-MNIST IDX files (default: $SPIKEFM_DATA_DIR or /usr/share/datasets/fashion-mnist)");
  return [o] {
    GenerateResult r = generate_fashion_vqa(o->checkpoint, o->data_dir, o->split, o->index, o->question);
    std::printf("%s\n", r.answer.c_str());
    if (!r.expected.empty()) {
      std::fprintf(stderr, "(%s image %lld; ground truth: %s)\n", o->split.c_str(), static_cast<long long>(o->index),
                   r.expected.c_str());
    }
    return 0;
  };
}

}  // namespace spikefm::cli
