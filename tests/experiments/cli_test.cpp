// End-to-end tests of the `spikefm` binary as a user runs it: exit codes, error format, JSON output.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <nlohmann/json.hpp>

#include "tests/experiments/cli_run.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;

namespace {

using spikefm::test::CliRun;
using spikefm::test::run_cli;

bool have_data() { return fs::exists("/usr/share/datasets/fashion-mnist") || std::getenv("SPIKEFM_DATA_DIR"); }

}  // namespace

TEST(Cli, HelpListsSubcommandsAndOptions) {
  spikefm::test::TempDir d;
  CliRun r = run_cli("--help", d);
  EXPECT_EQ(r.code, 0);
  for (const char* word : {"train", "eval", "generate"}) EXPECT_NE(r.out.find(word), std::string::npos) << word;
  CliRun t = run_cli("train --help", d);
  EXPECT_EQ(t.code, 0);
  for (const char* opt : {"--model", "--out", "--epochs", "--minutes", "--seed"}) {
    EXPECT_NE(t.out.find(opt), std::string::npos) << opt;
  }
}

TEST(Cli, UserErrorsPrintSpikefmErrorAndExitNonZero) {
  spikefm::test::TempDir d;
  CliRun unknown = run_cli("train --out x.h5 --model huge", d);
  EXPECT_NE(unknown.code, 0);
  EXPECT_EQ(unknown.err.rfind("spikefm: error: ", 0), 0u) << unknown.err;

  std::ofstream(d / "bad.h5") << "not a checkpoint";
  CliRun bad = run_cli("eval --checkpoint " + (d / "bad.h5").string(), d);
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err.rfind("spikefm: error: loading checkpoint", 0), 0u) << bad.err;
  EXPECT_TRUE(bad.out.empty());
}

TEST(Cli, PatchAndStrideOverrideThePresetGeometry) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  spikefm::test::TempDir d;
  // 28 px in 4 x 4 patches at stride 4: a 7 x 7 grid; at stride 2 (overlapping) 13 x 13
  for (auto [args, tokens] : {std::pair{"--patch 4", 49}, std::pair{"--patch 4 --stride 2", 169}}) {
    CliRun t = run_cli(std::string("train --model small ") + args + " --limit 64 --epochs 1 --val-images 0 --json --out " +
                           (d / "p.h5").string(), d);
    ASSERT_EQ(t.code, 0) << t.err;
    EXPECT_EQ(nlohmann::json::parse(t.out)["image_tokens"].get<int>(), tokens) << args;
  }
  CliRun bad = run_cli("train --model small --patch 4 --stride 5 --limit 64 --epochs 1 --out " + (d / "b.h5").string(), d);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("stride"), std::string::npos) << bad.err;  // (28 - 4) is no multiple of 5
}

TEST(Cli, TrainThenEvalJsonParsesAndGenerateAnswers) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  spikefm::test::TempDir d;
  const std::string ck = (d / "tiny.h5").string();
  CliRun t = run_cli("train --model small --limit 128 --epochs 1 --val-images 0 --out " + ck + " --json", d);
  ASSERT_EQ(t.code, 0) << t.err;
  auto tj = nlohmann::json::parse(t.out);
  EXPECT_EQ(tj["steps"].get<int>(), 2);  // 128 images / 64 per step

  CliRun e = run_cli("eval --checkpoint " + ck + " --task fashion-vqa --split test --limit 40 --json", d);
  ASSERT_EQ(e.code, 0) << e.err;
  auto j = nlohmann::json::parse(e.out);  // throws (fails the test) on anything but one JSON object
  EXPECT_EQ(j["task"], "fashion-vqa");
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["n"].get<int>(), 40);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["accuracy"].get<double>(), 1.0);
  EXPECT_GT(j["seconds"].get<double>(), 0.0);

  CliRun g = run_cli("generate --checkpoint " + ck + " --task fashion-vqa --index 3 --question \"is this footwear?\"", d);
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_FALSE(g.out.empty());
  CliRun oob = run_cli("generate --checkpoint " + ck + " --index 999999", d);
  EXPECT_EQ(oob.code, 1);
  EXPECT_NE(oob.err.find("out of range"), std::string::npos) << oob.err;

  // compress: the budget is met, the written checkpoint reloads with the ordinary loader and
  // evaluates to the accuracy compress reported on the same samples.
  const std::string q = (d / "tiny.q.h5").string();
  CliRun c = run_cli("compress --checkpoint " + ck + " --bits 4.5 --calib-images 8 --limit 40 --out " + q + " --json", d);
  ASSERT_EQ(c.code, 0) << c.err;
  auto cj = nlohmann::json::parse(c.out);
  ASSERT_GE(cj["variants"].size(), 2u);
  EXPECT_EQ(cj["variants"][0]["name"], "float");
  EXPECT_EQ(cj["variants"][0]["accuracy"].get<double>(), j["accuracy"].get<double>());  // same model, same 40 samples
  const double bits = cj["variants"][1]["effective_bits"].get<double>();
  EXPECT_LE(bits, 4.5);
  EXPECT_GT(bits, 2.0);
  for (const auto& l : cj["layers"]) EXPECT_EQ(l["options"].size(), 6u) << l["name"];  // {8,4,2} x {g32, channel}
  ASSERT_FALSE(cj["blocks"].empty());
  EXPECT_EQ(cj["blocks"].back()["name"], "model");
  EXPECT_EQ(cj["blocks"].back()["weights"], cj["quantized_weights"]);
  CliRun qe = run_cli("eval --checkpoint " + q + " --split test --limit 40 --json", d);
  ASSERT_EQ(qe.code, 0) << qe.err;
  EXPECT_EQ(nlohmann::json::parse(qe.out)["accuracy"].get<double>(), cj["variants"][1]["accuracy"].get<double>());
  // a budget below int2 everywhere is refused with the minimum that would work
  CliRun low = run_cli("compress --checkpoint " + ck + " --bits 1 --calib-images 8 --limit 8", d);
  EXPECT_EQ(low.code, 1);
  EXPECT_NE(low.err.find("minimum"), std::string::npos) << low.err;

  // QAT at the chosen allocation: a row with the mixed allocation's bits, and the written checkpoint
  // is that QAT model (it evaluates to the row's accuracy)
  const std::string qq = (d / "tiny.qat.h5").string();
  CliRun qat = run_cli("compress --checkpoint " + ck + " --bits 2.5 --qat-epochs 1 --qat-minutes 0.1 --calib-images 8 "
                       "--limit 40 --out " + qq + " --json", d);
  ASSERT_EQ(qat.code, 0) << qat.err;
  auto qj = nlohmann::json::parse(qat.out);
  EXPECT_GT(qj["qat_steps"].get<int>(), 0);
  ASSERT_EQ(qj["variants"].size(), 3u);  // float, mixed, mixed + QAT
  EXPECT_NE(qj["variants"][2]["name"].get<std::string>().find("QAT"), std::string::npos);
  EXPECT_EQ(qj["variants"][2]["effective_bits"], qj["variants"][1]["effective_bits"]);
  CliRun qate = run_cli("eval --checkpoint " + qq + " --split test --limit 40 --json", d);
  ASSERT_EQ(qate.code, 0) << qate.err;
  EXPECT_EQ(nlohmann::json::parse(qate.out)["accuracy"].get<double>(), qj["variants"][2]["accuracy"].get<double>());

  // memory-hierarchy budget: cmos45 cores with their synapse SRAM cut to 6000 B. Every capped layer's
  // channel storage is within its cap, the cut binds (some layer gives up int8) and the patch
  // embedding (dense unit) has no cap; an SRAM no width fits is refused naming the layer.
  CliRun h = run_cli("compress --checkpoint " + ck + " --hw cmos45 --hw-sram 6000 --calib-images 8 --limit 8 --json", d);
  ASSERT_EQ(h.code, 0) << h.err;
  auto hj = nlohmann::json::parse(h.out);
  EXPECT_TRUE(hj["budget_bits"].is_null());
  EXPECT_EQ(hj["hw"]["synapse_sram_bytes"].get<int64_t>(), 6000);
  int below8 = 0, capped = 0, grouped = 0;
  for (const auto& l : hj["layers"]) {
    below8 += l["bits"].get<int>() < 8;
    if (l["name"] == "patch_embed") {
      EXPECT_FALSE(l.contains("hw"));
      continue;
    }
    ASSERT_TRUE(l.contains("hw")) << l["name"];
    ++capped;
    const auto& x = l["hw"];
    EXPECT_LE(x["bytes_per_channel"].get<int64_t>(), x["cap_bytes_per_channel"].get<int64_t>()) << l["name"];
    EXPECT_LE(x["channels_per_core"].get<int64_t>() * x["bytes_per_channel"].get<int64_t>(), 6000) << l["name"];
    // A channel holds one accumulator per token row and scale group (cmos45: 1024 neuron-state
    // words per core), and the layer's cores hold all its channels.
    const int64_t group = l["group"].get<int64_t>(), cols = l["cols"].get<int64_t>();
    const int64_t words = l["token_rows"].get<int64_t>() * (group > 0 ? (cols + group - 1) / group : 1);
    EXPECT_LE(x["channels_per_core"].get<int64_t>() * words, 1024) << l["name"];
    EXPECT_GE(x["cores"].get<int64_t>() * (1024 / words), l["rows"].get<int64_t>()) << l["name"];
    grouped += group > 0;
  }
  EXPECT_GT(grouped, 0);  // the per-group placement is exercised
  EXPECT_GT(capped, 4);
  EXPECT_GT(below8, 0);
  CliRun tiny_sram = run_cli("compress --checkpoint " + ck + " --hw cmos45 --hw-sram 100 --calib-images 8 --limit 8", d);
  EXPECT_EQ(tiny_sram.code, 1);
  EXPECT_NE(tiny_sram.err.find("synapse SRAM"), std::string::npos) << tiny_sram.err;
  CliRun no_hw = run_cli("compress --checkpoint " + ck + " --hw-sram 6000 --calib-images 8 --limit 8", d);
  EXPECT_EQ(no_hw.code, 1);
  EXPECT_NE(no_hw.err.find("--hw"), std::string::npos) << no_hw.err;

  // prune: parameters drop as reported, the file reloads with the ordinary loader and evaluates to
  // the accuracy prune reported (no recovery, so that is the pruned model's own accuracy).
  const std::string p = (d / "tiny.p.h5").string();
  CliRun pr = run_cli("compress --checkpoint " + ck + " --prune-blocks 1 --prune-heads 0.25 --prune-mlp 0.5 "
                      "--recover-minutes 0 --calib-images 8 --limit 40 --out " + p + " --json", d);
  ASSERT_EQ(pr.code, 0) << pr.err;
  auto pj = nlohmann::json::parse(pr.out)["prune"];
  EXPECT_EQ(pj["accuracy_before"].get<double>(), j["accuracy"].get<double>());
  EXPECT_LT(pj["parameters_after"].get<int64_t>(), pj["parameters_before"].get<int64_t>());
  int removed_blocks = 0;
  for (const auto& b : pj["blocks"]) removed_blocks += b["removed"].get<bool>() ? 1 : 0;
  EXPECT_EQ(removed_blocks, 1);
  CliRun pe = run_cli("eval --checkpoint " + p + " --split test --limit 40 --json", d);
  ASSERT_EQ(pe.code, 0) << pe.err;
  auto pej = nlohmann::json::parse(pe.out);
  EXPECT_EQ(pej["accuracy"].get<double>(), pj["accuracy_pruned"].get<double>());
  EXPECT_EQ(pej["parameters"].get<int64_t>(), pj["parameters_after"].get<int64_t>());
  // prune, then quantize in one command: the quantized model is the pruned one
  const std::string pq = (d / "tiny.pq.h5").string();
  CliRun pqr = run_cli("compress --checkpoint " + ck + " --prune-mlp 0.5 --recover-minutes 0 --bits 4.5 "
                       "--calib-images 8 --limit 40 --out " + pq + " --json", d);
  ASSERT_EQ(pqr.code, 0) << pqr.err;
  auto pqj = nlohmann::json::parse(pqr.out);
  EXPECT_EQ(pqj["parameters"].get<int64_t>(), pqj["prune"]["parameters_after"].get<int64_t>());
  EXPECT_LE(pqj["variants"][1]["effective_bits"].get<double>(), 4.5);
  EXPECT_FALSE(std::filesystem::exists(pq + ".pruned.h5"));  // the intermediate file is removed
  ASSERT_EQ(run_cli("eval --checkpoint " + pq + " --limit 8", d).code, 0);
  // bad requests
  CliRun all = run_cli("compress --checkpoint " + ck + " --prune-heads 1 --out " + p, d);
  EXPECT_EQ(all.code, 1);
  EXPECT_NE(all.err.find("[0, 1)"), std::string::npos) << all.err;
  CliRun nout = run_cli("compress --checkpoint " + ck + " --prune-mlp 0.5", d);
  EXPECT_EQ(nout.code, 1);
  EXPECT_NE(nout.err.find("--out"), std::string::npos) << nout.err;
}

TEST(Cli, QannConvertSimulateAgreesExactlyUntilQuiet) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  spikefm::test::TempDir d;
  const std::string q = (d / "q.h5").string(), s = (d / "q.snn.h5").string();
  CliRun t = run_cli("train --model small --qann --limit 128 --epochs 1 --val-images 0 --out " + q, d);
  ASSERT_EQ(t.code, 0) << t.err;
  CliRun c = run_cli("convert --checkpoint " + q + " --neuron st-bif --timesteps 8 --out " + s, d);
  ASSERT_EQ(c.code, 0) << c.err;
  CliRun r = run_cli("simulate --snn " + s + " --limit 8 --until-quiet --json", d);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n"].get<int>(), 8);
  EXPECT_EQ(j["agreement"].get<double>(), 1.0);       // ST-BIF until quiet = the QANN
  EXPECT_EQ(j["max_abs_dlogit"].get<double>(), 0.0);  // bit for bit
  EXPECT_GT(j["sops_per_sample"].get<double>(), 0.0);
  EXPECT_EQ(j["unsettled_runs"].get<int>(), 0);
  // bench on the snn backend: the same engine at the file's T, so the same answers and counts as
  // simulate at that T; one JSONL line per question whose correct flags add up to the accuracy
  CliRun sim_t = run_cli("simulate --snn " + s + " --limit 12 --json", d);
  ASSERT_EQ(sim_t.code, 0) << sim_t.err;
  auto st = nlohmann::json::parse(sim_t.out);
  const std::string qs = (d / "q.jsonl").string();
  CliRun b = run_cli("bench --task fashion-vqa --backend snn --checkpoint " + s + " --limit 12 --json --out " + qs, d);
  ASSERT_EQ(b.code, 0) << b.err;
  auto bj = nlohmann::json::parse(b.out);
  EXPECT_EQ(bj["n"].get<int>(), 12);
  EXPECT_EQ(bj["accuracy"].get<double>(), st["accuracy"].get<double>());
  EXPECT_EQ(bj["agreement"].get<double>(), st["agreement"].get<double>());
  EXPECT_DOUBLE_EQ(bj["sops_per_question"].get<double>(), st["sops_per_sample"].get<double>());
  int type_total = 0;
  for (const auto& [name, v] : bj["accuracy_by_type"].items()) type_total += v["n"].get<int>();
  EXPECT_EQ(type_total, 12);
  std::ifstream qin(qs);
  std::string line;
  int lines = 0, right = 0;
  while (std::getline(qin, line)) {
    auto x = nlohmann::json::parse(line);
    ++lines;
    right += x["correct"].get<bool>();
  }
  EXPECT_EQ(lines, 12);
  EXPECT_NEAR(right / 12.0, bj["accuracy"].get<double>(), 1e-12);
  // energy: the same run priced on two presets; the literature formula is E_AC·SOPs + E_MAC·encoding
  // MACs of the simulation's own counts, and the components add up to the total.
  CliRun e = run_cli("energy --snn " + s + " --limit 8 --until-quiet --hw loihi,cmos45 --json", d);
  ASSERT_EQ(e.code, 0) << e.err;
  auto ej = nlohmann::json::parse(e.out);
  ASSERT_EQ(ej["hardware"].size(), 2u);
  EXPECT_EQ(ej["hardware"][0]["hw"], "loihi");
  for (const auto& h : ej["hardware"]) {
    const double formula = 0.9 * j["sops_per_sample"].get<double>() + 4.6 * j["dense_macs_per_sample"].get<double>();
    EXPECT_NEAR(h["snn_formula_pj"].get<double>(), formula, 1e-9 * formula) << h["hw"];
    EXPECT_NEAR(h["sops_per_sample"].get<double>(), j["sops_per_sample"].get<double>(), 1e-9);
    double sum = 0;
    for (const auto& [key, v] : h["snn_energy_per_sample"].items()) {
      if (key != "total_pj") sum += v.get<double>();
    }
    const double total = h["snn_energy_per_sample"]["total_pj"].get<double>();
    EXPECT_GT(total, 0.0);
    EXPECT_NEAR(sum, total, 1e-9 * total);
    EXPECT_GT(h["snn_latency_s"].get<double>(), 0.0);
    const auto& m = h["mapping"];
    EXPECT_EQ(m["fits"].get<bool>(), m["missing_neurons"].get<int64_t>() == 0 && m["offchip_weight_bytes"].get<int64_t>() == 0);
    EXPECT_GT(m["cores_used"].get<int>(), 0);
    EXPECT_LE(m["cores_used"].get<int>(), m["cores"].get<int>());
    ASSERT_EQ(h["baselines"].size(), 3u);
    EXPECT_GT(h["baselines"][0]["total_pj"].get<double>(), 0.0);
  }
  // activation levels allocated at 60% of the spikes: the result still converts bit-exact, and the
  // spiking engine (an independent count) sees fewer spikes than in the trained model
  const std::string lv = (d / "q_lv.h5").string(), lvs = (d / "q_lv.snn.h5").string();
  CliRun al = run_cli("compress --checkpoint " + q + " --act-spikes 0.6 --act-levels 2,4 --calib-images 8 --limit 16 --json --out " + lv, d);
  ASSERT_EQ(al.code, 0) << al.err;
  auto aj = nlohmann::json::parse(al.out);
  EXPECT_LE(aj["spikes_allocated_estimate"].get<double>(), aj["budget_spikes"].get<double>() + 0.5 * aj["sites"].size());
  ASSERT_EQ(aj["variants"].size(), 2u);
  ASSERT_EQ(run_cli("convert --checkpoint " + lv + " --neuron st-bif --timesteps 8 --out " + lvs, d).code, 0);
  CliRun lr = run_cli("simulate --snn " + lvs + " --limit 8 --until-quiet --json", d);
  ASSERT_EQ(lr.code, 0) << lr.err;
  auto lj = nlohmann::json::parse(lr.out);
  EXPECT_EQ(lj["max_abs_dlogit"].get<double>(), 0.0);
  EXPECT_LT(lj["spikes_per_sample"].get<double>(), j["spikes_per_sample"].get<double>());
  CliRun mix = run_cli("compress --checkpoint " + q + " --act-spikes 0.6 --bits 4", d);
  EXPECT_EQ(mix.code, 1);
  EXPECT_NE(mix.err.find("--act-spikes with --bits"), std::string::npos) << mix.err;
  CliRun typo = run_cli("energy --snn " + s + " --hw loihii", d);
  EXPECT_EQ(typo.code, 1);
  EXPECT_NE(typo.err.find("loihi"), std::string::npos) << typo.err;  // the available presets are listed
  CliRun list = run_cli("energy --hw-list", d);
  EXPECT_EQ(list.code, 0);
  for (const char* p : {"loihi", "truenorth", "cmos45"}) EXPECT_NE(list.out.find(p), std::string::npos) << p;
  // NIR cannot express attention: refused with the list of operators
  CliRun n = run_cli("convert --checkpoint " + q + " --nir " + (d / "x.nir").string(), d);
  EXPECT_EQ(n.code, 1);
  EXPECT_NE(n.err.find("no NIR primitive"), std::string::npos) << n.err;
  EXPECT_NE(n.err.find("qk_product"), std::string::npos) << n.err;
  // a plain (non-QANN) checkpoint is refused with the fix
  CliRun f = run_cli("train --model small --limit 64 --epochs 1 --val-images 0 --out " + (d / "f.h5").string(), d);
  ASSERT_EQ(f.code, 0) << f.err;
  CliRun bad = run_cli("convert --checkpoint " + (d / "f.h5").string() + " --out " + (d / "f.snn.h5").string(), d);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--qann"), std::string::npos) << bad.err;
}

TEST(Cli, MlpExportsToNirAndSimulatesAnImage) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  spikefm::test::TempDir d;
  const std::string m = (d / "mlp.h5").string(), nir = (d / "mlp.nir").string();
  ASSERT_EQ(run_cli("train --task fashion-mnist --model mlp --limit 1000 --epochs 1 --out " + m, d).code, 0);
  CliRun c = run_cli("convert --checkpoint " + m + " --nir " + nir + " --timesteps 16", d);
  ASSERT_EQ(c.code, 0) << c.err;
  CliRun r = run_cli("simulate --nir " + nir + " --input-index 0 --timesteps 16 --json", d);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["output"].size(), 10u);
  EXPECT_GE(j["argmax"].get<int>(), 0);
  std::ofstream(d / "in.txt") << "1 2 three";
  CliRun bad = run_cli("simulate --nir " + nir + " --input " + (d / "in.txt").string(), d);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("'three' is not a number"), std::string::npos) << bad.err;
}
