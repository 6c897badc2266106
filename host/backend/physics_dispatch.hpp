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

/// Everything that defines the update constants of a variant at any step (in double).
inline StepSchedule make_step_schedule(const RunPlan& plan, const Variant& variant) {
  StepSchedule s;
  s.learning_rate = variant.learning_rate;
  s.noise_strength = variant.noise_strength;
  s.epsilon = variant.epsilon;
  s.learning_rate_schedule = variant.learning_rate_schedule;
  s.noise_schedule = variant.noise_schedule;
  s.optimizer = plan.optimizer;
  switch (plan.optimizer) {
    case OptimizerKind::sgd:
      break;
    case OptimizerKind::momentum:
    case OptimizerKind::nesterov:
      s.momentum = variant.momentum;
      break;
    case OptimizerKind::adam:
      s.beta1 = variant.beta1;
      s.beta2 = variant.beta2;
      s.optimizer_epsilon = variant.optimizer_epsilon;
      s.bias_correction = true;
      break;
    case OptimizerKind::rmsprop:
      s.beta1 = 0;  // m' = g exactly: see adaptive_update
      s.beta2 = variant.rmsprop_decay;
      s.optimizer_epsilon = variant.optimizer_epsilon;
      break;
  }
  if (plan.noise_distribution == NoiseDistribution::alpha_stable) {
    s.stable_scale = stable_scale(variant.alpha, variant.learning_rate);
    s.stable_exponent = 1.0 / variant.alpha - 0.5;
  }
  s.per_step = variant.scheduled() || s.bias_correction;
  return s;
}

/// Update constants in precision T (of step 1; of every step unless StepSchedule::per_step).
/// Computed in double, rounded once.
template <class T>
StepParams<T> make_step_params(const RunPlan& plan, const Variant& variant) {
  return step_params_at<T>(make_step_schedule(plan, variant), 1);
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

/// Calls `f.template operator()<R>()` for the plan's optimizer's update rule.
template <class F>
void dispatch_update_rule(const RunPlan& plan, F&& f) {
  switch (update_rule(plan.optimizer)) {
    case UpdateRule::sgd:
      f.template operator()<UpdateRule::sgd>();
      return;
    case UpdateRule::momentum:
      f.template operator()<UpdateRule::momentum>();
      return;
    case UpdateRule::adaptive:
      f.template operator()<UpdateRule::adaptive>();
      return;
    case UpdateRule::any:  // never a plan's rule (update_rule): the CUDA kernels' run-time switch
      return;
  }
}

}  // namespace sgdwalk
