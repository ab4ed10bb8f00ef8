#include "ann_ref/vqa_batch.h"

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
