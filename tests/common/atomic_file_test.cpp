#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "tests/test_tmp.h"

namespace fs = std::filesystem;
using spikefm::test::slurp;
using spikefm::test::TempDir;

namespace {
size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}
}  // namespace

TEST(AtomicFile, WritesAndReplacesContent) {
  TempDir d;
  spikefm::write_file_atomic(d / "a.txt", "first");
  spikefm::write_file_atomic(d / "a.txt", "second, longer");
  EXPECT_EQ(slurp(d / "a.txt"), "second, longer");
  EXPECT_EQ(entries(d.path()), 1u) << "no temporary file may remain";
}

TEST(AtomicFile, UncommittedWriteLeavesTargetUntouched) {
  TempDir d;
  spikefm::write_file_atomic(d / "a.txt", "old");
  {
    spikefm::AtomicFile f(d / "a.txt");
    std::ofstream(f.temp_path()) << "half-written new content";
    // destroyed without commit(): as if the run were killed before finishing
  }
  EXPECT_EQ(slurp(d / "a.txt"), "old");
  EXPECT_EQ(entries(d.path()), 1u);
}

TEST(AtomicFile, MissingDirectoryIsAClearError) {
  TempDir d;
  try {
    spikefm::write_file_atomic(d / "no-such-dir" / "a.txt", "x");
    FAIL() << "expected spikefm::Error";
  } catch (const spikefm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST(AtomicFile, JsonFileParsesBack) {
  TempDir d;
  spikefm::Json j;
  j["accuracy"] = 0.875;
  j["n"] = 40000;
  spikefm::write_json_file(d / "r.json", j);
  auto back = nlohmann::json::parse(slurp(d / "r.json"));
  EXPECT_DOUBLE_EQ(back["accuracy"].get<double>(), 0.875);
  EXPECT_EQ(back["n"].get<int>(), 40000);
}
