// Reading a TOML run configuration into a validated RunPlan.
//
// Every problem is reported as a ConfigError whose message names the file, the key, the offending
// value and what is allowed; unknown keys come with a "did you mean" suggestion.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "backend/plan.hpp"

namespace sgdwalk {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses and validates a config file. `source_name` labels messages (defaults to the path).
RunPlan load_config_file(const std::string& path);

/// Parses and validates config text; `source_name` is used in messages ("<embedded>", a path...).
RunPlan load_config_text(const std::string& text, const std::string& source_name);

/// The built-in default config (examples/quickstart.toml, embedded at build time).
const std::string& embedded_default_config();

/// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);

/// The option closest to `word` by edit distance, or "" when none is close enough to suggest.
std::string closest_match(const std::string& word, const std::vector<std::string>& options);

/// Config text (TOML) from a config written as JSON: a run's summary.json (its "config" object,
/// the resolved config) or that object alone. Loading the text reproduces the run's plan.
std::string config_text_from_json(const nlohmann::json& config, const std::string& source_name);

}  // namespace sgdwalk
