#include "run/driver.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <ostream>

#include "backend/dynamics_table.hpp"
#include "backend/typed_run.hpp"
#include "config/config_keys.hpp"
#include "config/landscape_params.hpp"
#include "io/atomic_file.hpp"
#include "io/hdf5_file.hpp"
#include "run/memory.hpp"
#include "sgdwalk/normal.hpp"
#include "sgdwalk/stable.hpp"

namespace sgdwalk {

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::int64_t choose_batch(const RunPlan& plan, const Backend& backend, std::int64_t requested) {
  std::int64_t batch = requested > 0 ? requested : plan.batch_walkers;
  if (batch <= 0) {
    batch = default_batch_walkers(plan);
    const std::int64_t preferred = backend.preferred_batch_walkers(plan);
    if (preferred > 0) batch = std::min(batch, preferred);
  }
  const std::int64_t limit = backend.max_batch_walkers(plan);
  if (limit > 0) batch = std::min(batch, limit);
  return std::max<std::int64_t>(1, std::min(batch, plan.total_walkers()));
}

/// Throws std::invalid_argument unless `data` has the plan's shape (batch arrays of any capacity
/// holding the batch in flight, counters, tallies) and `progress` is a state the driver can
/// continue from.
void check_state(const RunPlan& plan, const RunData& data, const RunProgress& progress) {
  const std::int64_t total = plan.total_walkers();
  const auto& w = data.walkers;
  const auto& o = data.observables;
  const auto n = static_cast<std::size_t>(w.size());
  const auto counters = static_cast<std::size_t>(plan.variant_count() * plan.sample_count());
  bool shape_ok =
      w.dim == plan.dim && w.position.size() == n * static_cast<std::size_t>(plan.dim) &&
      w.y_freeze.size() == n && w.freeze_step.size() == n && w.first_passage_step.size() == n &&
      w.nonfinite_step.size() == n && w.crossings.size() == n &&
      o.variants == plan.variant_count() && o.samples == plan.sample_count() &&
      o.walkers_per_variant == plan.walkers_per_variant && o.first == w.first &&
      o.capacity == w.size() &&
      o.sample_progress.size() == static_cast<std::size_t>(o.samples) * n &&
      o.sample_loss.size() == o.sample_progress.size() && o.sample_flat.size() == counters &&
      o.sample_finite.size() == counters && o.histogram_counts.size() == plan.histograms.size() &&
      data.tallies.variants.size() == static_cast<std::size_t>(plan.variant_count()) &&
      data.tallies.samples.size() == counters;
  for (std::size_t h = 0; shape_ok && h < plan.histograms.size(); ++h) {
    shape_ok = o.histogram_counts[h].size() ==
               static_cast<std::size_t>(o.variants * (plan.histograms[h].bin_count() + 1));
  }
  if (!shape_ok) throw std::invalid_argument("the run data does not have the shape of the plan");
  const bool in_flight = progress.walker_end > progress.walker_begin;
  const std::int64_t part_end = progress.part_end < 0 ? total : progress.part_end;
  if (progress.part_begin < 0 || part_end > total || progress.part_begin > part_end) {
    throw std::invalid_argument(fmt::format("invalid part of the run: walkers [{}, {}) of {}",
                                            progress.part_begin, part_end, total));
  }
  if (progress.walker_begin < progress.part_begin || progress.walker_end < progress.walker_begin ||
      progress.walker_end > part_end ||
      (in_flight && (progress.step < 1 || progress.step >= plan.steps)) ||
      (!in_flight && progress.step != 0) || progress.simulate_seconds < 0) {
    throw std::invalid_argument(
        fmt::format("inconsistent run progress: walkers [{}, {}) at step {} of {} ({} walkers)",
                    progress.walker_begin, progress.walker_end, progress.step, plan.steps, total));
  }
  if (in_flight && !w.holds(progress.walker_begin, progress.walker_end)) {
    throw std::invalid_argument(
        fmt::format("the run data does not hold the batch in flight, walkers [{}, {})",
                    progress.walker_begin, progress.walker_end));
  }
}

/// Gives the batch arrays room for `capacity` walkers, keeping walkers [begin, begin + keep)
/// (the batch in flight) and their sample values.
void resize_batch_arrays(const RunPlan& plan, RunData& data, std::int64_t capacity,
                         std::int64_t begin, std::int64_t keep) {
  WalkerArrays walkers;
  walkers.resize(capacity, plan.dim, begin, plan.optimizer_state_width());
  walkers.copy_from(data.walkers, begin, begin + keep);
  ObservableArrays& o = data.observables;
  const auto values = static_cast<std::size_t>(o.samples * capacity);
  std::vector<float> progress(values, 0.0f), loss(values, 0.0f);
  for (std::int64_t k = 0; k < o.samples && keep > 0; ++k) {
    const auto from =
        static_cast<std::size_t>(k * o.capacity) + static_cast<std::size_t>(begin - o.first);
    const auto to = static_cast<std::size_t>(k * capacity);
    std::copy_n(o.sample_progress.begin() + static_cast<std::ptrdiff_t>(from), keep,
                progress.begin() + static_cast<std::ptrdiff_t>(to));
    std::copy_n(o.sample_loss.begin() + static_cast<std::ptrdiff_t>(from), keep,
                loss.begin() + static_cast<std::ptrdiff_t>(to));
  }
  data.walkers = std::move(walkers);
  o.sample_progress = std::move(progress);
  o.sample_loss = std::move(loss);
  o.first = begin;
  o.capacity = capacity;
}

/// Walkers [first, last) of the batch arrays have reached the last step: store them (per-walker
/// output), show them to the caller, reduce them into the tallies. The arrays are then free.
void finish_batch(const RunPlan& plan, const ExecuteOptions& options, RunData& data,
                  std::int64_t first, std::int64_t last) {
  if (options.walker_store) options.walker_store->write(data.walkers, first, last);
  if (options.on_batch) options.on_batch(data, first, last);
  reduce_batch(plan, data, first, last);
}

/// Steps per backend call: fixed when asked for, otherwise adapted to the measured rate so that a
/// call takes about `segment_seconds` (growing at most 4x per call from a small first call).
class SegmentSizer {
 public:
  explicit SegmentSizer(const ExecuteOptions& options)
      : fixed_(options.segment_steps),
        target_(options.segment_seconds > 0 ? options.segment_seconds : 1.0) {}

  std::int64_t next(std::int64_t walkers, std::int64_t remaining) const {
    if (fixed_ > 0) return std::min(fixed_, remaining);
    double steps = 0;
    if (rate_ <= 0) {
      steps = kFirstCallWork / static_cast<double>(walkers);
    } else {
      steps = std::min(rate_ * target_ / static_cast<double>(walkers),
                       4.0 * static_cast<double>(last_steps_));
    }
    if (!(steps >= 1)) return 1;
    return steps >= static_cast<double>(remaining) ? remaining : static_cast<std::int64_t>(steps);
  }

  void record(std::int64_t walkers, std::int64_t steps, double seconds) {
    last_steps_ = steps;
    const double work = static_cast<double>(walkers) * static_cast<double>(steps);
    // Calls too short to time only bound the rate from below (so the next call may grow 4x).
    rate_ = seconds >= kShortestTimed ? work / seconds : std::max(rate_, work / kShortestTimed);
  }

 private:
  static constexpr double kFirstCallWork = 1 << 20;  // walker-steps
  static constexpr double kShortestTimed = 0.01;     // seconds
  std::int64_t fixed_;
  double target_;
  double rate_ = 0;  ///< walker-steps per second, last measured
  std::int64_t last_steps_ = 0;
};

/// JSON number, or null for NaN/inf (JSON has no NaN).
Json number(double value) {
  return std::isfinite(value) ? Json(value) : Json(nullptr);
}

Json estimate_json(const MeanEstimate& estimate) {
  return {{"mean", number(estimate.mean)},
          {"stderr", number(estimate.standard_error)},
          {"count", estimate.count}};
}

/// results.h5 while it is written: the run, the open file and what its groups share. write_hdf5
/// calls the writers of the groups below in the order of the file.
struct ResultsFile {
  const RunPlan& plan;
  const RunOutcome& outcome;
  Hdf5File file;
  /// Units and description of every parameter, for its dataset and for the swept copies
  /// (landscape parameters are added where they are written).
  std::map<std::string, std::pair<std::string, std::string>> parameter_text;
  /// The swept parameters' names, in sweep order.
  std::vector<std::string> swept;

  ResultsFile(const RunPlan& run_plan, const RunOutcome& run_outcome,
              const std::filesystem::path& path)
      : plan(run_plan), outcome(run_outcome), file(path.string()) {
    parameter_text = {
        {"learning_rate", {"1", "learning rate eta (the time step of a Langevin walker)"}},
        {"dt", {"1", "time step dt (the learning rate eta under another name)"}},
        {"noise_strength", {"1", "noise strength sigma (inverse batch size)"}},
        {"temperature", {"loss", "Delta_S = eta x sigma"}},
        {"epsilon", {"1", "regulariser epsilon of the Hessian noise models"}},
        {"alpha", {"1", "tail index alpha of the alpha-stable noise"}},
    };
    for (const auto& coefficient : optimizer_coefficients())
      parameter_text[coefficient.key] = {"1", coefficient.description};
    if (!plan.variants.empty()) {
      for (const auto& [name, value] : plan.variants.front().swept) swept.push_back(name);
    }
  }

  /// After a group's datasets: the `coordinates` attribute, and in a group of results copies of the
  /// swept parameters (a dataset of the same name that is not the parameter, e.g. a histogram's
  /// temperature, keeps its place and the parameter is not copied there). /parameters and
  /// /parameters/landscape name the swept parameters they hold and copy none.
  void finish_variant_group(const std::string& group, bool holds_parameters,
                            const std::string& more_coordinates) {
    std::string names = more_coordinates;
    for (std::size_t a = 0; a < swept.size(); ++a) {
      const std::string path = group + "/" + swept[a];
      const bool held = file.exists(path);
      if (holds_parameters && !held) continue;  // e.g. dt, or a landscape parameter
      if (!holds_parameters && held) continue;  // the name is another dataset's
      if (!holds_parameters) {
        std::vector<double> values;
        for (const auto& variant : plan.variants) values.push_back(variant.swept[a].second);
        // The parameter's own units and description: the copy is the same parameter (with the
        // values the sweep gave: a swept temperature, not eta x sigma recomputed).
        const auto text = parameter_text.find(swept[a]);
        const std::string units = text != parameter_text.end() ? text->second.first : "1";
        const std::string description =
            text != parameter_text.end() ? text->second.second : "swept parameter " + swept[a];
        if (is_integer_sweep_parameter(swept[a])) {  // a schedule's step count
          file.dataset(path, std::vector<std::int64_t>(values.begin(), values.end()), {"variant"},
                       units, description);
        } else {
          file.dataset(path, values, {"variant"}, units, description);
        }
      }
      names += (names.empty() ? "" : " ") + swept[a];
    }
    if (!names.empty()) file.attribute(group, "coordinates", names);
  }

  /// A number of each variant's summary.
  template <class Getter>
  std::vector<double> summary_values(Getter getter) const {
    std::vector<double> values;
    for (const auto& s : outcome.summaries) values.push_back(getter(s));
    return values;
  }
  /// A count of each variant's summary: integers in the file too (an unfinished variant's are 0).
  template <class Getter>
  std::vector<std::int64_t> summary_counts(Getter getter) const {
    std::vector<std::int64_t> values;
    for (const auto& s : outcome.summaries) values.push_back(getter(s));
    return values;
  }
};

/// The file's attributes (version, config, conventions) and the `variant` coordinate of every
/// per-variant group.
void write_file_attributes(ResultsFile& out, const RunRecord& record) {
  const RunPlan& plan = out.plan;
  const RunOutcome& outcome = out.outcome;
  const auto variants = static_cast<std::uint64_t>(out.plan.variant_count());
  Hdf5File& file = out.file;
  file.attribute("/", "sgdwalk_version", sgdwalk_version());
  file.attribute("/", "git_commit", sgdwalk_git_commit());
  file.attribute("/", "config", plan.resolved_config.dump());
  file.attribute("/", "config_toml", record.config_text);
  file.attribute("/", "partial", outcome.complete ? "false" : "true");
  file.attribute("/", "conventions",
                 "Steps count updates (the start is step 0). Continuous time = learning_rate x "
                 "steps, with the base learning_rate (a learning-rate schedule's factors are not "
                 "summed; /samples/elapsed_time sums them). Basin 1 = flat (x >= 0), 0 = sharp. "
                 "Freezing time t_f = s + 1 where s is the step a walker first sat in its final "
                 "basin after its last change.");

  // netCDF-4 dimensions (HDF5 dimension scales; README "Outputs"): every group with per-variant
  // data has the dimension `variant` (its coordinate: the index) and, as coordinates along it, the
  // swept parameters with the values the sweep gave, named in the group's `coordinates` attribute,
  // so that a netCDF reader of any one group (xarray.open_dataset(..., group=...)) sees them.
  {
    std::vector<std::int64_t> index(variants);
    for (std::uint64_t v = 0; v < variants; ++v) index[v] = static_cast<std::int64_t>(v);
    for (std::string group :
         {"/parameters", "/parameters/landscape", "/variants", "/samples", "/trackers"}) {
      if (group == "/samples" && plan.sample_count() == 0) continue;
      if (group == "/parameters/landscape" &&
          landscape_parameters(plan.landscape, plan.dim).empty())
        continue;
      file.coordinate(group + "/variant", index, "1", "variant index (sweep order)");
    }
    if (plan.passage.kind != PassageKind::none) {
      file.coordinate("/first_passage/variant", index, "1", "variant index (sweep order)");
    }
    for (const auto& spec : plan.histograms) {
      file.coordinate("/histograms/" + spec.name + "/variant", index, "1",
                      "variant index (sweep order)");
    }
  }
}

/// /parameters and /parameters/landscape: every variant's parameters.
void write_parameters(ResultsFile& out) {
  const RunPlan& plan = out.plan;
  Hdf5File& file = out.file;
  // Parameters of every variant.
  auto per_variant = [&](auto getter) {
    std::vector<double> values;
    for (std::int64_t v = 0; v < plan.variant_count(); ++v) values.push_back(getter(v));
    return values;
  };
  const auto& variant_list = plan.variants;
  auto parameter = [&](const std::string& path, const std::string& name, auto getter) {
    const auto& [units, description] = out.parameter_text.at(name);
    file.dataset(path, per_variant(getter), {"variant"}, units, description);
  };
  parameter("/parameters/learning_rate", "learning_rate",
            [&](std::int64_t v) { return variant_list[v].learning_rate; });
  parameter("/parameters/noise_strength", "noise_strength",
            [&](std::int64_t v) { return variant_list[v].noise_strength; });
  parameter("/parameters/temperature", "temperature",
            [&](std::int64_t v) { return variant_list[v].temperature(); });
  parameter("/parameters/epsilon", "epsilon",
            [&](std::int64_t v) { return variant_list[v].epsilon; });
  if (plan.noise_distribution == NoiseDistribution::alpha_stable) {
    parameter("/parameters/alpha", "alpha", [&](std::int64_t v) { return variant_list[v].alpha; });
  }
  // The coefficients the run's optimizer uses (swept or not); schedules stay in the config (a
  // swept schedule key is in /variants by its swept name).
  for (const auto& coefficient : optimizer_coefficients()) {
    if (!coefficient.read_by(plan.optimizer)) continue;
    parameter(std::string("/parameters/") + coefficient.key, coefficient.key,
              [&](std::int64_t v) { return variant_list[v].*coefficient.value; });
  }
  for (const auto& info : landscape_parameters(plan.landscape, plan.dim)) {
    out.parameter_text[info.name] = {"1", info.description};
    parameter("/parameters/landscape/" + info.name, info.name,
              [&](std::int64_t v) { return variant_list[v].landscape.at(info.name); });
  }
  out.finish_variant_group("/parameters", true, "");
  if (file.exists("/parameters/landscape"))
    out.finish_variant_group("/parameters/landscape", true, "");
  std::string swept_names;
  for (const auto& name : out.swept) swept_names += (swept_names.empty() ? "" : ",") + name;
  file.attribute("/parameters", "swept", swept_names);
}

/// /variants: the per-variant results.
void write_variant_results(ResultsFile& out) {
  const RunPlan& plan = out.plan;
  const RunOutcome& outcome = out.outcome;
  Hdf5File& file = out.file;
  // Per-variant scalars.
  {
    std::vector<std::int32_t> complete;
    for (std::int64_t v = 0; v < plan.variant_count(); ++v) {
      complete.push_back(v < outcome.progress.variants_done ? 1 : 0);
    }
    file.dataset("/variants/complete", complete, {"variant"}, "1",
                 "1 if every walker of the variant reached the last step (0 only in partial runs: "
                 "the variant's results are then empty)");
  }
  file.dataset("/variants/walkers",
               out.summary_counts([](const VariantSummary& s) { return std::int64_t{s.walkers}; }),
               {"variant"}, "walkers", "walkers in the variant");
  file.dataset(
      "/variants/nonfinite_walkers",
      out.summary_counts([](const VariantSummary& s) { return std::int64_t{s.nonfinite_walkers}; }),
      {"variant"}, "walkers", "walkers whose state became non-finite (excluded from averages)");
  file.dataset("/variants/first_nonfinite_step",
               out.summary_counts([](const VariantSummary& s) { return s.first_nonfinite_step; }),
               {"variant"}, "steps",
               "the first step whose update made a walker of the variant non-finite (-1: none)");
  file.dataset("/variants/p_flat",
               out.summary_values([](const VariantSummary& s) { return s.p_flat; }), {"variant"},
               "1", "fraction of finite walkers in the flat basin at the end");
  file.dataset(
      "/variants/p_flat_stderr",
      out.summary_values([](const VariantSummary& s) { return s.p_flat_stderr; }), {"variant"}, "1",
      "binomial standard error of p_flat, sqrt(p (1 - p) / finite walkers): 0 when p_flat is "
      "0 or 1, where an exact (Clopper-Pearson) interval says more");
  file.dataset("/variants/mean_freezing_time",
               out.summary_values([](const VariantSummary& s) { return s.freezing_time.mean; }),
               {"variant"}, "steps", "mean freezing time <t_f>");
  file.dataset(
      "/variants/mean_freezing_time_stderr",
      out.summary_values([](const VariantSummary& s) { return s.freezing_time.standard_error; }),
      {"variant"}, "steps", "standard error of <t_f>");
  file.dataset("/variants/mean_y_freeze",
               out.summary_values([](const VariantSummary& s) { return s.y_freeze.mean; }),
               {"variant"}, "1", "mean progress coordinate y at the freezing step");
  file.dataset("/variants/mean_y_freeze_stderr", out.summary_values([](const VariantSummary& s) {
    return s.y_freeze.standard_error;
  }),
               {"variant"}, "1", "standard error of <y_freeze>");
  file.dataset("/variants/mean_crossings",
               out.summary_values([](const VariantSummary& s) { return s.crossings.mean; }),
               {"variant"}, "crossings", "mean number of basin changes per walker");
  out.finish_variant_group("/variants", false, "");
}

/// /first_passage, when the config asks for it.
void write_first_passage(ResultsFile& out) {
  const RunPlan& plan = out.plan;
  Hdf5File& file = out.file;
  if (plan.passage.kind != PassageKind::none) {
    file.attribute("/variants", "first_passage_target", plan.passage.description);
    const std::vector<std::pair<std::string, std::function<std::int64_t(const VariantSummary&)>>>
        counts = {
            {"arrived", [](const VariantSummary& s) { return std::int64_t{s.passage.arrived}; }},
            {"censored", [](const VariantSummary& s) { return std::int64_t{s.passage.censored}; }},
            {"started_in_target",
             [](const VariantSummary& s) { return std::int64_t{s.passage.started_in_target}; }},
        };
    for (const auto& [name, getter] : counts) {
      file.dataset("/first_passage/" + name, out.summary_counts(getter), {"variant"}, "walkers",
                   "first passage: " + name);
    }
    const std::vector<std::pair<std::string, std::function<double(const VariantSummary&)>>> fields =
        {
            {"mean_steps", [](const VariantSummary& s) { return s.passage.steps.mean; }},
            {"mean_steps_stderr",
             [](const VariantSummary& s) { return s.passage.steps.standard_error; }},
            {"rate", [](const VariantSummary& s) { return s.passage.rate; }},
            {"rate_ci_low", [](const VariantSummary& s) { return s.passage.rate_low; }},
            {"rate_ci_high", [](const VariantSummary& s) { return s.passage.rate_high; }},
        };
    for (const auto& [name, getter] : fields) {
      const bool is_rate = name.rfind("rate", 0) == 0;
      file.dataset(
          "/first_passage/" + name, out.summary_values(getter), {"variant"},
          is_rate ? "1/time" : (name.find("steps") != std::string::npos ? "steps" : "walkers"),
          name == "rate"           ? "escape rate per unit time (arrivals / exposure)"
          : name == "rate_ci_low"  ? "lower end of the escape rate's 95% exact Poisson interval"
          : name == "rate_ci_high" ? "upper end of the escape rate's 95% exact Poisson interval"
                                   : "first passage: " + name);
    }
    out.finish_variant_group("/first_passage", false, "");
  }
}

/// /samples: the time series at the sample steps.
void write_samples(ResultsFile& out) {
  const RunPlan& plan = out.plan;
  const auto& summaries = out.outcome.summaries;
  Hdf5File& file = out.file;
  // Time series at the sample steps.
  const auto samples = static_cast<std::uint64_t>(plan.sample_count());
  if (samples > 0) {
    std::vector<std::int64_t> steps(plan.sample_steps.begin(), plan.sample_steps.end());
    file.coordinate("/samples/step", steps, "steps", "sample steps");
    std::vector<double> time, elapsed_time, p_flat, p_flat_stderr, progress_mean, progress_std,
        loss_mean, loss_std;
    std::vector<double> progress_quantiles, loss_quantiles;
    std::vector<std::uint64_t> finite;
    for (std::size_t v = 0; v < summaries.size(); ++v) {
      for (const auto& sample : summaries[v].samples) {
        const Variant& variant = plan.variants[v];
        time.push_back(variant.learning_rate * static_cast<double>(sample.step));
        elapsed_time.push_back(variant.learning_rate *
                               variant.learning_rate_schedule.sum_of_factors(sample.step));
        p_flat.push_back(sample.p_flat);
        p_flat_stderr.push_back(sample.p_flat_stderr);
        progress_mean.push_back(sample.progress_mean);
        progress_std.push_back(sample.progress_std);
        loss_mean.push_back(sample.loss_mean);
        loss_std.push_back(sample.loss_std);
        finite.push_back(sample.finite);
        progress_quantiles.insert(progress_quantiles.end(), sample.progress_quantiles.begin(),
                                  sample.progress_quantiles.end());
        loss_quantiles.insert(loss_quantiles.end(), sample.loss_quantiles.begin(),
                              sample.loss_quantiles.end());
      }
    }
    const std::vector<std::string> shape = {"variant", "step"};
    // The levels twice: `quantile` is the coordinate of the dimension, `quantile_levels` the
    // dataset of the earlier layout (kept for its readers).
    file.coordinate("/samples/quantile", plan.quantiles, "1", "quantile level");
    file.dataset("/samples/time", time, shape, "time", "learning_rate x step");
    file.dataset("/samples/elapsed_time", elapsed_time, shape, "time",
                 "sum of the learning rates of the updates so far, learning_rate x sum of the "
                 "schedule's factors f(0) ... f(step - 1) (closed form, relative error ~1e-15; a "
                 "growing schedule's up to ~1e-13): "
                 "equals time without a learning-rate schedule");
    file.dataset("/samples/finite_walkers", finite, shape, "walkers",
                 "finite walkers at the sample");
    file.dataset("/samples/p_flat", p_flat, shape, "1",
                 "fraction of finite walkers in the flat basin");
    file.dataset(
        "/samples/p_flat_stderr", p_flat_stderr, shape, "1",
        "binomial standard error, sqrt(p (1 - p) / finite walkers): 0 when p_flat is 0 or 1");
    // The sample values are float32 in both precisions (run_data.hpp): the descriptions say so.
    file.dataset("/samples/y_mean", progress_mean, shape, "1",
                 "ensemble mean of the progress coordinate y (of its float values)");
    file.dataset("/samples/y_std", progress_std, shape, "1",
                 "ensemble standard deviation of y (of its float values)");
    file.dataset("/samples/loss_mean", loss_mean, shape, "loss",
                 "ensemble mean of the loss (of its float values)");
    file.dataset("/samples/loss_std", loss_std, shape, "loss",
                 "ensemble standard deviation of the loss (of its float values)");
    static_assert(kSketchMantissaBits == 11, "the quantile descriptions state 2^-12");
    file.dataset("/samples/quantile_levels", plan.quantiles, {"quantile"}, "1", "quantile levels");
    file.dataset("/samples/y_quantiles", progress_quantiles, {"variant", "step", "quantile"}, "1",
                 "quantiles of y (float values; linear interpolation between order statistics, "
                 "each within 2^-12 x max(|x|, 2^-125) of the exact one: mergeable sketch)");
    file.dataset("/samples/loss_quantiles", loss_quantiles, {"variant", "step", "quantile"}, "loss",
                 "quantiles of the loss (same method and accuracy as y_quantiles)");
    out.finish_variant_group("/samples", false, "time elapsed_time");
  }
}

/// /histograms/NAME: each histogram of the config.
void write_histograms(ResultsFile& out) {
  const RunPlan& plan = out.plan;
  const auto& summaries = out.outcome.summaries;
  Hdf5File& file = out.file;
  // Histograms.
  for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
    const HistogramSpec& spec = plan.histograms[h];
    const std::string group = "/histograms/" + spec.name;
    // Bins: the dimension x (y) with the bin centres as coordinate, the edges on their own
    // dimension x_edges (y_edges).
    auto bin_axis = [&](const std::string& axis, double lo, double hi, int bins,
                        const std::string& along) {
      std::vector<double> edges, centres;
      for (int i = 0; i <= bins; ++i) edges.push_back(lo + (hi - lo) * i / bins);
      for (int i = 0; i < bins; ++i) centres.push_back(0.5 * (edges[i] + edges[i + 1]));
      file.coordinate(group + "/" + axis + "_edges", edges, "1", "bin edges along " + along);
      file.coordinate(group + "/" + axis, centres, "1",
                      "bin centres along " + along + " (edges in " + axis + "_edges)");
    };
    bin_axis("x", spec.x_lo, spec.x_hi, spec.x_bins,
             "coordinate " + std::to_string(spec.x_coordinate));
    std::vector<std::string> shape = {"variant"};
    if (spec.kind == HistogramKind::xy) {
      bin_axis("y", spec.y_lo, spec.y_hi, spec.y_bins, "the progress coordinate y");
      shape.push_back("y");
    }
    shape.push_back("x");
    std::vector<std::uint64_t> counts, outside, deposits;
    std::vector<double> density, potential, temperature;
    for (const auto& s : summaries) {
      const auto& hs = s.histograms[h];
      counts.insert(counts.end(), hs.counts.begin(), hs.counts.end());
      density.insert(density.end(), hs.density.begin(), hs.density.end());
      potential.insert(potential.end(), hs.effective_potential.begin(),
                       hs.effective_potential.end());
      outside.push_back(hs.outside);
      deposits.push_back(hs.deposits);
      temperature.push_back(hs.temperature);
    }
    file.dataset(group + "/counts", counts, shape, "deposits",
                 "walker deposits per bin (x fastest)");
    file.dataset(group + "/outside", outside, {"variant"}, "deposits",
                 "eligible deposits outside the range");
    file.dataset(group + "/deposits", deposits, {"variant"}, "deposits", "all eligible deposits");
    file.dataset(group + "/density", density, shape, "1/bin area",
                 "counts / (deposits x bin area): probability density");
    file.dataset(group + "/effective_potential", potential, shape, "loss",
                 "-T ln(density), NaN for empty bins (defined up to an additive constant)");
    file.dataset(group + "/temperature", temperature, {"variant"}, "loss",
                 "T used for the effective potential");
    out.finish_variant_group(group, false, "");
    file.attribute(
        group, "window",
        fmt::format("[{}, {}] every {} steps", spec.window_begin, spec.window_end, spec.every));
    if (spec.kind == HistogramKind::x_in_band) {
      file.attribute(group, "y_band", fmt::format("[{}, {}]", spec.band_lo, spec.band_hi));
    }
  }
}

/// /trackers: histograms of the per-walker trackers.
void write_trackers(ResultsFile& out) {
  const RunOutcome& outcome = out.outcome;
  const auto variants = static_cast<std::uint64_t>(out.plan.variant_count());
  Hdf5File& file = out.file;
  // Histograms of the per-walker trackers (reduced batch by batch; empty for unfinished variants).
  {
    const auto& tallies = outcome.data.tallies.variants;
    const auto finished = [&](std::size_t v) {
      return static_cast<std::int64_t>(v) < outcome.progress.variants_done;
    };
    std::vector<double> edges = {0.0};
    for (int b = 1; b <= kLog2Bins; ++b) edges.push_back(std::ldexp(1.0, b - 1));
    file.coordinate("/trackers/log2_edges", edges, "1",
                    "bin edges of the tracker histograms: bin 0 holds 0, bin b >= 1 holds "
                    "[2^(b-1), 2^b)");
    file.coordinate("/trackers/log2_bin", std::vector<double>(edges.begin(), edges.end() - 1), "1",
                    "lower edge of the log2 bin (edges in log2_edges)");
    auto log2_counts = [&](auto member) {
      std::vector<std::int64_t> counts;
      for (std::size_t v = 0; v < tallies.size(); ++v) {
        for (const auto c : tallies[v].*member) counts.push_back(finished(v) ? c : 0);
      }
      return counts;
    };
    const std::vector<std::string> shape = {"variant", "log2_bin"};
    file.dataset("/trackers/freezing_time_counts",
                 log2_counts(&VariantTally::freezing_time_histogram), shape, "walkers",
                 "finite walkers per log2 bin of the freezing time t_f (steps)");
    file.dataset("/trackers/crossings_counts", log2_counts(&VariantTally::crossings_histogram),
                 shape, "walkers", "finite walkers per log2 bin of their basin crossings");
    // Without a passage target these would be zeros that read as "nobody arrived, nobody censored".
    if (out.plan.passage.kind != PassageKind::none) {
      file.dataset("/trackers/first_passage_counts", log2_counts(&VariantTally::passage_histogram),
                   shape, "walkers",
                   "walkers per log2 bin of their first-passage step (arrivals at steps >= 1; "
                   "censored and started_in_target apart)");
      std::vector<std::int64_t> censored, started;
      for (std::size_t v = 0; v < tallies.size(); ++v) {
        censored.push_back(finished(v) ? tallies[v].censored : 0);
        started.push_back(finished(v) ? tallies[v].started_in_target : 0);
      }
      file.dataset("/trackers/first_passage_censored", censored, {"variant"}, "walkers",
                   "walkers that had not reached the passage target by the end (or went "
                   "non-finite)");
      file.dataset("/trackers/first_passage_started_in_target", started, {"variant"}, "walkers",
                   "walkers at the passage target at step 0");
    }
    // y_freeze: the non-empty float buckets (11 mantissa bits) of each variant, concatenated.
    std::vector<std::int64_t> offsets = {0}, counts;
    std::vector<double> low, high;
    for (std::size_t v = 0; v < tallies.size(); ++v) {
      if (finished(v)) {
        for (const auto& e : tallies[v].y_freeze_sketch.entries()) {
          double lo = 0, hi = 0;
          QuantileSketch::bucket_range(e.bucket, lo, hi);
          low.push_back(lo);
          high.push_back(hi);
          counts.push_back(static_cast<std::int64_t>(e.count));
        }
      }
      offsets.push_back(static_cast<std::int64_t>(counts.size()));
    }
    file.dimension("/trackers", "variant_boundary", variants + 1);
    file.dimension("/trackers", "y_freeze_bin", counts.size());
    file.dataset("/trackers/y_freeze_offsets", offsets, {"variant_boundary"}, "1",
                 "variant v's y_freeze bins are entries [offsets[v], offsets[v+1])");
    file.dataset("/trackers/y_freeze_counts", counts, {"y_freeze_bin"}, "walkers",
                 "finite walkers per y_freeze bin (float value of y_freeze)");
    file.dataset("/trackers/y_freeze_low", low, {"y_freeze_bin"}, "1",
                 "smallest float of the bin (bins: sign, exponent and 11 mantissa bits)");
    file.dataset("/trackers/y_freeze_high", high, {"y_freeze_bin"}, "1",
                 "largest float of the bin");
    out.finish_variant_group("/trackers", false, "");
  }
}

/// /walkers: per-walker data, when the config asks for it.
void write_walkers(ResultsFile& out) {
  const RunPlan& plan = out.plan;
  const RunOutcome& outcome = out.outcome;
  Hdf5File& file = out.file;
  // Per-walker data (optional), from the walker store in slabs aligned to the storage chunks.
  if (plan.per_walker_output) {
    if (!outcome.walkers) {
      throw std::logic_error("per-walker output needs the run's walker store (ExecuteOptions)");
    }
    const WalkerStore& store = *outcome.walkers;
    const auto n = static_cast<std::uint64_t>(plan.total_walkers());
    const auto dim = static_cast<std::uint64_t>(plan.dim);
    const std::int64_t W = plan.walkers_per_variant;
    const auto state_width = static_cast<std::uint64_t>(plan.optimizer_state_width());
    WalkerArrays slab;
    // Dimensions: walker (its coordinate: the index within the variant; the variant of each
    // walker is a coordinate too) and coordinate (the axes of the position, no values).
    auto per_walker = [&]<class T>(
                          const std::string& path, const std::vector<std::string>& dimensions,
                          const std::string& units, const std::string& description, auto value) {
      const std::vector<std::uint64_t> dims =
          dimensions.size() == 2
              ? std::vector<std::uint64_t>{n, dimensions[1] == "coordinate" ? dim : state_width}
              : std::vector{n};
      if (dimensions.empty()) {
        file.create_coordinate<T>(path, n, units, description);
      } else {
        file.create_dataset<T>(path, dimensions, units, description);
      }
      const std::uint64_t rows = Hdf5File::rows_per_slab(dims);
      std::vector<T> buffer;
      for (std::uint64_t lo = 0; lo < n; lo += rows) {
        const std::uint64_t count = std::min(rows, n - lo);
        store.read(static_cast<std::int64_t>(lo), static_cast<std::int64_t>(count), slab);
        buffer.clear();
        for (std::uint64_t g = lo; g < lo + count; ++g) {
          value(buffer, slab.at(static_cast<std::int64_t>(g)), static_cast<std::int64_t>(g));
        }
        file.write_rows(path, lo, buffer);
      }
    };
    using I64 = std::int64_t;
    per_walker.operator()<I64>("/walkers/walker", {}, "1",
                               "walker index within its variant (replay id)",
                               [&](auto& b, std::size_t, I64 g) { b.push_back(g % W); });
    file.dimension("/walkers", "coordinate", dim);
    per_walker.operator()<I64>("/walkers/variant", {"walker"}, "1", "variant index",
                               [&](auto& b, std::size_t, I64 g) { b.push_back(g / W); });
    per_walker.operator()<double>("/walkers/position", {"walker", "coordinate"}, "1",
                                  "final position (exact value of the walker's precision)",
                                  [&](auto& b, std::size_t k, I64) {
                                    for (std::uint64_t i = 0; i < dim; ++i)
                                      b.push_back(slab.position[k * dim + i]);
                                  });
    per_walker.operator()<std::int32_t>(
        "/walkers/basin", {"walker"}, "1",
        "final basin: 1 flat, 0 sharp (-1: not finished, in a partial run)",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.basin[k]); });
    per_walker.operator()<std::uint32_t>(
        "/walkers/crossings", {"walker"}, "crossings", "basin changes",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.crossings[k]); });
    per_walker.operator()<I64>(
        "/walkers/freeze_step", {"walker"}, "steps",
        "s: first step in the final basin after the last change",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.freeze_step[k]); });
    per_walker.operator()<I64>(
        "/walkers/freezing_time", {"walker"}, "steps", "t_f = s + 1",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.freeze_step[k] + 1); });
    per_walker.operator()<double>(
        "/walkers/y_freeze", {"walker"}, "1", "y at step s",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.y_freeze[k]); });
    per_walker.operator()<I64>(
        "/walkers/first_passage_step", {"walker"}, "steps",
        "first step at the passage target; -1 = never (censored)",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.first_passage_step[k]); });
    per_walker.operator()<I64>(
        "/walkers/nonfinite_step", {"walker"}, "steps",
        "step whose update became non-finite; -1 = always finite",
        [&](auto& b, std::size_t k, I64) { b.push_back(slab.nonfinite_step[k]); });
    file.attribute("/walkers", "coordinates", "variant");
    if (plan.optimizer_state_width() > 0) {
      // The dimension's name differs from the dataset's: a netCDF dimension without values is a
      // dataset of its own name in the group.
      file.dimension("/walkers", "optimizer_component", state_width);
      per_walker.operator()<double>(
          "/walkers/optimizer_state", {"walker", "optimizer_component"}, "1",
          plan.optimizer == OptimizerKind::momentum || plan.optimizer == OptimizerKind::nesterov
              ? "final velocity v (momentum, nesterov), one column per coordinate"
              : "final first moments m, then second moments s (adam; rmsprop: m is the last "
                "gradient), one column per coordinate each",
          [&](auto& b, std::size_t k, I64) {
            for (std::uint64_t j = 0; j < state_width; ++j)
              b.push_back(slab.optimizer_state[k * state_width + j]);
          });
    }
    file.attribute("/walkers", "unfinished",
                   "in a partial run, walkers that had not reached the last step hold "
                   "placeholders: basin -1 (finished walkers: basin >= 0), NaN position, y_freeze "
                   "and optimizer_state; their other fields mean nothing");
  }
}

void write_hdf5(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                const std::filesystem::path& path) {
  ResultsFile out(plan, outcome, path);
  write_file_attributes(out, record);
  write_parameters(out);
  write_variant_results(out);
  write_first_passage(out);
  write_samples(out);
  write_histograms(out);
  write_trackers(out);
  write_walkers(out);
  out.file.close();
}

}  // namespace

void blank_summary(VariantSummary& s) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  VariantSummary blank;
  blank.walkers = s.walkers;
  for (const auto& sample : s.samples) {
    SampleSummary empty;
    empty.step = sample.step;
    empty.progress_quantiles.assign(sample.progress_quantiles.size(), nan);
    empty.loss_quantiles.assign(sample.loss_quantiles.size(), nan);
    blank.samples.push_back(empty);
  }
  for (const auto& histogram : s.histograms) {
    HistogramSummary empty;
    empty.counts.assign(histogram.counts.size(), 0);
    empty.density.assign(histogram.density.size(), nan);
    empty.effective_potential.assign(histogram.effective_potential.size(), nan);
    empty.temperature = histogram.temperature;
    blank.histograms.push_back(empty);
  }
  s = std::move(blank);
}

void RunProgress::update_counters(const RunPlan& plan) {
  walkers_total = plan.total_walkers();
  const std::int64_t end = end_of_part();
  const std::int64_t W = plan.walkers_per_variant;
  walker_steps_total = (end - part_begin) * plan.steps;
  walker_steps_done = (walker_begin - part_begin) * plan.steps + (walker_end - walker_begin) * step;
  // The variants the part holds walkers of, and those of them whose walkers (in the part) are all
  // finished; for a whole run, [0, variants_done) of all variants.
  const std::int64_t first_variant = part_begin / W;
  variants_total = end > part_begin ? (end - 1) / W + 1 - first_variant : 0;
  variants_done = walker_begin == end ? variants_total
                                      : std::max<std::int64_t>(0, walker_begin / W - first_variant);
}

RunOutcome execute(const RunPlan& plan, Backend& backend, const ExecuteOptions& options) {
  RunData data;
  data.resize(plan, 0);  // execute_from sizes the batch arrays
  return execute_from(plan, backend, options, std::move(data), RunProgress{});
}

RunOutcome execute_from(const RunPlan& plan, Backend& backend, const ExecuteOptions& options,
                        RunData data, RunProgress progress) {
  check_state(plan, data, progress);
  RunOutcome outcome;
  outcome.backend_name = backend.name();
  outcome.backend_description = backend.description();
  progress.update_counters(plan);
  progress.part_end = progress.end_of_part();
  const std::int64_t total = progress.part_end;  // the run advances walkers up to here
  const std::int64_t batch = choose_batch(plan, backend, options.batch_walkers);
  progress.batches = (total - progress.part_begin + batch - 1) / batch;
  const std::int64_t in_flight = progress.walker_end - progress.walker_begin;
  const std::int64_t capacity = std::max(batch, in_flight);
  if (data.walkers.size() != capacity) {
    resize_batch_arrays(plan, data, capacity, progress.walker_begin, in_flight);
  }
  SegmentSizer sizer(options);
  bool stopped = false;
  while (!stopped && progress.walker_begin < total) {
    if (progress.walker_end == progress.walker_begin) {
      progress.walker_end = std::min(total, progress.walker_begin + batch);
      progress.step = 0;
      data.start_batch(progress.walker_begin);
      const auto start = Clock::now();
      backend.initialize(plan, progress.walker_begin, progress.walker_end, data);
      progress.simulate_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    }
    const std::int64_t first = progress.walker_begin;
    const std::int64_t last = progress.walker_end;
    // The backend may keep the batch's walkers (on the device) until end_batch(). Its copies in
    // and out count as simulation time.
    const auto timed = [&](auto&& call) {
      const auto start = Clock::now();
      call();
      progress.simulate_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    };
    timed([&] { backend.begin_batch(plan, first, last, progress.step, data); });
    progress.batch = std::min(progress.batches - 1, (first - progress.part_begin) / batch);
    for (;;) {
      const std::int64_t step_end =
          progress.step + sizer.next(last - first, plan.steps - progress.step);
      const auto segment_start = Clock::now();
      backend.advance(plan, first, last, progress.step, step_end, data);
      const double seconds = std::chrono::duration<double>(Clock::now() - segment_start).count();
      sizer.record(last - first, step_end - progress.step, seconds);
      progress.simulate_seconds += seconds;
      progress.step = step_end;
      const bool batch_done = step_end == plan.steps;
      if (batch_done) {
        // Without per-walker output the backend may reduce the walkers where they are.
        bool reduced = false;
        if (!options.walker_store && !options.on_batch) {
          timed([&] { reduced = backend.reduce_and_end_batch(plan, data); });
        }
        if (!reduced) {
          timed([&] { backend.end_batch(plan, data); });  // the walkers are back in data
          finish_batch(plan, options, data, first, last);
        }
        progress.walker_begin = last;
        progress.step = 0;
      }
      progress.update_counters(plan);
      if (options.on_segment && !options.on_segment(progress, SegmentData(plan, backend, data))) {
        stopped = true;
        if (!batch_done) timed([&] { backend.end_batch(plan, data); });
        break;
      }
      if (batch_done) break;
    }
  }
  outcome.complete = progress.complete();
  outcome.progress = progress;
  // A part's statistics are not the run's: they are summarised once the parts are merged.
  if (progress.whole()) outcome.summaries = summarize(plan, data);
  if (!outcome.complete && progress.whole()) {
    for (std::int64_t v = progress.variants_done; v < plan.variant_count(); ++v) {
      blank_summary(outcome.summaries[static_cast<std::size_t>(v)]);
    }
  }
  outcome.data = std::move(data);
  outcome.walkers = options.walker_store;
  return outcome;
}

namespace {

Json summary_json(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                  bool with_results) {
  Json summary;
  summary["sgdwalk"] = {{"version", sgdwalk_version()},
                        {"git_commit", sgdwalk_git_commit()},
                        {"command", record.command_line}};
  summary["backend"] = {{"name", outcome.backend_name},
                        {"description", outcome.backend_description}};
  summary["config_source"] = record.config_source;
  summary["seed_from_command_line"] = record.seed_from_command_line;
  summary["config"] = plan.resolved_config;
  summary["partial"] = !outcome.complete;
  for (const auto& [key, value] : record.provenance.items()) summary[key] = value;
  const RunProgress& progress = outcome.progress;
  summary["progress"] = {{"walker_steps_done", progress.walker_steps_done},
                         {"walker_steps_total", progress.walker_steps_total},
                         {"fraction", progress.walker_steps_total > 0
                                          ? static_cast<double>(progress.walker_steps_done) /
                                                static_cast<double>(progress.walker_steps_total)
                                          : 0.0},
                         {"variants_done", progress.variants_done},
                         {"variants_total", progress.variants_total}};
  const double walker_steps = static_cast<double>(progress.walker_steps_done);
  summary["timing"] = {
      {"wall_seconds", record.wall_seconds},
      {"simulate_seconds", progress.simulate_seconds},
      {"walker_steps", progress.walker_steps_done},
      {"walker_steps_per_second",
       progress.simulate_seconds > 0 ? walker_steps / progress.simulate_seconds : 0.0},
      {"sessions", record.sessions},
      // This session's process only (a resumed run's earlier sessions are not included).
      {"peak_host_memory_bytes",
       number(peak_host_memory().value_or(std::numeric_limits<double>::quiet_NaN()))}};
  if (!with_results) {
    summary["variants"] = Json::array();
    summary["files"] = {{"config", "config.toml"}};
    return summary;
  }
  Json variants = Json::array();
  // Which swept parameters are integers: once per run, not per variant (a sweep may have 1e6).
  std::vector<bool> integer_axis;
  if (!plan.variants.empty()) {
    for (const auto& [name, value] : plan.variants.front().swept)
      integer_axis.push_back(is_integer_sweep_parameter(name));
  }
  for (std::size_t v = 0; v < outcome.summaries.size(); ++v) {
    const VariantSummary& s = outcome.summaries[v];
    const Variant& variant = plan.variants[v];
    Json parameters = Json::object();
    for (std::size_t a = 0; a < variant.swept.size(); ++a) {
      const auto& [name, value] = variant.swept[a];
      if (integer_axis[a]) {
        parameters[name] = static_cast<std::int64_t>(value);
      } else {
        parameters[name] = value;
      }
    }
    Json entry = {
        {"index", v},
        {"swept", parameters},
        {"learning_rate", variant.learning_rate},
        {"noise_strength", variant.noise_strength},
        {"temperature", variant.temperature()},
        {"complete", static_cast<std::int64_t>(v) < outcome.progress.variants_done},
        {"walkers", s.walkers},
        {"nonfinite_walkers", s.nonfinite_walkers},
        {"first_nonfinite_step", s.first_nonfinite_step},
        {"p_flat", number(s.p_flat)},
        {"p_flat_stderr", number(s.p_flat_stderr)},
        {"mean_freezing_time", number(s.freezing_time.mean)},
        {"mean_freezing_time_stderr", number(s.freezing_time.standard_error)},
        {"mean_freezing_time_continuous", number(variant.learning_rate * s.freezing_time.mean)},
        {"mean_y_freeze", number(s.y_freeze.mean)},
        {"mean_y_freeze_stderr", number(s.y_freeze.standard_error)},
        {"mean_crossings", number(s.crossings.mean)},
    };
    if (plan.passage.kind != PassageKind::none) {
      entry["first_passage"] = {
          {"target", plan.passage.description},
          {"started_in_target", s.passage.started_in_target},
          {"arrived", s.passage.arrived},
          {"censored", s.passage.censored},
          {"mean_steps", estimate_json(s.passage.steps)},
          {"mean_time", number(variant.learning_rate * s.passage.steps.mean)},
          {"rate", number(s.passage.rate)},
          {"rate_ci95", {number(s.passage.rate_low), number(s.passage.rate_high)}}};
    }
    variants.push_back(entry);
  }
  summary["variants"] = variants;
  summary["files"] = {{"results", "results.h5"}, {"config", "config.toml"}};
  return summary;
}

}  // namespace

void write_run_outputs(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                       const std::string& directory) {
  const std::filesystem::path dir(directory);
  std::filesystem::create_directories(dir);
  write_file_atomically(dir / "config.toml", record.config_text);

  const std::filesystem::path h5 = dir / "results.h5";
  const std::filesystem::path h5_temporary = dir / "results.h5.tmp";
  try {
    write_hdf5(plan, outcome, record, h5_temporary);
  } catch (...) {
    // A half-written file (disk full) would hold the space a checkpoint of the run needs.
    std::error_code ignored;
    std::filesystem::remove(h5_temporary, ignored);
    throw;
  }
  std::filesystem::rename(h5_temporary, h5);
  sync_directory_of(h5);
  write_file_atomically(dir / "summary.json",
                        summary_json(plan, outcome, record, true).dump(2) + "\n");
}

void write_config_and_summary(const std::filesystem::path& dir, const std::string& config_text,
                              const std::string& summary_text) {
  std::filesystem::create_directories(dir);
  const bool had_config = std::filesystem::exists(dir / "config.toml");
  try {
    write_file_atomically(dir / "config.toml", config_text);
    write_file_atomically(dir / "summary.json", summary_text);
  } catch (...) {
    // A config.toml this call wrote, without summary.json, would make the next run need --force
    // and resume call the directory damaged. One that was there (the user's config, an earlier
    // run's) stays.
    std::error_code ignored;
    if (!had_config) std::filesystem::remove(dir / "config.toml", ignored);
    throw;
  }
}

void write_run_start(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                     const std::string& directory) {
  write_config_and_summary(directory, record.config_text,
                           summary_json(plan, outcome, record, false).dump(2) + "\n");
}

std::string replay_coordinate_name(int i, int dim) {
  static const char* const xyz[] = {"x", "y", "z"};
  return dim <= 3 ? std::string(xyz[i]) : fmt::format("q{}", i);
}

void replay_walker(const RunPlan& plan, std::int64_t variant, std::int64_t walker,
                   std::int64_t every, std::ostream& out, std::int64_t until, bool normals_columns,
                   const std::function<bool()>& keep_going) {
  const std::int64_t last = until < 0 ? plan.steps : std::min(until, plan.steps);
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    dispatch_update_rule(plan, [&]<UpdateRule R>() {
      constexpr int D = Landscape::dim;
      constexpr int W = OptimizerState<T, D, R>::width;
      const Variant& v = plan.variants[static_cast<std::size_t>(variant)];
      const Landscape landscape = make_landscape<Landscape>(v);
      const StepSchedule schedule = make_step_schedule(plan, v);
      const StepParams<T> params = step_params_at<T>(schedule, 1);
      const PassageTarget<T> target = make_passage_target<T>(plan.passage);
      const auto& start =
          plan.initial_positions[static_cast<std::size_t>(walker) % plan.initial_positions.size()];
      Vec<T, D> position;
      for (int i = 0; i < D; ++i) position[i] = static_cast<T>(start[static_cast<std::size_t>(i)]);
      WalkerState<T, D, R> state = initial_walker<R>(landscape, target, position);
      const std::uint64_t subsequence = RunPlan::subsequence(variant, walker);
      auto normals = host_normals<T>(plan.seed, subsequence, 0);
      const StableParams<T> stable = make_stable_params<T>(v.alpha);

      out << "step";
      std::vector<std::string> names;
      for (int i = 0; i < D; ++i) names.push_back(replay_coordinate_name(i, D));
      for (int i = 0; i < D; ++i) out << ',' << names[static_cast<std::size_t>(i)];
      out << ",loss,basin,crossings,freeze_step,first_passage_step,nonfinite_step";
      // The optimizer state in OptimizerState's flat layout, named by what it is.
      for (int j = 0; j < W; ++j) {
        const char* kind = R == UpdateRule::momentum ? "v" : j < D ? "m" : "s";
        out << ',' << kind << '_' << names[static_cast<std::size_t>(j % D)];
      }
      // The noise inputs update `step` consumed, for independent checks: the normals (normal.hpp
      // contract), or with α-stable noise the draws scaled by the step's c_k (stable.hpp).
      if (normals_columns) {
        const char* input = plan.noise_distribution == NoiseDistribution::alpha_stable
                                ? ",stable_input_"
                                : ",normal_";
        for (int i = 0; i < D; ++i) out << input << names[static_cast<std::size_t>(i)];
      }
      out << '\n';
      out << std::setprecision(std::numeric_limits<T>::max_digits10);
      Vec<T, D> z{};
      auto row = [&](std::int64_t step) {
        out << step;
        for (int i = 0; i < D; ++i) out << ',' << state.position[i];
        out << ',' << landscape.value(state.position) << ',' << state.basin << ','
            << state.crossings << ',' << state.freeze_step << ',' << state.first_passage_step << ','
            << state.nonfinite_step;
        for (int j = 0; j < W; ++j) out << ',' << state.optimizer.get(j);
        if (normals_columns) {
          for (int i = 0; i < D; ++i) out << ',' << (step == 0 ? T(0) : z[i]);
        }
        out << '\n';
      };
      row(0);
      for (std::int64_t step = 1; step <= last; ++step) {
        const StepParams<T> p = schedule.per_step ? step_params_at<T>(schedule, step) : params;
        if (plan.noise_distribution == NoiseDistribution::alpha_stable) {
          // Update `step` uses stable draws [(step − 1)·D, step·D) (sgdwalk/stable.hpp), scaled
          // by the step's c_k.
          Vec<T, D> draws;
          for (int i = 0; i < D; ++i) {
            const std::int64_t draw = (step - 1) * D + i;
            const U32x4 block = philox_block(plan.seed, subsequence, draw / 2);
            draws[i] = draw % 2 == 0 ? stable_from_words<T>(block.x, block.y, stable)
                                     : stable_from_words<T>(block.z, block.w, stable);
          }
          z = noise_inputs<NoiseDistribution::alpha_stable>(p, draws);
        } else {
          for (int i = 0; i < D; ++i) z[i] = normals.next();
        }
        advance_walker<Noise, R>(landscape, p, target, z, step, state);
        if (step % every == 0 || step == last) row(step);
        if (keep_going && step % kReplayCheckSteps == 0 && !keep_going()) return;
      }
    });
  });
}

}  // namespace sgdwalk
