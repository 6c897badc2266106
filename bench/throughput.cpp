// sgdwalk_bench: walker-steps/s for each landscape x noise x precision (x noise distribution x
// optimizer x schedule) on each backend, over walker counts, with and without observables. Prints a
// table (with each optimizer's and schedule's rate relative to plain SGD at the same point) and
// writes JSON.
//
//   build/bench/sgdwalk_bench --backend cpu --walkers 1e3,1e4,1e5 --steps 2000 --json out.json
//   build/bench/sgdwalk_bench --distributions gaussian,alpha_stable   (α = 1.5 for alpha_stable)
//   build/bench/sgdwalk_bench --optimizers sgd,momentum,nesterov,adam,rmsprop --schedules
//   none,cosine
#include <fmt/format.h>

#include <omp.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/backend_registry.hpp"
#include "config/config.hpp"
#include "config/landscape_params.hpp"
#include "run/driver.hpp"
#include "run/memory.hpp"

namespace {

using namespace sgdwalk;

std::string config_for(const std::string& landscape, const std::string& noise,
                       const std::string& precision, std::int64_t walkers, std::int64_t steps,
                       bool observables, const std::string& distribution,
                       const std::string& optimizer = "sgd", const std::string& schedule = "none") {
  // Every registered landscape with its defaults, from its default start (the config's: the
  // landscape's start point with x at -0.01 and +0.01); a few with settings of their own.
  std::string init;
  std::string landscape_extra;
  if (landscape == "harmonic") {
    init = "[init]\npositions = [[0.1, 0.1]]\n";
    landscape_extra = "dim = 2\nstiffness = [1.0, 2.0]\n";
  }
  if (landscape == "two_valley_slice") landscape_extra = "y = 5.0\n";
  std::string dynamics_extra = fmt::format("optimizer = \"{}\"", optimizer);
  if (distribution != "gaussian") {
    dynamics_extra += "\nnoise_distribution = \"" + distribution + "\"\nalpha = 1.5";
  }
  // Subtables of [dynamics]: after its keys, before [init].
  std::string schedule_tables;
  if (schedule == "cosine") {
    schedule_tables =
        "[dynamics.learning_rate_schedule]\nkind = \"cosine\"\nwarmup_steps = 10\n"
        "[dynamics.noise_schedule]\nkind = \"exponential\"\ngamma = 0.9999\n";
  } else if (schedule != "none") {
    throw std::invalid_argument("unknown schedule '" + schedule + "' (none or cosine)");
  }
  std::string text = fmt::format(R"(
[run]
walkers = {}
steps = {}
seed = 1
precision = "{}"
[landscape]
kind = "{}"
{}
[dynamics]
noise = "{}"
{}
learning_rate = 0.05
noise_strength = 0.05
{}
)",
                                 walkers, steps, precision, landscape, landscape_extra, noise,
                                 dynamics_extra, schedule_tables + init);
  if (observables) {
    text += fmt::format(R"(
[observables]
sample_every = {}
[observables.first_passage]
target = "flat"
[[observables.histogram]]
x_range = [-3.0, 3.0]
bins = 200
window = [{}, {}]
every = 1
)",
                        std::max<std::int64_t>(1, steps / 10), steps / 2, steps);
  } else {
    text += "[observables]\nsample_steps = []\n";
  }
  return text;
}

std::vector<std::int64_t> parse_counts(const std::string& list) {
  std::vector<std::int64_t> counts;
  std::size_t start = 0;
  while (start < list.size()) {
    const std::size_t end = list.find(',', start);
    counts.push_back(static_cast<std::int64_t>(std::stod(list.substr(start, end - start))));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return counts;
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = list.find(',', start);
    items.push_back(list.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return items;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sgdwalk throughput benchmark (walker-steps per second)"};
  std::string backend_name = "auto", walkers_list = "1e3,1e4,1e5", json_path;
  // Defaults: every landscape and noise model of the registries.
  std::string landscapes = fmt::format("{}", fmt::join(landscape_names(), ","));
  std::string noises, precisions = "float,double";
  for (const auto& model : noise_registry()) noises += (noises.empty() ? "" : ",") + model.name;
  std::string observables_modes = "on,off", distributions = "gaussian";
  std::string optimizers = "sgd", schedules = "none";
  std::int64_t steps = 2000;
  int threads = 0, repeats = 3;
  app.add_option("--backend", backend_name, "auto, cpu or cuda");
  app.add_option("--walkers", walkers_list, "comma-separated walker counts (1e5 notation ok)");
  app.add_option("--steps", steps, "steps per run")->check(CLI::Range(1, 100000000));
  app.add_option("--landscapes", landscapes, "comma-separated landscapes");
  app.add_option("--noises", noises, "comma-separated noise models");
  app.add_option("--precisions", precisions, "float,double");
  app.add_option("--observables", observables_modes, "on,off (all observables or none)");
  app.add_option("--distributions", distributions,
                 "gaussian,alpha_stable (noise distributions; alpha_stable at α = 1.5)");
  app.add_option("--optimizers", optimizers,
                 "comma-separated optimizers (sgd, momentum, nesterov, adam, rmsprop)");
  app.add_option("--schedules", schedules,
                 "none,cosine (cosine: a warmup + cosine learning rate and an exponential noise "
                 "schedule, constants computed per step)");
  app.add_option("--threads", threads, "CPU threads (0 = all)");
  app.add_option("--repeats", repeats, "repetitions per point; the best is reported")
      ->check(CLI::Range(1, 100));
  app.add_option("--json", json_path, "write results as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  BackendChoice choice;
  try {
    choice = make_backend(backend_name, threads);
  } catch (const std::exception& error) {
    fmt::print(stderr, "sgdwalk_bench: {}\n", error.what());
    return 2;
  }
  if (!choice.notice.empty()) fmt::print(stderr, "{}\n", choice.notice);
  nlohmann::json results = nlohmann::json::array();
  const auto write_json = [&] {
    if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
  };
  std::vector<std::int64_t> walker_counts;
  try {
    walker_counts = parse_counts(walkers_list);
  } catch (const std::exception&) {
    fmt::print(stderr, "sgdwalk_bench: --walkers '{}' is not a comma-separated list of numbers\n",
               walkers_list);
    return 2;
  }
  fmt::print("backend: {}\n", choice.backend->description());
  fmt::print("{:<18} {:<16} {:<12} {:<7} {:<4} {:<9} {:<7} {:>10} {:>8} {:>14} {:>7} {:>9} {:>7}\n",
             "landscape", "noise", "distribution", "prec", "obs", "optimizer", "sched", "walkers",
             "steps", "walker-steps/s", "copies", "wall [s]", "vs sgd");
  int failures = 0;
  for (const auto& landscape : split(landscapes)) {
    for (const auto& noise : split(noises)) {
      for (const auto& distribution : split(distributions)) {
        for (const auto& precision : split(precisions)) {
          for (const auto& observables : split(observables_modes)) {
            for (const std::int64_t walkers : walker_counts) {
              double sgd_rate = 0;  // plain SGD at this point, when measured (listed first)
              for (const auto& optimizer : split(optimizers)) {
                for (const auto& schedule : split(schedules)) {
                  // Best of the repeats: walker-steps per second of simulation (initialisation,
                  // kernels and copies), the share of that time spent in host-device copies, and
                  // the wall time of the whole point (summaries included).
                  double best = 0, copy_share = 0, wall = 0;
                  try {
                    const RunPlan plan = load_config_text(
                        config_for(landscape, noise, precision, walkers, steps, observables == "on",
                                   distribution, optimizer, schedule),
                        "bench");
                    // As `sgdwalk run` does: refuse a point that cannot fit in host memory rather
                    // than be killed by the system halfway through the matrix.
                    check_host_resources(plan, "sgdwalk_bench",
                                         threads > 0 ? threads : omp_get_max_threads(),
                                         available_host_memory());
                    for (int r = 0; r < repeats; ++r) {
                      ExecuteOptions options;
                      options.segment_steps =
                          steps;  // one backend call: the kernel, not the driver
                      const TransferStats before = choice.backend->transfers();
                      const auto start = std::chrono::steady_clock::now();
                      const RunOutcome outcome = execute(plan, *choice.backend, options);
                      const double seconds = outcome.progress.simulate_seconds;
                      const double rate =
                          static_cast<double>(outcome.progress.walker_steps_done) / seconds;
                      if (rate > best) {
                        best = rate;
                        copy_share =
                            (choice.backend->transfers().seconds - before.seconds) / seconds;
                        wall =
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                                .count();
                      }
                    }
                  } catch (const std::exception& error) {
                    fmt::print(
                        stderr,
                        "sgdwalk_bench: {} {} {} {} observables {} {} {} at {} walkers: {}\n",
                        landscape, noise, distribution, precision, observables, optimizer, schedule,
                        walkers, error.what());
                    ++failures;
                    continue;
                  }
                  if (optimizer == "sgd" && schedule == "none") sgd_rate = best;
                  const std::string ratio =
                      sgd_rate > 0 ? fmt::format("{:.3f}", best / sgd_rate) : "";
                  fmt::print(
                      "{:<18} {:<16} {:<12} {:<7} {:<4} {:<9} {:<7} {:>10} {:>8} {:>14.4g} "
                      "{:>6.1f}% "
                      "{:>9.3g} "
                      "{:>7}\n",
                      landscape, noise, distribution, precision, observables, optimizer, schedule,
                      walkers, steps, best, 100 * copy_share, wall, ratio);
                  std::fflush(
                      stdout);  // a line per point, also when stdout is a file and time runs out
                  results.push_back({{"backend", choice.backend->name()},
                                     {"device", choice.backend->description()},
                                     {"landscape", landscape},
                                     {"noise", noise},
                                     {"distribution", distribution},
                                     {"precision", precision},
                                     {"observables", observables == "on"},
                                     {"optimizer", optimizer},
                                     {"schedule", schedule},
                                     {"walkers", walkers},
                                     {"steps", steps},
                                     {"walker_steps_per_second", best},
                                     {"copy_share", copy_share},
                                     {"wall_seconds", wall}});
                  write_json();  // after every point: a run cut short keeps what it measured
                }
              }
            }
          }
        }
      }
    }
  }
  write_json();
  if (failures > 0) {
    fmt::print(stderr, "sgdwalk_bench: {} point(s) failed\n", failures);
    return 1;
  }
  return 0;
}
