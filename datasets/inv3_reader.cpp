#include "datasets/inv3_reader.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>

#include "common/error.h"
#include "common/file_bytes.h"

namespace spikefm {

namespace {

constexpr const char* kReinstallHint =
    "the file is damaged: reinstall the Debian package invesalius-examples or re-save the project in InVesalius";
constexpr const char* kNotInv3Hint = "pass an InVesalius 3 project (.inv3), e.g. ";

std::string not_inv3_fix() { return std::string(kNotInv3Hint) + default_inv3_path().string(); }

// ---- gzip ------------------------------------------------------------------------------------------

std::vector<uint8_t> read_whole_file(const std::filesystem::path& path, const std::string& what) {
  return read_file_bytes(path, static_cast<uint64_t>(kInv3MaxArchiveBytes), what,
                         "install the Debian package invesalius-examples, or set SPIKEFM_CT_PATH to an .inv3 file");
}

// Inflates one or more gzip members back to back. Output is capped at kInv3MaxArchiveBytes.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& what) {
  if (in.size() < 2 || in[0] != 0x1f || in[1] != 0x8b) {
    throw Error(what, "not gzip: the file does not start with the gzip magic bytes 1f 8b",
                "an .inv3 project is a gzip-compressed tar archive; " + not_inv3_fix());
  }
  z_stream zs{};
  // 16 + MAX_WBITS: gzip wrapper expected; zlib checks the header and the CRC-32/length trailer.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(what, "zlib could not be initialised (out of memory?)");
  struct Guard {
    z_stream* z;
    ~Guard() { inflateEnd(z); }
  } guard{&zs};

  constexpr size_t kStep = size_t{1} << 30;  // zlib counts in uInt
  const auto cap = static_cast<size_t>(kInv3MaxArchiveBytes);
  std::vector<uint8_t> out(std::min(cap, std::max<size_t>(in.size() * 3, size_t{1} << 20)));
  size_t in_pos = 0, out_len = 0;
  for (;;) {
    if (out_len == out.size()) {
      if (out.size() >= cap) {
        throw Error(what, "not a project archive: the gzip stream inflates to more than the 4 GiB limit");
      }
      out.resize(std::min(cap, out.size() * 2));
    }
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(std::min(in.size() - in_pos, kStep));
    zs.next_out = out.data() + out_len;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - out_len, kStep));
    const uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
    const int ret = inflate(&zs, Z_NO_FLUSH);
    in_pos += avail_in - zs.avail_in;
    out_len += avail_out - zs.avail_out;
    if (ret == Z_STREAM_END) {
      // Another gzip member may follow; zero padding after the last one is tolerated.
      if (std::all_of(in.begin() + static_cast<std::ptrdiff_t>(in_pos), in.end(), [](uint8_t b) { return b == 0; })) {
        break;
      }
      inflateReset(&zs);
      continue;
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && in_pos < in.size()) continue;  // output full: grown above
    if (ret == Z_BUF_ERROR) {
      throw Error(what,
                  "truncated gzip: the compressed data ends before the end of the gzip stream (after " +
                      std::to_string(out_len) + " inflated bytes)",
                  kReinstallHint);
    }
    const std::string why = zs.msg ? zs.msg : "zlib error " + std::to_string(ret);
    throw Error(what, "corrupt gzip stream: " + why, kReinstallHint);
  }
  out.resize(out_len);
  return out;
}

// ---- tar -------------------------------------------------------------------------------------------

struct TarMember {
  std::string name;   // path inside the archive, "./" prefix and trailing '/' removed
  size_t offset = 0;  // of the data, in the inflated archive
  size_t size = 0;
};

std::string c_field(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

std::string normalise_name(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  while (!name.empty() && name.back() == '/') name.pop_back();
  return name;
}

// A numeric tar header field: octal ASCII (space/NUL padded), or GNU base-256 when the first byte has
// its high bit set.
uint64_t tar_number(const uint8_t* f, size_t n, const std::string& what, const std::string& field,
                    const std::string& entry) {
  if (f[0] & 0x80) {
    if (f[0] == 0xff)
      throw Error(what, "tar header of " + entry + ": field '" + field + "' is negative", kReinstallHint);
    uint64_t v = f[0] & 0x7f;
    for (size_t i = 1; i < n; ++i) {
      if (v > (std::numeric_limits<uint64_t>::max() >> 8)) {
        throw Error(what, "tar header of " + entry + ": field '" + field + "' overflows 64 bits", kReinstallHint);
      }
      v = (v << 8) | f[i];
    }
    return v;
  }
  size_t i = 0;
  while (i < n && (f[i] == ' ' || f[i] == 0)) ++i;
  uint64_t v = 0;
  bool digits = false;
  for (; i < n && f[i] != ' ' && f[i] != 0; ++i) {
    if (f[i] < '0' || f[i] > '7') {
      throw Error(what, "tar header of " + entry + ": field '" + field + "' is not an octal number",
                  "not a tar archive, or a damaged one; " + std::string(kReinstallHint));
    }
    if (v > (std::numeric_limits<uint64_t>::max() >> 3)) {
      throw Error(what, "tar header of " + entry + ": field '" + field + "' overflows 64 bits", kReinstallHint);
    }
    v = (v << 3) | static_cast<uint64_t>(f[i] - '0');
    digits = true;
  }
  for (; i < n; ++i) {
    if (f[i] != ' ' && f[i] != 0) {
      throw Error(what, "tar header of " + entry + ": field '" + field + "' has characters after its number",
                  kReinstallHint);
    }
  }
  if (!digits && field == "chksum") {
    throw Error(what, "tar header of " + entry + ": empty checksum field: not a tar archive", not_inv3_fix());
  }
  return v;
}

// The "path" record of a pax extended header ("<len> <key>=<value>\n" records), empty if absent.
std::string pax_path(const uint8_t* p, size_t n, const std::string& what, const std::string& entry) {
  std::string path;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    size_t len = 0;
    while (j < n && p[j] >= '0' && p[j] <= '9') {
      len = len * 10 + static_cast<size_t>(p[j] - '0');
      if (len > n) break;
      ++j;
    }
    if (j == i || j >= n || p[j] != ' ' || len <= j - i || len > n - i || p[i + len - 1] != '\n') {
      throw Error(what, "pax header " + entry + ": malformed record at byte " + std::to_string(i), kReinstallHint);
    }
    const std::string rec(reinterpret_cast<const char*>(p + j + 1), len - (j - i) - 2);
    const auto eq = rec.find('=');
    if (eq == std::string::npos) {
      throw Error(what, "pax header " + entry + ": record without '=' at byte " + std::to_string(i), kReinstallHint);
    }
    if (rec.compare(0, eq, "path") == 0 && eq == 4) path = rec.substr(eq + 1);
    i += len;
  }
  return path;
}

std::vector<TarMember> parse_tar(const std::vector<uint8_t>& data, const std::string& what) {
  std::vector<TarMember> members;
  std::string next_name;  // from a GNU 'L' or pax 'x' entry, applies to the following entry
  size_t off = 0;
  int index = 0;
  for (;; ++index) {
    if (off == data.size()) break;  // no end-of-archive blocks: accepted, as Python's tarfile does
    const std::string entry_at = "entry #" + std::to_string(index) + " (byte " + std::to_string(off) + ")";
    if (data.size() - off < 512) {
      throw Error(what,
                  "truncated tar: " + std::to_string(data.size() - off) + " bytes remain at " + entry_at +
                      ", less than one 512-byte header",
                  kReinstallHint);
    }
    const uint8_t* h = data.data() + off;
    if (std::all_of(h, h + 512, [](uint8_t b) { return b == 0; })) break;  // end-of-archive marker

    std::string name = c_field(h, 100);
    const std::string entry = entry_at + " '" + name + "'";
    // Checksum: the sum of the header bytes with the chksum field read as spaces (unsigned, or the
    // signed sum some old tars wrote).
    const uint64_t stored = tar_number(h + 148, 8, what, "chksum", entry);
    uint64_t sum_u = 0;
    int64_t sum_s = 0;
    for (int i = 0; i < 512; ++i) {
      const uint8_t b = (i >= 148 && i < 156) ? uint8_t{' '} : h[i];
      sum_u += b;
      sum_s += static_cast<int8_t>(b);
    }
    if (stored != sum_u && static_cast<int64_t>(stored) != sum_s) {
      throw Error(what,
                  "tar header of " + entry + ": checksum mismatch (stored " + std::to_string(stored) + ", computed " +
                      std::to_string(sum_u) + "): not a tar archive, or a damaged one",
                  not_inv3_fix());
    }
    if (std::string_view(reinterpret_cast<const char*>(h + 257), 5) == "ustar") {
      const std::string prefix = c_field(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (!next_name.empty()) {
      name = next_name;
      next_name.clear();
    }
    const uint64_t size = tar_number(h + 124, 12, what, "size", entry);
    const size_t data_off = off + 512;
    if (size > data.size() - data_off) {
      throw Error(what,
                  "truncated tar: member '" + name + "' declares " + std::to_string(size) +
                      " bytes but the archive ends " + std::to_string(data.size() - data_off) +
                      " bytes after its header",
                  kReinstallHint);
    }
    const char type = static_cast<char>(h[156]);
    if (type == 'L') {
      next_name = normalise_name(c_field(data.data() + data_off, static_cast<size_t>(size)));
    } else if (type == 'x') {
      next_name = normalise_name(pax_path(data.data() + data_off, static_cast<size_t>(size), what, entry));
    } else if (type == '0' || type == '\0' || type == '7') {
      members.push_back({normalise_name(name), data_off, static_cast<size_t>(size)});
    }  // directories, links, global pax headers and the rest carry nothing needed here
    const uint64_t padded = (size + 511) / 512 * 512;
    if (padded > data.size() - data_off) {
      throw Error(what, "truncated tar: the archive ends inside the padding after member '" + name + "'",
                  kReinstallHint);
    }
    off = data_off + static_cast<size_t>(padded);
  }
  return members;
}

std::string member_list(const std::vector<TarMember>& members) {
  if (members.empty()) return "no files";
  std::string s;
  const size_t shown = std::min<size_t>(members.size(), 12);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + members[i].name;
  if (shown < members.size()) s += ", ... (" + std::to_string(members.size()) + " files)";
  return s;
}

// ---- XML plist ---------------------------------------------------------------------------------------

struct PlistValue {
  enum class Kind { dict, array, string, integer, real, boolean };
  Kind kind = Kind::string;
  std::string str;
  int64_t integer = 0;
  double real = 0;
  bool boolean = false;
  std::vector<PlistValue> items;  // array elements, or dict values in file order
  std::vector<std::string> keys;  // dict keys, parallel to items

  const PlistValue* get(std::string_view key) const {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return &items[i];
    }
    return nullptr;
  }
};

const char* kind_name(PlistValue::Kind k) {
  switch (k) {
    case PlistValue::Kind::dict:
      return "<dict>";
    case PlistValue::Kind::array:
      return "<array>";
    case PlistValue::Kind::string:
      return "<string>";
    case PlistValue::Kind::integer:
      return "<integer>";
    case PlistValue::Kind::real:
      return "<real>";
    case PlistValue::Kind::boolean:
      return "<true/>/<false/>";
  }
  return "?";
}

class PlistParser {
 public:
  PlistParser(std::string_view text, std::string what, std::string member)
      : text_(text), what_(std::move(what)), member_(std::move(member)) {}

  PlistValue parse_document() {
    skip_misc();
    const Tag open = read_tag();
    if (open.closing || open.name != "plist") fail("expected the root element <plist>, found " + open.str());
    PlistValue root;
    if (open.self_closing) fail("the <plist> element is empty");
    root = parse_value(0);
    skip_misc();
    const Tag close = read_tag();
    if (!close.closing || close.name != "plist") fail("expected </plist> after the root value, found " + close.str());
    skip_misc();
    if (pos_ != text_.size()) fail("unexpected content after </plist>");
    return root;
  }

 private:
  struct Tag {
    std::string name;
    bool closing = false, self_closing = false;
    std::string str() const { return std::string(closing ? "</" : "<") + name + (self_closing ? "/>" : ">"); }
  };

  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& why) const {
    const auto line = 1 + std::count(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(pos_), '\n');
    throw Error(what_, "member " + member_ + ", line " + std::to_string(line) + ": " + why,
                "the project's plist is damaged or written by an unsupported InVesalius version");
  }

  bool starts_with(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }

  void skip_ws() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void skip_past(std::string_view end, const char* construct) {
    const auto e = text_.find(end, pos_);
    if (e == std::string_view::npos) fail(std::string("unterminated ") + construct);
    pos_ = e + end.size();
  }

  // Whitespace, comments, the XML declaration / processing instructions and <!DOCTYPE ...>.
  void skip_misc() {
    for (;;) {
      skip_ws();
      if (starts_with("<!--")) {
        skip_past("-->", "comment");
      } else if (starts_with("<?")) {
        skip_past("?>", "processing instruction");
      } else if (starts_with("<!DOCTYPE")) {
        skip_past(">", "<!DOCTYPE>");
      } else {
        return;
      }
    }
  }

  // Whitespace and comments only (inside values).
  void skip_ws_comments() {
    for (;;) {
      skip_ws();
      if (!starts_with("<!--")) return;
      skip_past("-->", "comment");
    }
  }

  Tag read_tag() {
    if (pos_ >= text_.size()) fail("unexpected end of the file, expected an element");
    if (text_[pos_] != '<') fail("expected an element, found text");
    ++pos_;
    Tag t;
    if (pos_ < text_.size() && text_[pos_] == '/') {
      t.closing = true;
      ++pos_;
    }
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      const bool name_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                             c == '-' || c == '.' || c == ':';
      if (!name_char) break;
      t.name += c;
      ++pos_;
    }
    if (t.name.empty()) fail("malformed element (no name after '<')");
    // Attributes (only <plist version="..."> has any) are skipped, quotes respected.
    char quote = 0;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '>') {
        break;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '>') {
        t.self_closing = true;
        ++pos_;
        break;
      }
      ++pos_;
    }
    if (pos_ >= text_.size()) fail("unterminated element <" + t.name);
    ++pos_;  // '>'
    if (t.closing && t.self_closing) fail("malformed element </" + t.name + "/>");
    return t;
  }

  // Character data up to the next '<', entities decoded, then the closing tag </name>.
  std::string read_text(const std::string& name) {
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '<') {
      const char c = text_[pos_];
      if (c != '&') {
        out += c;
        ++pos_;
        continue;
      }
      const auto semi = text_.find(';', pos_);
      if (semi == std::string_view::npos || semi - pos_ > 12) fail("malformed entity in <" + name + ">");
      const std::string_view ent = text_.substr(pos_ + 1, semi - pos_ - 1);
      if (ent == "amp") {
        out += '&';
      } else if (ent == "lt") {
        out += '<';
      } else if (ent == "gt") {
        out += '>';
      } else if (ent == "quot") {
        out += '"';
      } else if (ent == "apos") {
        out += '\'';
      } else if (ent.size() > 1 && ent[0] == '#') {
        const bool hex = ent[1] == 'x' || ent[1] == 'X';
        const std::string_view digits = ent.substr(hex ? 2 : 1);
        uint32_t cp = 0;
        const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
        if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty() || cp == 0 || cp > 0x10FFFF) {
          fail("bad character reference &" + std::string(ent) + ";");
        }
        append_utf8(out, cp);
      } else {
        fail("unknown entity &" + std::string(ent) + ";");
      }
      pos_ = semi + 1;
    }
    const Tag close = read_tag();
    if (!close.closing || close.name != name) fail("expected </" + name + ">, found " + close.str());
    return out;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
      s.remove_suffix(1);
    }
    return s;
  }

  PlistValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("values nested deeper than " + std::to_string(kMaxDepth) + " levels");
    skip_ws_comments();
    const Tag tag = read_tag();
    if (tag.closing) fail("expected a value, found " + tag.str());
    PlistValue v;
    if (tag.name == "dict" || tag.name == "array") {
      const bool dict = tag.name == "dict";
      v.kind = dict ? PlistValue::Kind::dict : PlistValue::Kind::array;
      if (tag.self_closing) return v;
      for (;;) {
        skip_ws_comments();
        if (dict) {
          const Tag k = read_tag();
          if (k.closing && k.name == "dict") break;
          if (k.closing || k.self_closing || k.name != "key") fail("expected <key> or </dict>, found " + k.str());
          v.keys.push_back(read_text("key"));
          v.items.push_back(parse_value(depth + 1));
        } else {
          if (starts_with("</")) {
            const Tag c = read_tag();
            if (c.name != "array") fail("expected a value or </array>, found " + c.str());
            break;
          }
          v.items.push_back(parse_value(depth + 1));
        }
      }
      return v;
    }
    if (tag.name == "true" || tag.name == "false") {
      v.kind = PlistValue::Kind::boolean;
      v.boolean = tag.name == "true";
      if (!tag.self_closing) read_text(tag.name);  // <true></true>
      return v;
    }
    if (tag.name == "string" || tag.name == "integer" || tag.name == "real") {
      const std::string text = tag.self_closing ? std::string() : read_text(tag.name);
      if (tag.name == "string") {
        v.kind = PlistValue::Kind::string;
        v.str = text;
        return v;
      }
      std::string_view t = trim(text);
      if (!t.empty() && t.front() == '+') t.remove_prefix(1);
      if (tag.name == "integer") {
        v.kind = PlistValue::Kind::integer;
        const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v.integer);
        if (t.empty() || ec != std::errc() || p != t.data() + t.size()) {
          fail("<integer> '" + text + "' is not a 64-bit whole number");
        }
      } else {
        v.kind = PlistValue::Kind::real;
        const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v.real);
        if (t.empty() || ec != std::errc() || p != t.data() + t.size()) fail("<real> '" + text + "' is not a number");
      }
      return v;
    }
    if (tag.name == "key") fail("<key> outside a <dict>");
    fail("unsupported plist element " + tag.str() +
         " (read here: dict, key, string, integer, real, array, true, false)");
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string what_, member_;
};

// ---- main.plist fields ---------------------------------------------------------------------------------

class PlistFields {
 public:
  PlistFields(const PlistValue& root, std::string what, std::string member)
      : root_(root), what_(std::move(what)), member_(std::move(member)) {
    if (root_.kind != PlistValue::Kind::dict)
      fail("the root value", "is " + std::string(kind_name(root_.kind)) + ", not a <dict>");
  }

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(what_, "member " + member_ + ": " + field + " " + why, kReinstallHint);
  }

  // dict/key/key... ; nullptr when any level is absent.
  const PlistValue* find(std::initializer_list<std::string_view> path) const {
    const PlistValue* v = &root_;
    for (auto key : path) {
      if (v->kind != PlistValue::Kind::dict) return nullptr;
      v = v->get(key);
      if (!v) return nullptr;
    }
    return v;
  }

  const PlistValue& require(std::initializer_list<std::string_view> path, PlistValue::Kind kind) const {
    const PlistValue* v = find(path);
    const std::string name = field_name(path);
    if (!v) fail("key '" + name + "'", "is missing");
    if (v->kind != kind)
      fail("key '" + name + "'", "is " + std::string(kind_name(v->kind)) + ", expected " + kind_name(kind));
    return *v;
  }

  // An array of exactly n numbers (<integer> or <real>).
  std::vector<double> numbers(const PlistValue& arr, const std::string& name, size_t n) const {
    if (arr.items.size() != n) {
      fail("key '" + name + "'",
           "has " + std::to_string(arr.items.size()) + " elements, expected " + std::to_string(n));
    }
    std::vector<double> out;
    for (const auto& x : arr.items) {
      if (x.kind == PlistValue::Kind::integer) {
        out.push_back(static_cast<double>(x.integer));
      } else if (x.kind == PlistValue::Kind::real) {
        out.push_back(x.real);
      } else {
        fail("key '" + name + "'", "holds a " + std::string(kind_name(x.kind)) + ", expected numbers");
      }
    }
    return out;
  }

  static std::string field_name(std::initializer_list<std::string_view> path) {
    std::string s;
    for (auto k : path) s += (s.empty() ? "" : "/") + std::string(k);
    return s;
  }

 private:
  const PlistValue& root_;
  std::string what_, member_;
};

std::string dims_str(int64_t z, int64_t y, int64_t x) {
  return "(" + std::to_string(z) + ", " + std::to_string(y) + ", " + std::to_string(x) + ")";
}

}  // namespace

std::filesystem::path default_inv3_path() {
  const char* env = std::getenv("SPIKEFM_CT_PATH");
  if (env && *env) return env;
  return "/usr/share/doc/invesalius-examples/examples/Cranium.inv3";
}

CtVolume load_inv3(const std::filesystem::path& path) {
  const std::string what = "reading InVesalius project " + path.string();
  const std::vector<uint8_t> archive = gunzip(read_whole_file(path, what), what);
  const std::vector<TarMember> members = parse_tar(archive, what);

  // main.plist sits in the project's folder (a temporary name such as "tmpocjcea/").
  const TarMember* main = nullptr;
  for (const auto& m : members) {
    const auto slash = m.name.rfind('/');
    const std::string base = slash == std::string::npos ? m.name : m.name.substr(slash + 1);
    if (base != "main.plist") continue;
    if (main) {
      throw Error(what, "two members named main.plist ('" + main->name + "' and '" + m.name + "')",
                  "an .inv3 project holds one project folder");
    }
    main = &m;
  }
  if (!main) {
    throw Error(what, "missing member main.plist (the archive holds: " + member_list(members) + ")",
                "not an InVesalius 3 project; " + not_inv3_fix());
  }
  const auto slash = main->name.rfind('/');
  const std::string folder = slash == std::string::npos ? "" : main->name.substr(0, slash + 1);

  const std::string_view plist_text(reinterpret_cast<const char*>(archive.data() + main->offset), main->size);
  const PlistValue root = PlistParser(plist_text, what, main->name).parse_document();
  const PlistFields fields(root, what, main->name);

  const std::string dtype = fields.require({"matrix", "dtype"}, PlistValue::Kind::string).str;
  const std::string filename = fields.require({"matrix", "filename"}, PlistValue::Kind::string).str;
  const std::vector<double> shape =
      fields.numbers(fields.require({"matrix", "shape"}, PlistValue::Kind::array), "matrix/shape", 3);
  const std::vector<double> spacing =
      fields.numbers(fields.require({"spacing"}, PlistValue::Kind::array), "spacing", 3);

  if (dtype != "int16") {
    fields.fail("key 'matrix/dtype'",
                "is an unknown dtype '" + dtype + "' (only int16, InVesalius's CT type, is read)");
  }
  constexpr int64_t kMaxDim = int64_t{1} << 16;
  for (size_t i = 0; i < 3; ++i) {
    const double d = shape[i];
    if (!(d >= 1 && d <= static_cast<double>(kMaxDim)) || d != std::floor(d)) {
      fields.fail("key 'matrix/shape'",
                  "element " + std::to_string(i) + " must be a whole number in [1, " + std::to_string(kMaxDim) + "]");
    }
  }
  for (size_t i = 0; i < 3; ++i) {
    if (!std::isfinite(spacing[i]) || spacing[i] <= 0) {
      fields.fail("key 'spacing'", "element " + std::to_string(i) + " must be a finite number > 0 (mm)");
    }
  }
  CtVolume vol;
  vol.depth = static_cast<int64_t>(shape[0]);
  vol.rows = static_cast<int64_t>(shape[1]);
  vol.cols = static_cast<int64_t>(shape[2]);
  vol.spacing_mm = {spacing[2], spacing[1], spacing[0]};  // plist (x, y, z) -> (z, y, x)
  if (const PlistValue* m = fields.find({"modality"}); m && m->kind == PlistValue::Kind::string) vol.modality = m->str;

  // The volume member, beside main.plist.
  const std::string matrix_name = folder + filename;
  const TarMember* matrix = nullptr;
  for (const auto& m : members) {
    if (m.name == matrix_name) matrix = &m;
  }
  if (!matrix) {
    throw Error(what,
                "missing member '" + matrix_name + "' (named by matrix/filename in " + main->name +
                    "; the archive holds: " + member_list(members) + ")",
                kReinstallHint);
  }
  // Three dims <= 2^16 each: the product fits int64 without overflow.
  const int64_t voxels = vol.depth * vol.rows * vol.cols;
  const int64_t want = voxels * 2;
  if (static_cast<int64_t>(matrix->size) != want) {
    throw Error(what,
                "member '" + matrix_name + "' has " + std::to_string(matrix->size) + " bytes, but shape " +
                    dims_str(vol.depth, vol.rows, vol.cols) + " x int16 (2 bytes) = " + std::to_string(want) + " bytes",
                kReinstallHint);
  }
  vol.hu.resize(static_cast<size_t>(voxels));
  const uint8_t* p = archive.data() + matrix->offset;
  int16_t lo = std::numeric_limits<int16_t>::max(), hi = std::numeric_limits<int16_t>::min();
  for (size_t i = 0; i < vol.hu.size(); ++i) {
    const auto v = static_cast<int16_t>(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));  // little-endian
    vol.hu[i] = v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (const PlistValue* r = fields.find({"scalar_range"}); r && r->kind == PlistValue::Kind::array) {
    const std::vector<double> range = fields.numbers(*r, "scalar_range", 2);
    if (lo < range[0] || hi > range[1]) {
      throw Error(what,
                  "member '" + matrix_name + "' holds values " + std::to_string(lo) + ".." + std::to_string(hi) +
                      " HU, outside the scalar_range " + std::to_string(static_cast<int64_t>(range[0])) + ".." +
                      std::to_string(static_cast<int64_t>(range[1])) + " of " + main->name +
                      " (big-endian data, or a damaged volume)",
                  kReinstallHint);
    }
  }
  return vol;
}

}  // namespace spikefm
