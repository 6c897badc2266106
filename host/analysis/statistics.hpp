// Per-variant summaries of a run: finished batches are reduced into exact, mergeable tallies
// (run_data.hpp, exact_stats.hpp) and summarised from them, so they are the same bits whatever
// backend, thread count or batching produced them.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/plan.hpp"
#include "backend/run_data.hpp"

namespace sgdwalk {

/// Mean and standard error of the mean of a sample.
struct MeanEstimate {
  double mean = 0.0 / 0.0;
  double standard_error = 0.0 / 0.0;
  std::int64_t count = 0;
};

/// First-passage statistics of one variant (times in steps; multiply by η for continuous time).
struct PassageSummary {
  std::int64_t started_in_target = 0;  ///< reached at step 0; excluded from times and rates
  std::int64_t arrived = 0;            ///< reached at a step >= 1
  std::int64_t censored = 0;           ///< not reached by the end of the run (or went non-finite)
  MeanEstimate steps;                  ///< mean first-passage step of the arrived walkers
  /// Escape rate per unit time under an exponential waiting time with right-censoring:
  /// arrived / (η · total exposure steps), with an exact (Garwood) 95 % Poisson interval.
  double rate = 0.0 / 0.0, rate_low = 0.0 / 0.0, rate_high = 0.0 / 0.0;
  double exposure_time = 0;  ///< η · Σ steps at risk
};

struct SampleSummary {
  std::int64_t step = 0;
  std::uint64_t finite = 0, flat = 0;
  double p_flat = 0.0 / 0.0, p_flat_stderr = 0.0 / 0.0;
  double progress_mean = 0.0 / 0.0, progress_std = 0.0 / 0.0;
  double loss_mean = 0.0 / 0.0, loss_std = 0.0 / 0.0;
  std::vector<double> progress_quantiles, loss_quantiles;  ///< at plan.quantiles
};

struct HistogramSummary {
  std::vector<std::uint64_t> counts;  ///< bins, x fastest
  std::uint64_t outside = 0;          ///< eligible deposits outside the range
  std::uint64_t deposits = 0;         ///< all eligible deposits (in range + outside)
  std::vector<double> density;  ///< counts / (deposits · bin area); integrates to in-range share
  std::vector<double> effective_potential;  ///< −T ln density; NaN where a bin is empty
  double temperature = 0;
};

struct VariantSummary {
  std::int64_t walkers = 0;
  std::int64_t finite_walkers = 0;
  std::int64_t nonfinite_walkers = 0;
  std::int64_t first_nonfinite_step = -1;  ///< -1 when every walker stayed finite
  std::int64_t flat = 0;
  double p_flat = 0.0 / 0.0, p_flat_stderr = 0.0 / 0.0;
  MeanEstimate freezing_time;  ///< t_f in steps (paper's convention)
  MeanEstimate y_freeze;
  MeanEstimate crossings;
  PassageSummary passage;
  std::vector<SampleSummary> samples;
  std::vector<HistogramSummary> histograms;
};

/// Adds the trackers of walkers [first, last) of the batch arrays, at the last step, to
/// data.tallies, on `threads` OpenMP threads (0: OpenMP's default). The tallies are integers, so
/// the result depends neither on the thread count nor on how a run is batched. (Sample values are
/// reduced as they are recorded: reduce_samples.)
void reduce_batch(const RunPlan& plan, RunData& data, std::int64_t first, std::int64_t last,
                  int threads = 0);

/// Adds the sample values of walkers [first, last) at samples [sample_begin, sample_end) (held in
/// data.observables) to data.tallies. Every backend reduces the samples a call records before it
/// returns (the CPU backend with this function, the CUDA backend on the device), so the batch's
/// per-walker sample values are scratch: checkpoints and the driver need only the tallies.
void reduce_samples(const RunPlan& plan, RunData& data, std::int64_t first, std::int64_t last,
                    std::int64_t sample_begin, std::int64_t sample_end, int threads = 0);

/// The samples [sample_begin, sample_end) whose steps lie in (step_begin, step_end].
void samples_in_steps(const RunPlan& plan, std::int64_t step_begin, std::int64_t step_end,
                      std::int64_t& sample_begin, std::int64_t& sample_end);

/// Summaries of every variant of the run, from its tallies (variants whose walkers have not all
/// been reduced are summarised from the ones that have).
std::vector<VariantSummary> summarize(const RunPlan& plan, const RunData& data);

/// Exact quantile with linear interpolation between order statistics (numpy's default), of
/// `values` (which it reorders). NaN for an empty sample. (Runs report QuantileSketch quantiles;
/// this is the reference they are tested against.)
double quantile(std::vector<float>& values, double level);

/// Quantile of the chi-square distribution with `dof` degrees of freedom at probability p.
double chi_square_quantile(double dof, double p);

/// Exact two-sided (Garwood) confidence interval for a Poisson mean given `events`.
void poisson_interval(std::int64_t events, double confidence, double& low, double& high);

}  // namespace sgdwalk
