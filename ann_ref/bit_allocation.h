// Bit allocation as an optimisation (issue: mixed-precision quantization): every unit (a layer, a
// block, a channel group) picks one option (a bit width with its storage cost and its measured
// error); minimise the total error under a total storage budget — a multiple-choice knapsack,
// solved exactly by dynamic programming over the cost.
//
//   minimise Σ_u error[u][choice_u]   subject to   Σ_u cost[u][choice_u] ≤ budget,
//                                                   cost[u][choice_u] ≤ unit_cap[u]  (optional)
//                                                   cost[u][choice_u] ≤ option_cap[u][choice_u]  (optional)
// unit_cap is the memory-hierarchy constraint: a layer's weights must fit the SRAM of the cores it
// maps to. option_cap is the same where the placement depends on the option (a layer with per-group
// scales holds one accumulator per group, so its neurons spread over more cores with more SRAM).
// Costs are integers (bits, or bytes) so the DP is exact. It runs over the budget left after
// every unit takes its cheapest option, in steps of the gcd of the options' extra costs, so a table of
// whole-layer bit counts stays small (a table over 2e8 cells is refused, never approximated).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spikefm {

struct BitOption {
  int bits = 8;
  int64_t cost = 0;   // storage of the unit at this width (e.g. bits incl. scales), >= 0
  double error = 0;   // sensitivity-weighted error of the unit at this width, finite, >= 0
  int64_t cap = -1;   // max cost allowed for this option alone (-1: none; the unit's cap holds too)
};

struct AllocationUnit {
  std::string name;
  std::vector<BitOption> options;  // at least one
  int64_t cap = -1;                // max cost allowed for this unit (-1: none)
};

struct Allocation {
  std::vector<int> choice;  // index into each unit's options
  int64_t cost = 0;
  double error = 0;
};

// Exact optimum; ties broken towards lower cost, then lower unit index choices. Throws spikefm::Error
// when no choice fits (naming the minimum feasible budget, or the unit whose cap no option meets).
Allocation allocate_bits(const std::vector<AllocationUnit>& units, int64_t budget);

}  // namespace spikefm
