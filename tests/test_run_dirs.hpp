// Comparing run directories: every dataset and attribute of two results.h5 files, bit for bit, and
// summary.json without the fields that must differ between ways of running the same config. The
// dimension scales attached to each dataset are compared by name (their attributes DIMENSION_LIST
// and REFERENCE_LIST hold object references, i.e. file addresses, which are not compared).
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_files.hpp"

namespace sgdwalk::testing {

/// One dataset's or attribute's raw bytes, with its shape and stored type as text.
struct H5Item {
  std::string shape_and_type;
  std::string bytes;
  bool operator==(const H5Item&) const = default;
};

namespace detail {

inline std::string type_text(hid_t type) {
  return std::to_string(H5Tget_class(type)) + "/" + std::to_string(H5Tget_size(type)) + "/" +
         std::to_string(H5Tget_class(type) == H5T_STRING ? 0 : H5Tget_order(type));
}

inline std::string shape_text(hid_t space) {
  std::string text;
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  for (const auto d : dims) text += std::to_string(d) + "x";
  return text;
}

inline std::string object_name(hid_t object) {
  char name[512] = {};
  H5Iget_name(object, name, sizeof name);
  return name;
}

/// "axis 0: /samples/variant; axis 1: /samples/step; ": the scales attached to each axis.
inline std::string dimension_scales(hid_t dataset) {
  std::string text;
  hid_t space = H5Dget_space(dataset);
  const int rank = H5Sget_simple_extent_ndims(space);
  H5Sclose(space);
  for (int axis = 0; axis < rank; ++axis) {
    text += "axis " + std::to_string(axis) + ":";
    H5DSiterate_scales(
        dataset, static_cast<unsigned>(axis), nullptr,
        [](hid_t, unsigned, hid_t scale, void* out) -> herr_t {
          std::string& text = *static_cast<std::string*>(out);
          text += ' ';
          text += object_name(scale);
          return 0;
        },
        &text);
    text += "; ";
  }
  return text;
}

inline herr_t collect_attribute(hid_t location, const char* name, const H5A_info_t*, void* out) {
  auto& items = *static_cast<std::map<std::string, H5Item>*>(out);
  const std::string attribute_name = name;
  if (attribute_name == "DIMENSION_LIST" || attribute_name == "REFERENCE_LIST") return 0;
  const hid_t attribute = H5Aopen(location, name, H5P_DEFAULT);
  const hid_t type = H5Aget_type(attribute);
  const hid_t space = H5Aget_space(attribute);
  const hid_t memory_type = H5Tget_native_type(type, H5T_DIR_ASCEND);
  H5Item item;
  item.shape_and_type = shape_text(space) + type_text(type);
  if (H5Tis_variable_str(type) > 0) {
    char* text = nullptr;
    H5Aread(attribute, memory_type, &text);
    item.bytes = text != nullptr ? text : "";
    H5free_memory(text);
  } else {
    const auto points = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
    item.bytes.resize(points * H5Tget_size(memory_type));
    H5Aread(attribute, memory_type, item.bytes.data());
  }
  items[object_name(location) + "@" + name] = item;
  H5Tclose(memory_type);
  H5Sclose(space);
  H5Tclose(type);
  H5Aclose(attribute);
  return 0;
}

inline herr_t collect_object(hid_t root, const char* name, const H5O_info_t* info, void* out) {
  auto& items = *static_cast<std::map<std::string, H5Item>*>(out);
  const hid_t object = H5Oopen(root, name, H5P_DEFAULT);
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute, out);
  if (info->type == H5O_TYPE_DATASET) {
    const hid_t type = H5Dget_type(object);
    const hid_t space = H5Dget_space(object);
    const hid_t memory_type = H5Tget_native_type(type, H5T_DIR_ASCEND);
    H5Item item;
    item.shape_and_type = shape_text(space) + type_text(type);
    const auto points = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
    item.bytes.resize(points * H5Tget_size(memory_type));
    if (!item.bytes.empty()) {
      H5Dread(object, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, item.bytes.data());
    }
    items[std::string("/") + name] = item;
    items[std::string("/") + name + "#dimensions"] = {"", dimension_scales(object)};
    H5Tclose(memory_type);
    H5Sclose(space);
    H5Tclose(type);
  }
  H5Oclose(object);
  return 0;
}

}  // namespace detail

/// Every dataset ("/group/name") and attribute ("/object@name") of an HDF5 file.
inline std::map<std::string, H5Item> h5_items(const std::filesystem::path& path) {
  std::map<std::string, H5Item> items;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(file, 0) << path;
  if (file < 0) return items;
  H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, detail::collect_object, &items);
  H5Fclose(file);
  return items;
}

/// Expects the same datasets and attributes, each with the same shape, type and bits.
inline void expect_same_h5(const std::filesystem::path& expected,
                           const std::filesystem::path& actual) {
  const auto a = h5_items(expected);
  const auto b = h5_items(actual);
  EXPECT_GT(a.size(), 10u) << expected;
  for (const auto& [name, item] : a) {
    const auto found = b.find(name);
    if (found == b.end()) {
      ADD_FAILURE() << name << " missing from " << actual;
      continue;
    }
    EXPECT_EQ(found->second.shape_and_type, item.shape_and_type) << name;
    EXPECT_TRUE(found->second.bytes == item.bytes) << name << " differs in " << actual;
  }
  for (const auto& [name, item] : b) {
    if (!a.contains(name)) ADD_FAILURE() << name << " in " << actual << " only";
  }
}

/// summary.json without the fields that differ between a single run and the same run made another
/// way (shards merged, MPI ranks, resumed): the command line, the backend (a merged run names its
/// shards' backends), timing (seconds, sessions, memory) and the provenance of merged shards.
inline nlohmann::json comparable_summary(nlohmann::json summary) {
  summary["sgdwalk"].erase("command");
  summary.erase("backend");
  summary.erase("timing");
  summary.erase("merged_from");
  summary.erase("parallel");
  return summary;
}

}  // namespace sgdwalk::testing
