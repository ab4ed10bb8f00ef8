// Exact multiple-choice knapsack by dynamic programming over quantised cost (see bit_allocation.h).
//
// Reduction used here (exact, and never larger than the header's units x (budget/quantum + 1)):
//   base     = Σ_u min_k cost[u][k]                      (every unit at its cheapest allowed option)
//   extra    = cost[u][k] - min_k cost[u][k]             (>= 0, what an option costs above the cheapest)
//   quantum  = gcd of all extras                         (a multiple of the gcd of all costs)
//   columns  R = min(floor((budget - base) / quantum), Σ_u max_k extra[u][k] / quantum)
// Every total cost is base + quantum * r with r an integer, so flooring the slack loses nothing.
//
// Table: g[u][r] = least error of units u..n-1 spending exactly r quanta of extra, filled from the
// last unit to the first, keeping two rows of doubles and one back-pointer per cell (the option index,
// 1 byte when a unit has <= 256 allowed options). Errors are added as e_u + g[u+1][...], i.e. the total
// is the right fold e_0 + (e_1 + (... + e_{n-1})); floating-point addition is monotone, so the DP
// minimum equals the minimum of that fold over all choices bit for bit, and Allocation::error is
// recomputed from the choices in the same order.
//
// Ties: the smallest r (lowest total cost) among equal least errors; then, walking units from the
// first, the smallest option index that keeps the optimum (strict < while scanning options in order).
// The last rule is the lexicographic minimum exactly when error sums are exact (e.g. dyadic errors);
// with rounding, two prefixes of different error can collide after the suffix is added, and the DP
// keeps only the one that was smaller before — still an optimal, deterministic answer.
#include "ann_ref/bit_allocation.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace spikefm {

namespace {

// Beyond this the back-pointer table (>= 1 byte per cell) and the O(cells x options) time stop
// being reasonable; refuse rather than approximate.
constexpr int64_t kMaxCells = 200'000'000;

constexpr const char* kWhat = "allocating bits";

std::string unit_label(const std::vector<AllocationUnit>& units, size_t u) {
  std::string s = "unit " + std::to_string(u);
  if (!units[u].name.empty()) s += " ('" + units[u].name + "')";
  return s;
}

std::string fmt_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::to_string(v);
}

// a + b for non-negative int64, or an Error naming what overflowed.
int64_t checked_add(int64_t a, int64_t b, const char* quantity) {
  int64_t s = 0;
  if (__builtin_add_overflow(a, b, &s)) {
    throw Error(kWhat, std::string("the total ") + quantity + " overflows a 64-bit integer",
                "express costs in a coarser unit (bytes or kilobytes instead of bits)");
  }
  return s;
}

struct Allowed {
  std::vector<int> index;     // original option index, ascending
  std::vector<int64_t> step;  // (cost - cheapest) / quantum, filled once quantum is known
  int64_t min_cost = 0;
};

// g rows and back-pointers; Choice is the narrowest integer type that holds an allowed-option index.
template <typename Choice>
std::vector<int> solve(const std::vector<AllocationUnit>& units, const std::vector<Allowed>& allowed,
                       int64_t columns) {
  const size_t n = units.size();
  const size_t width = static_cast<size_t>(columns) + 1;
  constexpr double kInf = std::numeric_limits<double>::infinity();

  std::vector<Choice> back(n * width);  // back: (units, columns + 1), row-major
  std::vector<double> next(width, kInf), cur(width);
  next[0] = 0.0;  // g[n][r]: no unit left, only r == 0 is reachable

  for (size_t u = n; u-- > 0;) {
    std::fill(cur.begin(), cur.end(), kInf);
    Choice* row = back.data() + u * width;
    std::fill(row, row + width, Choice{0});
    const Allowed& a = allowed[u];
    for (size_t j = 0; j < a.index.size(); ++j) {
      const double e = units[u].options[static_cast<size_t>(a.index[j])].error;
      const size_t d = static_cast<size_t>(a.step[j]);
      for (size_t r = d; r < width; ++r) {
        const double v = e + next[r - d];  // inf stays inf: unreachable remains unreachable
        if (v < cur[r]) {
          cur[r] = v;
          row[r] = static_cast<Choice>(j);
        }
      }
    }
    std::swap(cur, next);
  }
  // next is now g[0]: the least error at each exact extra spend.
  size_t best = 0;
  for (size_t r = 1; r < width; ++r) {
    if (next[r] < next[best]) best = r;  // strict: the lowest cost among equal errors
  }
  if (!std::isfinite(next[best])) {
    throw Error(kWhat, "internal error: the cheapest allocation is unreachable in the DP table",
                "report this as a bug");
  }

  std::vector<int> choice(n);
  size_t r = best;
  for (size_t u = 0; u < n; ++u) {
    const size_t j = static_cast<size_t>(back[u * width + r]);
    choice[u] = allowed[u].index[j];
    r -= static_cast<size_t>(allowed[u].step[j]);
  }
  if (r != 0) {
    throw Error(kWhat, "internal error: back-pointers do not return to zero spend",
                "report this as a bug");
  }
  return choice;
}

}  // namespace

Allocation allocate_bits(const std::vector<AllocationUnit>& units, int64_t budget) {
  if (units.empty()) {
    throw Error(kWhat, "no units were given", "pass at least one unit with its bit-width options");
  }
  if (budget < 0) {
    throw Error(kWhat, "budget must be >= 0 (got " + std::to_string(budget) + ")");
  }

  // Validate every option, then keep those within the unit's cap.
  std::vector<Allowed> allowed(units.size());
  int64_t base = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    const AllocationUnit& unit = units[u];
    if (unit.options.empty()) {
      throw Error(kWhat, unit_label(units, u) + " has no options",
                  "give every unit at least one bit-width option");
    }
    if (unit.cap < -1) {
      throw Error(kWhat,
                  unit_label(units, u) + ": cap must be >= 0 or -1 for none (got " +
                      std::to_string(unit.cap) + ")");
    }
    if (unit.options.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
      throw Error(kWhat, unit_label(units, u) + " has too many options");
    }
    int64_t smallest = std::numeric_limits<int64_t>::max();
    for (size_t k = 0; k < unit.options.size(); ++k) {
      const BitOption& o = unit.options[k];
      const std::string where = unit_label(units, u) + ", option " + std::to_string(k);
      if (o.cost < 0) {
        throw Error(kWhat, where + ": cost must be >= 0 (got " + std::to_string(o.cost) + ")");
      }
      if (!std::isfinite(o.error) || o.error < 0) {
        throw Error(kWhat,
                    where + ": error must be finite and >= 0 (got " + fmt_double(o.error) + ")",
                    "check the sensitivity measurement of this unit");
      }
      if (o.cap < -1) throw Error(kWhat, where + ": cap must be >= 0 or -1 for none (got " + std::to_string(o.cap) + ")");
      smallest = std::min(smallest, o.cost);
      if (unit.cap >= 0 && o.cost > unit.cap) continue;
      if (o.cap >= 0 && o.cost > o.cap) continue;
      allowed[u].index.push_back(static_cast<int>(k));
    }
    if (allowed[u].index.empty()) {
      std::string caps = unit.cap >= 0 ? "unit cap " + std::to_string(unit.cap) : std::string();
      for (size_t k = 0; k < unit.options.size(); ++k) {
        if (unit.options[k].cap < 0) continue;
        caps += (caps.empty() ? "" : ", ") + std::string("option ") + std::to_string(k) + ": cost " +
                std::to_string(unit.options[k].cost) + " > cap " + std::to_string(unit.options[k].cap);
      }
      throw Error(kWhat,
                  unit_label(units, u) + ": no option fits its cap (smallest cost " + std::to_string(smallest) +
                      (caps.empty() ? "" : "; " + caps) + ")",
                  "raise the cap (e.g. map the unit to more cores) or add a narrower option");
    }
    int64_t m = std::numeric_limits<int64_t>::max();
    for (int k : allowed[u].index) m = std::min(m, unit.options[static_cast<size_t>(k)].cost);
    allowed[u].min_cost = m;
    base = checked_add(base, m, "minimum cost");
  }
  if (base > budget) {
    throw Error(kWhat,
                "budget " + std::to_string(budget) + " is below the minimum feasible budget " +
                    std::to_string(base) + " (every unit at its cheapest allowed option)",
                "raise the budget to at least " + std::to_string(base) +
                    " or add cheaper options");
  }

  // Quantum: gcd of the extras over each unit's cheapest option (0 when nothing can be upgraded).
  int64_t quantum = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    for (int k : allowed[u].index) {
      quantum = std::gcd(quantum, units[u].options[static_cast<size_t>(k)].cost - allowed[u].min_cost);
    }
  }
  if (quantum == 0) quantum = 1;
  int64_t max_steps = 0;  // Σ_u max extra / quantum: spending more is impossible
  for (size_t u = 0; u < units.size(); ++u) {
    int64_t unit_max = 0;
    for (int k : allowed[u].index) {
      const int64_t s = (units[u].options[static_cast<size_t>(k)].cost - allowed[u].min_cost) / quantum;
      allowed[u].step.push_back(s);
      unit_max = std::max(unit_max, s);
    }
    max_steps = checked_add(max_steps, unit_max, "maximum cost");
  }
  const int64_t columns = std::min((budget - base) / quantum, max_steps);

  const int64_t n = static_cast<int64_t>(units.size());
  if (columns + 1 > kMaxCells / n) {
    throw Error(kWhat,
                "the exact DP table would need " + std::to_string(n) + " units x " +
                    std::to_string(columns + 1) + " cost steps (quantum " +
                    std::to_string(quantum) + "), more than " + std::to_string(kMaxCells) +
                    " cells",
                "use coarser costs: round them to a common multiple (e.g. bytes or 1 KiB blocks "
                "instead of bits) so their gcd grows");
  }

  size_t most_options = 0;
  for (const Allowed& a : allowed) most_options = std::max(most_options, a.index.size());
  std::vector<int> choice;
  if (most_options <= 256) {
    choice = solve<uint8_t>(units, allowed, columns);
  } else if (most_options <= 65536) {
    choice = solve<uint16_t>(units, allowed, columns);
  } else {
    choice = solve<uint32_t>(units, allowed, columns);
  }

  Allocation result;
  result.choice = choice;
  for (size_t u = 0; u < units.size(); ++u) {
    result.cost += units[u].options[static_cast<size_t>(choice[u])].cost;  // <= budget: no overflow
  }
  double error = 0.0;
  for (size_t u = units.size(); u-- > 0;) {  // the DP's order: e_0 + (e_1 + (... + e_{n-1}))
    error = units[u].options[static_cast<size_t>(choice[u])].error + error;
  }
  result.error = error;
  return result;
}

}  // namespace spikefm
