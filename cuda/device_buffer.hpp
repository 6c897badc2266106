// RAII owners of device memory and streams (the "owner" half of owner/view: kernels never see
// these, only the raw pointers the backend packs into trivially copyable argument structs).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda_check.hpp"

namespace sgdwalk::gpu {

/// A grow-only array in device memory. `ensure(n)` gives it room for n elements without keeping
/// the old contents (the backend rewrites every buffer it uses in each call), so repeated batches
/// reuse one allocation.
template <class T>
class DeviceBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "device buffers hold trivially copyable types");

 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) { ensure(n); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }

  /// Room for n elements; contents are unspecified afterwards.
  void ensure(std::size_t n) {
    if (n > capacity_) {
      release();
      void* pointer = nullptr;
      const std::size_t bytes = n * sizeof(T);
      const cudaError_t status = cudaMalloc(&pointer, bytes);
      if (status == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        throw CudaOutOfMemory(
            "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cuda_error_text(status),
            bytes);
      }
      SGDWALK_CUDA_TRY(status);
      data_ = static_cast<T*>(pointer);
      capacity_ = n;
    }
    size_ = n;
  }

  /// Frees the memory (also done by the destructor).
  void release() noexcept {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
    capacity_ = 0;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t capacity_bytes() const { return capacity_ * sizeof(T); }

  /// ensure(n), then copy n elements from host memory.
  void upload(const T* host, std::size_t n, cudaStream_t stream) {
    ensure(n);
    if (n > 0) {
      SGDWALK_CUDA_TRY(cudaMemcpyAsync(data_, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
    }
  }

  /// Copy the first n elements to host memory (the caller synchronises the stream before reading).
  void download(T* host, std::size_t n, cudaStream_t stream) const {
    if (n > 0) {
      SGDWALK_CUDA_TRY(cudaMemcpyAsync(host, data_, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
    }
  }

  /// Sets the first size() elements to zero bytes.
  void zero(cudaStream_t stream) {
    if (size_ > 0) SGDWALK_CUDA_TRY(cudaMemsetAsync(data_, 0, size_ * sizeof(T), stream));
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// An owned non-blocking CUDA stream of the current device.
class Stream {
 public:
  Stream() { SGDWALK_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&&) = delete;

  cudaStream_t get() const { return stream_; }
  void synchronize() const { SGDWALK_CUDA_TRY(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace sgdwalk::gpu
