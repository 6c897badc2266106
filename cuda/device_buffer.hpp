// RAII owners of device memory and streams (the "owner" half of owner/view: kernels never see
// these, only the raw pointers the backend packs into trivially copyable argument structs).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
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

/// A grow-only array in page-locked host memory: device copies from and to it run at full
/// bandwidth and truly asynchronously on a stream.
template <class T>
class PinnedBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "pinned buffers hold trivially copyable types");

 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  /// Room for n elements; contents are unspecified afterwards.
  void ensure(std::size_t n) {
    if (n > capacity_) {
      release();
      void* pointer = nullptr;
      SGDWALK_CUDA_TRY(cudaMallocHost(&pointer, n * sizeof(T)));
      data_ = static_cast<T*>(pointer);
      capacity_ = n;
    }
  }
  void release() noexcept {
    if (data_ != nullptr) (void)cudaFreeHost(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  T* data() { return data_; }
  std::size_t capacity() const { return capacity_; }

 private:
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

/// An owned CUDA event without timing (marks a point in a stream that the host can wait for).
class Event {
 public:
  Event() { SGDWALK_CUDA_TRY(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~Event() {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(cudaStream_t stream) { SGDWALK_CUDA_TRY(cudaEventRecord(event_, stream)); }
  /// Waits until the stream reaches the recorded point (at once if never recorded).
  void wait() const { SGDWALK_CUDA_TRY(cudaEventSynchronize(event_)); }

 private:
  cudaEvent_t event_ = nullptr;
};

/// Copies between pageable host arrays (RunData's vectors) and device memory through two pinned
/// chunks: the DMA of one chunk overlaps the host memcpy of the other, at pinned bandwidth,
/// without pinning (or doubling) the whole host array.
class StagedCopier {
 public:
  static constexpr std::size_t kChunkBytes = std::size_t{16} << 20;

  /// Host → device; returns once the host array may be changed again (the last chunk is copied
  /// into pinned memory; the stream finishes the DMA on its own).
  void to_device(void* device, const void* host, std::size_t bytes, cudaStream_t stream) {
    prepare();
    const auto* source = static_cast<const unsigned char*>(host);
    auto* target = static_cast<unsigned char*>(device);
    std::size_t chunk = 0;
    for (std::size_t offset = 0; offset < bytes; offset += kChunkBytes, ++chunk) {
      const std::size_t length = std::min(kChunkBytes, bytes - offset);
      const std::size_t b = chunk % 2;
      done_[b].wait();  // the chunk's previous copy has left it
      std::memcpy(chunks_[b].data(), source + offset, length);
      SGDWALK_CUDA_TRY(cudaMemcpyAsync(target + offset, chunks_[b].data(), length,
                                       cudaMemcpyHostToDevice, stream));
      done_[b].record(stream);
    }
  }

  /// Device → host, handing each arrived piece to consume(byte offset, pointer, byte length) in
  /// order (the pointer is valid during the call only). Waits for everything before returning.
  template <class Consume>
  void to_host(const void* device, std::size_t bytes, cudaStream_t stream, Consume&& consume) {
    prepare();
    const auto* source = static_cast<const unsigned char*>(device);
    const std::size_t chunks = (bytes + kChunkBytes - 1) / kChunkBytes;
    for (std::size_t chunk = 0; chunk <= chunks; ++chunk) {
      if (chunk < chunks) {  // issue this chunk's DMA ...
        const std::size_t offset = chunk * kChunkBytes;
        const std::size_t b = chunk % 2;
        done_[b].wait();
        SGDWALK_CUDA_TRY(cudaMemcpyAsync(chunks_[b].data(), source + offset,
                                         std::min(kChunkBytes, bytes - offset),
                                         cudaMemcpyDeviceToHost, stream));
        done_[b].record(stream);
      }
      if (chunk >= 1) {  // ... while the previous one is handed over
        const std::size_t previous = chunk - 1;
        const std::size_t offset = previous * kChunkBytes;
        done_[previous % 2].wait();
        consume(offset, chunks_[previous % 2].data(), std::min(kChunkBytes, bytes - offset));
      }
    }
  }

  /// Device → host array.
  void to_host(void* host, const void* device, std::size_t bytes, cudaStream_t stream) {
    auto* target = static_cast<unsigned char*>(host);
    to_host(device, bytes, stream,
            [&](std::size_t offset, const unsigned char* piece, std::size_t length) {
              std::memcpy(target + offset, piece, length);
            });
  }

  void release() noexcept {
    chunks_[0].release();
    chunks_[1].release();
  }

 private:
  void prepare() {
    chunks_[0].ensure(kChunkBytes);
    chunks_[1].ensure(kChunkBytes);
  }
  PinnedBuffer<unsigned char> chunks_[2];
  Event done_[2];
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
