// SpikeEvents: CSR built from a dense spike matrix, checked entry by entry against the matrix.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/error.h"
#include "snn/spike_events.h"

namespace spikefm::snn {
namespace {

using MatrixI8R = Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

TEST(SpikeEvents, FromDenseListsNonzerosRowByRowInIndexOrder) {
  MatrixI8R s(3, 5);  // (R, W)
  s << 0, 1, 0, 0, -1,  //
      0, 0, 0, 0, 0,    // a row without events
      3, 0, 0, -2, 0;
  const SpikeEvents ev = SpikeEvents::from_dense(s);
  EXPECT_EQ(ev.rows, 3);
  EXPECT_EQ(ev.width, 5);
  EXPECT_EQ(ev.row_ptr, (std::vector<int32_t>{0, 2, 2, 4}));
  EXPECT_EQ(ev.index, (std::vector<int32_t>{1, 4, 0, 3}));
  EXPECT_EQ(ev.value, (std::vector<int8_t>{1, -1, 3, -2}));
  EXPECT_EQ(ev.size(), 4);
  EXPECT_NO_THROW(ev.validate());
}

TEST(SpikeEvents, RandomMatricesRoundTrip) {
  std::mt19937 rng(1);
  for (int t = 0; t < 50; ++t) {
    const int rows = std::uniform_int_distribution<int>(0, 40)(rng);
    const int width = std::uniform_int_distribution<int>(0, 300)(rng);
    const double density = std::uniform_real_distribution<double>(0.0, 0.5)(rng);
    MatrixI8R s = MatrixI8R::Zero(rows, width);
    for (int r = 0; r < rows; ++r)
      for (int i = 0; i < width; ++i)
        if (std::bernoulli_distribution(density)(rng)) s(r, i) = std::uniform_int_distribution<int>(0, 1)(rng) ? 1 : -1;
    const SpikeEvents ev = SpikeEvents::from_dense(s);
    ASSERT_EQ(ev.size(), (s.array() != 0).count());
    ASSERT_TRUE(ev.to_dense() == s);
  }
}

TEST(SpikeEvents, ValidateNamesTheBrokenInvariant) {
  MatrixI8R s(2, 4);
  s << 1, 0, 0, 1, 0, -1, 0, 0;
  auto message = [](const SpikeEvents& ev) {
    try {
      ev.validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SpikeEvents bad = SpikeEvents::from_dense(s);
  bad.index[1] = 4;
  EXPECT_NE(message(bad).find("index[1] must be in [0, width = 4) (got 4)"), std::string::npos) << message(bad);
  bad = SpikeEvents::from_dense(s);
  bad.row_ptr.pop_back();
  EXPECT_NE(message(bad).find("row_ptr must have rows + 1 = 3 entries"), std::string::npos) << message(bad);
  bad = SpikeEvents::from_dense(s);
  bad.value[0] = 0;
  EXPECT_NE(message(bad).find("value[0] must be nonzero"), std::string::npos) << message(bad);
  bad = SpikeEvents::from_dense(s);
  bad.row_ptr[1] = 3;
  bad.row_ptr[2] = 2;
  EXPECT_NE(message(bad).find("row_ptr must be non-decreasing"), std::string::npos) << message(bad);
}

}  // namespace
}  // namespace spikefm::snn
