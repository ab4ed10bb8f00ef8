// Runs the spikefm binary (SPIKEFM_BIN, set by tests/experiments/CMakeLists.txt) as a user would:
// stdout and stderr captured separately, the exit code decoded.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/test_tmp.h"

namespace spikefm::test {

struct CliRun {
  int code = -1;  // exit status; -1 when killed by a signal
  std::string out, err;
};

// `spikefm <args>` with stderr in dir/stderr.txt (overwritten by every call).
inline CliRun run_cli(const std::string& args, const TempDir& dir) {
  const std::filesystem::path err_file = dir / "stderr.txt";
  const std::string cmd = std::string(SPIKEFM_BIN) + " " + args + " 2>" + err_file.string();
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err_file);
  return r;
}

}  // namespace spikefm::test
