// The optimizers and schedules by config name, and the optimizers' coefficients: the one place the
// config parser, the key table, the resolved config, results.h5 and replay read them from. (The
// update rules themselves are in include/sgdwalk/optimizer.hpp and walker.hpp; how a variant's
// coefficients reach them, in backend/physics_dispatch.hpp.)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend/plan.hpp"

namespace sgdwalk {

/// An optimizer's config name (dynamics.optimizer).
struct OptimizerName {
  OptimizerKind kind;
  const char* name;
};

/// Every optimizer, in the order the docs list them.
const std::vector<OptimizerName>& optimizer_names();

/// The optimizer of a config name; empty for a name that is none.
std::optional<OptimizerKind> find_optimizer(const std::string& name);

/// A coefficient of [dynamics] that only some optimizers read (μ, β1, β2, ρ, ε).
struct OptimizerCoefficient {
  const char* key;         ///< its key in [dynamics] and [sweep], and its results.h5 name
  double Variant::*value;  ///< where a variant keeps it
  std::vector<OptimizerKind> optimizers;  ///< the optimizers that read it
  double default_value;
  /// In [0, 1) (a decay or momentum coefficient); otherwise a number > 0.
  bool fraction;
  const char* key_meaning;  ///< the key table's text (docs/CONFIG.md)
  const char* description;  ///< the description of its results.h5 dataset

  bool read_by(OptimizerKind kind) const;
};

/// Every optimizer coefficient, in the order of the key table.
const std::vector<OptimizerCoefficient>& optimizer_coefficients();

/// The coefficient of a [dynamics] key; null for a key that is none.
const OptimizerCoefficient* find_optimizer_coefficient(const std::string& key);

/// A schedule kind's config name (dynamics.*_schedule.kind).
struct ScheduleName {
  ScheduleKind kind;
  const char* name;
};

/// Every schedule kind, in the order the docs list them.
const std::vector<ScheduleName>& schedule_kind_names();

/// The schedule kind of a config name; empty for a name that is none.
std::optional<ScheduleKind> find_schedule_kind(const std::string& name);

}  // namespace sgdwalk
