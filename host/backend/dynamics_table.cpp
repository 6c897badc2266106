#include "backend/dynamics_table.hpp"

#include <algorithm>

namespace sgdwalk {
namespace {

/// The kind of a config name in a table of {kind, name} entries; empty for a name that is none.
template <class Entry>
auto kind_named(const std::vector<Entry>& entries, const std::string& name)
    -> std::optional<decltype(Entry::kind)> {
  for (const auto& entry : entries) {
    if (name == entry.name) return entry.kind;
  }
  return std::nullopt;
}

/// The config name of a kind in a table of {kind, name} entries ("?" for none).
template <class Entry>
std::string name_of(const std::vector<Entry>& entries, decltype(Entry::kind) kind) {
  for (const auto& entry : entries) {
    if (entry.kind == kind) return entry.name;
  }
  return "?";
}

}  // namespace

const std::vector<OptimizerName>& optimizer_names() {
  static const std::vector<OptimizerName> names = {{OptimizerKind::sgd, "sgd"},
                                                   {OptimizerKind::momentum, "momentum"},
                                                   {OptimizerKind::nesterov, "nesterov"},
                                                   {OptimizerKind::adam, "adam"},
                                                   {OptimizerKind::rmsprop, "rmsprop"}};
  return names;
}

std::optional<OptimizerKind> find_optimizer(const std::string& name) {
  return kind_named(optimizer_names(), name);
}

std::string to_string(OptimizerKind kind) {
  return name_of(optimizer_names(), kind);
}

bool OptimizerCoefficient::read_by(OptimizerKind kind) const {
  return std::find(optimizers.begin(), optimizers.end(), kind) != optimizers.end();
}

const std::vector<OptimizerCoefficient>& optimizer_coefficients() {
  using enum OptimizerKind;
  static const std::vector<OptimizerCoefficient> coefficients = {
      {"momentum",
       &Variant::momentum,
       {momentum, nesterov},
       0.9,
       true,
       "momentum and nesterov only: μ.",
       "momentum coefficient mu (heavy ball, Nesterov)"},
      {"beta1",
       &Variant::beta1,
       {adam},
       0.9,
       true,
       "adam only: β1, the decay of the first moment.",
       "Adam's first-moment decay beta1"},
      {"beta2",
       &Variant::beta2,
       {adam},
       0.999,
       true,
       "adam only: β2, the decay of the second moment.",
       "Adam's second-moment decay beta2"},
      {"rmsprop_decay",
       &Variant::rmsprop_decay,
       {rmsprop},
       0.99,
       true,
       "rmsprop only: ρ, the decay of the second moment.",
       "RMSprop's decay of the squared-gradient average"},
      {"optimizer_epsilon",
       &Variant::optimizer_epsilon,
       {adam, rmsprop},
       1e-8,
       false,
       "adam and rmsprop only: ε added to the root of the second moment.",
       "epsilon of Adam's and RMSprop's denominator"},
  };
  return coefficients;
}

const OptimizerCoefficient* find_optimizer_coefficient(const std::string& key) {
  for (const auto& coefficient : optimizer_coefficients()) {
    if (key == coefficient.key) return &coefficient;
  }
  return nullptr;
}

const std::vector<ScheduleName>& schedule_kind_names() {
  static const std::vector<ScheduleName> names = {{ScheduleKind::constant, "constant"},
                                                  {ScheduleKind::step, "step"},
                                                  {ScheduleKind::exponential, "exponential"},
                                                  {ScheduleKind::cosine, "cosine"},
                                                  {ScheduleKind::piecewise, "piecewise"}};
  return names;
}

std::optional<ScheduleKind> find_schedule_kind(const std::string& name) {
  return kind_named(schedule_kind_names(), name);
}

std::string to_string(ScheduleKind kind) {
  return name_of(schedule_kind_names(), kind);
}

}  // namespace sgdwalk
