#include "common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>

namespace spikefm {

namespace {
std::atomic<bool> g_enabled{true};

std::string fmt_seconds(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  return buf;
}
}  // namespace

void Progress::set_enabled(bool enabled) { g_enabled = enabled; }

Progress::Progress(std::string label, int64_t total, std::string unit, std::FILE* out)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), out_(out),
      tty_(::isatty(::fileno(out)) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_) finish();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& extra) {
  done_ = done;
  extra_ = extra;
  if (!g_enabled) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (tty_) {
    if (since >= 0.1) draw(false);
    return;
  }
  int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : -1;
  if (since >= 15.0 || (total_ > 0 && decile > last_decile_ && decile < 10)) {
    last_decile_ = std::max(last_decile_, decile);
    draw(false);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  if (!extra.empty()) extra_ = extra;
  if (g_enabled) draw(true);
}

void Progress::draw(bool final_line) {
  last_draw_ = std::chrono::steady_clock::now();
  double el = elapsed_s();
  double rate = el > 0 ? done_ / el : 0.0;
  char nums[160];
  if (total_ > 0) {
    double frac = std::clamp(static_cast<double>(done_) / total_, 0.0, 1.0);
    double eta = rate > 0 ? (total_ - done_) / rate : -1;
    if (budget_s_ > 0) eta = eta < 0 ? budget_s_ - el : std::min(eta, budget_s_ - el);
    std::snprintf(nums, sizeof nums, "%3d%% %lld/%lld %s, %.1f %s/s, %s elapsed%s%s", static_cast<int>(frac * 100),
                  static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(),
                  fmt_seconds(el).c_str(), final_line ? "" : ", eta ", final_line ? "" : fmt_seconds(eta).c_str());
  } else {
    std::snprintf(nums, sizeof nums, "%lld %s, %.1f %s/s, %s elapsed", static_cast<long long>(done_), unit_.c_str(),
                  rate, unit_.c_str(), fmt_seconds(el).c_str());
  }
  std::string bar;
  if (tty_ && total_ > 0) {
    int width = 20, filled = static_cast<int>(width * std::clamp(static_cast<double>(done_) / total_, 0.0, 1.0));
    bar.append("[").append(filled, '#').append(width - filled, '.').append("] ");
  }
  std::string line = label_;
  line.append(" ").append(bar).append(nums);
  if (!extra_.empty()) line.append(" | ").append(extra_);
  if (tty_) std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  else std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

}  // namespace spikefm
