#include "ann_ref/mlp_classifier.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#include "ann_ref/qcfs.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/log.h"
#include "common/progress.h"
#include "datasets/fashion_mnist.h"

namespace spikefm {

// ---------------------------------------------------------------------------------------------------
// Config

void MlpConfig::validate() const {
  auto rule = [](const std::string& field, const std::string& why) {
    throw Error("MLP config", field + " " + why);
  };
  if (input_size <= 0) rule("input_size", "must be > 0 (got " + std::to_string(input_size) + ")");
  if (classes < 2) rule("classes", "must be >= 2 (got " + std::to_string(classes) + ")");
  if (levels <= 0) rule("levels", "must be > 0 (got " + std::to_string(levels) + "); the QANN needs a quantizer");
  for (size_t i = 0; i < hidden.size(); ++i) {
    if (hidden[i] <= 0) rule("hidden[" + std::to_string(i) + "]", "must be > 0 (got " + std::to_string(hidden[i]) + ")");
  }
}

std::string MlpConfig::describe() const {
  std::string s = std::to_string(input_size);
  for (int h : hidden) s.append(1, '-').append(std::to_string(h));
  return s.append(1, '-').append(std::to_string(classes));
}

void MlpTrainOptions::validate() const {
  config.validate();
  if (out.empty()) throw Error("MLP training", "no output path", "pass --out FILE.h5");
  if (epochs < 1) throw Error("MLP training", "epochs must be >= 1 (got " + std::to_string(epochs) + ")");
  if (!(minutes > 0) || !std::isfinite(minutes)) {
    throw Error("MLP training", "minutes must be finite and > 0 (got " + std::to_string(minutes) + ")");
  }
  if (!(lr > 0) || !std::isfinite(lr)) throw Error("MLP training", "lr must be finite and > 0 (got " + std::to_string(lr) + ")");
  if (batch < 1) throw Error("MLP training", "batch must be >= 1 (got " + std::to_string(batch) + ")");
  if (limit < 0) throw Error("MLP training", "limit must be >= 0 (got " + std::to_string(limit) + ")");
}

namespace {

constexpr float kInputScale = kMlpInputScale;  // θ_in: x = n_pix · θ_in (as ann_ref/qann.h kPixelTheta)

std::string layer_name(size_t k) { return "fc" + std::to_string(k + 1); }  // k: 0-based layer index

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s.append(1, ',');
    s.append(std::to_string(v[i]));
  }
  return s;
}

// "128,64" -> {128, 64}; "" -> {} (no hidden layer). Throws on anything else.
std::vector<int> parse_ints(const std::string& text, const std::string& where) {
  std::vector<int> out;
  if (text.empty()) return out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v <= 0) {
      throw Error(where, "\"" + text + "\" is not a comma-separated list of positive integers",
                  "the file was not written by spikefm");
    }
    out.push_back(v);
  }
  return out;
}

void check_finite(const H5File& f, const std::string& p, const std::vector<float>& data) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) {
      throw Error(f.filename() + ":" + p, "element " + std::to_string(i) + " is " + std::to_string(data[i]),
                  "the weights are NaN/Inf; retrain with a lower learning rate");
    }
  }
}

void collect_datasets(const H5File& f, const std::string& group, std::vector<std::string>& out) {
  for (const auto& name : f.children(group)) {
    std::string p = group + "/" + name;
    if (f.is_group(p)) collect_datasets(f, p, out);
    else out.push_back(p);
  }
}

// ---------------------------------------------------------------------------------------------------
// The libtorch module (internal to this file).

// One affine layer, optionally followed by QCFS. Parameter names: weight (out, in), bias (out),
// act.lambda () — so named_parameters() of the classifier gives "fc1.weight", "fc1.act.lambda", ...
class MlpLayerImpl : public torch::nn::Module {
 public:
  MlpLayerImpl(int in, int out, int levels) {
    torch::nn::Linear init(in, out);  // PyTorch's default initialisation
    weight = register_parameter("weight", init->weight.detach().clone());  // (out, in)
    bias = register_parameter("bias", init->bias.detach().clone());        // (out)
    if (levels > 0) act = register_module("act", Qcfs(levels, 4.0f));
  }
  // x: (B, in) -> (B, out)
  torch::Tensor affine(const torch::Tensor& x) { return torch::addmm(bias, x, weight.t()); }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor z = affine(x);
    return act ? act(z) : z;
  }

  torch::Tensor weight, bias;
  Qcfs act{nullptr};
};
TORCH_MODULE(MlpLayer);

class MlpClassifierImpl : public torch::nn::Module {
 public:
  explicit MlpClassifierImpl(const MlpConfig& cfg) : cfg_(cfg) {
    int in = cfg.input_size;
    for (size_t k = 0; k <= cfg.hidden.size(); ++k) {
      const bool hidden = k < cfg.hidden.size();
      const int out = hidden ? cfg.hidden[k] : cfg.classes;
      layers.push_back(register_module(layer_name(k), MlpLayer(in, out, hidden ? cfg.levels : 0)));
      in = out;
    }
  }
  // x: (B, input_size) = n_pix · θ_in  ->  logits (B, classes)
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = l(x);
    return x;
  }
  const MlpConfig& config() const { return cfg_; }

  std::vector<MlpLayer> layers;

 private:
  MlpConfig cfg_;
};
TORCH_MODULE(MlpClassifier);

// pixels (n, input_size) uint8 counts -> x (n, input_size) = n_pix · θ_in, float32
torch::Tensor input_of(const torch::Tensor& pixels_u8) { return pixels_u8.to(torch::kFloat32).mul_(kInputScale); }

// QANN classes of the images (n, input_size) uint8, in order; logits (n, classes) when asked for.
std::vector<int> predict(MlpClassifier& model, const torch::Tensor& pixels_u8, std::vector<float>* logits = nullptr) {
  torch::NoGradGuard ng;
  model->eval();
  std::vector<int> out;
  out.reserve(static_cast<size_t>(pixels_u8.size(0)));
  if (logits) logits->clear();
  const int64_t n = pixels_u8.size(0), chunk = 1000;
  for (int64_t s = 0; s < n; s += chunk) {
    torch::Tensor y = model->forward(input_of(pixels_u8.slice(0, s, std::min(n, s + chunk)))).contiguous();  // (b, classes)
    torch::Tensor cls = y.argmax(1).contiguous();
    const int64_t* p = cls.data_ptr<int64_t>();
    out.insert(out.end(), p, p + cls.numel());
    if (logits) logits->insert(logits->end(), y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
  }
  return out;
}

// A loaded image set as tensors: pixels (n, rows*cols) uint8, labels (n) int64; the first `limit`
// images (0 = all). The tensors own their memory.
struct ImageTensors {
  torch::Tensor pixels, labels;
  int64_t n = 0;
};

ImageTensors load_split(const std::filesystem::path& dir, const std::string& split, int64_t limit,
                        int input_size) {
  if (split != "train" && split != "test") {
    throw Error("split " + split, "unknown split", "use train or test");
  }
  ImageSet set = load_fashion_mnist(dir, split);
  const int64_t px = set.rows * set.cols;
  if (px != input_size) {
    throw Error("Fashion-MNIST " + split, "images have " + std::to_string(px) + " pixels, the model expects " +
                                              std::to_string(input_size));
  }
  ImageTensors t;
  t.n = limit > 0 ? std::min(limit, set.n) : set.n;
  t.pixels = torch::from_blob(set.pixels.data(), {set.n, px}, torch::kUInt8).slice(0, 0, t.n).clone();
  t.labels = torch::from_blob(set.labels.data(), {set.n}, torch::kUInt8).slice(0, 0, t.n).to(torch::kInt64);
  return t;
}

double accuracy_of(const std::vector<int>& pred, const torch::Tensor& labels, int64_t* correct) {
  const int64_t* y = labels.data_ptr<int64_t>();
  int64_t c = 0;
  for (size_t i = 0; i < pred.size(); ++i) c += pred[i] == y[i];
  if (correct) *correct = c;
  return pred.empty() ? 0.0 : static_cast<double>(c) / static_cast<double>(pred.size());
}

void save_mlp_checkpoint(const std::filesystem::path& path, MlpClassifier& model, const MlpTrainMeta& meta) {
  const MlpConfig& cfg = model->config();
  AtomicFile out(path);
  {
    H5File f = H5File::create(out.temp_path());
    f.set_attr("/", "format_version", kMlpCheckpointFormatVersion);
    f.set_attr("/", "kind", std::string(kMlpCheckpointKind));
    f.set_attr("/", "producer", std::string("spikefm 0.1.0"));
    f.create_group("/config");
    f.set_attr("/config", "input_size", static_cast<int64_t>(cfg.input_size));
    f.set_attr("/config", "classes", static_cast<int64_t>(cfg.classes));
    f.set_attr("/config", "levels", static_cast<int64_t>(cfg.levels));
    f.set_attr("/config", "hidden_sizes", join_ints(cfg.hidden));
    f.set_attr("/config", "input_scale", static_cast<double>(kInputScale));
    for (const auto& item : model->named_parameters()) {
      torch::Tensor t = item.value().detach().to(torch::kFloat32).contiguous();
      std::string p = "/params/" + item.key();
      std::replace(p.begin(), p.end(), '.', '/');
      f.write(p, t.data_ptr<float>(), Shape(t.sizes().begin(), t.sizes().end()));
    }
    f.create_group("/train");
    f.set_attr("/train", "seed", meta.seed);
    f.set_attr("/train", "epochs", meta.epochs);
    f.set_attr("/train", "steps", meta.steps);
    f.set_attr("/train", "samples", meta.samples);
    f.set_attr("/train", "seconds", meta.seconds);
    f.set_attr("/train", "test_accuracy", meta.test_accuracy);
    f.close();
  }
  out.commit();
}

MlpClassifier model_from(const MlpCheckpoint& ck) {
  MlpClassifier model(ck.config);
  torch::NoGradGuard ng;
  for (size_t k = 0; k < ck.layers.size(); ++k) {
    const MlpLayerWeights& w = ck.layers[k];
    MlpLayer& l = model->layers[k];
    l->weight.copy_(torch::from_blob(const_cast<float*>(w.weight.data()), {w.out, w.in}, torch::kFloat32));
    l->bias.copy_(torch::from_blob(const_cast<float*>(w.bias.data()), {w.out}, torch::kFloat32));
    if (w.has_act) l->act->lambda.fill_(w.lambda);
  }
  model->eval();
  return model;
}

double mean(const std::deque<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Checkpoint loading (torch-free data out)

MlpCheckpoint load_mlp_checkpoint(const std::filesystem::path& path) {
  const std::string ctx = "loading MLP checkpoint " + path.string();
  try {
    H5File f = H5File::open(path);
    if (!f.has_attr("/", "kind") || f.attr_string("/", "kind") != kMlpCheckpointKind ||
        !f.has_attr("/", "format_version")) {
      throw Error(f.filename() + ":/", std::string("not a spikefm MLP checkpoint (missing kind = \"") +
                                           kMlpCheckpointKind + "\")",
                  "pass a file written by train_mlp_classifier");
    }
    const int64_t version = f.attr_int("/", "format_version");
    if (version != kMlpCheckpointFormatVersion) {
      throw Error(f.filename() + ":/ format_version",
                  "is " + std::to_string(version) + ", this spikefm reads " + std::to_string(kMlpCheckpointFormatVersion),
                  "re-train the classifier with this version of spikefm");
    }
    MlpCheckpoint ck;
    {
      const std::string where = f.filename() + ":/config";
      if (!f.is_group("/config")) throw Error(where, "missing group", "the checkpoint is incomplete");
      auto int_attr = [&](const char* name) {
        const int64_t v = f.attr_int("/config", name);
        if (v < 0 || v > (int64_t{1} << 30)) throw Error(where + " " + name, "out of range (" + std::to_string(v) + ")");
        return static_cast<int>(v);
      };
      ck.config.input_size = int_attr("input_size");
      ck.config.classes = int_attr("classes");
      ck.config.levels = int_attr("levels");
      ck.config.hidden = parse_ints(f.attr_string("/config", "hidden_sizes"), where + " hidden_sizes");
      const double scale = f.attr_double("/config", "input_scale");
      if (scale != static_cast<double>(kInputScale)) {
        throw Error(where + " input_scale", "is " + std::to_string(scale) + ", this spikefm uses 1/255");
      }
      try {
        ck.config.validate();
      } catch (const Error& e) {
        throw e.with_context(where);
      }
    }
    std::set<std::string> expected;
    int64_t in = ck.config.input_size;
    for (size_t k = 0; k <= ck.config.hidden.size(); ++k) {
      MlpLayerWeights w;
      w.name = layer_name(k);
      w.has_act = k < ck.config.hidden.size();
      w.in = in;
      w.out = w.has_act ? ck.config.hidden[k] : ck.config.classes;
      const std::string base = "/params/" + w.name;
      auto read = [&](const std::string& p, const Shape& shape) {
        expected.insert(p);
        if (!f.is_dataset(p)) throw Error(f.filename() + ":" + p, "missing tensor", "the checkpoint is incomplete");
        std::vector<float> data = f.read_exact<float>(p, shape);
        check_finite(f, p, data);
        return data;
      };
      w.weight = read(base + "/weight", {w.out, w.in});
      w.bias = read(base + "/bias", {w.out});
      if (w.has_act) {
        const std::string p = base + "/act/lambda";
        w.lambda = read(p, {})[0];
        if (!(w.lambda > 0)) {
          throw Error(f.filename() + ":" + p, "lambda must be > 0 (got " + std::to_string(w.lambda) + ")",
                      "the clip of a QCFS activation is positive; retrain");
        }
      }
      in = w.out;
      ck.layers.push_back(std::move(w));
    }
    std::vector<std::string> stored;
    if (f.is_group("/params")) collect_datasets(f, "/params", stored);
    for (const auto& p : stored) {
      if (!expected.count(p)) {
        throw Error(f.filename() + ":" + p, "unknown tensor for a " + ck.config.describe() + " MLP",
                    "the file was written by a different model definition");
      }
    }
    if (f.is_group("/train")) {
      ck.meta.seed = f.attr_int("/train", "seed");
      ck.meta.epochs = f.attr_int("/train", "epochs");
      ck.meta.steps = f.attr_int("/train", "steps");
      ck.meta.samples = f.attr_int("/train", "samples");
      ck.meta.seconds = f.attr_double("/train", "seconds");
      ck.meta.test_accuracy = f.attr_double("/train", "test_accuracy");
    }
    return ck;
  } catch (const Error& e) {
    throw e.with_context(ctx);
  }
}

// ---------------------------------------------------------------------------------------------------
// Training

MlpTrainReport train_mlp_classifier(const MlpTrainOptions& o) {
  o.validate();
  if (o.threads > 0) torch::set_num_threads(o.threads);
  torch::manual_seed(o.seed);
  const std::filesystem::path dir = o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir;
  ImageTensors train = load_split(dir, "train", o.limit, o.config.input_size);

  MlpClassifier model(o.config);
  MlpTrainReport rep;
  for (const auto& p : model->parameters()) rep.parameters += p.numel();

  // Threshold balancing, layer by layer: λ_k = 99.9th percentile of |z_k| on the first batch, with
  // the layers below already quantized by their calibrated λ.
  {
    torch::NoGradGuard ng;
    torch::Tensor x0 = input_of(train.pixels.slice(0, 0, std::min<int64_t>(train.n, 1024)));
    for (auto& layer : model->layers) {
      if (!layer->act) continue;
      layer->act->start_calibration();
      model->forward(x0);
      layer->act->finish_calibration();
    }
  }

  const int64_t steps_per_epoch = (train.n + o.batch - 1) / o.batch;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const double budget_s = o.minutes * 60.0;
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(o.lr));
  std::optional<Progress> progress;
  if (o.progress) {
    progress.emplace("training MLP " + o.config.describe(), total_steps, "step");
    progress->set_time_budget(budget_s);
  }
  std::deque<double> first, last;
  model->train();
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < o.epochs && !rep.stopped_by_time; ++epoch) {
    torch::Tensor perm = torch::randperm(train.n, torch::kInt64);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (elapsed >= budget_s) {
        rep.stopped_by_time = true;
        break;
      }
      // LR: cosine from lr to 0 over the run (steps or time budget, whichever runs out first).
      const double frac = std::min(1.0, std::max(static_cast<double>(rep.steps) / static_cast<double>(total_steps),
                                                 elapsed / budget_s));
      const double lr = o.lr * 0.5 * (1.0 + std::cos(M_PI * frac));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);

      torch::Tensor idx = perm.slice(0, s * o.batch, std::min(train.n, (s + 1) * o.batch));
      torch::Tensor x = input_of(train.pixels.index_select(0, idx));  // (B, 784)
      torch::Tensor y = train.labels.index_select(0, idx);             // (B)
      torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      const double lv = loss.item<double>();
      if (!std::isfinite(lv)) {
        throw Error("MLP training", "loss is " + std::to_string(lv) + " at step " + std::to_string(rep.steps),
                    "lower the learning rate");
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
      {
        // λ must stay positive for θ = λ/L to be a threshold.
        torch::NoGradGuard ng;
        for (auto& layer : model->layers) {
          if (layer->act) layer->act->lambda.clamp_min_(1e-3f);
        }
      }
      ++rep.steps;
      rep.samples += idx.size(0);
      if (first.size() < 20) first.push_back(lv);
      last.push_back(lv);
      if (last.size() > 20) last.pop_front();
      if (progress) {
        std::ostringstream extra;
        extra.precision(4);
        extra << "loss " << mean(last);
        progress->update(rep.steps, extra.str());
      }
    }
    if (!rep.stopped_by_time) ++rep.epochs_done;
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) progress->finish();
  rep.first_loss = mean(first);
  rep.last_loss = mean(last);
  if (rep.stopped_by_time) log::info("stopped by the time budget after " + std::to_string(rep.steps) + " steps");

  model->eval();
  if (o.test_limit >= 0) {
    ImageTensors test = load_split(dir, "test", o.test_limit, o.config.input_size);
    rep.test_accuracy = accuracy_of(predict(model, test.pixels), test.labels, nullptr);
    rep.test_n = test.n;
  }
  MlpTrainMeta meta;
  meta.seed = static_cast<int64_t>(o.seed);
  meta.epochs = rep.epochs_done;
  meta.steps = rep.steps;
  meta.samples = rep.samples;
  meta.seconds = rep.seconds;
  meta.test_accuracy = rep.test_accuracy;
  save_mlp_checkpoint(o.out, model, meta);
  return rep;
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

MlpEvalReport eval_mlp_classifier(const std::filesystem::path& checkpoint, const std::string& split, int64_t limit,
                                  const std::filesystem::path& data_dir) {
  if (limit < 0) throw Error("MLP evaluation", "limit must be >= 0 (got " + std::to_string(limit) + ")");
  MlpCheckpoint ck = load_mlp_checkpoint(checkpoint);
  MlpClassifier model = model_from(ck);
  const std::filesystem::path dir = data_dir.empty() ? default_fashion_mnist_dir() : data_dir;
  ImageTensors data = load_split(dir, split, limit, ck.config.input_size);
  MlpEvalReport rep;
  rep.split = split;
  const auto t0 = std::chrono::steady_clock::now();
  rep.predictions = predict(model, data.pixels, &rep.logits);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.n = data.n;
  rep.accuracy = accuracy_of(rep.predictions, data.labels, &rep.correct);
  return rep;
}

}  // namespace spikefm
