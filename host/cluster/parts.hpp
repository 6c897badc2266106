// Splitting a run's walkers into parts (shards of a job array, MPI ranks) and merging finished
// parts into the run directory a single run would have written, bit for bit.
//
// Walker g of a run (g = variant · walkers_per_variant + walker) draws from its own Philox
// subsequence, and every statistic is an exact, mergeable tally (exact_stats.hpp), so a part can be
// run anywhere, on any backend, and the merged results do not depend on how the walkers were split.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/plan.hpp"
#include "io/walker_store.hpp"
#include "run/driver.hpp"

namespace sgdwalk {

/// A finished part's exact tallies (checkpoint format, at the part's last walker).
inline constexpr const char* kTalliesFileName = "tallies.bin";

struct WalkerRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

/// The walkers of part K of N: global indices [floor(K·T/N), floor((K+1)·T/N)) with T the run's
/// walker count. Parts are contiguous in the variant-major order (so a part spans variants and a
/// GPU gets batches as large as in a single run), differ in size by at most one walker, and are
/// empty when N > T.
WalkerRange part_walkers(const RunPlan& plan, PartId part);

/// Parses "K/N" (0 <= K < N <= 1000000) given to `flag`; throws ConfigError naming the flag, the
/// value and the allowed range.
PartId parse_part(const std::string& text, const std::string& flag);

/// "K/N".
std::string to_string(PartId part);

/// summary.json's "shard" entry: index, count, the walker range and the files merge reads.
nlohmann::json shard_provenance(const RunPlan& plan, PartId part);

/// A merged run, ready to be written by write_run_outputs.
struct MergedRun {
  RunPlan plan;
  RunRecord record;
  RunOutcome outcome;
  /// What the caller should say (shards computed by different sgdwalk builds).
  std::vector<std::string> warnings;
};

/// Reads the finished shard directories `shard_dirs` and merges them: checks that they come from
/// the same resolved config and seed, that they split the walkers in the same number of parts and
/// that each part is present exactly once (RunDirectoryError naming the foreign, duplicated or
/// missing shard, usage() = true), then adds their tallies in part order and reads their walkers
/// in walker order. `command_line` is recorded in summary.json.
MergedRun merge_shards(const std::vector<std::string>& shard_dirs, const std::string& command_line);

/// What one part of a job contributes to its results: read from the part's directory by the
/// process that ran it, sent to rank 0 as messages (part_messages.hpp), combined there.
struct PartContribution {
  PartId part;
  /// Where the part stands: walkers [part_begin, walker_begin) have finished (part_begin when it
  /// never started); step and walker_end of the batch in flight; simulate_seconds.
  RunProgress progress;
  double wall_seconds = 0;
  std::int64_t sessions = 0;
  std::string backend;  ///< summary.json's backend name ("" when the part never started)
  /// Tallies and counters of the finished walkers (and the samples recorded so far); no batch
  /// arrays.
  RunData data;
  /// Per-walker output: the finished walkers [part_begin, walker_begin).
  std::shared_ptr<WalkerStore> walkers;
  bool complete() const { return progress.walker_begin == progress.part_end; }
};

/// Part `part` of a job from its directory `dir` (a directory without summary.json is a part that
/// never started). Checks that it is that part of `plan`'s run.
PartContribution load_part(const RunPlan& plan, PartId part, const std::string& dir);

/// Combines the `count` parts of a job, asking `part_at(k)` for part k in part order and holding
/// one at a time: the run's results when all are complete, else the partial results of a stopped
/// run: the tallies of every finished walker, with the results of the variants [0, variants_done)
/// whose walkers have all finished (later variants blanked, as in a stopped single run) and the
/// walkers finished so far. `before_summaries` may change the combined data before the statistics
/// are read from it (rank 0 sets the integer counts reduced over the processes).
MergedRun combine_parts(const RunPlan& plan, std::int64_t count,
                        const std::function<PartContribution(std::int64_t)>& part_at,
                        const std::function<void(RunData&)>& before_summaries = {});

/// merge_shards, then writes config.toml, summary.json and results.h5 into `out_dir` (created;
/// it must be empty or absent unless `force`).
MergedRun merge_into_directory(const std::vector<std::string>& shard_dirs,
                               const std::string& out_dir, bool force,
                               const std::string& command_line);

}  // namespace sgdwalk
