#include "config/landscape_params.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>

#include "config/config_keys.hpp"
#include "sgdwalk/ffs.hpp"
#include "sgdwalk/landscapes/registry.hpp"
#include "sgdwalk/noise/registry.hpp"

namespace sgdwalk {

const std::vector<LandscapeInfo>& landscape_registry() {
  static const std::vector<LandscapeInfo> registry = [] {
    std::vector<LandscapeInfo> entries;
    for_each_landscape([&]<template <class> class L>() {
      using D = L<double>;
      // Unqualified, as OrderParameter calls it: an out-of-tree landscape's overload in its own
      // namespace is found by argument-dependent lookup.
      using ffs::basin_signed_distance;
      const bool boundary = !std::isnan(basin_signed_distance(D{}, typename D::Point{}));
      entries.push_back({D::name, D::dim, D::summary, parameter_table<L>(), default_start<D>(),
                         entries.size(), boundary});
    });
    // Each (name, dim) names one entry; names and parameter names must be config keys.
    for (std::size_t i = 0; i < entries.size(); ++i) {
      for (std::size_t j = i + 1; j < entries.size(); ++j) {
        if (entries[i].name == entries[j].name && entries[i].dim == entries[j].dim) {
          throw std::logic_error(fmt::format("landscape registry: '{}' (dimension {}) twice",
                                             entries[i].name, entries[i].dim));
        }
      }
    }
    return entries;
  }();
  return registry;
}

const LandscapeInfo* find_landscape(const std::string& name, int dim) {
  for (const auto& entry : landscape_registry()) {
    if (entry.name == name && entry.dim == dim) return &entry;
  }
  return nullptr;
}

std::vector<std::string> landscape_names() {
  std::vector<std::string> names;
  for (const auto& entry : landscape_registry()) {
    if (std::find(names.begin(), names.end(), entry.name) == names.end()) {
      names.push_back(entry.name);
    }
  }
  return names;
}

std::vector<std::string> landscapes_with_basin_boundary() {
  std::vector<std::string> names;
  for (const auto& entry : landscape_registry()) {
    if (entry.basin_boundary && std::find(names.begin(), names.end(), entry.name) == names.end()) {
      names.push_back(entry.name);
    }
  }
  return names;
}

bool landscape_left_out_of_build(const std::string& name) {
  bool in_registry = false;
  for_each_registry_landscape(
      [&]<template <class> class L>() { in_registry = in_registry || name == L<double>::name; });
  const std::vector<std::string> built = landscape_names();
  return in_registry && std::find(built.begin(), built.end(), name) == built.end();
}

std::string landscape_build_selection() {
  if (std::string_view(kLandscapeSelection) == "all") return "";
  return "-DSGDWALK_LANDSCAPES=\"" + std::string(kLandscapeSelection) + "\"";
}

std::vector<int> landscape_dims(const std::string& name) {
  std::vector<int> dims;
  for (const auto& entry : landscape_registry()) {
    if (entry.name == name) dims.push_back(entry.dim);
  }
  std::sort(dims.begin(), dims.end());
  return dims;
}

const std::vector<ParameterInfo>& landscape_parameters(const std::string& name, int dim) {
  if (const LandscapeInfo* entry = find_landscape(name, dim)) return entry->parameters;
  throw std::invalid_argument(
      fmt::format("no landscape '{}' of dimension {} is registered", name, dim));
}

const std::vector<NoiseInfo>& noise_registry() {
  static const std::vector<NoiseInfo> registry = [] {
    std::vector<NoiseInfo> entries;
    for_each_noise_model([&]<class M>() { entries.push_back({M::name, M::summary}); });
    return entries;
  }();
  return registry;
}

std::string landscapes_text() {
  std::string out =
      "Landscapes (landscape.kind; parameters in [landscape], sweepable in [sweep]):\n";
  for (const auto& entry : landscape_registry()) {
    out += fmt::format("\n{} (dimension {}): {}\n", entry.name, entry.dim, entry.summary);
    out += fmt::format("  {:<16} {:>10}  {:<20} {:<5} {}\n", "parameter", "default", "allowed",
                       "sweep", "meaning");
    for (const auto& p : entry.parameters) {
      const std::string range = number_range_text(p.min, p.max, p.min_exclusive);
      out += fmt::format("  {:<16} {:>10}  {:<20} {:<5} {}\n", p.name, p.default_value, range,
                         p.sweepable ? "yes" : "no", p.description);
    }
  }
  out += "\nNoise models (dynamics.noise):\n";
  for (const auto& model : noise_registry()) {
    out += fmt::format("  {:<16} {}\n", model.name, model.summary);
  }
  return out;
}

std::string to_string(NoiseKind kind) {
  std::string name = "?";
  for_each_noise_model([&]<class M>() {
    if (M::kind == kind) name = M::name;
  });
  return name;
}

std::string to_string(NoiseDistribution distribution) {
  switch (distribution) {
    case NoiseDistribution::gaussian:
      return "gaussian";
    case NoiseDistribution::alpha_stable:
      return "alpha_stable";
  }
  return "?";
}

std::string to_string(Precision precision) {
  return precision == Precision::f32 ? "float" : "double";
}

}  // namespace sgdwalk
