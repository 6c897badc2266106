#include "backend/backend_registry.hpp"

#include <algorithm>
#include <stdexcept>

#if SGDWALK_HAVE_CUDA
#include "cuda_backend.hpp"
#endif

namespace sgdwalk {

bool cuda_backend_built() {
  return SGDWALK_HAVE_CUDA != 0;
}

int cuda_device_count() {
#if SGDWALK_HAVE_CUDA
  return cuda_devices().count;
#else
  return 0;
#endif
}

namespace {
/// Why there is no CUDA device, in one line.
std::string cuda_devices_error() {
#if SGDWALK_HAVE_CUDA
  return cuda_devices().error;
#else
  return "CUDA backend not built";
#endif
}
}  // namespace

std::string cuda_device_report() {
#if SGDWALK_HAVE_CUDA
  const CudaDeviceInfo info = cuda_devices();
  if (info.count == 0) return "no CUDA device (" + info.error + ")";
  return info.description;
#else
  return "CUDA backend not built (configure with -DSGDWALK_CUDA=ON, or install the Python "
         "package with SGDWALK_CUDA=ON pip install ., on a machine with nvcc)";
#endif
}

int device_for_local_rank(int local_rank, int device_count) {
  return local_rank > 0 && device_count > 0 ? local_rank % device_count : 0;
}

BackendChoice make_backend(const std::string& name, int threads, int device_slot) {
  // One rank per GPU: rank i of a node takes device i modulo the node's devices.
  [[maybe_unused]] const int device = device_for_local_rank(device_slot, cuda_device_count());
  if (name == "cpu") return {make_cpu_backend(threads), ""};
  if (name == "cuda") {
#if SGDWALK_HAVE_CUDA
    return {make_cuda_backend(device), ""};
#else
    throw std::runtime_error(
        "--backend cuda: this sgdwalk was built without the CUDA backend; rebuild with "
        "-DSGDWALK_CUDA=ON (the Python package: SGDWALK_CUDA=ON pip install .) on a machine with "
        "nvcc, or use --backend cpu");
#endif
  }
  if (name == "auto") {
    if (cuda_device_count() > 0) {
#if SGDWALK_HAVE_CUDA
      // A device this binary cannot use (no kernel image for its architecture, a driver too old)
      // is no reason to fail: fall back to the CPU and say why, in one line.
      try {
        return {make_cuda_backend(device), ""};
      } catch (const std::runtime_error& error) {
        std::string reason = error.what();
        std::replace(reason.begin(), reason.end(), '\n', ' ');
        return {make_cpu_backend(threads),
                "the CUDA device is not usable (" + reason + "); using the CPU backend"};
      }
#endif
    }
    return {make_cpu_backend(threads),
            cuda_backend_built()
                ? "no usable GPU here (" + cuda_devices_error() + "); using the CPU backend"
                : ""};
  }
  throw std::invalid_argument("--backend: unknown value '" + name + "'; allowed: auto, cpu, cuda");
}

}  // namespace sgdwalk
