// HwSpec: a modeled neuromorphic accelerator (and the MAC-array baseline built in the same technology),
// loaded from a TOML preset (neuromorphic_hw/presets/*.toml; schema in docs/formats.md).
//
// This is the *spec* of STYLE.md rule 6: what the chip is and what each action costs. The counts of a
// run live in activity.h, the priced result in energy_model.h — three types, never mixed.
//
// Every price is per action, in picojoules, after unit conversion (the TOML entry says its unit:
// fJ, pJ or nJ; powers in W, mW or uW). Every entry carries the source it was taken from.
//
// | key                      | meaning (one action)                                              |
// |--------------------------|-------------------------------------------------------------------|
// | synop_pj                 | one synaptic operation: accumulate one weight into a neuron input |
// | sram_read_word_pj        | read one SRAM word of sram_word_bits (weights; MAC-array operands)  |
// | membrane_read_pj         | read one neuron-state word (membrane, accumulator, spike count)    |
// | membrane_write_pj        | write one neuron-state word                                        |
// | neuron_update_pj         | update one neuron (compartment) in one timestep                    |
// | spike_local_pj           | deliver one spike packet to a core (every destination core)       |
// | hop_ew_pj, hop_ns_pj     | one packet crossing one mesh link east-west / north-south          |
// | dense_op_pj              | dense unit: one add/mul/exp/div/sqrt (LayerNorm, softmax)          |
// | dense_mac_pj             | dense unit: one MAC of the non-spiking encoding layer              |
// | dram_byte_pj             | one byte read from off-chip DRAM                                   |
// | mult8_pj, add32_pj       | MAC array: int8 x int8 multiply, int32 add (one MAC = both)        |
// | formula_e_mac_pj/_e_ac_pj| the literature formula's E_MAC and E_AC                            |
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace spikefm::hw {

// One entry of the preset as written: the value in its own unit, and where it comes from.
struct SpecEntry {
  double value = 0;     // as written in the file
  std::string unit;     // as written ("pJ", "nJ", "W", "bytes", ...)
  std::string source;   // citation or "assumed: <why>"
};

struct HwSpec {
  std::string name;         // [chip] name
  std::string description;  // [chip] description
  std::filesystem::path path;

  // [chip]
  int cores = 0;                      // > 0
  int mesh_cols = 0, mesh_rows = 0;   // 2-D mesh, cores placed row-major; cols × rows >= cores
  int64_t neurons_per_core = 0;       // neuron-state words (compartments) per core, > 0
  int64_t synapse_sram_bytes = 0;     // synapse memory per core, > 0
  int sram_word_bits = 0;             // width of one synapse-SRAM read, > 0
  double clock_hz = 0;                // > 0 (asynchronous chips: the equivalent op rate)
  double static_w_per_core = 0;       // leakage + clock of one powered core, W, >= 0

  // [energy] pJ per action (>= 0), see the table above
  double synop_pj = 0;
  double sram_read_word_pj = 0;
  double membrane_read_pj = 0, membrane_write_pj = 0;
  double neuron_update_pj = 0;
  double spike_local_pj = 0;
  double hop_ew_pj = 0, hop_ns_pj = 0;
  double dense_op_pj = 0, dense_mac_pj = 0;
  double dram_byte_pj = 0;
  // Published all-in figures: the chip paper's synop price already includes the synapse-SRAM read and
  // the accumulator update (synop_all_in), its neuron-update price the state read/write
  // (neuron_update_all_in). The SNN is then not charged those memory actions a second time; the
  // MAC-array baseline still pays sram_read_word_pj for every word it reads.
  bool synop_all_in = false, neuron_update_all_in = false;

  // [timing] cycles per action on one core (>= 0); the dense unit does dense_lanes ops per cycle
  double synop_cycles = 0, neuron_update_cycles = 0, packet_cycles = 0, hop_cycles = 0;
  double dense_op_cycles = 0;
  int dense_lanes = 1;  // > 0
  double min_step_s = 0;  // a timestep never takes less (TrueNorth-class: the 1 ms tick), >= 0

  // [mac_array] the ANN baseline in the same technology: same SRAM/DRAM prices, the chip's total SRAM
  int64_t mac_units = 0;        // MACs per cycle, > 0
  double mac_clock_hz = 0;      // > 0
  double mult8_pj = 0, add32_pj = 0;
  double mac_static_w = 0;      // W, >= 0

  // [formula] the literature's one-line estimate (Horowitz 2014 fp32 figures)
  double formula_e_mac_pj = 0, formula_e_ac_pj = 0;

  // Every entry as written, keyed "section.key" (e.g. "energy.synop"), for reports and tests.
  std::map<std::string, SpecEntry> entries;

};

// Parses a preset; `origin` names the file in errors. Throws spikefm::Error naming the key and the
// rule ("energy.synop: value must be >= 0 (got -1)", "chip.cores: missing").
HwSpec parse_hw_spec(const std::string& toml_text, const std::string& origin);
HwSpec load_hw_spec(const std::filesystem::path& path);

// The presets shipped with spikefm: $SPIKEFM_HW_DIR, else the source tree's neuromorphic_hw/presets.
std::filesystem::path default_presets_dir();
std::vector<std::filesystem::path> list_hw_presets(const std::filesystem::path& dir = default_presets_dir());
// "--hw loihi" or "--hw path/to/x.toml": an existing file wins, else <name>.toml in the presets dir.
std::filesystem::path resolve_hw_preset(const std::string& name_or_path);

}  // namespace spikefm::hw
