// Neuron models against independent closed-form references.
//
// The reference for ST-BIF and the signed burst neuron is the QCFS quantizer written out here in
// integer arithmetic: count = clip(floor(X / theta + 1/2), s_min, s_max). Most trials put theta and
// every current on a common 2^-k grid so that float32 arithmetic in the neuron is exact and the
// comparison can be strict, ties (X / theta + 1/2 an integer) included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "snn/burst_neuron.h"
#include "snn/if_rate_neuron.h"
#include "snn/neuron.h"
#include "snn/st_bif_neuron.h"

namespace spikefm::snn {
namespace {

// floor(a / b) for b > 0, in integers.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// QCFS quantizer level on the grid: theta = theta_u units, X = x_u units.
// floor(X / theta + 1/2) = floor((2 X + theta) / (2 theta)).
int64_t qcfs_count(int64_t x_u, int64_t theta_u, int64_t s_min, int64_t s_max) {
  return std::clamp(floor_div(2 * x_u + theta_u, 2 * theta_u), s_min, s_max);
}

// One random trial for a population of N neurons: per-neuron theta and currents on a grid.
struct GridTrial {
  Eigen::ArrayXf theta;                    // (N)
  std::vector<int64_t> theta_u;            // (N) theta in grid units
  std::vector<int64_t> x_u;                // (N) total input in grid units
  std::vector<Eigen::ArrayXf> currents;    // T entries of (N)
  std::vector<std::vector<int64_t>> currents_u;  // T entries of (N), the same in grid units
};

// Plain integer re-implementation of the signed burst / ST-BIF step on the grid (B = 1 is ST-BIF):
//   v += c; q = floor(v / theta); s = clamp(q, max(-B, s_min - S), min(B, s_max - S)); v -= s theta.
struct GridReference {
  std::vector<int64_t> v_u, count;
  GridReference(const std::vector<int64_t>& theta_u) : v_u(theta_u.size()), count(theta_u.size(), 0) {
    for (size_t i = 0; i < theta_u.size(); ++i) v_u[i] = theta_u[i] / 2;
  }
  int64_t step(size_t i, int64_t c_u, int64_t theta_u, int64_t b, int64_t s_min, int64_t s_max) {
    v_u[i] += c_u;
    const int64_t q = floor_div(v_u[i], theta_u);
    const int64_t s = std::clamp(q, std::max(-b, s_min - count[i]), std::min(b, s_max - count[i]));
    v_u[i] -= s * theta_u;
    count[i] += s;
    return s;
  }
};

// theta = m * 2^-k with m in [1, 1024], k in [0, 10]; grid unit u = 2^-(k+1) so theta/2 is on it.
// Each neuron's total X is drawn in [(s_min - 3) theta, (s_max + 3) theta] (clipping exercised),
// then split over a random number of steps (1..T) into currents of both signs, up to 3 theta each.
// All partial sums stay far below 2^24 units, so float32 sums are exact.
GridTrial make_grid_trial(std::mt19937& rng, int n, int t_max, int s_min, int s_max) {
  GridTrial trial;
  trial.theta.resize(n);
  trial.theta_u.resize(n);
  trial.x_u.resize(n);
  const int steps = std::uniform_int_distribution<int>(1, t_max)(rng);
  trial.currents.assign(steps, Eigen::ArrayXf::Zero(n));
  trial.currents_u.assign(steps, std::vector<int64_t>(n, 0));
  for (int i = 0; i < n; ++i) {
    const int k = std::uniform_int_distribution<int>(0, 10)(rng);
    const int64_t m = std::uniform_int_distribution<int64_t>(1, 1024)(rng);
    const double unit = std::ldexp(1.0, -(k + 1));
    const int64_t th = 2 * m;  // theta in units
    trial.theta_u[i] = th;
    trial.theta[i] = static_cast<float>(th * unit);
    const int64_t x = std::uniform_int_distribution<int64_t>((s_min - 3) * th, (s_max + 3) * th)(rng);
    trial.x_u[i] = x;
    const int my_steps = std::uniform_int_distribution<int>(1, steps)(rng);
    int64_t rest = x;
    for (int t = 0; t + 1 < my_steps; ++t) {
      const int64_t c = std::uniform_int_distribution<int64_t>(-3 * th, 3 * th)(rng);
      trial.currents[t][i] = static_cast<float>(c * unit);
      trial.currents_u[t][i] = c;
      rest -= c;
    }
    trial.currents[my_steps - 1][i] = static_cast<float>(rest * unit);
    trial.currents_u[my_steps - 1][i] = rest;
  }
  return trial;
}

// Feeds the trial, then settles. Returns the per-neuron sum of emitted spike values, counted here
// from the step outputs (not from the model's own counter).
Eigen::ArrayXi run_and_settle(NeuronPopulation& pop, const GridTrial& trial, int max_settle) {
  Eigen::ArrayXi total = Eigen::ArrayXi::Zero(pop.size());
  SpikeArray spikes;
  for (const Eigen::ArrayXf& c : trial.currents) {
    pop.step(c, spikes);
    total += spikes.cast<int>();
  }
  settle(pop, max_settle, &total);
  return total;
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

// ---- ST-BIF -----------------------------------------------------------------------------------------

TEST(StBifNeuron, TotalSpikesEqualQcfsOfTotalInputForAnySplit) {
  std::mt19937 rng(20240711);
  for (int trial_i = 0; trial_i < 200; ++trial_i) {
    const int n = std::uniform_int_distribution<int>(1, 64)(rng);
    const int s_max = std::uniform_int_distribution<int>(0, 16)(rng);
    const int s_min = std::uniform_int_distribution<int>(0, 1)(rng) ? 0 : -std::uniform_int_distribution<int>(0, 16)(rng);
    const GridTrial trial = make_grid_trial(rng, n, 24, s_min, s_max);
    StBifNeuron pop({trial.theta, s_max, s_min});
    const Eigen::ArrayXi total = run_and_settle(pop, trial, s_max - s_min + 1);
    for (int i = 0; i < n; ++i) {
      const int64_t expect = qcfs_count(trial.x_u[i], trial.theta_u[i], s_min, s_max);
      ASSERT_EQ(total[i], expect) << "trial " << trial_i << " neuron " << i << " X_u " << trial.x_u[i]
                                  << " theta_u " << trial.theta_u[i];
      ASSERT_EQ(pop.state().s[i], expect);
    }
  }
}

TEST(StBifNeuron, GenericFloatInputsMatchQcfsAwayFromTies) {
  // Inputs off any grid: float rounding can only matter where X / theta + 1/2 is within rounding
  // of an integer, so X is drawn with its fractional level at least 0.05 from a tie.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> theta_dist(0.05f, 2.0f);
  std::uniform_real_distribution<double> frac_dist(0.05, 0.45);
  const int n = 256;
  const int s_min = -8, s_max = 8;
  for (int trial_i = 0; trial_i < 20; ++trial_i) {
    Eigen::ArrayXf theta(n);
    for (int i = 0; i < n; ++i) theta[i] = theta_dist(rng);
    const int steps = 16;
    std::vector<Eigen::ArrayXf> currents(steps, Eigen::ArrayXf::Zero(n));
    std::vector<double> x(n, 0.0);
    for (int i = 0; i < n; ++i) {
      const int level = std::uniform_int_distribution<int>(s_min - 3, s_max + 3)(rng);
      const double frac = frac_dist(rng) + (std::uniform_int_distribution<int>(0, 1)(rng) ? 0.5 : 0.0);
      const double target = theta[i] * (level - 0.5 + frac);  // X / theta + 1/2 = level + frac
      double rest = target;
      for (int t = 0; t + 1 < steps; ++t) {
        currents[t][i] = std::uniform_real_distribution<float>(-2.5f, 2.5f)(rng) * theta[i];
        rest -= currents[t][i];
      }
      currents[steps - 1][i] = static_cast<float>(rest);
      for (int t = 0; t < steps; ++t) x[i] += currents[t][i];  // the X the neuron actually saw
    }
    StBifNeuron pop({theta, s_max, s_min});
    Eigen::ArrayXi total = Eigen::ArrayXi::Zero(n);
    SpikeArray spikes;
    for (const auto& c : currents) {
      pop.step(c, spikes);
      total += spikes.cast<int>();
    }
    settle(pop, s_max - s_min + 1, &total);
    for (int i = 0; i < n; ++i) {
      const double expect = std::clamp(std::floor(x[i] / theta[i] + 0.5), double(s_min), double(s_max));
      ASSERT_EQ(total[i], expect) << "neuron " << i;
    }
  }
}

TEST(StBifNeuron, CountBoundsHoldAtEveryStep) {
  std::mt19937 rng(99);
  for (int trial_i = 0; trial_i < 50; ++trial_i) {
    const int n = 32;
    const int s_max = std::uniform_int_distribution<int>(1, 6)(rng);
    const int s_min = -std::uniform_int_distribution<int>(0, 6)(rng);
    const GridTrial trial = make_grid_trial(rng, n, 40, s_min - 5, s_max + 5);  // push past bounds
    StBifNeuron pop({trial.theta, s_max, s_min});
    Eigen::ArrayXi running = Eigen::ArrayXi::Zero(n);
    SpikeArray spikes;
    GridReference ref(trial.theta_u);
    size_t t_now = 0;
    auto check = [&] {
      for (int i = 0; i < n; ++i) {
        const int64_t c_u = t_now < trial.currents_u.size() ? trial.currents_u[t_now][i] : 0;
        ASSERT_EQ(spikes[i], ref.step(i, c_u, trial.theta_u[i], 1, s_min, s_max)) << "step " << t_now;
        ASSERT_GE(spikes[i], -1);
        ASSERT_LE(spikes[i], 1);
        ASSERT_GE(running[i], s_min);
        ASSERT_LE(running[i], s_max);
        ASSERT_EQ(running[i], pop.state().s[i]);
      }
      ++t_now;
    };
    for (const auto& c : trial.currents) {
      pop.step(c, spikes);
      running += spikes.cast<int>();
      check();
    }
    const Eigen::ArrayXf zero = Eigen::ArrayXf::Zero(n);
    for (int t = 0; t < s_max - s_min + 1; ++t) {
      pop.step(zero, spikes);
      running += spikes.cast<int>();
      check();
    }
  }
}

TEST(StBifNeuron, SettleNeedsAtMostCountRangeStepsAndResetRestoresInitialState) {
  // A single huge current, then settle: the neuron climbs one spike per step to s_max.
  StBifNeuron pop({Eigen::ArrayXf::Constant(3, 0.5f), 5, -2});
  const Eigen::ArrayXf big = (Eigen::ArrayXf(3) << 100.0f, -100.0f, 0.2f).finished();
  SpikeArray spikes;
  pop.step(big, spikes);
  EXPECT_EQ(settle(pop, 10), 4);  // 5 positive spikes, the first during the input step
  EXPECT_EQ(pop.state().s[0], 5);
  EXPECT_EQ(pop.state().s[1], -2);
  EXPECT_EQ(pop.state().s[2], 0);  // 0.2 / 0.5 + 1/2 = 0.9 -> 0
  EXPECT_EQ(settle(pop, 10), 0);   // already settled
  pop.reset();
  EXPECT_EQ(pop.state().s.abs().sum(), 0);
  EXPECT_FLOAT_EQ(pop.state().v[0], 0.25f);

  StBifNeuron slow({Eigen::ArrayXf::Constant(1, 1.0f), 100, 0});
  slow.step(Eigen::ArrayXf::Constant(1, 50.0f), spikes);
  const std::string msg = error_message([&] { settle(slow, 10); });
  EXPECT_NE(msg.find("still spiking after 10"), std::string::npos) << msg;
}

// ---- IF rate-coded ----------------------------------------------------------------------------------

TEST(IfRateNeuron, FiringCountWithinOneSpikeOfClippedRate) {
  std::mt19937 rng(3);
  for (auto v_init : {IfRateNeuron::InitialMembrane::kHalfThreshold, IfRateNeuron::InitialMembrane::kZero}) {
    for (int trial_i = 0; trial_i < 50; ++trial_i) {
      const int n = 128;
      const int steps = std::uniform_int_distribution<int>(1, 64)(rng);
      Eigen::ArrayXf theta(n), current(n);
      for (int i = 0; i < n; ++i) {
        theta[i] = std::uniform_real_distribution<float>(0.1f, 3.0f)(rng);
        current[i] = theta[i] * std::uniform_real_distribution<float>(-0.5f, 1.5f)(rng);
      }
      IfRateNeuron pop({theta, v_init});
      Eigen::ArrayXi count = Eigen::ArrayXi::Zero(n);
      SpikeArray spikes;
      for (int t = 0; t < steps; ++t) {
        pop.step(current, spikes);
        count += spikes.cast<int>();
      }
      for (int i = 0; i < n; ++i) {
        const double x = double(current[i]) * steps;
        const double rate_target = std::clamp(x / theta[i], 0.0, double(steps));
        ASSERT_LE(std::abs(count[i] - rate_target), 1.0 + 1e-4) << "neuron " << i;
      }
    }
  }
}

TEST(IfRateNeuron, HalfThresholdStartRoundsConstantInputExactly) {
  // On the grid (exact float arithmetic): count = clip(floor(X / theta + 1/2), 0, T).
  std::mt19937 rng(5);
  for (int trial_i = 0; trial_i < 100; ++trial_i) {
    const int n = 16, steps = std::uniform_int_distribution<int>(1, 40)(rng);
    Eigen::ArrayXf theta(n), current(n);
    std::vector<int64_t> th_u(n), c_u(n);
    for (int i = 0; i < n; ++i) {
      th_u[i] = 2 * std::uniform_int_distribution<int64_t>(1, 512)(rng);
      c_u[i] = std::uniform_int_distribution<int64_t>(-th_u[i], 2 * th_u[i])(rng);
      theta[i] = std::ldexp(float(th_u[i]), -6);
      current[i] = std::ldexp(float(c_u[i]), -6);
    }
    IfRateNeuron pop({theta});
    Eigen::ArrayXi count = Eigen::ArrayXi::Zero(n);
    SpikeArray spikes;
    for (int t = 0; t < steps; ++t) {
      pop.step(current, spikes);
      count += spikes.cast<int>();
    }
    for (int i = 0; i < n; ++i) ASSERT_EQ(count[i], qcfs_count(c_u[i] * steps, th_u[i], 0, steps));
  }
}

TEST(IfRateNeuron, CannotRetractASpikeWhenInputTurnsNegative) {
  // Documents the known error of rate coding that ST-BIF removes: X = theta - theta = 0.
  const Eigen::ArrayXf theta = Eigen::ArrayXf::Constant(1, 1.0f);
  IfRateNeuron if_rate({theta});
  StBifNeuron st_bif({theta, 4, 0});
  SpikeArray a, b;
  int if_total = 0, st_total = 0;
  for (float c : {1.0f, -1.0f, 0.0f, 0.0f}) {
    if_rate.step(Eigen::ArrayXf::Constant(1, c), a);
    st_bif.step(Eigen::ArrayXf::Constant(1, c), b);
    if_total += a[0];
    st_total += b[0];
  }
  EXPECT_EQ(if_total, 1);
  EXPECT_EQ(st_total, 0);
}

// ---- Burst ------------------------------------------------------------------------------------------

TEST(BurstNeuron, SignedBurstTotalsEqualStBifAndQcfs) {
  std::mt19937 rng(11);
  for (int trial_i = 0; trial_i < 200; ++trial_i) {
    const int n = std::uniform_int_distribution<int>(1, 48)(rng);
    const int s_max = std::uniform_int_distribution<int>(0, 40)(rng);
    const int s_min = -std::uniform_int_distribution<int>(0, 40)(rng);
    const int b = std::uniform_int_distribution<int>(1, 12)(rng);
    const GridTrial trial = make_grid_trial(rng, n, 16, s_min, s_max);
    StBifNeuron st({trial.theta, s_max, s_min});
    BurstNeuron burst({trial.theta, b, s_max, s_min, true});
    const Eigen::ArrayXi st_total = run_and_settle(st, trial, s_max - s_min + 1);
    // Burst: feed, then settle; count the settle steps that spiked.
    // Every step, input and settling phase alike, must match the integer reference exactly.
    Eigen::ArrayXi burst_total = Eigen::ArrayXi::Zero(n);
    SpikeArray spikes;
    GridReference ref(trial.theta_u);
    const int range = s_max - s_min;
    for (size_t t = 0; t < trial.currents.size() + (range + b - 1) / b + 1; ++t) {
      const bool input = t < trial.currents.size();
      burst.step(input ? trial.currents[t] : Eigen::ArrayXf::Zero(n), spikes);
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(spikes[i], ref.step(i, input ? trial.currents_u[t][i] : 0, trial.theta_u[i], b, s_min, s_max))
            << "trial " << trial_i << " step " << t << " neuron " << i;
      }
      if (input) burst_total += spikes.cast<int>();
    }
    // Replay the input and let settle() finish: it must need at most ceil(range / B) spiking steps.
    burst.reset();
    for (const auto& c : trial.currents) burst.step(c, spikes);
    const int settle_steps = settle(burst, (range + b - 1) / b + 1, &burst_total);
    ASSERT_LE(settle_steps, (range + b - 1) / b);
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(burst_total[i], st_total[i]) << "trial " << trial_i << " neuron " << i;
      ASSERT_EQ(burst_total[i], qcfs_count(trial.x_u[i], trial.theta_u[i], s_min, s_max));
    }
  }
}

TEST(BurstNeuron, BurstSizeOneIsStBifStepForStep) {
  std::mt19937 rng(13);
  const int n = 200;
  Eigen::ArrayXf theta(n);
  for (int i = 0; i < n; ++i) theta[i] = std::uniform_real_distribution<float>(0.05f, 2.0f)(rng);
  StBifNeuron st({theta, 6, -6});
  BurstNeuron burst({theta, 1, 6, -6, true});
  SpikeArray a, b;
  for (int t = 0; t < 60; ++t) {
    Eigen::ArrayXf c(n);
    for (int i = 0; i < n; ++i) c[i] = t < 40 ? std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng) : 0.0f;
    st.step(c, a);
    burst.step(c, b);
    ASSERT_TRUE((a == b).all()) << "step " << t;
    ASSERT_TRUE((st.state().v == burst.state().v).all()) << "step " << t;
  }
}

TEST(BurstNeuron, UnsignedBurstRoundsNonNegativeInput) {
  // Li et al. mode: no negative spikes. With non-negative currents the membrane never drops below 0,
  // so the count is still floor(X / theta + 1/2), reached in ceil(count / B) steps after the input.
  std::mt19937 rng(17);
  const int n = 64, b = 5;
  Eigen::ArrayXf theta(n), current(n);
  std::vector<int64_t> th_u(n), c_u(n);
  for (int i = 0; i < n; ++i) {
    th_u[i] = 2 * std::uniform_int_distribution<int64_t>(1, 256)(rng);
    c_u[i] = std::uniform_int_distribution<int64_t>(0, 30 * th_u[i])(rng);
    theta[i] = std::ldexp(float(th_u[i]), -4);
    current[i] = std::ldexp(float(c_u[i]), -4);
  }
  BurstNeuron burst({theta, b, std::numeric_limits<int>::max(), 0, false});
  EXPECT_EQ(burst.min_spike(), 0);
  SpikeArray spikes;
  burst.step(current, spikes);
  Eigen::ArrayXi total = spikes.cast<int>();
  EXPECT_GE(spikes.cast<int>().minCoeff(), 0);
  settle(burst, 10, &total);
  for (int i = 0; i < n; ++i) ASSERT_EQ(total[i], qcfs_count(c_u[i], th_u[i], 0, 1 << 30));
}

// ---- one interface, one table -----------------------------------------------------------------------

TEST(NeuronPopulation, AllModelsRunBehindOneInterface) {
  // X = 2.6 theta in one step: all three end at 3 spikes (X / theta + 1/2 = 3.1), ST-BIF and IF one
  // spike per step (2 more steps after the input), the burst neuron all 3 in the input step.
  const Eigen::ArrayXf theta = Eigen::ArrayXf::Constant(4, 0.5f);
  std::vector<std::unique_ptr<NeuronPopulation>> models;
  models.push_back(std::make_unique<StBifNeuron>(StBifNeuron::Params{theta, 8, 0}));
  models.push_back(std::make_unique<IfRateNeuron>(IfRateNeuron::Params{theta}));
  models.push_back(std::make_unique<BurstNeuron>(BurstNeuron::Params{theta, 4, 8, 0, true}));
  const std::vector<int> expect_total = {3, 3, 3};
  const std::vector<int> expect_settle = {2, 2, 0};
  for (size_t m = 0; m < models.size(); ++m) {
    NeuronPopulation& pop = *models[m];
    ASSERT_EQ(pop.size(), 4);
    ASSERT_TRUE((pop.output_scale() == theta).all());
    SpikeArray spikes;
    pop.step(Eigen::ArrayXf::Constant(4, 1.3f), spikes);
    Eigen::ArrayXi total = spikes.cast<int>();
    const int settle_steps = settle(pop, 16, &total);
    EXPECT_EQ(total[0], expect_total[m]) << pop.model_name();
    EXPECT_EQ(settle_steps, expect_settle[m]) << pop.model_name();

    // Spike values stay within [min_spike(), max_spike()] under random mixed-sign input.
    pop.reset();
    std::mt19937 rng(m);
    for (int t = 0; t < 200; ++t) {
      Eigen::ArrayXf c(4);
      for (int i = 0; i < 4; ++i) c[i] = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
      pop.step(c, spikes);
      ASSERT_GE(spikes.cast<int>().minCoeff(), pop.min_spike()) << pop.model_name();
      ASSERT_LE(spikes.cast<int>().maxCoeff(), pop.max_spike()) << pop.model_name();
    }
  }
}

TEST(NeuronPopulation, TilePerChannelRepeatsChannelsAlongRows) {
  const Eigen::ArrayXf c = (Eigen::ArrayXf(3) << 1.0f, 2.0f, 3.0f).finished();
  const Eigen::ArrayXf t = tile_per_channel(c, 2);  // (2 * 3), n = r * 3 + c
  ASSERT_EQ(t.size(), 6);
  EXPECT_EQ(t[4], 2.0f);
  EXPECT_EQ(t[5], 3.0f);
}

// ---- parameter validation ---------------------------------------------------------------------------

TEST(NeuronParams, BadParamsThrowErrorsNamingTheParameter) {
  const Eigen::ArrayXf ok = Eigen::ArrayXf::Constant(3, 1.0f);
  Eigen::ArrayXf negative = ok;
  negative[1] = -0.5f;
  Eigen::ArrayXf zero = ok;
  zero[2] = 0.0f;
  Eigen::ArrayXf nan = ok;
  nan[0] = std::numeric_limits<float>::quiet_NaN();
  Eigen::ArrayXf inf = ok;
  inf[0] = std::numeric_limits<float>::infinity();

  struct Case {
    std::function<void()> make;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[&] { StBifNeuron({negative, 4, 0}); }, "v_threshold[1] must be > 0 (got -0.5)"},
      {[&] { StBifNeuron({zero, 4, 0}); }, "v_threshold[2] must be > 0"},
      {[&] { StBifNeuron({nan, 4, 0}); }, "v_threshold[0] must be finite"},
      {[&] { StBifNeuron({inf, 4, 0}); }, "v_threshold[0] must be finite"},
      {[&] { StBifNeuron({Eigen::ArrayXf(), 4, 0}); }, "v_threshold must have at least one entry"},
      {[&] { StBifNeuron({ok, -2, 0}); }, "s_max must be >= s_min"},
      {[&] { StBifNeuron({ok, 4, 1}); }, "s_min must be <= 0"},
      {[&] { StBifNeuron({ok, -1, -3}); }, "s_max must be >= 0"},
      {[&] { IfRateNeuron({negative}); }, "v_threshold[1] must be > 0"},
      {[&] { IfRateNeuron({nan}); }, "v_threshold[0] must be finite"},
      {[&] { BurstNeuron({ok, 0, 4, 0, true}); }, "max_burst must be in [1, 127] (got 0)"},
      {[&] { BurstNeuron({ok, 128, 4, 0, true}); }, "max_burst must be in [1, 127] (got 128)"},
      {[&] { BurstNeuron({nan, 2, 4, 0, true}); }, "v_threshold[0] must be finite"},
      {[&] { BurstNeuron({ok, 2, 1, 3, true}); }, "s_max must be >= s_min"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_message(c.make);
    EXPECT_NE(msg.find(c.needle), std::string::npos) << "expected '" << c.needle << "' in '" << msg << "'";
  }
}

TEST(NeuronParams, StepRejectsCurrentOfWrongSize) {
  StBifNeuron pop({Eigen::ArrayXf::Constant(3, 1.0f), 4, 0});
  SpikeArray spikes;
  const std::string msg = error_message([&] { pop.step(Eigen::ArrayXf::Zero(2), spikes); });
  EXPECT_NE(msg.find("current has 2 entries, the population has 3"), std::string::npos) << msg;
}

}  // namespace
}  // namespace spikefm::snn
