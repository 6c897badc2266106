#include "cluster/parallel_job.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>

#include "backend/backend_registry.hpp"
#include "config/config.hpp"
#include "run/checkpoint.hpp"
#include "run/memory.hpp"

namespace sgdwalk {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kPartsDirectory = "parts";
constexpr const char* kTokenFileName = "job-token";
/// Largest total size of the parts' checkpoints that a stopped job reads for partial results.
constexpr std::uintmax_t kPartialResultsReadLimit = std::uintmax_t{2} << 30;

fs::path part_directory(const fs::path& run, PartId part) {
  return run / kPartsDirectory / fmt::format("{}-of-{}", part.index, part.count);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw RunDirectoryError(fmt::format("{}: cannot open the file", path.string()), false);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

class SoloComm final : public JobComm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string host() const override { return "this process"; }
  int first_failure(bool ok) override { return ok ? -1 : 0; }
  std::string broadcast(const std::string& text, int) override { return text; }
  void send_stop(int) override {}
  int received_stop() override { return 0; }
  void send_progress(const RankProgress&) override {}
  void receive_progress(std::vector<RankProgress>&) override {}
  std::vector<int> gather_status(int status, const std::function<void()>&) override {
    return {status};
  }
  [[noreturn]] void abort(int code) override {
    std::fflush(stderr);
    std::exit(code);
  }
};

}  // namespace

std::optional<int> agree_on_every_process(JobComm& comm, const std::function<void()>& step) {
  int code = 0;
  std::string message;
  try {
    step();
  } catch (const ConfigError& error) {
    code = kJobUsageError;
    message = fmt::format("config error: {}", error.what());
  } catch (const ResourceError& error) {
    code = kJobUsageError;
    message = fmt::format("refused: {}", error.what());
  } catch (const RunDirectoryError& error) {
    code = error.usage() ? kJobUsageError : kJobRuntimeError;
    message = error.what();
  } catch (const CheckpointError& error) {
    code = kJobRuntimeError;
    message = fmt::format("cannot resume: {}", error.what());
  } catch (const std::exception& error) {
    code = kJobRuntimeError;
    message = fmt::format("error: {}", error.what());
  }
  const int failed = comm.first_failure(code == 0);
  if (failed < 0) return std::nullopt;
  const std::string shared = comm.broadcast(fmt::format("{}\n{}", code, message), failed);
  const auto newline = shared.find('\n');
  code = std::atoi(shared.substr(0, newline).c_str());
  if (comm.rank() == 0) {
    const std::string where = failed == 0 ? "" : fmt::format("rank {}: ", failed);
    std::fprintf(stderr, "sgdwalk: %s%s\n", where.c_str(), shared.substr(newline + 1).c_str());
  }
  return code;
}

namespace {

std::optional<int> agree(JobComm& comm, const std::function<void()>& step) {
  return agree_on_every_process(comm, step);
}

/// Prints why this process failed, with its rank and node, and ends the whole job.
[[noreturn]] void fail_job(JobComm& comm, const std::string& what) {
  std::fprintf(stderr, "sgdwalk: rank %d of %d (%s): error: %s\n", comm.rank(), comm.size(),
               comm.host().c_str(), what.c_str());
  std::fflush(stderr);
  comm.abort(kJobRuntimeError);
  std::_Exit(kJobRuntimeError);  // abort() does not return
}

/// Rank 0 writes a fresh token under RUN/parts; every process must read the same one back (an MPI
/// run keeps its parts in RUN, so every process must see the same RUN).
std::optional<int> check_shared_directory(JobComm& comm, const fs::path& run) {
  std::string token;
  if (comm.rank() == 0) {
    std::random_device entropy;
    token = fmt::format("{:08x}{:08x}{:016x}", entropy(), entropy(),
                        static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  }
  const auto wrote = agree(comm, [&] {
    if (comm.rank() != 0) return;
    fs::create_directories(run / kPartsDirectory);
    std::ofstream(run / kPartsDirectory / kTokenFileName, std::ios::trunc) << token;
  });
  if (wrote) return wrote;
  token = comm.broadcast(token, 0);
  return agree(comm, [&] {
    const fs::path path = run / kPartsDirectory / kTokenFileName;
    std::ifstream file(path);
    std::string seen;
    file >> seen;
    if (seen != token) {
      throw RunDirectoryError(
          fmt::format("{}: not visible from rank {} on {}: a job keeps its parts in the run "
                      "directory, which every process must see (a cluster's shared file system)",
                      path.string(), comm.rank(), comm.host()),
          true);
    }
  });
}

/// The work of one process: parts of the run, one after another.
class PartRunner {
 public:
  PartRunner(JobComm& comm, const RunPlan& plan, const RunRecord& job_record, const fs::path& run,
             std::int64_t parts, const JobOptions& options)
      : comm_(comm),
        plan_(plan),
        job_record_(job_record),
        run_(run),
        parts_(parts),
        options_(options),
        latest_(static_cast<std::size_t>(comm.size())) {
    for (std::int64_t k = comm.rank(); k < parts; k += comm.size()) mine_.push_back(k);
    const char* fail_rank = std::getenv("SGDWALK_TEST_FAIL_RANK");  // test hook (undocumented)
    fail_here_ = fail_rank != nullptr && std::atoi(fail_rank) == comm.rank();
  }

  /// Runs or continues this process's parts; returns 0 when they are all complete, 128 + signal
  /// when stopped. Throws when a part fails.
  int run(Backend& backend) {
    for (const std::int64_t k : mine_) {
      const WalkerRange range = part_walkers(plan_, {k, parts_});
      own_.walker_steps_total += static_cast<double>(range.size() * plan_.steps);
    }
    for (const std::int64_t k : mine_) {
      poll_stop();
      if (stop_ != 0) break;
      run_part({k, parts_}, backend);
      if (stop_ != 0) break;
    }
    if (comm_.rank() != 0) report(true);  // rank 0 shows the final line once all are done
    return stop_ != 0 ? 128 + stop_ : 0;
  }

  /// Rank 0: the combined progress of every process (after receiving what the others sent).
  RunProgress combined() {
    if (comm_.rank() == 0) {
      comm_.receive_progress(latest_);
      latest_[0] = own_;
    }
    RunProgress progress;
    double done = 0, rate = 0;
    for (const auto& p : latest_) {
      done += p.walker_steps_done;
      rate += p.rate;
    }
    // Of the whole run: a process not heard from yet counts as not started.
    progress.walker_steps_done = static_cast<std::int64_t>(done);
    progress.walker_steps_total = plan_.total_walkers() * plan_.steps;
    // The reporter shows done / simulate_seconds as the rate: make that the summed rate.
    progress.simulate_seconds = rate > 0 ? done / rate : 0;
    return progress;
  }

  int stop_signal() const { return stop_; }

 private:
  void poll_stop() {
    const int own = options_.stop != nullptr ? options_.stop->load() : 0;
    if (own != 0 && !forwarded_) {
      comm_.send_stop(own);
      forwarded_ = true;
      if (stop_ == 0) stop_ = own;
    }
    const int other = comm_.received_stop();
    if (other != 0 && stop_ == 0) stop_ = other;
    job_stop_.store(stop_);
  }

  /// Sends (or, on rank 0, shows) the progress, at most every half second unless `now`.
  void report(bool now) {
    if (!now && seconds_since(last_report_) < 0.5) return;
    last_report_ = Clock::now();
    if (comm_.rank() == 0) {
      if (options_.on_progress) options_.on_progress(combined());
    } else {
      comm_.send_progress(own_);
    }
  }

  void run_part(PartId part, Backend& backend) {
    const fs::path dir = part_directory(run_, part);
    const WalkerRange range = part_walkers(plan_, part);
    const double part_total = static_cast<double>(range.size() * plan_.steps);
    const double done_before = own_.walker_steps_done;
    SessionOptions session;
    session.execute.batch_walkers = options_.batch_walkers;
    session.execute.segment_steps = options_.segment_steps;
    session.checkpoint_every = options_.checkpoint_every;
    session.threads = options_.threads;
    session.stop = &job_stop_;
    session.on_warning = [&](const std::string& warning) {
      std::fprintf(stderr, "sgdwalk: rank %d: warning: %s\n", comm_.rank(), warning.c_str());
    };
    double start_done = -1, start_seconds = 0;
    session.execute.on_segment = [&](const RunProgress&, const SegmentData&) {
      if (fail_here_) throw std::runtime_error("injected failure (SGDWALK_TEST_FAIL_RANK)");
      poll_stop();
      return true;
    };
    session.on_progress = [&](const RunProgress& now) {
      if (start_done < 0) {
        // The first segment of this session: what the part had done before it is unknown here,
        // so the rate counts from the end of this first segment.
        start_done = static_cast<double>(now.walker_steps_done);
        start_seconds = now.simulate_seconds;
      }
      own_.walker_steps_done = done_before + static_cast<double>(now.walker_steps_done);
      const double seconds = now.simulate_seconds - start_seconds;
      if (seconds > 0) {
        own_.rate = (static_cast<double>(now.walker_steps_done) - start_done) / seconds;
      }
      if (options_.after_segment) options_.after_segment();
      report(false);
    };

    std::error_code error;
    if (fs::exists(dir / "summary.json", error)) {
      ResumePoint point = load_resume_point(dir.string(), options_.threads);
      if (!point.record.shard || !(*point.record.shard == part)) {
        throw RunDirectoryError(
            fmt::format("{}: is not part {} of the run", dir.string(), to_string(part)), false);
      }
      if (!point.complete) resume_in_directory(std::move(point), backend, dir.string(), session);
    } else {
      RunRecord record = job_record_;
      record.shard = part;
      record.provenance = Json::object();
      record.wall_seconds = 0;
      record.sessions = 1;
      run_in_directory(plan_, backend, record, dir.string(), session);
    }
    poll_stop();
    own_.walker_steps_done =
        done_before + (stop_ == 0 ? part_total : own_.walker_steps_done - done_before);
  }

  JobComm& comm_;
  const RunPlan& plan_;
  const RunRecord& job_record_;
  fs::path run_;
  std::int64_t parts_;
  const JobOptions& options_;
  std::vector<std::int64_t> mine_;
  RankProgress own_;
  std::vector<RankProgress> latest_;
  int stop_ = 0;
  bool forwarded_ = false;
  bool fail_here_ = false;
  std::atomic<int> job_stop_{0};
  Clock::time_point last_report_{};
};

/// Runs this process's parts, gathers how every process ended and, on rank 0, merges the parts
/// into RUN (all complete) or writes RUN's partial summary.json (stopped).
JobResult finish_parts(JobComm& comm, const RunPlan& plan, RunRecord record, const fs::path& run,
                       std::int64_t parts, const JobOptions& options, double wall_before) {
  const auto start = Clock::now();
  // Every process's backend (its GPU: local rank modulo the node's devices); a process that has
  // none fails the job before anything runs.
  BackendChoice backend;
  if (const auto code = agree(comm, [&] {
        backend = make_backend(options.backend_name, options.threads, comm.local_rank());
      })) {
    return JobResult{*code, 0, std::nullopt, {}};
  }
  if (!backend.notice.empty() && !options.quiet && comm.rank() == 0) {
    std::fprintf(stderr, "sgdwalk: %s\n", backend.notice.c_str());
  }
  PartRunner runner(comm, plan, record, run, parts, options);
  int status = 0;
  try {
    status = runner.run(*backend.backend);
  } catch (const std::exception& error) {
    fail_job(comm, error.what());
  }
  auto last_shown = Clock::now();
  const std::vector<int> statuses = comm.gather_status(status, [&] {
    if (seconds_since(last_shown) < 0.5) return;
    last_shown = Clock::now();
    if (options.on_progress) options.on_progress(runner.combined());
  });
  JobResult result;
  std::string outcome_text;  // rank 0 -> every process: "exit code signal"
  if (comm.rank() == 0) {
    int stopped_by = 0;
    for (const int s : statuses) {
      if (s != 0 && stopped_by == 0) stopped_by = s - 128;
    }
    result.progress = runner.combined();
    record.wall_seconds = wall_before + seconds_since(start);
    record.provenance["parallel"] = {{"parts", parts}, {"processes", comm.size()}};
    try {
      std::vector<std::string> dirs;
      for (std::int64_t k = 0; k < parts; ++k) {
        dirs.push_back(part_directory(run, {k, parts}).string());
      }
      if (stopped_by == 0) {
        MergedRun merged = merge_shards(dirs, record.command_line);
        // The processes ran at once: the job's simulation time is its slowest part's, so that
        // summary.json's walker-steps/s is the job's rate (a merge of shards sums them instead).
        double slowest = 0;
        for (const auto& part : merged.record.provenance["merged_from"]) {
          slowest = std::max(slowest, part.value("simulate_seconds", 0.0));
        }
        merged.record = record;
        merged.outcome.progress.simulate_seconds = slowest;
        merged.outcome.backend_description = fmt::format(
            "{} process(es), {} part(s): {}", comm.size(), parts, merged.outcome.backend_name);
        write_run_outputs(merged.plan, merged.outcome, merged.record, run.string());
        std::error_code ignored;
        fs::remove_all(run / kPartsDirectory, ignored);
        result.progress = merged.outcome.progress;
        result.merged = std::move(merged);
        outcome_text = "0 0";
      } else {
        // Partial results, as a stopped single run writes them: the variants whose walkers have
        // all finished, from the parts' checkpoints (which stay for the resume). Reading them
        // (batch arrays included) must not outlast the launcher's grace time before SIGKILL
        // (Slurm: 30 s): above kPartialResultsReadLimit only summary.json is written.
        std::uintmax_t checkpoint_bytes = 0;
        for (const auto& dir : dirs) {
          std::error_code missing;
          const auto size = fs::file_size(fs::path(dir) / kCheckpointFileName, missing);
          if (!missing) checkpoint_bytes += size;
        }
        RunOutcome summary_only;
        if (checkpoint_bytes <= kPartialResultsReadLimit) {
          MergedRun partial = merge_stopped_parts(plan, dirs);
          summary_only.progress = partial.outcome.progress;
          partial.outcome.backend_name = options.backend_name;
          partial.outcome.backend_description =
              fmt::format("{} process(es), {} part(s)", comm.size(), parts);
          write_run_outputs(plan, partial.outcome, record, run.string());
        } else {
          std::fprintf(stderr,
                       "sgdwalk: the parts' checkpoints hold %.1f GiB: no partial results.h5 "
                       "(reading them could outlast the time before SIGKILL); they are safe, "
                       "and resume continues from them\n",
                       static_cast<double>(checkpoint_bytes) / (1 << 30));
          summary_only.progress = result.progress;
          summary_only.backend_name = options.backend_name;
          write_run_start(plan, summary_only, record, run.string());
        }
        result.progress.walker_steps_done = summary_only.progress.walker_steps_done;
        result.progress.walker_steps_total = summary_only.progress.walker_steps_total;
        outcome_text = fmt::format("{} {}", 128 + stopped_by, stopped_by);
      }
    } catch (const std::exception& error) {
      std::fprintf(stderr, "sgdwalk: rank 0 (%s): error: %s\n", comm.host().c_str(), error.what());
      outcome_text = fmt::format("{} 0", kJobRuntimeError);
    }
  }
  outcome_text = comm.broadcast(outcome_text, 0);
  std::istringstream(outcome_text) >> result.exit_code >> result.stop_signal;
  return result;
}

}  // namespace

std::unique_ptr<JobComm> make_solo_comm() {
  return std::make_unique<SoloComm>();
}

bool is_job_directory(const std::string& directory) {
  std::error_code error;
  const fs::path summary = fs::path(directory) / "summary.json";
  if (!fs::exists(summary, error)) return false;
  const Json json = Json::parse(read_text(summary), nullptr, false);
  return json.is_object() && json.contains("parallel");
}

JobResult run_job(JobComm& comm, const RunPlan& plan, RunRecord record, const std::string& out_dir,
                  bool force, const JobOptions& options) {
  const fs::path run(out_dir);
  const std::int64_t parts = comm.size();
  record.provenance["parallel"] = {{"parts", parts}, {"processes", comm.size()}};
  record.wall_seconds = 0;
  record.sessions = 1;
  // Rank 0 prepares the run directory: refused if it holds something (unless --force), then
  // config.toml and a partial summary.json, as a single run writes them.
  if (const auto code = agree(comm, [&] {
        if (comm.rank() != 0) return;
        std::error_code error;
        if (fs::exists(run, error) && !fs::is_empty(run, error) && !force) {
          throw RunDirectoryError(
              fmt::format("the run directory '{}' exists and is not empty; choose another --out "
                          "or pass --force to overwrite it",
                          out_dir),
              true);
        }
        fs::create_directories(run);
        for (const char* stale : {kCheckpointFileName, "results.h5", kWalkerFileName}) {
          fs::remove(run / stale, error);
        }
        fs::remove_all(run / kPartsDirectory, error);
        RunOutcome start;
        start.backend_name = options.backend_name;
        start.backend_description = fmt::format("{} process(es)", comm.size());
        start.progress.update_counters(plan);
        write_run_start(plan, start, record, out_dir);
      })) {
    return JobResult{*code, 0, std::nullopt, {}};
  }
  if (const auto code = check_shared_directory(comm, run))
    return JobResult{*code, 0, std::nullopt, {}};
  return finish_parts(comm, plan, record, run, parts, options, 0);
}

JobResult resume_job(JobComm& comm, const std::string& directory, const JobOptions& options) {
  ResumePoint point;
  std::int64_t parts = 0;
  double wall_before = 0;
  if (const auto code = agree(comm, [&] {
        point = load_resume_point(directory, options.threads);
        const Json summary = Json::parse(read_text(fs::path(directory) / "summary.json"));
        parts = summary.at("parallel").at("parts").get<std::int64_t>();
        if (parts < 1) {
          throw RunDirectoryError(
              fmt::format("{}/summary.json: corrupt: \"parallel\" has {} parts", directory, parts),
              false);
        }
        wall_before =
            summary.contains("timing") ? summary["timing"].value("wall_seconds", 0.0) : 0.0;
      })) {
    return JobResult{*code, 0, std::nullopt, {}};
  }
  if (point.complete) {
    if (comm.rank() == 0 && !options.quiet) {
      std::fprintf(stderr, "sgdwalk: the run in %s is complete; nothing to resume\n",
                   directory.c_str());
    }
    return {};
  }
  if (const auto code = check_shared_directory(comm, directory))
    return JobResult{*code, 0, std::nullopt, {}};
  RunRecord record = point.record;
  record.provenance = Json::object();
  return finish_parts(comm, point.plan, record, directory, parts, options, wall_before);
}

}  // namespace sgdwalk
