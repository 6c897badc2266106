// Choosing a backend by name ("auto", "cpu", "cuda"). Lives apart from the core so that the core
// does not depend on the CUDA library.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace sgdwalk {

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string notice;  ///< e.g. "no CUDA device found; using the CPU backend" (empty if none)
};

/// "cpu", "cuda" or "auto" (CUDA when a device is present, else the CPU with a one-line notice).
/// Throws std::runtime_error with a clear message for "cuda" without a usable device.
/// `device_slot` (an MPI rank's local rank) picks CUDA device device_slot modulo the device count.
BackendChoice make_backend(const std::string& name, int threads, int device_slot = 0);

/// The CUDA device of an MPI rank with node-local index `local_rank` on a node with
/// `device_count` devices: one rank per GPU, ranks beyond the device count wrapping around
/// (local_rank modulo device_count); 0 when there is no device or the rank is negative.
int device_for_local_rank(int local_rank, int device_count);

/// Whether this binary was built with the CUDA backend.
bool cuda_backend_built();

/// Human-readable list of CUDA devices, or why there are none.
std::string cuda_device_report();

/// Number of usable CUDA devices (0 without the CUDA backend or without a device).
int cuda_device_count();

}  // namespace sgdwalk
