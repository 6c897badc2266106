// Up-front resource checks: a run whose arrays cannot fit in host memory is refused before
// anything is allocated, with the largest size that would fit. (Device memory needs no check: the
// driver batches walkers to Backend::max_batch_walkers.)
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "plan.hpp"

namespace sgdwalk {

/// A run that cannot be done with the resources at hand; the message says what would fit.
class ResourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Host bytes a run holds at its peak: RunData (per walker dim·8 + 8 + 3·8 + 4 + 4, and 8 per
/// sample step for the per-walker sample arrays), the integer counters and histograms (once in
/// RunData, once per thread while counting, three times over in summaries and outputs), and the
/// transient per-walker arrays of summaries and per-walker output.
struct MemoryEstimate {
  double per_walker = 0;  ///< bytes per walker (of any variant)
  double fixed = 0;       ///< bytes that do not grow with the walker count
  double total = 0;       ///< per_walker · walkers + fixed
};

MemoryEstimate estimate_host_memory(const RunPlan& plan, int threads);

/// Bytes the system can give this process: MemAvailable from /proc/meminfo, lowered to the cgroup
/// (v2) limit when one is set. Empty when unknown.
std::optional<double> available_host_memory();

/// Peak resident memory of this process since it started (VmHWM from /proc/self/status, Linux).
/// Unlike getrusage's ru_maxrss it does not count the parent's memory copied at fork. Empty when
/// unknown.
std::optional<double> peak_host_memory();

/// The largest walkers per variant whose estimate fits in `usable_bytes` (0 if none does).
std::int64_t max_walkers_per_variant(const RunPlan& plan, int threads, double usable_bytes);

/// Refuses (ResourceError naming `source`) a run that needs more than 90 % of `available` bytes or
/// whose walker-step count does not fit in 64 bits. `available` empty: only the 64-bit check.
void check_host_resources(const RunPlan& plan, const std::string& source, int threads,
                          std::optional<double> available);

/// "1.5 GiB", "300 MiB", ...
std::string format_bytes(double bytes);

}  // namespace sgdwalk
