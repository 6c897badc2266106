// Long runs in a run directory: start (config.toml and a partial summary.json before the first
// step), periodic checkpoints, stopping on request (signals) with a checkpoint and partial results,
// and resuming from RUN/checkpoint.bin to the same final bytes as an uninterrupted run.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

#include "backend/backend.hpp"
#include "backend/plan.hpp"
#include "run/checkpoint.hpp"
#include "run/driver.hpp"

namespace sgdwalk {

inline constexpr const char* kCheckpointFileName = "checkpoint.bin";
/// Forward flux sampling's checkpoint between stages (rare_events/ffs_session.hpp); its kept
/// states go beside it in ffs_checkpoint.states.bin (KeptStatesWriter::path_for).
inline constexpr const char* kFfsCheckpointFileName = "ffs_checkpoint.json";
/// Finished walkers of a per-walker run (walker_store.hpp), until results.h5 holds them.
inline constexpr const char* kWalkerFileName = "walkers.bin";
/// What a format-1 walkers.bin is converted into before it replaces it (io/walker_store.hpp).
inline constexpr const char* kWalkerConversionFileName = "walkers.bin.format2.tmp";

/// A run directory that cannot be used (missing, damaged). usage(): the user named something that
/// is not a run directory (exit code 2) rather than a damaged one (exit code 1).
class RunDirectoryError : public std::runtime_error {
 public:
  RunDirectoryError(const std::string& message, bool usage)
      : std::runtime_error(message), usage_(usage) {}
  bool usage() const { return usage_; }

 private:
  bool usage_;
};

/// Removes what an earlier run of either kind (brute force or forward flux sampling) left in
/// `directory`: checkpoints, walker and tally files, results.h5, the FFS checkpoint and its kept
/// states. A new run (`run --force`) starts with it, so that nothing stale is resumed or merged.
void remove_earlier_run_files(const std::string& directory);

/// An exclusive advisory lock (flock) on a run directory for as long as a session writes into it:
/// a second process running or resuming into the same directory is refused (RunDirectoryError,
/// usage) instead of writing the same files at the same time. Where the file system cannot lock
/// (some network file systems), the session goes on unlocked.
class RunDirectoryLock {
 public:
  explicit RunDirectoryLock(const std::string& directory);
  ~RunDirectoryLock();
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

struct SessionOptions {
  /// Batching and segmentation; its on_segment (if any) is called first and may stop the run.
  ExecuteOptions execute;
  /// Seconds between checkpoints; 0 = only when the run is stopped.
  double checkpoint_every = 60;
  /// When it becomes nonzero (a signal number), the run stops at the next segment boundary.
  const std::atomic<int>* stop = nullptr;
  /// After every segment (progress display).
  std::function<void(const RunProgress&)> on_progress;
  /// Problems that do not stop the run (a periodic checkpoint that could not be written).
  std::function<void(const std::string&)> on_warning;
  /// Host threads that count observables (for the memory estimate); 0 = OpenMP's maximum.
  int threads = 0;
  /// The command that resumes this run, for messages; empty: `sgdwalk resume DIRECTORY` (an MPI
  /// job's part gives the job's mpirun command).
  std::string resume_command;
};

struct SessionResult {
  RunOutcome outcome;
  int stop_signal = 0;           ///< the value of *stop that stopped the run; 0 otherwise
  std::int64_t checkpoints = 0;  ///< checkpoints written in this session
};

/// `sgdwalk run`: refuses a run that does not fit in memory (ResourceError, nothing written), then
/// writes config.toml and a partial summary.json into `directory` (removing a stale checkpoint and
/// results), runs with periodic checkpoints and writes the outputs: final ones (and the checkpoint
/// removed) when the run completes, partial ones plus a checkpoint when it was stopped.
SessionResult run_in_directory(const RunPlan& plan, Backend& backend, RunRecord record,
                               const std::string& directory, const SessionOptions& options);

/// What a run directory says about an unfinished run.
struct ResumePoint {
  RunPlan plan;      ///< from RUN/config.toml and the recorded seed
  RunRecord record;  ///< as the run started (record.shard for a shard); wall time and sessions
  bool complete = false;
  /// RUN/checkpoint.bin was read (unfinished run), or RUN/tallies.bin (finished shard).
  bool has_checkpoint = false;
  Checkpoint checkpoint;
};

/// Reads RUN/config.toml, RUN/summary.json and RUN/checkpoint.bin for `sgdwalk resume` (and, of a
/// finished shard, RUN/tallies.bin for `sgdwalk merge`). Throws
/// RunDirectoryError (missing or damaged directory), ConfigError (config.toml invalid or changed
/// since the run started: the message lists the changes), CheckpointError (unreadable, corrupt or
/// mismatched checkpoint) or ResourceError (does not fit in memory any more).
ResumePoint load_resume_point(const std::string& directory, int threads = 0);

/// Why `dir` cannot become (or stay) a run directory: an existing file, a file on the way, no
/// permission to write, a read-only file system; in plain words naming `option` (the flag or
/// argument that gave it), empty if it can. Checked before anything is computed.
std::string run_directory_problem(const std::filesystem::path& dir, const char* option = "--out");

/// Of a finished run (not a shard): throws RunDirectoryError when RUN/results.h5 is missing or
/// cannot be read, saying how to get it back (`sgdwalk run ... --force`; nothing is left to resume
/// it from).
void check_finished_results(const std::string& directory);

/// Describes how a resolved config changed, key by key ("run.steps: 400 -> 500; ...").
std::string describe_config_changes(const nlohmann::json& before, const nlohmann::json& after);

/// Continues the run of `point` (from the beginning when there is no checkpoint) exactly as
/// run_in_directory would have: the final outputs are the same bytes.
SessionResult resume_in_directory(ResumePoint point, Backend& backend, const std::string& directory,
                                  const SessionOptions& options);

}  // namespace sgdwalk
