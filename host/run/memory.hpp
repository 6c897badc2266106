// Up-front resource checks: a run whose arrays cannot fit in host memory is refused before
// anything is allocated, with the largest size that would fit. (Device memory needs no check: the
// driver batches walkers to Backend::max_batch_walkers.)
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "analysis/exact_stats.hpp"
#include "backend/plan.hpp"

namespace sgdwalk {

/// A run that cannot be done with the resources at hand; the message says what would fit.
class ResourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Host bytes a run holds at its peak. A run holds one batch of walkers at a time (see
/// run_data.hpp), so the estimate does not grow with the walker count beyond the batch:
/// - the batch arrays: batch walkers x ((dim + optimizer state width)·8 + 40 + 8 per sample step)
///   bytes;
/// - the tallies: per variant the reduced trackers and a y_freeze sketch, per variant and sample
///   the exact sums and two quantile sketches, each sketch assumed to hold min(walkers per
///   variant, kSketchTypicalEntries) buckets (twice: merging);
/// - the reduction's scratch (one dense bucket array per thread), the integer counters and
///   histograms (once in RunData, once per counting thread, three times in summaries and outputs),
///   per-variant records (8.5 KB each besides the tallies, measured), and with per-walker output
///   the slab buffers that copy the walker file into results.h5.
struct MemoryEstimate {
  double batch = 0;    ///< the batch arrays
  double tallies = 0;  ///< exact sums and quantile sketches (grows with the walkers until capped)
  double fixed = 0;    ///< everything else
  double total = 0;    ///< batch + tallies + fixed
  std::int64_t batch_walkers = 0;  ///< walkers per batch assumed
};

/// Quantile sketch buckets assumed per (variant, sample, quantity): 64 binary orders of magnitude.
inline constexpr double kSketchTypicalEntries = 64.0 * (1 << kSketchMantissaBits);
/// Bytes of batch arrays a run uses when no batch size is given.
inline constexpr double kDefaultBatchBytes = 256.0 * 1024 * 1024;

/// Host bytes of the batch arrays per walker (state and sample values).
double batch_bytes_per_walker(const RunPlan& plan);
/// Walkers per batch when neither the caller nor the config sets one: as many as fit in
/// kDefaultBatchBytes of batch arrays (at least 1, at most the run's walkers).
std::int64_t default_batch_walkers(const RunPlan& plan);

MemoryEstimate estimate_host_memory(const RunPlan& plan, int threads);

/// Bytes the system can give this process: MemAvailable from /proc/meminfo, lowered to the cgroup
/// (v2) limit when one is set. Empty when unknown.
std::optional<double> available_host_memory();

/// Peak resident memory of this process since it started (VmHWM from /proc/self/status, Linux).
/// Unlike getrusage's ru_maxrss it does not count the parent's memory copied at fork. Empty when
/// unknown.
std::optional<double> peak_host_memory();

/// The largest walkers per variant (at most 2^32 − 1) whose estimate fits in `usable_bytes` (0 if
/// none does).
std::int64_t max_walkers_per_variant(const RunPlan& plan, int threads, double usable_bytes);

/// Host bytes per variant of building a plan (the sweep's expansion into RunPlan::variants, the
/// resolved config), at the peak: measured 2.95 KB for a two_valley grid of 1e6 variants
/// (bench/RESULTS.md, "Memory of very large sweeps").
inline constexpr double kPlanBytesPerVariant = 3072;

/// Refuses (ResourceError naming `source`) a sweep of `variants` variants whose plan alone would
/// need more than 90 % of `available` bytes: called before the plan is built, so that such a
/// config is refused with the size it needs instead of the process being killed while it is
/// read. `available` empty: nothing is checked.
void check_plan_memory(std::int64_t variants, const std::string& source,
                       std::optional<double> available);

/// Bytes of the per-walker file (RUN/walkers.bin) of `walkers` walkers: its header and a record
/// per walker (io/walker_store.hpp); 0 without per-walker output. results.h5's /walkers, written
/// from it at the end (compressed), comes on top.
double walker_file_bytes(const RunPlan& plan, std::int64_t walkers);

/// Bytes free to this process on the file system of `directory` (statvfs); empty when unknown.
std::optional<double> available_disk_space(const std::string& directory);

/// Refuses (ResourceError naming `source`) a per-walker run (or resume) with `walkers` walkers
/// still to write whose walker records alone do not fit in the `available` bytes of its run
/// directory's file system: it would fail when the disk is full, after the computing. `available`
/// empty: nothing is checked.
void check_disk_space(const RunPlan& plan, std::int64_t walkers, const std::string& source,
                      std::optional<double> available,
                      const std::string& advice =
                          "give --out on a larger file system, fewer "
                          "walkers, or per_walker = false");

/// Refuses (ResourceError naming `source`) a run that needs more than 90 % of `available` bytes or
/// whose walker-step count does not fit in 64 bits. `available` empty: only the 64-bit check.
void check_host_resources(const RunPlan& plan, const std::string& source, int threads,
                          std::optional<double> available);

/// Host bytes of a forward flux sampling run at its largest stage: every variant's flux walkers
/// at once (each with room for 16 crossing states) or every variant's trials at once (the batch,
/// the backend's typed copy, the start states and the states stored; measured 559 bytes per trial
/// of a 1-D SGD walker and 717 of an Adam walker, bench/RESULTS.md; the estimate is 3–10 % above
/// these), whichever is larger, plus the process's base. The interface-0 states a flux stage keeps
/// (at most rare_event.max_stored_states) come on top.
struct FfsMemoryEstimate {
  double per_flux_walker = 0;  ///< bytes per flux walker and variant
  double per_trial = 0;        ///< bytes per trial and variant
  double total = 0;
};
FfsMemoryEstimate estimate_ffs_memory(const RunPlan& plan);

/// Refuses (ResourceError naming `source`) a forward flux sampling run whose largest stage needs
/// more than 90 % of `available` bytes, naming the largest run.walkers and rare_event.trials that
/// fit. `available` empty: nothing is checked.
void check_ffs_memory(const RunPlan& plan, const std::string& source,
                      std::optional<double> available);

/// "1.5 GiB", "300 MiB", ...
std::string format_bytes(double bytes);

}  // namespace sgdwalk
