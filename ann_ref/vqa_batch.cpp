#include "ann_ref/vqa_batch.h"

#include <algorithm>

#include "common/error.h"

namespace spikefm {

torch::Tensor image_batch(const ImageSet& set, const std::vector<int64_t>& indices) {
  const int64_t B = static_cast<int64_t>(indices.size()), hw = set.rows * set.cols;
  torch::Tensor out = torch::empty({B, set.rows, set.cols}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t* src = set.pixels.data() + indices[b] * hw;
    for (int64_t i = 0; i < hw; ++i) dst[b * hw + i] = src[i] * (1.0f / 255.0f);
  }
  return out;
}

void augment_images(torch::Tensor& images, std::mt19937_64& rng, int max_shift, bool flip) {
  if (max_shift <= 0 && !flip) return;
  if (images.dim() != 3 || images.scalar_type() != torch::kFloat32 || !images.is_contiguous()) {
    throw Error("image augmentation", "expects a contiguous float (B, S, S) batch");
  }
  const int64_t B = images.size(0), H = images.size(1), W = images.size(2);
  std::vector<float> src(static_cast<size_t>(H * W));
  float* data = images.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t dy = max_shift > 0 ? static_cast<int64_t>(rng() % (2 * max_shift + 1)) - max_shift : 0;
    const int64_t dx = max_shift > 0 ? static_cast<int64_t>(rng() % (2 * max_shift + 1)) - max_shift : 0;
    const bool mirror = flip && (rng() & 1);
    if (dy == 0 && dx == 0 && !mirror) continue;
    float* img = data + b * H * W;
    std::copy(img, img + H * W, src.begin());
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        // out(y, x) = in'(y - dy, x - dx), where in' is the (optionally mirrored) input
        const int64_t sy = y - dy, sx0 = x - dx;
        const int64_t sx = mirror ? W - 1 - sx0 : sx0;
        img[y * W + x] = (sy >= 0 && sy < H && sx0 >= 0 && sx0 < W) ? src[sy * W + sx] : 0.0f;
      }
    }
  }
}

std::vector<int> prompt_tokens(const WordTokenizer& tok, const std::string& question) {
  std::vector<int> ids{WordTokenizer::kBos};
  for (int id : tok.encode(question)) ids.push_back(id);
  ids.push_back(WordTokenizer::kSep);
  return ids;
}

TextBatch text_batch(const WordTokenizer& tok, const std::vector<std::string>& questions,
                     const std::vector<std::string>& answers) {
  const int64_t N = static_cast<int64_t>(questions.size());
  std::vector<std::vector<int>> rows(N);
  std::vector<size_t> answer_start(N);
  size_t longest = 0;
  for (int64_t i = 0; i < N; ++i) {
    rows[i] = prompt_tokens(tok, questions[i]);
    answer_start[i] = rows[i].size();  // first answer token
    for (int id : tok.encode(answers[i])) rows[i].push_back(id);
    rows[i].push_back(WordTokenizer::kEos);
    longest = std::max(longest, rows[i].size() - 1);
  }
  const int64_t T = static_cast<int64_t>(longest);
  TextBatch b;
  b.inputs = torch::full({N, T}, WordTokenizer::kPad, torch::kInt64);
  b.targets = torch::full({N, T}, kIgnoreTarget, torch::kInt64);
  auto in = b.inputs.accessor<int64_t, 2>();
  auto tg = b.targets.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i) {
    const auto& r = rows[i];
    for (size_t j = 0; j + 1 < r.size(); ++j) {
      in[i][j] = r[j];
      if (j + 1 >= answer_start[i]) tg[i][j] = r[j + 1];
    }
  }
  return b;
}

}  // namespace spikefm
