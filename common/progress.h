// Progress for long loops (training steps, evaluation, simulation), written to stderr.
// On a terminal: one line redrawn in place at most 10 times a second with a bar, rate and ETA.
// Otherwise (CI logs, pipes): a plain line every 10% of the work or every 15 s, whichever comes first.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace spikefm {

class Progress {
 public:
  // total <= 0 means unknown: only the count and rate are shown. unit names what is counted.
  Progress(std::string label, int64_t total, std::string unit = "it", std::FILE* out = stderr);
  ~Progress();  // finishes the line if finish() was not called

  // Sets the number of completed items; `extra` is shown after the numbers (e.g. "loss 0.412").
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_s() const;
  // Work that stops at a wall-clock budget: the ETA shown is the earlier of the two ends.
  void set_time_budget(double seconds) { budget_s_ = seconds; }

  // Quiet mode for tests and --json runs that want a silent stderr.
  static void set_enabled(bool enabled);

 private:
  void draw(bool final_line);

  std::string label_, unit_, extra_;
  int64_t total_, done_ = 0;
  std::FILE* out_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = -1;
  double budget_s_ = -1;
};

}  // namespace spikefm
