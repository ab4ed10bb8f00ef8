// Random test inputs shared by the test suites (reproducible from a seed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace spikefm::test {

// `count` draws of N(0, sigma²) from a 32-bit Mersenne Twister seeded with `seed`.
inline std::vector<float> randn(size_t count, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace spikefm::test
