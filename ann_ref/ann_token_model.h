// The ANN reference MFM behind decoding::TokenModel: one sequence at a time, KV cache, rollback.
// Torch-free header (pimpl), so decoders and the CLI do not compile against libtorch.
#pragma once

#include <filesystem>
#include <memory>

#include "datasets/tokenizer.h"
#include "decoding/token_model.h"

namespace spikefm {

class AnnTokenModel : public decoding::TokenModel {
 public:
  explicit AnnTokenModel(const std::filesystem::path& checkpoint);
  ~AnnTokenModel() override;

  int vocab_size() const override;
  int image_size() const override;
  std::vector<float> begin(std::span<const float> image, const std::vector<int>& prompt) override;
  std::vector<float> append(int token) override;
  void rollback(int n) override;
  int text_length() const override;

  const WordTokenizer& tokenizer() const;
  uint64_t train_seed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikefm
