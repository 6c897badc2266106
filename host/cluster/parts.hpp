// Splitting a run's walkers into parts (shards of a job array, MPI ranks) and merging finished
// parts into the run directory a single run would have written, bit for bit.
//
// Walker g of a run (g = variant · walkers_per_variant + walker) draws from its own Philox
// subsequence, and every statistic is an exact, mergeable tally (exact_stats.hpp), so a part can be
// run anywhere, on any backend, and the merged results do not depend on how the walkers were split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/plan.hpp"
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
};

/// Reads the finished shard directories `shard_dirs` and merges them: checks that they come from
/// the same resolved config and seed, that they split the walkers in the same number of parts and
/// that each part is present exactly once (RunDirectoryError naming the foreign, duplicated or
/// missing shard, usage() = true), then adds their tallies in part order and reads their walkers
/// in walker order. `command_line` is recorded in summary.json.
MergedRun merge_shards(const std::vector<std::string>& shard_dirs, const std::string& command_line);

/// The partial results of a stopped job whose parts are `part_dirs` (part K in part_dirs[K]; a
/// directory that does not exist is a part that never started): the tallies of every finished
/// walker, with the results of the variants [0, variants_done) whose walkers have all finished
/// (later variants blanked, as in a stopped single run) and the walkers finished so far.
MergedRun merge_stopped_parts(const RunPlan& plan, const std::vector<std::string>& part_dirs);

/// merge_shards, then writes config.toml, summary.json and results.h5 into `out_dir` (created;
/// it must be empty or absent unless `force`).
MergedRun merge_into_directory(const std::vector<std::string>& shard_dirs,
                               const std::string& out_dir, bool force,
                               const std::string& command_line);

}  // namespace sgdwalk
