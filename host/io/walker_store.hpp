// Where finished walkers go when a run keeps them (per_walker = true, or a caller that asks): the
// driver writes each batch when it finishes and reuses the batch arrays, so a run never holds the
// whole ensemble in its batch arrays. results.h5's per-walker datasets are read back from here in
// slabs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/plan.hpp"
#include "backend/run_data.hpp"

namespace sgdwalk {

class WalkerStore {
 public:
  virtual ~WalkerStore() = default;
  /// Stores walkers [first, last), held by `batch`, which have reached the last step.
  virtual void write(const WalkerArrays& batch, std::int64_t first, std::int64_t last) = 0;
  /// Reads walkers [first, first + count) into `out` (resized; out.first = first). Walkers that
  /// were never written read as the placeholders of WalkerArrays::resize (zeros, -1 steps).
  virtual void read(std::int64_t first, std::int64_t count, WalkerArrays& out) const = 0;
  /// Makes what was written durable (before a checkpoint says those walkers are finished).
  virtual void sync() {}
  /// Walkers [0, finished()) have been written.
  virtual std::int64_t finished() const = 0;
};

/// The whole ensemble in memory (tests and small runs); walkers() holds every walker.
class MemoryWalkerStore final : public WalkerStore {
 public:
  explicit MemoryWalkerStore(const RunPlan& plan);
  void write(const WalkerArrays& batch, std::int64_t first, std::int64_t last) override;
  void read(std::int64_t first, std::int64_t count, WalkerArrays& out) const override;
  std::int64_t finished() const override { return finished_; }
  const WalkerArrays& walkers() const { return all_; }

 private:
  WalkerArrays all_;
  std::int64_t finished_ = 0;
};

/// A file of fixed-size little-endian records, one per walker at offset (g − base) · record size
/// (run directories: RUN/walkers.bin; base is the first walker of a shard, 0 for a whole run).
/// Opening it with `finished` > base keeps walkers [base, finished) of an existing file (resume);
/// otherwise the file is created empty.
std::shared_ptr<WalkerStore> make_file_walker_store(const RunPlan& plan, const std::string& path,
                                                    std::int64_t finished = 0,
                                                    std::int64_t base = 0);

/// Reads an existing walker file holding walkers [begin, end) (a finished shard's), read-only.
std::shared_ptr<WalkerStore> open_walker_file(const RunPlan& plan, const std::string& path,
                                              std::int64_t begin, std::int64_t end);

/// Bytes per walker of the file store: position, y_freeze, the three steps, basin, crossings,
/// then the optimizer state (OptimizerState's flat layout; none for SGD). No default for the
/// width: a caller that left it out sized stateful optimizers' records wrongly (MPI jobs).
std::int64_t walker_record_bytes(int dim, int state_width);

}  // namespace sgdwalk
