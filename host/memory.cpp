#include "memory.hpp"

#include <fmt/format.h>

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

MemoryEstimate estimate_host_memory(const RunPlan& plan, int threads) {
  const double dim = plan.dim;
  const double samples = static_cast<double>(plan.sample_count());
  const double variants = static_cast<double>(plan.variant_count());
  MemoryEstimate estimate;
  // RunData: position, y_freeze, freeze/first-passage/non-finite steps, basin, crossings, and a
  // float progress and loss per sample step.
  estimate.per_walker = dim * 8 + 8 + 3 * 8 + 4 + 4 + 8 * samples;
  // Summaries copy one variant's sample values at a time; per-walker output makes three
  // 8-byte index arrays.
  estimate.per_walker += 8;
  if (plan.per_walker_output) estimate.per_walker += 3 * 8;
  double counters = variants * samples * 16;
  double histogram_bins = 0;
  for (const auto& h : plan.histograms) histogram_bins += variants * (h.bin_count() + 1.0);
  counters += histogram_bins * 8;
  const double copies = 1.0 + std::max(1, threads);  // RunData + one per counting thread
  estimate.fixed = counters * copies + histogram_bins * 8 * 3 * 2;  // summaries and output buffers
  estimate.fixed += variants * 1024;                                // per-variant summaries
  estimate.total = estimate.per_walker * static_cast<double>(plan.total_walkers()) + estimate.fixed;
  return estimate;
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
  const MemoryEstimate estimate = estimate_host_memory(plan, threads);
  const double variants = static_cast<double>(std::max<std::int64_t>(1, plan.variant_count()));
  const double fit = std::floor((usable_bytes - estimate.fixed) / (estimate.per_walker * variants));
  if (!(fit >= 1)) return 0;
  return fit >= 4294967295.0 ? std::int64_t{4294967295} : static_cast<std::int64_t>(fit);
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
        "now, "
        "each 8 bytes per walker)",
        fit, plan.walkers_per_variant, plan.sample_count());
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

std::string format_bytes(double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024 * 1024)
    return fmt::format("{:.1f} TiB", bytes / std::pow(1024.0, 4));
  if (bytes >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f} GiB", bytes / std::pow(1024.0, 3));
  if (bytes >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", bytes / std::pow(1024.0, 2));
  return fmt::format("{:.0f} KiB", std::ceil(bytes / 1024.0));
}

}  // namespace sgdwalk
