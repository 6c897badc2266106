// A thin RAII layer over the HDF5 C API: groups, typed datasets with "units" and "description"
// attributes, string attributes. Errors become std::runtime_error naming the file and object.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sgdwalk {

class Hdf5File {
 public:
  /// Creates (truncates) `path` for writing.
  explicit Hdf5File(const std::string& path);
  ~Hdf5File();
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  /// Creates group `path` (and its parents) if needed.
  void group(const std::string& path);

  /// Writes a dataset of shape `dims` (row-major). `units` and `description` become attributes.
  template <class T>
  void dataset(const std::string& path, const std::vector<T>& data,
               const std::vector<std::uint64_t>& dims, const std::string& units,
               const std::string& description);

  /// Scalar/string attribute on an existing object ("/" for the file).
  void attribute(const std::string& object, const std::string& name, const std::string& value);
  void attribute(const std::string& object, const std::string& name, double value);

  /// Flushes and closes; errors surface here rather than in the destructor.
  void close();

 private:
  void write(const std::string& path, hid_t type, const void* data,
             const std::vector<std::uint64_t>& dims, const std::string& units,
             const std::string& description);
  std::string path_;
  hid_t file_ = -1;
};

}  // namespace sgdwalk
