// Mapping: which core holds which part of each layer (activity.h: mapping units), within the
// capacity of every core (hw_spec.h: neurons_per_core, synapse_sram_bytes), and the spike traffic
// that placement causes on the 2-D mesh.
//
// Strategies
//   greedy         layers in graph order, units in order, filling core 0, 1, 2, ... (row-major on the
//                  mesh); a unit goes to the next core when either the neurons or the synapse bytes of
//                  the current core would overflow. Layers share a core when they fit.
//   traffic_aware  the same partition of units into cores, then the cores are *placed* on the mesh to
//                  minimise Σ packets × hops: start from a boustrophedon (snake) order, which keeps
//                  consecutive cores adjacent, then improve by pairwise swaps while the cost drops.
// When the chip is too small: units that do not fit with their weights are placed again where only
// their neurons fit, with their weights off-chip (streamed from DRAM on every synaptic op:
// offchip_weight_bytes); units whose neurons do not fit at all are counted in missing_neurons and the
// mapping says fits = false. Capacity is never exceeded silently.
//
// Traffic (spike_traffic): a layer's events are spread over its cores in proportion to the units each
// holds. Every event is sent once to every core that holds a unit of each target layer (each holds a
// slice of the output channels and needs every input spike): a packet. A packet to the source's own
// core is a local delivery; otherwise it also crosses |dx| east-west and |dy| north-south links
// (dimension-order routing). Every packet is delivered once (spike_local) at its destination.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neuromorphic_hw/activity.h"
#include "neuromorphic_hw/hw_spec.h"

namespace spikefm::hw {

enum class MappingStrategy { greedy, traffic_aware };
const char* mapping_strategy_name(MappingStrategy s);
MappingStrategy mapping_strategy_from_name(const std::string& name);  // throws on unknown names

struct CorePart {
  int core = 0;           // index into Mapping::cores
  int64_t units = 0;      // units of the layer on this core
  bool offchip = false;   // their weights live in DRAM
};

struct CoreUse {
  int x = 0, y = 0;           // position on the mesh
  int64_t neurons = 0;        // neuron-state words used
  int64_t sram_bytes = 0;     // synapse bytes used
};

struct Mapping {
  MappingStrategy strategy = MappingStrategy::greedy;
  std::vector<CoreUse> cores;                 // every core of the chip (cores.size() == spec.cores)
  std::vector<std::vector<CorePart>> layers;  // per layer of ActivityCounts (empty for dense layers)
  int cores_used = 0;
  int64_t missing_neurons = 0;        // neuron-state words that found no core
  int64_t offchip_weight_bytes = 0;   // weights that did not fit in synapse SRAM
  bool fits() const { return missing_neurons == 0 && offchip_weight_bytes == 0; }
  double neuron_utilization = 0;      // used / capacity, over the cores used
  double sram_utilization = 0;        // used / capacity, over the cores used
};

Mapping map_layers(const ActivityCounts& counts, const HwSpec& spec, MappingStrategy strategy);

// The placement a linear layer gets when it starts on fresh cores (what map_layers' greedy fill does):
// `out_channels` units of `rows` neuron-state words each (rows = the token rows its neurons hold, the
// graph's rows_cap), whole channels per core, on the fewest cores its neurons need. Its weights stay
// on those cores exactly when every channel's storage (codes + scales) is at most max_unit_bytes:
// then a core holds ceil(out / cores) channels' weights in its synapse SRAM; one byte more per channel
// and the greedy fill needs an extra core. This is the memory-hierarchy budget of `spikefm compress
// --hw` (weights of a layer must fit the SRAM of the cores it maps to). Throws when one channel's rows
// exceed a core's neurons (no placement at all).
struct LinearPlacement {
  int64_t cores = 0;            // cores the layer's neurons occupy
  int64_t units_per_core = 0;   // ceil(out_channels / cores): the most channels one of them must hold
  int64_t max_unit_bytes = 0;   // synapse_sram_bytes / units_per_core, rounded down
};
LinearPlacement place_linear(const HwSpec& spec, int64_t out_channels, int64_t rows);

// Spike traffic of one source layer (totals over the counted runs).
struct LayerTraffic {
  double packets = 0;   // deliveries (local + remote)
  double remote = 0;    // packets that left their core
  double hops_ew = 0;   // link crossings east-west
  double hops_ns = 0;   // link crossings north-south
};
std::vector<LayerTraffic> spike_traffic(const ActivityCounts& counts, const Mapping& mapping);

}  // namespace spikefm::hw
