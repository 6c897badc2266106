#include "config/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <toml.hpp>

#include "analysis/diagnostics.hpp"
#include "backend/dynamics_table.hpp"
#include "config/config_keys.hpp"
#include "config/landscape_params.hpp"
#include "rare_events/ffs_typed.hpp"
#include "run/memory.hpp"

namespace sgdwalk {
namespace {

using Json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

/// A value as written in TOML, on one line (toml11 breaks arrays and tables over lines: an error
/// message names the value on one line), shortened to 60 characters.
std::string describe(const toml::value& value) {
  const std::string formatted =
      toml::format(value, std::numeric_limits<std::size_t>::max(), 15, true, true);
  std::string text;
  std::istringstream lines(formatted);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    if (!text.empty()) {
      if (line.front() == ']' || line.front() == '}') {
        if (text.back() == ',') text.pop_back();
      } else if (text.back() == ',') {
        text += ' ';
      } else if (text.back() != '[' && text.back() != '{') {
        text += ", ";
      }
    }
    text += line;
  }
  // ", " between elements (toml11's inline form has bare commas), outside strings.
  std::string spaced;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    spaced += c;
    if (quote != 0) {
      if (c == '\\' && quote == '"' && i + 1 < text.size()) {
        spaced += text[++i];
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == ',' && i + 1 < text.size() && text[i + 1] != ' ') {
      spaced += ' ';
    }
  }
  if (value.is_table()) spaced = "{" + spaced + "}";
  if (spaced.size() > 60) spaced = spaced.substr(0, 57) + "...";
  return spaced;
}

std::string type_name(const toml::value& value) {
  switch (value.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "a date/time";
  }
}

/// Whether the config reference (docs/CONFIG.md) documents `section`.`key`. The validator reads
/// no other key, so the reference cannot fall behind what is accepted. Section names and swept
/// parameters are documented from their own tables.
bool documented(const std::string& section, const std::string& key) {
  // The linspace/logspace forms of sweep values and sample_steps are documented with their keys.
  if (section.empty() || section == "sweep" || section == "sweep value" ||
      section == "sample steps value") {
    return true;
  }
  for (const auto& entry : config_keys()) {
    if (entry.section == section && entry.name == key) return true;
  }
  if (section == "landscape") {
    // Each registered landscape's parameters (array parameters by their array's name).
    for (const auto& entry : landscape_registry()) {
      for (const auto& parameter : entry.parameters) {
        if ((parameter.array.empty() ? parameter.name : parameter.array) == key) return true;
      }
    }
  }
  return false;
}

/// Values of other keys that bound a key's range (Limit in the key table).
struct Limits {
  std::int64_t steps = 0;
  int dim = 1;
};

/// Reads one TOML table, remembering which keys were used so the rest can be reported as unknown.
class TableReader {
 public:
  /// `section` names the table's keys in the key table (config_keys.hpp); `path` is where the
  /// table is in this file, for messages ("observables.histogram[2]").
  TableReader(const std::string& source, std::string section, std::string path,
              const toml::value* table, Limits limits = {})
      : source_(source),
        section_(std::move(section)),
        path_(std::move(path)),
        table_(table),
        limits_(limits) {
    if (table_ != nullptr && !table_->is_table()) {
      fail_at(path_,
              fmt::format("expected a table, got {} {}", type_name(*table_), describe(*table_)));
    }
  }

  bool has(const std::string& key) const {
    return table_ != nullptr && table_->as_table().count(key) != 0;
  }

  const toml::value* get(const std::string& key) {
    if (!documented(section_, key)) {
      throw std::logic_error(fmt::format(
          "the validator reads {}.{}, which the key table (host/config/config_keys.cpp) lacks",
          section_, key));
    }
    known_.insert(key);
    if (!has(key)) return nullptr;
    return &table_->as_table().at(key);
  }

  std::string key_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  [[noreturn]] void fail_at(const std::string& key_path, const std::string& message) const {
    throw ConfigError(fmt::format("{}: key '{}': {}", source_, key_path, message));
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    fail_at(key_path(key), message);
  }

  /// The number `key` of this section, with the key table's default and range.
  double number(const std::string& key) {
    const ConfigKey& spec = config_key(section_, key);
    return number(key, spec.number_default, spec.min, spec.max, spec.min_exclusive);
  }

  /// toml11 reads numbers by stream extraction, which saturates a literal beyond the type
  /// without a word (1e400 becomes 1.8e308, 1e-400 becomes 0, 2^70 becomes 2^63 − 1): a
  /// saturated value is compared with its literal, and refused when they differ.
  void check_representable(const std::string& key, const toml::value& value) const {
    const bool integer = value.is_integer();
    if (value.is_floating()) {
      const double x = value.as_floating();
      if (x != 0 && std::fabs(x) != std::numeric_limits<double>::max()) return;
    } else if (!integer) {
      return;
    }
    const toml::source_location where = value.location();
    const std::string line = where.line_str();
    if (where.column() < 1 || where.column() - 1 >= line.size()) return;
    std::string literal;
    for (const char c : line.substr(where.column() - 1, where.region())) {
      if (c != '_') literal += c;
    }
    if (!literal.empty() && literal.front() == '+') literal.erase(0, 1);
    bool saturated = false;
    if (integer) {
      const std::int64_t x = value.as_integer();
      const int base = literal.rfind("0x", 0) == 0   ? 16
                       : literal.rfind("0o", 0) == 0 ? 8
                       : literal.rfind("0b", 0) == 0 ? 2
                                                     : 10;
      if (base == 10) {
        const bool extreme = x == std::numeric_limits<std::int64_t>::max() ||
                             x == std::numeric_limits<std::int64_t>::min();
        saturated = extreme && literal != std::to_string(x);
      } else {
        // Hexadecimal and octal literals saturate, binary ones wrap: read the digits (TOML's
        // prefixed integers are non-negative) and compare.
        std::uint64_t exact = 0;
        for (std::size_t i = 2; i < literal.size() && !saturated; ++i) {
          const int digit = std::isdigit(static_cast<unsigned char>(literal[i]))
                                ? literal[i] - '0'
                                : std::tolower(static_cast<unsigned char>(literal[i])) - 'a' + 10;
          saturated =
              exact > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) -
                       static_cast<std::uint64_t>(digit)) /
                          static_cast<std::uint64_t>(base);
          exact = exact * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
        }
        saturated = saturated || exact != static_cast<std::uint64_t>(x);
      }
    } else {
      errno = 0;
      const double exact = std::strtod(literal.c_str(), nullptr);
      saturated = exact != value.as_floating() || (errno == ERANGE && exact == 0);
    }
    if (saturated) {
      fail(key, fmt::format("value {} is beyond what a {} holds; allowed: {}", literal,
                            integer ? "64-bit integer" : "double",
                            integer ? "integers in [-2^63, 2^63 - 1]"
                                    : "magnitudes from 4.9e-324 to 1.8e308, or 0"));
    }
  }

  double number(const std::string& key, double fallback, double min, double max,
                bool min_exclusive = false) {
    const toml::value* value = get(key);
    if (value == nullptr) return fallback;
    return as_number(key, *value, min, max, min_exclusive);
  }

  double as_number(const std::string& key, const toml::value& value, double min, double max,
                   bool min_exclusive = false) const {
    check_representable(key, value);
    double x = 0;
    if (value.is_integer()) {
      x = static_cast<double>(value.as_integer());
    } else if (value.is_floating()) {
      x = value.as_floating();
    } else {
      fail(key, fmt::format("expected a number, got {} {}", type_name(value), describe(value)));
    }
    if (!std::isfinite(x))
      fail(key, fmt::format("value {} is not finite; allowed: a finite number", describe(value)));
    const bool below = min_exclusive ? !(x > min) : !(x >= min);
    if (below || x > max) {
      fail(key, fmt::format("value {} is out of range; allowed: {}", describe(value),
                            range_text(min, max, min_exclusive)));
    }
    return x;
  }

  /// The integer `key` of this section, with the key table's default and range.
  std::int64_t integer(const std::string& key) {
    const ConfigKey& spec = config_key(section_, key);
    std::int64_t max = spec.integer_max;
    if (spec.integer_max_limit == Limit::steps) max = limits_.steps;
    if (spec.integer_max_limit == Limit::last_coordinate) max = limits_.dim - 1;
    return integer(key, spec.integer_default, spec.integer_min, max);
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max) {
    const toml::value* value = get(key);
    if (value == nullptr) return fallback;
    return as_integer(key, *value, min, max);
  }

  std::int64_t as_integer(const std::string& key, const toml::value& value, std::int64_t min,
                          std::int64_t max) const {
    check_representable(key, value);
    std::int64_t x = 0;
    if (value.is_integer()) {
      x = value.as_integer();
    } else if (value.is_floating() && std::isfinite(value.as_floating()) &&
               value.as_floating() == std::floor(value.as_floating()) &&
               std::fabs(value.as_floating()) < 9.0e15) {
      x = static_cast<std::int64_t>(value.as_floating());  // 1e6 is a fine walker count
    } else if (value.is_floating() && std::isfinite(value.as_floating()) &&
               value.as_floating() == std::floor(value.as_floating())) {
      // 1e19: a whole number, but a float beyond 9e15 need not be the integer written.
      fail(key, fmt::format("value {} is out of range for a float; allowed: integers in [{}, {}] "
                            "(a float form such as 1e6 up to 9e15; write larger ones as integers)",
                            describe(value), min, max));
    } else {
      fail(key, fmt::format("expected an integer, got {} {}", type_name(value), describe(value)));
    }
    if (x < min || x > max) {
      fail(key, fmt::format("value {} is out of range; allowed: integers in [{}, {}]",
                            describe(value), min, max));
    }
    return x;
  }

  /// The string `key` of this section, with the key table's default and allowed values.
  std::string string(const std::string& key) {
    const ConfigKey& spec = config_key(section_, key);
    return string(key, spec.string_default, spec.allowed);
  }

  std::string string(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) {
    const toml::value* value = get(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) {
      fail(key, fmt::format("expected a string, got {} {}", type_name(*value), describe(*value)));
    }
    const std::string text = value->as_string().str;
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
      fail(key, fmt::format("value \"{}\" is not allowed; allowed: {}{}", text,
                            fmt::join(allowed, ", "), suggestion(text, allowed)));
    }
    return text;
  }

  bool boolean(const std::string& key) {
    const toml::value* value = get(key);
    if (value == nullptr) return config_key(section_, key).boolean_default;
    if (!value->is_boolean()) {
      fail(key,
           fmt::format("expected true or false, got {} {}", type_name(*value), describe(*value)));
    }
    return value->as_boolean();
  }

  /// The array of numbers `key` of this section, with the key table's element range and count.
  std::vector<double> numbers(const std::string& key) {
    const ConfigKey& spec = config_key(section_, key);
    return numbers(key, spec.min_items, spec.max_items, spec.min, spec.max);
  }

  std::vector<double> numbers(const std::string& key, std::size_t min_size, std::size_t max_size,
                              double min, double max) {
    const toml::value* value = get(key);
    if (value == nullptr) return {};
    return as_numbers(key, *value, min_size, max_size, min, max);
  }

  std::vector<double> as_numbers(const std::string& key, const toml::value& value,
                                 std::size_t min_size, std::size_t max_size, double min,
                                 double max) const {
    if (!value.is_array()) {
      fail(key, fmt::format("expected an array of numbers, got {} {}", type_name(value),
                            describe(value)));
    }
    const auto& array = value.as_array();
    if (array.size() < min_size || array.size() > max_size) {
      fail(key,
           fmt::format("array {} has {} element(s); allowed: {}", describe(value), array.size(),
                       min_size == max_size ? std::to_string(min_size)
                                            : fmt::format("{} to {}", min_size, max_size)));
    }
    std::vector<double> result;
    for (std::size_t i = 0; i < array.size(); ++i) {
      result.push_back(as_number(fmt::format("{}[{}]", key, i), array[i], min, max));
    }
    return result;
  }

  /// For a required key that is missing: " ('y_rang' here may be a misspelling of it)" when a
  /// key of the table that the section does not have is close to it.
  std::string misspelling_hint(const std::string& key) const {
    if (table_ == nullptr) return "";
    for (const auto& [name, value] : table_->as_table()) {
      if (!documented(section_, name) && closest_match(name, {key}) == key) {
        return fmt::format(" ('{}' here may be a misspelling of it)", name);
      }
    }
    return "";
  }

  /// Reports keys that were never asked for.
  void reject_unknown() const {
    if (table_ == nullptr) return;
    for (const auto& [key, value] : table_->as_table()) {
      if (known_.count(key) == 0) {
        const std::vector<std::string> candidates(known_.begin(), known_.end());
        fail(key, fmt::format("unknown key{}; known keys here: {}", suggestion(key, candidates),
                              fmt::join(candidates, ", ")));
      }
    }
  }

  static std::string suggestion(const std::string& word, const std::vector<std::string>& options) {
    const std::string best = closest_match(word, options);
    if (best.empty()) return "";
    return fmt::format(" (did you mean '{}'?)", best);
  }

  static std::string range_text(double min, double max, bool min_exclusive) {
    return number_range_text(min, max, min_exclusive);
  }

  const std::string& source() const { return source_; }
  const toml::value* table() const { return table_; }

 private:
  std::string source_;
  std::string section_;
  std::string path_;
  const toml::value* table_;
  Limits limits_;
  std::set<std::string> known_;
};

/// Values of one swept parameter: a list, or {linspace = [a, b, n]} / {logspace = [e0, e1, n]}.
std::vector<double> sweep_values(TableReader& sweep, const std::string& key,
                                 const toml::value& value, std::vector<std::string>& hints) {
  constexpr auto kMaxValues = static_cast<std::size_t>(kMaxSweepValues);
  if (value.is_array()) {
    auto values = sweep.as_numbers(key, value, 1, kMaxValues, -kInf, kInf);
    return values;
  }
  if (value.is_table()) {
    TableReader spec(sweep.source(), "sweep value", sweep.key_path(key), &value);
    const bool linear = spec.has("linspace");
    const bool logarithmic = spec.has("logspace");
    if (linear == logarithmic) {
      sweep.fail(key,
                 "expected a list of values, {linspace = [start, stop, count]} or "
                 "{logspace = [start_exponent, stop_exponent, count]}");
    }
    const std::string form = linear ? "linspace" : "logspace";
    const toml::value& triple = *spec.get(form);
    if (!triple.is_array() || triple.as_array().size() != 3) {
      spec.fail(form, fmt::format("expected [start, stop, count], got {}", describe(triple)));
    }
    const double start = spec.as_number(form + "[0]", triple.as_array()[0], -kInf, kInf);
    const double stop = spec.as_number(form + "[1]", triple.as_array()[1], -kInf, kInf);
    const auto count = spec.as_integer(form + "[2]", triple.as_array()[2], 1, kMaxSweepValues);
    spec.reject_unknown();
    std::vector<double> values;
    for (std::int64_t i = 0; i < count; ++i) {
      const double t = count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(count - 1);
      // numpy's form; when stop − start overflows (both ends near the largest double), the
      // blend, which stays finite.
      const double u =
          std::isfinite(stop - start) ? start + (stop - start) * t : start * (1.0 - t) + stop * t;
      values.push_back(linear ? u : std::pow(10.0, u));
    }
    // Exponents strictly between 0 and 1 are almost always values written where exponents belong
    // ({logspace = [0.01, 0.1, 5]} sweeps 1.02 ... 1.26): valid, so a hint rather than an error.
    if (logarithmic && start > 0 && start < 1 && stop > 0 && stop < 1) {
      hints.push_back(fmt::format(
          "{}: logspace takes exponents of 10, so [{:g}, {:g}, {}] sweeps {:.4g} ... {:.4g}; "
          "for values from {:g} to {:g} write {{logspace = [{:.4g}, {:.4g}, {}]}}",
          sweep.key_path(key), start, stop, count, values.front(), values.back(), start, stop,
          std::log10(start), std::log10(stop), count));
    }
    return values;
  }
  sweep.fail(key, fmt::format("expected a list of values or a linspace/logspace table, got {} {}",
                              type_name(value), describe(value)));
}

/// The dynamics parameters a variant may set or sweep, besides the landscape's.
const std::vector<std::string>& dynamics_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> names;
    for (const auto& key : config_keys()) {
      if (key.section == "dynamics" && key.type == KeyType::number) names.push_back(key.name);
    }
    return names;
  }();
  return keys;
}

/// Refuses a [dynamics] value outside its key's range; `where` names it (dynamics.KEY, or
/// sweep.KEY[i] for a swept one).
void check_dynamics_range(const std::string& source, const std::string& where,
                          const std::string& key, double value) {
  const ConfigKey& spec = config_key("dynamics", key);
  const bool below = spec.min_exclusive ? !(value > spec.min) : !(value >= spec.min);
  if (!std::isfinite(value) || below || value > spec.max) {
    throw ConfigError(fmt::format(
        "{}: key '{}': value {} is out of range; allowed: {}", source, where, value,
        spec.range_text.empty() ? number_range_text(spec.min, spec.max, spec.min_exclusive)
                                : spec.range_text));
  }
}

/// Refuses [dynamics] values that give one quantity twice (learning_rate and dt, noise_strength
/// and temperature).
void check_no_synonyms(const std::string& source, const std::map<std::string, double>& values) {
  if (values.count("learning_rate") != 0 && values.count("dt") != 0) {
    throw ConfigError(fmt::format(
        "{}: key 'dynamics.dt': give either learning_rate (SGD) or dt (Langevin time step), "
        "not both",
        source));
  }
  if (values.count("noise_strength") != 0 && values.count("temperature") != 0) {
    throw ConfigError(fmt::format(
        "{}: key 'dynamics.temperature': give either noise_strength (sigma) or temperature "
        "(Delta_S = learning_rate * sigma), not both",
        source));
  }
}

void resolve_dynamics(const std::string& source, const std::map<std::string, double>& values,
                      NoiseDistribution distribution, OptimizerKind optimizer, Variant& variant) {
  auto has = [&](const char* key) { return values.count(key) != 0; };
  if (has("alpha") && distribution != NoiseDistribution::alpha_stable) {
    throw ConfigError(
        fmt::format("{}: key 'dynamics.alpha': the tail index applies only to noise_distribution = "
                    "\"alpha_stable\" (this config's noise_distribution is \"{}\")",
                    source, to_string(distribution)));
  }
  check_no_synonyms(source, values);
  if (!has("learning_rate") && !has("dt")) {
    throw ConfigError(fmt::format(
        "{}: key 'dynamics.learning_rate': missing; give learning_rate (or dt), a number > 0",
        source));
  }
  if (!has("noise_strength") && !has("temperature")) {
    throw ConfigError(fmt::format(
        "{}: key 'dynamics.noise_strength': missing; give noise_strength (or temperature), a "
        "number >= 0",
        source));
  }
  variant.learning_rate = has("learning_rate") ? values.at("learning_rate") : values.at("dt");
  variant.noise_strength = has("noise_strength") ? values.at("noise_strength")
                                                 : values.at("temperature") / variant.learning_rate;
  variant.epsilon =
      has("epsilon") ? values.at("epsilon") : config_key("dynamics", "epsilon").number_default;
  variant.alpha =
      has("alpha") ? values.at("alpha") : config_key("dynamics", "alpha").number_default;
  for (const auto& coefficient : optimizer_coefficients()) {
    variant.*coefficient.value =
        has(coefficient.key) ? values.at(coefficient.key) : coefficient.default_value;
  }
  // In key order (`values` is sorted), so that of several misplaced keys the same one is named.
  for (const auto& [key, value] : values) {
    const OptimizerCoefficient* coefficient = find_optimizer_coefficient(key);
    if (coefficient != nullptr && !coefficient->read_by(optimizer)) {
      std::vector<std::string> names;
      for (const OptimizerKind kind : coefficient->optimizers) names.push_back(to_string(kind));
      throw ConfigError(fmt::format(
          "{}: key 'dynamics.{}': applies to optimizer {} only; the optimizer is \"{}\"", source,
          key, fmt::join(names, " and "), to_string(optimizer)));
    }
  }
  // Checked after the sweep is applied (a swept value replaces the base one), each against its
  // own entry of the key table.
  for (const auto& [key, value] : values)
    check_dynamics_range(source, "dynamics." + key, key, value);
}

OptimizerKind parse_optimizer_kind(const std::string& name) {
  if (const auto kind = find_optimizer(name)) return *kind;
  // The key table's allowed values (from the same table) were checked: a name here is a bug.
  throw std::logic_error("dynamics.optimizer: '" + name + "' is no optimizer of dynamics_table");
}

/// The id of a noise model by config name (the key table's allowed values are the registry's).
NoiseKind parse_noise_kind(const std::string& name) {
  NoiseKind kind = NoiseKind::hessian;
  for_each_noise_model([&]<class M>() {
    if (name == M::name) kind = M::kind;
  });
  return kind;
}

/// run.name names a directory under runs/ and a histogram's name a group of results.h5 (and
/// figure files): plain file names, so that they cannot point elsewhere.
void check_plain_name(const TableReader& table, const std::string& key, const std::string& name,
                      const std::string& allowed) {
  const auto bad = [&](const std::string& why) {
    // The name as it can be shown: control characters escaped (a NUL cut the message, an escape
    // sequence went to the terminal), a long one shortened.
    std::size_t cut = std::min<std::size_t>(name.size(), 80);
    while (cut < name.size() && cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80)
      --cut;  // not inside a UTF-8 character
    std::string shown;
    for (const char c : name.substr(0, cut)) {
      const auto byte = static_cast<unsigned char>(c);
      shown += byte < 0x20 || byte == 0x7f ? fmt::format("\\x{:02x}", byte) : std::string(1, c);
    }
    if (name.size() > cut) shown += "...";
    table.fail(key, fmt::format("value \"{}\" {}; allowed: {}", shown, why, allowed));
  };
  if (name.empty()) bad("is empty");
  if (name == "." || name == "..") bad("is not a name");
  if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos) {
    bad("is a path");
  }
  if (name.size() > 200) bad(fmt::format("has {} bytes (UTF-8)", name.size()));
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("has a control character");
  }
}

/// [rare_event] into plan.ffs (and the resolved config); the checks that need the variants are
/// in check_rare_event_start.
void read_rare_event(const std::string& source, const toml::value* value, const Limits& limits,
                     RunPlan& plan, Json& resolved) {
  TableReader table(source, "rare_event", "rare_event", value, limits);
  FfsSpec& spec = plan.ffs;
  const std::string method = table.string("method");
  spec.enabled = method == "ffs";
  spec.order_name = table.string("order_parameter");
  const bool negated = spec.order_name.front() == '-';
  const std::string base = negated ? spec.order_name.substr(1) : spec.order_name;
  spec.sign = negated ? -1.0 : 1.0;
  if (base == "basin_distance") {
    spec.order = ffs::OrderKind::basin_distance;
  } else if (base == "progress") {
    spec.order = ffs::OrderKind::progress;
  } else if (base == "loss") {
    spec.order = ffs::OrderKind::loss;
  } else if (base == "energy") {
    spec.order = ffs::OrderKind::energy;
  } else {
    spec.order = ffs::OrderKind::coordinate;
    spec.coordinate = base == "x" ? 0 : base == "y" ? 1 : 2;
    if (spec.coordinate >= limits.dim) {
      table.fail("order_parameter",
                 fmt::format("value \"{}\" names coordinate {} of a {}-D landscape; allowed: "
                             "coordinates 0 to {}",
                             spec.order_name, spec.coordinate, limits.dim, limits.dim - 1));
    }
  }
  const bool has_lambda_a = table.has("lambda_A");
  spec.lambda_a = table.number("lambda_A");
  spec.interfaces = table.numbers("interfaces");
  const bool has_lambda_0 = table.has("lambda_0");
  bool has_lambda_b = table.has("lambda_B");
  spec.lambda_0 = table.number("lambda_0");
  spec.lambda_b = table.number("lambda_B");
  // The energy order parameter's B is the other basin, where λ = +inf: the last interface is
  // +inf, appended to the given ones (which are energies), and is lambda_B of automatic placement.
  const bool energy = spec.order == ffs::OrderKind::energy;
  if (energy && spec.enabled) {
    if (has_lambda_b) {
      table.fail("lambda_B",
                 "is not used with order_parameter = \"energy\" (B is the other basin, λ = "
                 "+inf); allowed: remove it");
    }
    spec.lambda_b = std::numeric_limits<double>::infinity();
    has_lambda_b = true;
  }
  spec.placement_probability = table.number("crossing_probability");
  spec.placement_trials = table.integer("placement_trials");
  spec.trials = table.integer("trials");
  spec.replicas = static_cast<int>(table.integer("replicas"));
  spec.equilibration_steps = table.integer("equilibration_steps");
  spec.max_trial_steps = table.integer("max_trial_steps");
  spec.max_stored_states = table.integer("max_stored_states");
  spec.store_states = table.boolean("store_states");
  table.reject_unknown();
  if (!spec.enabled) {
    if (value != nullptr) {
      for (const auto& [key, entry] : value->as_table()) {
        if (key != "method")
          table.fail(key,
                     "is only used with method = \"ffs\"; allowed: remove it, or set "
                     "method = \"ffs\"");
      }
    }
    return;
  }
  if (!has_lambda_a) table.fail("lambda_A", "is required with method = \"ffs\"");
  if (!spec.interfaces.empty()) {
    for (const char* key : {"lambda_0", "lambda_B", "crossing_probability", "placement_trials"}) {
      if (table.has(key))
        table.fail(key,
                   "is for automatic placement; allowed: give interfaces or lambda_0 and "
                   "lambda_B, not both");
    }
    if (!(spec.interfaces.front() > spec.lambda_a)) {
      table.fail("interfaces[0]",
                 fmt::format("value {} lies inside A (λ < lambda_A = {}); allowed: > {}",
                             spec.interfaces.front(), spec.lambda_a, spec.lambda_a));
    }
    for (std::size_t i = 1; i < spec.interfaces.size(); ++i) {
      if (!(spec.interfaces[i] > spec.interfaces[i - 1])) {
        table.fail(
            fmt::format("interfaces[{}]", i),
            fmt::format("value {} is not above interfaces[{}] = {}; allowed: strictly "
                        "increasing interfaces, > {}",
                        spec.interfaces[i], i - 1, spec.interfaces[i - 1], spec.interfaces[i - 1]));
      }
    }
  } else {
    if (!has_lambda_0 || !has_lambda_b) {
      table.fail(has_lambda_0 ? "lambda_B" : "lambda_0",
                 "is required: give interfaces = [λ_0, ..., λ_n], or lambda_0 and lambda_B for "
                 "automatic placement");
    }
    if (!(spec.lambda_0 > spec.lambda_a)) {
      table.fail("lambda_0",
                 fmt::format("value {} lies inside A (λ < lambda_A = {}); allowed: > {}",
                             spec.lambda_0, spec.lambda_a, spec.lambda_a));
    }
    if (!(spec.lambda_b > spec.lambda_0)) {
      table.fail("lambda_B", fmt::format("value {} is not above lambda_0 = {}; allowed: > {}",
                                         spec.lambda_b, spec.lambda_0, spec.lambda_0));
    }
    if (spec.placement_trials == 0) spec.placement_trials = spec.trials;
    if (spec.placement_trials < 10) {
      table.fail("placement_trials",
                 fmt::format("value {} is too few to place an interface; allowed: 0 (= trials) "
                             "or integers in [10, 1000000000]",
                             spec.placement_trials));
    }
  }
  if (spec.equilibration_steps >= plan.steps) {
    table.fail("equilibration_steps",
               fmt::format("value {} leaves no counted flux-stage step; allowed: integers in [0, "
                           "run.steps - 1 = {}]",
                           spec.equilibration_steps, plan.steps - 1));
  }
  if (plan.steps > (std::int64_t{1} << 46)) {
    throw ConfigError(
        fmt::format("{}: key 'run.steps': value {} is too many flux-stage steps for "
                    "forward flux sampling; allowed: at most 2^46",
                    source, plan.steps));
  }
  Json ffs_json = {{"method", method},
                   {"order_parameter", spec.order_name},
                   {"lambda_A", spec.lambda_a},
                   {"trials", spec.trials},
                   {"replicas", spec.replicas},
                   {"equilibration_steps", spec.equilibration_steps},
                   {"max_trial_steps", spec.max_trial_steps},
                   {"max_stored_states", spec.max_stored_states},
                   {"store_states", spec.store_states}};
  if (spec.automatic()) {
    ffs_json["lambda_0"] = spec.lambda_0;
    ffs_json["lambda_B"] = spec.lambda_b;
    ffs_json["crossing_probability"] = spec.placement_probability;
    ffs_json["placement_trials"] = spec.placement_trials;
  } else {
    ffs_json["interfaces"] = spec.interfaces;
  }
  if (energy) {
    // JSON has no +inf: B stays implicit in the resolved config, as in the input.
    ffs_json.erase("lambda_B");
    if (!spec.automatic()) spec.interfaces.push_back(spec.lambda_b);
  }
  resolved["rare_event"] = ffs_json;
}

/// A float run converts its numbers to float once (host/backend/physics_dispatch.hpp): one beyond
/// float's range would become ±inf there and every walker would diverge at its first step, under a
/// hint about the learning rate. Such a value is named instead (`key` as the file gives it).
void check_float_value(const std::string& source, const RunPlan& plan, const std::string& key,
                       double value, const std::string& derived = "") {
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  if (plan.precision != Precision::f32 || !std::isfinite(value)) return;
  if (value != 0 && static_cast<float>(value) == 0) {
    // A learning rate of 1e-46 would be 0 there: walkers that never move, under a report of 1e-46.
    throw ConfigError(fmt::format(
        "{}: key '{}': {}value {} is 0 in precision = \"float\" (nonzero |value| >= {:.7g}); "
        "allowed: a value within it, or precision = \"double\"",
        source, key, derived, value, std::numeric_limits<float>::denorm_min()));
  }
  if (std::fabs(value) <= kFloatMax) return;
  throw ConfigError(fmt::format(
      "{}: key '{}': {}value {} is beyond the range of precision = \"float\" (|value| <= "
      "{:.7g}); allowed: a value within it, or precision = \"double\"",
      source, key, derived, value, kFloatMax));
}

/// A coefficient in [0, 1) (momentum, β1, β2, rmsprop_decay) that float rounds to 1: the walker
/// would run another optimizer (undamped heavy ball, moments that never forget).
void check_float_fraction(const std::string& source, const RunPlan& plan, const std::string& key,
                          const std::string& name, double value) {
  const OptimizerCoefficient* coefficient = find_optimizer_coefficient(name);
  if (plan.precision != Precision::f32 || coefficient == nullptr || !coefficient->fraction ||
      static_cast<float>(value) != 1.0f)
    return;
  throw ConfigError(fmt::format(
      "{}: key '{}': value {} is 1 in precision = \"float\"; allowed: a value <= {:.9g} "
      "(the largest float below 1), or precision = \"double\"",
      source, key, value, static_cast<double>(std::nextafter(1.0f, 0.0f))));
}

/// The noise a variant's walkers use: σ (given, or temperature / learning_rate), 2σ (the noise
/// models' variance factor) and the temperature η·σ (outputs) must be finite, 2σ also in float.
/// A σ of 1e308 or a temperature of 1e10 at dt = 1e-300 would otherwise run every walker to
/// infinity at step 1 and store σ = inf.
void check_noise_scale(const std::string& source, const RunPlan& plan, const std::string& key,
                       double value, const Variant& variant) {
  const double limit = plan.precision == Precision::f32
                           ? static_cast<double>(std::numeric_limits<float>::max())
                           : std::numeric_limits<double>::max();
  const double sigma = variant.noise_strength;
  const double two_sigma = 2.0 * sigma;
  const double temperature = variant.learning_rate * sigma;
  if (std::isfinite(sigma) && two_sigma <= limit && std::isfinite(temperature)) return;
  throw ConfigError(fmt::format(
      "{}: key '{}': value {:g} gives noise_strength sigma = {:g}, 2 sigma = {:g} and temperature "
      "learning_rate x sigma = {:g}; allowed: values that give 2 sigma <= {:.7g}{} and a finite "
      "temperature",
      source, key, value, sigma, two_sigma, temperature, limit,
      plan.precision == Precision::f32 ? " (precision = \"float\")" : ""));
}

/// The start positions of a float run (check_float_value; the variants' numbers are checked as
/// they are resolved, by the names the file gives them).
void check_float_positions(const std::string& source, const RunPlan& plan) {
  for (std::size_t i = 0; i < plan.initial_positions.size(); ++i)
    for (std::size_t d = 0; d < plan.initial_positions[i].size(); ++d)
      check_float_value(source, plan, fmt::format("init.positions[{}][{}]", i, d),
                        plan.initial_positions[i][d]);
}

/// Every init position must lie in A on every variant's landscape (the flux stage starts there).
void check_rare_event_start(const std::string& source, const RunPlan& plan) {
  // The FFS stages draw Gaussian noise only (include/sgdwalk/ffs.hpp); α-stable trials would need
  // their own word layout and jump-over rules.
  if (plan.noise_distribution != NoiseDistribution::gaussian) {
    throw ConfigError(fmt::format(
        "{}: key 'dynamics.noise_distribution': \"{}\" is not supported with rare_event.method = "
        "\"ffs\"; allowed: \"gaussian\"",
        source, to_string(plan.noise_distribution)));
  }
  // Every optimizer and schedule is supported: the trial states carry the optimizer state and
  // the walker's step index (include/sgdwalk/ffs.hpp).
  if (plan.ffs.order == ffs::OrderKind::energy) {
    if (plan.optimizer != OptimizerKind::momentum && plan.optimizer != OptimizerKind::nesterov) {
      throw ConfigError(fmt::format(
          "{}: key 'rare_event.order_parameter': value \"energy\" needs a velocity, but "
          "dynamics.optimizer = \"{}\"; allowed: \"energy\" with optimizer \"momentum\" or "
          "\"nesterov\", or another order parameter",
          source, to_string(plan.optimizer)));
    }
  }
  // The basin distance is the landscape's signed distance from its basin boundary, and the energy
  // is +inf beyond that boundary: the landscape must have one (basin_signed_distance in
  // include/sgdwalk/ffs.hpp, NaN where unknown).
  if (plan.ffs.order == ffs::OrderKind::energy ||
      plan.ffs.order == ffs::OrderKind::basin_distance) {
    const std::string& order = plan.ffs.order_name;
    RunPlan boundary = plan;
    boundary.ffs.order = ffs::OrderKind::basin_distance;
    boundary.ffs.sign = 1;
    WalkerArrays probe;
    probe.resize(1, plan.dim, 0);
    for (std::int64_t v = 0; v < plan.variant_count(); ++v) {
      if (std::isnan(ffs_order_values(boundary, v, probe, {0}, 0, 1).at(0))) {
        throw ConfigError(fmt::format(
            "{}: key 'rare_event.order_parameter': value \"{}\" needs a landscape with a "
            "known basin boundary, but landscape.kind = \"{}\" has none; allowed: \"{}\" on "
            "{}, elsewhere a coordinate (\"x\", ...), \"progress\" or \"loss\" "
            "(docs/EXTENDING.md: a landscape's basin boundary)",
            source, order, plan.landscape, order,
            fmt::join(landscapes_with_basin_boundary(), ", ")));
      }
    }
  }
  WalkerArrays starts;
  starts.resize(static_cast<std::int64_t>(plan.initial_positions.size()), plan.dim, 0);
  for (std::size_t i = 0; i < plan.initial_positions.size(); ++i) {
    for (int d = 0; d < plan.dim; ++d) {
      starts.position[i * static_cast<std::size_t>(plan.dim) + static_cast<std::size_t>(d)] =
          plan.initial_positions[i][static_cast<std::size_t>(d)];
    }
  }
  for (std::int64_t v = 0; v < plan.variant_count(); ++v) {
    const auto lambdas = ffs_order_values(
        plan, v, starts, std::vector<std::int64_t>(plan.initial_positions.size(), 0), 0,
        starts.size());
    for (std::size_t i = 0; i < lambdas.size(); ++i) {
      if (!(lambdas[i] < plan.ffs.lambda_a)) {
        throw ConfigError(fmt::format(
            "{}: key 'init.positions[{}]': λ = {} ({}) is not in A{}; allowed: positions with "
            "λ < rare_event.lambda_A = {}",
            source, i, lambdas[i], plan.ffs.order_name,
            plan.variant_count() > 1 ? fmt::format(" for variant {}", v) : std::string(),
            plan.ffs.lambda_a));
      }
    }
  }
}

/// The two schedules' names in [dynamics] and in [sweep].
const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"learning_rate_schedule", "noise_schedule"};
  return names;
}

/// The number keys of a schedule (sweepable), with the kind each applies to (constant: any kind).
const std::vector<std::pair<std::string, ScheduleKind>>& schedule_number_keys() {
  static const std::vector<std::pair<std::string, ScheduleKind>> keys = {
      {"warmup_steps", ScheduleKind::constant}, {"every", ScheduleKind::step},
      {"factor", ScheduleKind::step},           {"gamma", ScheduleKind::exponential},
      {"decay_steps", ScheduleKind::cosine},    {"floor", ScheduleKind::cosine}};
  return keys;
}

/// A schedule table as written: the kind, the number keys given and the piecewise arrays.
struct ScheduleConfig {
  std::string name;  ///< learning_rate_schedule or noise_schedule
  bool given = false;
  ScheduleKind kind = ScheduleKind::constant;
  std::map<std::string, double> numbers;
  std::vector<double> steps, values;
};

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (const auto kind = find_schedule_kind(name)) return *kind;
  // The key table's allowed values (from the same table) were checked: a name here is a bug.
  throw std::logic_error("schedule kind: '" + name + "' is no schedule kind of dynamics_table");
}

ScheduleConfig read_schedule(const std::string& source, const std::string& name,
                             const toml::value* table, const Limits& limits) {
  ScheduleConfig config;
  config.name = name;
  if (table == nullptr) return config;
  config.given = true;
  const std::string section = "dynamics." + name;
  TableReader reader(source, section, section, table, limits);
  config.kind = parse_schedule_kind(reader.string("kind"));
  for (const auto& [key, kind] : schedule_number_keys()) {
    if (!reader.has(key)) {
      reader.get(key);
      continue;
    }
    const ConfigKey& spec = config_key(section, key);
    config.numbers[key] = spec.type == KeyType::integer ? static_cast<double>(reader.integer(key))
                                                        : reader.number(key);
  }
  config.steps = reader.numbers("steps");
  config.values = reader.numbers("values");
  reader.reject_unknown();
  const bool piecewise = config.kind == ScheduleKind::piecewise;
  const std::string path = "dynamics." + name;
  if (piecewise && (config.steps.empty() || config.values.empty())) {
    throw ConfigError(
        fmt::format("{}: key '{}.{}': missing; kind \"piecewise\" needs steps and "
                    "values",
                    source, path, config.steps.empty() ? "steps" : "values"));
  }
  if (!piecewise && (!config.steps.empty() || !config.values.empty())) {
    throw ConfigError(fmt::format(
        "{}: key '{}.{}': applies to kind \"piecewise\" only; the kind "
        "is \"{}\"",
        source, path, config.steps.empty() ? "values" : "steps", to_string(config.kind)));
  }
  if (piecewise) {
    if (config.steps.size() != config.values.size()) {
      throw ConfigError(fmt::format(
          "{}: key '{}.values': has {} value(s) for {} step(s); allowed: one value per step",
          source, path, config.values.size(), config.steps.size()));
    }
    for (std::size_t i = 0; i < config.steps.size(); ++i) {
      const double step = config.steps[i];
      const bool integral = step == std::floor(step) && step <= static_cast<double>(limits.steps);
      const bool increasing = i == 0 ? step == 0 : step > config.steps[i - 1];
      if (!integral || !increasing) {
        throw ConfigError(fmt::format(
            "{}: key '{}.steps[{}]': value {} is out of range; allowed: increasing integers in "
            "[0, run.steps] starting with 0",
            source, path, i, step));
      }
    }
  }
  return config;
}

/// The schedule of one variant: the table's numbers with the swept ones (`overrides`, by key;
/// `override_index`: their index in the sweep's list, for errors) replacing them, each checked
/// against its key's range and against the kind.
Schedule make_schedule(const std::string& source, const ScheduleConfig& config,
                       const std::map<std::string, double>& overrides, std::int64_t run_steps,
                       const std::map<std::string, std::size_t>& override_index = {}) {
  const std::string section = "dynamics." + config.name;
  std::map<std::string, double> numbers = config.numbers;
  for (const auto& [key, value] : overrides) {
    const ConfigKey& spec = config_key(section, key);
    const bool integral = value == std::floor(value);
    const double max = spec.type == KeyType::integer ? static_cast<double>(run_steps) : spec.max;
    const double min =
        spec.type == KeyType::integer ? static_cast<double>(spec.integer_min) : spec.min;
    const bool below = spec.min_exclusive ? !(value > min) : !(value >= min);
    if (!std::isfinite(value) || below || value > max ||
        (spec.type == KeyType::integer && !integral)) {
      const auto at = override_index.find(key);
      throw ConfigError(fmt::format(
          "{}: key 'sweep.{}.{}{}': value {} is out of range; allowed: {}", source, config.name,
          key, at == override_index.end() ? "" : fmt::format("[{}]", at->second), value,
          spec.type == KeyType::integer
              ? fmt::format("integers in [{}, {}]", spec.integer_min, run_steps)
              : number_range_text(spec.min, spec.max, spec.min_exclusive)));
    }
    numbers[key] = value;
  }
  for (const auto& [key, kind] : schedule_number_keys()) {
    if (numbers.count(key) != 0 && kind != ScheduleKind::constant && kind != config.kind) {
      throw ConfigError(
          fmt::format("{}: key '{}.{}': applies to kind \"{}\" only; the kind is \"{}\"", source,
                      section, key, to_string(kind), to_string(config.kind)));
    }
  }
  const auto number = [&](const std::string& key) {
    if (numbers.count(key) != 0) return numbers.at(key);
    const ConfigKey& spec = config_key(section, key);
    return spec.type == KeyType::integer ? static_cast<double>(spec.integer_default)
                                         : spec.number_default;
  };
  Schedule schedule;
  schedule.kind = config.kind;
  schedule.warmup_steps = static_cast<std::int64_t>(number("warmup_steps"));
  schedule.every = static_cast<std::int64_t>(number("every"));
  schedule.factor = number("factor");
  schedule.gamma = number("gamma");
  schedule.floor = number("floor");
  schedule.decay_steps = numbers.count("decay_steps") != 0
                             ? static_cast<std::int64_t>(numbers.at("decay_steps"))
                             : std::max<std::int64_t>(1, run_steps - schedule.warmup_steps);
  schedule.pieces = static_cast<std::int32_t>(config.steps.size());
  for (std::size_t i = 0; i < config.steps.size(); ++i) {
    schedule.piece_steps[i] = static_cast<std::int64_t>(config.steps[i]);
    schedule.piece_values[i] = config.values[i];
  }
  return schedule;
}

/// The resolved form of a schedule (summary.json "config"), with the first variant's numbers.
/// `warmup_swept`: the schedule's warmup_steps is swept, so a defaulted decay_steps (run.steps −
/// warmup_steps) differs between variants and is left out (a rerun from the resolved config
/// derives it per variant again; the first variant's value would be wrong for the others).
Json schedule_json(const ScheduleConfig& config, const Schedule& schedule, bool warmup_swept) {
  Json json = {{"kind", to_string(config.kind)}};
  if (schedule.warmup_steps != 0) json["warmup_steps"] = schedule.warmup_steps;
  switch (config.kind) {
    case ScheduleKind::constant:
      break;
    case ScheduleKind::step:
      json["every"] = schedule.every;
      json["factor"] = schedule.factor;
      break;
    case ScheduleKind::exponential:
      json["gamma"] = schedule.gamma;
      break;
    case ScheduleKind::cosine:
      if (!warmup_swept || config.numbers.count("decay_steps") != 0) {
        json["decay_steps"] = schedule.decay_steps;
      }
      json["floor"] = schedule.floor;
      break;
    case ScheduleKind::piecewise: {
      std::vector<std::int64_t> steps;
      for (const double step : config.steps) steps.push_back(static_cast<std::int64_t>(step));
      json["steps"] = steps;
      json["values"] = config.values;
      break;
    }
  }
  return json;
}

/// [run] into `plan` and the resolved config.
void read_run_table(const std::string& source, const toml::value* value, RunPlan& plan,
                    Json& resolved) {
  TableReader run(source, "run", "run", value);
  plan.name = run.string("name");
  check_plain_name(run, "name", plan.name, config_key("run", "name").range_text);
  plan.walkers_per_variant = run.integer("walkers");
  plan.steps = run.integer("steps");
  plan.seed = static_cast<std::uint64_t>(run.integer("seed"));
  plan.precision = run.string("precision") == "float" ? Precision::f32 : Precision::f64;
  plan.batch_walkers = run.integer("batch_walkers");
  run.reject_unknown();
  resolved["run"] = {{"name", plan.name},
                     {"walkers", plan.walkers_per_variant},
                     {"steps", plan.steps},
                     {"seed", plan.seed},
                     {"precision", to_string(plan.precision)},
                     {"batch_walkers", plan.batch_walkers}};
}

/// [landscape]: the landscape and its dimension into `plan`, its parameters (returned, by name)
/// and the resolved config.
std::map<std::string, double> read_landscape_table(const std::string& source,
                                                   const toml::value* value, RunPlan& plan,
                                                   Json& resolved) {
  TableReader landscape(source, "landscape", "landscape", value);
  // One of this build's landscapes (the key table's allowed names). A registry entry that the
  // build left out (-DSGDWALK_LANDSCAPES) is named as such, also when it is the default.
  plan.landscape = landscape.string("kind", config_key("landscape", "kind").string_default, {});
  if (landscape_left_out_of_build(plan.landscape)) {
    landscape.fail("kind", fmt::format("{} \"{}\" is a landscape this sgdwalk was built without "
                                       "(configured with {}); allowed: {}, or a build with "
                                       "-DSGDWALK_LANDSCAPES=all",
                                       landscape.has("kind") ? "value" : "not given: the default",
                                       plan.landscape, landscape_build_selection(),
                                       fmt::join(landscape_names(), ", ")));
  }
  plan.landscape = landscape.string("kind");
  const std::vector<int> dims = landscape_dims(plan.landscape);
  const std::int64_t given_dim = landscape.integer("dim");
  if (dims.size() == 1) {
    // A fixed dimension, which dim may repeat but not change.
    plan.dim = dims.front();
    if (landscape.has("dim") && given_dim != plan.dim) {
      landscape.fail("dim", fmt::format("value {} does not match the {} landscape; allowed: {}",
                                        given_dim, plan.landscape, plan.dim));
    }
  } else {
    // Several entries share the name (harmonic 1, 2, 3): dim picks one, the smallest by default.
    plan.dim = landscape.has("dim") ? static_cast<int>(given_dim) : dims.front();
    if (std::find(dims.begin(), dims.end(), plan.dim) == dims.end()) {
      landscape.fail("dim",
                     fmt::format("value {} is not a dimension of the {} landscape; allowed: {}",
                                 given_dim, plan.landscape, fmt::join(dims, ", ")));
    }
  }
  const LandscapeInfo& landscape_entry = *find_landscape(plan.landscape, plan.dim);
  const auto& parameter_table = landscape_entry.parameters;
  std::map<std::string, double> base_landscape;
  resolved["landscape"] = {{"kind", plan.landscape}, {"dim", plan.dim}};
  for (std::size_t p = 0; p < parameter_table.size(); ++p) {
    const ParameterInfo& first = parameter_table[p];
    if (first.array.empty()) {
      base_landscape[first.name] = landscape.number(first.name, first.default_value, first.min,
                                                    first.max, first.min_exclusive);
      resolved["landscape"][first.name] = base_landscape[first.name];
      continue;
    }
    // An array parameter (harmonic: stiffness = [...], one entry per axis): its elements follow
    // each other in the table.
    std::size_t count = 0;
    while (p + count < parameter_table.size() && parameter_table[p + count].array == first.array)
      ++count;
    const auto values = landscape.numbers(first.array, count, count, first.min, first.max);
    Json resolved_values = Json::array();
    for (std::size_t i = 0; i < count; ++i) {
      const ParameterInfo& info = parameter_table[p + i];
      const double value = values.empty() ? info.default_value : values[i];
      const bool below = info.min_exclusive ? !(value > info.min) : !(value >= info.min);
      if (below || value > info.max) {
        landscape.fail(fmt::format("{}[{}]", info.array, i),
                       fmt::format("value {} is out of range; allowed: {}", value,
                                   number_range_text(info.min, info.max, info.min_exclusive)));
      }
      base_landscape[info.name] = value;
      resolved_values.push_back(value);
    }
    resolved["landscape"][first.array] = resolved_values;
    p += count - 1;
  }
  landscape.reject_unknown();
  return base_landscape;
}

/// [init]: the start positions (the landscape's own start by default).
void read_init_table(const std::string& source, const toml::value* value,
                     const LandscapeInfo& landscape_entry, RunPlan& plan, Json& resolved) {
  TableReader init(source, "init", "init", value);
  if (const toml::value* positions = init.get("positions")) {
    if (!positions->is_array() || positions->as_array().empty()) {
      init.fail("positions", fmt::format("expected a non-empty array of {}-D points, got {}",
                                         plan.dim, describe(*positions)));
    }
    const auto& list = positions->as_array();
    const bool single_point = !list.front().is_array();
    if (single_point) {
      plan.initial_positions.push_back(
          init.as_numbers("positions", *positions, static_cast<std::size_t>(plan.dim),
                          static_cast<std::size_t>(plan.dim), -kInf, kInf));
    } else {
      for (std::size_t i = 0; i < list.size(); ++i) {
        plan.initial_positions.push_back(init.as_numbers(
            fmt::format("positions[{}]", i), list[i], static_cast<std::size_t>(plan.dim),
            static_cast<std::size_t>(plan.dim), -kInf, kInf));
      }
    }
  } else {
    // The landscape's start (two_valley: the paper's y0 = 5; the origin unless it says), with x
    // alternating −0.01 / +0.01.
    std::vector<double> minus = landscape_entry.start;
    std::vector<double> plus = minus;
    minus[0] -= 0.01;
    plus[0] += 0.01;
    plan.initial_positions = {minus, plus};
  }
  init.reject_unknown();
  resolved["init"] = {{"positions", plan.initial_positions}};
}

/// [observables.first_passage] into plan.passage; returns its resolved config.
Json read_first_passage(const std::string& source, const toml::value& value, const Limits& limits,
                        RunPlan& plan) {
  Json passage_json;
  TableReader passage(source, "observables.first_passage", "observables.first_passage", &value,
                      limits);
  const bool by_basin = passage.has("target");
  const bool by_threshold = passage.has("above") || passage.has("below");
  if (by_basin == by_threshold) {
    passage.fail_at("observables.first_passage",
                    "give either target = \"flat\"|\"sharp\" or coordinate + above|below");
  }
  if (by_basin) {
    const std::string target = passage.string("target");
    plan.passage.kind = PassageKind::basin;
    plan.passage.basin = target == "flat" ? kFlatBasin : kSharpBasin;
    plan.passage.description = "basin == " + target;
    passage_json = {{"target", target}};
  } else {
    if (passage.has("above") && passage.has("below")) {
      passage.fail("below", "give either above or below, not both");
    }
    plan.passage.coordinate = static_cast<int>(passage.integer("coordinate"));
    const bool above = passage.has("above");
    plan.passage.kind = above ? PassageKind::above : PassageKind::below;
    plan.passage.threshold = passage.number(above ? "above" : "below");
    plan.passage.description = fmt::format("position[{}] {} {}", plan.passage.coordinate,
                                           above ? ">=" : "<=", plan.passage.threshold);
    // A float run compares with the nearest float: say which, where it differs.
    const auto applied = static_cast<float>(plan.passage.threshold);
    if (plan.precision == Precision::f32 &&
        static_cast<double>(applied) != plan.passage.threshold) {
      plan.passage.description += fmt::format(" (as the float {})", static_cast<double>(applied));
    }
    passage_json = {{"coordinate", plan.passage.coordinate},
                    {above ? "above" : "below", plan.passage.threshold}};
  }
  passage.reject_unknown();
  return passage_json;
}

/// One [[observables.histogram]] table, the index-th; `plan` holds the earlier ones.
HistogramSpec read_histogram(const std::string& source, const toml::value& value, std::size_t index,
                             const Limits& limits, const RunPlan& plan) {
  TableReader h(source, "observables.histogram", fmt::format("observables.histogram[{}]", index),
                &value, limits);
  HistogramSpec spec;
  spec.name = h.string("name", fmt::format("histogram{}", index), {});
  check_plain_name(h, "name", spec.name, config_key("observables.histogram", "name").range_text);
  for (const auto& earlier : plan.histograms) {
    if (earlier.name == spec.name) {
      h.fail("name",
             fmt::format("value \"{}\" is the name of an earlier histogram; allowed: "
                         "{}",
                         spec.name, config_key("observables.histogram", "name").range_text));
    }
  }
  spec.kind = h.string("kind") == "x" ? HistogramKind::x_in_band : HistogramKind::xy;
  // A key of the other kind would otherwise be "unknown (did you mean 'x_range'?)".
  if (spec.kind == HistogramKind::x_in_band && h.has("y_range")) {
    h.fail("y_range",
           "is a key of kind = \"xy\" histograms (x and y); this one is kind = \"x\" (the "
           "default: x, optionally within y_band): add kind = \"xy\"");
  }
  if (spec.kind == HistogramKind::xy && h.has("y_band")) {
    h.fail("y_band",
           "is a key of kind = \"x\" histograms (x within a band of y); this one is kind = "
           "\"xy\": give y_range");
  }
  spec.x_coordinate = static_cast<int>(h.integer("coordinate"));
  // A required [low, high] with low < high.
  const auto range = [&](const char* key) {
    const auto values = h.numbers(key);
    if (values.empty()) {
      h.fail(key,
             std::string("missing; give [low, high] with low < high") + h.misspelling_hint(key));
    }
    if (!(values[0] < values[1])) {
      h.fail(key, fmt::format("[{}, {}] is empty; allowed: low < high", values[0], values[1]));
    }
    return values;
  };
  const auto x_range = range("x_range");
  spec.x_lo = x_range[0];
  spec.x_hi = x_range[1];
  spec.x_bins = static_cast<int>(h.integer("bins"));
  // Binning multiplies by bins / (high − low) in the run's precision: the ends and the span
  // must be finite there, and the bins not so narrow that the factor overflows.
  const auto check_bins = [&](const char* key, double low, double high, int bins) {
    const bool single = plan.precision == Precision::f32;
    const double largest =
        single ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    const double span = high - low;
    if (!(std::fabs(low) <= largest && std::fabs(high) <= largest && span <= largest)) {
      h.fail(key, fmt::format("[{}, {}] is wider than precision = \"{}\" can bin; allowed: "
                              "high − low <= {:.7g}",
                              low, high, single ? "float" : "double", largest));
    }
    if (!(bins / span <= largest)) {
      h.fail(key, fmt::format("[{}, {}] is too narrow for {} bins in precision = \"{}\"; "
                              "allowed: high − low >= {:.3g}",
                              low, high, bins, single ? "float" : "double", bins / largest));
    }
  };
  check_bins("x_range", spec.x_lo, spec.x_hi, spec.x_bins);
  if (spec.kind == HistogramKind::x_in_band) {
    const auto band = h.numbers("y_band");
    if (!band.empty()) {
      if (!(band[0] <= band[1])) {
        h.fail("y_band", fmt::format("[{}, {}] is empty; allowed: low <= high", band[0], band[1]));
      }
      spec.band_lo = band[0];
      spec.band_hi = band[1];
    }
  } else {
    const auto y_range = range("y_range");
    spec.y_lo = y_range[0];
    spec.y_hi = y_range[1];
    spec.y_bins = static_cast<int>(h.integer("y_bins"));
    check_bins("y_range", spec.y_lo, spec.y_hi, spec.y_bins);
    if (std::int64_t{spec.x_bins} * spec.y_bins > 10000000) {
      h.fail("y_bins", fmt::format("bins x y_bins = {} is too many; allowed: <= 1e7",
                                   std::int64_t{spec.x_bins} * spec.y_bins));
    }
  }
  if (const toml::value* w = h.get("window")) {
    if (!w->is_array() || w->as_array().size() != 2) {
      h.fail("window", fmt::format("expected [first_step, last_step], got {}", describe(*w)));
    }
    spec.window_begin = h.as_integer("window[0]", w->as_array()[0], 0, plan.steps);
    spec.window_end = h.as_integer("window[1]", w->as_array()[1], spec.window_begin, plan.steps);
  } else {
    spec.window_begin = plan.steps / 2;
    spec.window_end = plan.steps;
  }
  spec.every = h.integer("every");
  if (h.has("temperature"))
    spec.temperature = h.number("temperature");
  else
    h.get("temperature");
  h.reject_unknown();
  return spec;
}

/// [observables]: sample steps, quantiles, per-walker output, first passage and histograms.
void read_observables_table(const std::string& source, const toml::value* value,
                            const Limits& limits, RunPlan& plan, Json& resolved) {
  TableReader observables(source, "observables", "observables", value, limits);
  const std::int64_t sample_every = observables.integer("sample_every");
  std::set<std::int64_t> samples;
  if (const toml::value* list = observables.get("sample_steps"); list && list->is_table()) {
    // {logspace = [first_exponent, last_exponent, count]}: steps round(10^e) at `count` exponents
    // evenly spaced from the first to the last, plus step 0 and the last step. Freezing under weak
    // noise happens within the first hundreds of steps of a long run: log-spaced samples see it.
    TableReader spec(source, "sample steps value", observables.key_path("sample_steps"), list);
    if (!spec.has("logspace")) {
      observables.fail("sample_steps",
                       fmt::format("expected an array of steps or {{logspace = [first_exponent, "
                                   "last_exponent, count]}}, got {}",
                                   describe(*list)));
    }
    const toml::value& triple = *spec.get("logspace");
    if (!triple.is_array() || triple.as_array().size() != 3) {
      spec.fail("logspace", fmt::format("expected [first_exponent, last_exponent, count], got {}",
                                        describe(triple)));
    }
    const double top = std::log10(static_cast<double>(std::max<std::int64_t>(plan.steps, 1)));
    const double first = spec.as_number("logspace[0]", triple.as_array()[0], 0.0, top);
    const double last = spec.as_number("logspace[1]", triple.as_array()[1], first, top);
    const auto count = spec.as_integer("logspace[2]", triple.as_array()[2], 1, 100000);
    spec.reject_unknown();
    samples.insert(0);
    samples.insert(plan.steps);
    for (std::int64_t i = 0; i < count; ++i) {
      const double t = count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(count - 1);
      const auto step =
          static_cast<std::int64_t>(std::llround(std::pow(10.0, first + (last - first) * t)));
      samples.insert(std::clamp<std::int64_t>(step, 0, plan.steps));
    }
  } else if (list) {
    if (!list->is_array()) {
      observables.fail("sample_steps",
                       fmt::format("expected an array of steps or {{logspace = [first_exponent, "
                                   "last_exponent, count]}}, got {}",
                                   describe(*list)));
    }
    for (std::size_t i = 0; i < list->as_array().size(); ++i) {
      samples.insert(observables.as_integer(fmt::format("sample_steps[{}]", i), list->as_array()[i],
                                            0, plan.steps));
    }
  }
  if (sample_every > 0) {
    // Every sample step costs 8 bytes per walker; a million is far beyond any useful time series
    // (and the bound keeps this loop and the set finite).
    constexpr std::int64_t kMaxSamples = 1000000;
    if (plan.steps / sample_every + 2 > kMaxSamples) {
      observables.fail("sample_every",
                       fmt::format("value {} gives {} sample steps over {} steps; allowed: at most "
                                   "{} sample steps (sample_every >= {})",
                                   sample_every, plan.steps / sample_every + 1, plan.steps,
                                   kMaxSamples, plan.steps / (kMaxSamples - 2) + 1));
    }
    for (std::int64_t s = 0; s <= plan.steps; s += sample_every) samples.insert(s);
    samples.insert(plan.steps);
  }
  if (!observables.has("sample_steps") && sample_every == 0) {
    // Default: 21 evenly spaced samples including the start and the end.
    for (int i = 0; i <= 20; ++i) samples.insert(plan.steps * i / 20);
  }
  plan.sample_steps.assign(samples.begin(), samples.end());
  if (observables.has("quantiles")) {
    plan.quantiles = observables.numbers("quantiles");
  } else {
    observables.get("quantiles");
  }
  plan.per_walker_output = observables.boolean("per_walker");

  Json passage_json;
  if (const toml::value* passage_value = observables.get("first_passage")) {
    passage_json = read_first_passage(source, *passage_value, limits, plan);
  }

  if (const toml::value* histograms = observables.get("histogram")) {
    if (!histograms->is_array()) {
      observables.fail("histogram", "expected an array of tables: write [[observables.histogram]]");
    }
    const auto& list = histograms->as_array();
    // Far more than any study bins (each histogram is a group of results.h5 and a tally per
    // variant), well within the 100000 the checkpoint and tallies.bin formats hold, and few
    // enough that comparing each name with the earlier ones stays quick.
    constexpr std::size_t kMaxHistograms = 10000;
    if (list.size() > kMaxHistograms) {
      observables.fail("histogram", fmt::format("{} histograms; allowed: at most {}", list.size(),
                                                kMaxHistograms));
    }
    std::int64_t slots = 0;
    for (std::size_t i = 0; i < list.size(); ++i) {
      plan.histograms.push_back(read_histogram(source, list[i], i, limits, plan));
      slots += plan.histograms.back().bin_count() + 1;  // + the slot of deposits outside
    }
    // A variant's histogram counters are indexed in 32 bits on the GPU.
    constexpr std::int64_t kMaxHistogramSlots = std::numeric_limits<std::int32_t>::max();
    if (slots > kMaxHistogramSlots) {
      observables.fail("histogram",
                       fmt::format("the histograms have {} bins in all (one more each for the "
                                   "deposits outside); allowed: at most {} per variant",
                                   slots, kMaxHistogramSlots));
    }
  }
  observables.reject_unknown();
  {
    Json histograms = Json::array();
    for (const auto& spec : plan.histograms) {
      Json h = {{"name", spec.name},
                {"kind", spec.kind == HistogramKind::x_in_band ? "x" : "xy"},
                {"coordinate", spec.x_coordinate},
                {"x_range", {spec.x_lo, spec.x_hi}},
                {"bins", spec.x_bins},
                {"window", {spec.window_begin, spec.window_end}},
                {"every", spec.every}};
      if (spec.kind == HistogramKind::x_in_band) {
        if (spec.band_lo > -1e300 || spec.band_hi < 1e300)
          h["y_band"] = {spec.band_lo, spec.band_hi};
      } else {
        h["y_range"] = {spec.y_lo, spec.y_hi};
        h["y_bins"] = spec.y_bins;
      }
      if (!std::isnan(spec.temperature)) h["temperature"] = spec.temperature;
      histograms.push_back(h);
    }
    resolved["observables"] = {{"sample_steps", plan.sample_steps},
                               {"quantiles", plan.quantiles},
                               {"per_walker", plan.per_walker_output},
                               {"histogram", histograms}};
    if (plan.passage.kind != PassageKind::none) {
      resolved["observables"]["first_passage"] = passage_json;
    }
  }
}

/// A swept parameter: its name and values, and the line of the config that gives them (the
/// default order of the axes).
struct SweepAxis {
  std::string name;
  std::vector<double> values;
  std::size_t line;
};

/// [sweep]: its mode ("grid" or "zip") and axes, in sweep order (the first varies slowest).
struct SweepTable {
  std::string mode = "grid";
  std::vector<SweepAxis> axes;
};

/// Reads [sweep] (`sweep_value`: its table, not null); hints for values that look like mistakes
/// go to plan.hints.
SweepTable read_sweep_table(const std::string& source, const toml::value* sweep_value,
                            const std::vector<ParameterInfo>& parameter_table, RunPlan& plan) {
  using Axis = SweepAxis;
  std::vector<Axis> axes;
  std::string mode = "grid";
  TableReader sweep(source, "sweep", "sweep", sweep_value);
  mode = sweep.string("mode");
  std::vector<std::string> allowed = dynamics_keys();
  for (const auto& info : parameter_table) {
    if (info.sweepable) allowed.push_back(info.name);
  }
  std::vector<std::string> schedule_keys;
  for (const auto& entry : schedule_number_keys()) schedule_keys.push_back(entry.first);
  const auto is_schedule = [](const std::string& name) {
    return std::find(schedule_names().begin(), schedule_names().end(), name) !=
           schedule_names().end();
  };
  const auto is_allowed = [&](const std::string& name) {
    return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
  };
  const auto cannot_sweep = [&](TableReader& table, const std::string& key,
                                const std::string& name) {
    table.fail(key, fmt::format("cannot sweep this parameter{}; sweepable: {}, and {} for KEY "
                                "in {}",
                                TableReader::suggestion(name, allowed), fmt::join(allowed, ", "),
                                fmt::format("{}.KEY", fmt::join(schedule_names(), ".KEY, ")),
                                fmt::join(schedule_keys, ", ")));
  };
  // A parameter with a dotted name (learning_rate_schedule.gamma, stiffness.1) is swept with
  // the TOML dotted key (a sub-table: `learning_rate_schedule.gamma = [...]`) or with the
  // quoted name (`"learning_rate_schedule.gamma" = [...]`): both are the same sweep.
  const auto add_axis = [&](TableReader& table, const std::string& key, const std::string& name,
                            const toml::value& value) {
    const std::size_t dot = name.find('.');
    const bool schedule_key = dot != std::string::npos && is_schedule(name.substr(0, dot)) &&
                              std::find(schedule_keys.begin(), schedule_keys.end(),
                                        name.substr(dot + 1)) != schedule_keys.end();
    if (!schedule_key && !is_allowed(name)) {
      if (dot != std::string::npos && is_schedule(name.substr(0, dot))) {
        table.fail(key, fmt::format("cannot sweep this schedule key{}; sweepable: {}",
                                    TableReader::suggestion(name.substr(dot + 1), schedule_keys),
                                    fmt::join(schedule_keys, ", ")));
      }
      cannot_sweep(table, key, name);
    }
    // Synonyms name one setting: sweeping both would let one silently override the other
    // (and label the variants with values they did not use).
    static const std::map<std::string, std::string> kSynonym = {{"learning_rate", "dt"},
                                                                {"dt", "learning_rate"},
                                                                {"noise_strength", "temperature"},
                                                                {"temperature", "noise_strength"}};
    for (const Axis& axis : axes) {
      if (axis.name == name) {
        table.fail(key, fmt::format("'{}' is swept twice (as a dotted key and as a quoted "
                                    "name?); give it once",
                                    name));
      }
      const auto synonym = kSynonym.find(name);
      if (synonym != kSynonym.end() && axis.name == synonym->second) {
        table.fail(key, fmt::format("'{}' and '{}' are both swept, but they set the same quantity "
                                    "(dynamics.{} or dynamics.{}); sweep one of them",
                                    axis.name, name, axis.name, name));
      }
    }
    table.get(key);
    axes.push_back({name, sweep_values(table, key, value, plan.hints), value.location().line()});
  };
  for (const auto& [key, value] : sweep_value->as_table()) {
    if (key == "mode" || key == "order") continue;
    // A sub-table that is not a linspace/logspace value: the dotted keys of one name.
    const bool values_form = value.is_table() && (value.as_table().count("linspace") != 0 ||
                                                  value.as_table().count("logspace") != 0);
    if (value.is_table() && !values_form && !is_allowed(key)) {
      sweep.get(key);
      TableReader sub(source, "sweep", sweep.key_path(key), &value);
      for (const auto& [sub_key, sub_value] : value.as_table()) {
        add_axis(sub, sub_key, key + "." + sub_key, sub_value);
      }
      continue;
    }
    add_axis(sweep, key, key, value);
  }
  // Grid order follows the file (the first swept key varies slowest) unless `order` says it.
  std::stable_sort(axes.begin(), axes.end(),
                   [](const Axis& a, const Axis& b) { return a.line < b.line; });
  if (const toml::value* order_value = sweep.get("order")) {
    const auto fail_order = [&](const std::string& why) {
      std::vector<std::string> names;
      for (const auto& axis : axes) names.push_back(axis.name);
      sweep.fail("order", fmt::format("{} {}; allowed: the swept keys ({}), each once", why,
                                      describe(*order_value), fmt::join(names, ", ")));
    };
    if (!order_value->is_array()) fail_order("expected an array of names, got");
    const auto& order = order_value->as_array();
    if (order.size() != axes.size()) fail_order("does not name every swept key once:");
    std::vector<Axis> ordered;
    for (const auto& entry : order) {
      if (!entry.is_string()) fail_order("expected an array of names, got");
      const std::string name = entry.as_string().str;
      const auto axis =
          std::find_if(axes.begin(), axes.end(), [&](const Axis& a) { return a.name == name; });
      if (axis == axes.end() || std::any_of(ordered.begin(), ordered.end(),
                                            [&](const Axis& a) { return a.name == name; })) {
        fail_order("does not name every swept key once:");
      }
      ordered.push_back(*axis);
    }
    axes = std::move(ordered);
  }
  sweep.reject_unknown();
  if (mode == "zip") {
    for (const auto& axis : axes) {
      if (axis.values.size() != axes.front().values.size()) {
        sweep.fail(axis.name, fmt::format("zip sweep needs equal lengths; '{}' has {}, '{}' has {}",
                                          axes.front().name, axes.front().values.size(), axis.name,
                                          axis.values.size()));
      }
    }
  }
  return {mode, std::move(axes)};
}

RunPlan build_plan(const toml::value& root, const std::string& source) {
  RunPlan plan;
  Json resolved;
  if (!root.is_table()) throw ConfigError(source + ": the config must be a TOML table");
  TableReader top(source, "", "", &root);

  // ---- [run], [landscape] -----------------------------------------------------------------------
  read_run_table(source, top.get("run"), plan, resolved);
  const std::map<std::string, double> base_landscape =
      read_landscape_table(source, top.get("landscape"), plan, resolved);
  const Limits limits{plan.steps, plan.dim};
  const LandscapeInfo& landscape_entry = *find_landscape(plan.landscape, plan.dim);
  const auto& parameter_table = landscape_entry.parameters;

  // ---- [dynamics] -------------------------------------------------------------------------------
  TableReader dynamics(source, "dynamics", "dynamics", top.get("dynamics"));
  plan.noise = parse_noise_kind(dynamics.string("noise"));
  plan.noise_distribution = dynamics.string("noise_distribution") == "alpha_stable"
                                ? NoiseDistribution::alpha_stable
                                : NoiseDistribution::gaussian;
  plan.optimizer = parse_optimizer_kind(dynamics.string("optimizer"));
  std::vector<ScheduleConfig> schedules;
  for (const auto& name : schedule_names()) {
    schedules.push_back(read_schedule(source, name, dynamics.get(name), limits));
  }
  std::map<std::string, double> base_dynamics;
  for (const auto& key : dynamics_keys()) {
    // Each value against its range here, a swept one too: a value the sweep replaces is still
    // what the file says (and config.toml keeps). resolve_dynamics checks every variant's.
    if (dynamics.has(key)) {
      base_dynamics[key] = dynamics.number(key, 0, -kInf, kInf);
      check_dynamics_range(source, "dynamics." + key, key, base_dynamics[key]);
    } else
      dynamics.get(key);
  }
  dynamics.reject_unknown();
  // Here too: a sweep of one of a pair replaces the other in each variant, which would hide it.
  check_no_synonyms(source, base_dynamics);

  // ---- [init], [observables] -------------------------------------------------------------------
  read_init_table(source, top.get("init"), landscape_entry, plan, resolved);
  const toml::value* observables_table = top.get("observables");
  read_observables_table(source, observables_table, limits, plan, resolved);

  // ---- [rare_event] -----------------------------------------------------------------------------
  read_rare_event(source, top.get("rare_event"), limits, plan, resolved);

  // ---- [sweep] ----------------------------------------------------------------------------------
  SweepTable sweep_table;
  if (const toml::value* sweep_value = top.get("sweep")) {
    sweep_table = read_sweep_table(source, sweep_value, parameter_table, plan);
  }
  const std::string& mode = sweep_table.mode;
  const std::vector<SweepAxis>& axes = sweep_table.axes;
  top.reject_unknown();

  std::size_t variant_total = 1;
  if (!axes.empty()) {
    if (mode == "zip") {
      variant_total = axes.front().values.size();
    } else {
      for (const auto& axis : axes) {
        variant_total *= axis.values.size();
        if (variant_total > static_cast<std::size_t>(kMaxVariants)) {
          throw ConfigError(
              fmt::format("{}: key 'sweep': the grid has more than {} variants; "
                          "allowed: at most {}",
                          source, kMaxVariants, kMaxVariants));
        }
      }
    }
  }
  // Below 1e5 variants (300 MB) the plan fits wherever a run does: no need to read /proc.
  if (variant_total >= 100000) {
    check_plan_memory(static_cast<std::int64_t>(variant_total), source, available_host_memory());
  }
  for (std::size_t v = 0; v < variant_total; ++v) {
    Variant variant;
    variant.landscape = base_landscape;
    std::map<std::string, double> dynamics_values = base_dynamics;
    std::vector<std::map<std::string, double>> schedule_values(schedules.size());
    std::size_t remainder = v;
    std::vector<std::pair<std::string, double>> swept(axes.size());
    // Each swept value's index in its list: errors name it (sweep.alpha[1]), since the value
    // alone may not say which entry of a linspace it is.
    std::map<std::string, std::size_t> swept_index;
    std::vector<std::map<std::string, std::size_t>> schedule_index(schedules.size());
    for (std::size_t a = axes.size(); a-- > 0;) {
      const auto& axis = axes[a];
      const std::size_t index = mode == "zip" ? v : remainder % axis.values.size();
      if (mode != "zip") remainder /= axis.values.size();
      swept[a] = {axis.name, axis.values[index]};
      swept_index[axis.name] = index;
    }
    for (const auto& [name, value] : swept) {
      const std::size_t dot = name.find('.');
      if (dot != std::string::npos) {
        const auto schedule =
            std::find(schedule_names().begin(), schedule_names().end(), name.substr(0, dot));
        if (schedule != schedule_names().end()) {
          const auto s = static_cast<std::size_t>(schedule - schedule_names().begin());
          schedule_values[s][name.substr(dot + 1)] = value;
          schedule_index[s][name.substr(dot + 1)] = swept_index.at(name);
          continue;
        }
      }
      const bool is_dynamics =
          std::find(dynamics_keys().begin(), dynamics_keys().end(), name) != dynamics_keys().end();
      if (is_dynamics) {
        // The key's range, here with the entry named (resolve_dynamics checks it again, with
        // the base values).
        check_dynamics_range(source, fmt::format("sweep.{}[{}]", name, swept_index.at(name)), name,
                             value);
        // A swept synonym replaces the base one (e.g. sweep dt over a base learning_rate).
        if (name == "dt") dynamics_values.erase("learning_rate");
        if (name == "learning_rate") dynamics_values.erase("dt");
        if (name == "temperature") dynamics_values.erase("noise_strength");
        if (name == "noise_strength") dynamics_values.erase("temperature");
        dynamics_values[name] = value;
      } else {
        const std::string& key = name;  // clang < 16 cannot capture structured bindings
        const auto info = std::find_if(parameter_table.begin(), parameter_table.end(),
                                       [&](const ParameterInfo& p) { return p.name == key; });
        const bool below = info->min_exclusive ? !(value > info->min) : !(value >= info->min);
        if (!std::isfinite(value) || below || value > info->max) {
          throw ConfigError(
              fmt::format("{}: key 'sweep.{}[{}]': value {} is out of range; allowed: {}", source,
                          name, swept_index.at(name), value,
                          TableReader::range_text(info->min, info->max, info->min_exclusive)));
        }
        variant.landscape[name] = value;
      }
    }
    // Float runs: every number as the file names it (learning_rate or dt, noise_strength or
    // temperature, the epsilons, ...), then what they give (σ = temperature / dt).
    const auto key_of = [&](const std::string& table, const std::string& name) {
      const auto at = swept_index.find(name);
      return at == swept_index.end() ? table + "." + name
                                     : fmt::format("sweep.{}[{}]", name, at->second);
    };
    for (const auto& [name, value] : dynamics_values) {
      check_float_value(source, plan, key_of("dynamics", name), value);
      check_float_fraction(source, plan, key_of("dynamics", name), name, value);
    }
    for (const auto& [name, value] : variant.landscape)
      check_float_value(source, plan, key_of("landscape", name), value);
    resolve_dynamics(source, dynamics_values, plan.noise_distribution, plan.optimizer, variant);
    if (dynamics_values.count("temperature") != 0)
      check_float_value(source, plan, key_of("dynamics", "temperature"), variant.noise_strength,
                        "it gives noise_strength = temperature / learning_rate, whose ");
    {
      const std::string given =
          dynamics_values.count("temperature") != 0 ? "temperature" : "noise_strength";
      check_noise_scale(source, plan, key_of("dynamics", given), dynamics_values.at(given),
                        variant);
    }
    variant.learning_rate_schedule =
        make_schedule(source, schedules[0], schedule_values[0], plan.steps, schedule_index[0]);
    variant.noise_schedule =
        make_schedule(source, schedules[1], schedule_values[1], plan.steps, schedule_index[1]);
    variant.swept = std::move(swept);
    plan.variants.push_back(std::move(variant));
  }

  const Variant& first = plan.variants.front();
  resolved["dynamics"] = {{"noise", to_string(plan.noise)},
                          {"learning_rate", first.learning_rate},
                          {"noise_strength", first.noise_strength},
                          {"epsilon", first.epsilon}};
  // A fixed temperature with a swept learning rate gives each variant its own σ = Δ_S/η: the
  // resolved config keeps the temperature, or a rerun of it (summary.json) would fix σ instead.
  // Every other config keeps noise_strength, as it always did (their config hashes, which
  // checkpoints and shards carry, do not change).
  const auto swept = [&](const std::string& name) {
    return std::any_of(axes.begin(), axes.end(),
                       [&](const SweepAxis& axis) { return axis.name == name; });
  };
  // (A swept temperature or noise_strength replaces the base temperature in every variant: the
  // rerun of such a sweep was right, and its resolved config stays as it was.)
  if (base_dynamics.count("temperature") != 0 && (swept("learning_rate") || swept("dt")) &&
      !swept("temperature") && !swept("noise_strength")) {
    resolved["dynamics"].erase("noise_strength");
    resolved["dynamics"]["temperature"] = base_dynamics.at("temperature");
  }
  // Gaussian runs resolve to the config they resolved to before α-stable noise existed, so that
  // their run directories and checkpoints keep resuming (the resolved config is compared).
  if (plan.noise_distribution != NoiseDistribution::gaussian) {
    resolved["dynamics"]["noise_distribution"] = to_string(plan.noise_distribution);
    resolved["dynamics"]["alpha"] = first.alpha;
  }
  // Only what differs from plain SGD with constant rates, so the resolved config (and with it the
  // checkpoint's config hash) of a run without these keys is what it always was.
  for (const auto& coefficient : optimizer_coefficients()) {
    if (coefficient.read_by(plan.optimizer))
      resolved["dynamics"][coefficient.key] = first.*coefficient.value;
  }
  if (plan.optimizer != OptimizerKind::sgd) {
    resolved["dynamics"]["optimizer"] = to_string(plan.optimizer);
  }
  if (schedules[0].given) {
    resolved["dynamics"]["learning_rate_schedule"] = schedule_json(
        schedules[0], first.learning_rate_schedule, swept("learning_rate_schedule.warmup_steps"));
  }
  if (schedules[1].given) {
    resolved["dynamics"]["noise_schedule"] =
        schedule_json(schedules[1], first.noise_schedule, swept("noise_schedule.warmup_steps"));
  }
  const bool scheduled = std::any_of(plan.variants.begin(), plan.variants.end(),
                                     [](const Variant& v) { return v.scheduled(); });
  // An optimizer and a noise schedule compose with α-stable noise: the noise enters g = ∇L + ξ
  // before the optimizer, and σ·f(k) multiplies ξ; a learning-rate schedule also moves the jump
  // scale c_k = η_k^{1/α − 1/2}/√2 (per step, StepParams::stable_scale).
  for (const auto& histogram : plan.histograms) {
    if (scheduled && std::isnan(histogram.temperature)) {
      plan.hints.push_back(fmt::format(
          "histogram '{}': the effective potential uses the base temperature η·σ, but a schedule "
          "changes η or σ along the run; give the histogram a temperature for its window",
          histogram.name));
    }
  }
  // Times in the outputs are the base η × steps (/samples/elapsed_time aside); under a
  // learning-rate schedule the elapsed continuous time Σ η f(k) differs, and so would a rate per
  // unit time.
  const bool learning_rate_scheduled =
      std::any_of(plan.variants.begin(), plan.variants.end(),
                  [](const Variant& v) { return !v.learning_rate_schedule.is_constant(); });
  if (learning_rate_scheduled && plan.passage.kind != PassageKind::none && !plan.ffs.enabled) {
    plan.hints.push_back(fmt::format(
        "{}: first passage under a learning-rate schedule: its mean_time and escape rate per unit "
        "time count time as the base learning_rate x steps, not the schedule's sum of learning "
        "rates; compare such runs in steps (mean_steps); /samples/elapsed_time has the sum at "
        "the sample steps",
        source));
  }
  // ε regularises the Hessian noise models only: given (or swept) with a model that computes no
  // Hessian it changes nothing, and a sweep over it makes identical variants.
  const bool epsilon_swept = swept("epsilon");
  bool epsilon_used = true;
  std::string noise_name;
  for_each_noise_model([&]<class M>() {
    if (M::kind != plan.noise) return;
    epsilon_used = M::needs_hessian;
    noise_name = M::name;
  });
  // A value other than the default: the resolved config (a rerun from summary.json) always
  // holds the default, which says nothing about the user's intent.
  const bool epsilon_given =
      base_dynamics.count("epsilon") != 0 &&
      base_dynamics.at("epsilon") != config_key("dynamics", "epsilon").number_default;
  if (!epsilon_used && (epsilon_given || epsilon_swept)) {
    plan.hints.push_back(fmt::format(
        "{}: dynamics.epsilon has no effect with noise = \"{}\" (it regularises the Hessian "
        "noise models){}",
        source, noise_name,
        epsilon_swept ? ": the variants of the epsilon sweep are the same run" : ""));
  }
  Json sweep_json = {{"mode", mode}};
  for (const auto& axis : axes) {
    if (is_integer_sweep_parameter(axis.name)) {  // validated as integers
      std::vector<std::int64_t> steps(axis.values.begin(), axis.values.end());
      sweep_json[axis.name] = steps;
    } else {
      sweep_json[axis.name] = axis.values;
    }
  }
  if (!axes.empty()) {
    Json order = Json::array();
    for (const auto& axis : axes) order.push_back(axis.name);
    sweep_json["order"] = order;
  }
  resolved["sweep"] = sweep_json;
  plan.resolved_config = resolved;
  check_float_positions(source, plan);
  for (std::string& hint : stability_hints(plan, source)) plan.hints.push_back(std::move(hint));
  // The per-walker crossing counter is 32-bit in every backend (walker state, checkpoints, the
  // per-walker file); a walker cannot cross more often than it steps, so only runs this long can
  // wrap it. Said, not refused: such runs are legitimate, and their other results are exact.
  if (!plan.ffs.enabled && plan.steps > std::int64_t{0xFFFFFFFF}) {
    plan.hints.push_back(fmt::format(
        "{}: run.steps = {} exceeds 4294967295: a walker's basin crossings are counted in 32 bits "
        "and wrap beyond that many, so mean_crossings and the crossings histograms are wrong for "
        "walkers that cross that often (every other result is unaffected)",
        source, plan.steps));
  }
  if (plan.ffs.enabled) {
    check_rare_event_start(source, plan);
    // Forward flux sampling measures the rate and stores interface states; the brute-force
    // observables a config may still name are not recorded (a hint, not an error: the resolved
    // config of an FFS run keeps them, and rerunning it must work).
    std::vector<std::string> unused;
    // (sample_steps and quantiles are in every resolved config, so a rerun from summary.json
    // would be told about keys its user never wrote: only sample_every, which is not.)
    if (observables_table != nullptr && observables_table->contains("sample_every"))
      unused.push_back("observables.sample_every");
    if (plan.per_walker_output) unused.push_back("observables.per_walker");
    if (plan.passage.kind != PassageKind::none) unused.push_back("observables.first_passage");
    if (!plan.histograms.empty()) unused.push_back("observables.histogram");
    if (!unused.empty()) {
      plan.hints.push_back(fmt::format(
          "{}: forward flux sampling (rare_event.method = \"ffs\") records the escape rate and "
          "the interface states only (results.h5 /rare_events); these are not used: {}",
          source, fmt::join(unused, ", ")));
    }
  }
  return plan;
}

/// Offset of the first byte that is not part of valid UTF-8 (no overlong forms, surrogates or code
/// points above U+10FFFF), or npos.
std::size_t first_invalid_utf8(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // overlong
      if (lead == 0xED) high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // overlong
      if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > size || bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF) return i;
    }
    i += length;
  }
  return std::string::npos;
}

/// Where a config nests deeper than `limit` (toml11 parses nested arrays, inline tables and dotted
/// keys recursively, so very deep nesting would overflow the stack): the offset of the first '['
/// or '{' nested deeper outside strings and comments, or of the first key with more than `limit`
/// dots; npos if none.
std::size_t first_too_deep(const std::string& text, int limit) {
  const std::size_t n = text.size();
  auto at = [&](std::size_t i, const char* token) {
    return text.compare(i, std::strlen(token), token) == 0;
  };
  int depth = 0;
  int dots = 0;  // in the current key (reset by '=', ',' and line ends; a number has at most one)
  std::size_t i = 0;
  while (i < n) {
    const char c = text[i];
    if (c == '#') {
      while (i < n && text[i] != '\n') ++i;
    } else if (at(i, "\"\"\"") || at(i, "'''")) {
      const bool basic = c == '"';
      const char* close = basic ? "\"\"\"" : "'''";
      i += 3;
      while (i < n && !at(i, close)) i += (basic && text[i] == '\\') ? 2 : 1;
      i += 3;
    } else if (c == '"' || c == '\'') {
      ++i;
      while (i < n && text[i] != c && text[i] != '\n') i += (c == '"' && text[i] == '\\') ? 2 : 1;
      ++i;
    } else {
      if (c == '[' || c == '{') {
        if (++depth > limit) return i;
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      } else if (c == '.') {
        if (++dots > limit) return i;
      } else if (c == '=' || c == ',' || c == '\n') {
        dots = 0;
      }
      ++i;
    }
  }
  return std::string::npos;
}

}  // namespace

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& options) {
  // Case is compared last: a word that differs only in case ("FFS", "Adam") is the best match.
  const auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  for (const auto& option : options)
    if (lower(option) == lower(word)) return option;
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& option : options) {
    const std::size_t distance = edit_distance(word, option);
    if (distance < best_distance) {
      best_distance = distance;
      best = option;
    }
  }
  if (best.empty() || best_distance > std::max<std::size_t>(2, word.size() / 3)) return "";
  return best;
}

namespace {

// TOML text from a JSON config: written here rather than through toml11's serializer, whose
// floats carry 17 digits (0.10000000000000001) and whose tables come out in hash order. Floats are
// written in the shortest form that reads back to the same double, so the text is exact.

std::string toml_key(const std::string& key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? key : Json(key).dump();  // a JSON string is a valid TOML basic string
}

std::string toml_inline(const Json& json, const std::string& where) {
  switch (json.type()) {
    case Json::value_t::array: {
      std::vector<std::string> items;
      for (std::size_t i = 0; i < json.size(); ++i) {
        items.push_back(toml_inline(json[i], fmt::format("{}[{}]", where, i)));
      }
      return fmt::format("[{}]", fmt::join(items, ", "));
    }
    case Json::value_t::object: {
      std::vector<std::string> items;
      for (const auto& [key, value] : json.items()) {
        items.push_back(toml_key(key) + " = " + toml_inline(value, where + "." + key));
      }
      return fmt::format("{{{}}}", fmt::join(items, ", "));
    }
    case Json::value_t::string:
      return json.dump();
    case Json::value_t::boolean:
      return json.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
      return fmt::format("{}", json.get<std::int64_t>());
    case Json::value_t::number_unsigned:
      if (json.get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw ConfigError(fmt::format("key '{}': value {} is too large for TOML", where,
                                      json.get<std::uint64_t>()));
      }
      return fmt::format("{}", json.get<std::uint64_t>());
    case Json::value_t::number_float: {
      const double value = json.get<double>();
      if (!std::isfinite(value)) {
        throw ConfigError(fmt::format("key '{}': value {} is not finite", where, value));
      }
      std::string text = fmt::format("{}", value);                       // shortest round trip
      if (text.find_first_of(".eE") == std::string::npos) text += ".0";  // stays a float
      return text;
    }
    default:
      throw ConfigError(fmt::format("key '{}': {} has no TOML equivalent", where, json.dump()));
  }
}

bool is_array_of_tables(const Json& json) {
  return json.is_array() && !json.empty() &&
         std::all_of(json.begin(), json.end(), [](const Json& item) { return item.is_object(); });
}

/// Writes the table `json` at `path` ("" = the top level): its plain keys first, then its
/// sub-tables as [path.key] and its arrays of tables as [[path.key]].
void write_toml_table(const Json& json, const std::string& path, std::string& out) {
  const auto child = [&](const std::string& key) {
    return path.empty() ? toml_key(key) : path + "." + toml_key(key);
  };
  for (const auto& [key, value] : json.items()) {
    if (!value.is_object() && !is_array_of_tables(value)) {
      out +=
          toml_key(key) + " = " + toml_inline(value, path.empty() ? key : path + "." + key) + "\n";
    }
  }
  for (const auto& [key, value] : json.items()) {
    if (value.is_object()) {
      out += "\n[" + child(key) + "]\n";
      write_toml_table(value, child(key), out);
    } else if (is_array_of_tables(value)) {
      for (const Json& item : value) {
        out += "\n[[" + child(key) + "]]\n";
        write_toml_table(item, child(key), out);
      }
    }
  }
}

}  // namespace

std::string config_text_from_json(const nlohmann::json& config, const std::string& source_name) {
  if (!config.is_object()) {
    throw ConfigError(
        fmt::format("{}: expected a JSON object (a config, or a summary.json with "
                    "a \"config\" object)",
                    source_name));
  }
  const Json& resolved = config.contains("config") ? config.at("config") : config;
  if (!resolved.is_object()) {
    throw ConfigError(fmt::format("{}: \"config\" is not a JSON object", source_name));
  }
  std::string label = source_name;
  std::replace_if(
      label.begin(), label.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  std::string text = "# The resolved config of " + label + "\n";
  try {
    write_toml_table(resolved, "", text);
  } catch (const ConfigError& error) {
    throw ConfigError(fmt::format("{}: {}", source_name, error.what()));
  } catch (const std::exception& error) {  // e.g. a string that is not UTF-8
    throw ConfigError(fmt::format("{}: {}", source_name, error.what()));
  }
  return text;
}

RunPlan load_config_text(const std::string& text, const std::string& source_name) {
  // TOML is UTF-8. Checked here because toml11 3.7 reads out of bounds when reporting invalid
  // UTF-8 inside a string (found by fuzz/fuzz_config).
  if (const std::size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    const auto line =
        1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    throw ConfigError(fmt::format(
        "{}: line {}: not valid UTF-8 (byte 0x{:02x} at offset {}); a TOML file must be UTF-8",
        source_name, line, static_cast<unsigned char>(text[bad]), bad));
  }
  constexpr int kMaxNesting = 32;
  if (const std::size_t deep = first_too_deep(text, kMaxNesting); deep != std::string::npos) {
    const auto line =
        1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(deep), '\n');
    throw ConfigError(fmt::format(
        "{}: line {}: arrays, inline tables or dotted keys nested more than {} deep; allowed: at "
        "most {} (a config needs 3)",
        source_name, line, kMaxNesting, kMaxNesting));
  }
  toml::value root;
  try {
    std::istringstream stream(text);
    root = toml::parse(stream, source_name);
  } catch (const std::exception& error) {
    throw ConfigError(fmt::format("{}: not valid TOML:\n{}", source_name, error.what()));
  }
  try {
    return build_plan(root, source_name);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& error) {
    throw ConfigError(fmt::format("{}: {}", source_name, error.what()));
  }
}

RunPlan load_config_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ConfigError(fmt::format("{}: cannot open the config file", path));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw ConfigError(fmt::format("{}: cannot read the config file", path));
  return load_config_text(text.str(), path);
}

}  // namespace sgdwalk
