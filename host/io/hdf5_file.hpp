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

  /// A dataset written in slabs of rows (the first dimension), for arrays that are not held whole:
  /// create it (same layout as dataset()), then write its rows with write_rows, in any slabs.
  /// rows_per_slab() gives slabs aligned to the storage chunks: writing in those gives the same
  /// file bytes whatever produced the rows.
  template <class T>
  void create_dataset(const std::string& path, const std::vector<std::uint64_t>& dims,
                      const std::string& units, const std::string& description);
  template <class T>
  void write_rows(const std::string& path, std::uint64_t row_begin, const std::vector<T>& rows);
  /// Rows per slab for a dataset of shape `dims`: a multiple of its chunk rows, about 2^18 values.
  static std::uint64_t rows_per_slab(const std::vector<std::uint64_t>& dims);

  /// Scalar/string attribute on an existing object ("/" for the file).
  void attribute(const std::string& object, const std::string& name, const std::string& value);
  void attribute(const std::string& object, const std::string& name, double value);

  /// Flushes and closes; errors surface here rather than in the destructor.
  void close();

 private:
  void write(const std::string& path, hid_t type, const void* data,
             const std::vector<std::uint64_t>& dims, const std::string& units,
             const std::string& description);
  /// Creates the dataset (chunked and compressed when large); returns its id (caller closes).
  hid_t create(const std::string& path, hid_t type, const std::vector<std::uint64_t>& dims);
  void write_slab(const std::string& path, hid_t type, std::uint64_t row_begin, std::uint64_t rows,
                  const void* data);
  std::string path_;
  hid_t file_ = -1;
};

}  // namespace sgdwalk
