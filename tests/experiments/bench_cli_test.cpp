// `spikefm bench --task code` on a tiny fixture: scores follow the pass@k formula, hostile code is
// contained and reported, and bad inputs are user errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/experiments/cli_run.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using BenchRun = spikefm::test::CliRun;

BenchRun bench(const std::string& args, const spikefm::test::TempDir& dir) {
  return spikefm::test::run_cli("bench " + args, dir);
}

std::string task_line(const std::string& id, const std::string& name, const std::string& body,
                      const std::vector<std::string>& asserts) {
  json t;
  t["task_id"] = id;
  t["prompt"] = "def " + name + "(a: int, b: int) -> int:\n    \"\"\"Return a and b combined.\"\"\"\n";
  t["canonical_solution"] = body;
  std::string test = "\n\ndef check(candidate):\n";
  for (const auto& a : asserts) test += "    assert " + a + "\n";
  t["test"] = test;
  t["entry_point"] = name;
  return t.dump() + "\n";
}

std::string completion(const std::string& id, const std::string& body) {
  return json{{"task_id", id}, {"completion", body}}.dump() + "\n";
}

struct Fixture {
  spikefm::test::TempDir dir;
  fs::path tasks = dir / "tasks.jsonl", comps = dir / "comps.jsonl", out = dir / "results.jsonl";
  Fixture() {
    spikefm::test::spit(tasks, task_line("fx/0", "add", "    return a + b\n", {"candidate(1, 2) == 3", "candidate(0, 0) == 0"}) +
                                   task_line("fx/1", "mul", "    return a * b\n", {"candidate(2, 3) == 6"}));
    // fx/0: 12 samples, 1 correct (the canonical body), 11 wrong.
    // fx/1: 12 samples, 11 correct, 1 hostile (never returns; killed at the time limit).
    std::string c = completion("fx/0", "    return a + b\n");
    for (int i = 0; i < 11; ++i) c += completion("fx/0", "    return a - b\n");
    c += completion("fx/1", "    while True:\n        pass\n");
    for (int i = 0; i < 11; ++i) c += completion("fx/1", "    return a * b\n");
    spikefm::test::spit(comps, c);
  }
};

// pass@k = 1 - C(n - c, k) / C(n, k), by hand for n = 12
double pass_at(int n, int c, int k) {
  auto choose = [](int a, int b) {
    if (b > a) return 0.0;
    double r = 1;
    for (int i = 1; i <= b; ++i) r = r * (a - b + i) / i;
    return r;
  };
  return 1.0 - choose(n - c, k) / choose(n, k);
}

}  // namespace

TEST(BenchCode, ScoresCompletionsFileLikeTheFormulaAndContainsHostileCode) {
  Fixture f;
  BenchRun r = bench("--task code --tasks " + f.tasks.string() + " --completions " + f.comps.string() +
                    " --timeout 1 --workers 4 --json --out " + f.out.string(),
                f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["tasks"], 2);
  EXPECT_EQ(j["samples_per_task"], 12);
  const double p1 = (pass_at(12, 1, 1) + pass_at(12, 11, 1)) / 2, p10 = (pass_at(12, 1, 10) + pass_at(12, 11, 10)) / 2;
  EXPECT_NEAR(p1, 0.5, 1e-12);           // (1/12 + 11/12) / 2
  EXPECT_NEAR(p10, (5.0 / 6 + 1) / 2, 1e-12);  // fx/0: 1 - C(11,10)/C(12,10) = 5/6
  EXPECT_NEAR(j["pass@1"].get<double>(), p1, 1e-9);
  EXPECT_NEAR(j["pass@10"].get<double>(), p10, 1e-9);
  EXPECT_EQ(j["status_counts"]["ok"], 12);
  EXPECT_EQ(j["status_counts"]["failed"], 11);
  EXPECT_EQ(j["status_counts"]["timeout"], 1);
  EXPECT_FALSE(j.contains("by_category"));  // fixture ids are not in code_meta.jsonl

  std::istringstream lines(spikefm::test::slurp(f.out));
  std::string line;
  std::vector<json> rows;
  while (std::getline(lines, line)) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["task_id"], "fx/0");
  EXPECT_EQ(rows[0]["c"], 1);
  EXPECT_EQ(rows[0]["samples"][0]["status"], "ok");
  EXPECT_EQ(rows[0]["samples"][1]["status"], "failed");
  EXPECT_NE(rows[0]["samples"][1]["error"].get<std::string>().find("AssertionError"), std::string::npos);
  EXPECT_EQ(rows[1]["c"], 11);
  EXPECT_EQ(rows[1]["samples"][0]["status"], "timeout");
}

TEST(BenchCode, ShippedCanonicalSolutionsAllPass) {
  // the canonical bodies of the first shipped test tasks, scored as a completions file: 100%
  Fixture f;
  std::istringstream in(spikefm::test::slurp(fs::path(SPIKEFM_SOURCE_DIR) / "datasets/data/code/code_test.jsonl"));
  std::string line, tasks, comps;
  for (int i = 0; i < 12 && std::getline(in, line); ++i) {
    json t = json::parse(line);
    tasks += line + "\n";
    comps += completion(t["task_id"], t["canonical_solution"]);
  }
  spikefm::test::spit(f.tasks, tasks);
  spikefm::test::spit(f.comps, comps);
  BenchRun r = bench("--task code --tasks " + f.tasks.string() + " --completions " + f.comps.string() + " --workers 4", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("pass@1   100.00%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("by category"), std::string::npos) << r.out;  // shipped ids have metadata
}

TEST(BenchCode, BadInputsAreUserErrors) {
  Fixture f;
  auto expect_user_error = [&](const std::string& args, const std::string& needle) {
    BenchRun r = bench(args, f.dir);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(r.err.rfind("spikefm: error: ", 0), 0u) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
  };
  expect_user_error("--task code --tasks " + f.tasks.string(), "exactly one source");
  expect_user_error("--task fashion-vqa --completions " + f.comps.string(), "apply to --task code");
  spikefm::test::spit(f.dir / "other.jsonl", completion("fx/9", "    return 0\n"));
  expect_user_error("--task code --tasks " + f.tasks.string() + " --completions " + (f.dir / "other.jsonl").string(), "fx/9");
  expect_user_error("--task code --checkpoint " + (f.dir / "missing.h5").string(), "missing.h5");
  EXPECT_FALSE(fs::exists(f.out));
}
