// Forward flux sampling in a run directory: config.toml, a checkpoint between stages
// (RUN/ffs_checkpoint.json), stop on a signal at the next stage boundary, resume, and the outputs
// summary.json ("rare_events") and results.h5 (/rare_events).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "backend/backend.hpp"
#include "backend/plan.hpp"
#include "run/driver.hpp"

namespace sgdwalk {

struct FfsSessionOptions {
  const std::atomic<int>* stop = nullptr;            ///< nonzero: stop at the next stage
  std::function<void(const std::string&)> on_stage;  ///< one line per finished stage
};

struct FfsSessionResult {
  bool complete = false;
  int stop_signal = 0;
};

/// `sgdwalk run` of a plan with [rare_event] method = "ffs".
FfsSessionResult run_ffs_in_directory(const RunPlan& plan, Backend& backend,
                                      const RunRecord& record, const std::string& directory,
                                      const FfsSessionOptions& options = {});

/// Whether `directory` holds an unfinished FFS run.
bool has_ffs_checkpoint(const std::string& directory);

/// Whether `directory` holds a finished FFS run (summary.json with "rare_events", not partial).
bool is_finished_ffs_run(const std::string& directory);

/// Whether `directory` holds an FFS run, finished or not, with or without a checkpoint (its
/// summary.json records [rare_event] method = "ffs"): a run killed before its first checkpoint is
/// one, and `resume` starts it again as FFS.
bool is_ffs_run_directory(const std::string& directory);

/// `sgdwalk resume` of such a run: the plan from its config.toml (with the recorded seed).
FfsSessionResult resume_ffs_in_directory(const std::string& directory, Backend& backend,
                                         const FfsSessionOptions& options = {});

}  // namespace sgdwalk
