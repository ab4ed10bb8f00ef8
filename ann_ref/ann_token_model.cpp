#include "ann_ref/ann_token_model.h"

#include "ann_ref/checkpoint.h"
#include "common/error.h"

namespace spikefm {

struct AnnTokenModel::Impl {
  Checkpoint ck;
  WordTokenizer tok;
  KVCache cache;
  int text_len = 0;

  explicit Impl(const std::filesystem::path& p) : ck(load_checkpoint(p)), tok(ck.vocab) {}

  std::vector<float> run(const std::vector<int64_t>& ids) {
    torch::NoGradGuard no_grad;
    torch::Tensor t = torch::tensor(ids, torch::kInt64).unsqueeze(0);  // (1, t)
    torch::Tensor logits = ck.model->decode({}, t, &cache).select(1, t.size(1) - 1).squeeze(0).contiguous();
    text_len += static_cast<int>(ids.size());
    return std::vector<float>(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  }
};

AnnTokenModel::AnnTokenModel(const std::filesystem::path& checkpoint) : impl_(std::make_unique<Impl>(checkpoint)) {}
AnnTokenModel::~AnnTokenModel() = default;

int AnnTokenModel::vocab_size() const { return impl_->ck.model->config().vocab_size; }
int AnnTokenModel::image_size() const { return impl_->ck.model->config().image_size; }
const WordTokenizer& AnnTokenModel::tokenizer() const { return impl_->tok; }
uint64_t AnnTokenModel::train_seed() const { return static_cast<uint64_t>(impl_->ck.meta.seed); }
int AnnTokenModel::text_length() const { return impl_->text_len; }

std::vector<float> AnnTokenModel::begin(std::span<const float> image, const std::vector<int>& prompt) {
  const int S = image_size();
  if (static_cast<int64_t>(image.size()) != int64_t{S} * S) {
    throw Error("TokenModel::begin", "image has " + std::to_string(image.size()) + " pixels, expected " +
                                         std::to_string(S * S));
  }
  if (prompt.empty()) throw Error("TokenModel::begin", "empty prompt");
  for (int id : prompt) {
    if (id < 0 || id >= vocab_size()) throw Error("TokenModel::begin", "token id " + std::to_string(id) + " out of range");
  }
  torch::NoGradGuard no_grad;
  torch::Tensor img = torch::from_blob(const_cast<float*>(image.data()), {1, S, S}, torch::kFloat32).clone();
  impl_->cache.clear();
  impl_->text_len = 0;
  impl_->ck.model->prime(impl_->ck.model->image_prefix(img), impl_->cache);
  return impl_->run(std::vector<int64_t>(prompt.begin(), prompt.end()));
}

std::vector<float> AnnTokenModel::append(int token) {
  if (impl_->text_len == 0) throw Error("TokenModel::append", "no sequence", "call begin() first");
  if (token < 0 || token >= vocab_size()) throw Error("TokenModel::append", "token id " + std::to_string(token) + " out of range");
  return impl_->run({token});
}

void AnnTokenModel::rollback(int n) {
  if (n < 0 || n > impl_->text_len - 1) {
    throw Error("TokenModel::rollback", "cannot drop " + std::to_string(n) + " of " + std::to_string(impl_->text_len) +
                                            " tokens");
  }
  impl_->cache.truncate(impl_->cache.len - n);
  impl_->text_len -= n;
}

}  // namespace spikefm
