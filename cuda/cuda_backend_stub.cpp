// Placeholder until the CUDA kernels land: reports no device.
#include <stdexcept>

#include "cuda_backend.hpp"

namespace sgdwalk {
CudaDeviceInfo cuda_devices() { return {0, "", "CUDA kernels not yet built"}; }
std::unique_ptr<Backend> make_cuda_backend(int) {
  throw std::runtime_error("--backend cuda: the CUDA kernels are not built yet");
}
}  // namespace sgdwalk
