// The stored form of compressed layers (quant_store.h) applied to a live model. Internal to ann_ref/
// and convert/ (libtorch).
//
// A compressed checkpoint's /params hold Ŵ = s_g · q exactly. The loader checks that (a stale /quant,
// e.g. weights trained on after compression, is an error) and, in a QANN, makes those layers compute
// with Ŵ as it is rather than re-quantizing it to int8 per output channel. A QANN fine-tuned from a
// compressed model trains every stored layer fake-quantized by RTN at its stored width and group
// (straight-through gradient, as `compress --qat-epochs`) and is saved with the codes RTN gives its
// final weights, so the converter and the hardware model see the allocation's widths.
#pragma once

#include <functional>
#include <string>

#include "ann_ref/mfm.h"
#include "ann_ref/quant_store.h"

namespace spikefm {

// Ŵ (rows, cols) float32.
torch::Tensor dequantized_tensor(const QuantizedMatrix& q);
// A QLinear::weight_quant hook: W ↦ Ŵ of RTN at `spec`.
std::function<torch::Tensor(const torch::Tensor&)> rtn_weight_quant(const QuantSpec& spec);

// The linear layer called `name` in the model ("dec_blocks.0.mlp.fc1"); nullptr if none.
QLinearImpl* linear_named(Mfm& model, const std::string& name);

// Every stored layer exists with the stored shape and the model's weight equals Ŵ bit for bit;
// spikefm::Error naming `where` and the layer otherwise.
void check_quant_store(Mfm& model, const QuantStore& s, const std::string& where);
// Stored layers compute with their weight as it is (an identity weight_quant hook).
void use_stored_weights(Mfm& model, const QuantStore& s);
// Stored layers fake-quantized by RTN at their stored spec while training.
void fake_quantize_as_stored(Mfm& model, const QuantStore& s);
// RTN of every stored layer's current weight at its stored spec: the weight becomes Ŵ, the layer
// computes with it as it is, and the new store (method rtn, qat_steps + steps) is returned.
QuantStore requantize_as_stored(Mfm& model, const QuantStore& s, int64_t steps);

}  // namespace spikefm
