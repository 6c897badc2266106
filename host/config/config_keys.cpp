#include "config/config_keys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "backend/dynamics_table.hpp"
#include "backend/plan.hpp"
#include "config/landscape_params.hpp"

namespace sgdwalk {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

ConfigKey base_key(const char* section, const char* name, KeyType type, const char* meaning) {
  ConfigKey key;
  key.section = section;
  key.name = name;
  key.type = type;
  key.meaning = meaning;
  return key;
}

ConfigKey integer_key(const char* section, const char* name, std::int64_t value, std::int64_t min,
                      std::int64_t max, const char* meaning, Limit max_limit = Limit::fixed,
                      const char* default_text = "") {
  ConfigKey key = base_key(section, name, KeyType::integer, meaning);
  key.default_text = default_text;
  key.integer_default = value;
  key.integer_min = min;
  key.integer_max = max;
  key.integer_max_limit = max_limit;
  return key;
}

ConfigKey number_key(const char* section, const char* name, double value, double min, double max,
                     bool min_exclusive, const char* meaning, const char* default_text = "") {
  ConfigKey key = base_key(section, name, KeyType::number, meaning);
  key.number_default = value;
  key.min = min;
  key.max = max;
  key.min_exclusive = min_exclusive;
  key.default_text = default_text;
  return key;
}

ConfigKey string_key(const char* section, const char* name, const char* value,
                     std::vector<std::string> allowed, const char* meaning,
                     const char* default_text = "", const char* range_text = "") {
  ConfigKey key = base_key(section, name, KeyType::string, meaning);
  key.string_default = value;
  key.allowed = std::move(allowed);
  key.default_text = default_text;
  key.range_text = range_text;
  return key;
}

/// The key of an optimizer coefficient of [dynamics] (backend/dynamics_table.hpp).
ConfigKey coefficient_key(const OptimizerCoefficient& coefficient) {
  if (!coefficient.fraction) {
    return number_key("dynamics", coefficient.key, coefficient.default_value, 0, kInf, true,
                      coefficient.key_meaning);
  }
  // A decay or momentum coefficient: in [0, 1).
  // (number_range_text writes a maximum of nextafter(1, 0) as "< 1")
  return number_key("dynamics", coefficient.key, coefficient.default_value, 0,
                    std::nextafter(1.0, 0.0), false, coefficient.key_meaning);
}

std::vector<std::string> optimizer_name_list() {
  std::vector<std::string> names;
  for (const auto& entry : optimizer_names()) names.push_back(entry.name);
  return names;
}

std::vector<std::string> schedule_kind_name_list() {
  std::vector<std::string> names;
  for (const auto& entry : schedule_kind_names()) names.push_back(entry.name);
  return names;
}

ConfigKey boolean_key(const char* section, const char* name, bool value, const char* meaning) {
  ConfigKey key = base_key(section, name, KeyType::boolean, meaning);
  key.boolean_default = value;
  return key;
}

/// Arrays and sub-tables: documented by their texts; the validator checks them element by element
/// (with min/max and the item counts where they are fixed).
ConfigKey other_key(const char* section, const char* name, KeyType type, const char* default_text,
                    const char* range_text, const char* meaning, double min = -kInf,
                    double max = kInf, std::size_t min_items = 0, std::size_t max_items = 0) {
  ConfigKey key = base_key(section, name, type, meaning);
  key.default_text = default_text;
  key.range_text = range_text;
  key.min = min;
  key.max = max;
  key.min_items = min_items;
  key.max_items = max_items;
  return key;
}

std::vector<ConfigKey> make_config_keys() {
  constexpr std::int64_t kMaxSteps = std::int64_t{1} << 50;
  constexpr std::int64_t kMaxBatch = std::int64_t{1} << 40;
  constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
  // The landscape and noise choices come from their registries.
  std::int64_t min_dim = kMaxInt, max_dim = 0;
  for (const auto& entry : landscape_registry()) {
    min_dim = std::min<std::int64_t>(min_dim, entry.dim);
    max_dim = std::max<std::int64_t>(max_dim, entry.dim);
  }
  std::vector<std::string> noise_names;
  for (const auto& model : noise_registry()) noise_names.push_back(model.name);
  // [dynamics.learning_rate_schedule] and [dynamics.noise_schedule] take the same keys.
  const auto schedule_keys = [&](const char* table) {
    return std::vector<ConfigKey>{
        string_key(
            table, "kind", "constant", schedule_kind_name_list(),
            "The shape of the factor f(u), u = updates after the warmup: constant 1; step "
            "factor^floor(u/every); exponential gamma^u; cosine floor + (1 − floor)(1 + "
            "cos(π·min(u, decay_steps)/decay_steps))/2; piecewise values[i] from steps[i] on."),
        integer_key(table, "warmup_steps", 0, 0, kMaxSteps,
                    "Linear warmup: update k <= warmup_steps is multiplied by k/warmup_steps; the "
                    "shape starts after it. Sweepable.",
                    Limit::steps),
        integer_key(table, "every", 1, 1, kMaxSteps, "step: updates per factor. Sweepable.",
                    Limit::steps),
        number_key(table, "factor", 0.1, 0, kInf, true,
                   "step: the factor applied every `every` updates. Sweepable."),
        number_key(table, "gamma", 0.999, 0, kInf, true,
                   "exponential: the factor per update. Sweepable."),
        integer_key(table, "decay_steps", 0, 1, kMaxSteps,
                    "cosine: updates from 1 down to floor (then floor). Sweepable.", Limit::steps,
                    "run.steps − warmup_steps"),
        number_key(table, "floor", 0, 0, 1, false, "cosine: the final factor. Sweepable."),
        other_key(table, "steps", KeyType::integers, "required for piecewise",
                  "1 to 16 increasing integers, the first 0",
                  "piecewise: the update counts u (after the warmup) at which each value starts.",
                  0, kInf, 1, 16),
        other_key(table, "values", KeyType::numbers, "required for piecewise",
                  "as many numbers >= 0 as steps",
                  "piecewise: the factor from the matching step on.", 0, kInf, 1, 16)};
  };
  std::vector<ConfigKey> keys = {
      // ---- [run]
      string_key("run", "name", "run", {},
                 "Name of the run: the run directory is runs/NAME unless --out is given.", "",
                 "a plain file name: not empty, at most 200 bytes (UTF-8), no `/` or `\\`, not `.` "
                 "or `..`, no control characters"),
      integer_key("run", "walkers", 1000, 1, 4294967295LL,
                  "Walkers per variant (walkers x steps x variants: at most 9.2e18 walker-steps "
                  "in all)."),
      integer_key("run", "steps", 1000, 1, kMaxSteps,
                  "Updates per walker. The initial state is step 0; update k makes step k."),
      integer_key("run", "seed", 1, 0, kMaxInt,
                  "Key of the random numbers (Philox4x32-10): the same seed gives the same bits "
                  "on every backend. `--seed` overrides it."),
      string_key("run", "precision", "double", {"float", "double"},
                 "Arithmetic of the walkers: float (fp32) or double (fp64)."),
      integer_key("run", "batch_walkers", 0, 0, kMaxBatch,
                  "Walkers advanced per batch; 0 = chosen from memory (256 MiB of walker arrays; "
                  "on the CPU whole variants, at least 2^16 walkers). Never changes a result, but "
                  "resume and merge compare it as part of the config: vary it per process with "
                  "`--batch-walkers`, which overrides it."),

      // ---- [landscape]
      string_key("landscape", "kind", "two_valley", landscape_names(),
                 "The loss landscape (docs/MODEL.md section 2; the registry "
                 "include/sgdwalk/landscapes/registry.hpp); its parameters are listed below."),
      integer_key("landscape", "dim", 1, min_dim, max_dim,
                  "Picks the dimension of a landscape registered in several (harmonic: the "
                  "number of axes). The others have a fixed dimension (listed below), which dim "
                  "may repeat but not change.",
                  Limit::fixed, "the smallest registered (harmonic: 1)"),

      // ---- [dynamics]
      string_key("dynamics", "noise", "hessian", noise_names,
                 "Gradient-noise covariance: 2σH⁺+εI, 2σH²+εI or 2σI (docs/MODEL.md section 3)."),
      string_key("dynamics", "noise_distribution", "gaussian", {"gaussian", "alpha_stable"},
                 "Distribution of the noise components that the noise model's Σ^{1/2} shapes: "
                 "gaussian, or symmetric α-stable (heavy tails, jumps scaled by η^{1/α}; "
                 "docs/MODEL.md section 3)."),
      number_key("dynamics", "alpha", 2, 0, 2, true,
                 "alpha_stable only: the tail index α (P(|z| > x) ~ x^{-α}); α = 2 is Gaussian in "
                 "distribution. Small α gives jumps beyond the float range (the walker diverges).",
                 "2 (alpha_stable)"),
      number_key("dynamics", "learning_rate", 0, 0, kInf, true,
                 "η, the SGD learning rate (one step is η units of time).", "required (or dt)"),
      number_key("dynamics", "dt", 0, 0, kInf, true,
                 "The time step of a Langevin walker: the same update as learning_rate, named for "
                 "the continuum reading. Give learning_rate or dt, not both.",
                 "(or learning_rate)"),
      number_key("dynamics", "noise_strength", 0, 0, kInf, false,
                 "σ, the noise strength (stands for the inverse batch size).",
                 "required (or temperature)"),
      number_key("dynamics", "temperature", 0, 0, kInf, false,
                 "Δ_S = η·σ; gives σ = temperature / learning_rate. Give noise_strength or "
                 "temperature, not both.",
                 "(or noise_strength)"),
      number_key("dynamics", "epsilon", 1e-8, 0, kInf, false,
                 "ε of the εI regulariser of the hessian and hessian_squared noise (unused by "
                 "isotropic noise)."),
      string_key("dynamics", "optimizer", "sgd", optimizer_name_list(),
                 "The update applied to g = ∇L(θ) + ξ: sgd θ ← θ − ηg; momentum (heavy ball) v ← "
                 "μv − ηg, θ ← θ + v; nesterov v ← μv − ηg, θ ← θ + μv − ηg; adam (β1, β2, "
                 "optimizer_epsilon, bias correction); rmsprop s ← ρs + (1−ρ)g², θ ← θ − ηg/(√s + "
                 "optimizer_epsilon). Not sweepable (one compiled update per run); its "
                 "coefficients are. docs/MODEL.md section 3, Optimizers and schedules."),
      other_key("dynamics", "learning_rate_schedule", KeyType::table, "constant",
                "a table, see [dynamics.learning_rate_schedule]",
                "A factor on learning_rate along the run."),
      other_key("dynamics", "noise_schedule", KeyType::table, "constant",
                "a table, see [dynamics.noise_schedule]",
                "A factor on noise_strength along the run (a growing batch shrinks σ)."),
  };
  // The optimizer's coefficients follow it.
  auto after_optimizer = std::find_if(keys.begin(), keys.end(),
                                      [](const ConfigKey& key) {
                                        return key.section == "dynamics" && key.name == "optimizer";
                                      }) +
                         1;
  for (const auto& coefficient : optimizer_coefficients())
    after_optimizer = keys.insert(after_optimizer, coefficient_key(coefficient)) + 1;
  for (const char* table : {"dynamics.learning_rate_schedule", "dynamics.noise_schedule"}) {
    const std::vector<ConfigKey> table_keys = schedule_keys(table);
    keys.insert(keys.end(), table_keys.begin(), table_keys.end());
  }
  // The landscapes with a basin boundary come from the registry (an out-of-tree one may have one).
  const std::string order_parameter_meaning = fmt::format(
      "The order parameter λ: the signed distance from the basin boundary "
      "(> 0 in the flat basin; landscapes with a basin boundary: {}), a "
      "coordinate, the landscape's progress or the loss; a leading '-' "
      "negates it (λ must increase from A to B). energy (optimizer momentum or "
      "nesterov, landscapes with a basin boundary): L(θ) + |v|²/(2η_k) in the start "
      "basin (basin_distance < 0), +inf beyond; B is the other basin: lambda_A, "
      "interfaces and lambda_0 are energies, +inf is appended as the last interface, "
      "lambda_B is not given.",
      fmt::join(landscapes_with_basin_boundary(), ", "));
  const std::vector<ConfigKey> later_keys = {
      // ---- [init]
      other_key("init", "positions", KeyType::points,
                "the landscape's start point with x − 0.01 and x + 0.01 (two_valley: [[-0.01, "
                "5.0], [0.01, 5.0]]; muller_brown: its minimum A (-0.558, 1.442); the others: the "
                "origin)",
                "points of dim finite numbers; one point may be written as a flat array",
                "Start positions: walker w of every variant starts at positions[w mod count] "
                "(the paper alternates x = -0.01 and +0.01 at y = 5)."),

      // ---- [observables]
      integer_key(
          "observables", "sample_every", 0, 0, kMaxSteps,
          "Take a sample (P_flat, means and quantiles of y and of the loss) every N steps, "
          "and at the last step (at most 1000000 sample steps); 0 = none besides sample_steps.",
          Limit::steps),
      other_key("observables", "sample_steps", KeyType::integers,
                "21 evenly spaced steps from 0 to run.steps when neither sample_steps nor "
                "sample_every is given",
                "integers in [0, run.steps]; or {logspace = [first_exponent, last_exponent, "
                "count]} with 0 <= first_exponent <= last_exponent <= log10(run.steps) and count "
                "in [1, 100000]",
                "Steps at which to sample (merged with sample_every). The logspace form samples "
                "steps round(10^e) at count evenly spaced exponents, and steps 0 and run.steps.",
                0, 0),
      other_key("observables", "quantiles", KeyType::numbers, "[0.05, 0.25, 0.5, 0.75, 0.95]",
                "0 to 99 numbers in [0, 1]", "Quantiles of y and of the loss at every sample.", 0.0,
                1.0, 0, 99),
      boolean_key("observables", "per_walker", false,
                  "Write every walker's final state and trackers to results.h5 /walkers."),
      other_key("observables", "first_passage", KeyType::table, "none",
                "a table, see [observables.first_passage]",
                "Track each walker's first arrival at a target."),
      other_key("observables", "histogram", KeyType::array_of_tables, "none",
                "tables, see [[observables.histogram]]", "Position histograms over step windows."),

      // ---- [observables.first_passage]
      string_key("observables.first_passage", "target", "", {"flat", "sharp"},
                 "Arrival = being in this basin. Give target, or coordinate with above or below.",
                 "none"),
      integer_key("observables.first_passage", "coordinate", 0, 0, 2,
                  "The coordinate compared with above or below (0 = x, 1 = y).",
                  Limit::last_coordinate),
      number_key("observables.first_passage", "above", 0, -kInf, kInf, false,
                 "Arrival = position[coordinate] >= above.", "none"),
      number_key("observables.first_passage", "below", 0, -kInf, kInf, false,
                 "Arrival = position[coordinate] <= below.", "none"),

      // ---- [[observables.histogram]]
      string_key("observables.histogram", "name", "", {},
                 "Name of the histogram (results.h5 /histograms/NAME).",
                 "histogramI (I = its index)",
                 "a plain file name as for run.name, unique among the histograms"),
      string_key("observables.histogram", "kind", "x", {"x", "xy"},
                 "x: 1-D in position[coordinate], of the walkers whose y lies in y_band; xy: 2-D "
                 "in (position[coordinate], y)."),
      integer_key("observables.histogram", "coordinate", 0, 0, 2, "The binned coordinate (0 = x).",
                  Limit::last_coordinate),
      other_key("observables.histogram", "x_range", KeyType::numbers, "required",
                "[low, high], low < high",
                "Range of the binned coordinate; walkers outside it are counted apart.", -kInf,
                kInf, 2, 2),
      integer_key("observables.histogram", "bins", 100, 1, 1000000, "Bins over x_range."),
      other_key("observables.histogram", "y_band", KeyType::numbers, "all y",
                "[low, high], low <= high",
                "kind x only: deposit only walkers with low <= y <= high (y: the progress "
                "coordinate).",
                -kInf, kInf, 2, 2),
      other_key("observables.histogram", "y_range", KeyType::numbers, "required for kind xy",
                "[low, high], low < high", "kind xy only: range of y.", -kInf, kInf, 2, 2),
      integer_key("observables.histogram", "y_bins", 100, 1, 100000,
                  "kind xy only: bins over y_range; bins x y_bins <= 1e7."),
      other_key("observables.histogram", "window", KeyType::integers,
                "[run.steps / 2, run.steps] (integer division)",
                "[first, last], integers with 0 <= first <= last <= run.steps",
                "Steps (inclusive) during which walkers are deposited."),
      integer_key("observables.histogram", "every", 1, 1, kMaxSteps,
                  "Deposit at the window's first step and every N-th step after it.", Limit::steps),
      number_key("observables.histogram", "temperature", 0, 0, kInf, true,
                 "T of the effective potential -T ln P written with the histogram.",
                 "the variant's Δ_S = η·σ"),

      // ---- [rare_event]
      string_key("rare_event", "method", "none", {"none", "ffs"},
                 "ffs: estimate the escape rate A → B by direct forward flux sampling "
                 "(docs/RARE_EVENTS.md) instead of a brute-force run; run.walkers and run.steps "
                 "are then the flux stage's walkers and steps per variant and replica."),
      string_key("rare_event", "order_parameter", "basin_distance",
                 {"basin_distance", "-basin_distance", "x", "-x", "y", "-y", "z", "-z", "progress",
                  "-progress", "loss", "-loss", "energy"},
                 order_parameter_meaning.c_str()),
      number_key("rare_event", "lambda_A", 0, -kInf, kInf, false,
                 "The start basin A = {λ < lambda_A}; every init position must lie in A.",
                 "required"),
      other_key("rare_event", "interfaces", KeyType::numbers, "placed automatically",
                "2 to 126 strictly increasing numbers, the first > lambda_A",
                "The interfaces λ_0 < … < λ_n; B = {λ >= λ_n}. Without it, interfaces are placed "
                "from lambda_0 to lambda_B so that each stage's crossing probability is near "
                "crossing_probability.",
                -kInf, kInf, 2, 126),
      number_key("rare_event", "lambda_0", 0, -kInf, kInf, false,
                 "Automatic placement: the first interface (> lambda_A).",
                 "required without interfaces"),
      number_key("rare_event", "lambda_B", 0, -kInf, kInf, false,
                 "Automatic placement: the last interface, B = {λ >= lambda_B} (> lambda_0).",
                 "required without interfaces"),
      number_key("rare_event", "crossing_probability", 0.2, 0, std::nextafter(1.0, 0.0), true,
                 "Automatic placement: the target probability of each stage."),
      integer_key("rare_event", "placement_trials", 0, 0, 1000000000,
                  "Automatic placement: pilot trials per placed interface (0 = trials; else at "
                  "least 10).",
                  Limit::fixed, "trials"),
      integer_key("rare_event", "trials", 1000, 10, 1000000000,
                  "Trials per interface, per variant and replica."),
      integer_key("rare_event", "replicas", 4, 1, 256,
                  "R independent repetitions of the whole computation: the rate is their mean, "
                  "its error their standard error."),
      integer_key("rare_event", "equilibration_steps", 0, 0, kMaxSteps,
                  "Flux-stage updates made before counting starts (< run.steps).", Limit::steps),
      integer_key("rare_event", "max_trial_steps", 10000000, 1, std::int64_t{1} << 46,
                  "A trial that neither reaches the next interface nor falls back into A within "
                  "this many updates counts as a failure (with a warning)."),
      integer_key("rare_event", "max_stored_states", 10000000, 1, 1000000000,
                  "At most this many flux-stage crossing states per variant and replica (memory); "
                  "more is an error that says what to change."),
      boolean_key("rare_event", "store_states", true,
                  "Keep every interface's stored states (position, optimizer state, step, parent "
                  "and ancestor) in memory and the checkpoint, and write them to results.h5 "
                  "/rare_events/variantV/replicaR/interfaceI/; false keeps only the current "
                  "interface's (docs/RARE_EVENTS.md, \"Stored states\", gives their size)."),

      // ---- [sweep]
      string_key("sweep", "mode", "grid", {"grid", "zip"},
                 "grid: every combination of the swept values (the first swept key varies "
                 "slowest); zip: the i-th values of all swept keys together (equal lengths)."),
      other_key("sweep", "order", KeyType::strings, "the order of the keys in the file",
                "the swept keys, each once",
                "Nesting order of a grid (first = slowest) and column order of reports."),
  };
  keys.insert(keys.end(), later_keys.begin(), later_keys.end());
  return keys;
}

std::string type_text(const ConfigKey& key) {
  switch (key.type) {
    case KeyType::integer:
      return "integer";
    case KeyType::number:
      return "number";
    case KeyType::string:
      return "string";
    case KeyType::boolean:
      return "boolean";
    case KeyType::numbers:
      return "array of numbers";
    case KeyType::integers:
      return "array of integers";
    case KeyType::strings:
      return "array of strings";
    case KeyType::points:
      return "array of points";
    case KeyType::table:
      return "table";
    case KeyType::array_of_tables:
      return "array of tables";
  }
  return "?";
}

std::string default_text(const ConfigKey& key) {
  if (!key.default_text.empty()) return key.default_text;
  switch (key.type) {
    case KeyType::integer:
      return fmt::format("{}", key.integer_default);
    case KeyType::number:
      return fmt::format("{}", key.number_default);
    case KeyType::string:
      return fmt::format("\"{}\"", key.string_default);
    case KeyType::boolean:
      return key.boolean_default ? "true" : "false";
    default:
      return "none";
  }
}

std::string allowed_text(const ConfigKey& key) {
  if (!key.range_text.empty()) return key.range_text;
  switch (key.type) {
    case KeyType::integer:
      return integer_range_text(key);
    case KeyType::number:
      return number_range_text(key.min, key.max, key.min_exclusive);
    case KeyType::string: {
      std::vector<std::string> quoted;
      for (const auto& value : key.allowed) quoted.push_back("\"" + value + "\"");
      return fmt::format("{}", fmt::join(quoted, ", "));
    }
    case KeyType::boolean:
      return "true, false";
    default:
      return "";
  }
}

std::string integer_bound_text(std::int64_t value) {
  if (value == std::numeric_limits<std::int64_t>::max()) return "2^63 - 1";
  if (value >= (std::int64_t{1} << 20) && (value & (value - 1)) == 0) {
    int exponent = 0;
    while ((std::int64_t{1} << exponent) != value) ++exponent;
    return fmt::format("2^{}", exponent);
  }
  return fmt::format("{}", value);
}

void append_table(std::string& out, const std::vector<const ConfigKey*>& keys) {
  out += "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n";
  for (const ConfigKey* key : keys) {
    out += fmt::format("| `{}` | {} | {} | {} | {} |\n", key->name, type_text(*key),
                       default_text(*key), allowed_text(*key), key->meaning);
  }
  out += "\n";
}

void append_parameter_table(std::string& out, const std::vector<ParameterInfo>& parameters) {
  out += "| key | default | allowed | meaning |\n|---|---|---|---|\n";
  for (const auto& p : parameters) {
    out += fmt::format("| `{}` | {} | {} | {}{} |\n", p.name, p.default_value,
                       number_range_text(p.min, p.max, p.min_exclusive), p.description,
                       p.sweepable ? "" : " (not sweepable)");
  }
  out += "\n";
}

/// One section per landscape name of the registry, with its parameter table (for a name registered
/// in several dimensions, the table of the largest).
void append_landscape_tables(std::string& out) {
  for (const std::string& name : landscape_names()) {
    const std::vector<int> dims = landscape_dims(name);
    const LandscapeInfo& entry = *find_landscape(name, dims.back());
    if (dims.size() == 1) {
      out += fmt::format("### kind = \"{}\" (dimension {})\n\n", name, entry.dim);
    } else {
      out += fmt::format("### kind = \"{}\" (dimension dim: {})\n\n", name, fmt::join(dims, ", "));
    }
    out += fmt::format("{}.", entry.summary);
    std::string array_name;
    for (const auto& p : entry.parameters) {
      if (array_name.empty()) array_name = p.array;
    }
    if (!array_name.empty()) {
      out += fmt::format(
          " Array parameters are given in [landscape] as arrays of one number per element "
          "(`{0} = [...]`) and named per element in `[sweep]` (`{0}.0`, ...); the table is that "
          "of dim = {1}:",
          array_name, entry.dim);
    }
    out += "\n\n";
    append_parameter_table(out, entry.parameters);
  }
}

std::vector<const ConfigKey*> section_keys(const std::string& section) {
  std::vector<const ConfigKey*> keys;
  for (const auto& key : config_keys()) {
    if (key.section == section) keys.push_back(&key);
  }
  return keys;
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = make_config_keys();
  return keys;
}

const ConfigKey& config_key(std::string_view section, std::string_view name) {
  for (const auto& key : config_keys()) {
    if (key.section == section && key.name == name) return key;
  }
  throw std::logic_error(fmt::format("config key {}.{} is not in the key table", section, name));
}

bool is_integer_sweep_parameter(std::string_view swept_name) {
  // A schedule key is swept as SCHEDULE.KEY ([dynamics.SCHEDULE] KEY); the others have no dot but
  // a landscape's array elements ("k.0"), which match no section.
  const auto dot = swept_name.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string section = "dynamics." + std::string(swept_name.substr(0, dot));
  for (const auto& key : config_keys()) {
    if (key.section == section && key.name == swept_name.substr(dot + 1)) {
      return key.type == KeyType::integer;
    }
  }
  return false;
}

std::string number_range_text(double min, double max, bool min_exclusive) {
  const std::string low = min_exclusive ? fmt::format("> {}", min) : fmt::format(">= {}", min);
  if (min == -kInf && max == kInf) return "any finite number";
  if (max == kInf) return low;
  if (min == -kInf) return fmt::format("<= {}", max);
  if (max == std::nextafter(1.0, 0.0)) return low + " and < 1";  // a probability or fraction
  return fmt::format("{} and <= {}", low, max);
}

std::string integer_range_text(const ConfigKey& key) {
  std::string high = integer_bound_text(key.integer_max);
  if (key.integer_max_limit == Limit::steps) high = "run.steps";
  if (key.integer_max_limit == Limit::last_coordinate) high = "dimension - 1";
  return fmt::format("[{}, {}]", integer_bound_text(key.integer_min), high);
}

std::string config_reference_markdown() {
  std::string out = R"(# Config reference

<!-- Generated by `sgdwalk info --config-reference` from the tables the config validator reads
     (host/config/config_keys.cpp, host/config/landscape_params.cpp); do not edit by hand. After changing those
     tables: build/sgdwalk info --config-reference > docs/CONFIG.md (a test fails until then). -->

A run is described by one TOML file (`sgdwalk run CONFIG.toml`; `examples/` has complete ones,
and `sgdwalk run RUN/summary.json` reruns the resolved config of an earlier run). Every key is
optional unless its default reads "required"; a key that is not listed here, a value of the wrong
type, a non-finite number or a value outside the allowed range is an error that names the file,
the key, the value and what is allowed. Integers may be written as floats with an integral value
(`1e6`). Steps count updates (the initial state is step 0); time is steps x learning_rate. The
model, the noise and the observables are described in [MODEL.md](MODEL.md).

)";
  const std::vector<std::pair<std::string, std::string>> sections = {
      {"run", "## [run]\n\n"},
      {"landscape", "## [landscape]\n\n"},
      {"dynamics",
       "## [dynamics]\n\nThe update is θ ← θ − η (∇L(θ) + ξ), ξ ~ N(0, Σ(θ)) (with "
       "noise_distribution = \"alpha_stable\", ξ = Σ^{1/2}·η^{1/α−1/2}·S/√2, S α-stable). Give "
       "learning_rate or dt, and noise_strength or temperature; any of them may be swept "
       "instead. With an optimizer, the optimizer acts on g = ∇L(θ) + ξ.\n\n"},
      {"dynamics.learning_rate_schedule",
       "## [dynamics.learning_rate_schedule]\n\nA factor f on learning_rate: update k uses "
       "η·f(k − 1), computed in double from the step index alone (so segments, batches and "
       "resume keep the bits). Its number keys may be swept as "
       "`learning_rate_schedule.KEY` in `[sweep]`. With a schedule, `temperature` and the "
       "effective potential's default temperature are the base η·σ. With alpha_stable noise "
       "the jump scale follows: update k uses η_k^{1/α−1/2}, η_k = η·f(k − 1).\n\n"},
      {"dynamics.noise_schedule",
       "## [dynamics.noise_schedule]\n\nThe same factors on noise_strength: update k uses "
       "σ·f(k − 1). Swept as `noise_schedule.KEY`.\n\n"},
      {"init", "## [init]\n\n"},
      {"observables", "## [observables]\n\n"},
      {"observables.first_passage",
       "## [observables.first_passage]\n\nThe first step at which each walker meets the target "
       "(the start, step 0, counts); walkers that never do are censored at run.steps. Give either "
       "`target`, or `coordinate` with one of `above` and `below`.\n\n"},
      {"observables.histogram",
       "## [[observables.histogram]]\n\nEach `[[observables.histogram]]` table adds one "
       "histogram (integer counts per variant, exact). At most 10000 histograms, with at most "
       "2147483647 bins in all (counting one more per histogram for the deposits outside its "
       "range: a variant's counters are indexed in 32 bits on the GPU).\n\n"},
      {"rare_event",
       "## [rare_event]\n\nForward flux sampling of the escape rate from A = {λ < lambda_A} to "
       "B = {λ >= λ_n} (docs/RARE_EVENTS.md). Give `interfaces`, or `lambda_0` and `lambda_B` for "
       "automatic placement.\n\n"},
      {"sweep",
       "## [sweep]\n\nEvery other key of `[sweep]` names a swept parameter and gives its values: "
       "a list (`[0.01, 0.02]`), `{linspace = [start, stop, count]}` or `{logspace = "
       "[start_exponent, stop_exponent, count]}` (values 10^start ... 10^stop; a hint is printed "
       "when both exponents lie strictly between 0 and 1, which usually means values were "
       "written where exponents belong).\n\n"},
  };
  for (const auto& [section, heading] : sections) {
    out += heading;
    append_table(out, section_keys(section));
    if (section == "landscape") append_landscape_tables(out);
    if (section == "sweep") {
      std::vector<std::string> dynamics;
      for (const ConfigKey* key : section_keys("dynamics")) {
        if (key->type == KeyType::number) dynamics.push_back("`" + key->name + "`");
      }
      out += fmt::format(
          "Sweepable: the dynamics keys {}, the number keys of the schedules (as "
          "`learning_rate_schedule.KEY` and `noise_schedule.KEY`: warmup_steps, every, factor, "
          "gamma, decay_steps, floor) and the parameters of the config's landscape (the "
          "tables under [landscape]; array parameters per element, `stiffness.I`). A dotted name "
          "is written as a TOML dotted key (`learning_rate_schedule.gamma = [...]`) or quoted "
          "(`\"stiffness.1\" = [...]`): the same sweep. Each list or "
          "linspace/logspace has 1 to {} values, and a grid at most {} variants. Swept values are "
          "checked against the parameter's allowed range.\n",
          fmt::join(dynamics, ", "), kMaxSweepValues, kMaxVariants);
    }
  }
  return out;
}

}  // namespace sgdwalk
