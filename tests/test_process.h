// Running a helper command from a test (e.g. python3 as an independent reference).
#pragma once

#include <cstdio>
#include <string>

namespace spikefm::test {

// Runs `cmd` through the shell; returns its stdout, the exit status (as pclose gives it) in *status
// (-1 when it could not be started).
inline std::string run_command(const std::string& cmd, int* status) {
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  *status = ::pclose(pipe);
  return out;
}

}  // namespace spikefm::test
