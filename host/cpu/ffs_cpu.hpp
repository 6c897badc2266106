// The CPU backend's forward-flux-sampling stages: OpenMP over flux walkers and trials, each
// advanced by the shared per-walker logic of include/sgdwalk/ffs.hpp. Every walker and trial is
// written by one thread only, so the result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "backend/plan.hpp"
#include "rare_events/ffs_stage.hpp"

namespace sgdwalk {

void cpu_run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch, int threads);
void cpu_run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch, int threads);

}  // namespace sgdwalk
