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
  /// were never written read as WalkerArrays::mark_unfinished leaves them (NaN, basin -1).
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

/// A file of walker records (run directories: RUN/walkers.bin), little-endian: a header of
/// kWalkerFileHeaderBytes (format, the run's config hash, the file's first walker `base`, dim and
/// optimizer state width, its own checksum), then one fixed-size record per walker at
/// kWalkerFileHeaderBytes + (g − base) · record size, each ending in a checksum of its bytes, the
/// run's config hash and its walker index g. So a damaged record, a record moved, a shard's file
/// copied over another's or another run's file is refused, naming the file and the walker, when it
/// is read back. Files of format 1 (no header and no checksums, from sgdwalk before format 2) are
/// read with the tracker checks alone, and converted to format 2 when a run resumes into them.
/// Opening it with `finished` > base keeps walkers [base, finished) of an existing file (resume);
/// otherwise the file is created with its header and no records.
std::shared_ptr<WalkerStore> make_file_walker_store(const RunPlan& plan, const std::string& path,
                                                    std::int64_t finished = 0,
                                                    std::int64_t base = 0);

/// Reads an existing walker file holding walkers [begin, end) (a finished shard's), read-only.
std::shared_ptr<WalkerStore> open_walker_file(const RunPlan& plan, const std::string& path,
                                              std::int64_t begin, std::int64_t end);

/// Bytes of a walker file's header (format 2 on).
inline constexpr std::int64_t kWalkerFileHeaderBytes = 64;

/// Bytes per walker of the file store: position, y_freeze, the three steps, basin, crossings,
/// then the optimizer state (OptimizerState's flat layout; none for SGD), then the record's
/// checksum. No default for the width: a caller that left it out sized stateful optimizers'
/// records wrongly (MPI jobs).
std::int64_t walker_record_bytes(int dim, int state_width);

/// The records of walkers [first, last) of `batch`, as the file holds them (an MPI process sends
/// them to rank 0 this way).
std::string encode_walker_records(const RunPlan& plan, const WalkerArrays& batch,
                                  std::int64_t first, std::int64_t last);

/// The reverse of encode_walker_records: `size` bytes of whole records of walkers from `first` into
/// `out` (resized; out.first = first), each checked as a file's are. `source` names them in errors.
void decode_walker_records(const RunPlan& plan, const char* data, std::size_t size,
                           std::int64_t first, WalkerArrays& out, const std::string& source);

}  // namespace sgdwalk
