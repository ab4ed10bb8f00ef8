#include "datasets/code_tasks.h"

#include <array>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"

namespace spikefm {

namespace {

using nlohmann::json;

constexpr const char* kTaskFix =
    "each line must be one JSON object with the string fields task_id, prompt, canonical_solution, test and "
    "entry_point (HumanEval format); regenerate spikefm's set with scripts/gen_code_tasks.py";
constexpr const char* kCompletionFix =
    "each line must be one JSON object {\"task_id\": \"...\", \"completion\": \"...\"} with string values";

std::string read_text(const std::filesystem::path& path, const std::string& what, const std::string& fix) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error(what, "the file does not exist", fix);
  if (!std::filesystem::is_regular_file(status)) throw Error(what, "not a regular file", fix);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what, "cannot open the file", "check its permissions");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(what, "I/O error while reading");
  return ss.str();
}

bool is_blank(std::string_view s) {
  for (char ch : s) {
    if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n' && ch != '\f' && ch != '\v') return false;
  }
  return true;
}

const char* type_name(const json& v) { return v.type_name(); }

// One JSON object per non-blank line; calls fn(line_number, object) in order.
template <typename Fn>
void for_each_object(std::string_view text, const std::string& what, const char* fix, Fn&& fn) {
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (is_blank(line)) continue;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    json obj;
    try {
      obj = json::parse(line);
    } catch (const json::parse_error& e) {
      std::string msg = e.what();
      if (const size_t close = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && close != std::string::npos) {
        msg = msg.substr(close + 2);
      }
      // nlohmann counts lines inside the one line it was given; only the column is meaningful here.
      if (msg.rfind("parse error at line 1, ", 0) == 0) msg = msg.substr(23);
      throw Error(what, "line " + std::to_string(line_no) + ": malformed JSON: " + msg, fix);
    }
    if (!obj.is_object()) {
      throw Error(what, "line " + std::to_string(line_no) + ": expected a JSON object, got " + type_name(obj), fix);
    }
    fn(line_no, obj);
  }
}

std::string string_field(const json& obj, const char* field, int64_t line_no, const std::string& what,
                         const char* fix) {
  const auto it = obj.find(field);
  if (it == obj.end()) {
    throw Error(what, "line " + std::to_string(line_no) + ": field \"" + field + "\" is missing", fix);
  }
  if (!it->is_string()) {
    throw Error(what,
                "line " + std::to_string(line_no) + ": field \"" + field + "\" must be a string, got " +
                    type_name(*it),
                fix);
  }
  return it->get<std::string>();
}

// True when a line of `prompt` starts with "def <name>" followed by optional blanks and "(".
bool defines_function(const std::string& prompt, const std::string& name) {
  const std::string head = "def " + name;
  size_t pos = 0;
  while (pos <= prompt.size()) {
    if (prompt.compare(pos, head.size(), head) == 0) {
      size_t i = pos + head.size();
      while (i < prompt.size() && (prompt[i] == ' ' || prompt[i] == '\t')) ++i;
      if (i < prompt.size() && prompt[i] == '(') return true;
    }
    const size_t nl = prompt.find('\n', pos);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return false;
}

}  // namespace

bool is_python_identifier(std::string_view name) {
  static constexpr std::array<std::string_view, 35> kKeywords = {
      "False", "None",   "True",    "and",      "as",   "assert", "async",  "await",    "break",
      "class", "continue", "def",   "del",      "elif", "else",   "except", "finally",  "for",
      "from",  "global", "if",      "import",   "in",   "is",     "lambda", "nonlocal", "not",
      "or",    "pass",   "raise",   "return",   "try",  "while",  "with",   "yield"};
  if (name.empty()) return false;
  auto alpha = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; };
  if (!alpha(name[0])) return false;
  for (char ch : name) {
    if (!alpha(ch) && !(ch >= '0' && ch <= '9')) return false;
  }
  for (std::string_view kw : kKeywords) {
    if (name == kw) return false;
  }
  return true;
}

std::vector<CodeTask> parse_code_tasks(std::string_view jsonl, const std::string& origin) {
  const std::string what = "reading code tasks " + origin;
  std::vector<CodeTask> tasks;
  std::unordered_map<std::string, int64_t> first_line;  // task_id -> line of its first occurrence
  for_each_object(jsonl, what, kTaskFix, [&](int64_t line_no, const json& obj) {
    const std::string at = "line " + std::to_string(line_no) + ": ";
    CodeTask t;
    t.task_id = string_field(obj, "task_id", line_no, what, kTaskFix);
    t.prompt = string_field(obj, "prompt", line_no, what, kTaskFix);
    t.canonical_solution = string_field(obj, "canonical_solution", line_no, what, kTaskFix);
    t.test = string_field(obj, "test", line_no, what, kTaskFix);
    t.entry_point = string_field(obj, "entry_point", line_no, what, kTaskFix);
    if (t.task_id.empty()) throw Error(what, at + "field \"task_id\" is empty", kTaskFix);
    const auto [it, inserted] = first_line.emplace(t.task_id, line_no);
    if (!inserted) {
      throw Error(what,
                  at + "field \"task_id\": duplicate \"" + t.task_id + "\" (first on line " +
                      std::to_string(it->second) + ")",
                  "task ids must be unique within a file");
    }
    if (!is_python_identifier(t.entry_point)) {
      throw Error(what,
                  at + "field \"entry_point\": \"" + t.entry_point +
                      "\" is not a Python identifier ([A-Za-z_][A-Za-z0-9_]*, not a keyword)",
                  kTaskFix);
    }
    if (!defines_function(t.prompt, t.entry_point)) {
      throw Error(what,
                  at + "field \"entry_point\": \"" + t.entry_point + "\" is not defined in the prompt (no line starts with \"def " +
                      t.entry_point + "(\")",
                  "the prompt must contain the signature of the function that check() calls");
    }
    tasks.push_back(std::move(t));
  });
  if (tasks.empty()) throw Error(what, "the file contains no tasks", kTaskFix);
  return tasks;
}

std::vector<CodeTask> load_code_tasks(const std::filesystem::path& path) {
  const std::string text = read_text(path, "reading code tasks " + path.string(),
                                     "run scripts/gen_code_tasks.py, or point SPIKEFM_CODE_DIR at the task files");
  return parse_code_tasks(text, path.string());
}

std::vector<CodeCompletion> parse_completions(std::string_view jsonl, const std::string& origin) {
  const std::string what = "reading completions " + origin;
  std::vector<CodeCompletion> out;
  for_each_object(jsonl, what, kCompletionFix, [&](int64_t line_no, const json& obj) {
    CodeCompletion c;
    c.task_id = string_field(obj, "task_id", line_no, what, kCompletionFix);
    c.completion = string_field(obj, "completion", line_no, what, kCompletionFix);
    if (c.task_id.empty()) {
      throw Error(what, "line " + std::to_string(line_no) + ": field \"task_id\" is empty", kCompletionFix);
    }
    out.push_back(std::move(c));
  });
  if (out.empty()) throw Error(what, "the file contains no completions", kCompletionFix);
  return out;
}

std::vector<CodeCompletion> load_completions(const std::filesystem::path& path) {
  const std::string text = read_text(path, "reading completions " + path.string(), "check the path");
  return parse_completions(text, path.string());
}

void write_completions(const std::filesystem::path& path, const std::vector<CodeCompletion>& completions) {
  std::string text;
  for (const auto& c : completions) {
    json obj = json::object();
    obj["task_id"] = c.task_id;
    obj["completion"] = c.completion;
    // Bytes that are not UTF-8 (a byte-level sampler can emit them) become U+FFFD; such a completion
    // is not valid Python source either way.
    text += obj.dump(-1, ' ', false, json::error_handler_t::replace);
    text += '\n';
  }
  write_file_atomic(path, text);
}

std::vector<std::vector<std::string>> completions_by_task(const std::vector<CodeTask>& tasks,
                                                          const std::vector<CodeCompletion>& completions) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < tasks.size(); ++i) index.emplace(tasks[i].task_id, i);
  std::vector<std::vector<std::string>> by_task(tasks.size());
  for (size_t j = 0; j < completions.size(); ++j) {
    const auto it = index.find(completions[j].task_id);
    if (it == index.end()) {
      throw Error("grouping completions by task",
                  "completion " + std::to_string(j + 1) + " names task_id \"" + completions[j].task_id +
                      "\", which is not in the task file",
                  "score completions against the task file they were generated for");
    }
    by_task[it->second].push_back(completions[j].completion);
  }
  return by_task;
}

std::string assemble_program(const CodeTask& task, const std::string& completion) {
  return task.prompt + completion + "\n" + task.test + "\n" + "check(" + task.entry_point + ")\n";
}

double pass_at_k(int n, int c, int k) {
  const std::string what = "pass@k with n = " + std::to_string(n) + ", c = " + std::to_string(c) +
                           ", k = " + std::to_string(k);
  if (n < 1) throw Error(what, "n (samples per task) must be >= 1", "draw at least one sample per task");
  if (c < 0 || c > n) throw Error(what, "c (passing samples) must be in 0..n", "");
  if (k < 1) throw Error(what, "k must be >= 1", "");
  if (k > n) {
    throw Error(what, "k is larger than the number of samples n", "draw at least k samples per task, or lower k");
  }
  if (n - c < k) return 1.0;  // every k-subset holds a passing sample
  // 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i)
  double fail = 1.0;
  for (int i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail;
}

std::filesystem::path default_code_tasks_dir() {
  const char* env = std::getenv("SPIKEFM_CODE_DIR");
  if (env && *env) return env;
  return SPIKEFM_CODE_TASKS_DIR;
}

std::filesystem::path code_tasks_file(const std::string& split, const std::filesystem::path& dir) {
  if (split != "train" && split != "test") {
    throw Error("code task split \"" + split + "\"", "unknown split", "use \"train\" or \"test\"");
  }
  return dir / ("code_" + split + ".jsonl");
}

}  // namespace spikefm
