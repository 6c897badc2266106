#include "run/run_session.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <omp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cluster/parts.hpp"
#include "config/config.hpp"
#include "io/hdf5_file.hpp"
#include "run/memory.hpp"

namespace sgdwalk {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int counting_threads(int threads) {
  return threads > 0 ? threads : omp_get_max_threads();
}

void remove_if_present(const fs::path& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

SessionResult continue_session(const RunPlan& plan, Backend& backend, RunRecord record,
                               const std::string& directory, RunData data, RunProgress progress,
                               const SessionOptions& options) {
  const auto start = Clock::now();
  auto last_checkpoint = start;
  const double wall_before = record.wall_seconds;
  const std::string checkpoint_path = (fs::path(directory) / kCheckpointFileName).string();
  SessionResult result;
  ExecuteOptions execute = options.execute;
  const std::string walkers_path = (fs::path(directory) / kWalkerFileName).string();
  if (plan.per_walker_output && !execute.walker_store) {
    // Finished walkers stream into RUN/walkers.bin; walkers [part_begin, walker_begin) are
    // already there.
    execute.walker_store =
        make_file_walker_store(plan, walkers_path, progress.walker_begin, progress.part_begin);
  }
  execute.on_segment = [&](const RunProgress& now, const SegmentData& state) {
    bool go = options.execute.on_segment ? options.execute.on_segment(now, state) : true;
    if (options.on_progress) options.on_progress(now);
    if (options.stop != nullptr) {
      const int signal = options.stop->load();
      if (signal != 0) {
        result.stop_signal = signal;
        go = false;
      }
    }
    if (go && options.checkpoint_every > 0 && !now.complete() &&
        seconds_since(last_checkpoint) >= options.checkpoint_every) {
      // A checkpoint that cannot be written (disk full, ...) does not stop the run; the previous
      // one stays valid.
      try {
        if (execute.walker_store) execute.walker_store->sync();
        write_checkpoint(checkpoint_path, plan, now, state.get(),
                         wall_before + seconds_since(start), record.sessions);
        ++result.checkpoints;
      } catch (const std::exception& error) {
        if (options.on_warning)
          options.on_warning(fmt::format("no checkpoint written: {}", error.what()));
      }
      last_checkpoint = Clock::now();
    }
    return go;
  };
  result.outcome = execute_from(plan, backend, execute, std::move(data), progress);
  record.wall_seconds = wall_before + seconds_since(start);
  // A finished run whose outputs cannot be written (disk full, a file in the way): nothing computed
  // is lost, the finished state goes to the checkpoint, from which `resume` writes the outputs
  // without computing anything. Throws the outputs' error, saying what is kept.
  const auto keep_finished_state = [&](const std::exception& error, const char* what) {
    try {
      if (execute.walker_store) execute.walker_store->sync();
      write_checkpoint(checkpoint_path, plan, result.outcome.progress, result.outcome.data,
                       record.wall_seconds, record.sessions);
    } catch (const std::exception& also) {
      throw std::runtime_error(fmt::format(
          "{}; the finished state could not be kept either ({}): it is lost, and resuming starts "
          "from the last checkpoint written before, if any",
          error.what(), also.what()));
    }
    throw std::runtime_error(fmt::format(
        "{}; the finished {} is kept in {}: once the cause is fixed (disk space, a file in the "
        "way), resuming it (`{}`) writes its {} without computing again",
        error.what(), record.shard ? "part" : "run", checkpoint_path,
        options.resume_command.empty() ? "sgdwalk resume " + directory : options.resume_command,
        what));
  };
  if (result.outcome.complete && record.shard) {
    // A finished shard keeps its exact tallies and its walkers for `sgdwalk merge`.
    result.stop_signal = 0;
    try {
      if (execute.walker_store) execute.walker_store->sync();
      write_checkpoint((fs::path(directory) / kTalliesFileName).string(), plan,
                       result.outcome.progress, result.outcome.data, record.wall_seconds,
                       record.sessions);
      write_run_start(plan, result.outcome, record, directory);
    } catch (const std::exception& error) {
      keep_finished_state(error, "tallies");
    }
    remove_if_present(checkpoint_path);
    remove_if_present(checkpoint_path + ".tmp");
  } else if (result.outcome.complete) {
    result.stop_signal = 0;
    try {
      write_run_outputs(plan, result.outcome, record, directory);
    } catch (const std::exception& error) {
      keep_finished_state(error, "outputs");
    }
    // The outputs hold everything now; a checkpoint of a finished run has no use.
    remove_if_present(checkpoint_path);
    remove_if_present(checkpoint_path + ".tmp");
    remove_if_present(walkers_path);
  } else {
    // Stopped: the checkpoint and the partial results; if the checkpoint fails, the partial
    // results are still written before the error is reported.
    std::optional<std::string> checkpoint_problem;
    try {
      if (execute.walker_store) execute.walker_store->sync();
      write_checkpoint(checkpoint_path, plan, result.outcome.progress, result.outcome.data,
                       record.wall_seconds, record.sessions);
      ++result.checkpoints;
    } catch (const std::exception& error) {
      checkpoint_problem = error.what();
    }
    std::string outputs_problem;
    try {
      if (record.shard) {
        write_run_start(plan, result.outcome, record, directory);  // a part has no results
      } else {
        write_run_outputs(plan, result.outcome, record, directory);
      }
    } catch (const std::exception& error) {
      if (!checkpoint_problem) throw;
      outputs_problem = error.what();
    }
    if (checkpoint_problem) {
      // Neither the stop's checkpoint nor (perhaps) the partial results could be written (a full
      // disk): say what is kept, so that nobody takes the run for lost.
      throw std::runtime_error(fmt::format(
          "the run stopped, but its checkpoint could not be written ({}){}; {}",
          *checkpoint_problem,
          outputs_problem.empty() ? ""
                                  : fmt::format(", nor its partial results ({})", outputs_problem),
          fs::exists(checkpoint_path)
              ? fmt::format("the last checkpoint written before is kept in {}: once the cause is "
                            "fixed, `sgdwalk resume {}` continues from it",
                            checkpoint_path, directory)
              : "no earlier checkpoint was written: the run starts again from the beginning"));
    }
  }
  return result;
}

namespace {

/// The walkers a run directory covers: the whole run, or its shard's part.
WalkerRange walkers_covered(const RunPlan& plan, const RunRecord& record) {
  return record.shard ? part_walkers(plan, *record.shard) : WalkerRange{0, plan.total_walkers()};
}

}  // namespace

std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw RunDirectoryError(fmt::format("{}: cannot open the file", path.string()), false);
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad())
    throw RunDirectoryError(fmt::format("{}: cannot read the file", path.string()), false);
  return text.str();
}

/// "/run/steps" -> "run.steps", "/init/positions/1/0" -> "init.positions[1][0]".
std::string key_from_pointer(const std::string& pointer) {
  std::string key;
  std::istringstream parts(pointer);
  std::string part;
  std::getline(parts, part, '/');  // leading empty part
  while (std::getline(parts, part, '/')) {
    const bool index = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    if (index) {
      key += "[" + part + "]";
    } else {
      key += (key.empty() ? "" : ".") + part;
    }
  }
  return key.empty() ? "(the whole config)" : key;
}

std::string value_text(const Json& document, const std::string& pointer) {
  const Json::json_pointer at(pointer);
  if (!document.contains(at)) return "(absent)";
  const Json& value = document.at(at);
  std::string text = value.dump();
  if (text.size() <= 60) return text;
  if (value.is_array() && value.size() > 5) {
    // A long list: its ends and its length, where a change of a list usually shows.
    return fmt::format("[{},{},{},...,{},{}] ({} values)", value[0].dump(), value[1].dump(),
                       value[2].dump(), value[value.size() - 2].dump(), value.back().dump(),
                       value.size());
  }
  return text.substr(0, 57) + "...";
}

}  // namespace

/// Describes how the resolved config changed, e.g. "run.steps: 400 -> 500".
std::string describe_config_changes(const Json& before, const Json& after) {
  const Json patch = Json::diff(before, after);
  std::vector<std::string> changes, pointers;
  bool batch_walkers = false;
  for (const auto& operation : patch) {
    std::string pointer = operation.at("path").get<std::string>();
    // An array that grew or shrank (a sample_steps list of a longer run): the array is the change,
    // not its elements one by one ("/-" is JSON Patch's place after the last element).
    const std::size_t slash = pointer.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      const std::string parent = pointer.substr(0, slash);
      const Json::json_pointer at(parent);
      const auto size_of = [&](const Json& document) -> std::ptrdiff_t {
        return document.contains(at) && document.at(at).is_array()
                   ? static_cast<std::ptrdiff_t>(document.at(at).size())
                   : -1;
      };
      if (pointer.substr(slash + 1) == "-" ||
          (size_of(before) >= 0 && size_of(after) >= 0 && size_of(before) != size_of(after))) {
        pointer = parent;
      }
    }
    if (std::find(pointers.begin(), pointers.end(), pointer) != pointers.end()) continue;
    pointers.push_back(pointer);
    batch_walkers = batch_walkers || pointer == "/run/batch_walkers";
    changes.push_back(fmt::format("{}: {} -> {}", key_from_pointer(pointer),
                                  value_text(before, pointer), value_text(after, pointer)));
  }
  if (changes.size() > 6) {
    const std::size_t more = changes.size() - 5;
    changes.resize(5);
    changes.push_back(fmt::format("and {} more", more));
  }
  // The one key that never changes a result is still part of the run's identity (its config
  // hash): say how to vary it.
  const std::string batch_note =
      batch_walkers ? " (run.batch_walkers never changes a result but is part of the run's "
                      "config: give every part of a run the same value, and vary the batch with "
                      "--batch-walkers instead)"
                    : "";
  return fmt::format("{}{}", fmt::join(changes, "; "), batch_note);
}

RunDirectoryLock::RunDirectoryLock(const std::string& directory) {
  fd_ = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) return;  // the session's own checks say what is wrong with the directory
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  const int error = errno;
  ::close(fd_);
  fd_ = -1;
  if (error == EWOULDBLOCK) {
    throw RunDirectoryError(
        fmt::format("another sgdwalk process is running or resuming in the run directory '{}'; "
                    "wait for it to finish (or stop it), then try again",
                    directory),
        true);
  }
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

namespace {

/// What a run of either kind writes besides config.toml and summary.json.
constexpr const char* kEarlierRunFiles[] = {kCheckpointFileName,
                                            "checkpoint.bin.tmp",
                                            "results.h5",
                                            "results.h5.tmp",
                                            kWalkerFileName,
                                            kWalkerConversionFileName,
                                            kTalliesFileName,
                                            "tallies.bin.tmp",
                                            kFfsCheckpointFileName,
                                            "ffs_checkpoint.json.tmp",
                                            "ffs_checkpoint.states.bin"};

/// Bytes of those files in `directory` (freed when a new run removes them).
double earlier_run_files_bytes(const std::string& directory) {
  double bytes = 0;
  for (const char* name : kEarlierRunFiles) {
    std::error_code error;
    const auto size = fs::file_size(fs::path(directory) / name, error);
    if (!error) bytes += static_cast<double>(size);
  }
  return bytes;
}

}  // namespace

void remove_earlier_run_files(const std::string& directory) {
  for (const char* stale : kEarlierRunFiles) remove_if_present(fs::path(directory) / stale);
}

SessionResult run_in_directory(const RunPlan& plan, Backend& backend, RunRecord record,
                               const std::string& directory, const SessionOptions& options) {
  RunPlan sized = plan;  // the batch the driver will use (--batch-walkers overrides the config)
  if (options.execute.batch_walkers > 0) sized.batch_walkers = options.execute.batch_walkers;
  check_host_resources(sized, record.config_source, counting_threads(options.threads),
                       available_host_memory());
  const fs::path dir(directory);
  fs::create_directories(dir);
  const RunDirectoryLock lock(directory);  // before anything in it is removed or written
  {
    // Before anything is removed (a refused --force keeps the earlier run), counting as free what
    // the earlier run's files will free.
    const WalkerRange part = walkers_covered(plan, record);
    std::optional<double> available = available_disk_space(directory);
    if (available) *available += earlier_run_files_bytes(directory);
    check_disk_space(plan, part.end - part.begin, record.config_source, available);
  }
  remove_earlier_run_files(directory);
  RunOutcome start;
  start.backend_name = backend.name();
  start.backend_description = backend.description();
  if (record.shard) {
    const WalkerRange part = part_walkers(plan, *record.shard);
    start.progress = RunProgress::start_of_part(part.begin, part.end);
    record.provenance["shard"] = shard_provenance(plan, *record.shard);
  }
  start.progress.update_counters(plan);
  record.wall_seconds = 0;
  record.sessions = 1;
  write_run_start(plan, start, record, directory);
  RunData data;
  data.resize(plan, 0);  // the driver sizes the batch arrays
  const RunProgress from = start.progress;
  return continue_session(plan, backend, std::move(record), directory, std::move(data), from,
                          options);
}

ResumePoint load_resume_point(const std::string& directory, int threads) {
  const fs::path dir(directory);
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    throw RunDirectoryError(
        fmt::format("'{}' is not a run directory ({})", directory,
                    fs::exists(dir, error) ? "not a directory" : "no such directory"),
        true);
  }
  const fs::path config_path = dir / "config.toml";
  const fs::path summary_path = dir / "summary.json";
  const bool has_config = fs::exists(config_path, error);
  const bool has_summary = fs::exists(summary_path, error);
  if (!has_config && !has_summary) {
    throw RunDirectoryError(
        fmt::format("'{}' is not a run directory (no config.toml and no summary.json; "
                    "`sgdwalk run CONFIG --out {}` makes one)",
                    directory, directory),
        true);
  }
  if (!has_config) {
    throw RunDirectoryError(
        fmt::format("{}: missing; the run directory is damaged and cannot be resumed without the "
                    "config it was started with",
                    config_path.string()),
        false);
  }
  if (!has_summary) {
    throw RunDirectoryError(
        fmt::format("{}: missing; the run directory is damaged (the seed and the command of the "
                    "run are recorded there)",
                    summary_path.string()),
        false);
  }

  Json summary;
  try {
    summary = Json::parse(read_text(summary_path));
  } catch (const Json::exception& problem) {
    throw RunDirectoryError(fmt::format("{}: unreadable or corrupt (not valid JSON: {})",
                                        summary_path.string(), problem.what()),
                            false);
  }
  ResumePoint point;
  Json recorded_config;
  std::uint64_t seed = 0;
  try {
    recorded_config = summary.at("config");
    seed = recorded_config.at("run").at("seed").get<std::uint64_t>();
    point.complete = !summary.at("partial").get<bool>();
    point.record.command_line = summary.at("sgdwalk").at("command").get<std::string>();
    point.record.config_source = summary.at("config_source").get<std::string>();
    point.record.seed_from_command_line = summary.value("seed_from_command_line", false);
    if (summary.contains("timing")) {
      point.record.sessions = summary.at("timing").value("sessions", std::int64_t{1});
    }
    if (summary.contains("shard")) {
      const Json& shard = summary.at("shard");
      point.record.shard =
          PartId{shard.at("index").get<std::int64_t>(), shard.at("count").get<std::int64_t>()};
      point.record.provenance["shard"] = shard;
    }
  } catch (const Json::exception& problem) {
    throw RunDirectoryError(
        fmt::format("{}: corrupt: a field sgdwalk resume needs is missing or has the wrong type "
                    "({})",
                    summary_path.string(), problem.what()),
        false);
  }

  point.record.config_text = read_text(config_path);
  point.plan = load_config_text(point.record.config_text, config_path.string());
  if (point.record.seed_from_command_line) {
    point.plan.seed = seed;
    point.plan.resolved_config["run"]["seed"] = seed;
  }
  if (point.plan.resolved_config != recorded_config) {
    throw ConfigError(
        fmt::format("{} changed since the run started (it no longer gives the config summary.json "
                    "recorded): {}; restore it to resume, or start a new run with "
                    "`sgdwalk run`",
                    config_path.string(),
                    describe_config_changes(recorded_config, point.plan.resolved_config)));
  }
  if (point.plan.ffs.enabled) {
    // Forward flux sampling resumes through rare_events/ffs_session.hpp (the CLI and Python
    // dispatch on is_ffs_run_directory); a brute-force run of its plan would be another result.
    throw RunDirectoryError(
        fmt::format("'{}' holds a forward flux sampling run ([rare_event] method = \"ffs\"), "
                    "not a brute-force run or shard: it is never split into parts, and `sgdwalk "
                    "resume {}` (one process, without mpirun/srun) continues it if unfinished",
                    directory, directory),
        true);
  }
  if (point.record.shard) {
    const PartId part = *point.record.shard;
    if (part.count < 1 || part.index < 0 || part.index >= part.count) {
      throw RunDirectoryError(fmt::format("{}: corrupt: \"shard\" is part {} of {}",
                                          summary_path.string(), part.index, part.count),
                              false);
    }
  }
  // The part the run covers (the whole run unless it is a shard) and the file that must match it.
  const WalkerRange part = walkers_covered(point.plan, point.record);
  auto check_part = [&](const fs::path& path) {
    const RunProgress& saved = point.checkpoint.progress;
    if (saved.part_begin != part.begin || saved.part_end != part.end) {
      throw CheckpointError(fmt::format(
          "{}: holds walkers [{}, {}), but {} says the run covers walkers [{}, {})", path.string(),
          saved.part_begin, saved.part_end, summary_path.string(), part.begin, part.end));
    }
  };
  if (point.complete) {
    if (point.record.shard) {
      // A finished shard: its tallies, for `sgdwalk merge`.
      const fs::path tallies_path = dir / kTalliesFileName;
      point.checkpoint = read_checkpoint(tallies_path.string(), &point.plan);
      check_part(tallies_path);
      if (point.checkpoint.progress.walker_begin != part.end) {
        throw CheckpointError(
            fmt::format("{}: the shard's tallies are incomplete (walkers [{}, "
                        "{}) of [{}, {}) finished)",
                        tallies_path.string(), part.begin, point.checkpoint.progress.walker_begin,
                        part.begin, part.end));
      }
      point.has_checkpoint = true;
    } else {
      check_finished_results(directory);
    }
    return point;
  }

  check_host_resources(point.plan, config_path.string(), counting_threads(threads),
                       available_host_memory());
  const fs::path checkpoint_path = dir / kCheckpointFileName;
  if (fs::exists(checkpoint_path, error)) {
    point.checkpoint = read_checkpoint(checkpoint_path.string(), &point.plan);
    check_part(checkpoint_path);
    point.has_checkpoint = true;
    point.record.wall_seconds = point.checkpoint.wall_seconds;
    point.record.sessions = point.checkpoint.sessions + 1;
  } else {
    point.record.wall_seconds = 0;
    point.record.sessions += 1;
  }
  return point;
}

std::string run_directory_problem(const std::filesystem::path& dir, const char* option) {
  std::error_code error;
  if (dir.empty()) return fmt::format("the {} is empty; give a directory", option);
  if (fs::exists(dir, error) && !fs::is_directory(dir, error)) {
    return fmt::format(
        "the run directory '{}' is an existing file, not a directory; choose another {}",
        dir.string(), option);
  }
  // The nearest existing directory on the way decides whether the run directory can be created.
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, error)) {
    existing = existing.has_parent_path() && existing.parent_path() != existing
                   ? existing.parent_path()
                   : fs::path();
  }
  if (existing.empty()) existing = ".";
  if (!fs::is_directory(existing, error)) {
    return fmt::format("cannot create the run directory '{}': '{}' is a file, not a directory",
                       dir.string(), existing.string());
  }
  if (access(existing.c_str(), W_OK | X_OK) != 0) {
    return fmt::format("cannot {} the run directory '{}': '{}' is not writable ({})",
                       existing == dir ? "write to" : "create", dir.string(), existing.string(),
                       std::strerror(errno));
  }
  // Permissions are not the whole story (root, read-only or special file systems): try to create
  // it, and remove what was created, so that a run refused later (memory, backend) leaves nothing.
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty() && p != existing && !fs::exists(p, error);
       p = p.parent_path()) {
    missing.push_back(p);
    if (!p.has_parent_path() || p.parent_path() == p) break;
  }
  if (!missing.empty()) {
    fs::create_directories(dir, error);
    if (error) {
      return fmt::format("cannot create the run directory '{}': {}", dir.string(), error.message());
    }
    for (const fs::path& created : missing) fs::remove(created, error);
  }
  return "";
}

void check_finished_results(const std::string& directory) {
  const fs::path results = fs::path(directory) / "results.h5";
  const Hdf5FileProblem problem = hdf5_file_problem(results.string());
  if (!problem) return;
  if (problem.kind == Hdf5FileProblem::Kind::unreadable) {
    // The file may be fine: nothing to recompute.
    throw RunDirectoryError(
        fmt::format("the run in {} finished, but {} {}: fix that, then look again", directory,
                    results.string(), problem.text),
        false);
  }
  // How it was made: a merge of shards is merged again; a run (its seed, when the command line
  // gave it) is run again.
  std::string again = fmt::format("`sgdwalk run {} --out {} --force`",
                                  (fs::path(directory) / "config.toml").string(), directory);
  try {
    const Json summary = Json::parse(read_text(fs::path(directory) / "summary.json"));
    if (summary.contains("merged_from")) {
      std::string shards;
      for (const auto& shard : summary.at("merged_from")) {
        shards.append(" ").append(shard.at("directory").get<std::string>());
      }
      again = fmt::format("`sgdwalk merge --force {}{}`", directory, shards);
    } else if (summary.value("seed_from_command_line", false)) {
      again = fmt::format("`sgdwalk run {} --out {} --seed {} --force`",
                          (fs::path(directory) / "config.toml").string(), directory,
                          summary.at("config").at("run").at("seed").get<std::uint64_t>());
    }
  } catch (const std::exception&) {
    // A damaged summary.json: the plain command is still the best advice.
  }
  throw RunDirectoryError(
      fmt::format("the run in {} finished, but {} is {}; a finished run keeps no checkpoint, so "
                  "nothing is left to resume: compute it again with {}",
                  directory, results.string(), problem.text, again),
      false);
}

SessionResult resume_in_directory(ResumePoint point, Backend& backend, const std::string& directory,
                                  const SessionOptions& options) {
  if (point.complete) throw std::logic_error("resume_in_directory: the run is already complete");
  const RunDirectoryLock lock(directory);
  {
    // As a run checks its whole walker file: the walkers still to be written must fit.
    const WalkerRange part = walkers_covered(point.plan, point.record);
    const std::int64_t written =
        point.has_checkpoint ? point.checkpoint.progress.walker_begin : part.begin;
    std::optional<double> available = available_disk_space(directory);
    if (available) {
      // Records beyond the checkpoint's (walkers finished after it) are written over.
      std::error_code error;
      const auto size = fs::file_size(fs::path(directory) / kWalkerFileName, error);
      const double kept = walker_file_bytes(point.plan, written - part.begin);
      if (!error && static_cast<double>(size) > kept)
        *available += static_cast<double>(size) - kept;
    }
    check_disk_space(point.plan, part.end - written, point.record.config_source, available,
                     fmt::format("free space on that file system (or move {} to a larger one), "
                                 "then resume",
                                 directory));
  }
  if (point.has_checkpoint) {
    return continue_session(point.plan, backend, std::move(point.record), directory,
                            std::move(point.checkpoint.data), point.checkpoint.progress, options);
  }
  RunData data;
  data.resize(point.plan, 0);
  RunProgress start;
  if (point.record.shard) {
    const WalkerRange part = part_walkers(point.plan, *point.record.shard);
    start = RunProgress::start_of_part(part.begin, part.end);
  }
  return continue_session(point.plan, backend, std::move(point.record), directory, std::move(data),
                          start, options);
}

}  // namespace sgdwalk
