// The backend interface: advance a range of walkers over a range of steps.
//
// The driver owns the run (batches of walkers, segments of steps, checkpoints); a backend only
// advances walkers held in RunData and accumulates the observables of the steps it simulates.
// Walkers are addressed by global index g = variant · walkers_per_variant + walker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/plan.hpp"
#include "backend/run_data.hpp"
#include "rare_events/ffs_stage.hpp"

namespace sgdwalk {

/// Host↔device traffic of a backend since it was made (zero for the CPU backend): what the
/// benchmarks report as the time spent in copies.
struct TransferStats {
  double seconds = 0;  ///< host wall time inside copy calls, waiting for them included
  std::uint64_t bytes_to_device = 0;
  std::uint64_t bytes_to_host = 0;  ///< walker state and per-walker sample values
  /// Results of on-device reductions (runs of tally records): what came back instead of
  /// per-walker values.
  std::uint64_t reduced_bytes_to_host = 0;
};

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
  /// Batch residency. The driver calls begin_batch() once walkers [first, last) hold their state
  /// at `step` in `data` (after initialize(), or from a checkpoint), and end_batch() when it is
  /// done with them. In between, advance() of exactly that range may keep the walker state to the
  /// backend (the CUDA backend keeps it in device memory, so a segment boundary costs a kernel
  /// boundary, not a copy): data.observables is up to date after every advance(), but the batch's
  /// data.walkers may be stale until sync_walkers() (a checkpoint) or end_batch(). advance() of
  /// any other range reads and writes data.walkers as before. The defaults do nothing: the CPU
  /// backend works in `data` itself.
  virtual void begin_batch(const RunPlan& plan, std::int64_t first, std::int64_t last,
                           std::int64_t step, const RunData& data);
  /// Brings the open batch's walker state into `data` (nothing when no batch is open).
  virtual void sync_walkers(const RunPlan& plan, RunData& data);
  /// sync_walkers(), then closes the batch.
  virtual void end_batch(const RunPlan& plan, RunData& data);
  /// For an open batch at the last step: adds its walkers' trackers to data.tallies exactly as
  /// reduce_batch() would, and closes the batch, without bringing the walker state into `data`
  /// (the CUDA backend reduces on the device, so the state never crosses PCIe). Returns false,
  /// doing nothing, when it cannot; the driver then calls end_batch() and reduce_batch(). The
  /// driver uses it when nobody needs the finished walkers (no per-walker output).
  virtual bool reduce_and_end_batch(const RunPlan&, RunData&) { return false; }
  /// Copies between host and device so far (benchmarks).
  virtual TransferStats transfers() const { return {}; }
  /// The batch size this backend prefers when neither the config nor the caller sets one (it is
  /// still capped by the 256 MiB default and by max_batch_walkers); 0 = no preference.
  virtual std::int64_t preferred_batch_walkers(const RunPlan&) const { return 0; }
  /// Largest number of walkers advance() can take at once (device memory); 0 = no limit.
  virtual std::int64_t max_batch_walkers(const RunPlan& plan) const = 0;
  /// Puts walkers [first, last) at step 0 (see initialize_walkers); a backend may choose the
  /// number of host threads.
  virtual void initialize(const RunPlan& plan, std::int64_t first, std::int64_t last,
                          RunData& data);

  // ---- Forward flux sampling (host/rare_events/, include/sgdwalk/ffs.hpp) ----
  /// Stage 0 of every variant in one call: advances each flux walker from batch.step[i] towards
  /// `step_end` (ffs::flux_update), storing its counted crossings of λ_0 in its slots of
  /// batch.stored; a walker whose slots are full stops early and continues in the next call.
  /// Results do not depend on how the steps are split into calls. The default throws.
  virtual void run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch);
  /// One trial stage of every variant in one call: every trial runs ffs::run_trial from its
  /// start state to its end. The default throws.
  virtual void run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch);
};

/// The CPU backend (always built). threads = 0 uses OpenMP's default.
std::unique_ptr<Backend> make_cpu_backend(int threads);

/// Puts walkers [first, last) at step 0 (initial positions, trackers) and records the step-0
/// samples and histogram deposits, on `threads` OpenMP threads (0: OpenMP's default); the result
/// does not depend on the thread count. Host code shared by every backend.
void initialize_walkers(const RunPlan& plan, std::int64_t first, std::int64_t last, RunData& data,
                        int threads = 0);

}  // namespace sgdwalk
