#include "cluster/mpi_comm.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sgdwalk {

namespace {

// Message tags of the job protocol (parallel_job.hpp).
constexpr int kStopTag = 101;      // int: the signal
constexpr int kProgressTag = 102;  // 5 doubles: RankProgress
constexpr int kStatusTag = 103;    // int: how a process's parts ended
constexpr int kBytesTag = 104;     // bytes to rank 0 (per-walker records), in pieces

/// Largest piece of one message or collective (MPI counts are int).
constexpr std::size_t kPieceBytes = std::size_t{1} << 28;

constexpr int kProgressValues = 5;

void check(int code, const char* call) {
  if (code != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw std::runtime_error(std::string(call) + ": " + text);
  }
}

/// The index of this process on its node: the launcher's (Open MPI, Slurm), else from MPI.
int node_local_rank(MPI_Comm world, int rank) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
    if (const char* value = std::getenv(name)) return std::atoi(value);
  }
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local = 0;
  MPI_Comm_rank(node, &local);
  MPI_Comm_free(&node);
  return local;
}

class MpiComm final : public JobComm {
 public:
  MpiComm(int* argc, char*** argv) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    local_rank_ = node_local_rank(comm_, rank_);
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(name, &length);
    host_.assign(name, static_cast<std::size_t>(length));
    inbox_.resize(static_cast<std::size_t>(size_));
  }
  ~MpiComm() override {
    // Messages nobody will read any more (a late progress or stop) are drained, so that
    // MPI_Finalize has nothing pending.
    drain_stops();
    drain_progress();
    if (progress_request_ != MPI_REQUEST_NULL) MPI_Request_free(&progress_request_);
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string host() const override { return host_; }

  int first_failure(bool ok) override {
    int mine = ok ? INT_MAX : rank_;
    int lowest = INT_MAX;
    check(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce");
    return lowest == INT_MAX ? -1 : lowest;
  }

  std::string broadcast(const std::string& text, int root) override {
    unsigned long long length = text.size();
    check(MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, root, comm_), "MPI_Bcast");
    std::string out = rank_ == root ? text : std::string(length, '\0');
    // Counts are int: the texts here are short (messages, tokens).
    if (length > 0) {
      check(MPI_Bcast(out.data(), static_cast<int>(length), MPI_CHAR, root, comm_), "MPI_Bcast");
    }
    return out;
  }

  void send_stop(int signal) override {
    stop_value_ = signal;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      MPI_Request request;
      MPI_Isend(&stop_value_, 1, MPI_INT, r, kStopTag, comm_, &request);
      MPI_Request_free(&request);  // small and eager: nobody waits for it
    }
  }

  int received_stop() override {
    drain_stops();
    return stop_received_;
  }

  void send_progress(const RankProgress& progress) override {
    if (progress_request_ != MPI_REQUEST_NULL) {
      int done = 0;
      MPI_Test(&progress_request_, &done, MPI_STATUS_IGNORE);
      if (!done) return;  // rank 0 has not taken the previous one yet
    }
    progress_out_[0] = progress.walker_steps_done;
    progress_out_[1] = progress.walker_steps_total;
    progress_out_[2] = progress.rate;
    progress_out_[3] = progress.variants_done;
    progress_out_[4] = progress.variants_total;
    MPI_Isend(progress_out_, kProgressValues, MPI_DOUBLE, 0, kProgressTag, comm_,
              &progress_request_);
  }

  void receive_progress(std::vector<RankProgress>& latest) override {
    drain_progress();
    for (std::size_t r = 1; r < inbox_.size() && r < latest.size(); ++r) {
      if (has_progress_[r]) latest[r] = inbox_[r];
    }
  }

  std::vector<int> gather_status(int status, const std::function<void()>& waiting) override {
    if (rank_ != 0) {
      // The last progress message first (rank 0 drains it while it waits for the statuses).
      if (progress_request_ != MPI_REQUEST_NULL) MPI_Wait(&progress_request_, MPI_STATUS_IGNORE);
      check(MPI_Send(&status, 1, MPI_INT, 0, kStatusTag, comm_), "MPI_Send");
      return {};
    }
    std::vector<int> statuses(static_cast<std::size_t>(size_), 0);
    statuses[0] = status;
    std::vector<MPI_Request> requests;
    for (int r = 1; r < size_; ++r) {
      requests.emplace_back();
      MPI_Irecv(&statuses[static_cast<std::size_t>(r)], 1, MPI_INT, r, kStatusTag, comm_,
                &requests.back());
    }
    for (;;) {
      int all = 0;
      MPI_Testall(static_cast<int>(requests.size()), requests.data(), &all, MPI_STATUSES_IGNORE);
      drain_progress();
      drain_stops();
      if (all) break;
      if (waiting) waiting();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return statuses;
  }

  void reduce_sum(std::vector<std::uint64_t>& values) override { reduce(values, MPI_SUM); }
  void reduce_min(std::vector<std::uint64_t>& values) override { reduce(values, MPI_MIN); }

  std::vector<std::string> gather_bytes(const std::string& bytes) override {
    // Every size on every rank, then rounds of MPI_Gatherv of at most kPieceBytes in all (int
    // counts and displacements), each rank sending the next piece of its bytes.
    const std::uint64_t mine = bytes.size();
    std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, comm_),
          "MPI_Allgather");
    std::vector<std::string> out;
    if (rank_ == 0) {
      out.resize(sizes.size());
      for (std::size_t r = 0; r < sizes.size(); ++r) out[r].resize(sizes[r]);
    }
    const std::uint64_t per_rank =
        std::max<std::uint64_t>(1, kPieceBytes / static_cast<std::uint64_t>(size_));
    std::vector<std::uint64_t> sent(sizes.size(), 0);
    std::vector<int> counts(sizes.size()), displacements(sizes.size());
    std::string buffer;
    for (;;) {
      bool more = false;
      int total = 0;
      for (std::size_t r = 0; r < sizes.size(); ++r) {
        counts[r] = static_cast<int>(std::min(per_rank, sizes[r] - sent[r]));
        displacements[r] = total;
        total += counts[r];
        more = more || counts[r] > 0;
      }
      if (!more) break;
      const auto me = static_cast<std::size_t>(rank_);
      if (rank_ == 0) buffer.resize(static_cast<std::size_t>(total));
      check(MPI_Gatherv(bytes.data() + sent[me], counts[me], MPI_BYTE, buffer.data(), counts.data(),
                        displacements.data(), MPI_BYTE, 0, comm_),
            "MPI_Gatherv");
      for (std::size_t r = 0; r < sizes.size(); ++r) {
        if (rank_ == 0 && counts[r] > 0) {
          std::copy_n(buffer.data() + displacements[r], counts[r], out[r].data() + sent[r]);
        }
        sent[r] += static_cast<std::uint64_t>(counts[r]);
      }
    }
    return out;
  }

  void send_to_root(const char* data, std::size_t size) override {
    for (std::size_t at = 0; at < size; at += kPieceBytes) {
      const auto piece = static_cast<int>(std::min(kPieceBytes, size - at));
      check(MPI_Send(data + at, piece, MPI_BYTE, 0, kBytesTag, comm_), "MPI_Send");
    }
  }

  void receive_from(int from, char* data, std::size_t size) override {
    for (std::size_t at = 0; at < size; at += kPieceBytes) {
      const auto piece = static_cast<int>(std::min(kPieceBytes, size - at));
      check(MPI_Recv(data + at, piece, MPI_BYTE, from, kBytesTag, comm_, MPI_STATUS_IGNORE),
            "MPI_Recv");
    }
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case it does
  }

 private:
  void reduce(std::vector<std::uint64_t>& values, MPI_Op op) {
    // In pieces (int counts); in place on rank 0.
    const std::size_t piece_values = kPieceBytes / sizeof(std::uint64_t);
    for (std::size_t at = 0; at < values.size(); at += piece_values) {
      const auto count = static_cast<int>(std::min(piece_values, values.size() - at));
      void* send = rank_ == 0 ? MPI_IN_PLACE : values.data() + at;
      check(MPI_Reduce(send, values.data() + at, count, MPI_UINT64_T, op, 0, comm_), "MPI_Reduce");
    }
  }

  void drain_stops() {
    for (;;) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kStopTag, comm_, &flag, &status);
      if (!flag) return;
      int signal = 0;
      MPI_Recv(&signal, 1, MPI_INT, status.MPI_SOURCE, kStopTag, comm_, MPI_STATUS_IGNORE);
      if (stop_received_ == 0) stop_received_ = signal;
    }
  }

  void drain_progress() {
    if (rank_ != 0) return;
    has_progress_.resize(static_cast<std::size_t>(size_), false);
    for (;;) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kProgressTag, comm_, &flag, &status);
      if (!flag) return;
      double values[kProgressValues] = {};
      MPI_Recv(values, kProgressValues, MPI_DOUBLE, status.MPI_SOURCE, kProgressTag, comm_,
               MPI_STATUS_IGNORE);
      const auto r = static_cast<std::size_t>(status.MPI_SOURCE);
      inbox_[r] = {values[0], values[1], values[2], values[3], values[4]};
      has_progress_[r] = true;
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string host_;
  int stop_value_ = 0;
  int stop_received_ = 0;
  double progress_out_[kProgressValues] = {};
  MPI_Request progress_request_ = MPI_REQUEST_NULL;
  std::vector<RankProgress> inbox_;
  std::vector<bool> has_progress_;
};

}  // namespace

std::unique_ptr<JobComm> make_mpi_comm(int* argc, char*** argv) {
  return std::make_unique<MpiComm>(argc, argv);
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, static_cast<std::size_t>(length));
  const auto newline = version.find_first_of("\r\n,");
  if (newline != std::string::npos) version.resize(newline);
  return version;
}

}  // namespace sgdwalk
