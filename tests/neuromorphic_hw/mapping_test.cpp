// Mapping of layers onto cores and the spike traffic it causes, against placements and traffic worked
// out by hand (each case's comment shows the arithmetic), plus invariants on random networks.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "neuromorphic_hw/activity.h"
#include "neuromorphic_hw/hw_spec.h"
#include "neuromorphic_hw/mapping.h"

namespace spikefm::hw {
namespace {

HwSpec make_spec(int cores, int cols, int rows, int64_t neurons_per_core, int64_t sram_bytes) {
  HwSpec s;
  s.name = "test";
  s.cores = cores;
  s.mesh_cols = cols;
  s.mesh_rows = rows;
  s.neurons_per_core = neurons_per_core;
  s.synapse_sram_bytes = sram_bytes;
  return s;
}

LayerCounts neuron_layer(int64_t units, int64_t neurons_per_unit, int64_t events = 0, std::vector<int> targets = {}) {
  LayerCounts l;
  l.name = "neuron";
  l.kind = snn::OpKind::neuron;
  l.units = units;
  l.neurons_per_unit = neurons_per_unit;
  l.snn.events = events;
  l.spike_targets = std::move(targets);
  return l;
}

LayerCounts linear_layer(int64_t units, int64_t synapses_per_unit, int weight_bits = 8) {
  LayerCounts l;
  l.name = "linear";
  l.kind = snn::OpKind::linear;
  l.units = units;
  l.synapses_per_unit = synapses_per_unit;
  l.weight_bits = weight_bits;
  return l;
}

void expect_parts(const std::vector<CorePart>& got, const std::vector<CorePart>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].core, want[i].core) << what << " part " << i;
    EXPECT_EQ(got[i].units, want[i].units) << what << " part " << i;
    EXPECT_EQ(got[i].offchip, want[i].offchip) << what << " part " << i;
  }
}

double total_hops(const std::vector<LayerTraffic>& traffic) {
  double sum = 0;
  for (const LayerTraffic& t : traffic) sum += t.hops_ew + t.hops_ns;
  return sum;
}

// A random network: neuron and linear layers, spikes from each neuron layer to 1-2 later layers.
ActivityCounts random_network(std::mt19937& rng, int n_layers) {
  std::uniform_int_distribution<int64_t> units(0, 40), npu(1, 30), spu(1, 300), events(0, 10000);
  std::uniform_int_distribution<int> bits(0, 2), coin(0, 3);
  ActivityCounts c;
  for (int l = 0; l < n_layers; ++l) {
    const int64_t u = coin(rng) == 0 ? 0 : units(rng);
    if (l % 2 == 0) {
      LayerCounts n = neuron_layer(u, npu(rng), events(rng));
      for (int t = l + 1; t < std::min(n_layers, l + 3); ++t) n.spike_targets.push_back(t);
      c.layers.push_back(n);
    } else {
      c.layers.push_back(linear_layer(u, spu(rng), bits(rng) == 0 ? 4 : 8));
    }
  }
  return c;
}

// Every core within capacity, core usage = the parts on it, every unit placed or missing.
void check_invariants(const ActivityCounts& c, const HwSpec& spec, const Mapping& m) {
  ASSERT_EQ(m.cores.size(), static_cast<size_t>(spec.cores));
  ASSERT_EQ(m.layers.size(), c.layers.size());
  std::vector<int64_t> neurons(m.cores.size(), 0), bytes(m.cores.size(), 0);
  int64_t missing_units_neurons = 0, offchip = 0;
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const LayerCounts& lc = c.layers[l];
    int64_t placed = 0;
    for (const CorePart& p : m.layers[l]) {
      ASSERT_GE(p.core, 0);
      ASSERT_LT(p.core, spec.cores);
      EXPECT_GT(p.units, 0);
      placed += p.units;
      neurons[p.core] += p.units * lc.neurons_per_unit;
      if (p.offchip) {
        offchip += p.units * lc.synapse_bytes_per_unit();
      } else {
        bytes[p.core] += p.units * lc.synapse_bytes_per_unit();
      }
    }
    EXPECT_LE(placed, lc.units);
    missing_units_neurons += (lc.units - placed) * lc.neurons_per_unit;
  }
  EXPECT_EQ(missing_units_neurons, m.missing_neurons);
  EXPECT_EQ(offchip, m.offchip_weight_bytes);
  std::vector<char> pos_seen(static_cast<size_t>(spec.cores), 0);
  for (size_t i = 0; i < m.cores.size(); ++i) {
    EXPECT_LE(m.cores[i].neurons, spec.neurons_per_core) << "core " << i;
    EXPECT_LE(m.cores[i].sram_bytes, spec.synapse_sram_bytes) << "core " << i;
    EXPECT_EQ(m.cores[i].neurons, neurons[i]) << "core " << i;
    EXPECT_EQ(m.cores[i].sram_bytes, bytes[i]) << "core " << i;
    // positions: a permutation of the mesh positions 0..cores-1
    const int p = m.cores[i].y * spec.mesh_cols + m.cores[i].x;
    ASSERT_GE(m.cores[i].x, 0);
    ASSERT_LT(m.cores[i].x, spec.mesh_cols);
    ASSERT_GE(p, 0);
    ASSERT_LT(p, spec.cores);
    EXPECT_FALSE(pos_seen[p]) << "two cores at position " << p;
    pos_seen[p] = 1;
  }
}

// 3 layers on 2x2 cores of 10 neurons and 100 bytes:
//   L0 linear 3 units × 80 weights × 4 bits = 40 B: core 0 takes 100/40 = 2 units, core 1 the third.
//   L1 neuron 4 units × 4 neurons: core 1 has 10 free neurons -> 2 units, core 2 the other 2.
//   L2 linear 2 units × 60 B: core 2 has 100 B -> 1 unit, then 40 B left < 60 -> core 3 takes 1.
TEST(MappingGreedy, TinyNetworkPlacementByHand) {
  const HwSpec spec = make_spec(4, 2, 2, 10, 100);
  ActivityCounts c;
  c.layers = {linear_layer(3, 80, 4), neuron_layer(4, 4), linear_layer(2, 60)};
  const Mapping m = map_layers(c, spec, MappingStrategy::greedy);
  expect_parts(m.layers[0], {{0, 2, false}, {1, 1, false}}, "L0");
  expect_parts(m.layers[1], {{1, 2, false}, {2, 2, false}}, "L1");
  expect_parts(m.layers[2], {{2, 1, false}, {3, 1, false}}, "L2");
  const int64_t want_neurons[] = {0, 8, 8, 0}, want_bytes[] = {80, 40, 60, 60};
  const int want_x[] = {0, 1, 0, 1}, want_y[] = {0, 0, 1, 1};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(m.cores[i].neurons, want_neurons[i]) << i;
    EXPECT_EQ(m.cores[i].sram_bytes, want_bytes[i]) << i;
    EXPECT_EQ(m.cores[i].x, want_x[i]) << i;
    EXPECT_EQ(m.cores[i].y, want_y[i]) << i;
  }
  EXPECT_EQ(m.cores_used, 4);
  EXPECT_TRUE(m.fits());
  EXPECT_EQ(m.missing_neurons, 0);
  EXPECT_EQ(m.offchip_weight_bytes, 0);
  EXPECT_DOUBLE_EQ(m.neuron_utilization, 16.0 / 40.0);
  EXPECT_DOUBLE_EQ(m.sram_utilization, 240.0 / 400.0);
  EXPECT_EQ(m.strategy, MappingStrategy::greedy);
}

// Layers with units = 0 (dense-unit layers) get no placement and use no core.
TEST(MappingGreedy, DenseLayersAreSkipped) {
  const HwSpec spec = make_spec(4, 2, 2, 10, 100);
  ActivityCounts c;
  LayerCounts dense;
  dense.kind = snn::OpKind::layer_norm;
  c.layers = {dense, neuron_layer(2, 5), dense};
  const Mapping m = map_layers(c, spec, MappingStrategy::greedy);
  EXPECT_TRUE(m.layers[0].empty());
  EXPECT_TRUE(m.layers[2].empty());
  expect_parts(m.layers[1], {{0, 2, false}}, "L1");
  EXPECT_EQ(m.cores_used, 1);
  EXPECT_DOUBLE_EQ(m.neuron_utilization, 1.0);
  EXPECT_DOUBLE_EQ(m.sram_utilization, 0.0);
}

TEST(MappingGreedy, EmptyNetworkUsesNoCore) {
  const Mapping m = map_layers(ActivityCounts{}, make_spec(4, 2, 2, 10, 100), MappingStrategy::traffic_aware);
  EXPECT_EQ(m.cores.size(), 4u);
  EXPECT_EQ(m.cores_used, 0);
  EXPECT_EQ(m.neuron_utilization, 0);
  EXPECT_EQ(m.sram_utilization, 0);
  EXPECT_TRUE(m.fits());
}

// 2 cores (2x1) of 10 neurons and 100 bytes:
//   L0 neuron 3 × 20 neurons: one unit exceeds a core -> missing 60, no placement.
//   L1 linear 2 × 150 B: one unit exceeds the SRAM -> on core 0 (0 neurons), weights off-chip: 300 B.
//   L2 neuron 5 × 3: core 0 takes 3 (9 neurons), core 1 takes 2 (6).
//   L3 linear 4 × 30 B: core 1 takes 3 (90 B); the cores ran out -> 1 unit where neurons fit (core 0),
//      weights off-chip: 30 B.
//   L4 neuron 3 × 2: cores ran out -> core 0 has 1 free neuron (0 units), core 1 has 4 (2 units, no
//      weights so on-chip); 1 unit missing: 2 neurons.
TEST(MappingGreedy, ChipTooSmallOffchipAndMissingByHand) {
  const HwSpec spec = make_spec(2, 2, 1, 10, 100);
  ActivityCounts c;
  c.layers = {neuron_layer(3, 20), linear_layer(2, 150), neuron_layer(5, 3), linear_layer(4, 30), neuron_layer(3, 2)};
  for (MappingStrategy s : {MappingStrategy::greedy, MappingStrategy::traffic_aware}) {
    const Mapping m = map_layers(c, spec, s);
    EXPECT_TRUE(m.layers[0].empty());
    expect_parts(m.layers[1], {{0, 2, true}}, "L1");
    expect_parts(m.layers[2], {{0, 3, false}, {1, 2, false}}, "L2");
    expect_parts(m.layers[3], {{1, 3, false}, {0, 1, true}}, "L3");
    expect_parts(m.layers[4], {{1, 2, false}}, "L4");
    EXPECT_EQ(m.missing_neurons, 60 + 2);
    EXPECT_EQ(m.offchip_weight_bytes, 300 + 30);
    EXPECT_FALSE(m.fits());
    EXPECT_EQ(m.cores[0].neurons, 9);
    EXPECT_EQ(m.cores[0].sram_bytes, 0);
    EXPECT_EQ(m.cores[1].neurons, 10);
    EXPECT_EQ(m.cores[1].sram_bytes, 90);
    EXPECT_EQ(m.cores_used, 2);
    check_invariants(c, spec, m);
  }
}

TEST(MappingGreedy, CapacityNeverExceededOnRandomNetworks) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    const int cores = 1 + static_cast<int>(rng() % 24);
    const int cols = 1 + static_cast<int>(rng() % 6);
    const int rows = (cores + cols - 1) / cols;
    const HwSpec spec = make_spec(cores, cols, rows, 20 + rng() % 200, 100 + rng() % 2000);
    const ActivityCounts c = random_network(rng, 2 + static_cast<int>(rng() % 12));
    for (MappingStrategy s : {MappingStrategy::greedy, MappingStrategy::traffic_aware}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " " + mapping_strategy_name(s));
      const Mapping m = map_layers(c, spec, s);
      check_invariants(c, spec, m);
      EXPECT_EQ(m.fits(), m.missing_neurons == 0 && m.offchip_weight_bytes == 0);
    }
  }
}

// 2x2 mesh, 2 neurons and 4 bytes per core. L0 neuron 4 × 1: cores 0, 1 (2 units each).
// L1 linear 2 × 4 B: core 1 (no neurons needed, 4 B) and core 2. L0 sends E = 100 events to L1:
//   core 0 part (share 1/2 = 50): to core 1 (1,0): 1 ew hop; to core 2 (0,1): 1 ns hop.
//   core 1 part (50): to core 1 local; to core 2: dx 1, dy 1.
//   packets 4 × 50 = 200, remote 150, hops_ew 50 + 50 = 100, hops_ns 50 + 50 = 100.
TEST(MappingTraffic, TwoLayersOnTwoByTwoMeshByHand) {
  const HwSpec spec = make_spec(4, 2, 2, 2, 4);
  ActivityCounts c;
  c.layers = {neuron_layer(4, 1, 100, {1}), linear_layer(2, 4)};
  const Mapping m = map_layers(c, spec, MappingStrategy::greedy);
  expect_parts(m.layers[0], {{0, 2, false}, {1, 2, false}}, "L0");
  expect_parts(m.layers[1], {{1, 1, false}, {2, 1, false}}, "L1");
  const std::vector<LayerTraffic> t = spike_traffic(c, m);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_DOUBLE_EQ(t[0].packets, 200);
  EXPECT_DOUBLE_EQ(t[0].remote, 150);
  EXPECT_DOUBLE_EQ(t[0].hops_ew, 100);
  EXPECT_DOUBLE_EQ(t[0].hops_ns, 100);
  // a linear layer sends no spikes
  EXPECT_EQ(t[1].packets, 0);
  EXPECT_EQ(t[1].remote, 0);
  EXPECT_EQ(t[1].hops_ew, 0);
  EXPECT_EQ(t[1].hops_ns, 0);
}

// A layer whose units are all missing has no core: it neither sends nor receives packets.
TEST(MappingTraffic, MissingLayerCarriesNoTraffic) {
  const HwSpec spec = make_spec(2, 2, 1, 4, 100);
  ActivityCounts c;
  c.layers = {neuron_layer(2, 2, 50, {1}), neuron_layer(1, 8, 70, {0})};  // L1: 8 neurons > 4
  const Mapping m = map_layers(c, spec, MappingStrategy::greedy);
  EXPECT_TRUE(m.layers[1].empty());
  EXPECT_EQ(m.missing_neurons, 8);
  const std::vector<LayerTraffic> t = spike_traffic(c, m);
  EXPECT_EQ(t[0].packets, 0);
  EXPECT_EQ(t[1].packets, 0);
}

TEST(MappingTraffic, MismatchedMappingThrows) {
  ActivityCounts c;
  c.layers = {neuron_layer(1, 1)};
  EXPECT_THROW(spike_traffic(c, Mapping{}), Error);
}

// A chain of 16 one-core neuron layers on an 8x2 mesh, each sending E = 10 events to the next.
// Row-major wraps from (7,0) to (0,1): 14 links of 1 hop + 1 of 8 hops = 22 hops per event;
// the snake order keeps every link at 1 hop: 15 hops per event, the minimum for 15 remote links.
TEST(MappingTrafficAware, ChainOnWideMeshBeatsRowMajor) {
  const HwSpec spec = make_spec(16, 8, 2, 4, 100);
  ActivityCounts c;
  for (int l = 0; l < 16; ++l) c.layers.push_back(neuron_layer(1, 4, 10, l + 1 < 16 ? std::vector<int>{l + 1} : std::vector<int>{}));
  const Mapping g = map_layers(c, spec, MappingStrategy::greedy);
  const Mapping a = map_layers(c, spec, MappingStrategy::traffic_aware);
  EXPECT_EQ(a.strategy, MappingStrategy::traffic_aware);
  EXPECT_DOUBLE_EQ(total_hops(spike_traffic(c, g)), 22 * 10);
  EXPECT_DOUBLE_EQ(total_hops(spike_traffic(c, a)), 15 * 10);
  // the same partition, only the positions differ
  for (size_t l = 0; l < c.layers.size(); ++l) expect_parts(a.layers[l], g.layers[l], "layer " + std::to_string(l));
  check_invariants(c, spec, a);
}

TEST(MappingTrafficAware, NeverWorseThanGreedyOnRandomNetworks) {
  for (uint32_t seed = 100; seed < 160; ++seed) {
    std::mt19937 rng(seed);
    const int cols = 2 + static_cast<int>(rng() % 7);
    const int cores = cols * (1 + static_cast<int>(rng() % 6)) - static_cast<int>(rng() % cols);
    const int rows = (cores + cols - 1) / cols;
    const HwSpec spec = make_spec(cores, cols, rows, 20 + rng() % 100, 200 + rng() % 1000);
    const ActivityCounts c = random_network(rng, 4 + static_cast<int>(rng() % 14));
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Mapping g = map_layers(c, spec, MappingStrategy::greedy);
    const Mapping a = map_layers(c, spec, MappingStrategy::traffic_aware);
    check_invariants(c, spec, a);
    EXPECT_LE(total_hops(spike_traffic(c, a)), total_hops(spike_traffic(c, g)));
    // packets and remote packets do not depend on positions
    const std::vector<LayerTraffic> tg = spike_traffic(c, g), ta = spike_traffic(c, a);
    for (size_t l = 0; l < tg.size(); ++l) {
      EXPECT_DOUBLE_EQ(ta[l].packets, tg[l].packets);
      EXPECT_DOUBLE_EQ(ta[l].remote, tg[l].remote);
    }
  }
}

// Past 256 used cores the search only tries nearby positions; it must stay valid and never worse.
TEST(MappingTrafficAware, LargeChipWindowedSearchNeverWorse) {
  const HwSpec spec = make_spec(1024, 32, 32, 64, 512);
  std::mt19937 rng(7);
  ActivityCounts c;
  for (int l = 0; l < 40; ++l) {
    if (l % 2 == 0) {
      c.layers.push_back(neuron_layer(16 + rng() % 32, 16, 1000 + rng() % 1000, {l + 1}));
    } else {
      c.layers.push_back(linear_layer(16 + rng() % 64, 256 + rng() % 512));
    }
  }
  const Mapping g = map_layers(c, spec, MappingStrategy::greedy);
  const Mapping a = map_layers(c, spec, MappingStrategy::traffic_aware);
  ASSERT_GT(g.cores_used, 256);
  check_invariants(c, spec, a);
  EXPECT_LE(total_hops(spike_traffic(c, a)), total_hops(spike_traffic(c, g)));
}

TEST(MappingStrategyNames, RoundTrip) {
  for (MappingStrategy s : {MappingStrategy::greedy, MappingStrategy::traffic_aware}) {
    EXPECT_EQ(mapping_strategy_from_name(mapping_strategy_name(s)), s);
  }
  EXPECT_STREQ(mapping_strategy_name(MappingStrategy::greedy), "greedy");
  EXPECT_STREQ(mapping_strategy_name(MappingStrategy::traffic_aware), "traffic-aware");
}

TEST(MappingStrategyNames, UnknownNameThrowsListingValidNames) {
  try {
    mapping_strategy_from_name("row-major");
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("row-major"), std::string::npos) << msg;
    EXPECT_NE(msg.find("greedy"), std::string::npos) << msg;
    EXPECT_NE(msg.find("traffic-aware"), std::string::npos) << msg;
  }
}

TEST(MappingGreedy, InvalidInputThrows) {
  ActivityCounts c;
  c.layers = {neuron_layer(1, 1, 5, {3})};  // target out of range
  EXPECT_THROW(map_layers(c, make_spec(2, 2, 1, 10, 10), MappingStrategy::greedy), Error);
  c.layers = {neuron_layer(1, 1)};
  EXPECT_THROW(map_layers(c, make_spec(5, 2, 2, 10, 10), MappingStrategy::greedy), Error);  // 2x2 < 5
}

// place_linear's promise, checked against the greedy mapper itself: a linear layer alone on a chip of
// place_linear().cores cores keeps every weight on-chip exactly when each channel's storage (weights +
// scales, whole bytes) is at most max_unit_bytes. Random layers, chips, widths and scale overheads.
TEST(PlaceLinear, WeightsFitTheLayersCoresExactlyUpToMaxUnitBytes) {
  std::mt19937_64 rng(41);
  int fits_seen = 0, overflows_seen = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t npc = 16 + static_cast<int64_t>(rng() % 1024);
    const int64_t sram = 64 + static_cast<int64_t>(rng() % 3000);
    const int64_t rows = 1 + static_cast<int64_t>(rng() % npc);
    const int64_t out = 1 + static_cast<int64_t>(rng() % 300);
    const int64_t in = 1 + static_cast<int64_t>(rng() % 300);
    const int bits = std::vector<int>{2, 4, 8}[rng() % 3];
    const int64_t scale_bits = 16 * static_cast<int64_t>(rng() % 12);
    const LinearPlacement p = place_linear(make_spec(1, 1, 1, npc, sram), out, rows);
    ASSERT_GE(p.cores, 1);
    ASSERT_EQ(p.units_per_core, (out + p.cores - 1) / p.cores);
    // fewest cores: one fewer could not hold the neurons of whole channels
    EXPECT_GT(out, (p.cores - 1) * (npc / rows)) << "trial " << trial;
    EXPECT_LE(p.units_per_core * rows, npc);

    ActivityCounts c;
    c.samples = 1;
    LayerCounts l = linear_layer(out, in, bits);
    l.neurons_per_unit = rows;
    l.scale_bits_per_unit = scale_bits;
    c.layers.push_back(l);
    const int cores = static_cast<int>(p.cores);
    const Mapping m = map_layers(c, make_spec(cores, cores, 1, npc, sram), MappingStrategy::greedy);
    const bool within = l.synapse_bytes_per_unit() <= p.max_unit_bytes;
    EXPECT_EQ(m.fits(), within) << "trial " << trial << ": " << out << " channels x " << rows << " rows, "
                                << l.synapse_bytes_per_unit() << " B/channel vs cap " << p.max_unit_bytes;
    (within ? fits_seen : overflows_seen)++;
  }
  EXPECT_GT(fits_seen, 40);  // both sides of the boundary are exercised
  EXPECT_GT(overflows_seen, 40);
}

TEST(PlaceLinear, RefusesChannelsLargerThanACoreAndEmptyLayers) {
  EXPECT_THROW(place_linear(make_spec(1, 1, 1, 10, 100), 4, 11), Error);
  EXPECT_THROW(place_linear(make_spec(1, 1, 1, 10, 100), 0, 2), Error);
  // 64 channels of 28 rows on 256-neuron cores: 9 per core -> 8 cores, 8 channels each, 8 KiB / 8
  const LinearPlacement p = place_linear(make_spec(1, 1, 1, 256, 8192), 64, 28);
  EXPECT_EQ(p.cores, 8);
  EXPECT_EQ(p.units_per_core, 8);
  EXPECT_EQ(p.max_unit_bytes, 1024);
}

}  // namespace
}  // namespace spikefm::hw
