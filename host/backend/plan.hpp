// The resolved description of a run: what the config says, after validation, defaults and sweep
// expansion. Backends and outputs read only this; they never see TOML.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rare_events/ffs_spec.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/observables.hpp"
#include "sgdwalk/optimizer.hpp"
#include "sgdwalk/stable.hpp"
#include "sgdwalk/walker.hpp"

namespace sgdwalk {

enum class Precision { f32, f64 };

/// The noise model's config name (its registry entry).
std::string to_string(NoiseKind kind);
std::string to_string(NoiseDistribution distribution);
std::string to_string(Precision precision);
/// The optimizer's and the schedule kind's config names (backend/dynamics_table.hpp).
std::string to_string(OptimizerKind kind);
std::string to_string(ScheduleKind kind);

/// One point of a sweep: every numeric parameter resolved.
struct Variant {
  /// Landscape parameters by name (e.g. "x2", "y_f"; harmonic: "stiffness.0", "center.1").
  std::map<std::string, double> landscape;
  double learning_rate = 0;   ///< η (the time step dt of a Langevin walker)
  double noise_strength = 0;  ///< σ; the temperature is Δ_S = η·σ
  double epsilon = 1e-8;      ///< the ε·I regulariser of the Hessian noise models
  double alpha = 2;           ///< tail index of alpha_stable noise (unused by gaussian noise)
  /// Optimizer coefficients (used by the plan's optimizer only): μ of momentum and nesterov; β1,
  /// β2 of adam; ρ of rmsprop; ε of adam and rmsprop. Their keys, defaults and the optimizers
  /// that read them: backend/dynamics_table.cpp.
  double momentum = 0.9, beta1 = 0.9, beta2 = 0.999, rmsprop_decay = 0.99, optimizer_epsilon = 1e-8;
  /// Factors on learning_rate and noise_strength along the run (optimizer.hpp, Schedule).
  Schedule learning_rate_schedule, noise_schedule;
  /// The swept parameters of this variant, in sweep order, for reports.
  std::vector<std::pair<std::string, double>> swept;

  /// Δ_S = η·σ of the base learning rate and noise strength. Under a schedule the temperature of
  /// update k is η·f_η(k−1)·σ·f_σ(k−1); this stays the base value (what the sweep set).
  double temperature() const { return learning_rate * noise_strength; }
  /// Whether a schedule changes η or σ along the run.
  bool scheduled() const {
    return !learning_rate_schedule.is_constant() || !noise_schedule.is_constant();
  }
};

struct PassageSpec {
  PassageKind kind = PassageKind::none;
  int basin = kFlatBasin;
  int coordinate = 0;
  double threshold = 0;
  std::string description;  ///< human-readable, e.g. "basin == flat"
};

struct HistogramSpec {
  std::string name;
  HistogramKind kind = HistogramKind::x_in_band;
  int x_coordinate = 0;
  int x_bins = 100;
  double x_lo = -1, x_hi = 1;
  int y_bins = 1;  ///< xy only
  double y_lo = 0, y_hi = 1;
  double band_lo = -1e300, band_hi = 1e300;  ///< x_in_band only
  std::int64_t window_begin = 0, window_end = 0, every = 1;
  /// Temperature for the effective potential −T ln P; NaN means the variant's Δ_S = η·σ.
  double temperature = 0.0 / 0.0;

  int bin_count() const { return x_bins * y_bins; }
};

struct RunPlan {
  std::string name = "run";
  /// The landscape's config name (landscape.kind); with dim it names one registry entry
  /// (include/sgdwalk/landscapes/registry.hpp; several dims share the name "harmonic").
  std::string landscape = "two_valley";
  int dim = 2;
  NoiseKind noise = NoiseKind::hessian;
  /// Gaussian or α-stable noise components (sgdwalk/stable.hpp); the tail index is per variant.
  NoiseDistribution noise_distribution = NoiseDistribution::gaussian;
  /// The optimizer of every variant (uniform: kernels are compiled per update rule).
  OptimizerKind optimizer = OptimizerKind::sgd;
  Precision precision = Precision::f64;
  std::int64_t walkers_per_variant = 1000;
  std::int64_t steps = 1000;
  std::uint64_t seed = 1;
  /// Walker w starts at initial_positions[w % size()] (the paper alternates x0 = −0.01, +0.01).
  std::vector<std::vector<double>> initial_positions;
  std::vector<std::int64_t> sample_steps;  ///< sorted, unique, within [0, steps]
  std::vector<double> quantiles = {0.05, 0.25, 0.5, 0.75, 0.95};
  PassageSpec passage;
  std::vector<HistogramSpec> histograms;
  std::vector<Variant> variants;
  /// [rare_event]: forward flux sampling instead of a brute-force run (disabled by default).
  FfsSpec ffs;
  bool per_walker_output = false;
  /// Walkers advanced per batch; 0 = choose from memory. Never changes results.
  std::int64_t batch_walkers = 0;
  /// The config as resolved (defaults filled in), for summary.json and config-change checks.
  nlohmann::json resolved_config;
  /// Valid settings that look like mistakes (e.g. logspace bounds that look like values rather
  /// than exponents), one line each; the CLI prints them before a run. Not part of the config.
  std::vector<std::string> hints;

  std::int64_t variant_count() const { return static_cast<std::int64_t>(variants.size()); }
  std::int64_t total_walkers() const { return variant_count() * walkers_per_variant; }
  std::int64_t sample_count() const { return static_cast<std::int64_t>(sample_steps.size()); }
  /// Optimizer state numbers per walker (OptimizerState::width).
  int optimizer_state_width() const {
    return sgdwalk::optimizer_state_width(update_rule(optimizer), dim);
  }
  /// Philox subsequence of a walker: variants get independent streams, and a walker's stream does
  /// not depend on how many walkers or variants the run has.
  static std::uint64_t subsequence(std::int64_t variant, std::int64_t walker) {
    return (static_cast<std::uint64_t>(variant) << 32) + static_cast<std::uint64_t>(walker);
  }
};

inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;

/// FNV-1a, 64 bit, continuing from `hash`.
std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t hash = kFnvOffset);

/// The hash of the resolved config (seed included): a run's identity, which its checkpoints,
/// shards and per-walker file carry and must match.
std::uint64_t config_hash(const RunPlan& plan);

}  // namespace sgdwalk
