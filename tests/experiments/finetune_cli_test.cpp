// `spikefm finetune` and `spikefm train/eval --task med-vqa` as a user runs them.
#include <gtest/gtest.h>

#include <map>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/experiments/cli_run.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;

namespace {

using CliResult = spikefm::test::CliRun;
const auto spikefm_run = spikefm::test::run_cli;

bool have_ct() {
  return fs::exists("/usr/share/doc/invesalius-examples/examples/Cranium.inv3") || std::getenv("SPIKEFM_CT_PATH");
}

}  // namespace

TEST(FinetuneCli, BadMethodOrRankIsAUserErrorWithTheFix) {
  spikefm::test::TempDir d;
  const std::string base = (d / "base.h5").string(), out = (d / "out.h5").string();
  std::ofstream(base) << "not read: the options are checked first";
  CliResult m = spikefm_run("finetune --checkpoint " + base + " --method partial --out " + out, d);
  EXPECT_EQ(m.code, 1);
  EXPECT_EQ(m.err.rfind("spikefm: error: --method partial: unknown fine-tuning method (use full or lora)", 0), 0u) << m.err;
  CliResult r = spikefm_run("finetune --checkpoint " + base + " --method lora --rank 0 --out " + out, d);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("spikefm: error: LoRA: rank must be >= 1 (got 0)", 0), 0u) << r.err;
  CliResult f = spikefm_run("finetune --checkpoint " + base + " --method full --rank 4 --out " + out, d);
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.err.find("only apply to --method lora"), std::string::npos) << f.err;
  CliResult a = spikefm_run("finetune --checkpoint " + base + " --method lora --alpha nan --out " + out, d);
  EXPECT_NE(a.code, 0);
  EXPECT_EQ(a.err.rfind("spikefm: error: ", 0), 0u) << a.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(FinetuneCli, MedVqaTrainThenEvalJsonHasAnEntryPerQuestionType) {
  if (!have_ct()) GTEST_SKIP() << "Cranium.inv3 not installed";
  spikefm::test::TempDir d;
  const std::string ck = (d / "med.h5").string();
  CliResult t = spikefm_run("train --task med-vqa --model small --limit 32 --batch 16 --epochs 1 --val-images 0 --out " + ck + " --json", d);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(nlohmann::json::parse(t.out)["steps"].get<int>(), 2);
  CliResult e = spikefm_run("eval --checkpoint " + ck + " --task med-vqa --limit 60 --json", d);
  ASSERT_EQ(e.code, 0) << e.err;
  auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j["task"], "med-vqa");
  EXPECT_EQ(j["n"].get<int>(), 60);
  EXPECT_FALSE(j.contains("accuracy_by_question"));  // Fashion's key only
  ASSERT_EQ(j["accuracy_by_type"].size(), 10u);
  int n = 0;
  for (const auto& [name, v] : j["accuracy_by_type"].items()) n += v["n"].get<int>();
  EXPECT_EQ(n, 60);
  EXPECT_EQ(j["zero_shot"], false);

  // bench replays the same benchmark on the ANN backend: same questions, same score as eval; --out
  // holds one JSON line per question whose correct flags add up to that score, per type too
  const std::string res = (d / "bench.jsonl").string();
  CliResult b = spikefm_run("bench --task med-vqa --backend ann --checkpoint " + ck + " --limit 60 --json --out " + res, d);
  ASSERT_EQ(b.code, 0) << b.err;
  auto bj = nlohmann::json::parse(b.out);
  EXPECT_EQ(bj["n"].get<int>(), 60);
  EXPECT_EQ(bj["correct"].get<int>(), j["correct"].get<int>());
  EXPECT_EQ(bj["accuracy_by_type"], j["accuracy_by_type"]);
  std::ifstream in(res);
  std::string line;
  int lines = 0, correct = 0;
  std::map<std::string, int> type_lines;
  while (std::getline(in, line)) {
    auto q = nlohmann::json::parse(line);
    ++lines;
    EXPECT_EQ(q["correct"].get<bool>(), q["prediction"] == q["answer"]) << line;
    correct += q["correct"].get<bool>();
    type_lines[q["type"].get<std::string>()]++;
  }
  EXPECT_EQ(lines, 60);
  EXPECT_EQ(correct, bj["correct"].get<int>());
  for (const auto& [name, v] : bj["accuracy_by_type"].items()) EXPECT_EQ(type_lines[name], v["n"].get<int>()) << name;
  CliResult s = spikefm_run("bench --task med-vqa --backend snn --checkpoint " + ck, d);
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.err.find("fashion-vqa"), std::string::npos) << s.err;
}
