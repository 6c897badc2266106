// The host side of tally records (include/sgdwalk/tally_records.hpp): runs of equal keys, as a
// device reduction produces them, added to RunTallies exactly as reduce_batch / reduce_samples
// would have added the values one by one; and a reference reduction on the host for the tests.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/run_data.hpp"
#include "sgdwalk/tally_records.hpp"

namespace sgdwalk {

/// Adds runs of tracker records (any order) of the walkers [first, last) to `tallies`; the
/// records' variants are counted from first / walkers_per_variant. `first_nonfinite_step[i]` is
/// the smallest non-finite step of local variant i (or -1).
void add_tracker_runs(const tally::Run* runs, std::size_t count, std::int64_t first,
                      std::int64_t last, std::int64_t walkers_per_variant,
                      const std::vector<std::int64_t>& first_nonfinite_step, RunTallies& tallies);

/// Adds runs of sample records of sample `sample` of the variants from `variant_begin` to
/// `tallies`: one or more slices of runs, each sorted by key, one after another (as the device
/// reduces a large batch).
void add_sample_runs(const tally::Run* runs, std::size_t count, std::int64_t variant_begin,
                     std::int64_t sample, std::int64_t samples, RunTallies& tallies);

/// Sorts `records` by key and sums each key's run (dropping tally::kNoRecord): what the device
/// does with CUB, as a reference.
std::vector<tally::Run> reduce_records(std::vector<tally::Record> records);

}  // namespace sgdwalk
