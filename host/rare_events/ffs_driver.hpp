// Direct forward flux sampling over all variants of a plan (docs/RARE_EVENTS.md): the flux stage,
// the trial stages (one backend call per stage for every variant), automatic interface placement,
// the rate and its errors, checkpoints between stages, and the outputs.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/plan.hpp"

namespace sgdwalk {

/// Ancestor groups of the jackknife error (FfsReplica::flux_group_crossings): at most this many.
inline constexpr int kFfsAncestorGroups = 32;

/// States stored at one interface (of one variant and replica), in the order they were stored.
struct FfsInterfaceStates {
  WalkerArrays states;
  std::vector<std::int64_t> path_step;  ///< the walker's step counter
  std::vector<std::int64_t> ancestor;   ///< index of the interface-0 state it descends from
  /// Index of the state at the previous interface its trial started from (−1 at interface 0):
  /// with every interface kept, parent and ancestor trace each state's tree of ancestors.
  std::vector<std::int64_t> parent;
  std::int64_t size() const { return states.size(); }
};

/// One trial stage (interface i−1 → i) of one variant and replica.
struct FfsStageCounts {
  double lambda_from = 0, lambda_to = 0;
  std::int64_t trials = 0, reached = 0, fell_back = 0, nonfinite = 0, timed_out = 0, jumps = 0;
  std::int64_t walker_steps = 0;        ///< updates made by the trials
  std::int64_t pilot_trials = 0;        ///< automatic placement: pilot trials run for λ_to
  std::int64_t pilot_walker_steps = 0;  ///< and their updates
  std::int64_t distinct_ancestors = 0;  ///< among the states that reached lambda_to
  double effective_ancestors = 0;       ///< (Σ n_a)² / Σ n_a² over those ancestors
  /// Trials and successes per ancestor group (the group of the flux walker each trial's start
  /// state descends from; FfsReplica::flux_group_crossings): the jackknife's input. Empty in
  /// results resumed from checkpoints written before these counts existed.
  std::vector<std::int64_t> group_trials, group_reached;
  double probability() const {
    return trials > 0 ? static_cast<double>(reached) / static_cast<double>(trials) : 0.0;
  }
};

/// One replica of one variant.
struct FfsReplica {
  std::vector<double> interfaces;  ///< λ_0 .. λ_n as used (placed or given)
  std::int64_t flux_crossings = 0, flux_exposure = 0, flux_jumps = 0, flux_nonfinite = 0;
  std::int64_t flux_walker_steps = 0;
  /// Flux crossings and exposure steps per ancestor group: flux walker w of W is in group
  /// ⌊w·G/W⌋, G = min(W, kFfsAncestorGroups). The interface-0 states are stored in walker order,
  /// so group g's states are the next flux_group_crossings[g] of them.
  std::vector<std::int64_t> flux_group_crossings, flux_group_exposure;
  std::vector<FfsStageCounts> stages;  ///< stage s = interface s−1 → s (s = 1..n)
  bool complete = false;               ///< every stage done (or stopped at a stage nobody passed)
  /// [interface i]: the states stored at λ_i (i = 0 … stages.size()) when rare_event.store_states
  /// is on; empty otherwise. Only these states are kept, never the paths between them.
  std::vector<FfsInterfaceStates> interface_states;
  double flux() const;           ///< Φ per step
  double rate_per_step() const;  ///< Φ · Π P
  /// Allen–Frenkel–ten Wolde relative variance of the rate: 1/N_0 + Σ (1 − P_i)/(P_i M_i)
  /// (the flux term as Poisson counting; +inf when a stage has P = 0).
  double relative_variance() const;
  /// Delete-one-group jackknife relative variance of the rate over the ancestor groups: each
  /// group's flux walkers are removed with every trial that descends from them. Unlike the AFtW
  /// formula it sees the correlation of states sharing ancestors and the spread of the success
  /// probability between states (momentum: the velocity at the crossing). NaN without group
  /// counts or with fewer than 2 groups; +inf when the rate is 0.
  double relative_variance_jackknife() const;
  std::int64_t walker_steps() const;  ///< the cost: every update of flux walkers, trials, pilots
};

/// The FFS result of one variant.
struct FfsVariantResult {
  std::vector<FfsReplica> replicas;
  double rate_per_step = 0;   ///< mean over replicas
  double rate_std_error = 0;  ///< standard error of that mean (NaN for one replica)
  /// Relative error of the replica mean from each replica's AFtW variance:
  /// √(Σ_r k_r² · relative_variance_r) / (R · mean); replicas of rate 0 add nothing.
  double rate_relative_error_aftw = 0;
  /// Relative error of the replica mean from each replica's jackknife over ancestor groups
  /// (NaN when a replica has no group counts).
  double rate_relative_error_jackknife = 0;
  double rate_pooled = 0;    ///< Φ·ΠP from the counts of all replicas pooled
  double learning_rate = 0;  ///< rate per unit time = rate per step / η
  std::vector<std::string> warnings;
};

struct FfsResult {
  std::vector<FfsVariantResult> variants;
  double wall_seconds = 0;
  bool complete = false;
  /// Every replica's interface_states are complete (store_states on, and the run did not resume
  /// from a checkpoint written before states were kept).
  bool states_stored = false;
  std::string states_not_stored_because;  ///< "" when states_stored
  std::vector<std::string> warnings;      ///< about the whole run (e.g. states not stored, and why)
};

/// Progress after every stage of every replica: (replica, stage, stages so far overall).
struct FfsProgress {
  int replica = 0;
  int stage = 0;  ///< 0 = flux
  std::string line;
};

struct FfsOptions {
  /// Called after each stage; return false to stop (a checkpoint is written first when
  /// checkpoint_path is set).
  std::function<bool(const FfsProgress&)> on_stage;
  /// Where the between-stages checkpoint goes ("" = none).
  std::string checkpoint_path;
  /// Flux-stage steps per backend call (0: the whole flux stage in one call per slot refill).
  std::int64_t flux_segment_steps = 0;
  /// Called once, before the first stage this call computes (not at all when a checkpoint holds
  /// the finished computation): a resume's resource check (it throws to refuse).
  std::function<void()> before_computing;
};

/// Thrown by run_ffs when on_stage asked to stop (after the checkpoint was written).
struct FfsStopped : std::runtime_error {
  FfsStopped() : std::runtime_error("forward flux sampling stopped between stages") {}
};

/// The checkpoint after a stage could not be written (a full disk): the run stops there, and the
/// previous checkpoint stays valid.
struct FfsCheckpointNotWritten : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Runs (or continues, from options.checkpoint_path when that file exists) FFS for every variant.
FfsResult run_ffs(const RunPlan& plan, Backend& backend, const FfsOptions& options = {});

/// The replica mean of `vr.replicas`' rates, its standard error, the AFtW and jackknife relative
/// errors and the pooled rate (NaN with automatic interfaces, which differ between replicas);
/// run_ffs calls it for every variant.
void ffs_estimate_rates(FfsVariantResult& vr, bool automatic_interfaces);

/// summary.json's "rare_events" object.
nlohmann::json ffs_result_json(const RunPlan& plan, const FfsResult& result);

/// The checksum an FFS checkpoint carries ("checksum", since version 5): FNV-1a 64 of the
/// compact JSON dump of `checkpoint` without that key, as 16 hex digits.
std::string ffs_checkpoint_checksum(const nlohmann::json& checkpoint);
/// Writes /rare_events into an open results.h5.
class Hdf5File;
void write_ffs_hdf5(const RunPlan& plan, const FfsResult& result, Hdf5File& file);

}  // namespace sgdwalk
