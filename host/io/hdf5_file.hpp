// A thin RAII layer over the HDF5 C API: groups, typed datasets with "units", "description" and
// "long_name" attributes, string attributes, and netCDF-4 dimensions (HDF5 dimension scales) so
// that netCDF readers (xarray's h5netcdf engine) see named dimensions and coordinate variables.
// Errors become std::runtime_error naming the file and object.
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

  /// netCDF-4 dimensions of the group holding `path`. coordinate() writes the 1-D dataset `path`
  /// as the coordinate variable of the dimension named like it (an HDF5 dimension scale);
  /// dimension() makes a dimension `name` of `length` without values (a scale that netCDF calls
  /// "a dimension but not a variable"; readers such as h5netcdf do not show it as a variable).
  template <class T>
  void coordinate(const std::string& path, const std::vector<T>& data, const std::string& units,
                  const std::string& description);
  void dimension(const std::string& group, const std::string& name, std::uint64_t length);
  /// coordinate() for a dataset written later in slabs with write_rows().
  template <class T>
  void create_coordinate(const std::string& path, std::uint64_t length, const std::string& units,
                         const std::string& description);
  /// Whether `path` (a group or dataset) exists.
  bool exists(const std::string& path) const;

  /// Writes a dataset (row-major) whose axes are the named dimensions of its own group (made
  /// before by coordinate() or dimension()); its shape is theirs, and they are attached to it as
  /// its dimension scales. `units` and `description` become attributes, the description also as
  /// netCDF's `long_name`.
  template <class T>
  void dataset(const std::string& path, const std::vector<T>& data,
               const std::vector<std::string>& dimensions, const std::string& units,
               const std::string& description);

  /// A dataset written in slabs of rows (the first dimension), for arrays that are not held whole:
  /// create it (same layout and attributes as dataset()), then write its rows with write_rows, in
  /// any slabs. rows_per_slab() gives slabs aligned to the storage chunks: writing in those gives
  /// the same file bytes whatever produced the rows.
  template <class T>
  void create_dataset(const std::string& path, const std::vector<std::string>& dimensions,
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

  /// The value of the NAME attribute of a dimension without values: netCDF's marker text, then the
  /// length in a field of 10 (as netCDF-C writes it).
  static std::string dimension_marker(std::uint64_t length);

 private:
  void write(const std::string& path, hid_t type, const void* data,
             const std::vector<std::uint64_t>& dims);
  void make_scale(const std::string& path, const std::string& name);
  /// Shape of `dimensions` in the group of `path`.
  std::vector<std::uint64_t> shape_of(const std::string& path,
                                      const std::vector<std::string>& dimensions);
  /// Attaches the scales `dimensions` (in the group of `path`) to its axes, and the attributes.
  void describe(const std::string& path, const std::vector<std::string>& dimensions,
                const std::string& units, const std::string& description);
  /// Creates the dataset (chunked and compressed when large); returns its id (caller closes).
  hid_t create(const std::string& path, hid_t type, const std::vector<std::uint64_t>& dims);
  std::string path_;
  hid_t file_ = -1;
};

/// Why an HDF5 file cannot be read: missing, unreadable (permissions, a lost file system: the file
/// may be fine) or damaged (no HDF5 file, or cut short); `text` says it in words.
struct Hdf5FileProblem {
  enum class Kind { none, missing, unreadable, damaged };
  Kind kind = Kind::none;
  std::string text;
  explicit operator bool() const { return kind != Kind::none; }
};

/// What keeps the HDF5 file `path` from being read (nothing when it opens, or when another
/// process holds its HDF5 file lock: in use is not damaged).
Hdf5FileProblem hdf5_file_problem(const std::string& path);

}  // namespace sgdwalk
