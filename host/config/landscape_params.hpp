// The landscapes the config accepts, with their parameters: names, defaults and allowed ranges.
// Everything here is derived from the landscape registry (include/sgdwalk/landscapes/registry.hpp):
// the config validator, the sweep expander, the config reference and `sgdwalk info --landscapes`
// read these tables, and the typed structs are filled from the same description
// (assign_parameters), so a landscape is described once, in its header.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "backend/plan.hpp"
#include "sgdwalk/landscapes/describe.hpp"

namespace sgdwalk {

/// One entry of the registry, as the host sees it.
struct LandscapeInfo {
  std::string name;  ///< landscape.kind
  int dim;
  std::string summary;
  std::vector<ParameterInfo> parameters;
  std::vector<double> start;  ///< default initial point (coordinate 0 then offset by ±0.01)
  std::size_t index;          ///< position in this build's list (`Landscapes`)
  /// Whether forward flux sampling knows its basin boundary (basin_signed_distance in
  /// include/sgdwalk/ffs.hpp: not NaN), which order_parameter basin_distance and energy need.
  bool basin_boundary;
};

/// Every landscape of this build (the registry's, or those -DSGDWALK_LANDSCAPES selected), in
/// registry order.
const std::vector<LandscapeInfo>& landscape_registry();

/// The entry with this name and dimension, or nullptr.
const LandscapeInfo* find_landscape(const std::string& name, int dim);

/// The distinct config names of this build's landscapes, in registry order.
std::vector<std::string> landscape_names();

/// The distinct config names of this build's landscapes with a basin boundary (for messages).
std::vector<std::string> landscapes_with_basin_boundary();

/// Whether `name` is the config name of a registry entry that this build left out
/// (-DSGDWALK_LANDSCAPES).
bool landscape_left_out_of_build(const std::string& name);

/// The configure flag that selected this build's landscapes (-DSGDWALK_LANDSCAPES="A;B"), for
/// messages; empty when the build has every landscape of the registry.
std::string landscape_build_selection();

/// The dimensions registered under `name` (several for harmonic), ascending.
std::vector<int> landscape_dims(const std::string& name);

/// Scalar parameters of a landscape ("stiffness.0" … for array parameters). Throws
/// std::invalid_argument for an unregistered (name, dim).
const std::vector<ParameterInfo>& landscape_parameters(const std::string& name, int dim);

/// The noise models the config accepts (include/sgdwalk/noise/registry.hpp), with their summaries.
struct NoiseInfo {
  std::string name;
  std::string summary;
};
const std::vector<NoiseInfo>& noise_registry();

/// The text of `sgdwalk info --landscapes`: every landscape and parameter with defaults and ranges,
/// and the noise models.
std::string landscapes_text();

}  // namespace sgdwalk
