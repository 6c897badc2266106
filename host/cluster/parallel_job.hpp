// Runs split over the processes of a job (MPI ranks: `mpirun -np N sgdwalk run`, `srun`). Each
// process advances parts of the walkers (parts.hpp) in part directories RUN/parts/K-of-N, exactly
// as `sgdwalk run --shard K/N` would; rank 0 prints the progress of all. When every part is done,
// the parts' results travel to rank 0 as messages (part_messages.hpp: integer counts reduced,
// floating-point partials gathered and combined in part order, per-walker records sent); rank 0
// writes RUN's summary.json and results.h5 (the single run's, bit for bit) and every process
// removes its parts. Only rank 0 needs RUN: a process that does not see it keeps its parts under
// the same path on its own file system.
//
// Stopping: a signal to any process stops every process at its next segment boundary (the signal
// is forwarded to the others); each writes its part's checkpoint and rank 0 the partial results.
// `sgdwalk resume RUN` then continues with any number of processes M, MPI or not: process j takes
// the parts K with K mod M = j (every process must see RUN then). A process that fails prints its
// rank and the reason and ends the whole job (MPI_Abort): no process waits for it, and no output
// is written half.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/plan.hpp"
#include "cluster/parts.hpp"
#include "run/driver.hpp"
#include "run/run_session.hpp"

namespace sgdwalk {

/// What a process tells rank 0 about its parts, for the combined progress line.
struct RankProgress {
  double walker_steps_done = 0;   ///< of the process's parts, over all sessions
  double walker_steps_total = 0;  ///< of the process's parts
  double rate = 0;                ///< walker-steps per second of simulation in this session
  double variants_done = 0;       ///< of the variants its parts hold walkers of
  double variants_total = 0;
};

/// How the processes of a job talk. host/cluster/mpi_comm.cpp implements it with MPI; SoloComm is
/// the job of one process (a build without MPI, or a resume without mpirun).
class JobComm {
 public:
  virtual ~JobComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// The process's index among those on its node (picks its GPU).
  virtual int local_rank() const = 0;
  /// The node's name, for messages.
  virtual std::string host() const = 0;
  /// Collective: the lowest rank that passed ok = false, or -1 when every rank passed true.
  virtual int first_failure(bool ok) = 0;
  /// Collective: `text` as `root` passed it, on every rank.
  virtual std::string broadcast(const std::string& text, int root) = 0;
  /// Asks every other process to stop at its next segment boundary; never blocks.
  virtual void send_stop(int signal) = 0;
  /// The signal another process asked to stop with, or 0; never blocks.
  virtual int received_stop() = 0;
  /// Not rank 0: sends this process's progress to rank 0 (skipped while the previous one is still
  /// in flight); never blocks.
  virtual void send_progress(const RankProgress& progress) = 0;
  /// Rank 0: updates latest[r] with the newest progress received from rank r; never blocks.
  virtual void receive_progress(std::vector<RankProgress>& latest) = 0;
  /// Collective: every process's `status` on rank 0 (empty elsewhere). While it waits, rank 0 calls
  /// `waiting` every ~50 ms (progress of the others).
  virtual std::vector<int> gather_status(int status, const std::function<void()>& waiting) = 0;
  /// Collective: the element-wise sum of every process's `values` (same length everywhere) on
  /// rank 0 (MPI_Reduce of MPI_UINT64_T: integer addition, exact in any order); unchanged
  /// elsewhere.
  virtual void reduce_sum(std::vector<std::uint64_t>& values) = 0;
  /// Collective: the element-wise minimum, on rank 0, as reduce_sum.
  virtual void reduce_min(std::vector<std::uint64_t>& values) = 0;
  /// Collective: every process's `bytes` on rank 0, indexed by rank (MPI_Gatherv); empty
  /// elsewhere.
  virtual std::vector<std::string> gather_bytes(const std::string& bytes) = 0;
  /// Not rank 0: sends `size` bytes to rank 0 (blocks until rank 0 takes them).
  virtual void send_to_root(const char* data, std::size_t size) = 0;
  /// Rank 0: receives `size` bytes that rank `from` sends with send_to_root.
  virtual void receive_from(int from, char* data, std::size_t size) = 0;
  /// Ends every process of the job with `code`, at once (the caller said why).
  [[noreturn]] virtual void abort(int code) = 0;
};

/// The job of one process.
std::unique_ptr<JobComm> make_solo_comm();

/// How the CLI wants a job run.
struct JobOptions {
  std::string backend_name = "auto";
  int threads = 0;
  bool quiet = false;
  std::int64_t batch_walkers = 0;
  std::int64_t segment_steps = 0;
  double checkpoint_every = 60;
  /// Set to a signal number by this process's signal handler.
  const std::atomic<int>* stop = nullptr;
  /// Rank 0: the combined progress of every process (walker-steps summed, the rate summed).
  std::function<void(const RunProgress&)> on_progress;
  /// Every process: called after each segment (the CLI's test delay).
  std::function<void()> after_segment;
};

/// How a job ended, on every process.
struct JobResult {
  int exit_code = 0;
  int stop_signal = 0;  ///< the signal that stopped it; 0 if it was not stopped
  /// Rank 0, when the run completed: the merged run (for the summary table).
  std::optional<MergedRun> merged;
  RunProgress progress;  ///< rank 0: combined progress at the end
};

/// Exit codes of a job that cannot start.
inline constexpr int kJobUsageError = 2;
inline constexpr int kJobRuntimeError = 1;

/// Collective: runs `step` on every process. If it throws anywhere, rank 0 prints the message of
/// the lowest failing rank (config, run directory and checkpoint errors as the CLI words them) and
/// every process gets that rank's exit code; nullopt when it succeeded everywhere. So a problem
/// seen by one process never leaves the others waiting.
std::optional<int> agree_on_every_process(JobComm& comm, const std::function<void()>& step);

/// `mpirun -np N sgdwalk run`: the plan split into comm.size() parts, rank r running part r into
/// `out_dir`/parts/r-of-N, then merged by rank 0. Collective. Problems before the start (the run
/// directory exists, is not shared by all processes) are printed by rank 0 and returned as an
/// exit code on every process; a failure during the run aborts the job.
JobResult run_job(JobComm& comm, const RunPlan& plan, RunRecord record, const std::string& out_dir,
                  bool force, const JobOptions& options);

/// What rank 0 says at the start of a job that Open MPI's mpirun (Open MPI 4: ORTE) started with a
/// short kill delay: that mpirun passes a SIGTERM (or Ctrl-C) on to the processes only after
/// `odls_base_sigkill_timeout` seconds (default 1) and sends SIGKILL as many seconds later, often
/// too soon for a stop to write its checkpoints (measured: README "MPI"). Empty otherwise (srun,
/// other launchers, a delay of 10 s or more). `environment` reads a variable (std::getenv).
std::string launcher_stop_notice(const std::function<const char*(const char*)>& environment);

/// Whether `directory` holds a run split into parts (made by run_job).
bool is_job_directory(const std::string& directory);

/// `sgdwalk resume RUN` of a job directory, with comm.size() processes (any number). Collective.
JobResult resume_job(JobComm& comm, const std::string& directory, const JobOptions& options);

}  // namespace sgdwalk
