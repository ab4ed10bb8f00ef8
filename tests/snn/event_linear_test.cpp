// Event-driven linear layers against plain dense references written here: a triple loop over the
// dense spike matrix and the untransposed weight W: (out, in), in int64 (integer paths, compared
// exactly) or double (float path, compared by NMSE). Every kernel path is tested separately; a path
// this CPU cannot run is skipped with a message.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "snn/event_linear.h"
#include "snn/layer_stats.h"
#include "snn/spike_events.h"

namespace spikefm::snn {
namespace {

// Random dense spikes (R, W): each entry nonzero with probability `density`; nonzero values are
// +-1, or uniform in [-127, 127] \ {0} when `burst`. Some rows are forced empty.
MatrixI8R random_spikes(std::mt19937& rng, int rows, int width, double density, bool burst) {
  MatrixI8R s = MatrixI8R::Zero(rows, width);
  std::bernoulli_distribution on(density);
  std::uniform_int_distribution<int> big(1, 127);
  std::bernoulli_distribution negative(0.5);
  std::bernoulli_distribution empty_row(0.2);
  for (int r = 0; r < rows; ++r) {
    if (empty_row(rng)) continue;
    for (int i = 0; i < width; ++i) {
      if (!on(rng)) continue;
      const int mag = burst ? big(rng) : 1;
      s(r, i) = static_cast<int8_t>(negative(rng) ? -mag : mag);
    }
  }
  return s;
}

// acc0 + S (R, in) * W^T, W: (out, in); in int64.
Eigen::Matrix<int64_t, Eigen::Dynamic, Eigen::Dynamic> dense_reference(const MatrixI32R& acc0, const MatrixI8R& s,
                                                                       const MatrixI8R& w) {
  Eigen::Matrix<int64_t, Eigen::Dynamic, Eigen::Dynamic> y = acc0.cast<int64_t>();  // (R, out)
  for (int r = 0; r < s.rows(); ++r)
    for (int j = 0; j < w.rows(); ++j)
      for (int i = 0; i < s.cols(); ++i) y(r, j) += int64_t(s(r, i)) * int64_t(w(j, i));
  return y;
}

const int kOutSizes[] = {1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257, 300};

class EventLinearPath : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    if (!kernel_path_supported(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run the " << kernel_path_name(GetParam()) << " path";
    }
  }
};

TEST_P(EventLinearPath, Int8EqualsDenseInt32ReferenceExactly) {
  std::mt19937 rng(42 + static_cast<int>(GetParam()));
  std::uniform_int_distribution<int> wdist(-128, 127);
  for (int trial = 0; trial < 60; ++trial) {
    const int in = std::uniform_int_distribution<int>(1, 300)(rng);
    const int out = kOutSizes[trial % std::size(kOutSizes)];
    const int rows = std::uniform_int_distribution<int>(0, 12)(rng);
    const bool burst = trial % 3 == 0;
    MatrixI8R w(out, in);  // (out, in)
    for (int j = 0; j < out; ++j)
      for (int i = 0; i < in; ++i) w(j, i) = static_cast<int8_t>(wdist(rng));
    const MatrixI8R s = random_spikes(rng, rows, in, std::uniform_real_distribution<double>(0, 0.4)(rng), burst);
    MatrixI32R acc = MatrixI32R::Random(rows, out) / 1024;  // (R, out), accumulate on top of it
    const auto expect = dense_reference(acc, s, w);

    const EventLinearI8 layer = EventLinearI8::from_weight(w);
    layer.accumulate(SpikeEvents::from_dense(s), acc, nullptr, GetParam());
    ASSERT_TRUE(acc.cast<int64_t>() == expect) << "in " << in << " out " << out << " rows " << rows;
  }
}

TEST_P(EventLinearPath, Int4EqualsDenseInt32ReferenceExactly) {
  std::mt19937 rng(7 + static_cast<int>(GetParam()));
  std::uniform_int_distribution<int> wdist(-8, 7);
  for (int trial = 0; trial < 60; ++trial) {
    const int in = std::uniform_int_distribution<int>(1, 300)(rng);
    const int out = kOutSizes[trial % std::size(kOutSizes)];
    const int rows = std::uniform_int_distribution<int>(0, 12)(rng);
    MatrixI8R w(out, in);
    for (int j = 0; j < out; ++j)
      for (int i = 0; i < in; ++i) w(j, i) = static_cast<int8_t>(wdist(rng));
    const MatrixI8R s = random_spikes(rng, rows, in, 0.2, trial % 2 == 0);
    MatrixI32R acc = MatrixI32R::Random(rows, out) / 1024;
    const auto expect = dense_reference(acc, s, w);
    EventLinearI4::from_weight(w).accumulate(SpikeEvents::from_dense(s), acc, nullptr, GetParam());
    ASSERT_TRUE(acc.cast<int64_t>() == expect) << "in " << in << " out " << out << " rows " << rows;
  }
}

TEST_P(EventLinearPath, Float32MatchesDenseDoubleReferenceByNmse) {
  // Tolerance: each output is acc0 plus at most in <= 300 float terms s * fl(theta_i * w_ij), each
  // with one rounding in the fold and one per accumulation, unit roundoff u = 2^-24 ~ 6e-8. With
  // rounding errors behaving like independent random signs (Higham & Mary 2019), the error of a
  // sum of n terms is ~ sqrt(n) u ||terms||, i.e. NMSE ~ n u^2 <= 300 * 3.6e-15 ~ 1e-12. We allow
  // 1e-9 (1000x margin, covering FMA vs mul+add differences), while one dropped, doubled or
  // misplaced event in a row of n events gives NMSE >= ~1 / n >= 3e-3, seven orders above.
  constexpr double kNmseTol = 1e-9;
  std::mt19937 rng(3 + static_cast<int>(GetParam()));
  std::normal_distribution<float> wdist(0.0f, 1.0f);
  std::uniform_real_distribution<float> theta_dist(0.05f, 2.0f);
  for (int trial = 0; trial < 60; ++trial) {
    const int in = std::uniform_int_distribution<int>(1, 300)(rng);
    const int out = kOutSizes[trial % std::size(kOutSizes)];
    const int rows = std::uniform_int_distribution<int>(1, 12)(rng);
    MatrixFR w(out, in);  // (out, in)
    for (int j = 0; j < out; ++j)
      for (int i = 0; i < in; ++i) w(j, i) = wdist(rng);
    Eigen::ArrayXf theta(in);  // (in)
    for (int i = 0; i < in; ++i) theta[i] = theta_dist(rng);
    const MatrixI8R s = random_spikes(rng, rows, in, 0.3, trial % 3 == 0);
    MatrixFR acc = MatrixFR::Random(rows, out);  // (R, out)

    Eigen::MatrixXd ref = acc.cast<double>();  // (R, out)
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < out; ++j)
        for (int i = 0; i < in; ++i) ref(r, j) += double(s(r, i)) * double(theta[i]) * double(w(j, i));

    EventLinearF32::from_weight(w, theta).accumulate(SpikeEvents::from_dense(s), acc, nullptr, GetParam());
    const double nmse = (acc.cast<double>() - ref).squaredNorm() / ref.squaredNorm();
    ASSERT_LT(nmse, kNmseTol) << "in " << in << " out " << out << " rows " << rows;
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, EventLinearPath,
                         ::testing::Values(KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512,
                                           KernelPath::kAuto),
                         [](const ::testing::TestParamInfo<KernelPath>& info) {
                           return std::string(kernel_path_name(info.param));
                         });

TEST(EventLinear, LayerStatsCountHandComputableValues) {
  // 2 rows, 4 inputs, 5 outputs. Events: (0,0,+1), (0,2,-1), (1,1,+3) -> 3 events, 4 positive and 1
  // negative spike, 3 * 5 = 15 SOPs; weight bytes 15 (int8), 60 (float), 3 * ceil(5/2) = 9 (int4).
  MatrixI8R s(2, 4);
  s << 1, 0, -1, 0, 0, 3, 0, 0;
  const SpikeEvents ev = SpikeEvents::from_dense(s);
  const MatrixI8R w = MatrixI8R::Ones(5, 4);
  const MatrixFR wf = MatrixFR::Ones(5, 4);

  LayerStats i8, i4, f32;
  MatrixI32R acc = MatrixI32R::Zero(2, 5);
  EventLinearI8::from_weight(w).accumulate(ev, acc, &i8);
  EventLinearI4::from_weight(w).accumulate(ev, acc, &i4);
  MatrixFR accf = MatrixFR::Zero(2, 5);
  EventLinearF32::from_weight(wf, Eigen::ArrayXf::Ones(4)).accumulate(ev, accf, &f32);

  EXPECT_EQ(i8, (LayerStats{.events = 3, .spikes_pos = 4, .spikes_neg = 1, .sops = 15, .weight_bytes_read = 15}));
  EXPECT_EQ(i4, (LayerStats{.events = 3, .spikes_pos = 4, .spikes_neg = 1, .sops = 15, .weight_bytes_read = 9}));
  EXPECT_EQ(f32, (LayerStats{.events = 3, .spikes_pos = 4, .spikes_neg = 1, .sops = 15, .weight_bytes_read = 60}));

  LayerStats sum;
  sum += i8;
  sum += i8;  // counters add, e.g. over timesteps
  EXPECT_EQ(sum, (LayerStats{.events = 6, .spikes_pos = 8, .spikes_neg = 2, .sops = 30, .weight_bytes_read = 30}));
  // Row 0 got w[:,0] - w[:,2] = 0 twice (int8 then int4), row 1 got 3 twice.
  EXPECT_EQ(acc(0, 0), 0);
  EXPECT_EQ(acc(1, 4), 6);
  EXPECT_FLOAT_EQ(accf(1, 2), 3.0f);
}

// Message of the spikefm::Error thrown by f, or "" if none.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EventLinear, BadArgumentsThrowErrorsThatSayWhatIsWrong) {
  const MatrixI8R w = MatrixI8R::Ones(3, 4);  // (out 3, in 4)
  const EventLinearI8 layer = EventLinearI8::from_weight(w);
  MatrixI8R s = MatrixI8R::Zero(2, 5);
  s(0, 4) = 1;
  MatrixI32R acc = MatrixI32R::Zero(2, 3);
  EXPECT_NE(error_message([&] { layer.accumulate(SpikeEvents::from_dense(s), acc); }).find("width 5, the layer has 4 inputs"),
            std::string::npos);

  MatrixI8R s4 = MatrixI8R::Zero(2, 4);
  SpikeEvents bad = SpikeEvents::from_dense(s4);
  bad.index.push_back(7);  // out of range and row_ptr no longer matches
  bad.value.push_back(1);
  bad.row_ptr.back() = 1;
  const std::string msg = error_message([&] { layer.accumulate(bad, acc); });
  EXPECT_NE(msg.find("index[0] must be in [0, width = 4) (got 7)"), std::string::npos) << msg;

  MatrixI32R wrong = MatrixI32R::Zero(2, 4);
  EXPECT_NE(error_message([&] { layer.accumulate(SpikeEvents::from_dense(s4), wrong); }).find("accumulator is (2, 4)"),
            std::string::npos);

  MatrixI8R w5 = MatrixI8R::Zero(2, 2);
  w5(1, 0) = 9;
  EXPECT_NE(error_message([&] { EventLinearI4::from_weight(w5); }).find("w(1, 0) must be in [-8, 7] (got 9)"),
            std::string::npos);

  MatrixFR wf = MatrixFR::Ones(2, 2);
  wf(0, 1) = std::nanf("");
  EXPECT_NE(error_message([&] { EventLinearF32::from_weight(wf, Eigen::ArrayXf::Ones(2)); }).find("wt[1, 0] must be finite"),
            std::string::npos);
  const Eigen::ArrayXf bad_theta = (Eigen::ArrayXf(2) << 1.0f, -0.5f).finished();
  EXPECT_NE(error_message([&] { EventLinearF32::from_weight(MatrixFR::Ones(2, 2), bad_theta); })
                .find("input_scale[1] must be > 0 (got -0.5)"),
            std::string::npos);

  for (KernelPath p : {KernelPath::kAvx2, KernelPath::kAvx512}) {
    if (kernel_path_supported(p)) continue;
    EXPECT_NE(error_message([&] { resolve_kernel_path(p); }).find("does not support it"), std::string::npos);
  }
}

}  // namespace
}  // namespace spikefm::snn
