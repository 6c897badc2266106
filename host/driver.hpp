// Running a plan on a backend (batches of walkers, segments of steps) and writing run directories.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.hpp"
#include "plan.hpp"
#include "run_data.hpp"
#include "statistics.hpp"

namespace sgdwalk {

/// Where a run stands: batches [0, batch) are complete; batch `batch` has reached `step`.
struct RunProgress {
  std::int64_t batch = 0;
  std::int64_t step = 0;
  std::int64_t batches = 0;
  std::int64_t walker_steps_done = 0;
  std::int64_t walker_steps_total = 0;
  double simulate_seconds = 0;
};

struct ExecuteOptions {
  /// Walkers per backend call; 0 = all (or the backend's memory limit). Never changes results.
  std::int64_t batch_walkers = 0;
  /// Steps per backend call; 0 = automatic. Never changes results.
  std::int64_t segment_steps = 0;
  /// Called after every backend call; return false to stop early (the run is then partial).
  std::function<bool(const RunProgress&, const RunData&)> on_segment;
};

struct RunOutcome {
  RunData data;
  RunProgress progress;
  bool complete = false;
  std::vector<VariantSummary> summaries;
  std::string backend_name, backend_description;
};

/// Advances the whole plan (or continues `start` from `resume_from`) on `backend`.
RunOutcome execute(const RunPlan& plan, Backend& backend, const ExecuteOptions& options);
RunOutcome execute_from(const RunPlan& plan, Backend& backend, const ExecuteOptions& options,
                        RunData data, RunProgress resume_from);

/// How the user asked for the run, recorded in summary.json.
struct RunRecord {
  std::string config_text;    ///< copied to RUN/config.toml (replay reads it back)
  std::string config_source;  ///< path, or "<embedded>"
  std::string command_line;
  double wall_seconds = 0;
};

/// Writes summary.json and results.h5 into `directory` (each written to a temporary name, then
/// renamed, so a reader never sees half a file).
void write_run_outputs(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                       const std::string& directory);

/// One walker's trajectory recomputed from the seed on the host with the shared update (not the
/// backend's batched path), as CSV: step, coordinates, loss, basin, crossings, freeze step.
/// Rows every `every` steps (and the last step).
void replay_walker(const RunPlan& plan, std::int64_t variant, std::int64_t walker,
                   std::int64_t every, std::ostream& out);

/// The sgdwalk version string and the git commit it was built from.
std::string sgdwalk_version();
std::string sgdwalk_git_commit();

}  // namespace sgdwalk
