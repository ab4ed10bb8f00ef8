// spikefm convert: QANN checkpoint → spiking model file (and NIR where the graph allows it).
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "common/error.h"
#include "common/h5_file.h"
#include "convert/mlp_to_nir.h"
#include "snn/nir_graph.h"
#include "convert/mfm_to_snn.h"
#include "experiments/cli.h"

namespace spikefm::cli {

namespace {
std::string neuron_id(std::string s) {
  for (char& c : s) {
    if (c == '-') c = '_';
  }
  return s;
}
}  // namespace

Action add_convert(CLI::App& app) {
  struct Opts {
    std::filesystem::path checkpoint, out, nir;
    std::string neuron = "st-bif";
    int timesteps = 32, burst = 4;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("convert", "Convert a QANN checkpoint into a spiking model (ST-BIF, burst or rate IF neurons)");
  c->add_option("--checkpoint", o->checkpoint, "QANN checkpoint (from spikefm train --qann)")->required()->check(CLI::ExistingFile);
  c->add_option("--neuron", o->neuron, "Neuron model: st-bif (exact), burst (exact, fewer steps), if-rate (rate-coded baseline)")
      ->check(CLI::IsMember({"st-bif", "burst", "if-rate"}))
      ->capture_default_str();
  c->add_option("--timesteps", o->timesteps, "Default timesteps T per inference stored in the file")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--burst", o->burst, "Max spikes per step of burst neurons")->check(CLI::Range(1, 127))->capture_default_str();
  c->add_option("--out", o->out, "Spiking model file to write (HDF5, atomic)");
  c->add_option("--nir", o->nir, "Export NIR: MLP classifiers (spikefm train --task fashion-mnist --model mlp); refused for "
                                 "transformers (NIR has no attention/LayerNorm primitives)");
  return [o] {
    if (o->out.empty() && o->nir.empty()) throw Error("spikefm convert", "nothing to write", "pass --out FILE and/or --nir FILE");
    std::string kind;
    {
      H5File f = H5File::open(o->checkpoint);
      kind = f.has_attr("/", "kind") ? f.attr_string("/", "kind") : "";
    }
    if (kind == "spikefm-mlp") {
      if (o->nir.empty()) throw Error("converting the MLP " + o->checkpoint.string(), "it converts to NIR only", "pass --nir FILE.nir");
      snn::NirGraph g = mlp_to_nir(o->checkpoint, o->timesteps);
      snn::write_nir(o->nir, g);
      std::printf("exported %s -> %s (NIR: Affine + IF, %zu nodes, for T = %d)\n", o->checkpoint.c_str(), o->nir.c_str(),
                  g.nodes.size(), o->timesteps);
      return 0;
    }

    ConvertOptions co;
    co.neuron = neuron_id(o->neuron);
    co.timesteps = o->timesteps;
    co.burst = o->burst;
    snn::SnnModel m = convert_checkpoint(o->checkpoint, co);
    if (!o->nir.empty()) {
      std::vector<std::string> bad;
      for (const auto* g : {&m.encoder, &m.decoder}) {
        for (const auto& n : g->nodes) {
          if (n.kind == snn::OpKind::layer_norm || n.kind == snn::OpKind::softmax || n.kind == snn::OpKind::qk_product ||
              n.kind == snn::OpKind::av_product) {
            bad.push_back(g->name + "/" + n.name + " (" + snn::op_kind_name(n.kind) + ")");
          }
        }
      }
      std::string list;
      for (size_t i = 0; i < bad.size() && i < 8; ++i) list += (i ? ", " : "") + bad[i];
      if (bad.size() > 8) list += ", ... (" + std::to_string(bad.size()) + " in all)";
      throw Error("exporting NIR", "these operators have no NIR primitive: " + list,
                  "NIR covers Affine/Linear, IF/LIF, Conv2d, SumPool2d, Flatten; drop --nir for this model");
    }
    if (o->out.empty()) throw Error("converting " + o->checkpoint.string(), "no --out given", "pass --out FILE.snn.h5");
    m.save(o->out);
    int64_t neurons = 0, synapses = 0;
    std::map<int, int64_t> by_bits;  // synapses per stored weight width
    for (const auto* g : {&m.encoder, &m.decoder}) {
      for (const auto& n : g->nodes) {
        if (n.kind == snn::OpKind::neuron && n.cols > 0) neurons += n.cols;
        if (n.kind == snn::OpKind::linear) {
          synapses += static_cast<int64_t>(n.in) * n.cols;
          by_bits[n.weight_bits] += static_cast<int64_t>(n.in) * n.cols;
        }
      }
    }
    std::string widths;
    for (auto it = by_bits.rbegin(); it != by_bits.rend(); ++it) {
      widths += (widths.empty() ? "" : ", ") + std::to_string(it->second) + " int" + std::to_string(it->first);
    }
    std::printf("converted %s -> %s: %s neurons, L = %d, T = %d; %zu + %zu operators (encoder + decoder), "
                "%lld neurons per token row, %lld synapses (%s)\n",
                o->checkpoint.c_str(), o->out.c_str(), o->neuron.c_str(), m.levels, m.default_timesteps, m.encoder.nodes.size(),
                m.decoder.nodes.size(), static_cast<long long>(neurons), static_cast<long long>(synapses), widths.c_str());
    return 0;
  };
}

}  // namespace spikefm::cli
