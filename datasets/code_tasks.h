// HumanEval-format code tasks: the task reader, the completions reader/writer, the program that runs
// a completion against a task's tests, and the unbiased pass@k estimator.
//
// Task file (JSONL, the format of HumanEval, Chen et al. 2021): one JSON object per line, blank lines
// allowed, keys other than these five ignored (e.g. a "family" key):
//   task_id             string, non-empty, unique in the file       "spikefm/test/12"
//   prompt              string: signature + docstring              "def f(xs: list[int]) -> int:\n    \"\"\"...\"\"\"\n"
//   canonical_solution  string: the function body, indented        "    return sum(xs)\n"
//   test                string defining `def check(candidate):`     "\n\ndef check(candidate):\n    assert ...\n"
//   entry_point         string: an ASCII Python identifier (not a keyword) that a line of the prompt
//                       defines at top level: the line starts with "def <entry_point>("
// spikefm's own set is datasets/data/code/code_{train,test}.jsonl, written by scripts/gen_code_tasks.py
// (see docs/code_tasks.md); its family/category sidecar code_meta.jsonl is not read here.
//
// Completions file (JSONL): one {"task_id": ..., "completion": ...} object per line (extra keys
// ignored); a task may have several lines: the n samples of pass@k.
//
// Execution (HumanEval's convention): the program
//   prompt + completion + "\n" + test + "\n" + "check(" + entry_point + ")\n"
// passes when it exits 0 (run it in the sandbox; this module never executes code).
//
// pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1): of n samples
// of a task, c pass; the probability that at least one of k samples drawn without replacement passes:
//   pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i)
// (the product form avoids huge binomials). The benchmark score is the mean over tasks.
//
// Every malformed input is a spikefm::Error naming the file, the 1-based line and the field.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace spikefm {

struct CodeTask {
  std::string task_id;
  std::string prompt;
  std::string canonical_solution;
  std::string test;
  std::string entry_point;
};

// Parses a task file's text; `origin` names it in errors. Throws on any line that is not a JSON
// object, on a missing or non-string field, an empty or duplicate task_id, an entry_point that is not
// an identifier or not defined in its prompt, and on a file without tasks.
std::vector<CodeTask> parse_code_tasks(std::string_view jsonl, const std::string& origin);
std::vector<CodeTask> load_code_tasks(const std::filesystem::path& path);

struct CodeCompletion {
  std::string task_id;
  std::string completion;  // the text generated after the prompt (the function body)
};

// In file order; the same checks per line as the task reader (duplicates of a task_id are samples,
// not errors). A file without completions is an error.
std::vector<CodeCompletion> parse_completions(std::string_view jsonl, const std::string& origin);
std::vector<CodeCompletion> load_completions(const std::filesystem::path& path);
// Writes one {"task_id", "completion"} line per entry, atomically (temp + rename).
void write_completions(const std::filesystem::path& path, const std::vector<CodeCompletion>& completions);

// by_task[i] = the completions of tasks[i], in file order (possibly none). A completion whose task_id
// is not among `tasks` throws, naming it.
std::vector<std::vector<std::string>> completions_by_task(const std::vector<CodeTask>& tasks,
                                                          const std::vector<CodeCompletion>& completions);

// prompt + completion + "\n" + test + "\n" + "check(" + entry_point + ")\n"
std::string assemble_program(const CodeTask& task, const std::string& completion);

// The unbiased estimator above. Requires n >= 1, 0 <= c <= n, 1 <= k <= n (else spikefm::Error).
// c = 0 gives 0, n - c < k gives exactly 1.
double pass_at_k(int n, int c, int k);

// [A-Za-z_][A-Za-z0-9_]* and not a Python keyword.
bool is_python_identifier(std::string_view name);

// The shipped task set: $SPIKEFM_CODE_DIR when set and non-empty, else the source tree's
// datasets/data/code.
std::filesystem::path default_code_tasks_dir();
// dir / "code_<split>.jsonl" for split "train" or "test"; any other split throws.
std::filesystem::path code_tasks_file(const std::string& split,
                                      const std::filesystem::path& dir = default_code_tasks_dir());

}  // namespace spikefm
