// A compressed model through the whole pipeline on the command line: compress (mixed widths, groups)
// → QANN fine-tune from it → convert → simulate. The widths the allocation chose must reach the
// spiking model and its counts, and the SNN must still equal its QANN bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <nlohmann/json.hpp>

#include "common/h5_file.h"
#include "tests/experiments/cli_run.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;
using spikefm::H5File;
using spikefm::test::CliRun;
using spikefm::test::run_cli;

namespace {

bool have_data() { return fs::exists("/usr/share/datasets/fashion-mnist") || std::getenv("SPIKEFM_DATA_DIR"); }

// /quant/<layer>/weight → (bits, group) of every compressed layer in a checkpoint.
std::map<std::string, std::pair<int64_t, int64_t>> widths(const fs::path& ck) {
  H5File f = H5File::open(ck);
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  std::function<void(const std::string&)> walk = [&](const std::string& g) {
    if (f.has_attr(g, "bits")) {
      out[g] = {f.attr_int(g, "bits"), f.attr_int(g, "group")};
      return;
    }
    for (const auto& c : f.children(g)) {
      if (f.is_group(g + "/" + c)) walk(g + "/" + c);
    }
  };
  if (f.exists("/quant")) walk("/quant");
  return out;
}

}  // namespace

TEST(Cli, CompressedWidthsReachTheSpikingModelAndItStaysBitExact) {
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed";
  spikefm::test::TempDir d;
  const fs::path f = d / "f.h5", c = d / "c.h5", q = d / "cq.h5", s = d / "cq.snn.h5";
  ASSERT_EQ(run_cli("train --model small --limit 128 --epochs 1 --val-images 0 --out " + f.string(), d).code, 0);
  CliRun cr = run_cli("compress --checkpoint " + f.string() + " --bits 3 --calib-images 8 --limit 16 --out " + c.string(), d);
  ASSERT_EQ(cr.code, 0) << cr.err;
  CliRun t = run_cli("train --init " + c.string() + " --qann --limit 128 --epochs 1 --val-images 0 --out " + q.string(), d);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("kept the widths of"), std::string::npos) << t.err;
  // the QANN keeps every layer's width and group (its codes are RTN of its own trained weights)
  const auto chosen = widths(c), kept = widths(q);
  ASSERT_FALSE(chosen.empty());
  EXPECT_EQ(kept, chosen);
  int narrow = 0;
  for (const auto& [layer, bg] : chosen) narrow += bg.first < 8;
  ASSERT_GT(narrow, 0) << "a 3-bit budget must put some layers below int8";

  ASSERT_EQ(run_cli("convert --checkpoint " + q.string() + " --neuron st-bif --timesteps 8 --out " + s.string(), d).code, 0);
  CliRun r = run_cli("simulate --snn " + s.string() + " --limit 8 --until-quiet --json", d);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["agreement"].get<double>(), 1.0);
  EXPECT_EQ(j["max_abs_dlogit"].get<double>(), 0.0);  // the grouped integer QANN, bit for bit
  // every spiking linear layer reads rows of its own width: bytes read per SOP = ceil(out·bits/8)/out
  H5File sf = H5File::open(s);
  int checked = 0, below_int8 = 0;
  for (const auto& l : j["layers"]) {
    if (l["kind"] != "linear" || l["sops_per_sample"].get<double>() <= 0) continue;
    const std::string node = "/graphs/" + l["graph"].get<std::string>() + "/nodes/" + l["name"].get<std::string>();
    const int64_t bits = sf.attr_int(node, "weight_bits"), out = sf.attr_int(node, "cols");
    const double want = std::ceil(out * bits / 8.0) / static_cast<double>(out);
    EXPECT_NEAR(l["weight_bytes_per_sample"].get<double>() / l["sops_per_sample"].get<double>(), want, 1e-9) << node;
    ++checked;
    below_int8 += bits < 8;
  }
  EXPECT_GT(checked, 0);
  EXPECT_GT(below_int8, 0);
  // allocating activation levels keeps the weights, so the codes go along and still convert bit-exact
  const fs::path lv = d / "cq_lv.h5", lvs = d / "cq_lv.snn.h5";
  CliRun al = run_cli("compress --checkpoint " + q.string() + " --act-spikes 0.6 --act-levels 2,4 --calib-images 8 --limit 16 --out " +
                          lv.string(), d);
  ASSERT_EQ(al.code, 0) << al.err;
  EXPECT_EQ(widths(lv), kept);
  ASSERT_EQ(run_cli("convert --checkpoint " + lv.string() + " --neuron st-bif --timesteps 8 --out " + lvs.string(), d).code, 0);
  CliRun lr = run_cli("simulate --snn " + lvs.string() + " --limit 8 --until-quiet --json", d);
  ASSERT_EQ(lr.code, 0) << lr.err;
  EXPECT_EQ(nlohmann::json::parse(lr.out)["max_abs_dlogit"].get<double>(), 0.0);
  // a float fine-tune of a compressed model drops the codes (its weights are no longer the codes')
  CliRun fl = run_cli("train --init " + c.string() + " --limit 64 --epochs 1 --val-images 0 --out " + (d / "ff.h5").string(), d);
  ASSERT_EQ(fl.code, 0) << fl.err;
  EXPECT_TRUE(widths(d / "ff.h5").empty());
  EXPECT_NE(fl.err.find("not kept"), std::string::npos) << fl.err;
}
