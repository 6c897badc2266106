// The backend interface: advance a range of walkers over a range of steps.
//
// The driver owns the run (batches of walkers, segments of steps, checkpoints); a backend only
// advances walkers held in RunData and accumulates the observables of the steps it simulates.
// Walkers are addressed by global index g = variant · walkers_per_variant + walker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "plan.hpp"
#include "run_data.hpp"

namespace sgdwalk {

class Backend {
 public:
  virtual ~Backend() = default;
  /// "cpu" or "cuda".
  virtual std::string name() const = 0;
  /// One line for logs and summary.json: threads, device name, ...
  virtual std::string description() const = 0;
  /// Advance walkers [first, last) from step `step_begin` to `step_end`, reading and writing their
  /// state in `data.walkers` and adding the samples and histogram deposits of the steps
  /// (step_begin, step_end] to `data.observables`. Results must not depend on how a run is split
  /// into calls.
  virtual void advance(const RunPlan& plan, std::int64_t first, std::int64_t last,
                       std::int64_t step_begin, std::int64_t step_end, RunData& data) = 0;
  /// Largest number of walkers advance() can take at once (device memory); 0 = no limit.
  virtual std::int64_t max_batch_walkers(const RunPlan& plan) const = 0;
  /// Puts walkers [first, last) at step 0 (see initialize_walkers); a backend may choose the
  /// number of host threads.
  virtual void initialize(const RunPlan& plan, std::int64_t first, std::int64_t last,
                          RunData& data);
};

/// The CPU backend (always built). threads = 0 uses OpenMP's default.
std::unique_ptr<Backend> make_cpu_backend(int threads);

/// Puts walkers [first, last) at step 0 (initial positions, trackers) and records the step-0
/// samples and histogram deposits, on `threads` OpenMP threads (0: OpenMP's default); the result
/// does not depend on the thread count. Host code shared by every backend.
void initialize_walkers(const RunPlan& plan, std::int64_t first, std::int64_t last, RunData& data,
                        int threads = 0);

}  // namespace sgdwalk
