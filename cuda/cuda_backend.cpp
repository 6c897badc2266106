// The CUDA backend's host side: typed physics from the host boundary (dispatch_physics, TypedRun),
// device buffers, launch planning and the copies back into RunData. Compiled by the host compiler
// with the same flags as the CPU backend, so every per-variant constant the kernels receive has
// the bits the CPU backend uses. Kernels are reached only through gpu::launch_advance.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "advance_kernel.hpp"
#include "analysis/statistics.hpp"
#include "analysis/tally_records.hpp"
#include "backend/physics_dispatch.hpp"
#include "backend/typed_run.hpp"
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "cuda_kernels.hpp"
#include "device_buffer.hpp"
#include "ffs_cuda.hpp"
#include "launch_plan.hpp"
#include "tally_reducer.hpp"

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
  const std::size_t state =
      (dim + static_cast<std::size_t>(plan.optimizer_state_width())) * sizeof(double) +
      sizeof(double) + 3 * sizeof(std::int64_t) + sizeof(std::int32_t) + sizeof(std::uint32_t);
  return state + 2 * sizeof(float) * static_cast<std::size_t>(samples_per_launch(plan, tuning));
}

/// A launch of a run with per-step constants (a schedule, or Adam's bias correction) reads them
/// from a table of every step of every variant of the batch, filled by the host: launches are
/// shortened so that it holds at most kStepTableEntries, but never below kMinStepTableSteps steps
/// (so a sweep of more than 65536 variants has a table of 16 steps per variant, not a launch per
/// step).
constexpr std::int64_t kStepTableEntries = std::int64_t{1} << 20;
constexpr std::int64_t kMinStepTableSteps = 16;

/// Steps per launch of a batch of `variants` variants with a step table.
std::int64_t step_table_steps(std::int64_t variants, const CudaTuning& tuning) {
  return std::min(
      tuning.max_steps_per_launch,
      std::max(kMinStepTableSteps, kStepTableEntries / std::max<std::int64_t>(variants, 1)));
}

/// Whether some variant of the plan has per-step constants (StepSchedule::per_step, the rule the
/// advance uses: a schedule, or Adam's bias correction).
bool needs_step_table(const RunPlan& plan) {
  return std::any_of(plan.variants.begin(), plan.variants.end(), [&](const Variant& variant) {
    return make_step_schedule(plan, variant).per_step;
  });
}

/// Device bytes of one entry of the step table (a step of a variant); 0 without per-step
/// constants (no table).
std::size_t step_table_entry_bytes(const RunPlan& plan) {
  if (!needs_step_table(plan)) return 0;
  return plan.precision == Precision::f32 ? sizeof(StepParams<float>) : sizeof(StepParams<double>);
}

int slots_per_variant(const RunPlan& plan) {
  int slots = 0;
  for (const auto& histogram : plan.histograms) slots += histogram.bin_count() + 1;
  return slots;
}

/// Adds the wall time of a scope of copies, from a synchronised stream to a synchronised stream,
/// to TransferStats::seconds (so kernel time before it is not counted as copying).
class TransferTimer {
 public:
  TransferTimer(TransferStats& stats, const gpu::Stream& stream) : stats_(stats), stream_(stream) {
    stream_.synchronize();
    start_ = std::chrono::steady_clock::now();
  }
  ~TransferTimer() {
    (void)cudaStreamSynchronize(stream_.get());
    stats_.seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  TransferTimer(const TransferTimer&) = delete;
  TransferTimer& operator=(const TransferTimer&) = delete;

 private:
  TransferStats& stats_;
  const gpu::Stream& stream_;
  std::chrono::steady_clock::time_point start_;
};

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
      (void)gpu::advance_kernel_attributes<float, gpu::ProbeLandscape, NoiseKind::isotropic>();
    } catch (const gpu::CudaError& e) {
      throw std::runtime_error(
          "--backend cuda: this sgdwalk has no kernel image usable on " +
          device_line(device_, props_) + "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
          std::to_string(props_.major) + std::to_string(props_.minor) + " (" + e.what() + ")");
    }
    stream_ = std::make_unique<gpu::Stream>();
    staging_ = std::make_unique<gpu::StagedCopier>();
    description_ = "CUDA, " + device_line(device_, props_) + ", up to " +
                   std::to_string(tuning_.block_threads) + " threads per block";
  }

  ~CudaBackend() override {
    // Free on the right device; never throw from a destructor.
    (void)cudaSetDevice(device_);
  }

  std::string name() const override { return "cuda"; }
  TransferStats transfers() const override { return transfers_; }
  std::string description() const override { return description_; }

  std::int64_t max_batch_walkers(const RunPlan& plan) const override {
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    std::size_t free_bytes = 0, total_bytes = 0;
    SGDWALK_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::size_t available = free_bytes + held_bytes();
    const auto samples = static_cast<std::size_t>(samples_per_launch(plan, tuning_));
    gpu::BatchMemory memory;
    memory.per_walker = bytes_per_walker(plan, tuning_);
    // Per-variant physics (two copies of the landscape, StepParams and StableParams: 296 bytes for
    // double two_valley, 264 for double Harmonic<3>, sizes measured on the host), histogram and
    // sample counters.
    memory.per_variant = 512 +
                         static_cast<std::size_t>(slots_per_variant(plan)) * sizeof(std::uint64_t) +
                         2 * samples * sizeof(std::uint64_t);
    memory.once = plan.histograms.size() * 256 + samples * sizeof(std::int64_t) +
                  gpu::TallyReducer::device_bytes();
    // The step table of nv variants holds nv · step_table_steps(nv) ≤ max(kStepTableEntries,
    // kMinStepTableSteps · nv) entries: a shared part and kMinStepTableSteps rows per variant.
    if (const std::size_t entry = step_table_entry_bytes(plan); entry > 0) {
      memory.once += static_cast<std::size_t>(kStepTableEntries) * entry;
      memory.per_variant += static_cast<std::size_t>(kMinStepTableSteps) * entry;
    }
    const std::size_t reserve = (std::size_t{64} << 20) + total_bytes / 50;
    const std::int64_t fit =
        gpu::batch_walkers_that_fit(memory, available > reserve ? available - reserve : 0,
                                    plan.walkers_per_variant, plan.variant_count());
    if (fit < 1) {
      throw std::runtime_error(
          "CUDA backend: the free memory of " + device_line(device_, props_) + " (" +
          std::to_string(available >> 20) + " MiB, " + std::to_string(reserve >> 20) +
          " MiB kept in reserve) does not hold a batch of one walker of this run (" +
          std::to_string(memory.per_walker) + " bytes per walker, " +
          std::to_string(memory.per_variant) + " per variant, " + std::to_string(memory.once) +
          " once); run it with --backend cpu, or with fewer histograms and sample steps");
    }
    return fit;
  }

  void advance(const RunPlan& plan, std::int64_t first, std::int64_t last, std::int64_t step_begin,
               std::int64_t step_end, RunData& data) override {
    SGDWALK_EXPECTS(0 <= first && first <= last && last <= plan.total_walkers(),
                    "walker range outside the plan");
    SGDWALK_EXPECTS(0 <= step_begin && step_begin <= step_end, "bad step range");
    SGDWALK_EXPECTS(data.walkers.holds(first, last) && data.walkers.dim == plan.dim &&
                        data.walkers.state_width == plan.optimizer_state_width() &&
                        data.observables.first == data.walkers.first &&
                        data.observables.samples == plan.sample_count() &&
                        data.observables.histogram_counts.size() == plan.histograms.size(),
                    "RunData is not sized for this plan (call data.resize(plan))");
    if (first == last || step_begin == step_end) return;
    const bool resident =
        batch_.open && batch_.plan == &plan && batch_.first == first && batch_.last == last;
    if (batch_.open && !resident) {
      throw std::logic_error("CUDA backend: advance() of walkers [" + std::to_string(first) + ", " +
                             std::to_string(last) + ") while the batch [" +
                             std::to_string(batch_.first) + ", " + std::to_string(batch_.last) +
                             ") is open (end_batch() first)");
    }
    if (resident && step_begin != batch_.step) {
      throw std::logic_error("CUDA backend: the open batch is at step " +
                             std::to_string(batch_.step) + ", not " + std::to_string(step_begin));
    }
    if (!resident) fresh_ = {};  // advance() of host data: begin_batch() must upload it
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    try {
      dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
        if constexpr (gpu::kHasKernels<Landscape>) {
          advance_typed<T, Landscape, Noise>(plan, first, last, step_begin, step_end, resident,
                                             data);
        } else {
          throw gpu::no_kernels_error(plan.landscape, plan.dim);
        }
      });
    } catch (const gpu::CudaOutOfMemory& e) {
      batch_ = {};
      throw out_of_memory(plan, last - first, e);
    } catch (...) {
      batch_ = {};  // the device state is no longer trustworthy
      throw;
    }
    if (resident) {
      batch_.step = step_end;
      batch_.host_current = false;
    }
  }

  void begin_batch(const RunPlan& plan, std::int64_t first, std::int64_t last, std::int64_t step,
                   const RunData& data) override {
    SGDWALK_EXPECTS(0 <= first && first <= last && last <= plan.total_walkers(),
                    "walker range outside the plan");
    SGDWALK_EXPECTS(data.walkers.holds(first, last) && data.walkers.dim == plan.dim &&
                        data.walkers.state_width == plan.optimizer_state_width(),
                    "RunData does not hold the batch's walkers");
    // A batch still open belongs to a driver that an exception interrupted: let it go.
    batch_ = {};
    if (first == last) return;
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    const auto n = static_cast<std::size_t>(last - first);
    try {
      // Everything advance() will need for this batch, so running out of memory happens here,
      // before any state moved.
      ensure_walker_buffers(n, plan.dim, plan.optimizer_state_width());
      const auto samples = static_cast<std::size_t>(samples_per_launch(plan, tuning_));
      sample_progress_.ensure(samples * n);
      sample_loss_.ensure(samples * n);
    } catch (const gpu::CudaOutOfMemory& e) {
      throw out_of_memory(plan, last - first, e);
    }
    const bool fresh =
        step == 0 && fresh_.plan == &plan && fresh_.first == first && fresh_.last == last;
    fresh_ = {};
    if (fresh) {
      // The walkers' initial state is a function of the plan: computed on the device, not copied.
      try {
        dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind>() {
          if constexpr (gpu::kHasKernels<Landscape>) {
            initialize_on_device<T, Landscape>(plan, first, last);
          } else {
            throw gpu::no_kernels_error(plan.landscape, plan.dim);
          }
        });
      } catch (const gpu::CudaOutOfMemory& e) {
        throw out_of_memory(plan, last - first, e);
      }
    } else {
      upload_walkers(data.walkers, first, n);
    }
    batch_ = {true, &plan, first, last, step, true};
  }

  void initialize(const RunPlan& plan, std::int64_t first, std::int64_t last,
                  RunData& data) override {
    // The host computes the step-0 observables (and the walkers, for whoever reads `data`); a
    // begin_batch() of this range at step 0 then builds the same state on the device.
    initialize_walkers(plan, first, last, data);
    fresh_ = {&plan, first, last};
  }

  bool reduce_and_end_batch(const RunPlan& plan, RunData& data) override {
    if (!batch_.open || batch_.plan != &plan || batch_.step != plan.steps) return false;
    const std::int64_t n = batch_.last - batch_.first;
    // The records' integer sums are exact for trackers below 2^44 (steps bound them all).
    if (plan.steps + 1 >= tally::kIntegerLimit) return false;
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    const std::int64_t W = plan.walkers_per_variant;
    std::vector<std::int64_t> first_nonfinite;
    std::vector<tally::Run> runs;
    try {
      runs = reducer_.reduce_trackers(device_walkers(), batch_.first, n, W, batch_.first / W,
                                      plan.passage.kind != PassageKind::none, plan.steps,
                                      first_nonfinite, stream_->get());
    } catch (const gpu::CudaOutOfMemory&) {
      reducer_.release();  // no room for the reduction: the driver copies the walkers instead
      return false;
    }
    add_tracker_runs(runs.data(), runs.size(), batch_.first, batch_.last, W, first_nonfinite,
                     data.tallies);
    transfers_.reduced_bytes_to_host += runs.size() * sizeof(tally::Run);
    batch_ = {};
    return true;
  }

  void sync_walkers(const RunPlan& plan, RunData& data) override {
    if (!batch_.open || batch_.host_current) return;
    SGDWALK_EXPECTS(batch_.plan == &plan, "sync_walkers() with another plan than the open batch");
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    download_walkers(data.walkers, batch_.first,
                     static_cast<std::size_t>(batch_.last - batch_.first));
    batch_.host_current = true;
  }

  // An FFS stage holds all its walkers or trials on the device at once (one launch: see
  // ffs_cuda.cpp); one that does not fit is refused saying which keys set its size.
  void run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch) override {
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    try {
      cuda_run_ffs_flux(plan, step_end, batch, stream_->get());
    } catch (const gpu::CudaOutOfMemory& e) {
      throw ffs_out_of_memory("flux stage of " + std::to_string(batch.size()) +
                                  " walkers, each with room for " + std::to_string(batch.capacity) +
                                  " crossing states",
                              "run.walkers", e);
    }
  }
  void run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch) override {
    SGDWALK_CUDA_TRY(cudaSetDevice(device_));
    try {
      cuda_run_ffs_trials(plan, batch, stream_->get());
    } catch (const gpu::CudaOutOfMemory& e) {
      throw ffs_out_of_memory("stage of " + std::to_string(batch.size()) + " trials (" +
                                  std::to_string(batch.trials_per_variant) + " per variant)",
                              "rare_event.trials (and rare_event.placement_trials)", e);
    }
  }

  void end_batch(const RunPlan& plan, RunData& data) override {
    sync_walkers(plan, data);
    batch_ = {};
  }

 private:
  std::runtime_error out_of_memory(const RunPlan& plan, std::int64_t walkers,
                                   const gpu::CudaOutOfMemory& e) {
    release_buffers();
    const std::int64_t fit = max_batch_walkers(plan);
    return std::runtime_error(
        "CUDA backend: out of device memory for a batch of " + std::to_string(walkers) +
        " walkers on " + device_line(device_, props_) + " (" + e.what() +
        "); with this plan at most " + std::to_string(fit) +
        " walkers fit in one batch: set batch_walkers to at most that (0 lets sgdwalk choose)");
  }

  std::runtime_error ffs_out_of_memory(const std::string& stage, const std::string& keys,
                                       const gpu::CudaOutOfMemory& e) {
    return std::runtime_error("CUDA backend: out of device memory for forward flux sampling's " +
                              stage + " on " + device_line(device_, props_) + " (" + e.what() +
                              "): lower " + keys +
                              ", run fewer sweep variants per job, or run with --backend cpu");
  }

  gpu::DeviceWalkers device_walkers() {
    return gpu::DeviceWalkers{
        position_.data(),           y_freeze_.data(),        freeze_step_.data(),
        first_passage_step_.data(), nonfinite_step_.data(),  basin_.data(),
        crossings_.data(),          optimizer_state_.data(), state_width_};
  }

  /// Walkers [first, last) at step 0 into the device buffers (sized before), with the host's
  /// typed physics.
  template <class T, class Landscape>
  void initialize_on_device(const RunPlan& plan, std::int64_t first, std::int64_t last) {
    const cudaStream_t stream = stream_->get();
    const std::int64_t W = plan.walkers_per_variant;
    const std::int64_t v0 = first / W;
    const auto nv = static_cast<std::size_t>((last - 1) / W + 1 - v0);
    // The batch's variants only (a sweep of many variants would build them all per call).
    const TypedRun<T, Landscape> run(plan, v0, v0 + static_cast<std::int64_t>(nv));
    std::vector<double> starts;
    for (const auto& start : plan.initial_positions) {
      SGDWALK_EXPECTS(static_cast<int>(start.size()) == Landscape::dim,
                      "initial position of the wrong dimension");
      starts.insert(starts.end(), start.begin(), start.end());
    }
    SGDWALK_EXPECTS(!starts.empty(), "no initial positions");
    init_landscapes_.ensure(nv * sizeof(Landscape));
    init_starts_.ensure(starts.size());
    init_landscapes_.upload(reinterpret_cast<const unsigned char*>(&run.landscape(v0)),
                            nv * sizeof(Landscape), stream);
    init_starts_.upload(starts.data(), starts.size(), stream);
    gpu::InitializeArgs<T, Landscape> args{};
    args.landscapes = reinterpret_cast<const Landscape*>(init_landscapes_.data());
    args.target = run.target;
    args.starts = init_starts_.data();
    args.start_count = static_cast<std::int64_t>(plan.initial_positions.size());
    args.first = first;
    args.count = last - first;
    args.walkers_per_variant = W;
    args.variant_begin = v0;
    args.walkers = device_walkers();
    gpu::launch_initialize<T, Landscape>(args, stream);
  }

  void ensure_walker_buffers(std::size_t n, int dim, int state_width) {
    state_width_ = state_width;
    optimizer_state_.ensure(n * static_cast<std::size_t>(state_width));
    position_.ensure(n * static_cast<std::size_t>(dim));
    y_freeze_.ensure(n);
    freeze_step_.ensure(n);
    first_passage_step_.ensure(n);
    nonfinite_step_.ensure(n);
    basin_.ensure(n);
    crossings_.ensure(n);
  }

  /// Walker state [first, first + n) of `walkers` into the device buffers (sized before).
  void upload_walkers(const WalkerArrays& walkers, std::int64_t first, std::size_t n) {
    const TransferTimer timer(transfers_, *stream_);
    const cudaStream_t stream = stream_->get();
    const auto f = walkers.at(first);  // the batch arrays hold walkers from walkers.first
    const auto D = static_cast<std::size_t>(walkers.dim);
    const auto up = [&](auto& buffer, const auto* host, std::size_t count) {
      staging_->to_device(buffer.data(), host, count * sizeof(*host), stream);
      transfers_.bytes_to_device += count * sizeof(*host);
    };
    up(position_, walkers.position.data() + f * D, n * D);
    up(y_freeze_, walkers.y_freeze.data() + f, n);
    up(freeze_step_, walkers.freeze_step.data() + f, n);
    up(first_passage_step_, walkers.first_passage_step.data() + f, n);
    up(nonfinite_step_, walkers.nonfinite_step.data() + f, n);
    up(basin_, walkers.basin.data() + f, n);
    up(crossings_, walkers.crossings.data() + f, n);
    const auto width = static_cast<std::size_t>(walkers.state_width);
    if (width > 0) up(optimizer_state_, walkers.optimizer_state.data() + f * width, n * width);
  }

  /// The device's walker state back into [first, first + n) of `walkers`.
  void download_walkers(WalkerArrays& walkers, std::int64_t first, std::size_t n) {
    const TransferTimer timer(transfers_, *stream_);
    const cudaStream_t stream = stream_->get();
    const auto f = walkers.at(first);  // the batch arrays hold walkers from walkers.first
    const auto D = static_cast<std::size_t>(walkers.dim);
    const auto down = [&](const auto& buffer, auto* host, std::size_t count) {
      staging_->to_host(host, buffer.data(), count * sizeof(*host), stream);
      transfers_.bytes_to_host += count * sizeof(*host);
    };
    down(position_, walkers.position.data() + f * D, n * D);
    down(y_freeze_, walkers.y_freeze.data() + f, n);
    down(freeze_step_, walkers.freeze_step.data() + f, n);
    down(first_passage_step_, walkers.first_passage_step.data() + f, n);
    down(nonfinite_step_, walkers.nonfinite_step.data() + f, n);
    down(basin_, walkers.basin.data() + f, n);
    down(crossings_, walkers.crossings.data() + f, n);
    const auto width = static_cast<std::size_t>(walkers.state_width);
    if (width > 0) down(optimizer_state_, walkers.optimizer_state.data() + f * width, n * width);
  }

  /// advance() for one physics; `resident`: the walker state already is on the device (the open
  /// batch) and stays there, otherwise it is copied up first and back at the end.
  template <class T, class Landscape, NoiseKind Noise>
  void advance_typed(const RunPlan& plan, std::int64_t first, std::int64_t last,
                     std::int64_t step_begin, std::int64_t step_end, bool resident, RunData& data) {
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
    // The batch's variants only (a sweep of many variants would build them all per call).
    const TypedRun<T, Landscape> run(plan, v0, v0 + nv);

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
    // Scheduled constants come from a per-launch table of every step (step_table); launches are
    // shortened to step_table_steps so that it holds at most kStepTableEntries entries.
    bool per_step = false;
    for (std::size_t v = 0; v < unv; ++v) {
      per_step = per_step || run.schedule(v0 + static_cast<std::int64_t>(v)).per_step;
    }
    // Plain SGD with constant constants runs the SGD kernel (its step loop reads no memory);
    // every other optimizer, and SGD with a schedule, the stateful kernel (UpdateRule::any: the
    // optimizer a run-time switch, the step's constants read through a pointer of stride 0 or 1,
    // docs/CUDA.md "Optimizers").
    const bool stateful = plan.optimizer != OptimizerKind::sgd || per_step;
    const std::int64_t max_steps =
        per_step ? step_table_steps(nv, tuning_) : tuning_.max_steps_per_launch;
    const std::vector<gpu::LaunchSegment> segments = gpu::plan_segments(
        sample_steps, step_begin, step_end, max_steps, tuning_.max_samples_per_launch);
    std::vector<StepParams<T>> step_table;
    int launch_samples = 0;
    std::int64_t launch_steps = 0;
    for (const auto& segment : segments) {
      launch_samples = std::max(launch_samples, segment.sample_count);
      launch_steps = std::max(launch_steps, segment.step_end - segment.step_begin);
    }
    const auto uls = static_cast<std::size_t>(launch_samples);

    // Checked before anything runs (the launches' layouts hold at most launch_samples samples):
    // a launch that cannot start must not come after others that already counted into `data`.
    SGDWALK_EXPECTS(gpu::make_shared_layout(sizeof(gpu::DeviceHistogram<T>),
                                            static_cast<std::int32_t>(histograms.size()),
                                            launch_samples, slots, shared_histograms)
                            .bytes <= props_.sharedMemPerBlockOptin,
                    "too many histograms or samples for one block's shared memory");
    // Allocate everything before the first copy: running out of memory leaves `data` untouched.
    landscapes_.ensure(unv * sizeof(Landscape));
    params_.ensure(unv * sizeof(StepParams<T>));
    stable_.ensure(unv * sizeof(StableParams<T>));
    histograms_.ensure(histograms.size() * sizeof(gpu::DeviceHistogram<T>));
    histogram_counts_.ensure(unv * static_cast<std::size_t>(slots));
    if (!resident)
      ensure_walker_buffers(
          un, D, plan.optimizer_state_width());  // resident: sized (and filled) by begin_batch
    sample_progress_.ensure(uls * un);
    sample_loss_.ensure(uls * un);
    sample_counts_.ensure(2 * uls * unv);
    sample_steps_.ensure(uls);
    if (per_step)
      step_table_.ensure(unv * static_cast<std::size_t>(launch_steps) * sizeof(StepParams<T>));

    // Uploads (typed physics as computed by the host: the CPU backend's bits).
    const auto upload_bytes = [&](DeviceBuffer<unsigned char>& buffer, const void* host,
                                  std::size_t bytes) {
      buffer.upload(static_cast<const unsigned char*>(host), bytes, stream);
    };
    upload_bytes(landscapes_, &run.landscape(v0), unv * sizeof(Landscape));
    upload_bytes(params_, &run.step_params(v0), unv * sizeof(StepParams<T>));
    upload_bytes(stable_, &run.stable_params(v0), unv * sizeof(StableParams<T>));
    upload_bytes(histograms_, histograms.data(),
                 histograms.size() * sizeof(gpu::DeviceHistogram<T>));
    histogram_counts_.zero(stream);
    if (!resident) upload_walkers(data.walkers, first, un);

    gpu::AdvanceArgs<T, Landscape> args{};
    args.landscapes = reinterpret_cast<const Landscape*>(landscapes_.data());
    args.params = reinterpret_cast<const StepParams<T>*>(params_.data());
    args.stable = reinterpret_cast<const StableParams<T>*>(stable_.data());
    args.step_table = nullptr;
    args.table_steps = 0;
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
    args.walkers = device_walkers();
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
      if (per_step) {
        const std::int64_t length = segment.step_end - segment.step_begin;
        step_table.resize(unv * static_cast<std::size_t>(length));
        // Up to kStepTableEntries entries of a few hundred nanoseconds each (binary powers), on
        // the host before every launch: on one thread that was several times the launch itself
        // for sweeps of a few thousand walkers per variant. Each entry is a pure function of its
        // step, so the threads change no bit.
        const auto entries = static_cast<std::int64_t>(step_table.size());
#pragma omp parallel for schedule(static) if (entries >= 4096)
        for (std::int64_t e = 0; e < entries; ++e) {
          const auto v = static_cast<std::size_t>(e / length);
          const StepSchedule& schedule = run.schedule(v0 + static_cast<std::int64_t>(v));
          step_table[static_cast<std::size_t>(e)] =
              step_params_at<T>(schedule, segment.step_begin + 1 + e % length);
        }
        upload_bytes(step_table_, step_table.data(), step_table.size() * sizeof(StepParams<T>));
        args.step_table = reinterpret_cast<const StepParams<T>*>(step_table_.data());
        args.table_steps = length;
      }
      args.sample_count = S;
      args.sample_flat = sample_counts_.data();
      args.sample_finite = sample_counts_.data() + static_cast<std::size_t>(S) * unv;
      args.layout = gpu::make_shared_layout(sizeof(gpu::DeviceHistogram<T>), args.histogram_count,
                                            S, slots, shared_histograms);
      const gpu::LaunchShape shape{static_cast<unsigned int>(grid.blocks), grid.threads,
                                   args.layout.bytes};
      const auto launch = [&]<UpdateRule R>() {
        if (plan.noise_distribution == NoiseDistribution::alpha_stable) {
          gpu::launch_advance<T, Landscape, Noise, NoiseDistribution::alpha_stable, R>(args, shape,
                                                                                       stream);
        } else {
          gpu::launch_advance<T, Landscape, Noise, NoiseDistribution::gaussian, R>(args, shape,
                                                                                   stream);
        }
      };
      if (stateful) {
        launch.template operator()<UpdateRule::any>();
      } else {
        launch.template operator()<UpdateRule::sgd>();
      }

      if (S > 0) {
        // Each sample's values are reduced on the device into exact tallies (only the runs of
        // equal record keys come back), then the per-variant counters.
        for (int s = 0; s < S; ++s) {
          const auto offset = static_cast<std::size_t>(s) * un;
          const std::vector<tally::Run> runs =
              reducer_.reduce_samples(sample_progress_.data() + offset,
                                      sample_loss_.data() + offset, first, n, W, v0, stream);
          add_sample_runs(runs.data(), runs.size(), v0, sample_offset + s, plan.sample_count(),
                          data.tallies);
          transfers_.reduced_bytes_to_host += runs.size() * sizeof(tally::Run);
        }
        const TransferTimer timer(transfers_, *stream_);
        // Per-walker values [sample][local] only when asked for, straight from the pinned chunks
        // into their places in ObservableArrays ([variant][sample][walker]).
        const std::size_t values =
            tuning_.copy_sample_values ? static_cast<std::size_t>(S) * un : 0;
        transfers_.bytes_to_host += 2 * values * sizeof(float);
        const auto scatter = [&](std::vector<float>& target) {
          return [&, target_data = target.data()](std::size_t byte_offset,
                                                  const unsigned char* piece, std::size_t bytes) {
            std::size_t index = byte_offset / sizeof(float);
            std::size_t left = bytes / sizeof(float);
            const auto* value = reinterpret_cast<const float*>(piece);
            while (left > 0) {
              const std::size_t s = index / un, local = index % un;
              const std::int64_t g = first + static_cast<std::int64_t>(local);
              const std::int64_t v = g / W;
              const std::size_t run =
                  std::min({left, un - local, static_cast<std::size_t>((v + 1) * W - g)});
              const std::size_t dst = observables.sample_index(
                  v, sample_offset + static_cast<std::int64_t>(s), g - v * W);
              std::memcpy(target_data + dst, value, run * sizeof(float));
              value += run;
              index += run;
              left -= run;
            }
          };
        };
        if (values > 0) {
          staging_->to_host(sample_progress_.data(), values * sizeof(float), stream,
                            scatter(observables.sample_progress));
          staging_->to_host(sample_loss_.data(), values * sizeof(float), stream,
                            scatter(observables.sample_loss));
        }
        counts_stage_.ensure(2 * static_cast<std::size_t>(S) * unv);
        sample_counts_.download(counts_stage_.data(), 2 * static_cast<std::size_t>(S) * unv,
                                stream);
        stream_->synchronize();
        for (int s = 0; s < S; ++s) {
          const std::int64_t sample = sample_offset + s;
          for (std::int64_t v = v0; v < v0 + nv; ++v) {
            const auto counter = static_cast<std::size_t>(v * observables.samples + sample);
            const auto local = static_cast<std::size_t>(v - v0) * static_cast<std::size_t>(S) +
                               static_cast<std::size_t>(s);
            observables.sample_flat[counter] += counts_stage_.data()[local];
            observables.sample_finite[counter] +=
                counts_stage_.data()[static_cast<std::size_t>(S) * unv + local];
          }
        }
      }
    }

    // Histogram counts (per variant, small) back to the host; walker state only when it is not
    // resident.
    if (!resident) download_walkers(data.walkers, first, un);
    counts_stage_.ensure(unv * static_cast<std::size_t>(slots));
    histogram_counts_.download(counts_stage_.data(), unv * static_cast<std::size_t>(slots), stream);
    stream_->synchronize();
    for (std::size_t h = 0; h < histograms.size(); ++h) {
      const auto bins = static_cast<std::size_t>(histograms[h].geometry.bin_count()) + 1;
      auto& target = observables.histogram_counts[h];
      for (std::size_t vl = 0; vl < unv; ++vl) {
        const std::size_t v = static_cast<std::size_t>(v0) + vl;
        for (std::size_t slot = 0; slot < bins; ++slot) {
          target[v * bins + slot] +=
              counts_stage_.data()[vl * static_cast<std::size_t>(slots) +
                                   static_cast<std::size_t>(histograms[h].base) + slot];
        }
      }
    }
  }

  std::size_t held_bytes() const {
    return landscapes_.capacity_bytes() + params_.capacity_bytes() + stable_.capacity_bytes() +
           step_table_.capacity_bytes() + optimizer_state_.capacity_bytes() +
           histograms_.capacity_bytes() + histogram_counts_.capacity_bytes() +
           position_.capacity_bytes() + y_freeze_.capacity_bytes() + freeze_step_.capacity_bytes() +
           first_passage_step_.capacity_bytes() + nonfinite_step_.capacity_bytes() +
           basin_.capacity_bytes() + crossings_.capacity_bytes() +
           sample_progress_.capacity_bytes() + sample_loss_.capacity_bytes() +
           sample_counts_.capacity_bytes() + sample_steps_.capacity_bytes() +
           init_landscapes_.capacity_bytes() + init_starts_.capacity_bytes() +
           reducer_.held_bytes();
  }

  void release_buffers() {
    landscapes_.release();
    params_.release();
    stable_.release();
    step_table_.release();
    optimizer_state_.release();
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
    init_landscapes_.release();
    init_starts_.release();
    reducer_.release();
    staging_->release();
    counts_stage_.release();
    batch_ = {};
  }

  /// The batch the driver opened with begin_batch(): its walker state lives in the device buffers.
  struct ResidentBatch {
    bool open = false;
    const RunPlan* plan = nullptr;
    std::int64_t first = 0, last = 0;
    std::int64_t step = 0;     ///< the step the device state has reached
    bool host_current = true;  ///< RunData holds the same state (synced, or not advanced yet)
  };

  int device_;
  CudaTuning tuning_;
  cudaDeviceProp props_{};
  std::string description_;
  std::unique_ptr<gpu::Stream> stream_;
  // Device buffers, reused across calls (grow-only).
  DeviceBuffer<unsigned char> landscapes_, params_, stable_, step_table_, histograms_;
  DeviceBuffer<std::uint64_t> histogram_counts_;
  DeviceBuffer<double> position_, y_freeze_;
  DeviceBuffer<double> optimizer_state_;  ///< [local · state_width_ + j]
  int state_width_ = 0;
  DeviceBuffer<std::int64_t> freeze_step_, first_passage_step_, nonfinite_step_;
  DeviceBuffer<std::int32_t> basin_;
  DeviceBuffer<std::uint32_t> crossings_;
  DeviceBuffer<float> sample_progress_, sample_loss_;
  DeviceBuffer<std::uint64_t> sample_counts_;
  DeviceBuffer<std::int64_t> sample_steps_;
  DeviceBuffer<unsigned char> init_landscapes_;
  DeviceBuffer<double> init_starts_;
  gpu::TallyReducer reducer_;
  // Host staging: pinned chunks for the walker state and sample values, pinned counters.
  std::unique_ptr<gpu::StagedCopier> staging_;
  gpu::PinnedBuffer<std::uint64_t> counts_stage_;
  ResidentBatch batch_;
  /// The range initialize() last put at step 0 (its state is a function of the plan).
  struct FreshRange {
    const RunPlan* plan = nullptr;
    std::int64_t first = 0, last = 0;
  } fresh_;
  TransferStats transfers_;
};

}  // namespace

CudaDeviceInfo cuda_devices() {
  CudaDeviceInfo info;
  try {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      // The two everyday reasons in plain words (a machine without a GPU, or without a driver);
      // anything else with the runtime's own name for it.
      if (status == cudaErrorNoDevice) {
        info.error = "no GPU found";
      } else if (status == cudaErrorInsufficientDriver) {
        info.error = "no NVIDIA driver, or one older than this build's CUDA runtime";
      } else {
        info.error = gpu::cuda_error_text(status);
      }
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
