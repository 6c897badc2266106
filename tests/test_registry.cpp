// Generic tests over the landscape and noise registries: every registered landscape (built in,
// added by one header and one registry line, or out of tree with SGDWALK_USER_PHYSICS) gets them
// without writing a test of its own. Analytic derivatives against finite differences at random
// points, the one-pass evaluation against the separate methods, the description against the
// struct's defaults, and the config: defaults, round trips through the resolved config, sweeps of
// every sweepable parameter, and bad values (the error names key, value and range). CPU/CUDA
// equality of every registered landscape x noise model x precision is test_backend_equivalence
// (all_physics_cases() reads the registry; it skips without a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "config/config.hpp"
#include "config/config_keys.hpp"
#include "config/landscape_params.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"

namespace sgdwalk {
namespace {

/// A registry entry as a gtest type.
template <template <class> class L>
struct Entry {
  template <class T>
  using type = L<T>;
};
template <class List>
struct ToTypes;
template <template <class> class... L>
struct ToTypes<LandscapeList<L...>> {
  using type = ::testing::Types<Entry<L>...>;
};
using RegistryTypes = ToTypes<Landscapes>::type;

template <class E>
class LandscapeRegistry : public ::testing::Test {};
TYPED_TEST_SUITE(LandscapeRegistry, RegistryTypes);

// Entry (i, j) of any Hessian type (1-D T, Sym2, Diag).
template <class T>
double hessian_at(const T& h, int, int) {
  return static_cast<double>(h);
}
template <class T>
double hessian_at(const Sym2<T>& h, int i, int j) {
  return i == 0 && j == 0 ? h.xx : (i == 1 && j == 1 ? h.yy : h.xy);
}
template <class T, int D>
double hessian_at(const Diag<T, D>& h, int i, int j) {
  return i == j ? h.d[i] : 0.0;
}

// Fourth-order central difference of f along coordinate i (error O(h⁴)).
template <class F, class P>
double central_diff(F f, const P& p, int i, double h) {
  auto at = [&](double s) {
    P q = p;
    q[i] = p[i] + s;
    return static_cast<double>(f(q));
  };
  return (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
}

TYPED_TEST(LandscapeRegistry, PhysicsIsDeviceReady) {
  using LF = typename TypeParam::template type<float>;
  using LD = typename TypeParam::template type<double>;
  static_assert(std::is_trivially_copyable_v<LF> && std::is_trivially_copyable_v<LD>);
  static_assert(LF::dim == LD::dim && LD::dim >= 1);
  static_assert(std::is_same_v<typename LD::Point, Vec<double, LD::dim>>);
  // The noise models know these Hessian forms.
  using H = typename LD::Hessian;
  static_assert(std::is_same_v<H, double> || std::is_same_v<H, Sym2<double>> ||
                std::is_same_v<H, Diag<double, LD::dim>>);
}

// Gradient = finite differences of the value, Hessian = finite differences of the gradient, at
// random points of [-1, 1]^dim (fixed seed). Points whose difference stencil crosses a basin
// boundary are skipped: the built-in landscapes have their kinks there.
TYPED_TEST(LandscapeRegistry, DerivativesMatchFiniteDifferences) {
  using L = typename TypeParam::template type<double>;
  constexpr int D = L::dim;
  const L landscape{};
  std::mt19937_64 rng(20261204);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const double h = 1e-4;
  int checked = 0;
  for (int trial = 0; trial < 200; ++trial) {
    typename L::Point p;
    for (int i = 0; i < D; ++i) p[i] = uniform(rng);
    bool straddles = false;
    for (int i = 0; i < D; ++i) {
      for (const double s : {-2 * h, 2 * h}) {
        typename L::Point q = p;
        q[i] += s;
        straddles = straddles || landscape.basin(q) != landscape.basin(p);
      }
    }
    if (straddles) continue;
    ++checked;
    const auto g = landscape.gradient(p);
    const auto hess = landscape.hessian(p);
    const double scale = 1 + std::abs(landscape.value(p));
    for (int i = 0; i < D; ++i) {
      const double fd = central_diff([&](const auto& q) { return landscape.value(q); }, p, i, h);
      EXPECT_NEAR(g[i], fd, 1e-7 * (scale + std::abs(fd))) << L::name << " dL/dx" << i;
      for (int j = 0; j < D; ++j) {
        const double fdh =
            central_diff([&](const auto& q) { return landscape.gradient(q)[j]; }, p, i, h);
        EXPECT_NEAR(hessian_at(hess, j, i), fdh, 1e-6 * (scale + std::abs(fdh)))
            << L::name << " H" << j << i;
      }
    }
  }
  EXPECT_GE(checked, 150) << "too many random points next to a basin boundary";
}

// gradient_hessian agrees bit for bit with gradient() and hessian() (the walker calls the first,
// the tests and replays the others), in both precisions.
TYPED_TEST(LandscapeRegistry, OnePassIsBitIdentical) {
  const auto check = [](auto landscape) {
    using L = decltype(landscape);
    using T = std::remove_reference_t<decltype(landscape.value(typename L::Point{}))>;
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (int trial = 0; trial < 50; ++trial) {
      typename L::Point p;
      for (int i = 0; i < L::dim; ++i) p[i] = static_cast<T>(uniform(rng));
      typename L::Point g;
      typename L::Hessian h;
      landscape.gradient_hessian(p, g, h);
      const auto g2 = landscape.gradient(p);
      const auto h2 = landscape.hessian(p);
      EXPECT_EQ(0, std::memcmp(&g, &g2, sizeof g)) << L::name;
      EXPECT_EQ(0, std::memcmp(&h, &h2, sizeof h)) << L::name;
    }
  };
  check(typename TypeParam::template type<float>{});
  check(typename TypeParam::template type<double>{});
}

// The description's table holds the struct's defaults, and assigning the defaults gives back the
// default-constructed struct bit for bit (every member is described, none twice).
TYPED_TEST(LandscapeRegistry, DescriptionMatchesTheStruct) {
  using L = typename TypeParam::template type<double>;
  const auto table = parameter_table<TypeParam::template type>();
  ASSERT_FALSE(table.empty());
  std::set<std::string> names;
  std::map<std::string, double> defaults;
  for (const auto& p : table) {
    EXPECT_TRUE(names.insert(p.name).second) << L::name << ": " << p.name << " twice";
    const bool inside = (p.min_exclusive ? p.default_value > p.min : p.default_value >= p.min) &&
                        p.default_value <= p.max;
    EXPECT_TRUE(inside) << L::name << ": default of " << p.name << " outside its range";
    EXPECT_FALSE(p.description.empty()) << L::name << ": " << p.name;
    defaults[p.name] = p.default_value;
  }
  L poisoned;
  std::memset(static_cast<void*>(&poisoned), 0x7f, sizeof poisoned);
  assign_parameters(poisoned, defaults);
  const L fresh{};
  EXPECT_EQ(0, std::memcmp(&poisoned, &fresh, sizeof fresh))
      << L::name << ": a member is not in the parameter table";
  // The host's registry view names this entry.
  const LandscapeInfo* info = find_landscape(L::name, L::dim);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->parameters.size(), table.size());
  EXPECT_EQ(static_cast<int>(info->start.size()), L::dim);
}

// Known stationary points (a landscape's stationary_points(), from the literature or analysis):
// Newton's method on the analytic gradient and Hessian converges next to each, the loss there is
// the known one, and the Hessian has the known number of negative eigenvalues (the signs of the
// pivots of its LDLᵀ factorisation, Sylvester's law of inertia).
TYPED_TEST(LandscapeRegistry, KnownStationaryPoints) {
  using L = typename TypeParam::template type<double>;
  if constexpr (!requires { L::stationary_points(); }) {
    GTEST_SKIP() << L::name << " lists no stationary points";
  } else {
    constexpr int D = L::dim;
    const L landscape{};
    for (const StationaryPoint& known : L::stationary_points()) {
      ASSERT_EQ(static_cast<int>(known.position.size()), D);
      typename L::Point p;
      for (int i = 0; i < D; ++i) p[i] = known.position[static_cast<std::size_t>(i)];
      double m[D][D];
      for (int iteration = 0; iteration < 50; ++iteration) {
        const auto g = landscape.gradient(p);
        const auto h = landscape.hessian(p);
        double a[D][D + 1];
        for (int i = 0; i < D; ++i) {
          for (int j = 0; j < D; ++j) a[i][j] = hessian_at(h, i, j);
          a[i][D] = -g[i];
        }
        for (int k = 0; k < D; ++k) {  // Gaussian elimination (D <= 3, well conditioned here)
          for (int i = k + 1; i < D; ++i) {
            const double f = a[i][k] / a[k][k];
            for (int j = k; j <= D; ++j) a[i][j] -= f * a[k][j];
          }
        }
        for (int i = D - 1; i >= 0; --i) {
          double step = a[i][D];
          for (int j = i + 1; j < D; ++j) step -= a[i][j] * a[j][D];
          a[i][D] = step / a[i][i];
        }
        for (int i = 0; i < D; ++i) p[i] += a[i][D];
      }
      const auto g = landscape.gradient(p);
      const auto h = landscape.hessian(p);
      double gradient_norm = 0;
      for (int i = 0; i < D; ++i) {
        gradient_norm = std::max(gradient_norm, std::abs(g[i]));
        for (int j = 0; j < D; ++j) m[i][j] = hessian_at(h, i, j);
        EXPECT_NEAR(p[i], known.position[static_cast<std::size_t>(i)], known.tolerance)
            << L::name << " coordinate " << i;
      }
      EXPECT_LT(gradient_norm, 1e-8 * (1 + std::abs(landscape.value(p)))) << L::name;
      EXPECT_NEAR(landscape.value(p), known.value, known.value_tolerance) << L::name;
      int negative = 0;
      for (int k = 0; k < D; ++k) {  // LDLᵀ pivots
        negative += m[k][k] < 0;
        for (int i = k + 1; i < D; ++i) {
          const double f = m[i][k] / m[k][k];
          for (int j = k; j < D; ++j) m[i][j] -= f * m[k][j];
        }
      }
      EXPECT_EQ(negative, known.negative_curvatures) << L::name;
    }
  }
}

// ---- config
// ---------------------------------------------------------------------------------------

/// [landscape] for the entry with explicit values (arrays for array parameters).
template <class L>
std::string landscape_section(const std::vector<ParameterInfo>& table,
                              const std::map<std::string, double>& values) {
  std::string text = fmt::format("[landscape]\nkind = \"{}\"\ndim = {}\n", L::name, L::dim);
  std::map<std::string, std::vector<double>> arrays;
  for (const auto& p : table) {
    if (p.array.empty()) {
      text += fmt::format("{} = {}\n", p.name, values.at(p.name));
    } else {
      arrays[p.array].push_back(values.at(p.name));
    }
  }
  for (const auto& [name, list] : arrays)
    text += fmt::format("{} = [{}]\n", name, fmt::join(list, ", "));
  return text;
}

const std::string kDynamics = "[dynamics]\nlearning_rate = 0.01\nnoise_strength = 0.05\n";

/// A value inside the parameter's range other than its default.
double other_value(const ParameterInfo& p) {
  double v = p.default_value + 0.25 * (1 + std::abs(p.default_value));
  if (v > p.max) v = p.min_exclusive ? 0.5 * (p.min + p.default_value) : p.min;
  return v;
}

TYPED_TEST(LandscapeRegistry, ConfigDefaultsAndRoundTrip) {
  using L = typename TypeParam::template type<double>;
  const auto table = parameter_table<TypeParam::template type>();
  // Defaults: only kind (and dim) given.
  const RunPlan defaults = load_config_text(
      fmt::format("[landscape]\nkind = \"{}\"\ndim = {}\n", L::name, L::dim) + kDynamics, "t");
  EXPECT_EQ(defaults.landscape, L::name);
  EXPECT_EQ(defaults.dim, L::dim);
  for (const auto& p : table) EXPECT_EQ(defaults.variants[0].landscape.at(p.name), p.default_value);

  // Every parameter set to another value; the resolved config reads back to the same plan.
  std::map<std::string, double> values;
  for (const auto& p : table) values[p.name] = other_value(p);
  const RunPlan plan = load_config_text(landscape_section<L>(table, values) + kDynamics, "t");
  EXPECT_EQ(plan.variants[0].landscape, values);
  const RunPlan again = load_config_text(config_text_from_json(plan.resolved_config, "t"), "t2");
  EXPECT_EQ(again.landscape, plan.landscape);
  EXPECT_EQ(again.dim, plan.dim);
  EXPECT_EQ(again.variants[0].landscape, values);
  EXPECT_EQ(again.resolved_config, plan.resolved_config);
}

TYPED_TEST(LandscapeRegistry, EverySweepableParameterSweeps) {
  using L = typename TypeParam::template type<double>;
  const auto table = parameter_table<TypeParam::template type>();
  for (const auto& p : table) {
    const double a = p.default_value, b = other_value(p);
    const std::string text =
        fmt::format("[landscape]\nkind = \"{}\"\ndim = {}\n", L::name, L::dim) + kDynamics +
        fmt::format("[sweep]\n\"{}\" = [{}, {}]\n", p.name, a, b);
    if (!p.sweepable) {
      EXPECT_THROW(load_config_text(text, "t"), ConfigError) << p.name;
      continue;
    }
    const RunPlan plan = load_config_text(text, "t");
    ASSERT_EQ(plan.variants.size(), 2u) << p.name;
    EXPECT_EQ(plan.variants[0].landscape.at(p.name), a);
    EXPECT_EQ(plan.variants[1].landscape.at(p.name), b);
  }
}

TYPED_TEST(LandscapeRegistry, BadValuesNameKeyValueAndRange) {
  using L = typename TypeParam::template type<double>;
  const auto table = parameter_table<TypeParam::template type>();
  for (const auto& p : table) {
    std::vector<double> bad;
    if (std::isfinite(p.min)) bad.push_back(p.min_exclusive ? p.min : p.min - 1);
    if (std::isfinite(p.max)) bad.push_back(p.max + 1);
    for (const double value : bad) {
      std::map<std::string, double> values;
      for (const auto& q : table) values[q.name] = q.default_value;
      values[p.name] = value;
      const std::string key = p.array.empty() ? p.name : fmt::format("{}[{}]", p.array, p.index);
      try {
        load_config_text(landscape_section<L>(table, values) + kDynamics, "t");
        ADD_FAILURE() << L::name << ": " << key << " = " << value << " accepted";
      } catch (const ConfigError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("landscape." + key), std::string::npos) << message;
        EXPECT_NE(message.find(fmt::format("{}", value)), std::string::npos) << message;
        EXPECT_NE(message.find(number_range_text(p.min, p.max, p.min_exclusive)), std::string::npos)
            << message;
      }
      // The same through [sweep] (per element for arrays).
      const std::string sweep =
          fmt::format("[landscape]\nkind = \"{}\"\ndim = {}\n", L::name, L::dim) + kDynamics +
          fmt::format("[sweep]\n\"{}\" = [{}]\n", p.name, value);
      if (p.sweepable) {
        try {
          load_config_text(sweep, "t");
          ADD_FAILURE() << L::name << ": sweep of " << p.name << " = " << value << " accepted";
        } catch (const ConfigError& error) {
          const std::string message = error.what();
          EXPECT_NE(message.find("sweep." + p.name), std::string::npos) << message;
          EXPECT_NE(message.find(number_range_text(p.min, p.max, p.min_exclusive)),
                    std::string::npos)
              << message;
        }
      }
    }
  }
}

TEST(Registry, NamesAndDimensionsAreUniqueAndListed) {
  std::set<std::pair<std::string, int>> seen;
  for (const auto& entry : landscape_registry()) {
    EXPECT_TRUE(seen.insert({entry.name, entry.dim}).second) << entry.name;
  }
  EXPECT_EQ(landscape_registry().size(), Landscapes::size);
  // `sgdwalk info --landscapes` and the config reference list every landscape, parameter and
  // noise model.
  const std::string text = landscapes_text();
  const std::string reference = config_reference_markdown();
  for (const auto& entry : landscape_registry()) {
    EXPECT_NE(text.find(fmt::format("{} (dimension {})", entry.name, entry.dim)),
              std::string::npos);
    EXPECT_NE(reference.find(fmt::format("kind = \"{}\"", entry.name)), std::string::npos);
    for (const auto& p : entry.parameters) EXPECT_NE(text.find(p.name), std::string::npos);
  }
  for (const auto& model : noise_registry()) {
    EXPECT_NE(text.find(model.name), std::string::npos);
    EXPECT_NE(reference.find(model.name), std::string::npos);
  }
}

TEST(Registry, UnknownLandscapeSuggestsTheClosestName) {
  // This build's first landscape (two_valley unless -DSGDWALK_LANDSCAPES selected others),
  // misspelt.
  const std::string name = landscape_names().front();
  try {
    load_config_text(
        "[landscape]\nkind = \"" + name.substr(0, name.size() - 1) + "\"\n" + kDynamics, "t");
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("landscape.kind"), std::string::npos) << message;
    EXPECT_NE(message.find("did you mean '" + name + "'"), std::string::npos) << message;
    for (const auto& built : landscape_names()) {
      EXPECT_NE(message.find(built), std::string::npos);
    }
  }
  try {
    load_config_text("[landscape]\nkind = \"" + name + "\"\ndim = 5\n" + kDynamics, "t");
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("landscape.dim"), std::string::npos) << error.what();
  }
}

// -DSGDWALK_LANDSCAPES="A;B" builds some registry entries only (the user_physics test configures
// such a build and runs these tests in it): they keep the registry's order, and a config naming
// another entry, or leaving the kind at a default the build does not have, is refused with a
// message that says how the build was configured.
TEST(Registry, ALandscapeLeftOutOfTheBuildIsRefusedNamingTheBuild) {
  std::vector<std::pair<std::string, int>> registry_order;
  for_each_registry_landscape([&]<template <class> class L>() {
    registry_order.emplace_back(L<double>::name, L<double>::dim);
  });
  std::vector<std::pair<std::string, int>> built_order;
  for (const auto& entry : landscape_registry()) built_order.emplace_back(entry.name, entry.dim);
  const std::string selection = landscape_build_selection();
  if (selection.empty()) {
    EXPECT_EQ(built_order, registry_order);
    for (const auto& [name, dim] : registry_order) EXPECT_FALSE(landscape_left_out_of_build(name));
    GTEST_SKIP() << "this build has every landscape (SGDWALK_LANDSCAPES=all); the user_physics "
                    "test runs this one in a build of two";
  }
  EXPECT_LT(built_order.size(), registry_order.size());
  std::vector<std::pair<std::string, int>> kept;  // the registry's entries that were built
  for (const auto& entry : registry_order) {
    if (std::find(built_order.begin(), built_order.end(), entry) != built_order.end()) {
      kept.push_back(entry);
    }
  }
  EXPECT_EQ(kept, built_order) << "the build's landscapes are not in the registry's order";

  auto expect_refused = [&](const std::string& text, const std::string& name, bool given) {
    try {
      load_config_text(text + kDynamics, "t");
      ADD_FAILURE() << "accepted " << name;
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("landscape.kind"), std::string::npos) << message;
      EXPECT_NE(message.find(fmt::format("{} \"{}\" is a landscape this sgdwalk was built without",
                                         given ? "value" : "not given: the default", name)),
                std::string::npos)
          << message;
      EXPECT_NE(message.find(selection), std::string::npos) << message;
      for (const auto& built : landscape_names()) {
        EXPECT_NE(message.find(built), std::string::npos) << message;
      }
    }
  };
  int left_out = 0;
  for (const auto& [name, dim] : registry_order) {
    if (!landscape_left_out_of_build(name)) continue;
    ++left_out;
    expect_refused(fmt::format("[landscape]\nkind = \"{}\"\n", name), name, true);
  }
  EXPECT_GT(left_out, 0);
  const std::string default_kind = config_key("landscape", "kind").string_default;
  if (landscape_left_out_of_build(default_kind)) expect_refused("", default_kind, false);
}

TEST(Registry, NoiseModelsRoundTripTheirNames) {
  for_each_noise_model([]<class M>() {
    EXPECT_EQ(to_string(M::kind), M::name);
    static_assert(std::is_same_v<NoiseModel<M::kind>, M>);
    const RunPlan plan = load_config_text(
        fmt::format("[landscape]\nkind = \"{}\"\n[dynamics]\nnoise = \"{}\"\nlearning_rate = "
                    "0.1\nnoise_strength = 0.05\n",
                    landscape_names().front(), M::name),
        "t");
    EXPECT_EQ(plan.noise, M::kind);
  });
}

}  // namespace
}  // namespace sgdwalk
