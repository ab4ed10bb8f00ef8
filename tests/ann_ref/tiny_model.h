// A tiny MFM with random weights for fast tests.
#pragma once

#include "ann_ref/mfm.h"
#include "datasets/fashion_vqa.h"

namespace spikefm::test {

inline MfmConfig tiny_config(int levels = 8) {
  MfmConfig c = MfmConfig::preset("small");
  c.size_name = "custom";
  c.enc_width = 32;
  c.dec_width = 32;
  c.enc_heads = 2;
  c.dec_heads = 2;
  c.enc_layers = 1;
  c.dec_layers = 2;
  c.patch = 8;
  c.stride = 4;  // overlapping
  c.vocab_size = FashionVqa::make_tokenizer().size();
  c.act_levels = levels;
  c.act_init_lambda = 1.0f;  // small λ so the quantizer steps are exercised by random activations
  return c;
}

inline Mfm tiny_model(uint64_t seed, int levels = 8) {
  torch::manual_seed(seed);
  Mfm m(tiny_config(levels));
  m->eval();
  return m;
}

}  // namespace spikefm::test
