#include "datasets/code_meta.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace spikefm {

std::map<std::string, CodeTaskMeta> load_code_meta(const std::filesystem::path& path) {
  const std::string what = "reading code task metadata " + path.string();
  std::ifstream in(path);
  if (!in) throw Error(what, "cannot open the file", "check the path (default: datasets/data/code/code_meta.jsonl)");
  std::map<std::string, CodeTaskMeta> out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error&) {
      throw Error(what, "line " + std::to_string(line_no) + ": malformed JSON");
    }
    auto field = [&](const char* name) {
      if (!obj.is_object() || !obj.contains(name) || !obj[name].is_string()) {
        throw Error(what, "line " + std::to_string(line_no) + ": field \"" + name + "\" is missing or not a string");
      }
      return obj[name].get<std::string>();
    };
    out[field("task_id")] = CodeTaskMeta{field("family"), field("category")};
  }
  if (in.bad()) throw Error(what, "I/O error while reading");
  return out;
}

}  // namespace spikefm
