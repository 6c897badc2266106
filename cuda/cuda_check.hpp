// The CUDA backend's one error header: every runtime call goes through SGDWALK_CUDA_TRY, every
// kernel launch is followed by SGDWALK_CUDA_CHECK_LAUNCH. Usable from .cpp and .cu files.
//
// A failed call throws gpu::CudaError (a std::runtime_error) whose message names the file, the
// line, the expression, and the CUDA error's name and description; the runtime's last-error state
// is cleared first, so that later calls start clean (errors that corrupt the context, such as an
// illegal address, stay sticky in the driver whatever we do). cudaMalloc's out-of-memory failure
// throws gpu::CudaOutOfMemory, which the backend turns into a message saying how many walkers fit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace sgdwalk::gpu {

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& what, cudaError_t code) : std::runtime_error(what), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

/// cudaMalloc could not allocate `bytes`.
class CudaOutOfMemory : public CudaError {
 public:
  CudaOutOfMemory(const std::string& what, std::size_t bytes)
      : CudaError(what, cudaErrorMemoryAllocation), bytes_(bytes) {}
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_;
};

/// "cudaErrorNoDevice: no CUDA-capable device is detected".
inline std::string cuda_error_text(cudaError_t status) {
  const char* name = cudaGetErrorName(status);
  const char* text = cudaGetErrorString(status);
  return std::string(name != nullptr ? name : "cudaError?") + ": " +
         (text != nullptr ? text : "unknown error");
}

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* expression,
                                          const char* file, int line) {
  (void)cudaGetLastError();  // reset the runtime's last error so later calls start clean
  throw CudaError(std::string(file) + ":" + std::to_string(line) + ": CUDA call `" + expression +
                      "` failed: " + cuda_error_text(status),
                  status);
}

}  // namespace sgdwalk::gpu

/// Evaluates a CUDA runtime call; throws gpu::CudaError unless it returned cudaSuccess.
#define SGDWALK_CUDA_TRY(expression)                                                           \
  do {                                                                                         \
    const cudaError_t sgdwalk_cuda_status_ = (expression);                                     \
    if (sgdwalk_cuda_status_ != cudaSuccess) {                                                 \
      ::sgdwalk::gpu::throw_cuda_error(sgdwalk_cuda_status_, #expression, __FILE__, __LINE__); \
    }                                                                                          \
  } while (0)

/// After a kernel launch: launch-configuration errors always; in debug builds (no NDEBUG) also
/// waits for the kernel, so that a fault is reported at the launch that caused it.
#if defined(NDEBUG)
#define SGDWALK_CUDA_CHECK_LAUNCH(stream) SGDWALK_CUDA_TRY(cudaGetLastError())
#else
#define SGDWALK_CUDA_CHECK_LAUNCH(stream)            \
  do {                                               \
    SGDWALK_CUDA_TRY(cudaGetLastError());            \
    SGDWALK_CUDA_TRY(cudaStreamSynchronize(stream)); \
  } while (0)
#endif

/// Precondition on arguments: throws std::invalid_argument with the condition and a message.
#define SGDWALK_EXPECTS(condition, message)                                                   \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      throw std::invalid_argument(std::string("CUDA backend: ") + (message) + " (expected " + \
                                  #condition + ")");                                          \
    }                                                                                         \
  } while (0)
