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

/// The variant's landscape in the walker's precision: every parameter of the landscape's
/// description (landscapes/describe.hpp) set from the variant's name -> value map, rounded once.
template <class Landscape>
Landscape make_landscape(const Variant& variant) {
  Landscape landscape{};
  assign_parameters(landscape, variant.landscape);
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

/// Calls `f.template operator()<T, Landscape, Noise>()` for the plan's runtime choices: the
/// registry entry (landscapes/registry.hpp) whose name and dimension are the plan's, the noise
/// model (noise/registry.hpp) of plan.noise, and the precision. Every registered combination is
/// instantiated by every caller; an unregistered landscape throws std::invalid_argument.
template <class F>
void dispatch_physics(const RunPlan& plan, F&& f) {
  auto with_noise = [&]<class T, class Landscape>() {
    bool found = false;
    for_each_noise_model([&]<class M>() {
      if (!found && M::kind == plan.noise) {
        found = true;
        f.template operator()<T, Landscape, M::kind>();
      }
    });
    if (!found) throw std::invalid_argument("unknown noise model " + to_string(plan.noise));
  };
  auto with_landscape = [&]<class T>() {
    bool found = false;
    for_each_landscape([&]<template <class> class L>() {
      if (!found && plan.landscape == L<T>::name && plan.dim == L<T>::dim) {
        found = true;
        with_noise.template operator()<T, L<T>>();
      }
    });
    if (!found) {
      throw std::invalid_argument("no landscape '" + plan.landscape + "' of dimension " +
                                  std::to_string(plan.dim) + " is registered");
    }
  };
  if (plan.precision == Precision::f32) {
    with_landscape.template operator()<float>();
  } else {
    with_landscape.template operator()<double>();
  }
}

}  // namespace sgdwalk
