// The spiking model behind decoding::TokenModel: every next-token query is one spiking inference.
//
// begin(image, prompt): the encoder graph runs on the image's pixel counts, its output (the image
// tokens) becomes the first P decoder rows, then the prompt rows are added and the decoder runs.
// append(token): one more decoder row, one more run. With exact coding (ST-BIF, burst) the decoder
// keeps its state between tokens — earlier rows have settled and, the attention being causal, never
// change again, so only the new token's spikes are simulated (the KV cache as spike counts); rate
// coding (if_rate) restarts from zero state and re-simulates every row for each token.
// A begin() with the same image as the previous one reuses the encoder output and the decoder's
// image rows (rollback to them), as a KV-cached ANN would.
#pragma once

#include <span>
#include <vector>

#include "decoding/token_model.h"
#include "snn/graph_engine.h"
#include "snn/snn_model.h"

namespace spikefm::snn {

class SnnTokenModel : public decoding::TokenModel {
 public:
  SnnTokenModel(const SnnModel& model, RunOptions run);

  int vocab_size() const override { return static_cast<int>(model_.vocab.size()); }
  int image_size() const override { return model_.image_size; }
  std::vector<float> begin(std::span<const float> image, const std::vector<int>& prompt) override;
  std::vector<float> append(int token) override;
  void rollback(int n) override;
  int text_length() const override { return text_len_; }

  const GraphEngine& encoder() const { return enc_; }
  void set_trace(bool on) {
    enc_.set_trace(on);
    dec_.set_trace(on);
  }
  const GraphEngine& decoder() const { return dec_; }
  void reset_stats();
  // Timesteps and runs since reset_stats(), for latency reports.
  int64_t encoder_steps() const { return enc_steps_; }
  int64_t decoder_steps() const { return dec_steps_; }
  int64_t encoder_runs() const { return enc_runs_; }
  int64_t decoder_runs() const { return dec_runs_; }
  int64_t runs_unsettled() const { return unsettled_; }

 private:
  void set_text_row(int text_pos, int token);
  std::vector<float> run_decoder();

  const SnnModel& model_;
  RunOptions run_;
  GraphEngine enc_, dec_;
  int P_;
  int text_len_ = 0;
  std::vector<float> last_image_;
  int64_t enc_steps_ = 0, dec_steps_ = 0, enc_runs_ = 0, dec_runs_ = 0, unsettled_ = 0;
};

}  // namespace spikefm::snn
