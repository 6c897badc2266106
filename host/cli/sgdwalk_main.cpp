// The sgdwalk command line: run, resume, replay, info.
#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <thread>
#include <type_traits>

#include "analysis/diagnostics.hpp"
#include "backend/backend_registry.hpp"
#include "backend/dynamics_table.hpp"
#include "cli/progress_line.hpp"
#include "cluster/parallel_job.hpp"
#include "cluster/parts.hpp"
#include "config/config.hpp"
#include "config/config_keys.hpp"
#include "config/landscape_params.hpp"
#include "rare_events/ffs_session.hpp"
#include "run/checkpoint.hpp"
#include "run/driver.hpp"
#include "run/memory.hpp"
#include "run/run_session.hpp"
#if SGDWALK_HAVE_MPI
#include "cluster/mpi_comm.hpp"
#endif

namespace {

using namespace sgdwalk;
using Clock = std::chrono::steady_clock;

constexpr int kExitRuntimeError = 1;
constexpr int kExitUsage = 2;

/// CLI::Range, closing two holes of CLI11's: an integer too large for its type converts to the
/// type's limit (so --seed 9223372036854775808 ran with 2^63 - 1), and NaN passes every range
/// (no comparison with a bound fails).
template <class T>
CLI::Validator in_range(T min, T max) {
  CLI::Validator range = CLI::Range(min, max);
  return CLI::Validator(
      [min, max, range](std::string& text) -> std::string {
        const std::string allowed = fmt::format("allowed: {} to {}", min, max);
        if constexpr (std::is_integral_v<T>) {
          // As CLI11 converts (strtoll, base 0: decimal, 0x hex, 0 octal), but with its ERANGE.
          errno = 0;
          char* end = nullptr;
          (void)std::strtoll(text.c_str(), &end, 0);
          if (errno == ERANGE) return fmt::format("Value {} is out of range; {}", text, allowed);
        } else {
          T value{};
          if (CLI::detail::lexical_cast(text, value) && std::isnan(value))
            return fmt::format("Value {} is not a number; {}", text, allowed);
        }
        std::string copy = text;
        return range(copy);
      },
      range.get_description());
}

// ---- Signals: the first SIGINT/SIGTERM asks the run to stop at the next segment boundary (with a
// checkpoint and partial results); a second one exits at once.
static_assert(std::atomic<int>::is_always_lock_free, "the signal flag must be lock-free");
std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_quiet{false};

extern "C" void handle_stop_signal(int signal) {
  int expected = 0;
  if (!g_stop_signal.compare_exchange_strong(expected, signal)) _exit(128 + signal);
  if (!g_quiet.load()) {
    static const char message[] =
        "\nsgdwalk: stopping at the next segment boundary to write a checkpoint and partial "
        "results (signal again to exit at once)\n";
    const ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
    (void)ignored;
  }
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = handle_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : {SIGINT, SIGTERM}) {
    // A signal ignored by whoever started us (e.g. SIGINT for a background job of a script) stays
    // ignored, as with any well-behaved program.
    struct sigaction previous {};
    if (sigaction(signal, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN) continue;
    sigaction(signal, &action, nullptr);
  }
}

const char* signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal";
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

/// Prints progress to stderr: a redrawn bar on a terminal, a line every few seconds otherwise.
class ProgressReporter {
 public:
  explicit ProgressReporter(bool quiet) : quiet_(quiet), terminal_(isatty(STDERR_FILENO) != 0) {}

  void update(const RunProgress& progress, bool final = false) {
    if (quiet_) return;
    const auto now = Clock::now();
    const double since_print = std::chrono::duration<double>(now - last_print_).count();
    if (!final && since_print < (terminal_ ? 0.2 : 5.0)) return;
    last_print_ = now;
    if (terminal_) {
      // Fitted to the terminal's current width (asked each time: it may be resized), so that
      // the redrawn line never wraps.
      std::string text = progress_line(progress, terminal_width(STDERR_FILENO), true);
      // Blanks over the rest of a longer previous line (no escape sequences: any terminal).
      const std::size_t length = text.size();
      if (length < drawn_length_) text.append(drawn_length_ - length, ' ');
      drawn_length_ = length;
      std::fprintf(stderr, "\r%s", text.c_str());
      if (final) std::fputc('\n', stderr);
      drawn_ = !final;
    } else {
      std::fprintf(stderr, "progress: %s\n", progress_line(progress, 1000, false).c_str());
    }
    std::fflush(stderr);
  }

  /// Ends a bar that is still being redrawn (before other messages).
  void finish_line() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  bool quiet_;
  bool terminal_;
  bool drawn_ = false;
  std::size_t drawn_length_ = 0;  ///< of the line on screen, without padding
  Clock::time_point last_print_{};
};

/// The end-of-run table. A variant whose walkers all diverged has no statistics: its cells say
/// "n/a" instead of printing NaN, and a "diverged" column (walkers that went non-finite, of all)
/// appears whenever any variant lost walkers. A P_flat of 0 or 1 has a standard error of 0; its
/// "+-" cell gives the width of the exact 68.3 % Clopper–Pearson interval instead (as the plots
/// do). With a first-passage target, the escape rate and its 95 % interval are columns too.
void print_summary_table(const RunPlan& plan, const RunOutcome& outcome) {
  bool any_diverged = false;
  for (const auto& s : outcome.summaries) any_diverged = any_diverged || s.nonfinite_walkers > 0;
  const bool passage = plan.passage.kind != PassageKind::none;
  std::string header = "variant";
  if (!plan.variants.empty()) {
    for (const auto& [name, value] : plan.variants.front().swept)
      header += fmt::format("  {:>14}", name);
  }
  fmt::print("{}  {:>8}  {:>8}  {:>12}  {:>10}{}{}\n", header, "P_flat", "+-", "eta*<t_f>",
             "<y_freeze>",
             passage ? fmt::format("  {:>10}  {:>23}", "rate/time", "95% interval") : "",
             any_diverged ? fmt::format("  {:>13}", "diverged") : "");
  bool any_exact = false;
  const auto cell = [](double x, int width, int precision, char type) {
    if (std::isnan(x)) return fmt::format("{:>{}}", "n/a", width);
    return type == 'f' ? fmt::format("{:>{}.{}f}", x, width, precision)
                       : fmt::format("{:>{}.{}g}", x, width, precision);
  };
  for (std::size_t v = 0; v < outcome.summaries.size(); ++v) {
    if (v == 20 && outcome.summaries.size() > 24) {
      fmt::print("... ({} more variants in summary.json)\n", outcome.summaries.size() - 20);
      break;
    }
    const auto& s = outcome.summaries[v];
    std::string row = fmt::format("{:>7}", v);
    for (const auto& [name, value] : plan.variants[v].swept)
      row += fmt::format("  {:>14.6g}", value);
    const std::string diverged =
        any_diverged ? fmt::format("  {:>13}", fmt::format("{}/{}", s.nonfinite_walkers, s.walkers))
                     : "";
    std::string p_flat_error = cell(s.p_flat_stderr, 8, 4, 'f');
    const auto finite = static_cast<double>(s.walkers - s.nonfinite_walkers);
    if (finite > 0 && (s.p_flat == 0 || s.p_flat == 1)) {
      // Closed form of the two-sided interval at 0 or 1 successes of n: (α/2)^(1/n).
      const double width = 1 - std::pow((1 - 0.6827) / 2, 1 / finite);
      p_flat_error =
          fmt::format("{:>8}", fmt::format("{}{:.4f}", s.p_flat == 1 ? '-' : '+', width));
      any_exact = true;
    }
    const std::string rate =
        passage ? fmt::format("  {}  {:>23}", cell(s.passage.rate, 10, 4, 'g'),
                              std::isnan(s.passage.rate)
                                  ? std::string("n/a")
                                  : fmt::format("[{:.4g}, {:.4g}]", s.passage.rate_low,
                                                s.passage.rate_high))
                : "";
    fmt::print("{}  {}  {}  {}  {}{}{}\n", row, cell(s.p_flat, 8, 4, 'f'), p_flat_error,
               cell(plan.variants[v].learning_rate * s.freezing_time.mean, 12, 5, 'g'),
               cell(s.y_freeze.mean, 10, 5, 'g'), rate, diverged);
  }
  if (any_exact) {
    fmt::print(
        "(+- given as +0.xxxx or -0.xxxx: P_flat is 0 or 1, whose standard error is 0; the cell is "
        "the width of the exact 68.3 % Clopper-Pearson interval above 0 or below 1)\n");
  }
}

/// Flags shared by `run` and `resume`.
struct SessionFlags {
  std::string backend_name = "auto";
  int threads = 0;
  bool quiet = false;
  std::int64_t batch_walkers = 0;
  std::int64_t segment_steps = 0;
  double checkpoint_every = 60;
};

/// Runs a session with progress display and signal handling; reports how it ended.
template <class Session>
int run_session_with_display(const RunPlan& plan, const std::string& out_dir,
                             const SessionFlags& flags, Backend& backend, Session&& session) {
  ProgressReporter reporter(flags.quiet);
  SessionOptions options;
  options.execute.batch_walkers = flags.batch_walkers;
  options.execute.segment_steps = flags.segment_steps;
  options.checkpoint_every = flags.checkpoint_every;
  options.threads = flags.threads;
  options.stop = &g_stop_signal;
  // Test hook (undocumented): SGDWALK_TEST_SEGMENT_DELAY_MS=N pauses N ms after every backend
  // call, so that tests can interrupt a run mid-way however fast the machine is.
  const char* delay_text = std::getenv("SGDWALK_TEST_SEGMENT_DELAY_MS");
  const int delay_ms = delay_text != nullptr ? std::atoi(delay_text) : 0;
  options.on_warning = [&](const std::string& warning) {
    reporter.finish_line();
    std::fprintf(stderr, "sgdwalk: warning: %s\n", warning.c_str());
  };
  options.on_progress = [&](const RunProgress& progress) {
    reporter.update(progress);
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  };
  g_quiet = flags.quiet;
  install_stop_handlers();
  const SessionResult result = session(backend, options);
  const RunOutcome& outcome = result.outcome;
  if (!outcome.complete) {
    reporter.finish_line();
    const RunProgress& p = outcome.progress;
    std::fprintf(stderr,
                 "sgdwalk: %s at %.1f%% (%lld of %lld variants done); checkpoint and partial "
                 "results written to %s/\nsgdwalk: continue with: sgdwalk resume %s\n",
                 result.stop_signal != 0
                     ? fmt::format("interrupted by {}", signal_name(result.stop_signal)).c_str()
                     : "stopped",
                 p.walker_steps_total > 0 ? 100.0 * static_cast<double>(p.walker_steps_done) /
                                                static_cast<double>(p.walker_steps_total)
                                          : 0.0,
                 static_cast<long long>(p.variants_done), static_cast<long long>(p.variants_total),
                 out_dir.c_str(), out_dir.c_str());
    return result.stop_signal != 0 ? 128 + result.stop_signal : kExitRuntimeError;
  }
  reporter.update(outcome.progress, true);
  // A shard (its tallies.bin, no results.h5), also one of all walkers (--shard 0/1).
  std::error_code no_tallies;
  if (!outcome.progress.whole() ||
      std::filesystem::exists(std::filesystem::path(out_dir) / kTalliesFileName, no_tallies)) {
    if (!flags.quiet) {
      fmt::print(
          "shard done: walkers [{}, {}); merge the shards with `sgdwalk merge OUT SHARD_DIR...`"
          " ({}/)\n",
          outcome.progress.part_begin, outcome.progress.part_end, out_dir);
    }
    return 0;
  }
  // Problems hidden in the numbers (diverged walkers, empty histograms, unreached targets) are
  // said even with --quiet: they are what a user would otherwise miss.
  for (const std::string& warning :
       run_warnings(plan, outcome.summaries, outcome.progress.variants_done)) {
    std::fprintf(stderr, "sgdwalk: warning: %s\n", warning.c_str());
  }
  if (!flags.quiet) {
    print_summary_table(plan, outcome);
    fmt::print("{:.4g} walker-steps/s ({} backend); results in {}/ (summary.json, results.h5)\n",
               outcome.progress.simulate_seconds > 0
                   ? static_cast<double>(outcome.progress.walker_steps_done) /
                         outcome.progress.simulate_seconds
                   : 0.0,
               outcome.backend_name, out_dir);
  }
  return 0;
}

/// The config of `sgdwalk run` (the embedded quickstart if no path), with --seed applied.
RunPlan load_run_config(const std::string& config_path, std::int64_t seed, RunRecord& record) {
  if (config_path.empty()) {
    record.config_text = embedded_default_config();
    record.config_source = "<embedded quickstart>";
  } else {
    record.config_source = config_path;
    try {
      record.config_text = read_file(config_path);
    } catch (const std::exception&) {
      throw ConfigError(config_path + ": cannot open the config file");
    }
    if (std::filesystem::path(config_path).extension() == ".json") {
      // A run's summary.json (or its "config" object): the resolved config, run again.
      nlohmann::json json;
      try {
        json = nlohmann::json::parse(record.config_text);
      } catch (const std::exception& error) {
        throw ConfigError(fmt::format("{}: not valid JSON: {}", config_path, error.what()));
      }
      record.config_text = config_text_from_json(json, config_path);
    }
  }
  RunPlan plan = load_config_text(record.config_text, record.config_source);
  if (seed >= 0) {
    plan.seed = static_cast<std::uint64_t>(seed);
    plan.resolved_config["run"]["seed"] = plan.seed;
    record.seed_from_command_line = true;
  }
  return plan;
}

/// Runs or resumes forward flux sampling ([rare_event] method = "ffs") with a line per stage,
/// stopping at the next stage boundary on SIGINT/SIGTERM.
int run_ffs_with_display(const RunPlan* plan, const std::string& out_dir, const SessionFlags& flags,
                         Backend& backend, const RunRecord* record) {
  g_quiet = flags.quiet;
  install_stop_handlers();
  FfsSessionOptions options;
  options.stop = &g_stop_signal;
  options.on_stage = [&](const std::string& line) {
    if (!flags.quiet) std::fprintf(stderr, "sgdwalk: ffs: %s\n", line.c_str());
  };
  const FfsSessionResult result =
      plan != nullptr ? run_ffs_in_directory(*plan, backend, *record, out_dir, options)
                      : resume_ffs_in_directory(out_dir, backend, options);
  if (!result.complete) {
    std::fprintf(stderr,
                 "sgdwalk: %s between stages; checkpoint written to %s/\nsgdwalk: continue with: "
                 "sgdwalk resume %s\n",
                 result.stop_signal != 0
                     ? fmt::format("interrupted by {}", signal_name(result.stop_signal)).c_str()
                     : "stopped",
                 out_dir.c_str(), out_dir.c_str());
    return result.stop_signal != 0 ? 128 + result.stop_signal : kExitRuntimeError;
  }
  const nlohmann::json summary = nlohmann::json::parse(read_file(out_dir + "/summary.json"));
  for (const auto& warning : summary.at("rare_events").value("warnings", nlohmann::json::array()))
    std::fprintf(stderr, "sgdwalk: warning: %s\n", warning.get<std::string>().c_str());
  for (const auto& variant : summary.at("rare_events").at("variants")) {
    for (const auto& warning : variant.at("warnings")) {
      std::fprintf(stderr, "sgdwalk: warning: variant %d: %s\n", variant.at("variant").get<int>(),
                   warning.get<std::string>().c_str());
    }
    if (!flags.quiet) {
      fmt::print(
          "variant {}: Δ_S = {:.6g}: rate {:.6g} ± {:.2g} per step ({:.6g} per unit time), "
          "AFtW relative error {:.2g}, {} walker-steps\n",
          variant.at("variant").get<int>(), variant.at("temperature").get<double>(),
          variant.at("rate_per_step").get<double>(),
          variant.value("rate_per_step_std_error", nlohmann::json(0.0)).is_number()
              ? variant.at("rate_per_step_std_error").get<double>()
              : 0.0,
          variant.at("rate_per_time").get<double>(),
          variant.at("rate_relative_error_aftw").is_number()
              ? variant.at("rate_relative_error_aftw").get<double>()
              : 0.0,
          variant.at("walker_steps").get<std::int64_t>());
    }
  }
  if (!flags.quiet) fmt::print("results in {}/ (summary.json, results.h5)\n", out_dir);
  return 0;
}

/// The note on a launcher that kills the processes too soon after a SIGTERM (an MPI job's rank 0
/// says it for all; a single process under `mpirun -np 1` gets it too).
void print_launcher_notice(bool rank_zero, const SessionFlags& flags) {
  if (!rank_zero || flags.quiet) return;
  const std::string notice =
      launcher_stop_notice([](const char* name) -> const char* { return std::getenv(name); });
  if (!notice.empty()) std::fprintf(stderr, "sgdwalk: %s\n", notice.c_str());
}

int command_run(const std::string& config_path, std::string out_dir, std::int64_t seed, bool force,
                const std::string& shard, const SessionFlags& flags,
                const std::string& command_line) {
  RunRecord record;
  record.command_line = command_line;
  if (!shard.empty()) record.shard = parse_part(shard, "--shard");
  const RunPlan plan = load_run_config(config_path, seed, record);
  if (out_dir.empty()) {
    out_dir = "runs/" + plan.name;
    if (record.shard) {
      out_dir += fmt::format("-shard-{}-of-{}", record.shard->index, record.shard->count);
    }
  }
  const std::filesystem::path dir(out_dir);
  if (const std::string problem = run_directory_problem(dir); !problem.empty()) {
    std::fprintf(stderr, "sgdwalk: %s\n", problem.c_str());
    return kExitUsage;
  }
  if (std::filesystem::exists(dir) && !std::filesystem::is_empty(dir) && !force) {
    const bool unfinished =
        std::filesystem::exists(dir / kCheckpointFileName) || has_ffs_checkpoint(out_dir);
    std::fprintf(stderr,
                 "sgdwalk: the run directory '%s' exists and is not empty; choose another --out or "
                 "pass --force to overwrite it%s\n",
                 out_dir.c_str(),
                 unfinished ? fmt::format(" (it holds an unfinished run: sgdwalk resume {} "
                                          "continues it)",
                                          out_dir)
                                  .c_str()
                            : "");
    return kExitUsage;
  }

  // Settings that are valid but look like mistakes: said before the run, even with --quiet.
  for (const std::string& hint : plan.hints)
    std::fprintf(stderr, "sgdwalk: hint: %s\n", hint.c_str());
  BackendChoice choice = make_backend(flags.backend_name, flags.threads);
  if (!choice.notice.empty() && !flags.quiet)
    std::fprintf(stderr, "sgdwalk: %s\n", choice.notice.c_str());
  if (!flags.quiet) {
    std::fprintf(stderr, "sgdwalk: %s: %lld variant(s) x %lld walkers x %lld steps on %s\n",
                 record.config_source.c_str(), static_cast<long long>(plan.variant_count()),
                 static_cast<long long>(plan.walkers_per_variant),
                 static_cast<long long>(plan.steps), choice.backend->description().c_str());
    if (record.shard) {
      const WalkerRange part = part_walkers(plan, *record.shard);
      std::fprintf(stderr, "sgdwalk: shard %s: walkers [%lld, %lld) of %lld\n",
                   to_string(*record.shard).c_str(), static_cast<long long>(part.begin),
                   static_cast<long long>(part.end), static_cast<long long>(plan.total_walkers()));
    }
  }
  print_launcher_notice(true, flags);
  if (plan.ffs.enabled) {
    if (record.shard) {
      std::fprintf(stderr, "sgdwalk: --shard does not apply to forward flux sampling runs\n");
      return kExitUsage;
    }
    return run_ffs_with_display(&plan, out_dir, flags, *choice.backend, &record);
  }
  return run_session_with_display(
      plan, out_dir, flags, *choice.backend, [&](Backend& backend, const SessionOptions& options) {
        return run_in_directory(plan, backend, record, out_dir, options);
      });
}

int command_resume(const std::string& run_dir, const SessionFlags& flags) {
  if (is_finished_ffs_run(run_dir) && !has_ffs_checkpoint(run_dir)) {
    check_finished_results(run_dir);
    if (!flags.quiet) {
      std::fprintf(stderr, "sgdwalk: the run in %s is complete; nothing to resume\n",
                   run_dir.c_str());
    }
    return 0;
  }
  // Checked before anything is computed: the outputs (and checkpoints) go there at the end.
  const auto unwritable = [&] {
    const std::string problem = run_directory_problem(run_dir, "run directory");
    if (!problem.empty()) std::fprintf(stderr, "sgdwalk: %s\n", problem.c_str());
    return !problem.empty();
  };
  if (is_ffs_run_directory(run_dir)) {
    if (unwritable()) return kExitUsage;
    BackendChoice choice = make_backend(flags.backend_name, flags.threads);
    if (!flags.quiet) {
      std::fprintf(
          stderr, "sgdwalk: resuming forward flux sampling in %s %son %s\n", run_dir.c_str(),
          has_ffs_checkpoint(run_dir) ? "" : "from the beginning (no checkpoint was written) ",
          choice.backend->description().c_str());
    }
    return run_ffs_with_display(nullptr, run_dir, flags, *choice.backend, nullptr);
  }
  ResumePoint point = load_resume_point(run_dir, flags.threads);
  if (point.complete) {
    if (!flags.quiet) {
      std::fprintf(stderr, "sgdwalk: the run in %s is complete; nothing to resume\n",
                   run_dir.c_str());
    }
    return 0;
  }
  if (unwritable()) return kExitUsage;
  BackendChoice choice = make_backend(flags.backend_name, flags.threads);
  if (!choice.notice.empty() && !flags.quiet)
    std::fprintf(stderr, "sgdwalk: %s\n", choice.notice.c_str());
  if (!flags.quiet) {
    RunProgress at = point.has_checkpoint ? point.checkpoint.progress : RunProgress{};
    at.update_counters(point.plan);
    std::fprintf(
        stderr, "sgdwalk: resuming %s %s (%lld variant(s) x %lld walkers x %lld steps) on %s\n",
        run_dir.c_str(),
        point.has_checkpoint ? fmt::format("from its checkpoint at {:.1f}%",
                                           100.0 * static_cast<double>(at.walker_steps_done) /
                                               static_cast<double>(at.walker_steps_total))
                                   .c_str()
                             : "from the beginning (no checkpoint was written)",
        static_cast<long long>(point.plan.variant_count()),
        static_cast<long long>(point.plan.walkers_per_variant),
        static_cast<long long>(point.plan.steps), choice.backend->description().c_str());
  }
  print_launcher_notice(true, flags);
  const RunPlan plan = point.plan;
  return run_session_with_display(
      plan, run_dir, flags, *choice.backend, [&](Backend& backend, const SessionOptions& options) {
        return resume_in_directory(std::move(point), backend, run_dir, options);
      });
}

/// The commented header of a replayed trajectory: where it comes from and every parameter of its
/// variant, so that the CSV file says what it is on its own.
std::string replay_header(const RunPlan& plan, const std::string& run_dir, std::int64_t variant,
                          std::int64_t walker, std::int64_t until) {
  const Variant& v = plan.variants[static_cast<std::size_t>(variant)];
  std::string text = fmt::format(
      "# sgdwalk replay of {}: variant {}, walker {} of the variant (global walker {})\n"
      "# recomputed on the CPU from seed {}, {} precision; steps 0 to {} of {}\n",
      run_dir, variant, walker, variant * plan.walkers_per_variant + walker, plan.seed,
      to_string(plan.precision), until, plan.steps);
  std::vector<std::string> landscape;
  for (const auto& [name, value] : v.landscape)
    landscape.push_back(fmt::format("{}={}", name, value));
  text += fmt::format("# landscape {}: {}\n", plan.landscape, fmt::join(landscape, ", "));
  text += fmt::format(
      "# dynamics: noise={}, learning_rate={}, noise_strength={}, temperature={}, epsilon={}\n",
      to_string(plan.noise), v.learning_rate, v.noise_strength, v.temperature(), v.epsilon);
  if (plan.noise_distribution != NoiseDistribution::gaussian)
    text += fmt::format("# noise distribution: {}, alpha={}\n", to_string(plan.noise_distribution),
                        v.alpha);
  if (plan.optimizer != OptimizerKind::sgd) {
    std::vector<std::string> coefficients;
    for (const auto& coefficient : optimizer_coefficients()) {
      if (coefficient.read_by(plan.optimizer))
        coefficients.push_back(fmt::format("{}={}", coefficient.key, v.*coefficient.value));
    }
    text += fmt::format("# optimizer: {}, {}\n", to_string(plan.optimizer),
                        fmt::join(coefficients, ", "));
  }
  if (v.scheduled()) {
    text += fmt::format("# schedules: learning_rate {}, noise {} (resolved config: summary.json)\n",
                        to_string(v.learning_rate_schedule.kind), to_string(v.noise_schedule.kind));
  }
  if (!v.swept.empty()) {
    std::vector<std::string> swept;
    for (const auto& [name, value] : v.swept) swept.push_back(fmt::format("{}={}", name, value));
    text += fmt::format("# swept: {}\n", fmt::join(swept, ", "));
  }
  const auto& start =
      plan.initial_positions[static_cast<std::size_t>(walker) % plan.initial_positions.size()];
  text += fmt::format("# start: [{}]\n", fmt::join(start, ", "));
  if (plan.passage.kind != PassageKind::none)
    text += fmt::format("# first passage: {}\n", plan.passage.description);
  return text;
}

int command_replay(const std::string& run_dir, std::int64_t walker, std::int64_t variant,
                   std::int64_t every, std::int64_t until, const std::string& output,
                   bool normals) {
  const std::filesystem::path dir(run_dir);
  const std::string config_path = (dir / "config.toml").string();
  const std::string summary_path = (dir / "summary.json").string();
  if (!std::filesystem::exists(config_path) || !std::filesystem::exists(summary_path)) {
    std::fprintf(
        stderr,
        "sgdwalk replay: '%s' is not a run directory (needs config.toml and summary.json)\n",
        run_dir.c_str());
    return kExitUsage;
  }
  if (!output.empty()) {
    // The table must not replace one of the run's own files (results, checkpoint, walkers).
    const std::filesystem::path target =
        std::filesystem::weakly_canonical(std::filesystem::absolute(output));
    const std::string name = target.filename().string();
    const bool run_file = name == "config.toml" || name == "summary.json" || name == "results.h5" ||
                          name == kCheckpointFileName || name == kWalkerFileName ||
                          name == kTalliesFileName || name.ends_with(".tmp");
    if (run_file && target.parent_path() == std::filesystem::weakly_canonical(dir)) {
      std::fprintf(stderr,
                   "sgdwalk replay: --output '%s' is the run's own file %s; write the table "
                   "to another name\n",
                   output.c_str(), name.c_str());
      return kExitUsage;
    }
  }
  RunPlan plan = load_config_text(read_file(config_path), config_path);
  nlohmann::json summary;
  try {
    summary = nlohmann::json::parse(read_file(summary_path));
    plan.seed = summary.at("config").at("run").at("seed").get<std::uint64_t>();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sgdwalk replay: %s is unreadable or corrupt: %s\n", summary_path.c_str(),
                 error.what());
    return kExitRuntimeError;
  }
  if (plan.ffs.enabled) {
    std::fprintf(stderr, "sgdwalk replay: %s\n", kFfsReplayRefusal);
    return kExitUsage;
  }
  if (variant < 0) {
    if (walker >= plan.total_walkers()) {
      std::fprintf(stderr, "sgdwalk replay: --walker %lld is out of range; allowed: 0 to %lld\n",
                   static_cast<long long>(walker),
                   static_cast<long long>(plan.total_walkers() - 1));
      return kExitUsage;
    }
    variant = walker / plan.walkers_per_variant;
    walker = walker % plan.walkers_per_variant;
  } else if (variant >= plan.variant_count() || walker >= plan.walkers_per_variant) {
    std::fprintf(stderr,
                 "sgdwalk replay: --variant %lld --walker %lld is out of range; allowed: variant 0 "
                 "to %lld, walker 0 to %lld\n",
                 static_cast<long long>(variant), static_cast<long long>(walker),
                 static_cast<long long>(plan.variant_count() - 1),
                 static_cast<long long>(plan.walkers_per_variant - 1));
    return kExitUsage;
  }
  if (until > plan.steps) {
    std::fprintf(stderr, "sgdwalk replay: --until %lld is out of range; allowed: 0 to %lld\n",
                 static_cast<long long>(until), static_cast<long long>(plan.steps));
    return kExitUsage;
  }
  if (until < 0) until = plan.steps;
  const std::string header = replay_header(plan, run_dir, variant, walker, until);
  if (output.empty()) {
    std::cout << header;
    replay_walker(plan, variant, walker, every, std::cout, until, normals);
  } else {
    // A file: to OUTPUT.tmp, renamed when whole, so that a full disk does not leave a cut-off
    // trajectory that reads as a shorter one. Anything else (a pipe, /dev/stdout) is written as
    // it is.
    std::error_code error;
    const auto type = std::filesystem::status(output, error).type();
    const bool via_temporary = type == std::filesystem::file_type::not_found ||
                               type == std::filesystem::file_type::regular;
    const std::string target = via_temporary ? output + ".tmp" : output;
    try {
      std::ofstream file(target);
      if (!file) throw std::runtime_error("cannot write " + target + ": " + std::strerror(errno));
      file << header;
      replay_walker(plan, variant, walker, every, file, until, normals);
      file.close();
      if (!file) throw std::runtime_error("cannot write " + target + ": " + std::strerror(errno));
      if (via_temporary) std::filesystem::rename(target, output);
    } catch (...) {
      if (via_temporary) std::filesystem::remove(target, error);
      throw;
    }
  }
  return 0;
}

// ---- Jobs of several processes (MPI)
// -------------------------------------------------------------

JobOptions job_options(const SessionFlags& flags, ProgressReporter& reporter) {
  JobOptions options;
  options.backend_name = flags.backend_name;
  options.threads = flags.threads;
  options.quiet = flags.quiet;
  options.batch_walkers = flags.batch_walkers;
  options.segment_steps = flags.segment_steps;
  options.checkpoint_every = flags.checkpoint_every;
  options.stop = &g_stop_signal;
  options.on_progress = [&reporter](const RunProgress& progress) { reporter.update(progress); };
  const char* delay_text = std::getenv("SGDWALK_TEST_SEGMENT_DELAY_MS");  // as for single runs
  const int delay_ms = delay_text != nullptr ? std::atoi(delay_text) : 0;
  if (delay_ms > 0) {
    options.after_segment = [delay_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    };
  }
  return options;
}

/// Rank 0 says how a job ended; every process returns its exit code.
int report_job(const JobComm& comm, const JobResult& result, const std::string& run_dir,
               const SessionFlags& flags, ProgressReporter& reporter) {
  if (comm.rank() != 0) return result.exit_code;
  if (result.stop_signal != 0) {
    reporter.finish_line();
    const RunProgress& p = result.progress;
    std::fprintf(stderr,
                 "sgdwalk: interrupted by %s at %.1f%%; every part wrote its checkpoint under "
                 "%s/parts/\nsgdwalk: continue with any number of processes: mpirun -np M "
                 "sgdwalk resume %s (or, without MPI, sgdwalk resume %s)\n",
                 signal_name(result.stop_signal),
                 p.walker_steps_total > 0 ? 100.0 * static_cast<double>(p.walker_steps_done) /
                                                static_cast<double>(p.walker_steps_total)
                                          : 0.0,
                 run_dir.c_str(), run_dir.c_str(), run_dir.c_str());
    return result.exit_code;
  }
  if (!result.merged) return result.exit_code;
  reporter.update(result.progress, true);
  const MergedRun& merged = *result.merged;
  for (const std::string& warning :
       run_warnings(merged.plan, merged.outcome.summaries, merged.outcome.progress.variants_done)) {
    std::fprintf(stderr, "sgdwalk: warning: %s\n", warning.c_str());
  }
  if (!flags.quiet) {
    print_summary_table(merged.plan, merged.outcome);
    fmt::print("{} process(es); results in {}/ (summary.json, results.h5)\n", comm.size(), run_dir);
  }
  return result.exit_code;
}

int command_run_job(JobComm& comm, const std::string& config_path, std::string out_dir,
                    std::int64_t seed, bool force, const SessionFlags& flags,
                    const std::string& command_line) {
  RunRecord record;
  record.command_line = command_line;
  RunPlan plan;
  if (const auto code = agree_on_every_process(comm, [&] {
        plan = load_run_config(config_path, seed, record);
        if (out_dir.empty()) out_dir = "runs/" + plan.name;
        if (plan.ffs.enabled) {
          throw ConfigError(config_path +
                            ": forward flux sampling ([rare_event] method = \"ffs\") runs in one "
                            "process; start it without mpirun/srun");
        }
      })) {
    return *code;
  }
  // The run directory is checked once, by rank 0, before anything is computed (as for a single
  // run); every process learns the verdict.
  const std::string problem =
      comm.broadcast(comm.rank() == 0 ? run_directory_problem(out_dir) : std::string(), 0);
  if (!problem.empty()) {
    if (comm.rank() == 0) std::fprintf(stderr, "sgdwalk: %s\n", problem.c_str());
    return kExitUsage;
  }
  ProgressReporter reporter(flags.quiet || comm.rank() != 0);
  if (comm.rank() == 0) {
    for (const std::string& hint : plan.hints)
      std::fprintf(stderr, "sgdwalk: hint: %s\n", hint.c_str());
    if (!flags.quiet) {
      std::fprintf(stderr,
                   "sgdwalk: %s: %lld variant(s) x %lld walkers x %lld steps on %d processes "
                   "(%s backend)\n",
                   record.config_source.c_str(), static_cast<long long>(plan.variant_count()),
                   static_cast<long long>(plan.walkers_per_variant),
                   static_cast<long long>(plan.steps), comm.size(), flags.backend_name.c_str());
    }
  }
  print_launcher_notice(comm.rank() == 0, flags);
  g_quiet = flags.quiet || comm.rank() != 0;
  install_stop_handlers();
  const JobResult result =
      run_job(comm, plan, record, out_dir, force, job_options(flags, reporter));
  return report_job(comm, result, out_dir, flags, reporter);
}

int command_resume_job(JobComm& comm, const std::string& run_dir, const SessionFlags& flags) {
  ProgressReporter reporter(flags.quiet || comm.rank() != 0);
  if (comm.rank() == 0 && !flags.quiet) {
    std::fprintf(stderr, "sgdwalk: resuming %s on %d process(es) (%s backend)\n", run_dir.c_str(),
                 comm.size(), flags.backend_name.c_str());
  }
  print_launcher_notice(comm.rank() == 0, flags);
  // As for a single resume: the run directory must take the outputs before anything is computed
  // (a finished job computes nothing: resume_job says it is complete).
  const auto finished = [&] {
    try {
      const nlohmann::json summary = nlohmann::json::parse(
          read_file((std::filesystem::path(run_dir) / "summary.json").string()));
      return !summary.value("partial", true);
    } catch (const std::exception&) {
      return false;  // resume_job names what is wrong with it
    }
  };
  const std::string problem = comm.broadcast(comm.rank() == 0 && !finished()
                                                 ? run_directory_problem(run_dir, "run directory")
                                                 : std::string(),
                                             0);
  if (!problem.empty()) {
    if (comm.rank() == 0) std::fprintf(stderr, "sgdwalk: %s\n", problem.c_str());
    return kExitUsage;
  }
  g_quiet = flags.quiet || comm.rank() != 0;
  install_stop_handlers();
  const JobResult result = resume_job(comm, run_dir, job_options(flags, reporter));
  return report_job(comm, result, run_dir, flags, reporter);
}

/// Whether an MPI launcher (mpirun, srun --mpi=pmix) started this process: the number of processes
/// it started, -1 when it does not say, 0 when there is no launcher.
int mpi_launch_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const char* value = std::getenv(name)) return std::max(1, std::atoi(value));
  }
  if (std::getenv("PMIX_RANK") != nullptr || std::getenv("PMI_RANK") != nullptr) return -1;
  return 0;
}

/// The tasks of an srun step started without MPI (srun --mpi=none): each would run the whole run
/// into the same directory. 0 when this is not such a step.
int srun_tasks_without_mpi() {
  if (mpi_launch_size() != 0) return 0;
  const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  return tasks != nullptr && std::atoi(tasks) > 1 ? std::atoi(tasks) : 0;
}

/// The CLI's error reporting: the message and the documented exit code of each kind of error.
int guarded(const std::function<int()>& command) {
  try {
    return command();
  } catch (const ConfigError& error) {
    std::fprintf(stderr, "sgdwalk: config error: %s\n", error.what());
    return kExitUsage;
  } catch (const ResourceError& error) {
    std::fprintf(stderr, "sgdwalk: refused: %s\n", error.what());
    return kExitUsage;
  } catch (const RunDirectoryError& error) {
    std::fprintf(stderr, "sgdwalk: %s\n", error.what());
    return error.usage() ? kExitUsage : kExitRuntimeError;
  } catch (const CheckpointError& error) {
    std::fprintf(stderr, "sgdwalk: cannot resume: %s\n", error.what());
    return kExitRuntimeError;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sgdwalk: error: %s\n", error.what());
    return kExitRuntimeError;
  }
}

int command_merge(const std::string& out_dir, const std::vector<std::string>& shard_dirs,
                  bool force, bool quiet, const std::string& command_line) {
  if (const std::string problem = run_directory_problem(out_dir, "output directory");
      !problem.empty()) {
    std::fprintf(stderr, "sgdwalk merge: %s\n", problem.c_str());
    return kExitUsage;
  }
  MergedRun merged;
  try {
    merged = merge_into_directory(shard_dirs, out_dir, force, command_line);
  } catch (const CheckpointError& error) {
    // A shard's tallies.bin (or its checkpoint) that cannot be read: nothing is resumed here.
    std::fprintf(stderr,
                 "sgdwalk merge: cannot read a shard: %s\nsgdwalk merge: compute that shard "
                 "again (sgdwalk run CONFIG --shard K/N --out SHARD_DIR --force) and merge "
                 "again\n",
                 error.what());
    return kExitRuntimeError;
  }
  for (const std::string& warning : merged.warnings) {
    std::fprintf(stderr, "sgdwalk: warning: %s\n", warning.c_str());
  }
  for (const std::string& warning :
       run_warnings(merged.plan, merged.outcome.summaries, merged.outcome.progress.variants_done)) {
    std::fprintf(stderr, "sgdwalk: warning: %s\n", warning.c_str());
  }
  if (!quiet) {
    print_summary_table(merged.plan, merged.outcome);
    fmt::print("{} shard(s) merged; results in {}/ (summary.json, results.h5)\n", shard_dirs.size(),
               out_dir);
  }
  return 0;
}

int command_info(bool config_reference, bool landscapes) {
  if (config_reference) {
    fmt::print("{}", config_reference_markdown());
    return 0;
  }
  if (landscapes) {
    fmt::print("{}", landscapes_text());
    return 0;
  }
  fmt::print("sgdwalk {} (git {})\n", sgdwalk_version(), sgdwalk_git_commit());
  fmt::print("backends: cpu (OpenMP, up to {} threads){}\n", omp_get_max_threads(),
             cuda_backend_built() ? ", cuda" : "");
#if SGDWALK_HAVE_MPI
  fmt::print("mpi: built with {} (mpirun -np N sgdwalk run: one part of the walkers per rank)\n",
             mpi_library_version());
#else
  fmt::print(
      "mpi: not built (configure with -DSGDWALK_MPI=ON where libopenmpi-dev is installed; "
      "shards work without it: sgdwalk run --shard K/N, sgdwalk merge)\n");
#endif
  const std::string selection = landscape_build_selection();
  fmt::print("landscapes: {}{}\n", fmt::join(landscape_names(), ", "),
             selection.empty() ? "" : " (built with " + selection + ")");
  fmt::print("cuda: {}\n", cuda_device_report());
  fmt::print("default backend here: {}\n", cuda_device_count() > 0 ? "cuda" : "cpu");
  return 0;
}

/// Long names of the options of `command` ("--threads"); one-letter names are left out (any
/// one-letter typo is one edit from every one of them, so they make no useful suggestion).
std::vector<std::string> option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

/// The first argument that looks like an option but is none of the command's, or an unknown
/// command, as a message with a "did you mean"; empty if there is none.
std::string unknown_option(const CLI::App& app, int argc, char** argv) {
  const CLI::App* command = nullptr;
  bool value_expected = false;  // the previous argument was an option that takes a value
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == "--") break;
    const bool looks_like_option = argument.size() > 1 && argument[0] == '-' &&
                                   !(std::isdigit(static_cast<unsigned char>(argument[1])) ||
                                     argument[1] == '.');  // -3 or -.5 is a (negative) value
    if (!looks_like_option) {
      if (command == nullptr && !value_expected) {
        for (const CLI::App* sub : app.get_subcommands({})) {
          if (sub->get_name() == argument) command = sub;
        }
        if (command == nullptr) {
          std::vector<std::string> commands;
          for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
          const std::string best = closest_match(argument, commands);
          return fmt::format("sgdwalk: unknown command '{}'{}; commands: {}", argument,
                             best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best),
                             fmt::join(commands, ", "));
        }
      }
      value_expected = false;
      continue;
    }
    const CLI::App& scope = command != nullptr ? *command : app;
    // "--name=value" and "-t4" carry their value.
    const bool long_form = argument.rfind("--", 0) == 0;
    const std::string name =
        long_form ? argument.substr(0, argument.find('=')) : argument.substr(0, 2);
    const CLI::Option* option = nullptr;
    for (const CLI::Option* candidate : scope.get_options()) {
      if (candidate->check_name(name)) option = candidate;
    }
    if (option == nullptr) {
      const std::vector<std::string> names = option_names(scope);
      const std::string best = long_form ? closest_match(name, names) : "";
      return fmt::format("sgdwalk{}: unknown option '{}'{}; options: {}",
                         command != nullptr ? " " + command->get_name() : "", name,
                         best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best),
                         fmt::join(names, ", "));
    }
    const bool value_attached =
        long_form ? argument.find('=') != std::string::npos : argument.size() > 2;
    value_expected = option->get_items_expected_max() > 0 && !value_attached;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  // Started by mpirun or srun: every process joins the job (parallel_job.hpp).
  std::unique_ptr<JobComm> comm;
  const int launched = mpi_launch_size();
  if (const int tasks = srun_tasks_without_mpi()) {
    std::fprintf(stderr,
                 "sgdwalk: srun started %d tasks that are not MPI processes, so each would run the "
                 "whole run; start them with srun --mpi=pmix (an sgdwalk built with MPI), or run "
                 "one task per shard (--shard K/N)\n",
                 tasks);
    return kExitUsage;
  }
#if SGDWALK_HAVE_MPI
  if (launched != 0) comm = make_mpi_comm(&argc, &argv);
#else
  if (launched > 1) {
    std::fprintf(stderr,
                 "sgdwalk: started by an MPI launcher as one of %d processes, but this sgdwalk was "
                 "built without MPI, so each would run the whole run; rebuild with "
                 "-DSGDWALK_MPI=ON (libopenmpi-dev), run a single process, or split the run with "
                 "--shard K/N and sgdwalk merge\n",
                 launched);
    return kExitUsage;
  }
#endif
  const bool rank_zero = !comm || comm->rank() == 0;

  CLI::App app{
      "sgdwalk: ensembles of SGD and Langevin walkers on two-valley loss landscapes.\n"
      "Measures escape from sharp valleys, freezing, effective potentials and escape\n"
      "rates on the fly, bit-identically on the CPU and the GPU."};
  app.require_subcommand(1);

  std::string config_path, out_dir;
  std::int64_t seed = -1;
  bool force = false;
  SessionFlags flags;
  auto add_session_flags = [](CLI::App* command, SessionFlags& f) {
    command
        ->add_option("--backend,-b", f.backend_name,
                     "auto (CUDA if a device is present), cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    command->add_option("--threads,-t", f.threads, "CPU threads (default: all cores)")
        ->check(in_range(0, 4096));
    command->add_flag("--quiet,-q", f.quiet, "No progress and no summary table");
    command
        ->add_option("--batch-walkers", f.batch_walkers,
                     "Walkers per batch (default: run.batch_walkers, else 256 MiB of walker "
                     "arrays); never changes results")
        ->check(in_range(std::int64_t{0}, std::int64_t{1} << 40));
    command
        ->add_option("--segment-steps", f.segment_steps,
                     "Steps per backend call (default: adapted to about 1 s per call); never "
                     "changes results")
        ->check(in_range(std::int64_t{0}, std::int64_t{1} << 50));
    command
        ->add_option("--checkpoint-every", f.checkpoint_every,
                     "Seconds between checkpoints (RUN/checkpoint.bin); 0 = only when stopped "
                     "by a signal")
        ->check(in_range(0.0, 1e9));
  };
  CLI::App* run =
      app.add_subcommand("run", "Run a config (the embedded quickstart if none is given)");
  run->add_option(
         "config", config_path,
         "TOML config file, or a run's summary.json to rerun its resolved config (default: the "
         "embedded quickstart)")
      ->check(CLI::ExistingFile);
  run->add_option("--out,-o", out_dir,
                  "Run directory to create (default: runs/<run.name>; with --shard K/N, "
                  "runs/<run.name>-shard-K-of-N)");
  run->add_option("--seed,-s", seed, "Override run.seed (0 to 2^63-1)")
      ->check(in_range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  run->add_flag("--force,-f", force, "Overwrite an existing run directory");
  std::string shard;
  run->add_option("--shard", shard,
                  "Run only part K of N (K/N, K from 0) of every run's walkers into a shard "
                  "directory; `sgdwalk merge` joins the N shards into the run's results");
  add_session_flags(run, flags);

  std::string resume_dir;
  CLI::App* resume = app.add_subcommand(
      "resume", "Continue an interrupted run from RUN/checkpoint.bin (same final results)");
  resume->add_option("run", resume_dir, "Run directory (made by `sgdwalk run`)")->required();
  add_session_flags(resume, flags);

  std::string replay_dir, replay_output;
  std::int64_t replay_walker_id = 0, replay_variant = -1, replay_every = 1, replay_until = -1;
  bool replay_normals = false;
  CLI::App* replay = app.add_subcommand(
      "replay", "Recompute one walker's trajectory from the seed on the CPU, as CSV");
  replay->add_option("run", replay_dir, "Run directory (made by `sgdwalk run`)")->required();
  replay
      ->add_option("--walker,-w", replay_walker_id,
                   "Walker id: global index (variant x walkers + walker), or the index within "
                   "--variant")
      ->required()
      ->check(in_range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  replay->add_option("--variant,-v", replay_variant, "Variant index (then --walker is within it)")
      ->check(in_range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  replay->add_option("--every", replay_every, "Write every N-th step (and the last)")
      ->check(in_range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max()));
  replay
      ->add_option("--until", replay_until,
                   "Last step to compute (default: the run's last step, run.steps)")
      ->check(in_range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  replay->add_option("--output,-o", replay_output,
                     "CSV file (default: standard output); '#' lines first say which walker and "
                     "parameters");
  replay->add_flag("--normals", replay_normals,
                   "Add the noise inputs each row's update consumed (normal_x, ...; for "
                   "alpha_stable noise stable_input_x, ...: the draws scaled by the step's c_k; "
                   "with --every 1 they let an independent implementation recompute the "
                   "trajectory)");

  std::string merge_out;
  std::vector<std::string> merge_shard_dirs;
  bool merge_force = false;
  CLI::App* merge = app.add_subcommand(
      "merge",
      "Join the finished shards of a run (sgdwalk run --shard K/N) into its run directory");
  merge->add_option("out", merge_out, "Run directory to write")->required();
  merge->add_option("shards", merge_shard_dirs, "Shard directories, one per part")->required();
  merge->add_flag("--force,-f", merge_force, "Overwrite an existing run directory");
  merge->add_flag("--quiet,-q", flags.quiet, "No summary table");

  bool config_reference = false;
  CLI::App* info = app.add_subcommand("info", "Version, build, backends and devices");
  info->add_flag("--config-reference", config_reference,
                 "Print the config reference (every key, type, default, range; docs/CONFIG.md)");
  bool list_landscapes = false;
  info->add_flag("--landscapes", list_landscapes,
                 "List every landscape (parameters, defaults, ranges) and noise model");

  // Unknown options are reported before CLI11 sees them: CLI11 would first take `--thread 4`'s
  // value as the config path and say "File does not exist: 4". This reads the commands and options
  // defined above, so it stays right before parsing. In a job, rank 0 alone prints it.
  if (const std::string problem = unknown_option(app, argc, argv); !problem.empty()) {
    if (rank_zero) {
      std::fprintf(stderr, "%s\nRun with --help for more information.\n", problem.c_str());
    }
    return kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // CLI11 prints the message (or --help) and has its own codes (105, 106, 109, ...); the
    // documented one for every usage error is 2. In a job, rank 0 alone prints it.
    const int code = rank_zero ? app.exit(error) : (error.get_exit_code() == 0 ? 0 : 1);
    return code == 0 ? 0 : kExitUsage;
  }

  const auto dispatch = [&]() -> int {
    if (run->parsed()) {
      return command_run(config_path, out_dir, seed, force, shard, flags, command_line);
    }
    if (merge->parsed()) {
      return command_merge(merge_out, merge_shard_dirs, merge_force, flags.quiet, command_line);
    }
    if (resume->parsed()) {
      // A run split into parts (an MPI job) resumes as a job of this one process.
      if (is_job_directory(resume_dir)) {
        return command_resume_job(*make_solo_comm(), resume_dir, flags);
      }
      return command_resume(resume_dir, flags);
    }
    if (replay->parsed()) {
      return command_replay(replay_dir, replay_walker_id, replay_variant, replay_every,
                            replay_until, replay_output, replay_normals);
    }
    return command_info(config_reference, list_landscapes);
  };
  if (!comm || comm->size() == 1) return guarded(dispatch);

  // Several processes: `run` and the resume of a job are collective; every other command runs on
  // rank 0 alone while the others wait for its exit code.
  if (run->parsed() && shard.empty()) {
    return guarded([&] {
      return command_run_job(*comm, config_path, out_dir, seed, force, flags, command_line);
    });
  }
  if (resume->parsed() && is_job_directory(resume_dir)) {
    return guarded([&] { return command_resume_job(*comm, resume_dir, flags); });
  }
  int code = 0;
  if (comm->rank() == 0) {
    code = guarded([&] {
      if (run->parsed()) {
        throw ConfigError(
            "--shard with mpirun/srun: a shard is one process's work; start the shards as "
            "separate jobs (a job array), or run without --shard to split the run over the "
            "processes");
      }
      return dispatch();
    });
  }
  return std::atoi(comm->broadcast(std::to_string(code), 0).c_str());
}
