#include "ann_ref/model_config.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm {

MfmConfig MfmConfig::preset(const std::string& name) {
  MfmConfig c;
  if (name == "small") {
    return c;  // the defaults above
  }
  if (name == "large") {
    // A deeper, wider encoder over densely overlapping patches; a wider decoder. About 15x the
    // training cost of small per step. At stride 2 it is measurably better than small at equal
    // epochs over seeds (BENCHMARKS.md, Fashion); its 11 x 11 grid is Med-VQA large's grid too.
    c.size_name = "large";
    c.patch = 8;
    c.stride = 2;  // overlapping patches: 11 x 11 = 121 image tokens
    c.enc_width = 96;
    c.enc_layers = 4;
    c.enc_heads = 4;
    c.dec_width = 96;
    c.dec_layers = 2;
    c.dec_heads = 4;
    return c;
  }
  throw Error("model size '" + name + "'", "unknown", "use small or large");
}

void MfmConfig::validate() const {
  auto need = [](bool ok, const std::string& field, const std::string& rule, double got) {
    if (!ok) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", got);
      throw Error("model config", field + " must be " + rule + " (got " + buf + ")");
    }
  };
  need(image_size >= 1, "image_size", ">= 1", image_size);
  need(patch >= 1 && patch <= image_size, "patch", "in [1, image_size]", patch);
  need(stride >= 1 && stride <= patch, "stride", "in [1, patch]", stride);
  need((image_size - patch) % stride == 0, "stride", "such that (image_size - patch) is a multiple of it", stride);
  need(enc_width >= 1 && enc_layers >= 0 && enc_heads >= 1, "enc_width/enc_layers/enc_heads", "positive", enc_width);
  need(enc_width % enc_heads == 0, "enc_width", "a multiple of enc_heads", enc_width);
  need(dec_width >= 1 && dec_layers >= 1 && dec_heads >= 1, "dec_width/dec_layers/dec_heads", "positive", dec_width);
  need(dec_width % dec_heads == 0, "dec_width", "a multiple of dec_heads", dec_width);
  need(mlp_ratio >= 1, "mlp_ratio", ">= 1", mlp_ratio);
  auto per_block = [&](const std::vector<int>& v, const char* field, int layers, int lo, int hi) {
    if (v.empty()) return;
    if (static_cast<int>(v.size()) != layers) {
      throw Error("model config", std::string(field) + " must list one value per block (" + std::to_string(layers) +
                                      "), got " + std::to_string(v.size()));
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] < lo || v[i] > hi) {
        throw Error("model config", std::string(field) + "[" + std::to_string(i) + "] must be in [" + std::to_string(lo) +
                                        ", " + std::to_string(hi) + "] (got " + std::to_string(v[i]) + ")");
      }
    }
  };
  per_block(enc_block_heads, "enc_block_heads", enc_layers, 1, enc_heads);
  per_block(dec_block_heads, "dec_block_heads", dec_layers, 1, dec_heads);
  per_block(enc_block_mlp, "enc_block_mlp", enc_layers, 1, mlp_ratio * enc_width);
  per_block(dec_block_mlp, "dec_block_mlp", dec_layers, 1, mlp_ratio * dec_width);
  need(vocab_size >= 5, "vocab_size", ">= 5 (the special tokens)", vocab_size);
  need(max_text_len >= 3, "max_text_len", ">= 3", max_text_len);
  need(act_levels >= 0 && act_levels <= 255, "act_levels", "in [0, 255]", act_levels);
  need(weight_bits == 0 || weight_bits == 8, "weight_bits", "0 (float) or 8", weight_bits);
  need(!qann || act_levels >= 1, "act_levels", ">= 1 when qann is on", act_levels);
  for (const auto& [site, L] : site_levels) {
    if (site.empty() || site.find_first_of(",=") != std::string::npos) {
      throw Error("model config", "site_levels has an invalid quantizer name '" + site + "'");
    }
    if (L < 1 || L > 255) {
      throw Error("model config", "site_levels[" + site + "] must be in [1, 255] (got " + std::to_string(L) + ")");
    }
  }
  need(std::isfinite(act_init_lambda) && act_init_lambda > 0, "act_init_lambda", "finite and > 0", act_init_lambda);
}

int MfmConfig::max_levels() const {
  int m = act_levels;
  for (const auto& [site, L] : site_levels) m = std::max(m, L);
  return m;
}

int MfmConfig::block_heads(bool encoder, int block) const {
  const auto& v = encoder ? enc_block_heads : dec_block_heads;
  return v.empty() ? (encoder ? enc_heads : dec_heads) : v.at(block);
}

int MfmConfig::block_mlp(bool encoder, int block) const {
  const auto& v = encoder ? enc_block_mlp : dec_block_mlp;
  return v.empty() ? mlp_ratio * (encoder ? enc_width : dec_width) : v.at(block);
}

namespace {
const char* const kPerBlockFields[] = {"enc_block_heads", "dec_block_heads", "enc_block_mlp", "dec_block_mlp"};
}  // namespace

void MfmConfig::write(H5File& f, const std::string& g) const {
  f.create_group(g);
  f.set_attr(g, "size_name", size_name);
  f.set_attr(g, "image_size", int64_t{image_size});
  f.set_attr(g, "patch", int64_t{patch});
  f.set_attr(g, "stride", int64_t{stride});
  f.set_attr(g, "enc_width", int64_t{enc_width});
  f.set_attr(g, "enc_layers", int64_t{enc_layers});
  f.set_attr(g, "enc_heads", int64_t{enc_heads});
  f.set_attr(g, "dec_width", int64_t{dec_width});
  f.set_attr(g, "dec_layers", int64_t{dec_layers});
  f.set_attr(g, "dec_heads", int64_t{dec_heads});
  f.set_attr(g, "mlp_ratio", int64_t{mlp_ratio});
  f.set_attr(g, "vocab_size", int64_t{vocab_size});
  f.set_attr(g, "max_text_len", int64_t{max_text_len});
  f.set_attr(g, "act_levels", int64_t{act_levels});
  f.set_attr(g, "act_init_lambda", double{act_init_lambda});
  f.set_attr(g, "qann", int64_t{qann ? 1 : 0});
  f.set_attr(g, "weight_bits", int64_t{weight_bits});
  if (text_only) f.set_attr(g, "text_only", int64_t{1});  // absent = 0: older files read unchanged
  if (!site_levels.empty()) {
    std::string v;
    for (const auto& [site, L] : site_levels) v += (v.empty() ? "" : ",") + site + "=" + std::to_string(L);
    f.set_attr(g, "site_levels", v);
  }
  // Pruned sizes: int64 datasets beside the attributes, written only when set (unpruned files are
  // unchanged and older readers keep reading them).
  const std::vector<int>* lists[] = {&enc_block_heads, &dec_block_heads, &enc_block_mlp, &dec_block_mlp};
  for (int i = 0; i < 4; ++i) {
    if (lists[i]->empty()) continue;
    std::vector<int64_t> v(lists[i]->begin(), lists[i]->end());
    f.write(g + "/" + kPerBlockFields[i], v.data(), {static_cast<int64_t>(v.size())});
  }
}

MfmConfig MfmConfig::read(const H5File& f, const std::string& g) {
  MfmConfig c;
  auto geti = [&](const char* name) {
    int64_t v = f.attr_int(g, name);
    if (v < -1000000 || v > 1000000) {
      throw Error("reading " + f.filename() + ":" + g + " attribute " + name, "value " + std::to_string(v) + " is out of range");
    }
    return static_cast<int>(v);
  };
  c.size_name = f.attr_string(g, "size_name");
  c.image_size = geti("image_size");
  c.patch = geti("patch");
  c.stride = geti("stride");
  c.enc_width = geti("enc_width");
  c.enc_layers = geti("enc_layers");
  c.enc_heads = geti("enc_heads");
  c.dec_width = geti("dec_width");
  c.dec_layers = geti("dec_layers");
  c.dec_heads = geti("dec_heads");
  c.mlp_ratio = geti("mlp_ratio");
  c.vocab_size = geti("vocab_size");
  c.max_text_len = geti("max_text_len");
  c.act_levels = geti("act_levels");
  c.act_init_lambda = static_cast<float>(f.attr_double(g, "act_init_lambda"));
  c.qann = f.attr_int(g, "qann") != 0;
  c.weight_bits = geti("weight_bits");
  c.text_only = f.has_attr(g, "text_only") && f.attr_int(g, "text_only") != 0;
  if (f.has_attr(g, "site_levels")) {
    // "name=L,name=L"
    const std::string v = f.attr_string(g, "site_levels");
    for (size_t at = 0;;) {
      size_t end = v.find(',', at);
      if (end == std::string::npos) end = v.size();
      const std::string item = v.substr(at, end - at);
      const size_t eq = item.find('=');
      int L = -1;
      if (eq != std::string::npos && eq > 0 && eq + 1 < item.size() && item.size() - eq <= 4 &&
          item.find_first_not_of("0123456789", eq + 1) == std::string::npos) {
        L = std::stoi(item.substr(eq + 1));
      }
      if (L < 0 || !c.site_levels.emplace(item.substr(0, eq), L).second) {
        throw Error("reading " + f.filename() + ":" + g + " attribute site_levels",
                    "entry '" + item + "' is not a new name=levels pair");
      }
      if (end == v.size()) break;
      at = end + 1;
    }
  }
  std::vector<int>* lists[] = {&c.enc_block_heads, &c.dec_block_heads, &c.enc_block_mlp, &c.dec_block_mlp};
  const auto members = f.children(g);
  for (int i = 0; i < 4; ++i) {
    if (std::find(members.begin(), members.end(), kPerBlockFields[i]) == members.end()) continue;
    const int layers = i % 2 == 0 ? c.enc_layers : c.dec_layers;
    for (int64_t v : f.read_exact<int64_t>(g + "/" + kPerBlockFields[i], {layers})) {
      if (v < 0 || v > 1000000) {
        throw Error("reading " + f.filename() + ":" + g + "/" + kPerBlockFields[i], "value " + std::to_string(v) + " is out of range");
      }
      lists[i]->push_back(static_cast<int>(v));
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw e.with_context("reading " + f.filename() + ":" + g);
  }
  return c;
}

}  // namespace spikefm
