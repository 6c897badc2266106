// Running a plan on a backend (batches of walkers, segments of steps) and writing run directories.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analysis/statistics.hpp"
#include "backend/backend.hpp"
#include "backend/plan.hpp"
#include "backend/run_data.hpp"
#include "io/walker_store.hpp"

namespace sgdwalk {

/// Where a run stands. Walkers are advanced in index order, a batch at a time: walkers
/// [0, walker_begin) have reached the last step, the batch in flight [walker_begin, walker_end) has
/// reached `step` (1 <= step < steps), and the rest have not started. walker_end == walker_begin
/// means no batch is in flight. This does not depend on the batch size, so a run can be continued
/// with another batch size or backend. A run may cover only a part [part_begin, part_end) of the
/// plan's walkers (a shard, an MPI rank: see parts.hpp); walker_begin then starts at part_begin.
struct RunProgress {
  std::int64_t part_begin = 0;
  /// -1: the plan's last walker (update_counters resolves it).
  std::int64_t part_end = -1;
  std::int64_t walker_begin = 0;
  std::int64_t walker_end = 0;
  std::int64_t step = 0;
  std::int64_t walkers_total = 0;  ///< of the plan
  /// Variants whose walkers (in the part) have all reached the last step; for a whole run always
  /// [0, variants_done). variants_total counts the variants the part holds walkers of.
  std::int64_t variants_done = 0;
  std::int64_t variants_total = 0;
  /// For display: the batch in flight (0-based) and the batch count of this session.
  std::int64_t batch = 0;
  std::int64_t batches = 0;
  std::int64_t walker_steps_done = 0;
  std::int64_t walker_steps_total = 0;
  /// Seconds spent in initialisation and backend calls, over every session of the run.
  double simulate_seconds = 0;

  bool complete() const { return walkers_total > 0 && walker_begin == end_of_part(); }
  std::int64_t end_of_part() const { return part_end < 0 ? walkers_total : part_end; }
  /// Whether the run covers every walker of the plan (not a part).
  bool whole() const { return part_begin == 0 && end_of_part() == walkers_total; }
  /// A run of walkers [begin, end) that has not started.
  static RunProgress start_of_part(std::int64_t begin, std::int64_t end) {
    RunProgress progress;
    progress.part_begin = progress.walker_begin = progress.walker_end = begin;
    progress.part_end = end;
    return progress;
  }
  /// Fills the derived counters (done walker-steps, variants done, totals) from the positions.
  void update_counters(const RunPlan& plan);
};

/// What ExecuteOptions::on_segment sees of the run's data: get() brings the batch's walker state
/// back from the backend first (a device-to-host copy on the GPU), so a callback that only reports
/// progress costs no copy; one that writes a checkpoint calls get().
class SegmentData {
 public:
  SegmentData(const RunPlan& plan, Backend& backend, RunData& data)
      : plan_(plan), backend_(backend), data_(data) {}
  const RunData& get() const {
    backend_.sync_walkers(plan_, data_);
    return data_;
  }

 private:
  const RunPlan& plan_;
  Backend& backend_;
  RunData& data_;
};

struct ExecuteOptions {
  /// Walkers per backend call; 0 = the plan's batch_walkers, else as many as fit in
  /// default_batch_walkers (and the backend's memory limit). Never changes results.
  std::int64_t batch_walkers = 0;
  /// Steps per backend call; 0 = automatic: adapted so that a call takes about
  /// `segment_seconds`, so that progress, signals and checkpoints react quickly even for huge
  /// runs. Never changes results.
  std::int64_t segment_steps = 0;
  double segment_seconds = 1.0;
  /// Called after every backend call; return false to stop early (the run is then partial).
  std::function<bool(const RunProgress&, const SegmentData&)> on_segment;
  /// Where finished walkers are written, batch by batch (per-walker output, or a caller that wants
  /// every walker: MemoryWalkerStore). Null: finished walkers are only reduced.
  std::shared_ptr<WalkerStore> walker_store;
  /// Called when walkers [first, last) of the batch arrays have reached the last step, before
  /// they are reduced into the tallies and the arrays are reused.
  std::function<void(const RunData&, std::int64_t first, std::int64_t last)> on_batch;
};

struct RunOutcome {
  /// The tallies of the finished walkers, the counters, and the batch in flight when stopped.
  RunData data;
  /// ExecuteOptions::walker_store: the finished walkers (per-walker output reads them from here).
  std::shared_ptr<WalkerStore> walkers;
  RunProgress progress;
  bool complete = false;
  std::vector<VariantSummary> summaries;
  std::string backend_name, backend_description;
};

/// Empties the results of a variant whose walkers have not all finished (a partial run), keeping
/// the shapes the writers expect.
void blank_summary(VariantSummary& summary);

/// Advances the whole plan on `backend`.
RunOutcome execute(const RunPlan& plan, Backend& backend, const ExecuteOptions& options);
/// Continues a run from a saved state (`data` and `resume_from`, e.g. from a checkpoint). Throws
/// std::invalid_argument when the state does not fit the plan.
RunOutcome execute_from(const RunPlan& plan, Backend& backend, const ExecuteOptions& options,
                        RunData data, RunProgress resume_from);

/// Part `index` of `count` of a run's walkers (a shard, or an MPI rank's share): see parts.hpp.
struct PartId {
  std::int64_t index = 0;
  std::int64_t count = 1;
  bool operator==(const PartId&) const = default;
};

/// How the user asked for the run, recorded in summary.json.
struct RunRecord {
  std::string config_text;    ///< copied to RUN/config.toml (replay reads it back)
  std::string config_source;  ///< path, or "<embedded>"
  std::string command_line;
  /// Whether run.seed came from the command line (--seed) rather than the config file; `resume`
  /// then takes the seed from the run directory instead of config.toml.
  bool seed_from_command_line = false;
  double wall_seconds = 0;
  /// Sessions (the first run and every resume) that worked on the run.
  std::int64_t sessions = 1;
  /// Set for a shard: the run advances only this part of the walkers and keeps their exact tallies
  /// (RUN/tallies.bin) and per-walker records for `sgdwalk merge` instead of writing results.
  std::optional<PartId> shard;
  /// Extra top-level entries of summary.json: a shard's "shard", a merged run's "merged_from".
  nlohmann::json provenance = nlohmann::json::object();
};

/// Writes summary.json and results.h5 into `directory`; with per-walker output, the walkers come
/// from outcome.walkers (which must be set) (each written to a temporary name, then
/// renamed, so a reader never sees half a file). results.h5 depends only on the plan, the config
/// text and the results (not on the backend, threads, batching or timing), byte for byte.
void write_run_outputs(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                       const std::string& directory);

/// Writes `dir`'s config.toml and summary.json, each atomically; when they fail, a config.toml
/// that was not there before is removed again (a config alone would need --force next time and
/// read as a damaged run directory).
void write_config_and_summary(const std::filesystem::path& dir, const std::string& config_text,
                              const std::string& summary_text);

/// Writes config.toml and a summary.json with "partial": true and no results yet: the state of a
/// run directory before the first result (enough for `sgdwalk resume`).
void write_run_start(const RunPlan& plan, const RunOutcome& outcome, const RunRecord& record,
                     const std::string& directory);

/// Why replay refuses a forward flux sampling run: its flux walkers and trials draw from their
/// own random streams (docs/RARE_EVENTS.md), so a replayed brute-force walker is none of them.
inline constexpr const char* kFfsReplayRefusal =
    "this is a forward flux sampling run (rare_event.method = \"ffs\"): replay recomputes a "
    "brute-force walker, which is not part of it (flux walkers and trials have their own random "
    "streams, docs/RARE_EVENTS.md); the states stored at each interface are in results.h5 under "
    "/rare_events";

/// One walker's trajectory recomputed from the seed on the host with the shared update (not the
/// backend's batched path), as CSV: step, coordinates, loss, basin, crossings, freeze step, then
/// the optimizer state (v_x... for momentum, m_x... and s_x... for adam and rmsprop).
/// Rows every `every` steps (and the last step), up to step `until` (default: run.steps).
/// `normals_columns` adds the normals the row's update consumed (normal_x...; 0 at step 0), so an
/// independent implementation can recompute the trajectory from them.
/// `keep_going`, when set, is called after every kReplayCheckSteps updates (the Python binding
/// checks for Ctrl-C there); when it returns false the replay stops, its CSV unfinished.
inline constexpr std::int64_t kReplayCheckSteps = 65536;
/// The name of coordinate i in replay's columns: x, y, z up to 3 dimensions, q0, q1, ... beyond.
std::string replay_coordinate_name(int i, int dim);
void replay_walker(const RunPlan& plan, std::int64_t variant, std::int64_t walker,
                   std::int64_t every, std::ostream& out, std::int64_t until = -1,
                   bool normals_columns = false, const std::function<bool()>& keep_going = {});

/// The sgdwalk version string and the git commit it was built from ("-dirty" with uncommitted
/// changes to tracked files; "unknown" outside a git checkout), read at build time.
std::string sgdwalk_version();
std::string sgdwalk_git_commit();

}  // namespace sgdwalk
