// `spikefm finetune` and `spikefm train/eval --task med-vqa` as a user runs them.
#include <gtest/gtest.h>

#include <map>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "tests/experiments/cli_run.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;

namespace {

using CliResult = spikefm::test::CliRun;
const auto spikefm_run = spikefm::test::run_cli;

// Med-VQA needs the head CT and the brain MR (scripts/setup-deps.sh installs both).
bool have_ct() {
  const bool ct =
      fs::exists("/usr/share/doc/invesalius-examples/examples/Cranium.inv3") || std::getenv("SPIKEFM_CT_PATH");
  const bool mr = fs::exists("/usr/lib/python3/dist-packages/nibabel/tests/data/example4d.nii.gz") ||
                  std::getenv("SPIKEFM_MR_PATH");
  return ct && mr;
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
  CliResult flags = spikefm_run("bench --task med-vqa --backend ann --checkpoint " + ck + " --until-quiet --limit 4", d);
  EXPECT_EQ(flags.code, 1);
  EXPECT_NE(flags.err.find("only apply to --backend snn"), std::string::npos) << flags.err;
}

namespace {

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

// Med-VQA through the spiking path: QANN fine-tune → convert → bench on the snn backend. Run until
// quiet, the ST-BIF network must answer as its integer QANN bit for bit, on the same questions (same
// images, types and ground truth, in the same order) as the ANN backend's scorer asks.
TEST(FinetuneCli, MedVqaSpikingBackendRepliesAsItsQannOnTheSameQuestions) {
  if (!have_ct()) GTEST_SKIP() << "Cranium.inv3 not installed";
  spikefm::test::TempDir d;
  const std::string f = (d / "med.h5").string(), q = (d / "med_qann.h5").string(), s = (d / "med.snn.h5").string();
  CliResult t = spikefm_run("train --task med-vqa --model small --limit 32 --batch 16 --epochs 1 --val-images 0 --out " + f, d);
  ASSERT_EQ(t.code, 0) << t.err;
  CliResult tq = spikefm_run("train --task med-vqa --init " + f + " --qann --limit 32 --batch 16 --epochs 1 --val-images 0 --out " + q, d);
  ASSERT_EQ(tq.code, 0) << tq.err;
  CliResult c = spikefm_run("convert --checkpoint " + q + " --neuron st-bif --timesteps 8 --out " + s, d);
  ASSERT_EQ(c.code, 0) << c.err;

  const std::string snn_out = (d / "snn.jsonl").string(), qann_out = (d / "qann.jsonl").string();
  CliResult b = spikefm_run("bench --task med-vqa --backend snn --checkpoint " + s + " --limit 60 --until-quiet --json --out " + snn_out, d);
  ASSERT_EQ(b.code, 0) << b.err;
  auto j = nlohmann::json::parse(b.out);
  EXPECT_EQ(j["task"], "med-vqa");
  EXPECT_EQ(j["n"].get<int>(), 60);
  EXPECT_EQ(j["agreement"].get<double>(), 1.0);
  EXPECT_EQ(j["max_abs_dlogit"].get<double>(), 0.0);
  EXPECT_GT(j["spikes_per_question"].get<double>(), 0.0);
  EXPECT_EQ(j["accuracy"].get<double>(), j["qann_accuracy"].get<double>());
  ASSERT_EQ(j["accuracy_by_type"].size(), 10u);

  // The qann backend scores the checkpoint with the evaluator (a separate sample loop, batched by
  // question type; the fake-quantized libtorch model): the same 60 questions with the same ground
  // truth, and answers that agree with the spiking model's.
  CliResult bq = spikefm_run("bench --task med-vqa --backend qann --checkpoint " + q + " --limit 60 --json --out " + qann_out, d);
  ASSERT_EQ(bq.code, 0) << bq.err;
  const auto sl = read_jsonl(snn_out), ql = read_jsonl(qann_out);
  ASSERT_EQ(sl.size(), 60u);
  ASSERT_EQ(ql.size(), 60u);
  std::map<std::pair<int, std::string>, nlohmann::json> by_question;
  for (const auto& l : ql) by_question[{l["image"].get<int>(), l["type"].get<std::string>()}] = l;
  ASSERT_EQ(by_question.size(), 60u);
  int same = 0;
  for (const auto& l : sl) {
    auto it = by_question.find({l["image"].get<int>(), l["type"].get<std::string>()});
    ASSERT_NE(it, by_question.end()) << l.dump();
    EXPECT_EQ(l["question"], it->second["question"]) << l.dump();
    EXPECT_EQ(l["answer"], it->second["answer"]) << l.dump();
    same += l["prediction"] == it->second["prediction"];
  }
  EXPECT_GE(same, 57) << "the integer QANN the SNN equals and the fake-quantized one differ only in rounding";

  // simulate takes the task from the QANN the network came from, and refuses another
  CliResult sim = spikefm_run("simulate --snn " + s + " --limit 12 --until-quiet --json", d);
  ASSERT_EQ(sim.code, 0) << sim.err;
  EXPECT_EQ(nlohmann::json::parse(sim.out)["task"], "med-vqa");
  CliResult wrong = spikefm_run("simulate --snn " + s + " --task fashion-vqa --limit 4", d);
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("use --task med-vqa"), std::string::npos) << wrong.err;
}
