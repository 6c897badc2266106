#include "rare_events/ffs_session.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "io/atomic_file.hpp"
#include "io/hdf5_file.hpp"
#include "rare_events/ffs_driver.hpp"
#include "rare_events/ffs_kept_states.hpp"
#include "run/driver.hpp"
#include "run/memory.hpp"
#include "run/run_session.hpp"

namespace sgdwalk {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read", path.string()));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json summary(const RunPlan& plan, const RunRecord& record, const Backend& backend,
                       const FfsResult* result) {
  nlohmann::json j;
  j["format"] = "sgdwalk-summary";
  // The provenance a brute-force run's summary has (driver.cpp, summary_json).
  j["sgdwalk"] = {{"version", sgdwalk_version()},
                  {"git_commit", sgdwalk_git_commit()},
                  {"command", record.command_line}};
  j["backend"] = {{"name", backend.name()}, {"description", backend.description()}};
  j["partial"] = result == nullptr || !result->complete;
  j["config"] = plan.resolved_config;
  j["config_source"] = record.config_source;
  j["command_line"] = record.command_line;
  j["seed_from_command_line"] = record.seed_from_command_line;
  if (result != nullptr) j["rare_events"] = ffs_result_json(plan, *result);
  j["files"] = {{"results", "results.h5"}, {"config", "config.toml"}};
  return j;
}

FfsSessionResult run(const RunPlan& plan, Backend& backend, const RunRecord& record,
                     const std::filesystem::path& dir, const FfsSessionOptions& options,
                     bool resuming) {
  FfsOptions ffs_options;
  ffs_options.checkpoint_path = (dir / kFfsCheckpointFileName).string();
  if (resuming) {
    // A resume checks memory only when it computes (the checkpoint may hold the finished
    // computation, whose outputs need no stage): the node may not be the one that started it.
    ffs_options.before_computing = [&] {
      check_ffs_memory(plan, record.config_source, available_host_memory());
    };
  }
  FfsSessionResult session;
  ffs_options.on_stage = [&](const FfsProgress& progress) {
    if (options.on_stage) options.on_stage(progress.line);
    if (options.stop != nullptr && options.stop->load() != 0) {
      session.stop_signal = options.stop->load();
      return false;
    }
    return true;
  };
  FfsResult result;
  try {
    result = run_ffs(plan, backend, ffs_options);
  } catch (const FfsStopped&) {
    return session;  // the checkpoint holds everything; summary.json stays partial
  } catch (const FfsCheckpointNotWritten& error) {
    // A checkpoint that cannot be written (disk full) stops the run: the stages it computed
    // since the last checkpoint are lost, the ones before are kept.
    if (!std::filesystem::exists(ffs_options.checkpoint_path)) throw;
    throw std::runtime_error(fmt::format(
        "{}; the stages up to the last checkpoint are kept in {}: once the cause is fixed, "
        "`sgdwalk resume {}` continues from there",
        error.what(), ffs_options.checkpoint_path, dir.string()));
  }
  const std::filesystem::path h5_tmp = dir / "results.h5.tmp";
  try {
    {
      Hdf5File file(h5_tmp.string());
      file.attribute("/", "sgdwalk_version", sgdwalk_version());
      file.attribute("/", "git_commit", sgdwalk_git_commit());
      file.attribute("/", "config", plan.resolved_config.dump());
      file.attribute("/", "config_toml", record.config_text);
      write_ffs_hdf5(plan, result, file);
      file.close();
    }
    std::filesystem::rename(h5_tmp, dir / "results.h5");
    sync_directory_of(dir / "results.h5");
    write_file_atomically(dir / "summary.json",
                          summary(plan, record, backend, &result).dump(2) + "\n");
  } catch (const std::exception& error) {
    // Nothing computed is lost: the checkpoint of the last stage holds the finished computation.
    std::error_code ignored;
    std::filesystem::remove(h5_tmp, ignored);  // a half-written file holds disk space
    throw std::runtime_error(fmt::format(
        "{}; the finished computation is kept in {}: once the cause is fixed (disk space, a "
        "file in the way), `sgdwalk resume {}` writes its outputs without computing again",
        error.what(), ffs_options.checkpoint_path, dir.string()));
  }
  // The outputs hold everything now (a checkpoint left behind by a failed removal is harmless:
  // resume writes the same outputs from it).
  std::error_code ignored;
  std::filesystem::remove(ffs_options.checkpoint_path, ignored);
  std::filesystem::remove(KeptStatesWriter::path_for(ffs_options.checkpoint_path), ignored);
  session.complete = true;
  return session;
}

}  // namespace

FfsSessionResult run_ffs_in_directory(const RunPlan& plan, Backend& backend,
                                      const RunRecord& record, const std::string& directory,
                                      const FfsSessionOptions& options) {
  // Refused before the directory is touched: a stage that does not fit would end the process
  // (std::bad_alloc, or the kernel's OOM killer) after the stages before it were computed.
  check_ffs_memory(plan, record.config_source, available_host_memory());
  const std::filesystem::path dir(directory);
  std::filesystem::create_directories(dir);
  const RunDirectoryLock lock(directory);  // before anything in it is removed or written
  remove_earlier_run_files(directory);
  write_config_and_summary(dir, record.config_text,
                           summary(plan, record, backend, nullptr).dump(2) + "\n");
  return run(plan, backend, record, dir, options, false);
}

bool has_ffs_checkpoint(const std::string& directory) {
  return std::filesystem::exists(std::filesystem::path(directory) / kFfsCheckpointFileName);
}

bool is_finished_ffs_run(const std::string& directory) {
  try {
    const nlohmann::json summary =
        nlohmann::json::parse(read_text(std::filesystem::path(directory) / "summary.json"));
    return summary.contains("rare_events") && !summary.value("partial", true);
  } catch (const std::exception&) {
    return false;
  }
}

bool is_ffs_run_directory(const std::string& directory) {
  if (has_ffs_checkpoint(directory)) return true;
  try {
    const nlohmann::json summary =
        nlohmann::json::parse(read_text(std::filesystem::path(directory) / "summary.json"));
    return summary.at("config").at("rare_event").at("method").get<std::string>() == "ffs";
  } catch (const std::exception&) {
    return false;  // not a run directory, or damaged: the brute-force resume names the problem
  }
}

FfsSessionResult resume_ffs_in_directory(const std::string& directory, Backend& backend,
                                         const FfsSessionOptions& options) {
  const RunDirectoryLock lock(directory);
  const std::filesystem::path dir(directory);
  const std::filesystem::path summary_path = dir / "summary.json";
  nlohmann::json recorded;
  RunRecord record;
  std::uint64_t recorded_seed = 0;
  try {
    recorded = nlohmann::json::parse(read_text(summary_path));
    record.config_source = recorded.value("config_source", std::string("config.toml"));
    record.command_line = recorded.value("command_line", std::string());
    record.seed_from_command_line = recorded.value("seed_from_command_line", false);
    if (record.seed_from_command_line)
      recorded_seed = recorded.at("config").at("run").at("seed").get<std::uint64_t>();
  } catch (const nlohmann::json::exception& problem) {
    // As a brute-force resume names it (run_session.cpp, load_resume_point).
    throw RunDirectoryError(fmt::format("{}: unreadable or corrupt ({}); the run directory is "
                                        "damaged (the seed and the command of the run are "
                                        "recorded there)",
                                        summary_path.string(), problem.what()),
                            false);
  }
  record.config_text = read_text(dir / "config.toml");
  RunPlan plan = load_config_text(record.config_text, (dir / "config.toml").string());
  if (record.seed_from_command_line) {
    plan.seed = recorded_seed;
    plan.resolved_config["run"]["seed"] = plan.seed;
  }
  // As a brute-force resume (run_session.cpp): a changed config.toml is a config error that
  // names what changed, before the checkpoint's own check.
  if (recorded.contains("config") && plan.resolved_config != recorded.at("config")) {
    throw ConfigError(
        fmt::format("{} changed since the run started (it no longer gives the config summary.json "
                    "recorded): {}; restore it to resume, or start a new run with "
                    "`sgdwalk run`",
                    (dir / "config.toml").string(),
                    describe_config_changes(recorded.at("config"), plan.resolved_config)));
  }
  return run(plan, backend, record, dir, options, true);
}

}  // namespace sgdwalk
