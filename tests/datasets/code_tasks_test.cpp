// Tests of the HumanEval-format task reader, completions, program assembly and pass@k
// (datasets/code_tasks.h), and of the shipped task set datasets/data/code.
//
// References are independent of the code under test: pass@k against brute-force enumeration of all
// k-subsets of n samples; the train/test split recomputed here from the two files (whitespace
// normalisation and signature extraction written again, not taken from the generator); the
// canonical solutions executed by python3 and checked to pass, and a wrong completion to fail.
#include "datasets/code_tasks.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/test_tmp.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::slurp;
using test::spit;
using test::TempDir;

const fs::path kShipped = SPIKEFM_CODE_TASKS_DIR;
const fs::path kSource = SPIKEFM_SOURCE_DIR;

// One valid task line; fields can be overridden or removed to make malformed fixtures.
std::string task_line(const std::string& id, const std::string& entry = "add_one",
                      const std::string& prompt = "def add_one(x: int) -> int:\n    \"\"\"Return x plus 1.\"\"\"\n") {
  nlohmann::json j = {{"task_id", id},
                      {"prompt", prompt},
                      {"canonical_solution", "    return x + 1\n"},
                      {"test", "\n\ndef check(candidate):\n    assert candidate(1) == 2\n"},
                      {"entry_point", entry}};
  return j.dump();
}

std::string with_field(const std::string& line, const std::string& field, const nlohmann::json& value) {
  auto j = nlohmann::json::parse(line);
  j[field] = value;
  return j.dump();
}

std::string without_field(const std::string& line, const std::string& field) {
  auto j = nlohmann::json::parse(line);
  j.erase(field);
  return j.dump();
}

// Exit status of a shell command (-1 when it did not exit normally).
int run_status(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  if (st == -1 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

// Debian's interpreter when installed (a version-manager shim on PATH can cost a second per start),
// else python3 from PATH; "" when there is none.
std::string python3() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return run_status("command -v python3 >/dev/null 2>&1") == 0 ? "python3" : "";
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Whitespace-normalised text: every run of whitespace becomes one space, ends trimmed.
std::string normalise(const std::string& s) {
  std::string out;
  bool gap = false;
  for (unsigned char ch : s) {
    if (std::isspace(ch)) {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) out += ' ';
    gap = false;
    out += static_cast<char>(ch);
  }
  return out;
}

// The prompt line that defines the entry point, or "" if none.
std::string signature_line(const CodeTask& t) {
  std::istringstream in(t.prompt);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("def " + t.entry_point + "(", 0) == 0) return line;
  }
  return "";
}

// ---- pass@k -------------------------------------------------------------------------------------

// Fraction of the k-subsets of n samples (the first c of which pass) that contain a passing sample,
// by enumerating every subset as a bit mask.
double brute_force_pass_at_k(int n, int c, int k) {
  int64_t hit = 0, total = 0;
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    if (__builtin_popcount(mask) != k) continue;
    ++total;
    if ((mask & ((1u << c) - 1u)) != 0) ++hit;
  }
  return static_cast<double>(hit) / static_cast<double>(total);
}

TEST(PassAtK, MatchesBruteForceEnumerationOfSubsets) {
  for (int n = 1; n <= 10; ++n) {
    for (int c = 0; c <= n; ++c) {
      for (int k = 1; k <= n; ++k) {
        EXPECT_NEAR(pass_at_k(n, c, k), brute_force_pass_at_k(n, c, k), 1e-12) << "n=" << n << " c=" << c << " k=" << k;
      }
    }
  }
}

TEST(PassAtK, EdgeCases) {
  EXPECT_EQ(pass_at_k(10, 0, 1), 0.0);
  EXPECT_EQ(pass_at_k(10, 0, 10), 0.0);
  EXPECT_EQ(pass_at_k(7, 7, 3), 1.0);
  EXPECT_EQ(pass_at_k(10, 8, 3), 1.0);  // n - c = 2 < k: every 3 samples include a passing one
  EXPECT_EQ(pass_at_k(1, 1, 1), 1.0);
  // pass@1 is the plain fraction c/n.
  EXPECT_NEAR(pass_at_k(200, 37, 1), 37.0 / 200.0, 1e-12);
  // Large n stays finite and in range (binomials like C(1000, 500) would overflow a double).
  const double p = pass_at_k(1000, 3, 500);
  EXPECT_NEAR(p, 1.0 - (500.0 / 1000.0) * (499.0 / 999.0) * (498.0 / 998.0), 1e-12);
}

TEST(PassAtK, RejectsImpossibleArguments) {
  EXPECT_NE(error_of([] { pass_at_k(3, 1, 5); }).find("k is larger than the number of samples n"), std::string::npos);
  EXPECT_NE(error_of([] { pass_at_k(0, 0, 1); }).find("n (samples per task) must be >= 1"), std::string::npos);
  EXPECT_NE(error_of([] { pass_at_k(3, 4, 1); }).find("c (passing samples) must be in 0..n"), std::string::npos);
  EXPECT_NE(error_of([] { pass_at_k(3, -1, 1); }).find("c (passing samples)"), std::string::npos);
  EXPECT_NE(error_of([] { pass_at_k(3, 1, 0); }).find("k must be >= 1"), std::string::npos);
}

// ---- reader --------------------------------------------------------------------------------------

TEST(CodeTaskReader, ReadsFieldsAndAllowsBlankLinesCrlfAndExtraKeys) {
  TempDir dir;
  const auto path = dir / "tasks.jsonl";
  const std::string extra = with_field(task_line("b/1", "twice", "def twice(s):\n    pass\n"), "family", "str_repeat");
  spit(path, "\n" + task_line("a/0") + "\r\n   \n" + extra + "\n\n");
  const auto tasks = load_code_tasks(path);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].task_id, "a/0");
  EXPECT_EQ(tasks[0].prompt, "def add_one(x: int) -> int:\n    \"\"\"Return x plus 1.\"\"\"\n");
  EXPECT_EQ(tasks[0].canonical_solution, "    return x + 1\n");
  EXPECT_EQ(tasks[0].test, "\n\ndef check(candidate):\n    assert candidate(1) == 2\n");
  EXPECT_EQ(tasks[0].entry_point, "add_one");
  EXPECT_EQ(tasks[1].task_id, "b/1");
  EXPECT_EQ(tasks[1].entry_point, "twice");
}

// Each fixture breaks one thing on line 3 (line 1 blank, line 2 valid); the error must name the file,
// the line and the field.
TEST(CodeTaskReader, MalformedLinesNameFileLineAndField) {
  TempDir dir;
  const std::string good = task_line("t/0");
  struct Case {
    std::string name, line;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"bad_json", R"({"task_id": "t/1", "prompt": })", {"line 3", "malformed JSON"}},
      {"truncated", task_line("t/1").substr(0, 40), {"line 3", "malformed JSON"}},
      {"not_object", "[1, 2]", {"line 3", "expected a JSON object, got array"}},
      {"missing_prompt", without_field(task_line("t/1"), "prompt"), {"line 3", "field \"prompt\" is missing"}},
      {"missing_test", without_field(task_line("t/1"), "test"), {"line 3", "field \"test\" is missing"}},
      {"missing_id", without_field(task_line("t/1"), "task_id"), {"line 3", "field \"task_id\" is missing"}},
      {"number_solution", with_field(task_line("t/1"), "canonical_solution", 42),
       {"line 3", "field \"canonical_solution\" must be a string, got number"}},
      {"null_entry", with_field(task_line("t/1"), "entry_point", nullptr),
       {"line 3", "field \"entry_point\" must be a string, got null"}},
      {"duplicate_id", task_line("t/0"), {"line 3", "field \"task_id\": duplicate \"t/0\" (first on line 2)"}},
      {"empty_id", task_line(""), {"line 3", "field \"task_id\" is empty"}},
      {"entry_not_identifier", task_line("t/1", "1abc", "def 1abc(x):\n"),
       {"line 3", "field \"entry_point\"", "is not a Python identifier"}},
      {"entry_keyword", task_line("t/1", "def", "def def(x):\n"), {"line 3", "field \"entry_point\"", "not a Python identifier"}},
      {"entry_not_defined", task_line("t/1", "other"), {"line 3", "field \"entry_point\"", "not defined in the prompt"}},
      {"entry_only_called", task_line("t/1", "add", "x = add(1)\n"), {"line 3", "not defined in the prompt"}},
  };
  for (const auto& c : cases) {
    const auto path = dir / (c.name + ".jsonl");
    spit(path, "\n" + good + "\n" + c.line + "\n");
    const std::string msg = error_of([&] { load_code_tasks(path); });
    ASSERT_FALSE(msg.empty()) << c.name << ": no error";
    EXPECT_NE(msg.find(path.string()), std::string::npos) << c.name << ": " << msg;
    for (const auto& e : c.expect) EXPECT_NE(msg.find(e), std::string::npos) << c.name << ": " << msg;
  }
}

TEST(CodeTaskReader, MissingAndEmptyFilesAreErrors) {
  TempDir dir;
  EXPECT_NE(error_of([&] { load_code_tasks(dir / "nope.jsonl"); }).find("does not exist"), std::string::npos);
  spit(dir / "empty.jsonl", "\n  \n");
  EXPECT_NE(error_of([&] { load_code_tasks(dir / "empty.jsonl"); }).find("contains no tasks"), std::string::npos);
  EXPECT_NE(error_of([&] { load_code_tasks(dir.path()); }).find("not a regular file"), std::string::npos);
}

TEST(CodeTaskReader, IdentifierRule) {
  EXPECT_TRUE(is_python_identifier("f"));
  EXPECT_TRUE(is_python_identifier("_sum_2"));
  EXPECT_TRUE(is_python_identifier("Classify"));
  EXPECT_FALSE(is_python_identifier(""));
  EXPECT_FALSE(is_python_identifier("2f"));
  EXPECT_FALSE(is_python_identifier("a-b"));
  EXPECT_FALSE(is_python_identifier("a b"));
  EXPECT_FALSE(is_python_identifier("return"));
  EXPECT_FALSE(is_python_identifier("None"));
}

// ---- completions ---------------------------------------------------------------------------------

TEST(Completions, RoundTripSeveralSamplesPerTaskAndGrouping) {
  TempDir dir;
  const std::vector<CodeCompletion> written = {{"a/0", "    return x + 1\n"},
                                               {"a/1", "    return \"quote\\\" \\n é\"\n"},
                                               {"a/0", "    return None"},
                                               {"a/0", ""}};
  write_completions(dir / "c.jsonl", written);
  const auto read = load_completions(dir / "c.jsonl");
  ASSERT_EQ(read.size(), written.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].task_id, written[i].task_id);
    EXPECT_EQ(read[i].completion, written[i].completion);
  }
  // One JSON object per line, as other HumanEval tools write them.
  const std::string text = slurp(dir / "c.jsonl");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);

  const std::vector<CodeTask> tasks = {{"a/0", "", "", "", "f"}, {"a/1", "", "", "", "g"}, {"a/2", "", "", "", "h"}};
  const auto by = completions_by_task(tasks, read);
  ASSERT_EQ(by.size(), 3u);
  EXPECT_EQ(by[0], (std::vector<std::string>{"    return x + 1\n", "    return None", ""}));
  EXPECT_EQ(by[1].size(), 1u);
  EXPECT_TRUE(by[2].empty());

  const std::vector<CodeCompletion> stray = {{"zz/9", "pass"}};
  EXPECT_NE(error_of([&] { completions_by_task(tasks, stray); }).find("\"zz/9\", which is not in the task file"),
            std::string::npos);
}

TEST(Completions, MalformedLinesNameLineAndField) {
  TempDir dir;
  const auto path = dir / "c.jsonl";
  spit(path, R"({"task_id": "a", "completion": "x"})" "\n" R"({"task_id": "a"})" "\n");
  std::string msg = error_of([&] { load_completions(path); });
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2: field \"completion\" is missing"), std::string::npos) << msg;
  spit(path, R"({"task_id": 3, "completion": "x"})" "\n");
  msg = error_of([&] { load_completions(path); });
  EXPECT_NE(msg.find("line 1: field \"task_id\" must be a string, got number"), std::string::npos) << msg;
  spit(path, "\n\n{\"task_id\": \"a\", \"completion\": \"x\"\n");
  msg = error_of([&] { load_completions(path); });
  EXPECT_NE(msg.find("line 3: malformed JSON"), std::string::npos) << msg;
}

// ---- assembly ------------------------------------------------------------------------------------

TEST(AssembleProgram, FollowsHumanEvalConvention) {
  const CodeTask t{"x/0", "def f(a):\n    \"\"\"doc\"\"\"\n", "    return a\n", "\n\ndef check(candidate):\n    assert candidate(1) == 1\n", "f"};
  EXPECT_EQ(assemble_program(t, "    return a\n"),
            "def f(a):\n    \"\"\"doc\"\"\"\n    return a\n\n\n\ndef check(candidate):\n    assert candidate(1) == 1\n\ncheck(f)\n");
}

// ---- defaults ------------------------------------------------------------------------------------

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(CodeTasksDir, EnvironmentOverridesTheSourceTree) {
  {
    ScopedEnv env("SPIKEFM_CODE_DIR", std::nullopt);
    EXPECT_TRUE(fs::equivalent(default_code_tasks_dir(), kShipped));
  }
  {
    ScopedEnv env("SPIKEFM_CODE_DIR", std::string());  // empty counts as unset
    EXPECT_TRUE(fs::equivalent(default_code_tasks_dir(), kShipped));
  }
  ScopedEnv env("SPIKEFM_CODE_DIR", std::string("/somewhere/else"));
  EXPECT_EQ(default_code_tasks_dir(), fs::path("/somewhere/else"));
  EXPECT_EQ(code_tasks_file("test"), fs::path("/somewhere/else/code_test.jsonl"));
  EXPECT_EQ(code_tasks_file("train", "/d"), fs::path("/d/code_train.jsonl"));
  EXPECT_NE(error_of([] { code_tasks_file("val", "/d"); }).find("use \"train\" or \"test\""), std::string::npos);
}

// ---- the shipped task set -------------------------------------------------------------------------

class ShippedTasks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new std::vector<CodeTask>(load_code_tasks(code_tasks_file("train", kShipped)));
    test_ = new std::vector<CodeTask>(load_code_tasks(code_tasks_file("test", kShipped)));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
  }
  static std::vector<CodeTask>* train_;
  static std::vector<CodeTask>* test_;
};
std::vector<CodeTask>* ShippedTasks::train_ = nullptr;
std::vector<CodeTask>* ShippedTasks::test_ = nullptr;

TEST_F(ShippedTasks, LoadWithUniqueIdsAndDefinedEntryPoints) {
  EXPECT_GE(test_->size(), 150u);
  EXPECT_GE(train_->size(), 3000u);
  std::set<std::string> ids;
  for (const auto* split : {train_, test_}) {
    const std::string prefix = split == train_ ? "spikefm/train/" : "spikefm/test/";
    for (const auto& t : *split) {
      EXPECT_TRUE(ids.insert(t.task_id).second) << "duplicate " << t.task_id;
      EXPECT_EQ(t.task_id.rfind(prefix, 0), 0u) << t.task_id;
      EXPECT_FALSE(signature_line(t).empty()) << t.task_id << ": entry point not defined";
      EXPECT_NE(t.test.find("def check(candidate):"), std::string::npos) << t.task_id;
      size_t asserts = 0;
      for (size_t p = t.test.find("assert "); p != std::string::npos; p = t.test.find("assert ", p + 1)) ++asserts;
      EXPECT_GE(asserts, 3u) << t.task_id;
      // 1-3 docstring examples.
      size_t examples = 0;
      for (size_t p = t.prompt.find(">>> "); p != std::string::npos; p = t.prompt.find(">>> ", p + 1)) ++examples;
      EXPECT_GE(examples, 1u) << t.task_id;
      EXPECT_LE(examples, 3u) << t.task_id;
      EXPECT_EQ(t.canonical_solution.rfind("    ", 0), 0u) << t.task_id << ": body not indented";
    }
  }
  // Committed size budget: both files together under 4 MB.
  EXPECT_LT(fs::file_size(code_tasks_file("train", kShipped)) + fs::file_size(code_tasks_file("test", kShipped)),
            4u * 1000u * 1000u);
}

// No test prompt, canonical solution, or (signature, solution) pair occurs in training, after
// whitespace normalisation.
TEST_F(ShippedTasks, TestSplitIsDisjointFromTraining) {
  std::set<std::string> prompts, solutions, pairs;
  for (const auto& t : *train_) {
    prompts.insert(normalise(t.prompt));
    solutions.insert(normalise(t.canonical_solution));
    pairs.insert(normalise(signature_line(t)) + "\n" + normalise(t.canonical_solution));
  }
  for (const auto& t : *test_) {
    EXPECT_EQ(prompts.count(normalise(t.prompt)), 0u) << t.task_id << ": prompt also in training";
    EXPECT_EQ(solutions.count(normalise(t.canonical_solution)), 0u) << t.task_id << ": solution also in training";
    EXPECT_EQ(pairs.count(normalise(signature_line(t)) + "\n" + normalise(t.canonical_solution)), 0u)
        << t.task_id << ": signature + solution also in training";
  }
}

// The sidecar gives every task a family and category; the test split has all three held-out kinds.
TEST_F(ShippedTasks, MetaSidecarCoversEveryTask) {
  std::map<std::string, std::string> category;
  std::set<std::string> families;
  std::istringstream in(slurp(kShipped / "code_meta.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    category[j.at("task_id").get<std::string>()] = j.at("category").get<std::string>();
    families.insert(j.at("family").get<std::string>());
  }
  EXPECT_GE(families.size(), 30u);
  EXPECT_LE(families.size(), 50u);
  std::map<std::string, int> test_categories;
  for (const auto& t : *train_) EXPECT_EQ(category[t.task_id], "train") << t.task_id;
  for (const auto& t : *test_) ++test_categories[category[t.task_id]];
  EXPECT_GT(test_categories["seen"], 0);
  EXPECT_GT(test_categories["heldout_constant"], 0);
  EXPECT_GT(test_categories["heldout_composition"], 0);
  EXPECT_EQ(test_categories["seen"] + test_categories["heldout_constant"] + test_categories["heldout_composition"],
            static_cast<int>(test_->size()));
}

// 20 random test tasks, run as HumanEval would run them: the canonical solution passes, a wrong
// completion fails (so the tests really test something).
TEST_F(ShippedTasks, CanonicalSolutionsPassAndWrongCompletionsFailInPython) {
  const std::string py = python3();
  if (py.empty()) GTEST_SKIP() << "python3 not found";
  TempDir dir;
  std::mt19937 rng(12345);
  std::vector<size_t> order(test_->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t n = 0; n < 20; ++n) {
    const CodeTask& t = (*test_)[order[n]];
    const auto good = dir / ("good_" + std::to_string(n) + ".py");
    const auto bad = dir / ("bad_" + std::to_string(n) + ".py");
    spit(good, assemble_program(t, t.canonical_solution));
    spit(bad, assemble_program(t, "    return None"));
    EXPECT_EQ(run_status("timeout 10 " + py + " -I " + quoted(good) + " >/dev/null 2>&1"), 0) << t.task_id;
    const int bad_status = run_status("timeout 10 " + py + " -I " + quoted(bad) + " >/dev/null 2>&1");
    EXPECT_NE(bad_status, 0) << t.task_id;
    EXPECT_NE(bad_status, 124) << t.task_id << ": timed out instead of failing";
  }
}

// The shipped files are exactly what scripts/gen_code_tasks.py writes (it also re-runs every
// canonical solution); a hand edit of the data or a generator change without regenerating fails here.
TEST_F(ShippedTasks, GeneratorReproducesTheShippedFiles) {
  const std::string py = python3();
  if (py.empty()) GTEST_SKIP() << "python3 not found";
  TempDir dir;
  const int status = run_status("timeout 300 " + py + " -I " + quoted(kSource / "scripts" / "gen_code_tasks.py") +
                                " -q --out-dir " + quoted(dir.path()));
  ASSERT_EQ(status, 0);
  for (const char* name : {"code_train.jsonl", "code_test.jsonl", "code_meta.jsonl"}) {
    EXPECT_TRUE(slurp(dir / name) == slurp(kShipped / name)) << name << " differs from a fresh generation";
  }
}

}  // namespace
}  // namespace spikefm
