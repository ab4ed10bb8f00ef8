// Tests of the hardware-preset loader (neuromorphic_hw/hw_spec.h).
//
// The shipped presets are checked against the constants published in their papers (Davies et al. 2018
// for Loihi, Merolla et al. 2014 for TrueNorth, Horowitz ISSCC 2014 for the 45 nm table): an independent
// reference, not the loader's own output. Each bad-file test edits one thing of a valid preset and checks
// that the error names the key and the rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "neuromorphic_hw/hw_spec.h"
#include "tests/test_tmp.h"

namespace {

using spikefm::hw::HwSpec;
using spikefm::hw::list_hw_presets;
using spikefm::hw::load_hw_spec;
using spikefm::hw::parse_hw_spec;
using spikefm::hw::resolve_hw_preset;
using spikefm::test::error_of;
using spikefm::test::slurp;
using spikefm::test::spit;
using spikefm::test::TempDir;

const std::filesystem::path kPresets = SPIKEFM_HW_PRESETS_DIR;

std::string preset_text(const std::string& name) {
  std::string text = slurp(kPresets / (name + ".toml"));
  EXPECT_FALSE(text.empty()) << "preset " << name << " not found in " << kPresets;
  return text;
}

HwSpec load_preset(const std::string& name) { return load_hw_spec(kPresets / (name + ".toml")); }

// The [begin, end) of the line `key = ...` inside [section] (end includes the newline); fails the test
// and returns nullopt when there is none.
std::optional<std::pair<size_t, size_t>> entry_line(const std::string& text, const std::string& section,
                                                    const std::string& key) {
  const size_t sec = text.find("[" + section + "]\n");
  if (sec == std::string::npos) {
    ADD_FAILURE() << "no [" << section << "] in the preset";
    return std::nullopt;
  }
  const size_t next_sec = text.find("\n[", sec + 1);
  const size_t at = text.find("\n" + key + " = ", sec);
  if (at == std::string::npos || at >= next_sec) {
    ADD_FAILURE() << "no " << section << "." << key << " in the preset";
    return std::nullopt;
  }
  const size_t end = text.find('\n', at + 1);
  return std::make_pair(at + 1, end + 1);
}

// `text` with the line of section.key replaced by `line` (dropped when `line` is empty).
std::string with_line(std::string text, const std::string& section, const std::string& key, const std::string& line) {
  if (auto r = entry_line(text, section, key)) text.replace(r->first, r->second - r->first, line.empty() ? "" : line + "\n");
  return text;
}

// `text` with `from` replaced by `to` inside the line of section.key.
std::string in_entry(std::string text, const std::string& section, const std::string& key, const std::string& from,
                     const std::string& to) {
  if (auto r = entry_line(text, section, key)) {
    const size_t at = text.find(from, r->first);
    if (at == std::string::npos || at + from.size() > r->second)
      ADD_FAILURE() << "no \"" << from << "\" in " << section << "." << key;
    else
      text.replace(at, from.size(), to);
  }
  return text;
}

// `text` with the value and unit of entry section.key rewritten (`value = 100, unit = "fJ"`); bits and
// source kept.
std::string with_value(std::string text, const std::string& section, const std::string& key,
                       const std::string& value_and_unit) {
  if (auto r = entry_line(text, section, key)) {
    const size_t open = text.find("{ ", r->first) + 2;
    size_t close = text.find(", bits", open);
    if (close == std::string::npos || close > r->second) close = text.find(", source", open);
    text.replace(open, close - open, value_and_unit);
  }
  return text;
}

// The message of the error parse_hw_spec throws on `text` ("" when it throws none).
std::string parse_error(const std::string& text) {
  return error_of([&] { parse_hw_spec(text, "test.toml"); });
}

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value->c_str(), 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Changes the working directory for one scope.
class ScopedCwd {
 public:
  explicit ScopedCwd(const std::filesystem::path& dir) : old_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~ScopedCwd() { std::filesystem::current_path(old_); }

 private:
  std::filesystem::path old_;
};

// ---- the presets carry the published constants ---------------------------------------------------------

TEST(HwSpecPresets, LoihiCarriesDaviesFigures) {
  const HwSpec s = load_preset("loihi");
  EXPECT_EQ(s.name, "loihi");
  EXPECT_EQ(s.path, kPresets / "loihi.toml");
  // Davies et al. 2018: 128 cores of 1024 compartments and 2 Mb SRAM.
  EXPECT_EQ(s.cores, 128);
  EXPECT_EQ(s.mesh_cols, 16);
  EXPECT_EQ(s.mesh_rows, 8);
  EXPECT_EQ(s.neurons_per_core, 1024);
  EXPECT_EQ(s.synapse_sram_bytes, 262144);  // 2 Mib
  // Davies et al. 2018, energy table.
  EXPECT_DOUBLE_EQ(s.synop_pj, 23.6);
  EXPECT_TRUE(s.synop_all_in);
  EXPECT_DOUBLE_EQ(s.neuron_update_pj, 52.0);
  EXPECT_TRUE(s.neuron_update_all_in);
  EXPECT_DOUBLE_EQ(s.spike_local_pj, 1.7);
  EXPECT_DOUBLE_EQ(s.hop_ew_pj, 3.0);
  EXPECT_DOUBLE_EQ(s.hop_ns_pj, 4.0);
  EXPECT_DOUBLE_EQ(s.membrane_read_pj, 0.0);
  EXPECT_DOUBLE_EQ(s.membrane_write_pj, 0.0);
  EXPECT_DOUBLE_EQ(s.entries.at("energy.synaptic_update").value, 120.0);
  EXPECT_DOUBLE_EQ(s.entries.at("energy.neuron_update_learning").value, 81.0);
  // Horowitz 2014 (45 nm) where Loihi publishes nothing.
  EXPECT_DOUBLE_EQ(s.sram_read_word_pj, 20.0);
  EXPECT_EQ(s.sram_word_bits, 64);
  EXPECT_DOUBLE_EQ(s.dense_op_pj, 3.7);
  EXPECT_DOUBLE_EQ(s.dense_mac_pj, 0.3);
  EXPECT_DOUBLE_EQ(s.dram_byte_pj, 1300.0 * 8 / 64);
  EXPECT_DOUBLE_EQ(s.mult8_pj, 0.2);
  EXPECT_DOUBLE_EQ(s.add32_pj, 0.1);
  EXPECT_DOUBLE_EQ(s.formula_e_mac_pj, 4.6);
  EXPECT_DOUBLE_EQ(s.formula_e_ac_pj, 0.9);
  // Assumed.
  EXPECT_DOUBLE_EQ(s.clock_hz, 1e9);
  EXPECT_DOUBLE_EQ(s.static_w_per_core, 0.3e-3);
  EXPECT_DOUBLE_EQ(s.synop_cycles, 1.0);
  EXPECT_DOUBLE_EQ(s.neuron_update_cycles, 1.0);
  EXPECT_DOUBLE_EQ(s.packet_cycles, 1.0);
  EXPECT_DOUBLE_EQ(s.hop_cycles, 1.0);
  EXPECT_DOUBLE_EQ(s.dense_op_cycles, 1.0);
  EXPECT_EQ(s.dense_lanes, 16);
  EXPECT_DOUBLE_EQ(s.min_step_s, 0.0);
  EXPECT_EQ(s.mac_units, 1024);
  EXPECT_DOUBLE_EQ(s.mac_clock_hz, 1e9);
  EXPECT_DOUBLE_EQ(s.mac_static_w, 38.4e-3);
  // Entries keep what was written.
  const auto& synop = s.entries.at("energy.synop");
  EXPECT_DOUBLE_EQ(synop.value, 23.6);
  EXPECT_EQ(synop.unit, "pJ");
  EXPECT_NE(synop.source.find("Davies"), std::string::npos);
  EXPECT_DOUBLE_EQ(s.entries.at("chip.synapse_sram").value, 2.0);
  EXPECT_EQ(s.entries.at("chip.synapse_sram").unit, "Mib");
  EXPECT_DOUBLE_EQ(s.entries.at("energy.dram_read").value, 1.3);
  EXPECT_EQ(s.entries.at("energy.dram_read").unit, "nJ");
  EXPECT_NE(s.entries.at("energy.sram_read").source.find("Horowitz"), std::string::npos);
}

TEST(HwSpecPresets, TruenorthCarriesMerollaFigures) {
  const HwSpec s = load_preset("truenorth");
  EXPECT_EQ(s.name, "truenorth");
  // Merolla et al. 2014: 4096 cores in a 64 x 64 mesh, 256 neurons, a 256 x 256 crossbar per core.
  EXPECT_EQ(s.cores, 4096);
  EXPECT_EQ(s.mesh_cols, 64);
  EXPECT_EQ(s.mesh_rows, 64);
  EXPECT_EQ(s.neurons_per_core, 256);
  EXPECT_EQ(s.synapse_sram_bytes, 256 * 256 / 8);
  EXPECT_EQ(s.sram_word_bits, 64);
  // ~26 pJ per synaptic event, all-in; ~2.3 pJ per hop; the 1 kHz tick.
  EXPECT_DOUBLE_EQ(s.synop_pj, 26.0);
  EXPECT_TRUE(s.synop_all_in);
  EXPECT_TRUE(s.neuron_update_all_in);
  EXPECT_DOUBLE_EQ(s.hop_ew_pj, 2.3);
  EXPECT_DOUBLE_EQ(s.hop_ns_pj, 2.3);
  EXPECT_DOUBLE_EQ(s.min_step_s, 1e-3);
  // Everything else per event is inside the all-in figure.
  EXPECT_DOUBLE_EQ(s.sram_read_word_pj, 20.0);  // for the MAC array; the SNN's read is in the all-in synop
  EXPECT_DOUBLE_EQ(s.neuron_update_pj, 0.0);
  EXPECT_DOUBLE_EQ(s.membrane_read_pj, 0.0);
  EXPECT_DOUBLE_EQ(s.membrane_write_pj, 0.0);
  EXPECT_DOUBLE_EQ(s.spike_local_pj, 0.0);
  EXPECT_DOUBLE_EQ(s.static_w_per_core, 0.0);
  EXPECT_DOUBLE_EQ(s.mac_static_w, 0.0);
  // Horowitz 2014 (45 nm) and assumed.
  EXPECT_DOUBLE_EQ(s.dense_op_pj, 3.7);
  EXPECT_DOUBLE_EQ(s.dense_mac_pj, 0.3);
  EXPECT_DOUBLE_EQ(s.dram_byte_pj, 1300.0 * 8 / 64);
  EXPECT_DOUBLE_EQ(s.mult8_pj, 0.2);
  EXPECT_DOUBLE_EQ(s.add32_pj, 0.1);
  EXPECT_DOUBLE_EQ(s.clock_hz, 65.536e6);
  EXPECT_EQ(s.dense_lanes, 16);
  EXPECT_EQ(s.mac_units, 1024);
  EXPECT_DOUBLE_EQ(s.mac_clock_hz, 1e9);
  EXPECT_DOUBLE_EQ(s.formula_e_mac_pj, 4.6);
  EXPECT_DOUBLE_EQ(s.formula_e_ac_pj, 0.9);
  EXPECT_EQ(s.entries.at("chip.synapse_sram").unit, "Kib");
  EXPECT_NE(s.entries.at("energy.synop").source.find("Merolla"), std::string::npos);
}

TEST(HwSpecPresets, Cmos45CarriesHorowitzTable) {
  const HwSpec s = load_preset("cmos45");
  EXPECT_EQ(s.name, "cmos45");
  // Horowitz ISSCC 2014, 45 nm: value and unit of every [table] row (memory reads per 64 bits).
  const std::vector<std::tuple<std::string, double, std::string>> table = {
      {"add_int8", 0.03, "pJ"},   {"add_int32", 0.1, "pJ"},     {"mult_int8", 0.2, "pJ"},
      {"mult_int32", 3.1, "pJ"},  {"add_fp16", 0.4, "pJ"},      {"mult_fp16", 1.1, "pJ"},
      {"add_fp32", 0.9, "pJ"},    {"mult_fp32", 3.7, "pJ"},     {"sram_read_8kb", 10, "pJ"},
      {"sram_read_32kb", 20, "pJ"}, {"sram_read_1mb", 100, "pJ"}, {"dram_read_low", 1.3, "nJ"},
      {"dram_read_high", 2.6, "nJ"}};
  for (const auto& [key, value, unit] : table) {
    ASSERT_TRUE(s.entries.count("table." + key)) << key;
    EXPECT_DOUBLE_EQ(s.entries.at("table." + key).value, value) << key;
    EXPECT_EQ(s.entries.at("table." + key).unit, unit) << key;
  }
  EXPECT_EQ(s.entries.size(), 7u + 11u + 7u + 5u + 2u + table.size());  // chip, energy, timing, mac, formula
  // Priced from that table.
  EXPECT_DOUBLE_EQ(s.synop_pj, 0.1);  // int32 add
  EXPECT_FALSE(s.synop_all_in);
  EXPECT_FALSE(s.neuron_update_all_in);
  EXPECT_DOUBLE_EQ(s.sram_read_word_pj, 20.0);  // 32 KB bank, 64 bits
  EXPECT_EQ(s.sram_word_bits, 64);
  EXPECT_DOUBLE_EQ(s.membrane_read_pj, 10.0);  // 8 KB bank
  EXPECT_DOUBLE_EQ(s.membrane_write_pj, 10.0);
  EXPECT_DOUBLE_EQ(s.neuron_update_pj, 0.2);
  EXPECT_DOUBLE_EQ(s.dense_op_pj, 3.7);
  EXPECT_DOUBLE_EQ(s.dense_mac_pj, 0.3);
  EXPECT_DOUBLE_EQ(s.dram_byte_pj, 1300.0 * 8 / 64);
  EXPECT_DOUBLE_EQ(s.mult8_pj, 0.2);
  EXPECT_DOUBLE_EQ(s.add32_pj, 0.1);
  EXPECT_DOUBLE_EQ(s.formula_e_mac_pj, 4.6);
  EXPECT_DOUBLE_EQ(s.formula_e_ac_pj, 0.9);
  // Assumed chip.
  EXPECT_EQ(s.cores, 128);
  EXPECT_EQ(s.mesh_cols * s.mesh_rows, 128);
  EXPECT_EQ(s.neurons_per_core, 1024);
  EXPECT_EQ(s.synapse_sram_bytes, 32 * 1024);
  EXPECT_DOUBLE_EQ(s.clock_hz, 500e6);
  EXPECT_DOUBLE_EQ(s.static_w_per_core, 0.1e-3);
  EXPECT_DOUBLE_EQ(s.spike_local_pj, 1.0);
  EXPECT_DOUBLE_EQ(s.hop_ew_pj, 3.0);
  EXPECT_DOUBLE_EQ(s.hop_ns_pj, 3.0);
  EXPECT_EQ(s.mac_units, 1024);
  EXPECT_DOUBLE_EQ(s.mac_clock_hz, 500e6);
  EXPECT_DOUBLE_EQ(s.mac_static_w, 12.8e-3);
}

// The MAC-array baseline is charged the same static power as the powered SNN chip in every preset.
TEST(HwSpecPresets, MacArrayStaticPowerMatchesTheChip) {
  for (const std::string name : {"loihi", "truenorth", "cmos45"}) {
    const HwSpec s = load_preset(name);
    EXPECT_NEAR(s.mac_static_w, s.cores * s.static_w_per_core, 1e-15) << name;
  }
}

// Every figure that is not a paper's says why it was chosen.
TEST(HwSpecPresets, EveryEntryCitesOrSaysAssumed) {
  for (const std::string name : {"loihi", "truenorth", "cmos45"}) {
    const HwSpec s = load_preset(name);
    for (const auto& [key, e] : s.entries) {
      const std::string& src = e.source;
      const bool cited = src.find("Davies") != std::string::npos || src.find("Merolla") != std::string::npos ||
                         src.find("Horowitz") != std::string::npos || src.find("assumed") != std::string::npos ||
                         src.find("included in") != std::string::npos;
      EXPECT_TRUE(cited) << name << " " << key << ": " << src;
    }
  }
}

// ---- unit conversion ----------------------------------------------------------------------------------

TEST(HwSpecUnits, EnergiesConvertToPicojoules) {
  const std::string base = preset_text("cmos45");
  EXPECT_DOUBLE_EQ(parse_hw_spec(with_value(base, "energy", "synop", "value = 100, unit = \"fJ\""), "t").synop_pj, 0.1);
  EXPECT_DOUBLE_EQ(parse_hw_spec(with_value(base, "energy", "hop_ew", "value = 0.003, unit = \"nJ\""), "t").hop_ew_pj,
                   3.0);
  // dram_read prices `bits` bits: per byte = value * 8 / bits.
  const HwSpec wide = parse_hw_spec(in_entry(base, "energy", "dram_read", "bits = 64", "bits = 512"), "t");
  EXPECT_DOUBLE_EQ(wide.dram_byte_pj, 1300.0 * 8 / 512);
  // The entry keeps the value as written.
  const HwSpec fj = parse_hw_spec(with_value(base, "energy", "synop", "value = 100, unit = \"fJ\""), "t");
  EXPECT_DOUBLE_EQ(fj.entries.at("energy.synop").value, 100.0);
  EXPECT_EQ(fj.entries.at("energy.synop").unit, "fJ");
}

TEST(HwSpecUnits, SizesConvertToBytes) {
  const std::string base = preset_text("cmos45");
  auto sram = [&](const std::string& v) {
    return parse_hw_spec(with_value(base, "chip", "synapse_sram", v), "t").synapse_sram_bytes;
  };
  EXPECT_EQ(sram("value = 4096, unit = \"bytes\""), 4096);
  EXPECT_EQ(sram("value = 32, unit = \"KiB\""), 32768);
  EXPECT_EQ(sram("value = 2, unit = \"MiB\""), 2 * 1048576);
  EXPECT_EQ(sram("value = 64, unit = \"Kib\""), 8192);   // b = bits
  EXPECT_EQ(sram("value = 2, unit = \"Mib\""), 262144);
  EXPECT_EQ(sram("value = 0.5, unit = \"KiB\""), 512);  // whole bytes after conversion: fine
}

TEST(HwSpecUnits, PowersClocksAndTimesConvertToSI) {
  const std::string base = preset_text("cmos45");
  auto parse = [&](const std::string& section, const std::string& key, const std::string& v) {
    return parse_hw_spec(with_value(base, section, key, v), "t");
  };
  EXPECT_DOUBLE_EQ(parse("chip", "static_power_per_core", "value = 0.3, unit = \"mW\"").static_w_per_core, 0.3e-3);
  EXPECT_DOUBLE_EQ(parse("chip", "static_power_per_core", "value = 250, unit = \"uW\"").static_w_per_core, 250e-6);
  EXPECT_DOUBLE_EQ(parse("mac_array", "static_power", "value = 2, unit = \"W\"").mac_static_w, 2.0);
  EXPECT_DOUBLE_EQ(parse("chip", "clock", "value = 1.2, unit = \"GHz\"").clock_hz, 1.2e9);
  EXPECT_DOUBLE_EQ(parse("chip", "clock", "value = 200, unit = \"MHz\"").clock_hz, 200e6);
  EXPECT_DOUBLE_EQ(parse("chip", "clock", "value = 32, unit = \"kHz\"").clock_hz, 32e3);
  EXPECT_DOUBLE_EQ(parse("mac_array", "clock", "value = 5e8, unit = \"Hz\"").mac_clock_hz, 5e8);
  EXPECT_DOUBLE_EQ(parse("timing", "min_step", "value = 1, unit = \"ms\"").min_step_s, 1e-3);
  EXPECT_DOUBLE_EQ(parse("timing", "min_step", "value = 20, unit = \"us\"").min_step_s, 20e-6);
  EXPECT_DOUBLE_EQ(parse("timing", "min_step", "value = 500, unit = \"ns\"").min_step_s, 500e-9);
}

// ---- bad presets: the error names the key and the rule ------------------------------------------------

TEST(HwSpecErrors, ValidPresetTextParses) {
  for (const std::string name : {"loihi", "truenorth", "cmos45"}) EXPECT_EQ(parse_error(preset_text(name)), "") << name;
}

TEST(HwSpecErrors, MissingKeyIsNamed) {
  const std::string msg = parse_error(with_line(preset_text("loihi"), "energy", "synop", ""));
  EXPECT_NE(msg.find("test.toml: energy.synop"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(HwSpecErrors, MissingSectionIsNamed) {
  std::string text = preset_text("loihi");
  text.erase(text.find("[formula]"));  // the last section
  const std::string msg = parse_error(text);
  EXPECT_NE(msg.find("missing section [formula]"), std::string::npos) << msg;
}

TEST(HwSpecErrors, NegativeEnergy) {
  const std::string msg = parse_error(with_value(preset_text("loihi"), "energy", "synop", "value = -1, unit = \"pJ\""));
  EXPECT_NE(msg.find("test.toml: energy.synop: value must be >= 0 (got -1)"), std::string::npos) << msg;
}

TEST(HwSpecErrors, NegativeCyclesAndPower) {
  const std::string base = preset_text("loihi");
  std::string msg = parse_error(with_value(base, "timing", "hop", "value = -2, unit = \"cycles\""));
  EXPECT_NE(msg.find("timing.hop: value must be >= 0"), std::string::npos) << msg;
  msg = parse_error(with_value(base, "mac_array", "static_power", "value = -1, unit = \"mW\""));
  EXPECT_NE(msg.find("mac_array.static_power: value must be >= 0 (got -1 mW)"), std::string::npos) << msg;
}

TEST(HwSpecErrors, ZeroCores) {
  const std::string msg = parse_error(with_value(preset_text("loihi"), "chip", "cores", "value = 0, unit = \"cores\""));
  EXPECT_NE(msg.find("chip.cores: value must be > 0 (got 0)"), std::string::npos) << msg;
}

TEST(HwSpecErrors, ZeroSizesAndClocks) {
  const std::string base = preset_text("loihi");
  for (const auto& [section, key, v] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"chip", "neurons_per_core", "value = 0, unit = \"neurons\""},
           {"chip", "synapse_sram", "value = 0, unit = \"KiB\""},
           {"chip", "clock", "value = 0, unit = \"GHz\""},
           {"timing", "dense_lanes", "value = 0, unit = \"lanes\""},
           {"mac_array", "units", "value = 0, unit = \"MACs/cycle\""},
           {"mac_array", "clock", "value = 0, unit = \"Hz\""}}) {
    const std::string msg = parse_error(with_value(base, section, key, v));
    EXPECT_NE(msg.find(section + "." + key + ": value must be > 0"), std::string::npos) << msg;
  }
  const std::string msg = parse_error(in_entry(base, "energy", "sram_read", "bits = 64", "bits = 0"));
  EXPECT_NE(msg.find("energy.sram_read: bits must be > 0"), std::string::npos) << msg;
}

TEST(HwSpecErrors, NonIntegerCores) {
  const std::string msg = parse_error(with_value(preset_text("loihi"), "chip", "cores", "value = 2.5, unit = \"cores\""));
  EXPECT_NE(msg.find("chip.cores: value must be a whole number of cores (got 2.5)"), std::string::npos) << msg;
}

TEST(HwSpecErrors, NonIntegerBytesAfterConversion) {
  const std::string msg =
      parse_error(with_value(preset_text("loihi"), "chip", "synapse_sram", "value = 0.001, unit = \"KiB\""));
  EXPECT_NE(msg.find("chip.synapse_sram: value must be a whole number of bytes (got 0.001 KiB = 1.024 bytes)"),
            std::string::npos)
      << msg;
}

TEST(HwSpecErrors, UnknownUnit) {
  const std::string base = preset_text("loihi");
  std::string msg = parse_error(in_entry(base, "energy", "synop", "unit = \"pJ\"", "unit = \"pF\""));
  EXPECT_NE(msg.find("energy.synop: unit \"pF\" is not one of pJ, fJ, nJ"), std::string::npos) << msg;
  // A unit of another dimension is as wrong as a made-up one.
  msg = parse_error(in_entry(base, "chip", "clock", "unit = \"GHz\"", "unit = \"pJ\""));
  EXPECT_NE(msg.find("chip.clock: unit \"pJ\" is not one of Hz, kHz, MHz, GHz"), std::string::npos) << msg;
}

TEST(HwSpecErrors, MissingOrEmptySource) {
  const std::string base = preset_text("loihi");
  const std::string line = R"(synop = { value = 23.6, unit = "pJ" })";
  std::string msg = parse_error(with_line(base, "energy", "synop", line));
  EXPECT_NE(msg.find("energy.synop: missing source"), std::string::npos) << msg;
  msg = parse_error(with_line(base, "energy", "synop", R"(synop = { value = 23.6, unit = "pJ", source = " " })"));
  EXPECT_NE(msg.find("energy.synop: source must not be empty"), std::string::npos) << msg;
}

TEST(HwSpecErrors, MissingValueOrUnitOrBits) {
  const std::string base = preset_text("loihi");
  std::string msg = parse_error(with_line(base, "energy", "synop", R"(synop = { unit = "pJ", source = "x" })"));
  EXPECT_NE(msg.find("energy.synop: missing value"), std::string::npos) << msg;
  msg = parse_error(with_line(base, "energy", "synop", R"(synop = { value = 1, source = "x" })"));
  EXPECT_NE(msg.find("energy.synop: missing unit"), std::string::npos) << msg;
  msg = parse_error(in_entry(base, "energy", "dram_read", "bits = 64, ", ""));
  EXPECT_NE(msg.find("energy.dram_read: missing bits"), std::string::npos) << msg;
}

TEST(HwSpecErrors, UnknownKeyIsATypo) {
  std::string text = preset_text("loihi");
  text = with_line(text, "energy", "hop_ew",
                   R"(hop_eww = { value = 3.0, unit = "pJ", source = "Davies et al. 2018: east-west hop" })");
  const std::string msg = parse_error(text);
  EXPECT_NE(msg.find("test.toml: energy.hop_eww: unknown key in [energy]"), std::string::npos) << msg;
}

TEST(HwSpecErrors, UnknownSectionAndField) {
  const std::string base = preset_text("loihi");
  std::string msg = parse_error(base + "\n[enrgy]\nx = 1\n");
  EXPECT_NE(msg.find("unknown section [enrgy]"), std::string::npos) << msg;
  msg = parse_error(in_entry(base, "energy", "synop", "source = ", "sorce = "));
  EXPECT_NE(msg.find("energy.synop: unknown field \"sorce\""), std::string::npos) << msg;
}

TEST(HwSpecErrors, NotAnEntry) {
  const std::string msg = parse_error(with_line(preset_text("loihi"), "energy", "synop", "synop = 23.6"));
  EXPECT_NE(msg.find("energy.synop: must be an entry"), std::string::npos) << msg;
}

TEST(HwSpecErrors, ValueMustBeANumberAndFlagABoolean) {
  const std::string base = preset_text("loihi");
  std::string msg = parse_error(with_value(base, "energy", "synop", "value = \"23.6\", unit = \"pJ\""));
  EXPECT_NE(msg.find("energy.synop: value must be a number (got string)"), std::string::npos) << msg;
  msg = parse_error(with_line(base, "energy", "synop_all_in", "synop_all_in = \"yes\""));
  EXPECT_NE(msg.find("energy.synop_all_in: must be true or false"), std::string::npos) << msg;
}

TEST(HwSpecErrors, MeshTooSmallForTheCores) {
  const std::string msg = parse_error(with_value(preset_text("loihi"), "chip", "mesh_rows", "value = 4, unit = \"cores\""));
  EXPECT_NE(msg.find("test.toml: chip.mesh_cols"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16 x 4 has fewer nodes than chip.cores = 128"), std::string::npos) << msg;
}

TEST(HwSpecErrors, SyntaxErrorNamesTheLine) {
  std::string text = preset_text("loihi");
  const size_t at = text.find("synop_all_in = true");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 19, "synop_all_in = tru");
  const size_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
  const std::string msg = parse_error(text);
  EXPECT_NE(msg.find("test.toml: TOML syntax error at line " + std::to_string(line) + ", column"), std::string::npos)
      << msg;
}

TEST(HwSpecErrors, NanAndInfinityAreRefused) {
  const std::string base = preset_text("loihi");
  for (const std::string v : {"nan", "inf", "-inf"}) {
    const std::string msg = parse_error(with_value(base, "energy", "synop", "value = " + v + ", unit = \"pJ\""));
    EXPECT_NE(msg.find("energy.synop: value must be a finite number (got " + v + ")"), std::string::npos) << msg;
  }
}

TEST(HwSpecErrors, TableEntriesAreEnergies) {
  const std::string msg = parse_error(in_entry(preset_text("cmos45"), "table", "add_int8", "unit = \"pJ\"", "unit = \"W\""));
  EXPECT_NE(msg.find("table.add_int8: unit \"W\" is not one of pJ, fJ, nJ"), std::string::npos) << msg;
}

// ---- files, listing and resolution ---------------------------------------------------------------------

TEST(HwSpecFiles, MissingFileSaysHowToListPresets) {
  TempDir dir;
  const std::string msg = error_of([&] { load_hw_spec(dir / "nope.toml"); });
  EXPECT_NE(msg.find("nope.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("spikefm energy --hw-list"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { load_hw_spec(dir.path()); }).find("is a directory"), std::string::npos);
}

TEST(HwSpecFiles, ErrorsOfALoadedFileNameItsPath) {
  TempDir dir;
  const auto path = dir / "bad.toml";
  spit(path, with_value(preset_text("loihi"), "energy", "synop", "value = -1, unit = \"pJ\""));
  const std::string msg = error_of([&] { load_hw_spec(path); });
  EXPECT_NE(msg.find(path.string() + ": energy.synop"), std::string::npos) << msg;
}

TEST(HwSpecFiles, ListsTheThreePresetsSorted) {
  const auto presets = list_hw_presets(kPresets);
  ASSERT_EQ(presets.size(), 3u);
  EXPECT_EQ(presets[0].filename(), "cmos45.toml");
  EXPECT_EQ(presets[1].filename(), "loihi.toml");
  EXPECT_EQ(presets[2].filename(), "truenorth.toml");
}

TEST(HwSpecFiles, ListsOnlyTomlFiles) {
  TempDir dir;
  spit(dir / "b.toml", "");
  spit(dir / "a.toml", "");
  spit(dir / "notes.txt", "");
  std::filesystem::create_directories(dir / "sub.toml");
  const auto presets = list_hw_presets(dir.path());
  ASSERT_EQ(presets.size(), 2u);
  EXPECT_EQ(presets[0].filename(), "a.toml");
  EXPECT_EQ(presets[1].filename(), "b.toml");
  EXPECT_NE(error_of([&] { list_hw_presets(dir / "missing"); }).find("no such directory"), std::string::npos);
}

TEST(HwSpecFiles, DefaultDirIsEnvThenSourceTree) {
  TempDir dir;
  {
    ScopedEnv env("SPIKEFM_HW_DIR", dir.path().string());
    EXPECT_EQ(spikefm::hw::default_presets_dir(), dir.path());
  }
  ScopedEnv empty("SPIKEFM_HW_DIR", std::string());
  EXPECT_TRUE(std::filesystem::equivalent(spikefm::hw::default_presets_dir(), kPresets));
}

TEST(HwSpecFiles, ResolvesNamesAndPaths) {
  ScopedEnv env("SPIKEFM_HW_DIR", std::nullopt);
  EXPECT_TRUE(std::filesystem::equivalent(resolve_hw_preset("loihi"), kPresets / "loihi.toml"));
  const std::string path = (kPresets / "cmos45.toml").string();
  EXPECT_EQ(resolve_hw_preset(path), path);
  TempDir dir;
  spit(dir / "mine.toml", preset_text("cmos45"));
  EXPECT_EQ(resolve_hw_preset((dir / "mine.toml").string()), dir / "mine.toml");
  {
    // An existing file wins over the preset of the same name.
    spit(dir / "loihi", preset_text("cmos45"));
    ScopedCwd cwd(dir.path());
    EXPECT_EQ(resolve_hw_preset("loihi"), "loihi");
  }
  // $SPIKEFM_HW_DIR is searched by name.
  ScopedEnv custom("SPIKEFM_HW_DIR", dir.path().string());
  EXPECT_EQ(resolve_hw_preset("mine"), dir / "mine.toml");
}

TEST(HwSpecFiles, UnknownNameListsTheAvailablePresets) {
  ScopedEnv env("SPIKEFM_HW_DIR", std::nullopt);
  const std::string msg = error_of([] { resolve_hw_preset("loihi3"); });
  EXPECT_NE(msg.find("hardware preset \"loihi3\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("available presets: cmos45, loihi, truenorth"), std::string::npos) << msg;
}

}  // namespace
