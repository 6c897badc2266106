// The config's keys: type, default, allowed range and meaning, in one table. The validator
// (config.cpp) reads every fixed key through this table, and `sgdwalk info --config-reference`
// prints it (with the landscape parameter tables of landscape_params.hpp) as docs/CONFIG.md, so
// the reference cannot drift from what the validator accepts; a test compares the two.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace sgdwalk {

enum class KeyType {
  integer,
  number,
  string,
  boolean,
  numbers,         ///< array of numbers
  integers,        ///< array of integers
  strings,         ///< array of strings
  points,          ///< array of points (arrays of numbers)
  table,           ///< a sub-table, documented as its own section
  array_of_tables  ///< [[section]], documented as its own section
};

/// At most this many values per swept parameter, and this many variants in a grid.
inline constexpr std::int64_t kMaxSweepValues = 100000;
inline constexpr std::int64_t kMaxVariants = 10000000;

/// An integer bound that depends on other keys, resolved when the config is read.
enum class Limit {
  fixed,           ///< the bound written in the table
  steps,           ///< run.steps
  last_coordinate  ///< the landscape's dimension − 1
};

struct ConfigKey {
  std::string section;  ///< "run", "observables.histogram", ...
  std::string name;
  KeyType type = KeyType::number;
  std::string meaning;

  // integer: default and inclusive range
  std::int64_t integer_default = 0;
  std::int64_t integer_min = 0;
  std::int64_t integer_max = std::numeric_limits<std::int64_t>::max();
  Limit integer_max_limit = Limit::fixed;

  // number (and the elements of numbers): default and range
  double number_default = 0;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;

  // string: default and the allowed values (empty: any, checked by the validator)
  std::string string_default;
  std::vector<std::string> allowed;

  bool boolean_default = false;

  // arrays: element count
  std::size_t min_items = 0, max_items = 0;

  /// How the default is documented when it is computed, conditional or absent ("required");
  /// empty: printed from the default value above.
  std::string default_text;
  /// How the allowed values are documented when the range above does not say it all; empty:
  /// printed from the range above.
  std::string range_text;
};

/// Every fixed key of the config, section by section, in documentation order. Landscape
/// parameters come from landscape_parameters() and swept parameters are any dynamics key or
/// landscape parameter; those are documented from their own tables.
const std::vector<ConfigKey>& config_keys();

/// The entry of `section`.`name`; throws std::logic_error if there is none (so the validator
/// cannot read a key the reference does not document).
const ConfigKey& config_key(std::string_view section, std::string_view name);

/// Whether a swept parameter ("learning_rate", "learning_rate_schedule.warmup_steps", a landscape
/// parameter) is an integer key: the schedules' step counts. The resolved config, summary.json and
/// results.h5 give those values as integers; every other swept parameter is a real number.
bool is_integer_sweep_parameter(std::string_view swept_name);

/// "> 0", ">= 0 and <= 1", "any finite number", ...
std::string number_range_text(double min, double max, bool min_exclusive);

/// "integers in [1, 4294967295]" with bounds that depend on other keys named ("[0, run.steps]").
std::string integer_range_text(const ConfigKey& key);

/// docs/CONFIG.md: every key with its type, default, allowed values and meaning (Markdown).
std::string config_reference_markdown();

}  // namespace sgdwalk
