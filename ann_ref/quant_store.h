// The stored form of a compressed model's weights: the `/quant` group of a checkpoint
// (docs/formats.md, "Compressed checkpoints"). Torch-free.
//
// `spikefm compress` writes it beside the dequantized weights Ŵ = s_g · q in /params; every later step
// that keeps those weights carries it on unchanged (level allocation), or re-derives it from the weights
// it trained (a QANN fine-tuned from a compressed model: RTN at each layer's stored width and group),
// and the converter builds the spiking layers from the codes and scales, so the SNN and the hardware
// model see the widths the allocation chose.
#pragma once

#include <limits>
#include <map>
#include <string>

#include "ann_ref/weight_quant.h"

namespace spikefm {

class H5File;

struct QuantStore {
  std::string method = "rtn";  // gptq | rtn: the quantizer the codes came from
  double budget_bits = std::numeric_limits<double>::infinity();  // inf: no bits/weight budget
  std::string hw;              // chip whose SRAM capped the allocation ("" = none)
  int64_t qat_steps = 0;       // steps trained against the quantizer (compress --qat-epochs, train --qann)
  // By layer name as the model names its modules, e.g. "dec_blocks.0.mlp.fc1", "patch_embed".
  std::map<std::string, QuantizedMatrix> layers;

  bool empty() const { return layers.empty(); }
};

// "dec_blocks.0.mlp.fc1" → "/quant/dec_blocks/0/mlp/fc1/weight"
std::string quant_path(const std::string& layer);

// Writes /quant into an open (temporary) checkpoint file.
void write_quant_store(H5File& f, const QuantStore& s);

// Reads /quant; an empty store when the file has none. Checks the format (attributes present, bits
// 8/4/2, group in [1, cols], codes and scales of the shapes those imply, codes within ±(2^(bits−1) − 1),
// scales finite and ≥ 0) and names the path inside the file in every error. Whether each layer exists
// in the model with that shape and weights Ŵ is the checkpoint loader's check.
QuantStore read_quant_store(const H5File& f);

}  // namespace spikefm
