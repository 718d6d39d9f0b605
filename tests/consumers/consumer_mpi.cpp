// SPDX-License-Identifier: MIT
// A user's MPI program, built by each consumer project when the package has multiprocessing::mpi:
// compiling and linking it proves that the target brings MPI's headers and libraries along. Run
// with "serve" (under mpirun, or alone), it also maps a function over MPI workers.
#include <cstdio>
#include <string_view>

#include <multiprocessing.hpp>
#include <multiprocessing/mpi.hpp>

namespace mp = multiprocessing;

namespace {
int twice(int x) { return 2 * x; }
}  // namespace

int main(int argc, char* argv[]) {
  mp::freeze_support();
  if (argc < 2 || std::string_view(argv[1]) != "serve") {
    std::puts("consumer_mpi: built");
    return 0;
  }
  auto world = mp::mpi::serve_unless_root(argc, argv);
  mp::mpi::MPIPoolExecutor ex(1);
  const int got = ex.submit(twice, 21).result();
  std::printf("consumer_mpi: %d\n", got);
  return got == 42 ? 0 : 1;
}
