#include "config/landscape_params.hpp"

#include <map>
#include <stdexcept>
#include <utility>

namespace sgdwalk {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<ParameterInfo> two_valley_parameters() {
  return {
      {"f0", 1.0, 0.0, kInf, true, "inverse-curvature scale of both valleys"},
      {"x0", 1.0, 0.0, kInf, true, "reference width: f_i = f0 (x_i/x0)^2 (y+y_f)^2/(y+y_b)^2"},
      {"x1", 0.8, 0.0, kInf, true, "flat valley width (x >= 0)"},
      {"x2", 0.65, 0.0, kInf, true, "sharp valley width (x < 0)"},
      {"y_f", 20.0, -kInf, kInf, false, "offset of y in the valley curvature"},
      {"y_b", 30.0, -kInf, kInf, false, "offset of y in the valley bottoms and curvature"},
      {"y_d", 100.0, 0.0, kInf, true, "decay length of the downhill drift L_d exp(-y/y_d)"},
      {"L_d", 1.0, -kInf, kInf, false, "amplitude of the downhill drift"},
  };
}

}  // namespace

const std::vector<ParameterInfo>& landscape_parameters(LandscapeKind kind, int dim) {
  static const std::vector<ParameterInfo> two_valley = two_valley_parameters();
  static const std::vector<ParameterInfo> slice = [] {
    auto table = two_valley_parameters();
    table.push_back({"y", 40.0, -kInf, kInf, false, "the fixed y of the 1-D slice"});
    return table;
  }();
  static const std::vector<ParameterInfo> double_well = {
      {"curvature_flat", 1.0, 0.0, kInf, true, "L'' in the flat well (x >= barrier)"},
      {"curvature_sharp", 1.5, 0.0, kInf, true, "L'' in the sharp well (x < barrier)"},
      {"depth_flat", 1.0, 0.0, kInf, true, "depth of the flat well below the barrier top"},
      {"depth_sharp", 1.0, 0.0, kInf, true, "depth of the sharp well below the barrier top"},
      {"barrier", 0.0, -kInf, kInf, false, "position of the barrier top (L = 0 there)"},
  };
  static const std::map<int, std::vector<ParameterInfo>> harmonic = [] {
    std::map<int, std::vector<ParameterInfo>> tables;
    for (int d = 1; d <= 3; ++d) {
      std::vector<ParameterInfo> table;
      for (int i = 0; i < d; ++i) {
        table.push_back({"stiffness." + std::to_string(i), 1.0, 0.0, kInf, true,
                         "curvature along axis " + std::to_string(i)});
      }
      for (int i = 0; i < d; ++i) {
        table.push_back({"center." + std::to_string(i), 0.0, -kInf, kInf, false,
                         "minimum along axis " + std::to_string(i)});
      }
      tables.emplace(d, std::move(table));
    }
    return tables;
  }();
  switch (kind) {
    case LandscapeKind::two_valley:
      return two_valley;
    case LandscapeKind::two_valley_slice:
      return slice;
    case LandscapeKind::double_well:
      return double_well;
    case LandscapeKind::harmonic:
      return harmonic.at(dim);
  }
  throw std::logic_error("unknown landscape kind");
}

int landscape_dimension(LandscapeKind kind, int harmonic_dim) {
  switch (kind) {
    case LandscapeKind::two_valley:
      return 2;
    case LandscapeKind::two_valley_slice:
      return 1;
    case LandscapeKind::double_well:
      return 1;
    case LandscapeKind::harmonic:
      return harmonic_dim;
  }
  throw std::logic_error("unknown landscape kind");
}

std::string to_string(LandscapeKind kind) {
  switch (kind) {
    case LandscapeKind::two_valley:
      return "two_valley";
    case LandscapeKind::two_valley_slice:
      return "two_valley_slice";
    case LandscapeKind::double_well:
      return "double_well";
    case LandscapeKind::harmonic:
      return "harmonic";
  }
  return "?";
}

std::string to_string(NoiseKind kind) {
  switch (kind) {
    case NoiseKind::hessian:
      return "hessian";
    case NoiseKind::hessian_squared:
      return "hessian_squared";
    case NoiseKind::isotropic:
      return "isotropic";
  }
  return "?";
}

std::string to_string(Precision precision) {
  return precision == Precision::f32 ? "float" : "double";
}

}  // namespace sgdwalk
