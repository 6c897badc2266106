// The CUDA backend's host side: typed physics from the host boundary (dispatch_physics, TypedRun),
// device buffers, launch planning and the copies back into RunData. Compiled by the host compiler
// with the same flags as the CPU backend, so every per-variant constant the kernels receive has
// the bits the CPU backend uses. Kernels are reached only through gpu::launch_advance.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "advance_kernel.hpp"
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "launch_plan.hpp"
#include "typed_run.hpp"

namespace sgdwalk {
namespace {

using gpu::DeviceBuffer;

std::string format_gib(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB",
                static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return text;
}

std::string device_line(int index, const cudaDeviceProp& p) {
  return "cuda:" + std::to_string(index) + " " + p.name + " (sm_" + std::to_string(p.major) +
         std::to_string(p.minor) + ", " + std::to_string(p.multiProcessorCount) + " SMs, " +
         format_gib(p.totalGlobalMem) + ")";
}

void check_tuning(const CudaTuning& t) {
  SGDWALK_EXPECTS(t.block_threads >= 32 && t.block_threads <= gpu::kMaxBlockThreads &&
                      t.block_threads % 32 == 0,
                  "block_threads must be a multiple of 32 in [32, 256]");
  SGDWALK_EXPECTS(t.max_samples_per_launch >= 1, "max_samples_per_launch must be at least 1");
  // Block-local histogram counters are 32-bit: 256 threads × 2^23 deposits < 2^32.
  SGDWALK_EXPECTS(t.max_steps_per_launch >= 1 && t.max_steps_per_launch <= (std::int64_t{1} << 23),
                  "max_steps_per_launch must be in [1, 2^23]");
  SGDWALK_EXPECTS(t.max_shared_histogram_bytes >= 0, "max_shared_histogram_bytes must be >= 0");
}

std::int64_t samples_per_launch(const RunPlan& plan, const CudaTuning& tuning) {
  return std::min<std::int64_t>(plan.sample_count(), tuning.max_samples_per_launch);
}

/// Device bytes per walker of a batch: its state (positions and y_freeze as double, as in
/// WalkerArrays) and one launch's sample values.
std::size_t bytes_per_walker(const RunPlan& plan, const CudaTuning& tuning) {
  const auto dim = static_cast<std::size_t>(plan.dim);
  const std::size_t state = dim * sizeof(double) + sizeof(double) + 3 * sizeof(std::int64_t) +
                            sizeof(std::int32_t) + sizeof(std::uint32_t);
  return state + 2 * sizeof(float) * static_cast<std::size_t>(samples_per_launch(plan, tuning));
}

int slots_per_variant(const RunPlan& plan) {
  int slots = 0;
  for (const auto& histogram : plan.histograms) slots += histogram.bin_count() + 1;
  return slots;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, const CudaTuning& tuning) : device_(device), tuning_(tuning) {
    check_tuning(tuning_);
    const CudaDeviceInfo info = cuda_devices();
    if (info.count == 0) {
      throw std::runtime_error("--backend cuda: no usable CUDA device (" + info.error + ")");
    }
    if (device < 0 || device >= info.count) {
      throw std::runtime_error("--backend cuda: device " + std::to_string(device) +
                               " does not exist; devices:\n" + info.description);
    }
    for (std::int64_t v : {0, 1, 77, 123456}) {
      for (std::int64_t w : {0, 1, 4095, 2000000000}) {
        if (gpu::walker_subsequence(v, w) != RunPlan::subsequence(v, w)) {
          throw std::logic_error("CUDA backend: walker_subsequence disagrees with RunPlan");
        }
      }
    }
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    SGDWALK_CUDA_TRY(cudaGetDeviceProperties(&props_, device_));
    try {
      (void)gpu::advance_kernel_attributes<float, DoubleWell<float>, NoiseKind::isotropic>();
    } catch (const gpu::CudaError& e) {
      throw std::runtime_error(
          "--backend cuda: this sgdwalk has no kernel image usable on " +
          device_line(device_, props_) + "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
          std::to_string(props_.major) + std::to_string(props_.minor) + " (" + e.what() + ")");
    }
    stream_ = std::make_unique<gpu::Stream>();
    description_ = "CUDA, " + device_line(device_, props_) + ", up to " +
                   std::to_string(tuning_.block_threads) + " threads per block";
  }

  ~CudaBackend() override {
    // Free on the right device; never throw from a destructor.
    (void)cudaSetDevice(device_);
  }

  std::string name() const override { return "cuda"; }
  std::string description() const override { return description_; }

  std::int64_t max_batch_walkers(const RunPlan& plan) const override {
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    std::size_t free_bytes = 0, total_bytes = 0;
    SGDWALK_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::size_t available = free_bytes + held_bytes();
    const auto variants = static_cast<std::size_t>(plan.variant_count());
    const auto samples = static_cast<std::size_t>(samples_per_launch(plan, tuning_));
    // Per-variant physics (< 256 bytes even for double Harmonic<3>), histogram and sample counters.
    const std::size_t fixed =
        variants *
            (256 + static_cast<std::size_t>(slots_per_variant(plan)) * sizeof(std::uint64_t) +
             2 * samples * sizeof(std::uint64_t)) +
        plan.histograms.size() * 256 + samples * sizeof(std::int64_t);
    const std::size_t reserve = (std::size_t{64} << 20) + total_bytes / 50;
    if (available <= fixed + reserve) return 1;
    const std::size_t fit = (available - fixed - reserve) / bytes_per_walker(plan, tuning_);
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::min<std::size_t>(
                                         fit, std::numeric_limits<std::int64_t>::max())));
  }

  void advance(const RunPlan& plan, std::int64_t first, std::int64_t last, std::int64_t step_begin,
               std::int64_t step_end, RunData& data) override {
    SGDWALK_EXPECTS(0 <= first && first <= last && last <= plan.total_walkers(),
                    "walker range outside the plan");
    SGDWALK_EXPECTS(0 <= step_begin && step_begin <= step_end, "bad step range");
    SGDWALK_EXPECTS(data.walkers.size() == plan.total_walkers() && data.walkers.dim == plan.dim &&
                        data.observables.samples == plan.sample_count() &&
                        data.observables.histogram_counts.size() == plan.histograms.size(),
                    "RunData is not sized for this plan (call data.resize(plan))");
    if (first == last || step_begin == step_end) return;
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    try {
      dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
        advance_typed<T, Landscape, Noise>(plan, first, last, step_begin, step_end, data);
      });
    } catch (const gpu::CudaOutOfMemory& e) {
      release_buffers();
      const std::int64_t fit = max_batch_walkers(plan);
      throw std::runtime_error(
          "CUDA backend: out of device memory for a batch of " + std::to_string(last - first) +
          " walkers on " + device_line(device_, props_) + " (" + e.what() +
          "); with this plan at most " + std::to_string(fit) +
          " walkers fit in one batch: set batch_walkers to at most that (0 lets sgdwalk choose)");
    }
  }

 private:
  template <class T, class Landscape, NoiseKind Noise>
  void advance_typed(const RunPlan& plan, std::int64_t first, std::int64_t last,
                     std::int64_t step_begin, std::int64_t step_end, RunData& data) {
    constexpr int D = Landscape::dim;
    const cudaStream_t stream = stream_->get();
    const std::int64_t n = last - first;
    const std::int64_t W = plan.walkers_per_variant;
    const gpu::LaunchGrid grid = gpu::plan_grid(first, last, W, tuning_.block_threads);
    SGDWALK_EXPECTS(grid.blocks <= std::numeric_limits<int>::max(), "batch too large for one grid");
    const std::int64_t v0 = grid.variant_begin;
    const std::int64_t nv = grid.variants;
    const auto un = static_cast<std::size_t>(n);
    const auto unv = static_cast<std::size_t>(nv);
    const TypedRun<T, Landscape> run(plan);

    // Histograms: per variant, every histogram's bins + 1 slots side by side.
    std::vector<gpu::DeviceHistogram<T>> histograms;
    int slots = 0;
    for (const auto& geometry : run.geometries) {
      SGDWALK_EXPECTS(geometry.every >= 1, "histogram 'every' must be at least 1");
      histograms.push_back({geometry, slots});
      slots += geometry.bin_count() + 1;
    }
    const bool shared_histograms = static_cast<std::size_t>(slots) * sizeof(std::uint32_t) <=
                                   static_cast<std::size_t>(tuning_.max_shared_histogram_bytes);

    // Kernel launches: bounded steps (32-bit block counters) and samples (device sample buffers).
    const std::vector<std::int64_t>& sample_steps = plan.sample_steps;
    const std::vector<gpu::LaunchSegment> segments =
        gpu::plan_segments(sample_steps, step_begin, step_end, tuning_.max_steps_per_launch,
                           tuning_.max_samples_per_launch);
    int launch_samples = 0;
    for (const auto& segment : segments)
      launch_samples = std::max(launch_samples, segment.sample_count);
    const auto uls = static_cast<std::size_t>(launch_samples);

    // Allocate everything before the first copy: running out of memory leaves `data` untouched.
    landscapes_.ensure(unv * sizeof(Landscape));
    params_.ensure(unv * sizeof(StepParams<T>));
    histograms_.ensure(histograms.size() * sizeof(gpu::DeviceHistogram<T>));
    histogram_counts_.ensure(unv * static_cast<std::size_t>(slots));
    position_.ensure(un * D);
    y_freeze_.ensure(un);
    freeze_step_.ensure(un);
    first_passage_step_.ensure(un);
    nonfinite_step_.ensure(un);
    basin_.ensure(un);
    crossings_.ensure(un);
    sample_progress_.ensure(uls * un);
    sample_loss_.ensure(uls * un);
    sample_counts_.ensure(2 * uls * unv);
    sample_steps_.ensure(uls);

    // Uploads (typed physics as computed by the host: the CPU backend's bits).
    const auto upload_bytes = [&](DeviceBuffer<unsigned char>& buffer, const void* host,
                                  std::size_t bytes) {
      buffer.upload(static_cast<const unsigned char*>(host), bytes, stream);
    };
    upload_bytes(landscapes_, run.landscapes.data() + v0, unv * sizeof(Landscape));
    upload_bytes(params_, run.params.data() + v0, unv * sizeof(StepParams<T>));
    upload_bytes(histograms_, histograms.data(),
                 histograms.size() * sizeof(gpu::DeviceHistogram<T>));
    histogram_counts_.zero(stream);
    WalkerArrays& walkers = data.walkers;
    const auto ufirst = static_cast<std::size_t>(first);
    position_.upload(walkers.position.data() + ufirst * D, un * D, stream);
    y_freeze_.upload(walkers.y_freeze.data() + ufirst, un, stream);
    freeze_step_.upload(walkers.freeze_step.data() + ufirst, un, stream);
    first_passage_step_.upload(walkers.first_passage_step.data() + ufirst, un, stream);
    nonfinite_step_.upload(walkers.nonfinite_step.data() + ufirst, un, stream);
    basin_.upload(walkers.basin.data() + ufirst, un, stream);
    crossings_.upload(walkers.crossings.data() + ufirst, un, stream);

    gpu::AdvanceArgs<T, Landscape> args{};
    args.landscapes = reinterpret_cast<const Landscape*>(landscapes_.data());
    args.params = reinterpret_cast<const StepParams<T>*>(params_.data());
    args.target = run.target;
    args.histograms = reinterpret_cast<const gpu::DeviceHistogram<T>*>(histograms_.data());
    args.histogram_count = static_cast<std::int32_t>(histograms.size());
    args.slots_per_variant = slots;
    args.shared_histograms = shared_histograms;
    args.seed = plan.seed;
    args.first = first;
    args.count = n;
    args.walkers_per_variant = W;
    args.variant_begin = v0;
    args.chunks_per_variant = grid.chunks_per_variant;
    args.walkers = gpu::DeviceWalkers{
        position_.data(),       y_freeze_.data(), freeze_step_.data(), first_passage_step_.data(),
        nonfinite_step_.data(), basin_.data(),    crossings_.data()};
    args.sample_steps = sample_steps_.data();
    args.sample_progress = sample_progress_.data();
    args.sample_loss = sample_loss_.data();
    args.histogram_counts = histogram_counts_.data();

    ObservableArrays& observables = data.observables;
    for (const gpu::LaunchSegment& segment : segments) {
      const int S = segment.sample_count;
      const std::int64_t sample_offset = segment.sample_offset;
      if (S > 0) {
        sample_steps_.upload(&sample_steps[static_cast<std::size_t>(sample_offset)],
                             static_cast<std::size_t>(S), stream);
        sample_counts_.ensure(2 * static_cast<std::size_t>(S) * unv);
        sample_counts_.zero(stream);
      }
      args.step_begin = segment.step_begin;
      args.step_end = segment.step_end;
      args.sample_count = S;
      args.sample_flat = sample_counts_.data();
      args.sample_finite = sample_counts_.data() + static_cast<std::size_t>(S) * unv;
      args.layout = gpu::make_shared_layout(sizeof(gpu::DeviceHistogram<T>), args.histogram_count,
                                            S, slots, shared_histograms);
      SGDWALK_EXPECTS(args.layout.bytes <= props_.sharedMemPerBlockOptin,
                      "too many histograms or samples for one block's shared memory");
      const gpu::LaunchShape shape{static_cast<unsigned int>(grid.blocks), grid.threads,
                                   args.layout.bytes};
      gpu::launch_advance<T, Landscape, Noise>(args, shape, stream);

      if (S > 0) {
        // Per-walker values [sample][local] and per-variant counters, back into ObservableArrays.
        const std::size_t values = static_cast<std::size_t>(S) * un;
        progress_stage_.resize(values);
        loss_stage_.resize(values);
        counts_stage_.resize(2 * static_cast<std::size_t>(S) * unv);
        sample_progress_.download(progress_stage_.data(), values, stream);
        sample_loss_.download(loss_stage_.data(), values, stream);
        sample_counts_.download(counts_stage_.data(), counts_stage_.size(), stream);
        stream_->synchronize();
        for (int s = 0; s < S; ++s) {
          const std::int64_t sample = sample_offset + s;
          for (std::int64_t v = v0; v < v0 + nv; ++v) {
            const std::int64_t g_lo = std::max(first, v * W);
            const std::int64_t g_hi = std::min(last, (v + 1) * W);
            const auto src =
                static_cast<std::size_t>(s) * un + static_cast<std::size_t>(g_lo - first);
            const std::size_t dst = observables.sample_index(v, sample, g_lo - v * W);
            const auto len = static_cast<std::size_t>(g_hi - g_lo);
            std::memcpy(&observables.sample_progress[dst], &progress_stage_[src],
                        len * sizeof(float));
            std::memcpy(&observables.sample_loss[dst], &loss_stage_[src], len * sizeof(float));
            const auto counter = static_cast<std::size_t>(v * observables.samples + sample);
            const auto local = static_cast<std::size_t>(v - v0) * static_cast<std::size_t>(S) +
                               static_cast<std::size_t>(s);
            observables.sample_flat[counter] += counts_stage_[local];
            observables.sample_finite[counter] +=
                counts_stage_[static_cast<std::size_t>(S) * unv + local];
          }
        }
      }
    }

    // Walker state and histogram counts back to the host.
    position_.download(walkers.position.data() + ufirst * D, un * D, stream);
    y_freeze_.download(walkers.y_freeze.data() + ufirst, un, stream);
    freeze_step_.download(walkers.freeze_step.data() + ufirst, un, stream);
    first_passage_step_.download(walkers.first_passage_step.data() + ufirst, un, stream);
    nonfinite_step_.download(walkers.nonfinite_step.data() + ufirst, un, stream);
    basin_.download(walkers.basin.data() + ufirst, un, stream);
    crossings_.download(walkers.crossings.data() + ufirst, un, stream);
    counts_stage_.resize(unv * static_cast<std::size_t>(slots));
    histogram_counts_.download(counts_stage_.data(), counts_stage_.size(), stream);
    stream_->synchronize();
    for (std::size_t h = 0; h < histograms.size(); ++h) {
      const auto bins = static_cast<std::size_t>(histograms[h].geometry.bin_count()) + 1;
      auto& target = observables.histogram_counts[h];
      for (std::size_t vl = 0; vl < unv; ++vl) {
        const std::size_t v = static_cast<std::size_t>(v0) + vl;
        for (std::size_t slot = 0; slot < bins; ++slot) {
          target[v * bins + slot] +=
              counts_stage_[vl * static_cast<std::size_t>(slots) +
                            static_cast<std::size_t>(histograms[h].base) + slot];
        }
      }
    }
  }

  std::size_t held_bytes() const {
    return landscapes_.capacity_bytes() + params_.capacity_bytes() + histograms_.capacity_bytes() +
           histogram_counts_.capacity_bytes() + position_.capacity_bytes() +
           y_freeze_.capacity_bytes() + freeze_step_.capacity_bytes() +
           first_passage_step_.capacity_bytes() + nonfinite_step_.capacity_bytes() +
           basin_.capacity_bytes() + crossings_.capacity_bytes() +
           sample_progress_.capacity_bytes() + sample_loss_.capacity_bytes() +
           sample_counts_.capacity_bytes() + sample_steps_.capacity_bytes();
  }

  void release_buffers() {
    landscapes_.release();
    params_.release();
    histograms_.release();
    histogram_counts_.release();
    position_.release();
    y_freeze_.release();
    freeze_step_.release();
    first_passage_step_.release();
    nonfinite_step_.release();
    basin_.release();
    crossings_.release();
    sample_progress_.release();
    sample_loss_.release();
    sample_counts_.release();
    sample_steps_.release();
  }

  int device_;
  CudaTuning tuning_;
  cudaDeviceProp props_{};
  std::string description_;
  std::unique_ptr<gpu::Stream> stream_;
  // Device buffers, reused across calls (grow-only).
  DeviceBuffer<unsigned char> landscapes_, params_, histograms_;
  DeviceBuffer<std::uint64_t> histogram_counts_;
  DeviceBuffer<double> position_, y_freeze_;
  DeviceBuffer<std::int64_t> freeze_step_, first_passage_step_, nonfinite_step_;
  DeviceBuffer<std::int32_t> basin_;
  DeviceBuffer<std::uint32_t> crossings_;
  DeviceBuffer<float> sample_progress_, sample_loss_;
  DeviceBuffer<std::uint64_t> sample_counts_;
  DeviceBuffer<std::int64_t> sample_steps_;
  // Host staging for the copies back.
  std::vector<float> progress_stage_, loss_stage_;
  std::vector<std::uint64_t> counts_stage_;
};

}  // namespace

CudaDeviceInfo cuda_devices() {
  CudaDeviceInfo info;
  try {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      info.error = gpu::cuda_error_text(status);
      (void)cudaGetLastError();
      return info;
    }
    if (count == 0) {
      info.error = "the CUDA runtime reports no device";
      return info;
    }
    for (int i = 0; i < count; ++i) {
      cudaDeviceProp props{};
      const cudaError_t s = cudaGetDeviceProperties(&props, i);
      if (s != cudaSuccess) {
        (void)cudaGetLastError();
        info.description += "cuda:" + std::to_string(i) + " (" + gpu::cuda_error_text(s) + ")\n";
        continue;
      }
      info.description += device_line(i, props) + "\n";
    }
    if (!info.description.empty()) info.description.pop_back();
    info.count = count;
  } catch (...) {
    info.count = 0;
    info.error = "querying CUDA devices failed";
  }
  return info;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return make_cuda_backend(device, CudaTuning{});
}

std::unique_ptr<Backend> make_cuda_backend(int device, const CudaTuning& tuning) {
  return std::make_unique<CudaBackend>(device, tuning);
}

}  // namespace sgdwalk
