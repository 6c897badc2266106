// The Python module sgdwalk._sgdwalk: a thin layer over the C++ core's run sessions (the same code
// as the CLI's `run`, `resume` and `replay`), so that Python results are the CLI's bits. The
// Python package (python/sgdwalk) builds the public API on top of these functions.
//
// Runs release the GIL. After every backend call (sized to about segment_seconds) the session's
// progress callback takes the GIL back to check for signals (Ctrl-C raises KeyboardInterrupt) and
// to call the Python progress callback; Python is never called from OpenMP threads. A replay
// (replay_csv) checks for signals the same way every kReplayCheckSteps updates.
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "analysis/diagnostics.hpp"
#include "backend/backend_registry.hpp"
#include "cluster/parts.hpp"
#include "config/config.hpp"
#include "config/config_keys.hpp"
#include "config/landscape_params.hpp"
#include "rare_events/ffs_session.hpp"
#include "run/checkpoint.hpp"
#include "run/driver.hpp"
#include "run/memory.hpp"
#include "run/run_session.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using namespace sgdwalk;

/// How a session is run; the fields mirror the CLI's session flags.
struct SessionSettings {
  std::string backend = "auto";
  int threads = 0;
  std::int64_t batch_walkers = 0;
  std::int64_t segment_steps = 0;
  double segment_seconds = 1.0;
  double checkpoint_every = 60;
  /// Test hook: a pause after every backend call (as the CLI's SGDWALK_TEST_SEGMENT_DELAY_MS), so
  /// that tests can interrupt a run mid-way however fast the machine is.
  int segment_delay_ms = 0;
};

nb::dict progress_dict(const RunProgress& progress) {
  nb::dict d;
  d["walker_steps_done"] = progress.walker_steps_done;
  d["walker_steps_total"] = progress.walker_steps_total;
  d["variants_done"] = progress.variants_done;
  d["variants_total"] = progress.variants_total;
  d["batch"] = progress.batch;
  d["batches"] = progress.batches;
  d["simulate_seconds"] = progress.simulate_seconds;
  return d;
}

/// What a session running with the GIL released does at each of its boundaries (a segment, or an
/// FFS stage): with the GIL, it runs Python's signal handlers and then `report` (the progress
/// callback). A handler that raised (KeyboardInterrupt) or a callback that raised sets the
/// session's stop flag; the exception is raised again once the session has returned, after
/// writing its checkpoint and partial results.
struct PythonInterrupts {
  std::atomic<int> stop{0};
  std::optional<nb::python_error> raised;  // touched (and destroyed) only with the GIL held

  template <class Report>
  void at_boundary(Report&& report) {
    nb::gil_scoped_acquire acquire;
    if (raised) return;
    if (PyErr_CheckSignals() != 0) {
      raised.emplace();  // fetches the pending exception (KeyboardInterrupt)
      stop = SIGINT;
      return;
    }
    try {
      report();
    } catch (nb::python_error& error) {
      raised.emplace(std::move(error));
      stop = SIGINT;
    }
  }
  void throw_if_raised() {
    if (raised) throw std::move(*raised);
  }
};

/// Runs `session` (a brute-force run session) with the GIL released; a progress callback gets a
/// progress dict after every segment.
template <class Session>
nb::dict run_with_python(const RunPlan& plan, const SessionSettings& settings,
                         const nb::object& on_progress, Session&& session) {
  BackendChoice choice = make_backend(settings.backend, settings.threads);
  PythonInterrupts python;  // outside the GIL release below, so destroyed with the GIL held
  SessionOptions options;
  options.execute.batch_walkers = settings.batch_walkers;
  options.execute.segment_steps = settings.segment_steps;
  options.execute.segment_seconds = settings.segment_seconds;
  options.checkpoint_every = settings.checkpoint_every;
  options.threads = settings.threads;
  options.stop = &python.stop;
  std::vector<std::string> warnings;
  options.on_warning = [&](const std::string& warning) { warnings.push_back(warning); };
  options.on_progress = [&](const RunProgress& progress) {
    if (settings.segment_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(settings.segment_delay_ms));
    }
    python.at_boundary([&] {
      if (!on_progress.is_none()) on_progress(progress_dict(progress));
    });
  };

  SessionResult result;
  {
    nb::gil_scoped_release release;
    result = session(*choice.backend, options);
  }
  python.throw_if_raised();

  nb::dict out;
  out["complete"] = result.outcome.complete;
  out["notice"] = choice.notice;
  out["backend"] = result.outcome.backend_name;
  out["backend_description"] = result.outcome.backend_description;
  if (result.outcome.complete) {
    const std::vector<std::string> problems =
        run_warnings(plan, result.outcome.summaries, result.outcome.progress.variants_done);
    warnings.insert(warnings.end(), problems.begin(), problems.end());
  }
  out["warnings"] = warnings;
  return out;
}

/// As `sgdwalk resume`: a run directory the outputs cannot go to is refused before computing.
void refuse_unwritable(const std::string& directory) {
  const std::string problem = run_directory_problem(directory, "run directory");
  if (!problem.empty()) throw RunDirectoryError(problem, true);
}

/// Forward flux sampling (FfsSession) with the GIL released, as run_with_python: its boundaries
/// are the stages (the CLI's), and a progress callback gets each finished stage's line (the CLI
/// prints it after "sgdwalk: ffs: ").
template <class Session>
nb::dict run_ffs_with_python(const SessionSettings& settings, const nb::object& on_stage,
                             Session&& session) {
  BackendChoice choice = make_backend(settings.backend, settings.threads);
  PythonInterrupts python;
  FfsSessionOptions options;
  options.stop = &python.stop;
  options.on_stage = [&](const std::string& line) {
    python.at_boundary([&] {
      if (!on_stage.is_none()) on_stage(line);
    });
  };
  FfsSessionResult result;
  {
    nb::gil_scoped_release release;
    result = session(*choice.backend, options);
  }
  python.throw_if_raised();
  nb::dict out;
  out["complete"] = result.complete;
  out["notice"] = choice.notice;
  out["backend"] = choice.backend->name();
  out["backend_description"] = choice.backend->description();
  out["warnings"] = std::vector<std::string>{};  // the rare-event warnings are in summary.json
  out["ffs"] = true;
  return out;
}

SessionSettings make_settings(const std::string& backend, int threads, std::int64_t batch_walkers,
                              std::int64_t segment_steps, double segment_seconds,
                              double checkpoint_every, int segment_delay_ms) {
  SessionSettings settings;
  settings.backend = backend;
  settings.threads = threads;
  settings.batch_walkers = batch_walkers;
  settings.segment_steps = segment_steps;
  settings.segment_seconds = segment_seconds;
  settings.checkpoint_every = checkpoint_every;
  settings.segment_delay_ms = segment_delay_ms;
  return settings;
}

/// The plan of a config text, with the seed overridden when seed >= 0 (as `sgdwalk run --seed`).
RunPlan plan_with_seed(const std::string& config_text, const std::string& source, long long seed) {
  RunPlan plan = load_config_text(config_text, source);
  if (seed >= 0) {
    plan.seed = static_cast<std::uint64_t>(seed);
    plan.resolved_config["run"]["seed"] = plan.seed;
  }
  return plan;
}

}  // namespace

NB_MODULE(_sgdwalk, m) {
  m.doc() = "sgdwalk's C++ core (use the sgdwalk package, not this module)";

  nb::exception<ConfigError>(m, "ConfigError", PyExc_ValueError);
  nb::exception<ResourceError>(m, "ResourceError", PyExc_MemoryError);
  nb::exception<RunDirectoryError>(m, "RunDirectoryError", PyExc_OSError);
  nb::exception<CheckpointError>(m, "CheckpointError", PyExc_OSError);

  m.def("version", &sgdwalk_version);
  m.def("git_commit", &sgdwalk_git_commit);
  m.def("cuda_backend_built", &cuda_backend_built);
  m.def("cuda_device_report", &cuda_device_report);
  m.def("cuda_device_count", &cuda_device_count);
  m.def("config_reference_markdown", &config_reference_markdown,
        "Every config key, as `sgdwalk info --config-reference` (docs/CONFIG.md).");
  m.def("landscapes_text", &landscapes_text,
        "The landscapes, their parameters and the noise models, as `sgdwalk info --landscapes`.");

  m.def(
      "config_text_from_json",
      [](const std::string& json_text, const std::string& source) {
        nlohmann::json json;
        try {
          json = nlohmann::json::parse(json_text);
        } catch (const std::exception& error) {
          throw ConfigError(source + ": not valid JSON: " + error.what());
        }
        return config_text_from_json(json, source);
      },
      "json_text"_a, "source"_a,
      "The TOML text of a run's summary.json (its resolved config), as `sgdwalk run "
      "RUN/summary.json` reruns it.");

  m.def(
      "check_config",
      [](const std::string& config_text, const std::string& source, long long seed) {
        const RunPlan plan = plan_with_seed(config_text, source, seed);
        nb::dict out;
        out["resolved_config"] = plan.resolved_config.dump();
        out["hints"] = plan.hints;
        out["name"] = plan.name;
        out["variants"] = plan.variant_count();
        out["walkers_per_variant"] = plan.walkers_per_variant;
        out["steps"] = plan.steps;
        out["ffs"] = plan.ffs.enabled;
        return out;
      },
      "config_text"_a, "source"_a, "seed"_a = -1,
      "Validates a config text (raises ConfigError); returns the resolved config as JSON text.");

  m.def(
      "run_in_directory",
      [](const std::string& config_text, const std::string& source, long long seed,
         const std::string& directory, const std::string& command_line, const std::string& backend,
         int threads, std::int64_t batch_walkers, std::int64_t segment_steps,
         double segment_seconds, double checkpoint_every, int segment_delay_ms,
         const nb::object& on_progress, const std::string& shard) {
        const RunPlan plan = plan_with_seed(config_text, source, seed);
        RunRecord record;
        record.config_text = config_text;
        record.config_source = source;
        record.command_line = command_line;
        record.seed_from_command_line = seed >= 0;
        if (!shard.empty()) record.shard = parse_part(shard, "shard");
        const SessionSettings settings =
            make_settings(backend, threads, batch_walkers, segment_steps, segment_seconds,
                          checkpoint_every, segment_delay_ms);
        if (plan.ffs.enabled) {
          // As `sgdwalk run`: forward flux sampling has its own session, and no shards.
          if (record.shard) {
            throw ConfigError(source +
                              ": rare_event.method = \"ffs\": a forward flux sampling run cannot "
                              "be split into shards (run_shard / --shard); run it whole");
          }
          return run_ffs_with_python(
              settings, on_progress, [&](Backend& chosen, const FfsSessionOptions& options) {
                return sgdwalk::run_ffs_in_directory(plan, chosen, record, directory, options);
              });
        }
        return run_with_python(
            plan, settings, on_progress, [&](Backend& chosen, const SessionOptions& options) {
              return sgdwalk::run_in_directory(plan, chosen, record, directory, options);
            });
      },
      "config_text"_a, "source"_a, "seed"_a, "directory"_a, "command_line"_a, "backend"_a,
      "threads"_a, "batch_walkers"_a, "segment_steps"_a, "segment_seconds"_a, "checkpoint_every"_a,
      "segment_delay_ms"_a, "on_progress"_a.none(), "shard"_a = "",
      "Runs a config into a run directory exactly as `sgdwalk run --out DIRECTORY`; with shard "
      "\"K/N\" only part K of N of the walkers, into a shard directory (`--shard K/N`).");

  m.def(
      "merge_into_directory",
      [](const std::vector<std::string>& shard_dirs, const std::string& out_dir, bool force,
         const std::string& command_line) {
        nb::gil_scoped_release release;
        return merge_into_directory(shard_dirs, out_dir, force, command_line).warnings;
      },
      "shard_dirs"_a, "out_dir"_a, "force"_a, "command_line"_a,
      "Joins finished shard directories into OUT_DIR exactly as `sgdwalk merge`; returns the "
      "warnings the CLI prints.");

  m.def(
      "resume_in_directory",
      [](const std::string& directory, const std::string& backend, int threads,
         std::int64_t batch_walkers, std::int64_t segment_steps, double segment_seconds,
         double checkpoint_every, int segment_delay_ms, const nb::object& on_progress) {
        // Forward flux sampling keeps its own checkpoint between stages (as `sgdwalk resume`).
        if (is_ffs_run_directory(directory)) {
          if (is_finished_ffs_run(directory) && !has_ffs_checkpoint(directory)) {
            check_finished_results(directory);
            nb::dict out;
            out["complete"] = true;
            out["already_complete"] = true;
            out["shard"] = false;
            out["ffs"] = true;
            return out;
          }
          refuse_unwritable(directory);
          const SessionSettings settings =
              make_settings(backend, threads, batch_walkers, segment_steps, segment_seconds,
                            checkpoint_every, segment_delay_ms);
          nb::dict out = run_ffs_with_python(
              settings, on_progress, [&](Backend& chosen, const FfsSessionOptions& options) {
                return resume_ffs_in_directory(directory, chosen, options);
              });
          out["already_complete"] = false;
          out["shard"] = false;
          return out;
        }
        ResumePoint point = load_resume_point(directory, threads);
        // A shard directory finishes into tallies for `merge`, not into results to load.
        const bool shard = point.record.shard.has_value();
        if (point.complete) {
          nb::dict out;
          out["complete"] = true;
          out["already_complete"] = true;
          out["shard"] = shard;
          return out;
        }
        refuse_unwritable(directory);
        const RunPlan plan = point.plan;
        const SessionSettings settings =
            make_settings(backend, threads, batch_walkers, segment_steps, segment_seconds,
                          checkpoint_every, segment_delay_ms);
        nb::dict out = run_with_python(
            plan, settings, on_progress, [&](Backend& chosen, const SessionOptions& options) {
              return resume_in_directory(std::move(point), chosen, directory, options);
            });
        out["already_complete"] = false;
        out["shard"] = shard;
        return out;
      },
      "directory"_a, "backend"_a, "threads"_a, "batch_walkers"_a, "segment_steps"_a,
      "segment_seconds"_a, "checkpoint_every"_a, "segment_delay_ms"_a, "on_progress"_a.none(),
      "Continues an unfinished run directory exactly as `sgdwalk resume DIRECTORY`.");

  m.def(
      "replay_csv",
      [](const std::string& config_text, const std::string& source, long long seed,
         std::int64_t variant, std::int64_t walker, std::int64_t every, std::int64_t until,
         bool normals) {
        const RunPlan plan = plan_with_seed(config_text, source, seed);
        if (plan.ffs.enabled) throw ConfigError(source + ": " + kFfsReplayRefusal);
        if (variant < 0 || variant >= plan.variant_count() || walker < 0 ||
            walker >= plan.walkers_per_variant) {
          throw nb::index_error(("variant " + std::to_string(variant) + ", walker " +
                                 std::to_string(walker) +
                                 " is out of range; allowed: variant 0 to " +
                                 std::to_string(plan.variant_count() - 1) + ", walker 0 to " +
                                 std::to_string(plan.walkers_per_variant - 1))
                                    .c_str());
        }
        if (every < 1) {
          throw nb::value_error(
              ("every = " + std::to_string(every) + " is out of range; allowed: 1 or more")
                  .c_str());
        }
        if (until > plan.steps) {
          throw nb::value_error(("until = " + std::to_string(until) +
                                 " is out of range; allowed: 0 to " + std::to_string(plan.steps))
                                    .c_str());
        }
        std::ostringstream csv;
        PythonInterrupts python;  // outside the GIL release below, so destroyed with the GIL held
        {
          nb::gil_scoped_release release;
          // Every kReplayCheckSteps updates, with the GIL: Ctrl-C stops the replay.
          replay_walker(plan, variant, walker, every, csv, until < 0 ? plan.steps : until, normals,
                        [&] {
                          python.at_boundary([] {});
                          return python.stop == 0;
                        });
        }
        python.throw_if_raised();
        return csv.str();
      },
      "config_text"_a, "source"_a, "seed"_a, "variant"_a, "walker"_a, "every"_a, "until"_a = -1,
      "normals"_a = false,
      "One walker's trajectory recomputed from the seed, as the CSV of `sgdwalk replay`.");
}
