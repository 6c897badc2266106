// The resolved [rare_event] settings of a forward-flux-sampling run (docs/RARE_EVENTS.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sgdwalk/ffs.hpp"

namespace sgdwalk {

/// [rare_event] after validation. With enabled, run.walkers and run.steps are the flux stage's
/// walkers and steps (per variant and replica).
struct FfsSpec {
  bool enabled = false;  ///< method = "ffs"
  ffs::OrderKind order = ffs::OrderKind::basin_distance;
  int coordinate = 0;                         ///< OrderKind::coordinate: the axis
  double sign = 1;                            ///< λ = sign · raw
  std::string order_name = "basin_distance";  ///< as written ("-x", "loss", ...)
  double lambda_a = 0;                        ///< A = {λ < lambda_a}
  /// Given interfaces λ_0 < … < λ_n (λ_n = B). Empty: placed automatically from lambda_0 to
  /// lambda_b so that each stage's crossing probability is near placement_probability.
  std::vector<double> interfaces;
  double lambda_0 = 0, lambda_b = 0;  ///< automatic placement: first and last interface
  double placement_probability = 0.2;
  std::int64_t placement_trials = 0;          ///< pilot trials per placed interface
  std::int64_t trials = 1000;                 ///< trials per interface, per variant and replica
  int replicas = 4;                           ///< R independent repetitions
  std::int64_t equilibration_steps = 0;       ///< flux-stage updates not counted
  std::int64_t max_trial_steps = 10000000;    ///< a longer trial is a (counted) failure
  std::int64_t max_stored_states = 10000000;  ///< interface-0 states per variant and replica
  /// Keep every interface's states (written to results.h5), not only the current interface's.
  bool store_states = true;
  bool automatic() const { return interfaces.empty(); }
};

}  // namespace sgdwalk
