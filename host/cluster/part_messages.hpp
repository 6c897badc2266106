// What the processes of a job send rank 0 when their parts are done or stopped: the results travel
// as MPI messages, so only rank 0 needs the run directory (each process keeps its parts' working
// files, checkpoints and walker records, on its own file system).
//
// - Integer counts (per variant: walkers, finite, non-finite, flat, first-passage counts and the
//   log2 histograms; per variant and sample: flat and finite walkers; every histogram's counts) are
//   summed element-wise over the processes (MPI_Reduce of MPI_UINT64_T: exact in any order), the
//   first non-finite step of each variant is their minimum (-1, none, is the largest uint64).
// - The floating-point partials of each part (moments: exact fixed-point sums of the values and
//   their squares; quantile sketches) are serialised, gathered on rank 0 (MPI_Gatherv) and
//   combined there in part order (combine_parts), which does not depend on the process count.
// - Per-walker records of the finished walkers go to rank 0 point to point, part by part.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/plan.hpp"
#include "backend/run_data.hpp"
#include "cluster/parts.hpp"

namespace sgdwalk {

/// The integer counts of a run's results, in the order the reduction adds them.
struct JobCounts {
  std::vector<std::uint64_t> sums;    ///< summed over processes
  std::vector<std::uint64_t> minima;  ///< [variant] first non-finite step; -1 reads as 2^64 − 1
  explicit JobCounts(const RunPlan& plan);
};

/// Moves `data`'s integer counts into `counts` (added; minimum for the first non-finite steps),
/// leaving zeros (and -1) in `data`: what the partials then carry has no counts.
void take_counts(const RunPlan& plan, RunData& data, JobCounts& counts);

/// Sets `data`'s integer counts to `counts` (rank 0, after the reduction).
void put_counts(const RunPlan& plan, const JobCounts& counts, RunData& data);

/// Appends part `part` without its counts (take_counts first): its length, position, timing,
/// backend name, and the moments and quantile sketches of the variants it holds walkers of.
void encode_part(const RunPlan& plan, const PartContribution& part, std::string& out);

/// One part in a message: what it says about itself, its partials still encoded.
struct PartRecord {
  PartContribution header;    ///< part, progress, timing, backend; no data
  std::string_view partials;  ///< points into the message
  int from = 0;               ///< the rank that sent it
};

/// The parts encoded one after another in `bytes` (rank `from`'s message), their partials not yet
/// decoded. Throws std::runtime_error naming the rank when the message does not fit the plan.
std::vector<PartRecord> index_parts(const RunPlan& plan, std::string_view bytes, int from);

/// The part of `record`, its partials decoded into data (sized for the plan, counts zero).
PartContribution decode_part(const RunPlan& plan, const PartRecord& record);

}  // namespace sgdwalk
