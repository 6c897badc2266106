// JobComm over MPI (built only with -DSGDWALK_MPI=AUTO/ON and an MPI library).
#pragma once

#include <memory>
#include <string>

#include "cluster/parallel_job.hpp"

namespace sgdwalk {

/// MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread calls MPI) and the job's
/// communicator; MPI_Finalize when destroyed.
std::unique_ptr<JobComm> make_mpi_comm(int* argc, char*** argv);

/// The MPI library's version line (MPI_Get_library_version), callable without MPI_Init.
std::string mpi_library_version();

}  // namespace sgdwalk
