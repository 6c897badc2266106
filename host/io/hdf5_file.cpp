#include "io/hdf5_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"

namespace sgdwalk {
namespace {

template <class T>
hid_t native_type();
template <>
hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}
template <>
hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
hid_t native_type<std::int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
hid_t native_type<std::uint64_t>() {
  return H5T_NATIVE_UINT64;
}
template <>
hid_t native_type<std::int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
hid_t native_type<std::uint32_t>() {
  return H5T_NATIVE_UINT32;
}

/// Before this process's HDF5 calls: no library shutdown at exit (a file whose close failed, on a
/// full disk, stays registered, and HDF5's exit handler crashes closing it again, after the error
/// was reported; every file is closed here before the process ends), and no error printing (the
/// errors are reported here, with HDF5's reason).
void prepare_hdf5() {
  static const herr_t no_shutdown_at_exit = H5dont_atexit();
  (void)no_shutdown_at_exit;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

/// The descriptions on HDF5's error stack, the innermost (where the failure began) first.
std::vector<std::string> hdf5_error_stack() {
  std::vector<std::string> descriptions;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* entry, void* data) -> herr_t {
        try {  // nothing may be thrown through HDF5's C frames
          if (entry->desc != nullptr)
            static_cast<std::vector<std::string>*>(data)->emplace_back(entry->desc);
          return 0;
        } catch (...) {
          return -1;
        }
      },
      &descriptions);
  return descriptions;
}

/// What the innermost entry of HDF5's error stack with a system error says (the file driver's
/// "..., errno = 28, error message = 'No space left on device', ..."), or "".
std::string hdf5_error_reason() {
  const std::string marker = "error message = '";
  for (const std::string& description : hdf5_error_stack()) {
    const auto begin = description.find(marker);
    if (begin == std::string::npos) continue;
    const auto end = description.find('\'', begin + marker.size());
    return description.substr(begin + marker.size(), end - begin - marker.size());
  }
  return "";
}

/// Whether an entry of HDF5's error stack mentions `words` ("unable to lock": another process
/// holds the file's lock).
bool hdf5_error_mentions(const char* words) {
  const auto stack = hdf5_error_stack();
  return std::any_of(stack.begin(), stack.end(), [&](const std::string& description) {
    return description.find(words) != std::string::npos;
  });
}

/// `message`, with HDF5's reason for the failure when it gives one.
std::runtime_error hdf5_failure(const std::string& message) {
  const std::string reason = hdf5_error_reason();
  return std::runtime_error(reason.empty() ? message : message + ": " + reason);
}

/// Closes an HDF5 handle with the matching function when it goes out of scope; close() closes it
/// earlier and checks: closing a dataset writes the data HDF5 held back (its chunk cache, the
/// sieve buffer), so a full disk may show only there.
class Handle {
 public:
  Handle(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  ~Handle() {
    if (id_ >= 0) closer_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  /// Closes the handle; throws `message` (with HDF5's reason) when closing fails.
  void close(const std::string& message) {
    const herr_t status = id_ >= 0 ? closer_(id_) : 0;
    id_ = -1;
    if (status < 0) throw hdf5_failure(message);
  }

 private:
  hid_t id_;
  herr_t (*closer_)(hid_t);
};

}  // namespace

Hdf5File::Hdf5File(const std::string& path) : path_(path) {
  prepare_hdf5();
  // No modification times in object headers (the root group included): the same results give the
  // same bytes, so runs and resumed runs can be compared with cmp.
  Handle creation(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_obj_track_times(creation.get(), 0);
  // The HDF5 1.8 format at least: its object headers keep attributes over 64 KiB (the config text
  // of a large sweep, a long sample_steps list) in dense storage, where the 1.6 format cannot
  // hold them at all. Every reader since HDF5 1.8 (2008), netCDF-4 and h5py read it.
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_V18);
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, creation.get(), access.get());
  if (file_ < 0) throw hdf5_failure("cannot create HDF5 file " + path);
}

Hdf5File::~Hdf5File() {
  if (file_ >= 0) H5Fclose(file_);
}

void Hdf5File::close() {
  if (file_ < 0) return;
  const herr_t status = H5Fclose(file_);
  file_ = -1;
  if (status < 0) throw hdf5_failure("cannot finish writing HDF5 file " + path_);
  // HDF5 leaves the data in the page cache; a file system that reports a full disk or a lost
  // server only when the data reach it (network file systems of clusters) reports it here.
  if (!sync_file_at(path_)) {
    throw std::runtime_error("cannot finish writing HDF5 file " + path_ + ": " +
                             std::strerror(errno));
  }
}

Hdf5FileProblem hdf5_file_problem(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (status.type() == std::filesystem::file_type::not_found) {
    return {Hdf5FileProblem::Kind::missing, "missing"};
  }
  // A file that cannot be opened at all (permissions, a lost file system) is not damaged.
  if (status.type() != std::filesystem::file_type::regular) {
    return {Hdf5FileProblem::Kind::unreadable, "is not a file (a directory in the way?)"};
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return {Hdf5FileProblem::Kind::unreadable,
            std::string("cannot be opened (") + std::strerror(errno) + ")"};
  }
  ::close(fd);
  prepare_hdf5();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    // Another process writing to it (a notebook) holds its HDF5 file lock: in use, not damaged,
    // and nothing here can tell more.
    if (hdf5_error_mentions("unable to lock")) return {};
    const std::string reason = hdf5_error_reason();
    return {Hdf5FileProblem::Kind::damaged,
            "not an HDF5 file, or damaged (cut short?)" + (reason.empty() ? "" : ": " + reason)};
  }
  H5Fclose(file);
  return {};
}

void Hdf5File::group(const std::string& path) {
  std::size_t position = 0;
  while (position != std::string::npos) {
    position = path.find('/', position + 1);
    const std::string prefix = path.substr(0, position);
    if (prefix.empty() || prefix == "/") continue;
    if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) > 0) continue;
    Handle creation(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    H5Pset_obj_track_times(creation.get(), 0);
    Handle group(H5Gcreate2(file_, prefix.c_str(), H5P_DEFAULT, creation.get(), H5P_DEFAULT),
                 H5Gclose);
    if (group.get() < 0) throw hdf5_failure(path_ + ": cannot create group " + prefix);
    group.close(path_ + ": cannot create group " + prefix);
  }
}

namespace {

/// The group part of a dataset path ("/samples/p_flat" -> "/samples", "/x" -> "/").
std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

std::string child_path(const std::string& group, const std::string& name) {
  return group == "/" ? "/" + name : group + "/" + name;
}

std::uint64_t element_count(const std::vector<std::uint64_t>& dims) {
  std::uint64_t total = 1;
  for (const auto d : dims) total *= d;
  return total;
}

}  // namespace

std::string Hdf5File::dimension_marker(std::uint64_t length) {
  return fmt::format("This is a netCDF dimension but not a netCDF variable.{:10}", length);
}

bool Hdf5File::exists(const std::string& path) const {
  return path == "/" || H5Lexists(file_, path.c_str(), H5P_DEFAULT) > 0;
}

void Hdf5File::make_scale(const std::string& path, const std::string& name) {
  Handle dataset(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (dataset.get() < 0 || H5DSset_scale(dataset.get(), name.c_str()) < 0) {
    throw hdf5_failure(path_ + ": cannot make " + path + " a dimension scale");
  }
  dataset.close(path_ + ": cannot make " + path + " a dimension scale");
}

template <class T>
void Hdf5File::coordinate(const std::string& path, const std::vector<T>& data,
                          const std::string& units, const std::string& description) {
  write(path, native_type<T>(), data.data(), {data.size()});
  make_scale(path, path.substr(path.rfind('/') + 1));
  describe(path, {}, units, description);
}

template <class T>
void Hdf5File::create_coordinate(const std::string& path, std::uint64_t length,
                                 const std::string& units, const std::string& description) {
  Handle(create(path, native_type<T>(), {length}), H5Dclose)
      .close(path_ + ": cannot create dataset " + path);
  make_scale(path, path.substr(path.rfind('/') + 1));
  describe(path, {}, units, description);
}

void Hdf5File::dimension(const std::string& group, const std::string& name, std::uint64_t length) {
  // No values are written (none are allocated either): readers see the scale's length only.
  const std::string path = child_path(group, name);
  Handle(create(path, H5T_NATIVE_FLOAT, {length}), H5Dclose)
      .close(path_ + ": cannot create dataset " + path);
  make_scale(path, dimension_marker(length));
}

std::vector<std::uint64_t> Hdf5File::shape_of(const std::string& path,
                                              const std::vector<std::string>& dimensions) {
  std::vector<std::uint64_t> shape;
  for (const auto& name : dimensions) {
    const std::string scale_path = child_path(parent_of(path), name);
    if (H5Lexists(file_, scale_path.c_str(), H5P_DEFAULT) <= 0) {
      throw std::logic_error(path_ + ": dataset " + path + " names dimension " + name +
                             ", which its group does not have");
    }
    Handle scale(H5Dopen2(file_, scale_path.c_str(), H5P_DEFAULT), H5Dclose);
    Handle space(H5Dget_space(scale.get()), H5Sclose);
    hsize_t length = 0;
    if (H5Sget_simple_extent_ndims(space.get()) != 1) {
      throw std::logic_error(path_ + ": dimension " + scale_path + " is not one-dimensional");
    }
    H5Sget_simple_extent_dims(space.get(), &length, nullptr);
    shape.push_back(length);
  }
  return shape;
}

void Hdf5File::describe(const std::string& path, const std::vector<std::string>& dimensions,
                        const std::string& units, const std::string& description) {
  if (!dimensions.empty()) {
    Handle dataset(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
    for (std::size_t axis = 0; axis < dimensions.size(); ++axis) {
      const std::string scale_path = child_path(parent_of(path), dimensions[axis]);
      Handle scale(H5Dopen2(file_, scale_path.c_str(), H5P_DEFAULT), H5Dclose);
      if (dataset.get() < 0 || scale.get() < 0 ||
          H5DSattach_scale(dataset.get(), scale.get(), static_cast<unsigned>(axis)) < 0) {
        throw hdf5_failure(path_ + ": cannot attach dimension " + scale_path + " to " + path);
      }
      scale.close(path_ + ": cannot attach dimension " + scale_path + " to " + path);
    }
    dataset.close(path_ + ": cannot attach dimensions to " + path);
  }
  attribute(path, "units", units);
  attribute(path, "description", description);
  // netCDF's long_name labels plot axes (xarray): the description without a parenthesised detail
  // at its end ("learning rate eta", not "learning rate eta (the time step of a Langevin walker)");
  // a parenthesis inside a formula stays.
  std::string label = description;
  if (!label.empty() && label.back() == ')') {
    int depth = 0;
    for (std::size_t i = label.size(); i-- > 0;) {
      if (label[i] == ')') ++depth;
      if (label[i] == '(' && --depth == 0) {
        if (i > 0 && label[i - 1] == ' ') label.erase(i - 1);
        break;
      }
    }
  }
  attribute(path, "long_name", label);
}

template <class T>
void Hdf5File::dataset(const std::string& path, const std::vector<T>& data,
                       const std::vector<std::string>& dimensions, const std::string& units,
                       const std::string& description) {
  const std::vector<std::uint64_t> dims = shape_of(path, dimensions);
  if (element_count(dims) != data.size()) {
    throw std::logic_error(path_ + ": dataset " + path + " shape does not match its data");
  }
  write(path, native_type<T>(), data.data(), dims);
  describe(path, dimensions, units, description);
}

#define SGDWALK_DATASET_INSTANCES(T)                                                   \
  template void Hdf5File::dataset(const std::string&, const std::vector<T>&,           \
                                  const std::vector<std::string>&, const std::string&, \
                                  const std::string&);                                 \
  template void Hdf5File::coordinate(const std::string&, const std::vector<T>&,        \
                                     const std::string&, const std::string&);
SGDWALK_DATASET_INSTANCES(double)
SGDWALK_DATASET_INSTANCES(float)
SGDWALK_DATASET_INSTANCES(std::int64_t)
SGDWALK_DATASET_INSTANCES(std::uint64_t)
SGDWALK_DATASET_INSTANCES(std::int32_t)
SGDWALK_DATASET_INSTANCES(std::uint32_t)
#undef SGDWALK_DATASET_INSTANCES

namespace {

/// Chunk shape of a dataset of shape `dims` (empty: contiguous).
std::vector<hsize_t> chunk_shape(const std::vector<std::uint64_t>& dims) {
  std::uint64_t total = 1;
  for (const auto d : dims) total *= d;
  if (total <= 4096 || dims.empty()) return {};
  // Chunked + deflate for large arrays (per-walker data compresses well).
  std::vector<hsize_t> chunk(dims.begin(), dims.end());
  std::uint64_t chunk_total = total;
  for (auto& c : chunk) {
    while (chunk_total > (1u << 18) && c > 1) {
      chunk_total /= c;
      c = (c + 1) / 2;
      chunk_total *= c;
    }
  }
  return chunk;
}

}  // namespace

hid_t Hdf5File::create(const std::string& path, hid_t type,
                       const std::vector<std::uint64_t>& dims) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) group(path.substr(0, slash));
  std::vector<hsize_t> shape(dims.begin(), dims.end());
  Handle space(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), H5Sclose);
  Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(properties.get(), 0);
  const std::vector<hsize_t> chunk = chunk_shape(dims);
  if (!chunk.empty()) {
    H5Pset_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_deflate(properties.get(), 4);
  }
  const hid_t dataset = H5Dcreate2(file_, path.c_str(), type, space.get(), H5P_DEFAULT,
                                   properties.get(), H5P_DEFAULT);
  if (dataset < 0) throw hdf5_failure(path_ + ": cannot create dataset " + path);
  return dataset;
}

void Hdf5File::write(const std::string& path, hid_t type, const void* data,
                     const std::vector<std::uint64_t>& dims) {
  Handle dataset(create(path, type, dims), H5Dclose);
  if (element_count(dims) > 0 &&
      H5Dwrite(dataset.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw hdf5_failure(path_ + ": cannot write dataset " + path);
  }
  dataset.close(path_ + ": cannot write dataset " + path);
}

template <class T>
void Hdf5File::create_dataset(const std::string& path, const std::vector<std::string>& dimensions,
                              const std::string& units, const std::string& description) {
  Handle(create(path, native_type<T>(), shape_of(path, dimensions)), H5Dclose)
      .close(path_ + ": cannot create dataset " + path);
  describe(path, dimensions, units, description);
}

template <class T>
void Hdf5File::write_rows(const std::string& path, std::uint64_t row_begin,
                          const std::vector<T>& rows) {
  Handle dataset(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (dataset.get() < 0) throw hdf5_failure(path_ + ": cannot open dataset " + path);
  Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 1)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::uint64_t row_values = 1;
  for (int i = 1; i < rank; ++i) row_values *= dims[static_cast<std::size_t>(i)];
  if (rows.size() % row_values != 0) {
    throw std::logic_error(path_ + ": rows written to " + path + " do not fill whole rows");
  }
  const std::uint64_t count = rows.size() / row_values;
  if (count == 0) return;
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[0] = row_begin;
  extent[0] = count;
  if (row_begin + count > dims[0]) throw std::logic_error(path_ + ": rows beyond " + path);
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr);
  Handle memory(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr),
                H5Sclose);
  if (H5Dwrite(dataset.get(), native_type<T>(), memory.get(), space.get(), H5P_DEFAULT,
               rows.data()) < 0) {
    throw hdf5_failure(path_ + ": cannot write dataset " + path);
  }
  memory.close(path_ + ": cannot write dataset " + path);
  space.close(path_ + ": cannot write dataset " + path);
  dataset.close(path_ + ": cannot write dataset " + path);
}

std::uint64_t Hdf5File::rows_per_slab(const std::vector<std::uint64_t>& dims) {
  const std::vector<hsize_t> chunk = chunk_shape(dims);
  if (dims.empty()) return 1;
  if (chunk.empty()) return std::max<std::uint64_t>(1, dims[0]);
  std::uint64_t per_chunk = 1;
  for (const auto c : chunk) per_chunk *= c;
  const std::uint64_t chunks = std::max<std::uint64_t>(1, (std::uint64_t{1} << 20) / per_chunk);
  return chunk[0] * chunks;
}

#define SGDWALK_SLAB_INSTANCES(T)                                                                  \
  template void Hdf5File::create_dataset<T>(const std::string&, const std::vector<std::string>&,   \
                                            const std::string&, const std::string&);               \
  template void Hdf5File::write_rows<T>(const std::string&, std::uint64_t, const std::vector<T>&); \
  template void Hdf5File::create_coordinate<T>(const std::string&, std::uint64_t,                  \
                                               const std::string&, const std::string&);
SGDWALK_SLAB_INSTANCES(double)
SGDWALK_SLAB_INSTANCES(std::int64_t)
SGDWALK_SLAB_INSTANCES(std::int32_t)
SGDWALK_SLAB_INSTANCES(std::uint32_t)
#undef SGDWALK_SLAB_INSTANCES

void Hdf5File::attribute(const std::string& object, const std::string& name,
                         const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate_by_name(file_, object.c_str(), name.c_str(), type.get(), space.get(),
                                     H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   H5Aclose);
  if (attribute.get() < 0 || H5Awrite(attribute.get(), type.get(), value.c_str()) < 0) {
    throw hdf5_failure(path_ + ": cannot write attribute " + name + " of " + object);
  }
  attribute.close(path_ + ": cannot write attribute " + name + " of " + object);
}

void Hdf5File::attribute(const std::string& object, const std::string& name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate_by_name(file_, object.c_str(), name.c_str(), H5T_NATIVE_DOUBLE,
                                     space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   H5Aclose);
  if (attribute.get() < 0 || H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    throw hdf5_failure(path_ + ": cannot write attribute " + name + " of " + object);
  }
  attribute.close(path_ + ": cannot write attribute " + name + " of " + object);
}

}  // namespace sgdwalk
