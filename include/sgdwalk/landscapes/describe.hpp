// How a landscape describes itself to the host: its config name and its parameter table.
//
// A landscape is a class template L<T> (T = float or double) holding its physics (see
// landscapes/two_valley.hpp for the interface the walker calls) and, next to it, its description:
//
//   static constexpr const char* name;     config name (landscape.kind); several entries may share
//                                          one name if their dim differs (harmonic 1, 2, 3)
//   static constexpr const char* summary;  one line for `sgdwalk info --landscapes`
//   template <class V> static void describe(V& v);
//        calls v(name, &L::member, range, doc) for each parameter, in table order. The member's
//        initialiser in the struct is the parameter's default. A member that is an array T[N] is
//        an array parameter: one entry per element named "member.I" (read from the config as an
//        array `member = [...]` of N numbers; doc gets " I" appended).
//   static std::array<double, dim> start();   optional: the default initial point of the walkers
//                                          (coordinate 0 is offset by ±0.01); the origin otherwise.
//   static std::vector<StationaryPoint> stationary_points();
//                                          optional: known minima and saddles of the default
//                                          parameters (from the literature or analysis), which the
//                                          generic tests check (tests/test_registry.cpp).
//
// The host reads these through the registry (landscapes/registry.hpp); nothing here is compiled
// into device code (the description is host-only, the physics is SGDWALK_FN).
#pragma once

#include <array>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

namespace sgdwalk {

/// Allowed range of a parameter: [min, max], or (min, max] when min_exclusive; all finite values
/// when min = -inf and max = +inf.
struct ParameterRange {
  double min;
  double max;
  bool min_exclusive;
};

namespace range {
inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr ParameterRange positive{0.0, kInf, true};       ///< > 0
inline constexpr ParameterRange non_negative{0.0, kInf, false};  ///< >= 0
inline constexpr ParameterRange any{-kInf, kInf, false};         ///< any finite number
}  // namespace range

/// Whether a parameter may be swept ([sweep] entry) or only set once in [landscape].
enum class Sweep { yes, no };

/// One row of a landscape's parameter table.
struct ParameterInfo {
  std::string name;  ///< "x1"; array elements "stiffness.0"
  double default_value;
  double min;  ///< allowed range, inclusive unless min_exclusive
  double max;
  bool min_exclusive;
  std::string description;
  bool sweepable = true;
  std::string array;  ///< array parameters: the config array's name ("stiffness"); empty otherwise
  int index = 0;      ///< array parameters: the element
};

/// A known stationary point of a landscape at its default parameters, for the generic tests:
/// Newton's method started at `position` must converge within `tolerance` of it, to a loss within
/// `value_tolerance` of `value`, with `negative_curvatures` negative Hessian eigenvalues (0 for a
/// minimum, 1 for a saddle).
struct StationaryPoint {
  std::vector<double> position;
  double value;
  int negative_curvatures;
  double tolerance;
  double value_tolerance;
};

namespace detail {

/// Collects the parameter table of L (defaults read from a default-constructed L<double>).
template <class L>
struct TableBuilder {
  const L defaults{};
  std::vector<ParameterInfo> table;

  template <class C, class M>
  void operator()(const char* name, M C::*member, ParameterRange r, const char* doc,
                  Sweep sweep = Sweep::yes) {
    const auto& value = defaults.*member;
    if constexpr (std::is_array_v<M>) {
      for (int i = 0; i < static_cast<int>(std::extent_v<M>); ++i) {
        const std::string index = std::to_string(i);
        table.push_back({std::string(name) + "." + index, static_cast<double>(value[i]), r.min,
                         r.max, r.min_exclusive, std::string(doc) + " " + index,
                         sweep == Sweep::yes, name, i});
      }
    } else {
      table.push_back({name, static_cast<double>(value), r.min, r.max, r.min_exclusive, doc,
                       sweep == Sweep::yes, "", 0});
    }
  }
};

/// Assigns L's parameters from a name -> value map (values rounded once to the member's type).
template <class L>
struct Assigner {
  L& landscape;
  const std::map<std::string, double>& values;

  template <class C, class M>
  void operator()(const char* name, M C::*member, ParameterRange, const char*, Sweep = Sweep::yes) {
    auto& target = landscape.*member;
    if constexpr (std::is_array_v<M>) {
      for (int i = 0; i < static_cast<int>(std::extent_v<M>); ++i) {
        target[i] = static_cast<std::remove_all_extents_t<M>>(
            values.at(std::string(name) + "." + std::to_string(i)));
      }
    } else {
      target = static_cast<M>(values.at(name));
    }
  }
};

}  // namespace detail

/// The parameter table of landscape template L (shared by float and double).
template <template <class> class L>
std::vector<ParameterInfo> parameter_table() {
  detail::TableBuilder<L<double>> builder;
  L<double>::describe(builder);
  return builder.table;
}

/// Sets every parameter of `landscape` from `values` (which must hold each parameter's name).
template <class Landscape>
void assign_parameters(Landscape& landscape, const std::map<std::string, double>& values) {
  detail::Assigner<Landscape> assigner{landscape, values};
  Landscape::describe(assigner);
}

/// The default initial point of a landscape's walkers (before the ±0.01 offset of coordinate 0).
template <class L>
std::vector<double> default_start() {
  if constexpr (requires { L::start(); }) {
    const auto point = L::start();
    return std::vector<double>(point.begin(), point.end());
  } else {
    return std::vector<double>(static_cast<std::size_t>(L::dim), 0.0);
  }
}

}  // namespace sgdwalk
