#include "datasets/med_vqa_json.h"

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "common/error.h"

namespace spikefm {

namespace {

using nlohmann::json;

std::string type_of(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number_integer() || j.is_number_unsigned()) return "an integer";
  if (j.is_number_float()) return "a floating-point number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

// The parsed top-level array of `path`; `format` names the benchmark in messages.
json load_array(const std::filesystem::path& path, const std::string& format, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error(what, "the file does not exist", "check the path");
  if (!std::filesystem::is_regular_file(status)) throw Error(what, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what, "cannot open the file", "check its permissions");
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::parse_error& e) {
    throw Error(what, std::string("not valid JSON: ") + e.what(), "pass the " + format + " .json file");
  }
  if (!doc.is_array()) {
    throw Error(what, "the top level is " + type_of(doc) + ", a " + format + " file is a JSON array of records",
                "pass the " + format + " .json file");
  }
  return doc;
}

// Reads the fields of one record; every message names the file, the record index, the qid when
// known and the field.
class RecordReader {
 public:
  RecordReader(const json& rec, size_t index, const std::string& what) : rec_(rec), what_(what) {
    where_ = "record " + std::to_string(index);
    if (!rec.is_object()) fail("is " + type_of(rec) + ", expected an object");
    id_ = std::to_string(index);
    if (const json* q = find("qid")) {
      id_ = id_text("qid", *q);
      where_ += " (qid " + id_ + ")";
    }
  }

  const std::string& id() const { return id_; }

  [[noreturn]] void fail(const std::string& why) const { throw Error(what_, where_ + " " + why); }
  [[noreturn]] void fail_field(const std::string& field, const std::string& why) const {
    throw Error(what_, where_ + ": field '" + field + "' " + why);
  }

  // nullptr when absent (or null, for optional fields).
  const json* find(const std::string& field) const {
    const auto it = rec_.find(field);
    return it == rec_.end() ? nullptr : &*it;
  }
  const json& require(const std::string& field) const {
    const json* j = find(field);
    if (!j) fail_field(field, "is missing");
    return *j;
  }

  std::string required_string(const std::string& field) const {
    const json& j = require(field);
    if (!j.is_string()) fail_field(field, "is " + type_of(j) + ", expected a string");
    return j.get<std::string>();
  }
  std::string optional_string(const std::string& field) const {
    const json* j = find(field);
    if (!j || j->is_null()) return {};
    if (!j->is_string()) fail_field(field, "is " + type_of(*j) + ", expected a string");
    return j->get<std::string>();
  }
  // A string, or a number normalised to its JSON text (2 -> "2", 2.5 -> "2.5").
  std::string string_or_number(const std::string& field) const {
    const json& j = require(field);
    if (j.is_string()) return j.get<std::string>();
    if (j.is_number()) return j.dump();
    fail_field(field, "is " + type_of(j) + ", expected a string or a number");
  }
  // An integer or string identifier as text.
  std::string id_text(const std::string& field, const json& j) const {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_number_integer() || j.is_number_unsigned()) return j.dump();
    fail_field(field, "is " + type_of(j) + ", expected an integer or a string");
  }
  // answer_type: CLOSED -> true, OPEN -> false, case-insensitive, surrounding blanks ignored.
  bool closed() const {
    const std::string raw = required_string("answer_type");
    std::string t;
    for (char c : raw) t += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto b = t.find_first_not_of(" \t\r\n");
    t = b == std::string::npos ? "" : t.substr(b, t.find_last_not_of(" \t\r\n") - b + 1);
    if (t == "CLOSED") return true;
    if (t == "OPEN") return false;
    fail_field("answer_type", "is \"" + raw + "\", expected \"CLOSED\" or \"OPEN\" (case-insensitive)");
  }

 private:
  const json& rec_;
  std::string what_, where_, id_;
};

}  // namespace

std::vector<MedVqaRecord> read_vqa_rad_json(const std::filesystem::path& path) {
  const std::string what = "reading VQA-RAD JSON " + path.string();
  const json doc = load_array(path, "VQA-RAD", what);
  std::vector<MedVqaRecord> out;
  out.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const RecordReader r(doc[i], i, what);
    MedVqaRecord rec;
    rec.id = r.id();
    rec.image = r.required_string("image_name");
    rec.question = r.required_string("question");
    rec.answer = r.string_or_number("answer");
    rec.closed = r.closed();
    rec.question_type = r.optional_string("question_type");
    rec.location = r.optional_string("image_organ");
    rec.lang = "en";
    out.push_back(std::move(rec));
  }
  return out;
}

std::vector<MedVqaRecord> read_slake_json(const std::filesystem::path& path, const std::string& lang) {
  const std::string what = "reading SLAKE JSON " + path.string();
  if (lang != "en" && lang != "zh" && lang != "all") {
    throw Error(what, "unknown language filter '" + lang + "'", "use 'en', 'zh' or 'all'");
  }
  const json doc = load_array(path, "SLAKE", what);
  std::vector<MedVqaRecord> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const RecordReader r(doc[i], i, what);
    MedVqaRecord rec;
    rec.id = r.id();
    if (const json* img_id = r.find("img_id")) rec.image_id = r.id_text("img_id", *img_id);
    rec.image = r.required_string("img_name");
    rec.question = r.required_string("question");
    rec.answer = r.string_or_number("answer");
    rec.closed = r.closed();
    rec.lang = r.required_string("q_lang");
    if (rec.lang != "en" && rec.lang != "zh") {
      r.fail_field("q_lang", "is \"" + rec.lang + "\", expected \"en\" or \"zh\"");
    }
    rec.question_type = r.optional_string("content_type");
    rec.modality = r.optional_string("modality");
    rec.location = r.optional_string("location");
    // Every record is validated, also those the language filter drops.
    if (lang == "all" || rec.lang == lang) out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace spikefm
