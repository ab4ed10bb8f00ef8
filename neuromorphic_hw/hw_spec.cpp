// Loader of the accelerator presets (hw_spec.h; schema in docs/formats.md, "Hardware presets").
//
// The rules, each violation a spikefm::Error whose what is "<origin>: <section>.<key>":
//   - sections [chip] [energy] [timing] [mac_array] [formula] are required, [table] is optional,
//     nothing else is allowed; in the first five every key must be known (typo protection).
//   - an entry is { value = <finite number>, unit = "<unit allowed for the key>", source = "<text>" };
//     energy.sram_read and energy.dram_read also carry `bits`, the word width their value is for.
//   - the value, converted to the key's canonical unit (pJ, W, Hz, s, bytes, cycles, ...), is >= 0
//     (energies, powers, cycles, times) or > 0 (counts, sizes, clocks), and a whole number where the
//     HwSpec field is an integer (2 Mib is 262144 bytes: fine; 2.5 cores: an error).
//   - chip.mesh_cols x chip.mesh_rows >= chip.cores.
// Every entry is also kept as written in HwSpec::entries["section.key"].
#include "neuromorphic_hw/hw_spec.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string_view>

#include "common/error.h"

#ifndef SPIKEFM_HW_PRESETS_DIR
#error "SPIKEFM_HW_PRESETS_DIR must be defined (neuromorphic_hw/CMakeLists.txt)"
#endif

namespace spikefm::hw {

namespace {

const std::string kSchemaDoc = "docs/formats.md, \"Hardware presets\"";

// ---- units -------------------------------------------------------------------------------------------

// A unit and its conversion to the canonical unit of its dimension: canonical = value * mul / div.
// (Division for the smaller units keeps e.g. 500 fJ -> 0.5 pJ correctly rounded.)
struct Unit {
  std::string_view name;
  double mul = 1, div = 1;
};

// Each list starts with the canonical unit, the one HwSpec stores.
constexpr Unit kEnergy[] = {{"pJ"}, {"fJ", 1, 1e3}, {"nJ", 1e3, 1}};
constexpr Unit kPower[] = {{"W"}, {"mW", 1, 1e3}, {"uW", 1, 1e6}};
constexpr Unit kFrequency[] = {{"Hz"}, {"kHz", 1e3, 1}, {"MHz", 1e6, 1}, {"GHz", 1e9, 1}};
constexpr Unit kTime[] = {{"s"}, {"ms", 1, 1e3}, {"us", 1, 1e6}, {"ns", 1, 1e9}};
// KiB/MiB are bytes, Kib/Mib bits: 2 Mib = 2 * 1024 * 1024 / 8 = 262144 bytes.
constexpr Unit kBytes[] = {{"bytes"}, {"KiB", 1024, 1}, {"MiB", 1024.0 * 1024, 1}, {"Kib", 1024.0 / 8, 1},
                           {"Mib", 1024.0 * 1024 / 8, 1}};
constexpr Unit kCores[] = {{"cores"}};
constexpr Unit kNeurons[] = {{"neurons"}};
constexpr Unit kCycles[] = {{"cycles"}};
constexpr Unit kLanes[] = {{"lanes"}};
constexpr Unit kMacs[] = {{"MACs/cycle"}};

// ---- schema ------------------------------------------------------------------------------------------

enum class Bound { non_negative, positive };
// The HwSpec field the value lands in: integer fields take only whole numbers in their range.
enum class Kind { real, int32, int64 };

struct KeyRule {
  std::string_view key;
  std::span<const Unit> units;
  Bound bound;
  Kind kind = Kind::real;
  bool required = true;
  bool has_bits = false;  // the entry also carries `bits`: the word width its value is for
};

constexpr auto kNonNeg = Bound::non_negative;
constexpr auto kPos = Bound::positive;

const KeyRule kChipRules[] = {
    {"cores", kCores, kPos, Kind::int32},
    {"mesh_cols", kCores, kPos, Kind::int32},
    {"mesh_rows", kCores, kPos, Kind::int32},
    {"neurons_per_core", kNeurons, kPos, Kind::int64},
    {"synapse_sram", kBytes, kPos, Kind::int64},
    {"clock", kFrequency, kPos},
    {"static_power_per_core", kPower, kNonNeg},
};
const KeyRule kEnergyRules[] = {
    {"synop", kEnergy, kNonNeg},
    {"sram_read", kEnergy, kNonNeg, Kind::real, true, true},
    {"membrane_read", kEnergy, kNonNeg},
    {"membrane_write", kEnergy, kNonNeg},
    {"neuron_update", kEnergy, kNonNeg},
    {"spike_local", kEnergy, kNonNeg},
    {"hop_ew", kEnergy, kNonNeg},
    {"hop_ns", kEnergy, kNonNeg},
    {"dense_op", kEnergy, kNonNeg},
    {"dense_mac", kEnergy, kNonNeg},
    {"dram_read", kEnergy, kNonNeg, Kind::real, true, true},
    // Known but not priced (on-chip learning): kept in HwSpec::entries only.
    {"synaptic_update", kEnergy, kNonNeg, Kind::real, false},
    {"neuron_update_learning", kEnergy, kNonNeg, Kind::real, false},
};
constexpr std::string_view kEnergyFlags[] = {"synop_all_in", "neuron_update_all_in"};
const KeyRule kTimingRules[] = {
    {"synop", kCycles, kNonNeg},
    {"neuron_update", kCycles, kNonNeg},
    {"packet", kCycles, kNonNeg},
    {"hop", kCycles, kNonNeg},
    {"dense_op", kCycles, kNonNeg},
    {"dense_lanes", kLanes, kPos, Kind::int32},
    {"min_step", kTime, kNonNeg},
};
const KeyRule kMacArrayRules[] = {
    {"units", kMacs, kPos, Kind::int64},
    {"clock", kFrequency, kPos},
    {"mult8", kEnergy, kNonNeg},
    {"add32", kEnergy, kNonNeg},
    {"static_power", kPower, kNonNeg},
};
const KeyRule kFormulaRules[] = {
    {"e_mac", kEnergy, kNonNeg},
    {"e_ac", kEnergy, kNonNeg},
};
constexpr std::string_view kSections[] = {"chip", "energy", "timing", "mac_array", "formula", "table"};

// ---- formatting helpers ------------------------------------------------------------------------------

// Shortest text that reads back as v ("-1", "0.001", "262144", "nan", "inf").
std::string num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string type_name(const toml::node& node) {
  std::ostringstream os;
  os << node.type();
  return os.str();
}

template <typename Names>
std::string join(const Names& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::string unit_names(std::span<const Unit> units) {
  std::string out;
  for (const Unit& u : units) out += (out.empty() ? "" : ", ") + std::string(u.name);
  return out;
}

// A number node as a double; nullopt for any other type.
std::optional<double> as_number(const toml::node& node) {
  if (const auto* i = node.as_integer()) return static_cast<double>(i->get());
  if (const auto* f = node.as_floating_point()) return f->get();
  return std::nullopt;
}

// toml++'s descriptions may quote the offending text, newline included: keep the message on one line.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n') out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
    else out += c;
  }
  return out;
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// ---- the reader --------------------------------------------------------------------------------------

// A checked entry: its value converted to the canonical unit, and its `bits` (0 when it has none).
struct Checked {
  double value = 0;
  int64_t bits = 0;
};

class PresetReader {
 public:
  PresetReader(std::string origin, HwSpec& spec) : origin_(std::move(origin)), spec_(spec) {}

  [[noreturn]] void fail(std::string_view section, std::string_view key, const std::string& why,
                         const std::string& fix) const {
    throw Error(origin_ + ": " + std::string(section) + "." + std::string(key), why, fix);
  }

  // Only the known sections; each a table.
  void check_sections(const toml::table& root) const {
    for (const auto& [k, node] : root) {
      const std::string_view name = k.str();
      if (std::find(std::begin(kSections), std::end(kSections), name) == std::end(kSections))
        throw Error(origin_ + ": " + std::string(name), "unknown section [" + std::string(name) + "]",
                    "the sections are " + join(kSections) + "; see " + kSchemaDoc);
      if (!node.is_table())
        throw Error(origin_ + ": " + std::string(name),
                    "must be a section [" + std::string(name) + "] (got " + type_name(node) + ")",
                    "write it as a [" + std::string(name) + "] table; see " + kSchemaDoc);
    }
  }

  // The section `name`; nullptr when it is optional and absent.
  const toml::table* section(const toml::table& root, std::string_view name, bool required) const {
    const toml::table* sec = root[name].as_table();
    if (!sec && required)
      throw Error(origin_ + ": " + std::string(name), "missing section [" + std::string(name) + "]",
                  "add it; see " + kSchemaDoc);
    return sec;
  }

  // Every key of `sec` is a rule's key or one of `extra` (plain strings/booleans of the section).
  void check_known_keys(const toml::table& sec, std::string_view section, std::span<const KeyRule> rules,
                        std::span<const std::string_view> extra) const {
    std::vector<std::string_view> known;
    for (const KeyRule& r : rules) known.push_back(r.key);
    known.insert(known.end(), extra.begin(), extra.end());
    for (const auto& [k, node] : sec) {
      if (std::find(known.begin(), known.end(), k.str()) == known.end())
        fail(section, k.str(), "unknown key in [" + std::string(section) + "]",
             "check the spelling; the keys of [" + std::string(section) + "] are " + join(known));
    }
  }

  // Checks and records every rule of a section; returns the converted values by key (absent optional
  // entries are left out).
  std::map<std::string, Checked, std::less<>> read_entries(const toml::table& sec, std::string_view section,
                                                           std::span<const KeyRule> rules) {
    std::map<std::string, Checked, std::less<>> out;
    for (const KeyRule& rule : rules) {
      const toml::node* node = sec.get(rule.key);
      if (!node) {
        if (rule.required)
          fail(section, rule.key, "missing",
               "add " + std::string(rule.key) + " = { value = <number>, unit = \"" +
                   std::string(rule.units.front().name) + "\", source = \"<citation or assumed: why>\" } to [" +
                   std::string(section) + "]; see " + kSchemaDoc);
        continue;
      }
      out[std::string(rule.key)] = read_entry(*node, section, rule);
    }
    return out;
  }

  // One entry: its fields, unit, value and bits checked; stored in spec.entries as written.
  Checked read_entry(const toml::node& node, std::string_view section, const KeyRule& rule) {
    const std::string_view key = rule.key;
    const std::string unit_hint = std::string(rule.units.front().name);
    const toml::table* entry = node.as_table();
    if (!entry)
      fail(section, key,
           "must be an entry { value = <number>, unit = \"" + unit_hint + "\", source = \"<text>\" } (got " +
               type_name(node) + ")",
           "write the value with its unit and source; see " + kSchemaDoc);

    // Fields: value, unit, source, and bits where the key has it; nothing else.
    for (const auto& [k, field] : *entry) {
      const std::string_view f = k.str();
      if (f != "value" && f != "unit" && f != "source" && !(rule.has_bits && f == "bits"))
        fail(section, key, "unknown field \"" + std::string(f) + "\" in the entry",
             std::string("an entry has value, unit, source") + (rule.has_bits ? " and bits" : ""));
    }

    SpecEntry written;
    // source: a non-empty citation (or "assumed: <reason>").
    const toml::node* source = entry->get("source");
    if (!source) fail(section, key, "missing source", "cite where the value comes from, or write \"assumed: <reason>\"");
    if (!source->is_string()) fail(section, key, "source must be a string (got " + type_name(*source) + ")", "quote it");
    written.source = source->as_string()->get();
    if (is_blank(written.source))
      fail(section, key, "source must not be empty", "cite where the value comes from, or write \"assumed: <reason>\"");

    // unit: one of the key's units.
    const toml::node* unit = entry->get("unit");
    if (!unit) fail(section, key, "missing unit", "add unit = one of " + unit_names(rule.units));
    if (!unit->is_string()) fail(section, key, "unit must be a string (got " + type_name(*unit) + ")", "quote it");
    written.unit = unit->as_string()->get();
    const auto u = std::find_if(rule.units.begin(), rule.units.end(),
                                [&](const Unit& x) { return x.name == written.unit; });
    if (u == rule.units.end())
      fail(section, key, "unit \"" + written.unit + "\" is not one of " + unit_names(rule.units),
           "write the value in one of those units");

    // value: a finite number within the rule once converted.
    const toml::node* value = entry->get("value");
    if (!value) fail(section, key, "missing value", "add value = <number>");
    const std::optional<double> v = as_number(*value);
    if (!v) fail(section, key, "value must be a number (got " + type_name(*value) + ")", "write a number without quotes");
    written.value = *v;
    Checked out;
    out.value = check_number(section, key, "value", *v, *u, rule.units.front().name, rule.bound, rule.kind);

    // bits: the word width the value is for, a whole number > 0.
    if (rule.has_bits) {
      const toml::node* bits = entry->get("bits");
      if (!bits) fail(section, key, "missing bits (the word width, in bits, that the value is for)", "add bits = 64");
      const std::optional<double> b = as_number(*bits);
      if (!b) fail(section, key, "bits must be a number (got " + type_name(*bits) + ")", "write e.g. bits = 64");
      out.bits = static_cast<int64_t>(check_number(section, key, "bits", *b, Unit{"bits"}, "bits", kPos, Kind::int32));
    }

    spec_.entries[std::string(section) + "." + std::string(key)] = std::move(written);
    return out;
  }

  // `written` in unit `u`, converted to `canonical` and checked against bound and kind; `field` names it
  // in the message ("value must be >= 0 (got -1)").
  double check_number(std::string_view section, std::string_view key, std::string_view field, double written,
                      const Unit& u, std::string_view canonical, Bound bound, Kind kind) const {
    const std::string f(field);
    const bool in_canonical = u.name == canonical;
    const std::string as_written = num(written) + (in_canonical ? "" : " " + std::string(u.name));
    if (!std::isfinite(written))
      fail(section, key, f + " must be a finite number (got " + as_written + ")", "write a finite number");
    const double v = written * u.mul / u.div;
    if (!std::isfinite(v))
      fail(section, key, f + " is too large (got " + as_written + ")", "write a smaller value");
    if (bound == Bound::non_negative && !(v >= 0))
      fail(section, key, f + " must be >= 0 (got " + as_written + ")", "write a value >= 0");
    if (bound == Bound::positive && !(v > 0))
      fail(section, key, f + " must be > 0 (got " + as_written + ")", "write a value > 0");
    if (kind != Kind::real) {
      const std::string converted = in_canonical ? "" : " = " + num(v) + " " + std::string(canonical);
      if (v != std::floor(v))
        fail(section, key,
             f + " must be a whole number of " + std::string(canonical) + " (got " + as_written + converted + ")",
             "write a whole number");
      // int64 fields stay where doubles are exact (2^53).
      const double max = kind == Kind::int32 ? 2147483647.0 : 9007199254740992.0;
      if (v > max)
        fail(section, key, f + " is too large (got " + as_written + converted + "; at most " + num(max) + ")",
             "write a smaller value");
    }
    return v;
  }

  // An optional boolean of the section (false when absent).
  bool read_flag(const toml::table& sec, std::string_view section, std::string_view key) const {
    const toml::node* node = sec.get(key);
    if (!node) return false;
    if (!node->is_boolean())
      fail(section, key, "must be true or false (got " + type_name(*node) + ")", "write a TOML boolean, without quotes");
    return node->as_boolean()->get();
  }

  // A string of the section; "" when absent and optional.
  std::string read_string(const toml::table& sec, std::string_view section, std::string_view key, bool required) const {
    const toml::node* node = sec.get(key);
    if (!node) {
      if (required) fail(section, key, "missing", "add " + std::string(key) + " = \"<text>\" to [" + std::string(section) + "]");
      return "";
    }
    if (!node->is_string()) fail(section, key, "must be a string (got " + type_name(*node) + ")", "quote it");
    std::string s = node->as_string()->get();
    if (required && is_blank(s)) fail(section, key, "must not be empty", "give the preset a name");
    return s;
  }

 private:
  std::string origin_;
  HwSpec& spec_;
};

}  // namespace

HwSpec parse_hw_spec(const std::string& toml_text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(toml_text), std::string_view(origin));
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw Error(origin,
                "TOML syntax error at line " + std::to_string(at.line) + ", column " + std::to_string(at.column) +
                    ": " + one_line(e.description()),
                "fix the syntax there; the schema is in " + kSchemaDoc);
  }

  HwSpec spec;
  PresetReader r(origin, spec);
  r.check_sections(root);

  // [chip]
  const toml::table& chip = *r.section(root, "chip", true);
  constexpr std::string_view chip_strings[] = {"name", "description"};
  r.check_known_keys(chip, "chip", kChipRules, chip_strings);
  spec.name = r.read_string(chip, "chip", "name", true);
  spec.description = r.read_string(chip, "chip", "description", false);
  const auto c = r.read_entries(chip, "chip", kChipRules);
  spec.cores = static_cast<int>(c.at("cores").value);
  spec.mesh_cols = static_cast<int>(c.at("mesh_cols").value);
  spec.mesh_rows = static_cast<int>(c.at("mesh_rows").value);
  spec.neurons_per_core = static_cast<int64_t>(c.at("neurons_per_core").value);
  spec.synapse_sram_bytes = static_cast<int64_t>(c.at("synapse_sram").value);
  spec.clock_hz = c.at("clock").value;
  spec.static_w_per_core = c.at("static_power_per_core").value;
  // Cores are placed one per mesh node, row-major.
  if (int64_t{spec.mesh_cols} * spec.mesh_rows < spec.cores)
    r.fail("chip", "mesh_cols",
           "the mesh chip.mesh_cols x chip.mesh_rows = " + std::to_string(spec.mesh_cols) + " x " +
               std::to_string(spec.mesh_rows) + " has fewer nodes than chip.cores = " + std::to_string(spec.cores),
           "make mesh_cols x mesh_rows >= cores: one core per mesh node");

  // [energy]
  const toml::table& energy = *r.section(root, "energy", true);
  r.check_known_keys(energy, "energy", kEnergyRules, kEnergyFlags);
  const auto e = r.read_entries(energy, "energy", kEnergyRules);
  spec.synop_pj = e.at("synop").value;
  spec.sram_read_word_pj = e.at("sram_read").value;
  spec.sram_word_bits = static_cast<int>(e.at("sram_read").bits);
  spec.membrane_read_pj = e.at("membrane_read").value;
  spec.membrane_write_pj = e.at("membrane_write").value;
  spec.neuron_update_pj = e.at("neuron_update").value;
  spec.spike_local_pj = e.at("spike_local").value;
  spec.hop_ew_pj = e.at("hop_ew").value;
  spec.hop_ns_pj = e.at("hop_ns").value;
  spec.dense_op_pj = e.at("dense_op").value;
  spec.dense_mac_pj = e.at("dense_mac").value;
  // dram_read prices one access of `bits` bits: per byte = value * 8 / bits.
  spec.dram_byte_pj = e.at("dram_read").value * 8.0 / static_cast<double>(e.at("dram_read").bits);
  spec.synop_all_in = r.read_flag(energy, "energy", "synop_all_in");
  spec.neuron_update_all_in = r.read_flag(energy, "energy", "neuron_update_all_in");

  // [timing]
  const toml::table& timing = *r.section(root, "timing", true);
  r.check_known_keys(timing, "timing", kTimingRules, {});
  const auto t = r.read_entries(timing, "timing", kTimingRules);
  spec.synop_cycles = t.at("synop").value;
  spec.neuron_update_cycles = t.at("neuron_update").value;
  spec.packet_cycles = t.at("packet").value;
  spec.hop_cycles = t.at("hop").value;
  spec.dense_op_cycles = t.at("dense_op").value;
  spec.dense_lanes = static_cast<int>(t.at("dense_lanes").value);
  spec.min_step_s = t.at("min_step").value;

  // [mac_array]
  const toml::table& mac = *r.section(root, "mac_array", true);
  r.check_known_keys(mac, "mac_array", kMacArrayRules, {});
  const auto m = r.read_entries(mac, "mac_array", kMacArrayRules);
  spec.mac_units = static_cast<int64_t>(m.at("units").value);
  spec.mac_clock_hz = m.at("clock").value;
  spec.mult8_pj = m.at("mult8").value;
  spec.add32_pj = m.at("add32").value;
  spec.mac_static_w = m.at("static_power").value;

  // [formula]
  const toml::table& formula = *r.section(root, "formula", true);
  r.check_known_keys(formula, "formula", kFormulaRules, {});
  const auto f = r.read_entries(formula, "formula", kFormulaRules);
  spec.formula_e_mac_pj = f.at("e_mac").value;
  spec.formula_e_ac_pj = f.at("e_ac").value;

  // [table] (optional): a reference op table, any key, each an energy entry; kept in entries only.
  if (const toml::table* table = r.section(root, "table", false)) {
    for (const auto& [k, node] : *table) {
      const std::string key(k.str());
      r.read_entry(node, "table", KeyRule{key, kEnergy, kNonNeg});
    }
  }
  return spec;
}

HwSpec load_hw_spec(const std::filesystem::path& path) {
  const std::string what = "reading hardware preset " + path.string();
  const std::string fix = "give a preset name or the path of a .toml preset; `spikefm energy --hw-list` lists the presets";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error(what, "no such file", fix);
  if (std::filesystem::is_directory(status)) throw Error(what, "is a directory, not a file", fix);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what, "cannot be opened for reading", "check its permissions; " + fix);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(what, "read failed", "check the file; " + fix);

  HwSpec spec = parse_hw_spec(text.str(), path.string());
  spec.path = path;
  return spec;
}

std::filesystem::path default_presets_dir() {
  const char* env = std::getenv("SPIKEFM_HW_DIR");
  if (env && *env) return env;
  return SPIKEFM_HW_PRESETS_DIR;
}

std::vector<std::filesystem::path> list_hw_presets(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error("listing hardware presets in " + dir.string(), "no such directory",
                "set SPIKEFM_HW_DIR to a folder of *.toml presets, or unset it to use the shipped presets");
  std::vector<std::filesystem::path> out;
  for (const auto& item : std::filesystem::directory_iterator(dir, ec)) {
    if (item.path().extension() == ".toml" && item.is_regular_file(ec)) out.push_back(item.path());
  }
  if (ec)
    throw Error("listing hardware presets in " + dir.string(), ec.message(),
                "check the folder, or unset SPIKEFM_HW_DIR to use the shipped presets");
  std::sort(out.begin(), out.end());
  return out;
}

std::filesystem::path resolve_hw_preset(const std::string& name_or_path) {
  const std::string what = "hardware preset \"" + name_or_path + "\"";
  std::error_code ec;
  if (name_or_path.empty()) throw Error(what, "empty name", "give a preset name (e.g. loihi) or a .toml path");
  // An existing file wins over a preset name.
  const std::filesystem::path given(name_or_path);
  if (std::filesystem::is_regular_file(given, ec)) return given;

  const std::filesystem::path dir = default_presets_dir();
  const std::filesystem::path preset = dir / (name_or_path + ".toml");
  if (std::filesystem::is_regular_file(preset, ec)) return preset;

  if (!std::filesystem::is_directory(dir, ec))
    throw Error(what, "no such file, and the presets folder " + dir.string() + " does not exist",
                "give the path of a .toml preset, or point SPIKEFM_HW_DIR at a folder of presets");
  std::vector<std::string> names;
  for (const auto& p : list_hw_presets(dir)) names.push_back(p.stem().string());
  throw Error(what, "no such file, and no preset of that name in " + dir.string(),
              "available presets: " + (names.empty() ? std::string("none") : join(names)) +
                  "; or give the path of a .toml file; `spikefm energy --hw-list` lists the presets");
}

}  // namespace spikefm::hw
