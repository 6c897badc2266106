// Checkpoints: the full state of a run (walker states, trackers, partial observables, progress) in
// one binary file, written atomically, so a run can be continued bit for bit after an interruption.
// The counter-based RNG has no state: (seed, variant, walker, step) is all it needs.
//
// Format (little-endian; version 5; version 4, still read, lacks the optimizer state: plain SGD
// (checkpoint.cpp); version 3, still read, lacks the part as well: a whole run; since
// version 3 the tallies hold the samples already recorded, in-flight batch included, where version
// 2 reduced the in-flight batch's samples only when it finished):
//   "SGDWCKPT"  u32 version  u32 byte-order mark 0x01020304
//   u64 config hash (FNV-1a-64 of plan.resolved_config.dump(), seed included)  u64 seed
//   i64 steps, dim, variants, walkers_per_variant, samples, histograms, slots[histograms]
//   i64 part_begin, part_end (the walkers the run covers: all, or a shard's or rank's part)
//   [everything "per variant" below is stored for the variants the part holds walkers of only,
//    [part_begin / walkers_per_variant, (part_end − 1) / walkers_per_variant]; the others are 0]
//   i64 walker_begin, walker_end, step   f64 simulate_seconds, wall_seconds   i64 sessions
//   u64 sketch entries (all quantile sketches together)
//   the batch in flight, n = walker_end − walker_begin walkers (none between batches):
//     f64 position[n·dim]  f64 y_freeze[n]  i64 freeze_step[n]  i64 first_passage_step[n]
//     i64 nonfinite_step[n]  i32 basin[n]  u32 crossings[n]
//     f32 sample_progress[samples·n] ([sample][walker])  f32 sample_loss[samples·n]
//   u64 sample_flat[variants·samples]  u64 sample_finite[variants·samples]
//   u64 histogram_counts[h][variants·slots[h]] for each histogram
//   the tallies (run_data.hpp): trackers of the finished walkers and every recorded sample, per
//   variant:
//     i64 walkers, finite, nonfinite, flat, first_nonfinite_step, started_in_target, arrived,
//     censored; moments freezing_time (narrow), y_freeze (wide), crossings, passage_steps
//     (narrow); narrow sum exposure_steps; i64 freezing_time, crossings and passage log2
//     histograms [64] each
//   per variant and sample: moments progress, loss (narrow)
//   per variant: u64 entries of the y_freeze sketch; per variant and sample: u64 entries of the
//     progress sketch, of the loss sketch
//   every sketch's entries in that order, each u32 bucket, u64 count
//   u64 FNV-1a-64 of every byte before it
// A sum is its normalised limbs (i64 × 20 narrow, × 134 wide); moments are i64 count, positive
// and negative infinite counts, then the sums of x and x².
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "backend/plan.hpp"
#include "backend/run_data.hpp"
#include "run/driver.hpp"

namespace sgdwalk {

/// An unreadable, corrupt or mismatched checkpoint; the message names the file and the problem.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint32_t kCheckpointVersion = 5;

struct Checkpoint {
  std::uint64_t config_hash = 0;
  std::uint64_t seed = 0;
  std::int64_t steps = 0;
  RunProgress progress;       ///< part, positions and simulate_seconds; counters are not filled
  double wall_seconds = 0;    ///< wall time of the sessions so far
  std::int64_t sessions = 1;  ///< sessions so far (the first run and every resume)
  /// The batch in flight (arrays of walker_end − walker_begin walkers from walker_begin), the
  /// counters and the tallies.
  RunData data;
};

/// Writes `path` atomically: to `path`.tmp, fsync, rename, fsync of the directory. A reader sees
/// the previous checkpoint or the new one, never a mixture, even after kill -9 or a crash.
void write_checkpoint(const std::string& path, const RunPlan& plan, const RunProgress& progress,
                      const RunData& data, double wall_seconds, std::int64_t sessions);

/// Reads and verifies a checkpoint file (size, magic, version, checksum, consistency). With a plan,
/// also checks that the checkpoint belongs to it (config hash and every size). Throws only
/// CheckpointError.
Checkpoint read_checkpoint(const std::string& path, const RunPlan* plan = nullptr);

/// The same from bytes in memory; `source` names them in messages (the fuzzing entry point).
Checkpoint parse_checkpoint(std::string_view bytes, const std::string& source,
                            const RunPlan* plan = nullptr);

}  // namespace sgdwalk
