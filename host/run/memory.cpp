#include "run/memory.hpp"

#include "backend/run_data.hpp"
#include "io/walker_store.hpp"
#include "rare_events/ffs_stage.hpp"

#include <fmt/format.h>

#include <sys/statvfs.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace sgdwalk {
namespace {

/// Share of the available memory a run may plan to use (the rest is for the system, the HDF5
/// library and allocator slack).
constexpr double kUsableShare = 0.9;

std::optional<double> read_number_file(const std::string& path) {
  std::ifstream file(path);
  std::string text;
  if (!(file >> text) || text == "max") return std::nullopt;
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

double batch_bytes_per_walker(const RunPlan& plan) {
  // position, y_freeze, freeze/first-passage/non-finite steps, basin, crossings, and a float
  // progress and loss per sample step.
  return (plan.dim + plan.optimizer_state_width()) * 8.0 + 8 + 3 * 8 + 4 + 4 +
         8.0 * static_cast<double>(plan.sample_count());
}

std::int64_t default_batch_walkers(const RunPlan& plan) {
  const double fit = std::floor(kDefaultBatchBytes / batch_bytes_per_walker(plan));
  const auto total = static_cast<double>(std::max<std::int64_t>(1, plan.total_walkers()));
  return static_cast<std::int64_t>(std::max(1.0, std::min(fit, total)));
}

namespace {

MemoryEstimate estimate_for(const RunPlan& plan, int threads, std::int64_t walkers_per_variant) {
  RunPlan shape;  // only the sizes the estimate reads
  shape.dim = plan.dim;
  shape.sample_steps = plan.sample_steps;
  shape.walkers_per_variant = walkers_per_variant;
  shape.variants.resize(plan.variants.size());
  const double samples = static_cast<double>(plan.sample_count());
  const double variants = static_cast<double>(plan.variant_count());
  const double total_walkers = static_cast<double>(walkers_per_variant) * variants;
  MemoryEstimate estimate;
  estimate.batch_walkers = plan.batch_walkers > 0
                               ? std::min(plan.batch_walkers, shape.total_walkers())
                               : default_batch_walkers(shape);
  estimate.batch = static_cast<double>(estimate.batch_walkers) * batch_bytes_per_walker(plan);
  // Tallies: exact sums and a y_freeze sketch per variant, exact sums and two sketches per
  // (variant, sample); sketch entries are 16 bytes.
  const double entries = std::min(static_cast<double>(walkers_per_variant), kSketchTypicalEntries);
  estimate.tallies =
      variants * (static_cast<double>(sizeof(VariantTally)) + entries * 16 * 2) +
      variants * samples * (static_cast<double>(sizeof(SampleTally)) + 2 * entries * 16 * 2);
  const double workers = std::max(1, threads);
  // The reduction: a dense bucket array per thread, and a batch's entries before they merge.
  estimate.fixed = workers * (8.0 * (1 << kSketchBucketBits)) +
                   2 * std::min(static_cast<double>(estimate.batch_walkers), entries) * 16;
  double bins_per_variant = 0;
  for (const auto& h : plan.histograms) bins_per_variant += h.bin_count() + 1.0;
  const double histogram_bins = variants * bins_per_variant;
  const double counters_per_variant = samples * 16 + bins_per_variant * 8;
  // RunData's counters cover every variant; each counting thread's, the variants of a call (a
  // batch spans at most batch / walkers_per_variant + 1 of them).
  const double call_variants = std::min(
      variants, std::ceil(static_cast<double>(estimate.batch_walkers) /
                          static_cast<double>(std::max<std::int64_t>(1, walkers_per_variant))) +
                    1);
  estimate.fixed += counters_per_variant * (variants + workers * call_variants) +
                    histogram_bins * 8 * 3 * 2;  // summaries, output buffers
  // Per variant, the plan's Variant, its summary and summary.json's entry (JSON objects and the
  // text): 8.5 KB. Sweeps of 1e5-3e5 variants of one walker and no samples peaked at 12.6-13.4 KB
  // per variant in all, 5.1 KB of it the tallies counted above (bench/RESULTS.md "Memory of very
  // large sweeps").
  estimate.fixed += variants * 8.5e3;
  estimate.fixed += variants * samples * 2 * static_cast<double>(plan.quantiles.size()) * 8;
  if (plan.per_walker_output) {
    // results.h5 is written in slabs of ~2^20 values: the slab's walkers read back from the walker
    // file (a record buffer and WalkerArrays) and one dataset's values; the walker file is written
    // in blocks of 2^16 records.
    const double record =
        static_cast<double>(walker_record_bytes(plan.dim, plan.optimizer_state_width()));
    const double slab = std::min(total_walkers, 1048576.0);
    estimate.fixed += slab * (2 * record + 8.0 * plan.dim) + 65536 * record;
  }
  estimate.total = estimate.batch + estimate.tallies + estimate.fixed;
  return estimate;
}

}  // namespace

MemoryEstimate estimate_host_memory(const RunPlan& plan, int threads) {
  return estimate_for(plan, threads, plan.walkers_per_variant);
}

std::optional<double> available_host_memory() {
  std::optional<double> available;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    double kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") {
      available = kib * 1024;
      break;
    }
  }
  const auto limit = read_number_file("/sys/fs/cgroup/memory.max");
  const auto used = read_number_file("/sys/fs/cgroup/memory.current");
  if (limit && used) {
    const double room = std::max(0.0, *limit - *used);
    available = available ? std::min(*available, room) : room;
  }
  return available;
}

std::optional<double> peak_host_memory() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    std::istringstream fields(line);
    std::string key;
    double kib = 0;
    if (fields >> key >> kib && key == "VmHWM:") return kib * 1024;
  }
  return std::nullopt;
}

std::int64_t max_walkers_per_variant(const RunPlan& plan, int threads, double usable_bytes) {
  // The estimate grows with the walkers per variant (the batch, until it reaches its default size,
  // and the sketches, until they are capped): the largest fitting count by bisection.
  constexpr std::int64_t kMost = 4294967295;
  auto fits = [&](std::int64_t walkers) {
    return estimate_for(plan, threads, walkers).total <= usable_bytes;
  };
  if (!fits(1)) return 0;
  if (fits(kMost)) return kMost;
  std::int64_t low = 1, high = kMost;  // fits(low), !fits(high)
  while (high - low > 1) {
    const std::int64_t mid = low + (high - low) / 2;
    (fits(mid) ? low : high) = mid;
  }
  return low;
}

void check_host_resources(const RunPlan& plan, const std::string& source, int threads,
                          std::optional<double> available) {
  const double walker_steps =
      static_cast<double>(plan.total_walkers()) * static_cast<double>(plan.steps);
  if (walker_steps >= 9.2e18) {
    throw ResourceError(fmt::format(
        "{}: the run has {:.3g} walker-steps ({} variant(s) x {} walkers x {} steps); at most "
        "9.2e18 "
        "are supported: reduce run.walkers, run.steps or the sweep",
        source, walker_steps, plan.variant_count(), plan.walkers_per_variant, plan.steps));
  }
  if (!available) return;
  const MemoryEstimate estimate = estimate_host_memory(plan, threads);
  const double usable = *available * kUsableShare;
  if (estimate.total <= usable) return;
  const std::int64_t fit = max_walkers_per_variant(plan, threads, usable);
  std::string advice;
  if (fit > 0) {
    advice = fmt::format(
        "at most {} walkers per variant fit (run.walkers is {}), or use fewer sample steps ({} "
        "now, each 8 bytes per walker of a batch and a quantile sketch per variant) or a smaller "
        "run.batch_walkers ({} walkers per batch now)",
        fit, plan.walkers_per_variant, plan.sample_count(), estimate.batch_walkers);
  } else {
    advice = fmt::format(
        "not even one walker per variant fits: reduce the sweep ({} variants) or the histogram "
        "bins",
        plan.variant_count());
  }
  throw ResourceError(fmt::format(
      "{}: the run needs {} of host memory but only {} are available (sgdwalk plans to use at most "
      "{:.0f}% of it); {}",
      source, format_bytes(estimate.total), format_bytes(*available), kUsableShare * 100, advice));
}

/// What an FFS process holds besides its stages: libraries, HDF5, the plan (measured ~20 MB).
constexpr double kFfsProcessBytes = 32.0 * 1024 * 1024;

FfsMemoryEstimate estimate_ffs_memory(const RunPlan& plan) {
  // A walker of WalkerArrays: position and optimizer state as double, y_freeze, three steps,
  // basin and crossings.
  const double state = 8.0 * (plan.dim + plan.optimizer_state_width()) + 40;
  // FfsFluxBatch: the walker, five counters, two flags, the stored count, and a state and its
  // step per crossing slot; plus 64 bytes of the crossing records and the allocator's share
  // (measured 1041 bytes per 1-D SGD flux walker, the formula without them 990).
  const double slots = FfsFluxBatch{}.capacity;
  FfsMemoryEstimate e;
  e.per_flux_walker = state + 5 * 8 + 2 + 4 + slots * (state + 8) + 64;
  // FfsTrialBatch (the state and 34 bytes of step counts, extremes, outcome and the chosen start)
  // 7.5 times over: the batch, the backend's typed copy, the start states and the states stored
  // (measured 559 bytes per 1-D SGD trial, 7.5 x 82 = 615; 717 per Adam trial, 7.5 x 98 = 735).
  constexpr double kTrialCopies = 7.5;
  e.per_trial = kTrialCopies * (state + 34);
  const auto variants = static_cast<double>(plan.variant_count());
  const double trials = static_cast<double>(std::max(plan.ffs.trials, plan.ffs.placement_trials));
  const double stage = std::max(static_cast<double>(plan.walkers_per_variant) * e.per_flux_walker,
                                trials * e.per_trial);
  e.total = variants * stage + kFfsProcessBytes;
  return e;
}

void check_ffs_memory(const RunPlan& plan, const std::string& source,
                      std::optional<double> available) {
  if (!available) return;
  const FfsMemoryEstimate estimate = estimate_ffs_memory(plan);
  const double usable = *available * kUsableShare;
  if (estimate.total <= usable) return;
  const auto variants = static_cast<double>(plan.variant_count());
  const double room = std::max(0.0, usable - kFfsProcessBytes) / variants;
  const auto fit_walkers = static_cast<std::int64_t>(room / estimate.per_flux_walker);
  const auto fit_trials = static_cast<std::int64_t>(room / estimate.per_trial);
  throw ResourceError(fmt::format(
      "{}: forward flux sampling needs about {} of host memory at its largest stage ({} "
      "variant(s) x {} flux walkers of {:.0f} bytes, or x {} trials of {:.0f} bytes, at once) "
      "but only {} are available (sgdwalk plans to use at most {:.0f}% of it); at most {} "
      "run.walkers and {} {} fit with this sweep (or split the sweep over several runs)",
      source, format_bytes(estimate.total), plan.variant_count(), plan.walkers_per_variant,
      estimate.per_flux_walker, std::max(plan.ffs.trials, plan.ffs.placement_trials),
      estimate.per_trial, format_bytes(*available), kUsableShare * 100, fit_walkers, fit_trials,
      // Automatic placement's pilot stages run placement_trials (by default the trials) at once.
      plan.ffs.automatic() ? "rare_event.trials and placement_trials" : "rare_event.trials"));
}

double walker_file_bytes(const RunPlan& plan, std::int64_t walkers) {
  if (!plan.per_walker_output) return 0;
  return static_cast<double>(kWalkerFileHeaderBytes) +
         static_cast<double>(walkers) *
             static_cast<double>(walker_record_bytes(plan.dim, plan.optimizer_state_width()));
}

std::optional<double> available_disk_space(const std::string& directory) {
  struct statvfs info {};
  if (::statvfs(directory.c_str(), &info) != 0) return std::nullopt;
  return static_cast<double>(info.f_bavail) * static_cast<double>(info.f_frsize);
}

void check_disk_space(const RunPlan& plan, std::int64_t walkers, const std::string& source,
                      std::optional<double> available, const std::string& advice) {
  const double needed = walker_file_bytes(plan, walkers);
  if (!available || needed <= *available) return;
  const double per_walker =
      static_cast<double>(walker_record_bytes(plan.dim, plan.optimizer_state_width()));
  throw ResourceError(fmt::format(
      "{}: observables.per_walker = true: the per-walker file of the {} walkers still to write "
      "needs {} "
      "({:.0f} bytes each, and results.h5 then adds their compressed copy) but the run directory's "
      "file system has {} free; {}",
      source, walkers, format_bytes(needed), per_walker, format_bytes(*available), advice));
}

void check_plan_memory(std::int64_t variants, const std::string& source,
                       std::optional<double> available) {
  if (!available) return;
  const double needed = static_cast<double>(variants) * kPlanBytesPerVariant;
  if (needed <= *available * kUsableShare) return;
  throw ResourceError(fmt::format(
      "{}: the sweep's {} variants need about {} of host memory just to be read ({:.0f} KB "
      "each) but only {} are available (sgdwalk plans to use at most {:.0f}% of it); at most {} "
      "variants can be read here: reduce the sweep or split it into several configs",
      source, variants, format_bytes(needed), kPlanBytesPerVariant / 1024, format_bytes(*available),
      kUsableShare * 100,
      static_cast<std::int64_t>(*available * kUsableShare / kPlanBytesPerVariant)));
}

std::string format_bytes(double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024 * 1024)
    return fmt::format("{:.1f} TiB", bytes / std::pow(1024.0, 4));
  if (bytes >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f} GiB", bytes / std::pow(1024.0, 3));
  if (bytes >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", bytes / std::pow(1024.0, 2));
  return fmt::format("{:.0f} KiB", std::ceil(bytes / 1024.0));
}

}  // namespace sgdwalk
