#include "datasets/dicom.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <system_error>
#include <utility>

#include "common/error.h"
#include "common/file_bytes.h"

namespace spikefm {

namespace {

namespace fs = std::filesystem;

using Tag = uint32_t;  // (group << 16) | element

constexpr Tag make_tag(uint16_t group, uint16_t element) { return (Tag{group} << 16) | element; }

// Tags used here (PS3.6 data dictionary).
constexpr Tag kTransferSyntaxUid = make_tag(0x0002, 0x0010);
constexpr Tag kModality = make_tag(0x0008, 0x0060);
constexpr Tag kSamplesPerPixel = make_tag(0x0028, 0x0002);
constexpr Tag kPhotometric = make_tag(0x0028, 0x0004);
constexpr Tag kNumberOfFrames = make_tag(0x0028, 0x0008);
constexpr Tag kRows = make_tag(0x0028, 0x0010);
constexpr Tag kColumns = make_tag(0x0028, 0x0011);
constexpr Tag kPixelSpacing = make_tag(0x0028, 0x0030);
constexpr Tag kBitsAllocated = make_tag(0x0028, 0x0100);
constexpr Tag kBitsStored = make_tag(0x0028, 0x0101);
constexpr Tag kHighBit = make_tag(0x0028, 0x0102);
constexpr Tag kPixelRepresentation = make_tag(0x0028, 0x0103);
constexpr Tag kWindowCenter = make_tag(0x0028, 0x1050);
constexpr Tag kWindowWidth = make_tag(0x0028, 0x1051);
constexpr Tag kRescaleIntercept = make_tag(0x0028, 0x1052);
constexpr Tag kRescaleSlope = make_tag(0x0028, 0x1053);
constexpr Tag kPixelData = make_tag(0x7FE0, 0x0010);
constexpr Tag kItem = make_tag(0xFFFE, 0xE000);
constexpr Tag kItemDelimiter = make_tag(0xFFFE, 0xE00D);
constexpr Tag kSequenceDelimiter = make_tag(0xFFFE, 0xE0DD);

constexpr uint32_t kUndefinedLength = 0xFFFFFFFFu;
constexpr size_t kPreambleBytes = 128;
constexpr size_t kMagicOffset = kPreambleBytes, kMetaOffset = kPreambleBytes + 4;
// Sequences nest a few levels in real files; the bound keeps a hostile file from exhausting the stack.
constexpr int kMaxSequenceDepth = 64;
// Largest file accepted (4 GiB): a 16-bit 2048 x 2048 x 500-frame series fits; checked before allocating.
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 32;

constexpr const char* kImplicitLittleUid = "1.2.840.10008.1.2";
constexpr const char* kExplicitLittleUid = "1.2.840.10008.1.2.1";

constexpr const char* kDamagedHint = "the file is damaged or incomplete: copy or export it again";
constexpr const char* kConvertHint =
    "convert it to uncompressed little endian first, e.g. `gdcmconv --raw in.dcm out.dcm` (GDCM) or "
    "`dcmconv +te in.dcm out.dcm` / `dcmdjpeg in.dcm out.dcm` (DCMTK)";

// The attributes this reader interprets: tag, name, the VR the dictionary gives it.
struct KnownTag {
  Tag tag;
  const char* name;
  const char* vr;
};
constexpr KnownTag kKnownTags[] = {
    {kTransferSyntaxUid, "TransferSyntaxUID", "UI"},
    {kModality, "Modality", "CS"},
    {kSamplesPerPixel, "SamplesPerPixel", "US"},
    {kPhotometric, "PhotometricInterpretation", "CS"},
    {kNumberOfFrames, "NumberOfFrames", "IS"},
    {kRows, "Rows", "US"},
    {kColumns, "Columns", "US"},
    {kPixelSpacing, "PixelSpacing", "DS"},
    {kBitsAllocated, "BitsAllocated", "US"},
    {kBitsStored, "BitsStored", "US"},
    {kHighBit, "HighBit", "US"},
    {kPixelRepresentation, "PixelRepresentation", "US"},
    {kWindowCenter, "WindowCenter", "DS"},
    {kWindowWidth, "WindowWidth", "DS"},
    {kRescaleIntercept, "RescaleIntercept", "DS"},
    {kRescaleSlope, "RescaleSlope", "DS"},
    {kPixelData, "PixelData", "OW"},
    {kItem, "Item", ""},
    {kItemDelimiter, "ItemDelimitationItem", ""},
    {kSequenceDelimiter, "SequenceDelimitationItem", ""},
};

const KnownTag* find_known(Tag tag) {
  for (const auto& k : kKnownTags) {
    if (k.tag == tag) return &k;
  }
  return nullptr;
}

bool is_interpreted(Tag tag) {
  const KnownTag* k = find_known(tag);
  return k != nullptr && tag != kTransferSyntaxUid && (tag >> 16) != 0xFFFE;
}

// "(7FE0,0010) PixelData", or "(0008,1140)" for a tag this reader does not name.
std::string tag_str(Tag tag) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", static_cast<unsigned>(tag >> 16), static_cast<unsigned>(tag & 0xFFFF));
  std::string s = buf;
  if (const KnownTag* k = find_known(tag)) s += std::string(" ") + k->name;
  return s;
}

std::string transfer_syntax_name(const std::string& uid) {
  static const std::map<std::string, const char*> names = {
      {"1.2.840.10008.1.2", "Implicit VR Little Endian"},
      {"1.2.840.10008.1.2.1", "Explicit VR Little Endian"},
      {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"},
      {"1.2.840.10008.1.2.2", "Explicit VR Big Endian (retired)"},
      {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"},
      {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"},
      {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)"},
      {"1.2.840.10008.1.2.4.70", "JPEG Lossless, First-Order Prediction (Process 14 [SV1])"},
      {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"},
      {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"},
      {"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless Only"},
      {"1.2.840.10008.1.2.4.91", "JPEG 2000"},
      {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Lossless Only"},
      {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component"},
      {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile"},
      {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264"},
      {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Lossless Only"},
      {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000"},
      {"1.2.840.10008.1.2.5", "RLE Lossless"},
  };
  const auto it = names.find(uid);
  if (it != names.end()) return it->second;
  if (uid.rfind("1.2.840.10008.1.2.4.", 0) == 0) return "an encapsulated (compressed) transfer syntax";
  return "an unknown transfer syntax";
}

// Explicit VRs whose length field is 2 reserved bytes + uint32 (PS3.5 table 7.1-1).
bool is_long_form_vr(const std::string& vr) {
  static constexpr const char* kLong[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
  for (const char* v : kLong) {
    if (vr == v) return true;
  }
  return false;
}

std::vector<uint8_t> read_whole_file(const fs::path& path, const std::string& what) {
  return read_file_bytes(path, kMaxFileBytes, what, "check the path");
}

// One element header as found in the file. vr is empty for implicit VR and for item/delimiter tags.
struct Element {
  Tag tag = 0;
  std::string vr;
  uint64_t offset = 0;        // of the tag
  uint64_t value_offset = 0;  // of the first value byte
  uint32_t length = 0;        // kUndefinedLength or the value's byte count (checked to lie inside the file)
  bool undefined() const { return length == kUndefinedLength; }
  uint64_t end() const { return value_offset + length; }
};

// Walks the bytes of one file; every read is bounds-checked against the buffer.
class Walker {
 public:
  Walker(const std::vector<uint8_t>& bytes, std::string what) : b_(bytes), what_(std::move(what)) {}

  uint64_t size() const { return b_.size(); }
  const std::string& what() const { return what_; }
  const uint8_t* data(uint64_t offset) const { return b_.data() + offset; }

  uint16_t u16(uint64_t off) const { return static_cast<uint16_t>(b_[off] | (b_[off + 1] << 8)); }
  uint32_t u32(uint64_t off) const {
    return static_cast<uint32_t>(b_[off]) | (static_cast<uint32_t>(b_[off + 1]) << 8) |
           (static_cast<uint32_t>(b_[off + 2]) << 16) | (static_cast<uint32_t>(b_[off + 3]) << 24);
  }

  // The header at `pos`. `where` says what is being read, for the messages ("in the file meta
  // information", "in item 2 of sequence (0008,1140) at offset 900").
  Element header(uint64_t pos, bool explicit_vr, const std::string& where) const {
    Element e;
    e.offset = pos;
    need(pos, 4, "a tag", where);
    e.tag = make_tag(u16(pos), u16(pos + 2));
    if ((e.tag >> 16) == 0xFFFE) {
      // Item and delimiters: tag + uint32 length, no VR in either encoding (PS3.5 7.5).
      need(pos, 8, "the header of " + tag_str(e.tag), where);
      e.length = u32(pos + 4);
      e.value_offset = pos + 8;
    } else if (explicit_vr) {
      need(pos, 6, "the header of " + tag_str(e.tag), where);
      const char c0 = static_cast<char>(b_[pos + 4]), c1 = static_cast<char>(b_[pos + 5]);
      if (c0 < 'A' || c0 > 'Z' || c1 < 'A' || c1 > 'Z') {
        char buf[64];
        std::snprintf(buf, sizeof buf, "0x%02X 0x%02X", b_[pos + 4], b_[pos + 5]);
        throw Error(what_,
                    tag_str(e.tag) + " at offset " + std::to_string(pos) + " " + where + ": the VR bytes are " + buf +
                        ", not two upper-case letters (is the data set really explicit VR?)",
                    kDamagedHint);
      }
      e.vr = {c0, c1};
      if (is_long_form_vr(e.vr)) {
        need(pos, 12, "the header of " + tag_str(e.tag) + " (VR " + e.vr + ")", where);
        e.length = u32(pos + 8);
        e.value_offset = pos + 12;
      } else {
        need(pos, 8, "the header of " + tag_str(e.tag) + " (VR " + e.vr + ")", where);
        e.length = u16(pos + 6);
        e.value_offset = pos + 8;
      }
    } else {
      need(pos, 8, "the header of " + tag_str(e.tag), where);
      e.length = u32(pos + 4);
      e.value_offset = pos + 8;
    }
    if (!e.undefined() && e.length > size() - e.value_offset) {
      throw Error(what_,
                  tag_str(e.tag) + " at offset " + std::to_string(pos) + " " + where + ": its value length " +
                      std::to_string(e.length) + " runs past the end of the file (" +
                      std::to_string(size() - e.value_offset) + " bytes remain after offset " +
                      std::to_string(e.value_offset) + ")",
                  kDamagedHint);
    }
    return e;
  }

  // Walks a sequence of undefined length whose header is `sq`; returns the offset after its delimiter.
  uint64_t walk_sequence(const Element& sq, bool explicit_vr, int depth) const {
    if (depth > kMaxSequenceDepth) {
      throw Error(what_,
                  tag_str(sq.tag) + " at offset " + std::to_string(sq.offset) + ": sequences nest more than " +
                      std::to_string(kMaxSequenceDepth) + " levels deep",
                  kDamagedHint);
    }
    const std::string where = "in sequence " + tag_str(sq.tag) + " begun at offset " + std::to_string(sq.offset);
    uint64_t pos = sq.value_offset;
    for (int item = 1;; ++item) {
      const Element e = header(pos, explicit_vr, where);
      if (e.tag == kSequenceDelimiter) {
        check_delimiter_length(e, where);
        return e.value_offset;
      }
      if (e.tag != kItem) {
        throw Error(what_,
                    "offset " + std::to_string(pos) + " " + where +
                        ": expected an item (FFFE,E000) or the sequence "
                        "delimiter (FFFE,E0DD), found " +
                        tag_str(e.tag) + " (is the sequence missing its delimiter?)",
                    kDamagedHint);
      }
      if (e.undefined()) {
        pos = walk_item(e, explicit_vr, depth, "in item " + std::to_string(item) + " " + where);
      } else {
        pos = e.end();  // a defined-length item is skipped whole; its bounds were checked by header()
      }
    }
  }

  // Walks the data set of an item of undefined length; returns the offset after its delimiter.
  uint64_t walk_item(const Element& item, bool explicit_vr, int depth, const std::string& where) const {
    uint64_t pos = item.value_offset;
    for (;;) {
      const Element e = header(pos, explicit_vr, where);
      if (e.tag == kItemDelimiter) {
        check_delimiter_length(e, where);
        return e.value_offset;
      }
      if ((e.tag >> 16) == 0xFFFE) {
        throw Error(what_,
                    "offset " + std::to_string(pos) + " " + where + ": unexpected " + tag_str(e.tag) +
                        " inside an item (expected an element or the item delimiter (FFFE,E00D))",
                    kDamagedHint);
      }
      pos = skip_element(e, explicit_vr, depth, where);
    }
  }

  // Returns the offset after element `e`, walking it when its length is undefined.
  uint64_t skip_element(const Element& e, bool explicit_vr, int depth, const std::string& where) const {
    if (!e.undefined()) return e.end();
    if (e.tag == kPixelData) {
      throw Error(what_,
                  tag_str(e.tag) + " at offset " + std::to_string(e.offset) + " " + where +
                      ": undefined length, i.e. encapsulated (compressed) pixel data, which an uncompressed "
                      "transfer syntax does not allow",
                  kDamagedHint);
    }
    // Undefined length is legal for SQ, and for UN whose content is then implicit VR LE (PS3.5 6.2.2).
    // In implicit VR the dictionary VR is unknown here; an undefined length can only be a sequence.
    if (explicit_vr && e.vr != "SQ" && e.vr != "UN") {
      throw Error(what_,
                  tag_str(e.tag) + " at offset " + std::to_string(e.offset) + " " + where + ": VR " + e.vr +
                      " with undefined length (0xFFFFFFFF); only SQ and UN may have it",
                  kDamagedHint);
    }
    return walk_sequence(e, explicit_vr && e.vr != "UN", depth + 1);
  }

 private:
  void need(uint64_t pos, uint64_t n, const std::string& item, const std::string& where) const {
    if (pos > size() || n > size() - pos) {
      throw Error(what_,
                  "truncated: " + item + " at offset " + std::to_string(pos) + " " + where + " needs " +
                      std::to_string(n) + " bytes, the file ends after " +
                      std::to_string(size() - std::min(pos, size())),
                  kDamagedHint);
    }
  }

  void check_delimiter_length(const Element& e, const std::string& where) const {
    if (e.length != 0) {
      throw Error(what_,
                  tag_str(e.tag) + " at offset " + std::to_string(e.offset) + " " + where + " has length " +
                      std::to_string(e.length) + ", a delimiter's length must be 0",
                  kDamagedHint);
    }
  }

  const std::vector<uint8_t>& b_;
  std::string what_;
};

// Text value with the padding (trailing spaces / NULs, leading spaces) removed.
std::string text_value(const Walker& w, const Element& e) {
  std::string s(reinterpret_cast<const char*>(w.data(e.value_offset)), e.length);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  size_t first = 0;
  while (first < s.size() && s[first] == ' ') ++first;
  return s.substr(first);
}

// The interpreted top-level attributes, by tag.
class Attributes {
 public:
  Attributes(const Walker& w, bool explicit_vr) : w_(w), explicit_vr_(explicit_vr) {}

  void add(const Element& e) { elements_[e.tag] = e; }
  bool has(Tag tag) const { return elements_.count(tag) != 0; }
  const Element& get(Tag tag) const { return elements_.at(tag); }

  // A US value (VM 1).
  std::optional<uint16_t> us(Tag tag) const {
    const Element* e = find(tag);
    if (!e) return std::nullopt;
    if (e->length != 2) bad(*e, "a US value must be 2 bytes, found " + std::to_string(e->length));
    return w_.u16(e->value_offset);
  }
  uint16_t required_us(Tag tag) const {
    if (auto v = us(tag)) return *v;
    missing(tag);
  }

  std::optional<std::string> text(Tag tag) const {
    const Element* e = find(tag);
    if (!e) return std::nullopt;
    return text_value(w_, *e);
  }

  // The backslash-separated values of a DS (decimal string) element.
  std::optional<std::vector<double>> ds(Tag tag) const {
    const Element* e = find(tag);
    if (!e) return std::nullopt;
    const std::string s = text_value(w_, *e);
    std::vector<double> out;
    size_t start = 0;
    for (;;) {
      const size_t end = s.find('\\', start);
      std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
      while (!part.empty() && (part.back() == ' ' || part.back() == '\0')) part.pop_back();
      size_t first = 0;
      while (first < part.size() && part[first] == ' ') ++first;
      part = part.substr(first);
      const char* b = part.data();
      const char* en = part.data() + part.size();
      if (b != en && *b == '+') ++b;
      double v = 0;
      const auto r = std::from_chars(b, en, v);
      if (part.empty() || r.ec != std::errc() || r.ptr != en || !std::isfinite(v)) {
        bad(*e, "'" + s + "' is not a decimal string (DS): value '" + part + "' is not a finite number");
      }
      out.push_back(v);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return out;
  }

  // An IS (integer string) element with VM 1.
  std::optional<int64_t> is(Tag tag) const {
    const Element* e = find(tag);
    if (!e) return std::nullopt;
    const std::string s = text_value(w_, *e);
    const char* b = s.data();
    const char* en = s.data() + s.size();
    if (b != en && *b == '+') ++b;
    int64_t v = 0;
    const auto r = std::from_chars(b, en, v);
    if (s.empty() || r.ec != std::errc() || r.ptr != en) bad(*e, "'" + s + "' is not an integer string (IS)");
    return v;
  }

  [[noreturn]] void bad(const Element& e, const std::string& why) const {
    throw Error(w_.what(), tag_str(e.tag) + " at offset " + std::to_string(e.offset) + ": " + why, kDamagedHint);
  }
  [[noreturn]] void missing(Tag tag) const {
    throw Error(w_.what(), "the data set has no " + tag_str(tag) + " (required for an image)",
                "pass a DICOM image file; structured reports, RT plans and presentation states hold no pixels");
  }

 private:
  // The element, after checking its explicit VR against the dictionary (UN is accepted for any tag).
  const Element* find(Tag tag) const {
    const auto it = elements_.find(tag);
    if (it == elements_.end()) return nullptr;
    const Element& e = it->second;
    const char* expected = find_known(tag)->vr;
    if (explicit_vr_ && e.vr != expected && e.vr != "UN") {
      bad(e, "VR is " + e.vr + ", the dictionary says " + expected);
    }
    return &e;
  }

  const Walker& w_;
  bool explicit_vr_;
  std::map<Tag, Element> elements_;
};

}  // namespace

DicomImage read_dicom(const fs::path& path) {
  const std::string what = "reading DICOM " + path.string();
  const std::vector<uint8_t> bytes = read_whole_file(path, what);
  const Walker w(bytes, what);

  // --- preamble and magic ---
  if (bytes.size() < kMetaOffset) {
    throw Error(what,
                "the file is " + std::to_string(bytes.size()) +
                    " bytes, too short for the 128-byte preamble and the 'DICM' magic at offset 128",
                "pass a DICOM Part 10 file (.dcm)");
  }
  if (std::string(reinterpret_cast<const char*>(w.data(kMagicOffset)), 4) != "DICM") {
    char found[32];
    std::snprintf(found, sizeof found, "%02X %02X %02X %02X", bytes[128], bytes[129], bytes[130], bytes[131]);
    throw Error(what,
                std::string("no 'DICM' magic at offset 128 (found bytes ") + found + "): not a DICOM Part 10 file",
                "pass a DICOM Part 10 file; a bare data set without preamble can be rewritten as one with "
                "`dcmconv +F in out.dcm` (DCMTK)");
  }

  // --- file meta information: group 0002, explicit VR little endian ---
  const std::string meta_where = "in the file meta information";
  uint64_t pos = kMetaOffset;
  std::optional<std::string> ts;
  while (pos < w.size()) {
    if (w.size() - pos < 2) break;  // the data set walk below reports the truncation
    if (w.u16(pos) != 0x0002) break;
    const Element e = w.header(pos, /*explicit_vr=*/true, meta_where);
    if (e.undefined()) {
      throw Error(what,
                  tag_str(e.tag) + " at offset " + std::to_string(pos) + " " + meta_where +
                      ": undefined length is not allowed in the file meta information",
                  kDamagedHint);
    }
    if (e.tag == kTransferSyntaxUid) {
      if (e.vr != "UI") {
        throw Error(what, tag_str(e.tag) + " at offset " + std::to_string(pos) + ": VR is " + e.vr + ", expected UI",
                    kDamagedHint);
      }
      ts = text_value(w, e);
    }
    pos = e.end();
  }
  if (!ts) {
    throw Error(
        what, "the file meta information (group 0002 after 'DICM') has no " + tag_str(kTransferSyntaxUid),
        "the file is damaged or written by a non-conforming tool; rewrite it with `dcmconv +te in.dcm out.dcm`");
  }
  if (*ts != kImplicitLittleUid && *ts != kExplicitLittleUid) {
    throw Error(what,
                "transfer syntax " + *ts + " (" + transfer_syntax_name(*ts) +
                    ") is not supported; only Implicit VR Little Endian (1.2.840.10008.1.2) and Explicit VR "
                    "Little Endian (1.2.840.10008.1.2.1) are read",
                kConvertHint);
  }
  const bool explicit_vr = *ts == kExplicitLittleUid;

  // --- data set: keep the interpreted top-level elements, walk everything else ---
  Attributes attrs(w, explicit_vr);
  const std::string top_where = "in the data set";
  while (pos < w.size()) {
    const Element e = w.header(pos, explicit_vr, top_where);
    if ((e.tag >> 16) == 0xFFFE) {
      throw Error(what,
                  "offset " + std::to_string(pos) + " " + top_where + ": unexpected " + tag_str(e.tag) +
                      " outside any sequence",
                  kDamagedHint);
    }
    if (is_interpreted(e.tag)) {
      if (e.undefined() && e.tag != kPixelData) {  // (PixelData gets its own message from skip_element)
        attrs.bad(e, "undefined length (0xFFFFFFFF) for a value that is not a sequence");
      }
      attrs.add(e);
    }
    pos = w.skip_element(e, explicit_vr, 0, top_where);
  }

  // --- Image Pixel module ---
  DicomImage img;
  img.transfer_syntax_uid = *ts;
  img.modality = attrs.text(kModality).value_or("");

  // PixelData first: a file without it is not an image at all (a report, a plan), whatever else it lacks.
  if (!attrs.has(kPixelData)) attrs.missing(kPixelData);
  img.samples_per_pixel = attrs.required_us(kSamplesPerPixel);
  if (img.samples_per_pixel != 1) {
    throw Error(what,
                tag_str(kSamplesPerPixel) + " is " + std::to_string(img.samples_per_pixel) +
                    ": only single-sample (grey-scale) images are supported, not colour",
                "convert the image to grey-scale first");
  }
  const auto photometric = attrs.text(kPhotometric);
  if (!photometric) attrs.missing(kPhotometric);
  if (*photometric != "MONOCHROME1" && *photometric != "MONOCHROME2") {
    throw Error(what,
                tag_str(kPhotometric) + " is '" + *photometric + "': only MONOCHROME1 and MONOCHROME2 are supported",
                "convert the image to grey-scale first");
  }
  img.photometric = *photometric;

  img.rows = attrs.required_us(kRows);
  img.cols = attrs.required_us(kColumns);
  if (img.rows == 0 || img.cols == 0) {
    throw Error(what,
                "the image is " + std::to_string(img.rows) + " x " + std::to_string(img.cols) + " (" + tag_str(kRows) +
                    " x " + tag_str(kColumns) + "): both must be > 0",
                kDamagedHint);
  }
  if (const auto frames = attrs.is(kNumberOfFrames)) {
    if (*frames < 1)
      attrs.bad(attrs.get(kNumberOfFrames), "NumberOfFrames is " + std::to_string(*frames) + ", must be >= 1");
    img.frames = *frames;
  }

  img.bits_allocated = attrs.required_us(kBitsAllocated);
  if (img.bits_allocated != 8 && img.bits_allocated != 16) {
    throw Error(what,
                tag_str(kBitsAllocated) + " is " + std::to_string(img.bits_allocated) +
                    ": only 8 and 16 bits per pixel are supported",
                "convert the image to 8- or 16-bit pixels first");
  }
  img.bits_stored = attrs.required_us(kBitsStored);
  img.high_bit = attrs.required_us(kHighBit);
  if (img.bits_stored < 1 || img.bits_stored > img.high_bit + 1 || img.high_bit + 1 > img.bits_allocated) {
    throw Error(what,
                "BitsStored " + std::to_string(img.bits_stored) + ", HighBit " + std::to_string(img.high_bit) +
                    " and BitsAllocated " + std::to_string(img.bits_allocated) +
                    " violate 1 <= BitsStored <= HighBit + 1 <= BitsAllocated (" + tag_str(kBitsStored) + ", " +
                    tag_str(kHighBit) + ")",
                kDamagedHint);
  }
  const uint16_t representation = attrs.required_us(kPixelRepresentation);
  if (representation > 1) {
    attrs.bad(attrs.get(kPixelRepresentation),
              "PixelRepresentation is " + std::to_string(representation) + ", must be 0 (unsigned) or 1 (signed)");
  }
  img.is_signed = representation == 1;

  if (const auto v = attrs.ds(kRescaleSlope)) {
    if (v->size() != 1)
      attrs.bad(attrs.get(kRescaleSlope), "RescaleSlope must hold one value, found " + std::to_string(v->size()));
    img.rescale_slope = (*v)[0];
  }
  if (const auto v = attrs.ds(kRescaleIntercept)) {
    if (v->size() != 1) {
      attrs.bad(attrs.get(kRescaleIntercept),
                "RescaleIntercept must hold one value, found " + std::to_string(v->size()));
    }
    img.rescale_intercept = (*v)[0];
  }
  if (const auto v = attrs.ds(kPixelSpacing)) {
    if (v->size() != 2)
      attrs.bad(attrs.get(kPixelSpacing), "PixelSpacing must hold 2 values, found " + std::to_string(v->size()));
    img.pixel_spacing_mm = std::array<double, 2>{(*v)[0], (*v)[1]};
  }
  if (const auto v = attrs.ds(kWindowCenter)) img.window_center = v->front();
  if (const auto v = attrs.ds(kWindowWidth)) img.window_width = v->front();

  // --- pixel data ---
  const Element& px = attrs.get(kPixelData);
  if (explicit_vr && px.vr != "OW" && px.vr != "OB" && px.vr != "UN") {
    attrs.bad(px, "VR is " + px.vr + ", expected OB or OW");
  }
  const uint64_t bytes_per_word = static_cast<uint64_t>(img.bits_allocated / 8);
  const uint64_t frame_bytes = static_cast<uint64_t>(img.rows) * static_cast<uint64_t>(img.cols) * bytes_per_word;
  const bool fits = static_cast<uint64_t>(img.frames) <= std::numeric_limits<uint64_t>::max() / frame_bytes;
  const uint64_t expected = fits ? frame_bytes * static_cast<uint64_t>(img.frames) : 0;
  const bool padded = expected % 2 == 1 && px.length == expected + 1;
  if (!fits || (px.length != expected && !padded)) {
    throw Error(what,
                tag_str(px.tag) + " at offset " + std::to_string(px.offset) + ": holds " + std::to_string(px.length) +
                    " bytes, but Rows " + std::to_string(img.rows) + " x Columns " + std::to_string(img.cols) +
                    " x NumberOfFrames " + std::to_string(img.frames) + " x " + std::to_string(bytes_per_word) +
                    " bytes (BitsAllocated " + std::to_string(img.bits_allocated) +
                    ") = " + (fits ? std::to_string(expected) : "too many") + " bytes",
                "the header and the pixel data disagree: the file was written incorrectly or is damaged");
  }

  // value = sample * slope + intercept, the sample being bits [high_bit - bits_stored + 1, high_bit]
  // of each little-endian word, sign-extended when signed.
  const size_t n = static_cast<size_t>(expected / bytes_per_word);
  img.pixels.resize(n);  // (frames, rows, cols)
  const uint8_t* src = w.data(px.value_offset);
  const int shift = img.high_bit + 1 - img.bits_stored;
  const uint32_t mask = (uint32_t{1} << img.bits_stored) - 1;
  const int64_t sign_bit = int64_t{1} << (img.bits_stored - 1);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t word = bytes_per_word == 1 ? src[i] : static_cast<uint32_t>(src[2 * i] | (src[2 * i + 1] << 8));
    int64_t sample = (word >> shift) & mask;
    if (img.is_signed && (sample & sign_bit)) sample -= int64_t{1} << img.bits_stored;
    img.pixels[i] = static_cast<float>(static_cast<double>(sample) * img.rescale_slope + img.rescale_intercept);
  }
  return img;
}

}  // namespace spikefm
