// allocate_bits (ann_ref/bit_allocation.h) against an exhaustive brute force, a hand-worked case,
// its error messages, and a layer-sized instance against uniform-width allocations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ann_ref/bit_allocation.h"
#include "common/error.h"

using spikefm::AllocationUnit;
using spikefm::BitOption;

namespace {

// The total error in the order the header's implementation adds it: e_0 + (e_1 + (... + e_{n-1})).
// Floating-point addition is monotone, so the DP's optimum equals the minimum of this sum exactly.
double fold_error(const std::vector<AllocationUnit>& units, const std::vector<int>& choice) {
  double e = 0.0;
  for (size_t u = units.size(); u-- > 0;) e = units[u].options[choice[u]].error + e;
  return e;
}

int64_t total_cost(const std::vector<AllocationUnit>& units, const std::vector<int>& choice) {
  int64_t c = 0;
  for (size_t u = 0; u < units.size(); ++u) c += units[u].options[choice[u]].cost;
  return c;
}

// Every combination in lexicographic order (unit 0 most significant); keeps a strict improvement in
// (error, cost), so among exact ties the first — lexicographically smallest — choice wins.
std::optional<spikefm::Allocation> brute_force(const std::vector<AllocationUnit>& units,
                                               int64_t budget) {
  std::optional<spikefm::Allocation> best;
  std::vector<int> c(units.size(), 0);
  while (true) {
    bool ok = true;
    for (size_t u = 0; u < units.size(); ++u) {
      const AllocationUnit& unit = units[u];
      const BitOption& o = unit.options[c[u]];
      if ((unit.cap >= 0 && o.cost > unit.cap) || (o.cap >= 0 && o.cost > o.cap)) ok = false;
    }
    const int64_t cost = total_cost(units, c);
    if (ok && cost <= budget) {
      const double err = fold_error(units, c);
      if (!best || err < best->error || (err == best->error && cost < best->cost)) {
        best = spikefm::Allocation{c, cost, err};
      }
    }
    size_t u = units.size();
    while (u > 0 && ++c[u - 1] == static_cast<int>(units[u - 1].options.size())) c[--u] = 0;
    if (u == 0) break;
  }
  return best;
}

std::string message_of(const std::vector<AllocationUnit>& units, int64_t budget) {
  try {
    spikefm::allocate_bits(units, budget);
  } catch (const spikefm::Error& e) {
    return e.what();
  }
  return "(no error thrown)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Two layers of 1000 and 2000 weights, options 8/4/2 bits (cost = weights x bits).
std::vector<AllocationUnit> two_layers() {
  return {
      {"fc1", {{8, 8000, 0.0}, {4, 4000, 1.0}, {2, 2000, 5.0}}, -1},
      {"fc2", {{8, 16000, 0.0}, {4, 8000, 3.0}, {2, 4000, 9.0}}, -1},
  };
}

}  // namespace

TEST(BitAllocation, HandWorkedTwoLayers) {
  // All at 8 bits costs 24000 > 20000, so one layer must drop. Within 20000:
  //   fc1@4 + fc2@8 = 20000, error 1   <- optimum
  //   fc1@2 + fc2@8 = 18000, error 5;  fc1@8 + fc2@4 = 16000, error 3;  fc1@4 + fc2@4 = 12000, error 4
  auto a = spikefm::allocate_bits(two_layers(), 20000);
  EXPECT_EQ(a.choice, (std::vector<int>{1, 0}));
  EXPECT_EQ(a.cost, 20000);
  EXPECT_EQ(a.error, 1.0);
  // One bit less rules out fc1@4 + fc2@8; the best left is fc1@8 + fc2@4 (16000, error 3).
  a = spikefm::allocate_bits(two_layers(), 19999);
  EXPECT_EQ(a.choice, (std::vector<int>{0, 1}));
  EXPECT_EQ(a.cost, 16000);
  EXPECT_EQ(a.error, 3.0);
  // A loose budget keeps everything at 8 bits.
  a = spikefm::allocate_bits(two_layers(), 1'000'000);
  EXPECT_EQ(a.choice, (std::vector<int>{0, 0}));
  EXPECT_EQ(a.cost, 24000);
}

TEST(BitAllocation, TiesGoToLowerCostThenLowerOptionIndex) {
  // Option 1 has the same error as option 0 at lower cost; option 2 repeats option 1 exactly.
  std::vector<AllocationUnit> units = {
      {"a", {{8, 80, 1.0}, {6, 60, 1.0}, {6, 60, 1.0}}, -1},
      {"b", {{8, 80, 0.5}, {4, 40, 0.5}}, -1},
  };
  auto a = spikefm::allocate_bits(units, 1000);
  EXPECT_EQ(a.choice, (std::vector<int>{1, 1}));
  EXPECT_EQ(a.cost, 100);
  EXPECT_EQ(a.error, 1.5);
}

TEST(BitAllocation, CapDropsOptionsAboveIt) {
  // Without the cap fc2 would stay at 8 bits (error 0); its SRAM holds only 8000 bits.
  auto units = two_layers();
  units[1].cap = 8000;
  auto a = spikefm::allocate_bits(units, 1'000'000);
  EXPECT_EQ(a.choice, (std::vector<int>{0, 1}));
  EXPECT_EQ(a.cost, 16000);
  EXPECT_EQ(a.error, 3.0);
}

TEST(BitAllocation, OptionCapDropsOnlyThatOption) {
  // fc2's 8-bit option alone is capped below its cost (its own placement has too little SRAM); its
  // 4-bit option has a cap it meets and its 2-bit option none: fc2 takes 4 bits, fc1 keeps 8.
  auto units = two_layers();
  units[1].options[0].cap = 15999;
  units[1].options[1].cap = 8000;
  auto a = spikefm::allocate_bits(units, 1'000'000);
  EXPECT_EQ(a.choice, (std::vector<int>{0, 1}));
  EXPECT_EQ(a.error, 3.0);
  // A cap exactly at the cost allows the option.
  units[1].options[0].cap = 16000;
  EXPECT_EQ(spikefm::allocate_bits(units, 1'000'000).choice, (std::vector<int>{0, 0}));
  // Every option of fc2 capped out: the error names the unit and each option's cost and cap.
  units[1].options[0].cap = 0;
  units[1].options[1].cap = 7999;
  units[1].options[2].cap = 3999;
  const std::string m = message_of(units, 1'000'000);
  EXPECT_TRUE(contains(m, "fc2") && contains(m, "option 1: cost 8000 > cap 7999") &&
              contains(m, "option 2: cost 4000 > cap 3999"))
      << m;
  units[1].options[2].cap = -2;
  EXPECT_TRUE(contains(message_of(units, 1'000'000), "option 2: cap must be >= 0")) << message_of(units, 1'000'000);
}

TEST(BitAllocation, MatchesBruteForceOnRandomSmallInstances) {
  const int64_t quanta[] = {1, 2, 3, 7, 64, 1000, 4096};
  int feasible = 0, infeasible = 0, capped_out = 0;
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    std::mt19937 rng(seed);
    auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const int64_t q = quanta[uni(0, 6)];
    // Dyadic errors (k/4) make sums exact and ties frequent; random doubles test the general case.
    const bool dyadic = seed % 2 == 0;
    const bool with_caps = seed % 3 == 0;
    std::vector<AllocationUnit> units(static_cast<size_t>(uni(1, 6)));
    int64_t min_sum = 0, max_sum = 0;
    for (size_t u = 0; u < units.size(); ++u) {
      units[u].name = "u";
      units[u].name += std::to_string(u);
      const int n_opt = uni(1, 4);
      int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
      for (int k = 0; k < n_opt; ++k) {
        BitOption o;
        o.bits = uni(2, 8);
        o.cost = q * uni(0, 10);
        o.error = dyadic ? uni(0, 8) / 4.0 : std::uniform_real_distribution<double>(0, 10)(rng);
        if (with_caps && uni(0, 3) == 0) o.cap = q * uni(0, 10);
        units[u].options.push_back(o);
        lo = std::min(lo, o.cost);
        hi = std::max(hi, o.cost);
      }
      if (with_caps && uni(0, 1) == 1) units[u].cap = q * uni(0, 10);
      min_sum += lo;
      max_sum += hi;
    }
    // From below the cheapest allocation to above the dearest, not always a multiple of q.
    int64_t budget = std::uniform_int_distribution<int64_t>(min_sum - 3 * q, max_sum + 3 * q)(rng);
    if (uni(0, 1) == 1) budget += uni(0, static_cast<int>(q) - 1);
    budget = std::max<int64_t>(budget, 0);

    SCOPED_TRACE("seed " + std::to_string(seed) + ", budget " + std::to_string(budget));
    const auto expected = brute_force(units, budget);
    if (!expected) {
      EXPECT_THROW(spikefm::allocate_bits(units, budget), spikefm::Error);
      bool cap_empty = false;
      for (const auto& unit : units) {
        bool any = false;
        for (const auto& o : unit.options) {
          any = any || ((unit.cap < 0 || o.cost <= unit.cap) && (o.cap < 0 || o.cost <= o.cap));
        }
        cap_empty = cap_empty || !any;
      }
      ++(cap_empty ? capped_out : infeasible);
      continue;
    }
    ++feasible;
    const auto got = spikefm::allocate_bits(units, budget);
    ASSERT_EQ(got.choice.size(), units.size());
    for (size_t u = 0; u < units.size(); ++u) {
      ASSERT_GE(got.choice[u], 0);
      ASSERT_LT(got.choice[u], static_cast<int>(units[u].options.size()));
      const BitOption& o = units[u].options[got.choice[u]];
      if (units[u].cap >= 0) EXPECT_LE(o.cost, units[u].cap);
      if (o.cap >= 0) EXPECT_LE(o.cost, o.cap);
    }
    EXPECT_LE(got.cost, budget);
    EXPECT_EQ(got.cost, total_cost(units, got.choice));
    EXPECT_EQ(got.error, fold_error(units, got.choice));
    EXPECT_EQ(got.error, expected->error);  // exact: same optimum
    EXPECT_EQ(got.cost, expected->cost);    // ties towards lower cost
    if (dyadic) {
      EXPECT_EQ(got.choice, expected->choice);  // then lexicographic (exact sums)
    }
  }
  // The generator must exercise every branch.
  EXPECT_GT(feasible, 1000);
  EXPECT_GT(infeasible, 50);
  EXPECT_GT(capped_out, 10);
}

TEST(BitAllocation, EmptyUnitListIsAnError) {
  EXPECT_TRUE(contains(message_of({}, 100), "no units")) << message_of({}, 100);
}

TEST(BitAllocation, UnitWithoutOptionsIsNamed) {
  auto units = two_layers();
  units[1].options.clear();
  const std::string m = message_of(units, 100000);
  EXPECT_TRUE(contains(m, "unit 1") && contains(m, "fc2") && contains(m, "no options")) << m;
}

TEST(BitAllocation, NegativeCostNamesUnitAndOption) {
  auto units = two_layers();
  units[0].options[2].cost = -5;
  const std::string m = message_of(units, 100000);
  EXPECT_TRUE(contains(m, "fc1") && contains(m, "option 2") && contains(m, "-5")) << m;
}

TEST(BitAllocation, NonFiniteOrNegativeErrorIsRejected) {
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(), -0.25}) {
    auto units = two_layers();
    units[1].options[0].error = bad;
    const std::string m = message_of(units, 100000);
    EXPECT_TRUE(contains(m, "fc2") && contains(m, "option 0") && contains(m, "error must be"))
        << m;
  }
}

TEST(BitAllocation, NegativeBudgetIsRejected) {
  EXPECT_TRUE(contains(message_of(two_layers(), -1), "budget must be >= 0"));
}

TEST(BitAllocation, InfeasibleBudgetStatesTheMinimum) {
  // Cheapest: both layers at 2 bits, 2000 + 4000 = 6000.
  const std::string m = message_of(two_layers(), 5999);
  EXPECT_TRUE(contains(m, "minimum feasible budget 6000")) << m;
  EXPECT_NO_THROW(spikefm::allocate_bits(two_layers(), 6000));
}

TEST(BitAllocation, CapLeavingNoOptionNamesUnitAndSmallestCost) {
  auto units = two_layers();
  units[1].cap = 3999;  // fc2's cheapest is 4000 bits
  const std::string m = message_of(units, 100000);
  EXPECT_TRUE(contains(m, "fc2") && contains(m, "smallest cost 4000") && contains(m, "cap 3999"))
      << m;
}

TEST(BitAllocation, TooFineCostsAskForCoarserOnesInsteadOfApproximating) {
  // gcd 1 and 3e8 reachable cost steps: 2 x (3e8 + 1) cells is beyond the exact DP's limit.
  std::vector<AllocationUnit> units = {
      {"a", {{8, 1, 0.0}, {2, 0, 1.0}}, -1},
      {"b", {{8, 300'000'000, 0.0}, {2, 0, 1.0}}, -1},
  };
  const std::string m = message_of(units, 300'000'001);
  EXPECT_TRUE(contains(m, "coarser")) << m;
}

TEST(BitAllocation, LargeCommonQuantumKeepsTheTableSmall) {
  // Costs in the 1e12 range sharing a gcd of 1e9: only a handful of DP columns.
  const int64_t g = 1'000'000'000;
  std::vector<AllocationUnit> units = {
      {"a", {{8, 8000 * g, 0.0}, {4, 4000 * g, 1.0}}, -1},
      {"b", {{8, 8000 * g, 0.0}, {4, 4000 * g, 2.0}}, -1},
  };
  auto a = spikefm::allocate_bits(units, 12000 * g);
  EXPECT_EQ(a.choice, (std::vector<int>{1, 0}));
  EXPECT_EQ(a.cost, 12000 * g);
}

TEST(BitAllocation, LayerSizedInstanceBeatsEveryUniformWidth) {
  // 200 layers of 1024 x m weights (m in [32, 120]) at 2/3/4/8 bits with a 16-bit scale per 128
  // weights: cost = w * bits + w / 8, between ~7e4 and ~1e6 bits, all multiples of 128.
  // Error = sensitivity x 4^-bits (quantization MSE shrinks 4x per bit).
  std::mt19937 rng(42);
  const int widths[] = {2, 3, 4, 8};
  std::vector<AllocationUnit> units(200);
  for (size_t u = 0; u < units.size(); ++u) {
    const int64_t w = 1024 * std::uniform_int_distribution<int64_t>(32, 120)(rng);
    const double sensitivity = std::exp(std::uniform_real_distribution<double>(-3, 3)(rng));
    units[u].name = "layer" + std::to_string(u);
    for (int b : widths) {
      units[u].options.push_back({b, w * b + w / 8, sensitivity * std::pow(4.0, -b)});
    }
  }
  auto uniform_cost = [&](size_t k) {
    int64_t c = 0;
    for (const auto& unit : units) c += unit.options[k].cost;
    return c;
  };
  // An average of ~4.5 bits: 2/3/4-bit uniform allocations fit, 8-bit does not.
  const int64_t budget = (uniform_cost(2) + uniform_cost(2) / 8);
  const auto a = spikefm::allocate_bits(units, budget);
  ASSERT_EQ(a.choice.size(), units.size());
  EXPECT_LE(a.cost, budget);
  EXPECT_EQ(a.cost, total_cost(units, a.choice));
  int fitting = 0;
  for (size_t k = 0; k < 4; ++k) {
    if (uniform_cost(k) > budget) continue;
    ++fitting;
    const std::vector<int> uniform(units.size(), static_cast<int>(k));
    EXPECT_LE(a.error, fold_error(units, uniform)) << widths[k] << "-bit uniform";
  }
  EXPECT_EQ(fitting, 3);
  // Mixed precision must actually help here: strictly better than uniform 4 bits.
  EXPECT_LT(a.error, fold_error(units, std::vector<int>(units.size(), 2)));
}
