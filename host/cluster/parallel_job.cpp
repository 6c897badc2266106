#include "cluster/parallel_job.hpp"

#include <fmt/format.h>

#include <algorithm>
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
#include "cluster/part_messages.hpp"
#include "config/config.hpp"
#include "io/walker_store.hpp"
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
  void reduce_sum(std::vector<std::uint64_t>&) override {}
  void reduce_min(std::vector<std::uint64_t>&) override {}
  std::vector<std::string> gather_bytes(const std::string& bytes) override { return {bytes}; }
  void send_to_root(const char*, std::size_t) override {
    throw std::logic_error("send_to_root in a job of one process");
  }
  void receive_from(int, char*, std::size_t) override {
    throw std::logic_error("receive_from in a job of one process");
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

/// Rank 0 writes a fresh token under RUN/parts; whether every process reads the same one back says
/// whether they share RUN. A resume reads the job's config and parts from RUN, so every process
/// must see it (`required`: refused otherwise). A run does not need it (its results reach rank 0 as
/// messages; a process that does not see rank 0's RUN keeps its parts under the same path on its
/// own file system); rank 0 says so, since such a run can be resumed only once the parts are
/// copied together.
std::optional<int> check_shared_directory(JobComm& comm, const fs::path& run, bool required,
                                          bool quiet) {
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
  const fs::path path = run / kPartsDirectory / kTokenFileName;
  std::string seen;
  std::ifstream(path) >> seen;
  if (required) {
    return agree(comm, [&] {
      if (seen != token) {
        throw RunDirectoryError(
            fmt::format("{}: not visible from rank {} on {}: resuming a job reads its parts from "
                        "the run directory, which every process must see (a cluster's shared "
                        "file system; or copy every node's {}/parts/ into it first)",
                        path.string(), comm.rank(), comm.host(), run.string()),
            true);
      }
    });
  }
  const int unshared = comm.first_failure(seen == token);
  if (unshared >= 0 && comm.rank() == 0 && !quiet) {
    std::fprintf(stderr,
                 "sgdwalk: %s is not shared with rank %d (and maybe others): the results come to "
                 "rank 0 as messages, and each process keeps its parts' working files under %s "
                 "on its own node; to resume a stopped run, copy them into rank 0's %s first\n",
                 run.string().c_str(), unshared, (run / kPartsDirectory).string().c_str(),
                 (run / kPartsDirectory).string().c_str());
  }
  return std::nullopt;
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
    // Test hook (undocumented): "R" fails rank R while it runs, "R:results" while it sends its
    // results to rank 0.
    if (const char* fail_rank = std::getenv("SGDWALK_TEST_FAIL_RANK")) {
      const bool here = std::atoi(fail_rank) == comm.rank();
      fail_results_ = here && std::string(fail_rank).find(":results") != std::string::npos;
      fail_here_ = here && !fail_results_;
    }
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
  /// The test hook's failure while sending results.
  void maybe_fail_sending() const {
    if (fail_results_) {
      throw std::runtime_error("injected failure while sending results (SGDWALK_TEST_FAIL_RANK)");
    }
  }
  /// The parts this process runs (K with K mod size = rank), in increasing order.
  const std::vector<std::int64_t>& parts() const { return mine_; }

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
    session.resume_command = "mpirun -np M sgdwalk resume " + run_.string();
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
      if (!point.record.shard || !(*point.record.shard == part) ||
          config_hash(point.plan) != config_hash(plan_)) {
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
  bool fail_results_ = false;
  std::atomic<int> job_stop_{0};
  Clock::time_point last_report_{};
};

/// Bytes of walker records moved at a time (file reads, messages), about.
constexpr std::int64_t kWalkerChunkBytes = std::int64_t{64} << 20;

/// Where rank 0 keeps the walker records another process sent for part `part`.
fs::path received_walkers(const fs::path& run, PartId part) {
  return run / kPartsDirectory / "received" /
         fmt::format("{}-of-{}.walkers", part.index, part.count);
}

/// Walkers whose records are moved at a time (file reads, messages): about kWalkerChunkBytes.
std::int64_t walkers_per_chunk(const RunPlan& plan) {
  return std::max<std::int64_t>(
      1, kWalkerChunkBytes / walker_record_bytes(plan.dim, plan.optimizer_state_width()));
}

/// Not rank 0: sends the records of part `c`'s finished walkers (read back from its walker file,
/// on this process's file system, so each is checked first) to rank 0, in chunks of
/// walkers_per_chunk walkers.
void send_walkers(JobComm& comm, const RunPlan& plan, const fs::path& run,
                  const PartContribution& c) {
  const std::int64_t begin = c.progress.part_begin, end = c.progress.walker_begin;
  if (end <= begin) return;  // a part that never started has no walker file (receive: nothing)
  const auto store =
      open_walker_file(plan, (part_directory(run, c.part) / kWalkerFileName).string(), begin, end);
  WalkerArrays chunk;
  for (std::int64_t lo = begin; lo < end; lo += walkers_per_chunk(plan)) {
    const std::int64_t hi = std::min(end, lo + walkers_per_chunk(plan));
    store->read(lo, hi - lo, chunk);
    const std::string records = encode_walker_records(plan, chunk, lo, hi);
    comm.send_to_root(records.data(), records.size());
  }
}

/// Rank 0: receives what send_walkers sends for part `c` from rank `from` into a walker file,
/// checking each record as it comes.
std::shared_ptr<WalkerStore> receive_walkers(JobComm& comm, const RunPlan& plan,
                                             const fs::path& run, const PartContribution& c,
                                             int from) {
  const std::int64_t begin = c.progress.part_begin, end = c.progress.walker_begin;
  const fs::path path = received_walkers(run, c.part);
  fs::create_directories(path.parent_path());
  const auto store = make_file_walker_store(plan, path.string(), begin, begin);
  const std::string source = fmt::format("the walker records rank {} sent", from);
  std::string records;
  WalkerArrays chunk;
  for (std::int64_t lo = begin; lo < end; lo += walkers_per_chunk(plan)) {
    const std::int64_t hi = std::min(end, lo + walkers_per_chunk(plan));
    records.resize(static_cast<std::size_t>(
        (hi - lo) * walker_record_bytes(plan.dim, plan.optimizer_state_width())));
    comm.receive_from(from, records.data(), records.size());
    decode_walker_records(plan, records.data(), records.size(), lo, chunk, source);
    store->write(chunk, lo, hi);
  }
  store->sync();
  return open_walker_file(plan, path.string(), begin, end);
}

/// Runs this process's parts, gathers how every process ended and brings the parts' results to
/// rank 0 as messages (part_messages.hpp), which writes RUN's results (all complete) or partial
/// results (stopped). Each process reads only its own parts' directories.
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
  int stopped_by = 0;
  if (comm.rank() == 0) {
    for (const int s : statuses) {
      if (s != 0 && stopped_by == 0) stopped_by = s - 128;
    }
    result.progress = runner.combined();
  }
  stopped_by = std::atoi(comm.broadcast(std::to_string(stopped_by), 0).c_str());

  // A stopped job's partial results come from the parts' checkpoints (which stay for the resume).
  // Reading them (batch arrays included) must not outlast the launcher's grace time before
  // SIGKILL (Slurm: 30 s): above kPartialResultsReadLimit in all, only summary.json is written.
  std::vector<std::uint64_t> checkpoint_bytes{0};
  if (stopped_by != 0) {
    for (const std::int64_t k : runner.parts()) {
      std::error_code missing;
      const auto size =
          fs::file_size(part_directory(run, {k, parts}) / kCheckpointFileName, missing);
      if (!missing) checkpoint_bytes[0] += size;
    }
    comm.reduce_sum(checkpoint_bytes);
  }
  const bool read_parts =
      comm.broadcast(stopped_by == 0 || checkpoint_bytes[0] <= kPartialResultsReadLimit ? "1" : "0",
                     0) == "1";
  record.wall_seconds = wall_before + seconds_since(start);
  record.provenance["parallel"] = {{"parts", parts}, {"processes", comm.size()}};
  if (stopped_by != 0) {
    // The parts that have a directory (started, stopped or finished): a resume refuses to start
    // one of them afresh when its directory is gone (a node's parts not copied back), which
    // would silently recompute it.
    std::vector<std::uint64_t> started(static_cast<std::size_t>(parts), 0);
    for (const std::int64_t k : runner.parts()) {
      std::error_code missing;
      started[static_cast<std::size_t>(k)] =
          fs::exists(part_directory(run, {k, parts}) / "summary.json", missing) ? 1 : 0;
    }
    comm.reduce_sum(started);
    Json started_parts = Json::array();
    for (std::int64_t k = 0; k < parts; ++k) {
      if (started[static_cast<std::size_t>(k)] != 0) started_parts.push_back(k);
    }
    record.provenance["parallel"]["parts_started"] = started_parts;
  }

  std::string outcome_text;  // rank 0 -> every process: "exit code signal"
  if (!read_parts) {
    if (comm.rank() == 0) {
      std::fprintf(stderr,
                   "sgdwalk: the parts' checkpoints hold %.1f GiB: no partial results.h5 "
                   "(reading them could outlast the time before SIGKILL); they are safe, "
                   "and resume continues from them\n",
                   static_cast<double>(checkpoint_bytes[0]) / (1 << 30));
      try {
        RunOutcome summary_only;
        summary_only.progress = result.progress;
        summary_only.backend_name = options.backend_name;
        write_run_start(plan, summary_only, record, run.string());
        outcome_text = fmt::format("{} {}", 128 + stopped_by, stopped_by);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "sgdwalk: rank 0 (%s): error: %s\n", comm.host().c_str(),
                     error.what());
        outcome_text = fmt::format("{} 0", kJobRuntimeError);
      }
    }
  } else {
    // Each process reads its parts one at a time, moves their integer counts out and encodes the
    // rest (its memory: one part and the compact message); a part that cannot be read fails the
    // job (with its rank and the reason) before any message.
    std::vector<PartContribution> mine;  // positions only, for the walker records
    std::string message;
    JobCounts counts(plan);
    const auto read_start = Clock::now();
    if (const auto code = agree(comm, [&] {
          for (const std::int64_t k : runner.parts()) {
            const PartId part{k, parts};
            PartContribution c = load_part(plan, part, part_directory(run, part).string());
            take_counts(plan, c.data, counts);
            encode_part(plan, c, message);
            c.data = RunData{};
            mine.push_back(std::move(c));
          }
        })) {
      return JobResult{*code, 0, std::nullopt, {}};
    }
    const auto messages_start = Clock::now();
    // From here on a process that fails ends the job (MPI_Abort): the others may be waiting for
    // its messages. results.h5 is written last (under a temporary name, then renamed).
    try {
      comm.reduce_sum(counts.sums);
      comm.reduce_min(counts.minima);
      const std::vector<std::string> messages = comm.gather_bytes(message);
      if (comm.rank() != 0) {
        runner.maybe_fail_sending();
        if (plan.per_walker_output) {
          for (const auto& c : mine) send_walkers(comm, plan, run, c);
        }
      } else {
        // Every part's record, by part index; the walker records arrive rank by rank, part by
        // part, in the order the ranks send them. Rank 0's own parts keep their walker files.
        std::vector<PartRecord> records(static_cast<std::size_t>(parts));
        std::vector<bool> present(static_cast<std::size_t>(parts), false);
        std::uint64_t gathered_bytes = 0, walker_bytes = 0;
        for (int r = 0; r < comm.size(); ++r) {
          gathered_bytes += messages[static_cast<std::size_t>(r)].size();
          for (PartRecord& record : index_parts(plan, messages[static_cast<std::size_t>(r)], r)) {
            PartContribution& c = record.header;
            const auto k = static_cast<std::size_t>(c.part.index);
            if (c.part.count != parts || c.part.index % comm.size() != r || present[k]) {
              throw std::runtime_error(
                  fmt::format("rank {} sent part {}, not one of its parts", r, to_string(c.part)));
            }
            present[k] = true;
            if (plan.per_walker_output && r == 0) {
              c.walkers = mine[k / static_cast<std::size_t>(comm.size())].walkers;
            } else if (plan.per_walker_output) {
              c.walkers = receive_walkers(comm, plan, run, c, r);
              walker_bytes += static_cast<std::uint64_t>(
                  (c.progress.walker_begin - c.progress.part_begin) *
                  walker_record_bytes(plan.dim, plan.optimizer_state_width()));
            }
            records[k] = std::move(record);
          }
        }
        if (std::find(present.begin(), present.end(), false) != present.end()) {
          throw std::runtime_error("a part is missing from the processes' results");
        }
        const auto combine_start = Clock::now();
        MergedRun merged = combine_parts(
            plan, parts,
            [&](std::int64_t k) { return decode_part(plan, records[static_cast<std::size_t>(k)]); },
            [&](RunData& data) { put_counts(plan, counts, data); });
        // How the results came to rank 0 (bench/RESULTS.md, "MPI jobs"): the seconds of each
        // phase as rank 0 saw them, and the bytes of each kind of message.
        record.provenance["parallel"]["results"] = {
            {"read_parts_seconds",
             std::chrono::duration<double>(messages_start - read_start).count()},
            {"messages_seconds",
             std::chrono::duration<double>(combine_start - messages_start).count()},
            {"combine_seconds", seconds_since(combine_start)},
            {"reduced_bytes_per_process", (counts.sums.size() + counts.minima.size()) * 8},
            {"gathered_bytes", gathered_bytes},
            {"walker_record_bytes_received", walker_bytes}};
        if (stopped_by == 0) {
          // The processes ran at once: the job's simulation time is its slowest part's, so that
          // summary.json's walker-steps/s is the job's rate (a merge of shards sums them).
          double slowest = 0;
          for (const auto& record : records) {
            slowest = std::max(slowest, record.header.progress.simulate_seconds);
          }
          merged.record = record;
          merged.outcome.progress.simulate_seconds = slowest;
          merged.outcome.backend_description = fmt::format(
              "{} process(es), {} part(s): {}", comm.size(), parts, merged.outcome.backend_name);
          try {
            write_run_outputs(merged.plan, merged.outcome, merged.record, run.string());
          } catch (const std::exception& error) {
            // Every part's tallies stay in RUN/parts/: nothing computed is lost.
            throw std::runtime_error(fmt::format(
                "{}; every part's finished tallies are kept in {}: once the cause is fixed (disk "
                "space, a file in the way), `mpirun -np M sgdwalk resume {}` writes the outputs "
                "without computing again",
                error.what(), (run / kPartsDirectory).string(), run.string()));
          }
          result.progress = merged.outcome.progress;
          result.merged = std::move(merged);
          outcome_text = "0 0";
        } else {
          // Partial results, as a stopped single run writes them.
          merged.outcome.backend_name = options.backend_name;
          merged.outcome.backend_description =
              fmt::format("{} process(es), {} part(s)", comm.size(), parts);
          write_run_outputs(plan, merged.outcome, record, run.string());
          result.progress.walker_steps_done = merged.outcome.progress.walker_steps_done;
          result.progress.walker_steps_total = merged.outcome.progress.walker_steps_total;
          outcome_text = fmt::format("{} {}", 128 + stopped_by, stopped_by);
        }
        std::error_code ignored;
        fs::remove_all(run / kPartsDirectory / "received", ignored);
      }
    } catch (const std::exception& error) {
      fail_job(comm, error.what());
    }
  }
  outcome_text = comm.broadcast(outcome_text, 0);
  std::istringstream(outcome_text) >> result.exit_code >> result.stop_signal;
  if (result.exit_code == 0 && result.stop_signal == 0) {
    // Complete: every process removes its parts' working files (on its own file system), then
    // rank 0 the parts directory.
    std::error_code ignored;
    for (const std::int64_t k : runner.parts()) {
      fs::remove_all(part_directory(run, {k, parts}), ignored);
    }
    comm.first_failure(true);  // every process has removed its parts
    if (comm.rank() == 0) {
      fs::remove_all(run / kPartsDirectory, ignored);
    } else {
      fs::remove(run / kPartsDirectory, ignored);  // only when empty (not shared with rank 0)
    }
  }
  return result;
}

}  // namespace

std::unique_ptr<JobComm> make_solo_comm() {
  return std::make_unique<SoloComm>();
}

std::string launcher_stop_notice(const std::function<const char*(const char*)>& environment) {
  // ORTE sets this in every process it starts; srun's (PMIx) and Open MPI 5's processes lack it.
  if (environment("OMPI_MCA_orte_hnp_uri") == nullptr) return {};
  long delay = 1;  // Open MPI 4's default
  if (const char* value = environment("OMPI_MCA_odls_base_sigkill_timeout")) {
    char* end = nullptr;
    delay = std::strtol(value, &end, 10);
    if (end == value) return {};  // not a number: mpirun says so itself
  }
  constexpr long kEnoughSeconds = 10;
  if (delay >= kEnoughSeconds) return {};
  return fmt::format(
      "note: this mpirun passes a SIGTERM (or Ctrl-C) on to the processes {} s after it gets it "
      "and kills them {} s later, often before a stop has written its checkpoints (a big run's "
      "take seconds); to stop such a job cleanly, start it with `mpirun --mca "
      "odls_base_sigkill_timeout 50` (SIGTERM reaches the processes 50 s after mpirun, SIGKILL "
      "50 s after that) or signal the processes themselves (README \"MPI\"; a delay set in an "
      "MCA parameter file is not seen here)",
      delay, delay);
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
        remove_earlier_run_files(run.string());
        fs::remove_all(run / kPartsDirectory, error);
        RunOutcome start;
        start.backend_name = options.backend_name;
        start.backend_description = fmt::format("{} process(es)", comm.size());
        start.progress.update_counters(plan);
        write_run_start(plan, start, record, out_dir);
      })) {
    return JobResult{*code, 0, std::nullopt, {}};
  }
  if (const auto code = check_shared_directory(comm, run, false, options.quiet))
    return JobResult{*code, 0, std::nullopt, {}};
  // A process that does not share RUN with rank 0 may hold stale parts of an earlier run there.
  if (const auto code = agree(comm, [&] {
        for (std::int64_t k = comm.rank(); k < parts; k += comm.size()) {
          fs::remove_all(part_directory(run, {k, parts}));
        }
      })) {
    return JobResult{*code, 0, std::nullopt, {}};
  }
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
        // A part the stopped job had started must still be there (older runs do not say).
        if (summary["parallel"].contains("parts_started")) {
          for (const auto& entry : summary["parallel"]["parts_started"]) {
            const auto k = entry.get<std::int64_t>();
            const fs::path dir = part_directory(directory, {k, parts});
            std::error_code missing;
            if (k >= 0 && k < parts && !fs::exists(dir / "summary.json", missing)) {
              throw RunDirectoryError(
                  fmt::format("{}: part {} of the stopped run is missing (the run had started "
                              "it; summary.json says so): resuming would compute it again "
                              "from the start. Copy each node's {}/parts/ into this {}/parts/ "
                              "first (see README, \"Running on a cluster\")",
                              dir.string(), to_string(PartId{k, parts}), directory, directory),
                  true);
            }
          }
        }
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
  if (const auto code = check_shared_directory(comm, directory, true, options.quiet))
    return JobResult{*code, 0, std::nullopt, {}};
  RunRecord record = point.record;
  record.provenance = Json::object();
  return finish_parts(comm, point.plan, record, directory, parts, options, wall_before);
}

}  // namespace sgdwalk
