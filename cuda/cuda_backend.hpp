// The CUDA backend's host-visible interface. Host code includes this header only; kernels live in
// .cu files of this directory.
#pragma once

#include <memory>
#include <string>

#include "backend.hpp"

namespace sgdwalk {

struct CudaDeviceInfo {
  int count = 0;
  std::string description;  ///< one line per device: index, name, SMs, memory
  std::string error;        ///< why there is no device, when count == 0
};

/// Queries the CUDA runtime; never throws.
CudaDeviceInfo cuda_devices();

/// The CUDA backend on `device`. Throws std::runtime_error with a clear message when no device is
/// usable.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace sgdwalk
