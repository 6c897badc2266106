// The FFS checkpoint's kept interface states (checkpoint format 4): a binary file next to the JSON
// checkpoint, appended with each interface's states once, when its stage ends. The JSON of format
// 3 held every kept state and was rewritten whole after every stage: quadratic in the stages, and
// a JSON tree in memory many times the states' size. The JSON now holds the counts, the current
// interface's states and how many bytes of this file are committed.
//
// Layout (native byte order; the header's byte-order mark refuses a file written by a machine of
// the other order): "SGDWFFSK", u32 layout version 1, u32 0x01020304; then one record per kept
// interface: i64 variant, replica, interface, count n, dim, state_width; the arrays position
// (n·dim f64), optimizer_state (n·state_width f64), y_freeze (n f64), freeze_step,
// first_passage_step, nonfinite_step (n i64 each), basin (n i32), crossings (n u32), path_step,
// ancestor, parent (n i64 each); then the FNV-1a 64-bit hash of the record's bytes before it.
// Bytes past the committed length (an append that a stop cut short) are ignored and overwritten.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "rare_events/ffs_driver.hpp"

namespace sgdwalk {

/// Appends kept interfaces' states to the file, in the order the driver keeps them.
class KeptStatesWriter {
 public:
  /// The file of the checkpoint at `checkpoint_path` (its name, ".json" replaced by
  /// ".states.bin"); the JSON records only the file name, so a moved run directory resumes.
  static std::string path_for(const std::string& checkpoint_path);

  /// A writer that starts the file afresh at its first append (a new run, or one resumed from a
  /// checkpoint older than format 4, whose kept states are then all written again).
  explicit KeptStatesWriter(std::string path) : path_(std::move(path)) {}
  /// A writer that continues a file whose first `committed` bytes hold its records.
  KeptStatesWriter(std::string path, std::uint64_t committed)
      : path_(std::move(path)), committed_(committed) {}

  /// Appends one interface's states; throws std::runtime_error naming the file.
  void append(std::int64_t variant, std::int64_t replica, std::int64_t interface,
              const FfsInterfaceStates& states);
  /// Bytes of the file that hold whole records (what the JSON checkpoint records).
  std::uint64_t committed() const { return committed_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::uint64_t committed_ = 0;  ///< 0: the file is not started
};

/// Reads the records in the first `committed` bytes of `path`, checking each one's layout, sizes
/// (`dim`, `state_width`) and hash, and hands each to `keep(variant, replica, interface, states)`.
/// Throws std::runtime_error saying what is wrong (the caller names the checkpoint).
void read_kept_states(const std::string& path, std::uint64_t committed, int dim, int state_width,
                      const std::function<void(std::int64_t, std::int64_t, std::int64_t,
                                               FfsInterfaceStates&&)>& keep);

}  // namespace sgdwalk
