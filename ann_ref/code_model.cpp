#include "ann_ref/code_model.h"

#include <cmath>
#include <cstdio>
#include <random>

#include "ann_ref/checkpoint.h"
#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm {

const std::vector<std::string>& code_stop_sequences() {
  static const std::vector<std::string> stops = {"\ndef", "\nclass", "\nif __name__", "\nprint", "\n#"};
  return stops;
}

std::string cut_at_stop_sequence(const std::string& text, bool* stopped) {
  size_t cut = std::string::npos;
  for (const auto& s : code_stop_sequences()) cut = std::min(cut, text.find(s));
  if (stopped) *stopped = cut != std::string::npos;
  return cut == std::string::npos ? text : text.substr(0, cut);
}

std::string code_prompt_view(const std::string& prompt) {
  std::string out;
  size_t pos = 0;
  bool skip_next = false;  // the expected-result line after a ">>>" line
  while (pos < prompt.size()) {
    size_t end = prompt.find('\n', pos);
    end = end == std::string::npos ? prompt.size() : end + 1;
    const std::string_view line(prompt.data() + pos, end - pos);
    const size_t first = line.find_first_not_of(" \t");
    const bool example = first != std::string_view::npos && line.substr(first, 3) == ">>>";
    if (example) {
      skip_next = true;
    } else if (skip_next) {
      skip_next = false;
      if (first != std::string_view::npos && line.substr(first, 3) == "\"\"\"") out += line;  // docstring end
    } else {
      out += line;
    }
    pos = end;
  }
  return out;
}

std::vector<int> code_prompt_ids(const CodeTokenizer& tok, const std::string& prompt) {
  std::vector<int> ids{CodeTokenizer::kBos};
  auto body = tok.encode(code_prompt_view(prompt));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

void set_code_model_threads(int n) {
  if (n >= 1) torch::set_num_threads(n);
}

struct CodeModel::Impl {
  Mfm model{nullptr};
  CodeTokenizer tok;
  std::string size_name;
};

CodeModel::CodeModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodeModel::CodeModel(CodeModel&&) noexcept = default;
CodeModel& CodeModel::operator=(CodeModel&&) noexcept = default;
CodeModel::~CodeModel() = default;

CodeModel CodeModel::load(const std::filesystem::path& path) {
  Checkpoint ck = load_checkpoint(path);
  const std::string where = path.string();
  if (!ck.model->config().text_only) {
    throw Error(where, "is not a code model (its config has an image encoder)",
                "pass a checkpoint written by `spikefm train --task code`");
  }
  auto impl = std::make_unique<Impl>();
  {
    H5File f = H5File::open(path);
    if (!f.has_attr("/tokenizer", "type") || f.attr_string("/tokenizer", "type") != "byte-bpe") {
      throw Error(where + ":/tokenizer", "has no byte-level BPE (attribute type = \"byte-bpe\")",
                  "pass a checkpoint written by `spikefm train --task code`");
    }
    const int64_t m = f.attr_int("/tokenizer", "merges");
    if (m < 0 || m > 65536) throw Error(where + ":/tokenizer", "merges = " + std::to_string(m) + " is out of range");
    std::vector<int64_t> flat;
    if (m > 0) flat = f.read_exact<int64_t>("/tokenizer/bpe_merges", {m, 2});
    impl->tok = CodeTokenizer::from_flat(flat, where + ":/tokenizer/bpe_merges");
  }
  if (impl->tok.display_vocab() != ck.vocab) {
    throw Error(where + ":/tokenizer/vocab", "does not match the pieces of /tokenizer/bpe_merges",
                "the file is corrupt; retrain with `spikefm train --task code`");
  }
  impl->model = ck.model;
  impl->model->eval();
  impl->size_name = ck.model->config().size_name;
  return CodeModel(std::move(impl));
}

const CodeTokenizer& CodeModel::tokenizer() const { return impl_->tok; }
int64_t CodeModel::parameters() const { return impl_->model->parameter_count(); }
int CodeModel::max_text_len() const { return impl_->model->config().max_text_len; }

std::string CodeModel::describe() const {
  const auto& c = impl_->model->config();
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s code model: %.2f M parameters, %d x %d, V = %d, max_text_len %d",
                c.size_name.c_str(), parameters() / 1e6, c.dec_layers, c.dec_width, c.vocab_size, c.max_text_len);
  return buf;
}

std::vector<std::string> CodeModel::complete(const std::string& prompt, const CodeSampling& s) const {
  if (s.samples < 1) throw Error("sampling", "samples must be >= 1 (got " + std::to_string(s.samples) + ")");
  if (!(s.temperature >= 0) || !std::isfinite(s.temperature)) {
    throw Error("sampling", "temperature must be finite and >= 0");
  }
  Mfm& model = impl_->model;
  const CodeTokenizer& tok = impl_->tok;
  const int max_len = model->config().max_text_len, V = tok.size();
  std::vector<std::string> out(s.samples);
  std::vector<int> ids = code_prompt_ids(tok, prompt);
  if (static_cast<int>(ids.size()) >= max_len) return out;  // no room to generate: empty completions

  torch::NoGradGuard ng;
  std::mt19937_64 rng(s.seed);
  KVCache cache;
  torch::Tensor logits = model->decode({}, torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0), &cache)
                             .select(1, -1);  // (1, V)
  // n rows share the prompt's keys/values: (1, H, L, d) → (n, H, L, d)
  torch::Tensor rows = torch::zeros({s.samples}, torch::kInt64);
  for (auto& k : cache.k) k = k.index_select(0, rows);
  for (auto& v : cache.v) v = v.index_select(0, rows);
  logits = logits.index_select(0, rows);  // (n, V)
  std::vector<int> active(s.samples);
  for (int i = 0; i < s.samples; ++i) active[i] = i;
  std::vector<float> p(V);
  for (int step = 0; step < s.max_new_tokens && !active.empty(); ++step) {
    torch::Tensor lf = logits.to(torch::kFloat32).contiguous();  // (n_active, V)
    const float* lp = lf.data_ptr<float>();
    std::vector<int64_t> next;
    std::vector<int64_t> keep;  // positions (in active) of rows that continue
    std::vector<int> still;
    for (size_t r = 0; r < active.size(); ++r) {
      const float* row = lp + r * V;
      int pick = -1;
      if (s.temperature == 0) {
        for (int j = CodeTokenizer::kEos; j < V; ++j) {
          if (j != CodeTokenizer::kEos && j < CodeTokenizer::kSpecials) continue;
          if (pick < 0 || row[j] > row[pick]) pick = j;
        }
      } else {
        float mx = -INFINITY;
        for (int j = 0; j < V; ++j) {
          if (j < CodeTokenizer::kSpecials && j != CodeTokenizer::kEos) continue;
          mx = std::max(mx, row[j]);
        }
        double total = 0;
        for (int j = 0; j < V; ++j) {
          const bool masked = j < CodeTokenizer::kSpecials && j != CodeTokenizer::kEos;
          p[j] = masked ? 0.0f : static_cast<float>(std::exp((row[j] - mx) / s.temperature));
          total += p[j];
        }
        double u = std::uniform_real_distribution<double>(0.0, total)(rng);
        for (int j = 0; j < V; ++j) {
          u -= p[j];
          if (u <= 0 && p[j] > 0) {
            pick = j;
            break;
          }
        }
        if (pick < 0) pick = CodeTokenizer::kEos;  // rounding at the end of the distribution
      }
      const int i = active[r];
      if (pick == CodeTokenizer::kEos) continue;
      out[i] += tok.piece(pick);
      bool stopped = false;
      std::string cut = cut_at_stop_sequence(out[i], &stopped);
      if (stopped) {
        out[i] = cut;
        continue;
      }
      if (static_cast<int>(cache.len) + 1 >= max_len) continue;  // out of positions
      next.push_back(pick);
      keep.push_back(static_cast<int64_t>(r));
      still.push_back(i);
    }
    if (still.empty()) break;
    if (still.size() != active.size()) {
      torch::Tensor sel = torch::tensor(keep);
      for (auto& k : cache.k) k = k.index_select(0, sel);
      for (auto& v : cache.v) v = v.index_select(0, sel);
    }
    active = still;
    logits = model->decode({}, torch::tensor(next).unsqueeze(1), &cache).select(1, 0);  // (n_active, V)
  }
  return out;
}

}  // namespace spikefm
