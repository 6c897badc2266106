// The CUDA backend's FFS stages (host side): upload a stage's arrays, one launch for every flux
// walker or trial of every variant, download. Called by CudaBackend::run_ffs_flux/run_ffs_trials.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/plan.hpp"
#include "rare_events/ffs_stage.hpp"

namespace sgdwalk {

void cuda_run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch,
                       cudaStream_t stream);
void cuda_run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch, cudaStream_t stream);

}  // namespace sgdwalk
