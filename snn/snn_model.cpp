#include "snn/snn_model.h"

#include <cmath>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm::snn {

void SnnModel::validate() const {
  auto fail = [](const std::string& why) { throw Error("spiking model", why, "re-run spikefm convert"); };
  if (image_size < 1 || patch < 1 || patch > image_size || stride < 1 || (image_size - patch) % stride != 0) {
    fail("inconsistent image geometry");
  }
  encoder.validate();
  decoder.validate();
  const int P = num_patches();
  const int px = encoder.find("pixels"), pos = encoder.find("enc_pos"), x0 = decoder.find("x0");
  if (px < 0 || pos < 0 || x0 < 0) fail("graphs lack their input nodes (pixels, enc_pos, x0)");
  if (encoder.nodes[px].cols != patch * patch) fail("pixel input width is not patch²");
  const int ce = encoder.nodes[pos].cols;
  if (enc_pos.size() != static_cast<size_t>(P) * ce) fail("enc_pos is not (P, Ce)");
  if (dec_width != decoder.nodes[x0].cols || encoder.nodes[encoder.output].cols != dec_width) fail("decoder width mismatch");
  if (vocab.size() < 5 || tok_embed.size() != vocab.size() * dec_width) fail("tok_embed is not (V, Cd)");
  if (dec_pos.size() != static_cast<size_t>(max_text_len) * dec_width) fail("dec_pos is not (max_text_len, Cd)");
  if (decoder.rows_cap < P + max_text_len || encoder.rows_cap < P) fail("graph rows_cap too small");
  if (decoder.nodes[decoder.output].cols != static_cast<int>(vocab.size())) fail("decoder output is not the vocabulary");
  for (const auto* t : {&enc_pos, &tok_embed, &dec_pos}) {
    for (float v : *t) {
      if (!std::isfinite(v)) fail("a driver table contains NaN/Inf");
    }
  }
}

void SnnModel::save(const std::filesystem::path& path) const {
  validate();
  AtomicFile out(path);
  {
    H5File f = H5File::create(out.temp_path());
    f.set_attr("/", "format_version", kSnnFormatVersion);
    f.set_attr("/", "kind", std::string("spikefm-snn"));
    f.set_attr("/", "producer", std::string("spikefm 0.1.0"));
    f.create_group("/model");
    f.set_attr("/model", "source_checkpoint", source_checkpoint);
    f.set_attr("/model", "neuron", neuron);
    f.set_attr("/model", "levels", int64_t{levels});
    f.set_attr("/model", "default_timesteps", int64_t{default_timesteps});
    f.set_attr("/model", "train_seed", train_seed);
    f.set_attr("/model", "image_size", int64_t{image_size});
    f.set_attr("/model", "patch", int64_t{patch});
    f.set_attr("/model", "stride", int64_t{stride});
    f.set_attr("/model", "dec_width", int64_t{dec_width});
    f.set_attr("/model", "max_text_len", int64_t{max_text_len});
    const int64_t P = num_patches(), V = static_cast<int64_t>(vocab.size());
    f.write("/model/enc_pos", enc_pos.data(), {P, static_cast<int64_t>(enc_pos.size()) / P});
    f.write("/model/tok_embed", tok_embed.data(), {V, dec_width});
    f.write("/model/dec_pos", dec_pos.data(), {max_text_len, dec_width});
    f.write_strings("/tokenizer/vocab", vocab, {V});
    encoder.write(f, "/graphs/encoder");
    decoder.write(f, "/graphs/decoder");
    f.close();
  }
  out.commit();
}

SnnModel SnnModel::load(const std::filesystem::path& path) {
  try {
    H5File f = H5File::open(path);
    if (!f.has_attr("/", "kind") || f.attr_string("/", "kind") != "spikefm-snn") {
      throw Error(f.filename() + ":/", "not a spikefm spiking model (missing kind = \"spikefm-snn\")",
                  "pass a file written by `spikefm convert`");
    }
    const int64_t version = f.attr_int("/", "format_version");
    if (version != kSnnFormatVersion) {
      throw Error(f.filename() + ":/ format_version", "is " + std::to_string(version) + ", this spikefm reads " +
                                                          std::to_string(kSnnFormatVersion),
                  "re-convert the checkpoint with this spikefm");
    }
    SnnModel m;
    auto geti = [&](const char* a) {
      int64_t v = f.attr_int("/model", a);
      if (v < 0 || v > (1 << 20)) throw Error(f.filename() + ":/model attribute " + a, "out of range: " + std::to_string(v));
      return static_cast<int>(v);
    };
    m.source_checkpoint = f.attr_string("/model", "source_checkpoint");
    m.neuron = f.attr_string("/model", "neuron");
    m.levels = geti("levels");
    m.default_timesteps = geti("default_timesteps");
    m.train_seed = f.attr_int("/model", "train_seed");
    m.image_size = geti("image_size");
    m.patch = geti("patch");
    m.stride = geti("stride");
    m.dec_width = geti("dec_width");
    m.max_text_len = geti("max_text_len");
    m.vocab = f.read_strings("/tokenizer/vocab");
    m.encoder = SpikingGraph::read(f, "/graphs/encoder");
    m.decoder = SpikingGraph::read(f, "/graphs/decoder");
    const int pos = m.encoder.find("enc_pos");
    if (pos < 0 || m.patch < 1 || m.stride < 1 || m.patch > m.image_size) {
      throw Error(f.filename() + ":/model", "inconsistent image geometry or missing enc_pos node");
    }
    const int64_t P = m.num_patches(), V = static_cast<int64_t>(m.vocab.size());
    m.enc_pos = f.read_exact<float>("/model/enc_pos", {P, m.encoder.nodes[pos].cols});
    m.tok_embed = f.read_exact<float>("/model/tok_embed", {V, m.dec_width});
    m.dec_pos = f.read_exact<float>("/model/dec_pos", {m.max_text_len, m.dec_width});
    m.validate();
    return m;
  } catch (const Error& e) {
    throw e.with_context("loading spiking model " + path.string());
  }
}

std::vector<float> patch_counts(const SnnModel& m, const float* image) {
  const int n = (m.image_size - m.patch) / m.stride + 1, pd = m.patch * m.patch;
  std::vector<float> out(static_cast<size_t>(n) * n * pd);
  for (int pr = 0; pr < n; ++pr) {
    for (int pc = 0; pc < n; ++pc) {
      float* dst = out.data() + static_cast<size_t>(pr * n + pc) * pd;
      for (int i = 0; i < m.patch; ++i) {
        for (int j = 0; j < m.patch; ++j) {
          const float px = image[(pr * m.stride + i) * m.image_size + pc * m.stride + j];
          dst[i * m.patch + j] = std::nearbyint(px * 255.0f);  // half to even, as torch::round
        }
      }
    }
  }
  return out;
}

}  // namespace spikefm::snn
