#include "ann_ref/checkpoint.h"

#include <cmath>
#include <set>

#include "ann_ref/quant_layers.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm {

std::string param_path(const std::string& torch_name) {
  std::string p = "/params/" + torch_name;
  for (char& ch : p) {
    if (ch == '.') ch = '/';
  }
  return p;
}

namespace {

Shape shape_of(const torch::Tensor& t) { return Shape(t.sizes().begin(), t.sizes().end()); }

void collect_datasets(const H5File& f, const std::string& group, std::vector<std::string>& out) {
  for (const auto& name : f.children(group)) {
    std::string p = group + "/" + name;
    if (f.is_group(p)) collect_datasets(f, p, out);
    else out.push_back(p);
  }
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, Mfm& model, const std::vector<std::string>& vocab,
                     const TrainMeta& meta, const std::function<void(H5File&)>& extra) {
  AtomicFile out(path);
  {
    H5File f = H5File::create(out.temp_path());
    f.set_attr("/", "format_version", kCheckpointFormatVersion);
    f.set_attr("/", "kind", std::string("spikefm-mfm"));
    f.set_attr("/", "producer", std::string("spikefm 0.1.0"));
    model->config().write(f, "/config");
    f.write_strings("/tokenizer/vocab", vocab, {static_cast<int64_t>(vocab.size())});
    for (const auto& item : model->named_parameters()) {
      torch::Tensor t = item.value().detach().to(torch::kFloat32).contiguous();
      f.write(param_path(item.key()), t.data_ptr<float>(), shape_of(t));
    }
    f.create_group("/train");
    f.set_attr("/train", "task", meta.task);
    f.set_attr("/train", "seed", meta.seed);
    f.set_attr("/train", "steps", meta.steps);
    f.set_attr("/train", "samples", meta.samples);
    f.set_attr("/train", "seconds", meta.seconds);
    f.set_attr("/train", "val_accuracy", meta.val_accuracy);
    if (extra) extra(f);
    f.close();
  }
  out.commit();
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  const std::string ctx = "loading checkpoint " + path.string();
  try {
    H5File f = H5File::open(path);
    if (!f.has_attr("/", "format_version") || !f.has_attr("/", "kind") ||
        f.attr_string("/", "kind") != "spikefm-mfm") {
      throw Error(f.filename() + ":/", "not a spikefm model checkpoint (missing kind = \"spikefm-mfm\")",
                  "pass a file written by `spikefm train`");
    }
    int64_t version = f.attr_int("/", "format_version");
    if (version != kCheckpointFormatVersion) {
      throw Error(f.filename() + ":/ format_version", "is " + std::to_string(version) + ", this spikefm reads " +
                                                          std::to_string(kCheckpointFormatVersion),
                  "re-train or convert the checkpoint with a matching spikefm version");
    }
    Checkpoint ck;
    MfmConfig cfg = MfmConfig::read(f, "/config");
    ck.vocab = f.read_strings("/tokenizer/vocab");
    if (static_cast<int>(ck.vocab.size()) != cfg.vocab_size) {
      throw Error(f.filename() + ":/tokenizer/vocab", std::to_string(ck.vocab.size()) +
                                                          " words, but config vocab_size is " +
                                                          std::to_string(cfg.vocab_size));
    }
    ck.model = Mfm(cfg);
    std::set<std::string> expected;
    torch::NoGradGuard no_grad;
    for (auto& item : ck.model->named_parameters()) {
      std::string p = param_path(item.key());
      expected.insert(p);
      torch::Tensor& dst = item.value();
      if (!f.is_dataset(p)) throw Error(f.filename() + ":" + p, "missing tensor", "the checkpoint is incomplete");
      std::vector<float> data = f.read_exact<float>(p, shape_of(dst));
      for (size_t i = 0; i < data.size(); ++i) {
        if (!std::isfinite(data[i])) {
          throw Error(f.filename() + ":" + p, "element " + std::to_string(i) + " is " + std::to_string(data[i]),
                      "the weights are NaN/Inf; retrain with a lower learning rate");
        }
      }
      dst.copy_(torch::from_blob(data.data(), dst.sizes(), torch::kFloat32));
    }
    std::vector<std::string> stored;
    if (f.is_group("/params")) collect_datasets(f, "/params", stored);
    for (const auto& p : stored) {
      if (!expected.count(p)) {
        throw Error(f.filename() + ":" + p, "unknown tensor for this model configuration",
                    "the file was written by a different model definition");
      }
    }
    if (f.is_group("/train")) {
      ck.meta.task = f.attr_string("/train", "task");
      ck.meta.seed = f.attr_int("/train", "seed");
      ck.meta.steps = f.attr_int("/train", "steps");
      ck.meta.samples = f.attr_int("/train", "samples");
      ck.meta.seconds = f.attr_double("/train", "seconds");
      ck.meta.val_accuracy = f.attr_double("/train", "val_accuracy");
    }
    // A compressed model's stored codes must still be its weights; a QANN then computes with them as
    // stored (quant_layers.h) instead of re-quantizing them to int8 per channel.
    const QuantStore quant = read_quant_store(f);
    if (!quant.empty()) {
      check_quant_store(ck.model, quant, f.filename());
      if (cfg.qann) use_stored_weights(ck.model, quant);
    }
    ck.model->eval();
    return ck;
  } catch (const Error& e) {
    throw e.with_context(ctx);
  }
}

}  // namespace spikefm
