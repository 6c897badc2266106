// The parameters each landscape accepts: names, defaults and allowed ranges. The config validator,
// the sweep expander and the conversion to the typed device structs all read this one table.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "backend/plan.hpp"

namespace sgdwalk {

struct ParameterInfo {
  std::string name;
  double default_value;
  double min;  ///< allowed range, inclusive unless min_exclusive
  double max;
  bool min_exclusive;
  std::string description;
};

/// Scalar parameters of a landscape ("stiffness.0" … for the harmonic well of dimension `dim`).
const std::vector<ParameterInfo>& landscape_parameters(LandscapeKind kind, int dim);

/// Dimension of the landscape's parameter space.
int landscape_dimension(LandscapeKind kind, int harmonic_dim);

}  // namespace sgdwalk
