#include "snn/snn_token_model.h"

#include <algorithm>

#include "common/error.h"

namespace spikefm::snn {

SnnTokenModel::SnnTokenModel(const SnnModel& model, RunOptions run)
    : model_(model), run_(run), enc_(model.encoder), dec_(model.decoder), P_(model.num_patches()) {}

void SnnTokenModel::reset_stats() {
  enc_.reset_stats();
  dec_.reset_stats();
  enc_steps_ = dec_steps_ = enc_runs_ = dec_runs_ = unsettled_ = 0;
}

void SnnTokenModel::set_text_row(int text_pos, int token) {
  if (text_pos >= model_.max_text_len) {
    throw Error("spiking decoder", "text of " + std::to_string(text_pos + 1) + " tokens exceeds max_text_len " +
                                       std::to_string(model_.max_text_len));
  }
  if (token < 0 || token >= vocab_size()) throw Error("spiking decoder", "token id " + std::to_string(token) + " out of range");
  const int C = model_.dec_width;
  std::vector<float> row(C);
  const float* e = model_.tok_embed.data() + static_cast<size_t>(token) * C;
  const float* p = model_.dec_pos.data() + static_cast<size_t>(text_pos) * C;
  for (int c = 0; c < C; ++c) row[c] = e[c] + p[c];  // as the QANN: tok_embed[token] + dec_pos[pos]
  dec_.set_input(dec_.graph().find("x0"), P_ + text_pos, row.data());
}

std::vector<float> SnnTokenModel::run_decoder() {
  RunReport r = dec_.run(run_);
  dec_steps_ += r.steps;
  ++dec_runs_;
  unsettled_ += !r.settled;
  return dec_.output_row(dec_.rows() - 1);
}

std::vector<float> SnnTokenModel::begin(std::span<const float> image, const std::vector<int>& prompt) {
  const size_t npx = static_cast<size_t>(model_.image_size) * model_.image_size;
  if (image.size() != npx) {
    throw Error("spiking model begin()", "image has " + std::to_string(image.size()) + " pixels, expected " + std::to_string(npx));
  }
  if (prompt.empty()) throw Error("spiking model begin()", "empty prompt");
  // The same image again: its encoder output is still in the decoder's image rows (both codings; a
  // rate-coded decoder re-simulates them from their kept inputs on every run).
  const bool same_image = last_image_.size() == npx && std::equal(image.begin(), image.end(), last_image_.begin());
  if (same_image) {
    dec_.set_rows(P_);  // rollback to the image rows, settled by the previous sequence
  } else {
    // --- encoder: pixels → image tokens ---
    enc_.reset();
    enc_.set_rows(P_);
    const int px = enc_.graph().find("pixels"), pos = enc_.graph().find("enc_pos");
    const int ce = enc_.graph().nodes[pos].cols;
    std::vector<float> counts = patch_counts(model_, image.data());
    const int pd = model_.patch * model_.patch;
    for (int i = 0; i < P_; ++i) {
      enc_.set_input(px, i, counts.data() + static_cast<size_t>(i) * pd);
      enc_.set_input(pos, i, model_.enc_pos.data() + static_cast<size_t>(i) * ce);
    }
    RunReport r = enc_.run(run_);
    enc_steps_ += r.steps;
    ++enc_runs_;
    unsettled_ += !r.settled;
    // --- decoder image rows ---
    dec_.reset();
    dec_.set_rows(P_);
    const int x0 = dec_.graph().find("x0");
    for (int i = 0; i < P_; ++i) dec_.set_input(x0, i, enc_.output_row(i).data());
    last_image_.assign(image.begin(), image.end());
  }
  dec_.set_rows(P_ + static_cast<int>(prompt.size()));
  for (size_t t = 0; t < prompt.size(); ++t) set_text_row(static_cast<int>(t), prompt[t]);
  text_len_ = static_cast<int>(prompt.size());
  return run_decoder();
}

std::vector<float> SnnTokenModel::append(int token) {
  if (text_len_ == 0) throw Error("spiking model append()", "no sequence", "call begin() first");
  dec_.set_rows(P_ + text_len_ + 1);
  set_text_row(text_len_, token);
  ++text_len_;
  return run_decoder();
}

void SnnTokenModel::rollback(int n) {
  if (n < 0 || n > text_len_ - 1) {
    throw Error("spiking model rollback()", "cannot drop " + std::to_string(n) + " of " + std::to_string(text_len_) + " tokens");
  }
  text_len_ -= n;
  dec_.set_rows(P_ + text_len_);
}

}  // namespace spikefm::snn
