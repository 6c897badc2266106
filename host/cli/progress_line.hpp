// The progress line of a run, fitted to a width: a terminal redraws it in place, so a line longer
// than the terminal would wrap and every redraw would leave a stale line behind.
#pragma once

#include <string>

#include "run/driver.hpp"

namespace sgdwalk {

/// "45.2%  variants 3/100  batch 2/4  1.2e+09 walker-steps  3.4e+08 walker-steps/s  ETA 12s",
/// with a bar "[#####.....] " in front when `bar` is set. The parts that matter least are left out
/// first (walker-steps, batch, rate, the bar, variants) until the line has at most `width` - 1
/// characters (the last column is left free: writing there makes some terminals wrap); if even
/// the percentage and the ETA do not fit, the line is cut to that length.
std::string progress_line(const RunProgress& progress, int width, bool bar);

/// "12s", "3m05s", "2h07m"; "?" when not finite or negative.
std::string format_duration(double seconds);

/// The width of the terminal on file descriptor `fd`; else $COLUMNS; else 80.
int terminal_width(int fd);

}  // namespace sgdwalk
