// The host boundary where runtime choices (landscape, noise model, precision) become template
// instances, and where per-variant numbers are converted to the walker's precision. Both backends
// take their typed physics from here, so they start from the same bits.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "backend/plan.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/observables.hpp"
#include "sgdwalk/walker.hpp"

namespace sgdwalk {

namespace detail {
template <class T, class L>
void assign_two_valley(L& landscape, const std::map<std::string, double>& p) {
  landscape.f0 = static_cast<T>(p.at("f0"));
  landscape.x0 = static_cast<T>(p.at("x0"));
  landscape.x1 = static_cast<T>(p.at("x1"));
  landscape.x2 = static_cast<T>(p.at("x2"));
  landscape.y_f = static_cast<T>(p.at("y_f"));
  landscape.y_b = static_cast<T>(p.at("y_b"));
  landscape.y_d = static_cast<T>(p.at("y_d"));
  landscape.L_d = static_cast<T>(p.at("L_d"));
}
}  // namespace detail

template <class T>
void assign_landscape(TwoValley<T>& landscape, const Variant& variant) {
  detail::assign_two_valley<T>(landscape, variant.landscape);
}
template <class T>
void assign_landscape(TwoValleySlice<T>& landscape, const Variant& variant) {
  detail::assign_two_valley<T>(landscape, variant.landscape);
  landscape.y = static_cast<T>(variant.landscape.at("y"));
}
template <class T>
void assign_landscape(DoubleWell<T>& landscape, const Variant& variant) {
  const auto& p = variant.landscape;
  landscape.curvature_flat = static_cast<T>(p.at("curvature_flat"));
  landscape.curvature_sharp = static_cast<T>(p.at("curvature_sharp"));
  landscape.depth_flat = static_cast<T>(p.at("depth_flat"));
  landscape.depth_sharp = static_cast<T>(p.at("depth_sharp"));
  landscape.barrier = static_cast<T>(p.at("barrier"));
}
template <class T, int D>
void assign_landscape(Harmonic<T, D>& landscape, const Variant& variant) {
  for (int i = 0; i < D; ++i) {
    landscape.stiffness[i] = static_cast<T>(variant.landscape.at("stiffness." + std::to_string(i)));
    landscape.center[i] = static_cast<T>(variant.landscape.at("center." + std::to_string(i)));
  }
}

template <class Landscape>
Landscape make_landscape(const Variant& variant) {
  Landscape landscape{};
  assign_landscape(landscape, variant);
  return landscape;
}

/// Update constants in precision T. Computed in double, rounded once.
template <class T>
StepParams<T> make_step_params(const Variant& variant) {
  StepParams<T> params{};
  params.learning_rate = static_cast<T>(variant.learning_rate);
  params.noise.two_sigma = static_cast<T>(2.0 * variant.noise_strength);
  params.noise.sqrt_two_sigma = static_cast<T>(std::sqrt(2.0 * variant.noise_strength));
  params.noise.epsilon = static_cast<T>(variant.epsilon);
  return params;
}

template <class T>
PassageTarget<T> make_passage_target(const PassageSpec& spec) {
  return PassageTarget<T>::make(spec.kind, spec.basin, spec.coordinate,
                                static_cast<T>(spec.threshold));
}

template <class T>
HistogramGeometry<T> make_histogram_geometry(const HistogramSpec& spec) {
  HistogramGeometry<T> geometry;
  geometry.kind = spec.kind;
  geometry.x_coordinate = spec.x_coordinate;
  geometry.x_bins = spec.x_bins;
  geometry.y_bins = spec.kind == HistogramKind::xy ? spec.y_bins : 1;
  geometry.x_lo = static_cast<T>(spec.x_lo);
  geometry.x_inv_width = static_cast<T>(spec.x_bins / (spec.x_hi - spec.x_lo));
  geometry.y_lo = static_cast<T>(spec.y_lo);
  geometry.y_inv_width = static_cast<T>(spec.y_bins / (spec.y_hi - spec.y_lo));
  // Clamp the band to the representable range of T (a float band of ±1e300 would be ±inf: fine,
  // but keep it explicit).
  geometry.band_lo = static_cast<T>(spec.band_lo);
  geometry.band_hi = static_cast<T>(spec.band_hi);
  geometry.window_begin = spec.window_begin;
  geometry.window_end = spec.window_end;
  geometry.every = spec.every;
  return geometry;
}

/// Calls `f.template operator()<T, Landscape, Noise>()` for the plan's runtime choices.
template <class F>
void dispatch_physics(const RunPlan& plan, F&& f) {
  auto with_noise = [&]<class T, class Landscape>() {
    switch (plan.noise) {
      case NoiseKind::hessian:
        f.template operator()<T, Landscape, NoiseKind::hessian>();
        return;
      case NoiseKind::hessian_squared:
        f.template operator()<T, Landscape, NoiseKind::hessian_squared>();
        return;
      case NoiseKind::isotropic:
        f.template operator()<T, Landscape, NoiseKind::isotropic>();
        return;
    }
  };
  auto with_landscape = [&]<class T>() {
    switch (plan.landscape) {
      case LandscapeKind::two_valley:
        with_noise.template operator()<T, TwoValley<T>>();
        return;
      case LandscapeKind::two_valley_slice:
        with_noise.template operator()<T, TwoValleySlice<T>>();
        return;
      case LandscapeKind::double_well:
        with_noise.template operator()<T, DoubleWell<T>>();
        return;
      case LandscapeKind::harmonic:
        switch (plan.dim) {
          case 1:
            with_noise.template operator()<T, Harmonic<T, 1>>();
            return;
          case 2:
            with_noise.template operator()<T, Harmonic<T, 2>>();
            return;
          case 3:
            with_noise.template operator()<T, Harmonic<T, 3>>();
            return;
        }
        throw std::invalid_argument("harmonic landscape dimension must be 1, 2 or 3");
    }
  };
  if (plan.precision == Precision::f32) {
    with_landscape.template operator()<float>();
  } else {
    with_landscape.template operator()<double>();
  }
}

}  // namespace sgdwalk
