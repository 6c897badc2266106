#include "cli/progress_line.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <vector>

namespace sgdwalk {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(seconds + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

std::string progress_line(const RunProgress& progress, int width, bool bar) {
  const double fraction = progress.walker_steps_total > 0
                              ? static_cast<double>(progress.walker_steps_done) /
                                    static_cast<double>(progress.walker_steps_total)
                              : 1.0;
  const double rate =
      progress.simulate_seconds > 0
          ? static_cast<double>(progress.walker_steps_done) / progress.simulate_seconds
          : 0.0;
  const double eta =
      rate > 0
          ? static_cast<double>(progress.walker_steps_total - progress.walker_steps_done) / rate
          : -1;
  // The parts in display order, each with the rank at which it is dropped (1 first).
  struct Part {
    std::string text;
    int drop_rank;  ///< 0: never dropped
  };
  const std::vector<Part> parts = {
      {fmt::format("{:5.1f}%", 100.0 * fraction), 0},
      // A job's progress (MPI) sums over its processes and has no variant count.
      {progress.variants_total > 0
           ? fmt::format("variants {}/{}", progress.variants_done, progress.variants_total)
           : "",
       5},
      {progress.batches > 1 ? fmt::format("batch {}/{}", progress.batch + 1, progress.batches) : "",
       2},
      {fmt::format("{:.3g} walker-steps", static_cast<double>(progress.walker_steps_done)), 1},
      {fmt::format("{:.3g} walker-steps/s", rate), 3},
      {"ETA " + format_duration(eta), 0},
  };
  constexpr int kBarRank = 4;
  const int limit = width - 1;
  for (int dropped = 0; dropped <= 5; ++dropped) {
    std::string text;
    for (const Part& part : parts) {
      if (part.text.empty() || (part.drop_rank != 0 && part.drop_rank <= dropped)) continue;
      if (!text.empty()) text.append("  ");
      text.append(part.text);
    }
    if (bar && dropped < kBarRank) {
      // The bar takes what is left, up to 30 cells, and at least 10.
      const int cells = std::min(30, limit - static_cast<int>(text.size()) - 3);
      if (cells < 10) continue;
      const int filled = static_cast<int>(fraction * cells);
      std::string with_bar = "[";
      with_bar.append(static_cast<std::size_t>(filled), '#');
      with_bar.append(static_cast<std::size_t>(cells - filled), '.');
      with_bar.append("] ");
      with_bar.append(text);
      text = std::move(with_bar);
    }
    if (static_cast<int>(text.size()) <= limit) return text;
  }
  std::string text = parts.front().text + "  " + parts.back().text;
  if (limit < static_cast<int>(text.size()))
    text.resize(static_cast<std::size_t>(std::max(limit, 0)));
  return text;
}

int terminal_width(int fd) {
  struct winsize size {};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int value = std::atoi(columns);
    if (value > 0) return value;
  }
  return 80;
}

}  // namespace sgdwalk
