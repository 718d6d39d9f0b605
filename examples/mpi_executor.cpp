// SPDX-License-Identifier: MIT
// One program, two engines: count the primes below 2 000 000 in 20 blocks with an executor, on
// worker processes of this machine or on MPI ranks. The switch is the executor's type; run()
// is the same code for both (mpi4py.futures' promise, in C++):
//
//   from mpi4py.futures import MPIPoolExecutor      # or: from concurrent.futures import
//   def count_primes(lo, hi): ...                   #         ProcessPoolExecutor
//   if __name__ == "__main__":
//       with MPIPoolExecutor() as ex:
//           fs = [ex.submit(count_primes, lo, lo + BLOCK) for lo in range(0, N, BLOCK)]
//           for lo, f in zip(range(0, N, BLOCK), fs):
//               print(f"[{lo}, {lo + BLOCK}): {f.result()} primes")
//
//   ./mpi_executor local           worker processes of this machine (ProcessPoolExecutor)
//   mpirun -n 3 ./mpi_executor     rank 0 runs main, ranks 1 and 2 serve (MPIPoolExecutor)
//   ./mpi_executor                 alone: MPIPoolExecutor spawns 2 workers (MPI_Comm_spawn)
//
// All three print the same lines, then "primes below 2000000: 148933".
#include <cstdio>
#include <string_view>
#include <vector>

#include <multiprocessing.hpp>
#include <multiprocessing/mpi.hpp>

namespace mp = multiprocessing;

namespace {

constexpr int limit = 2'000'000;
constexpr int block = 100'000;

int count_primes(int lo, int hi) {
  int count = 0;
  for (int n = lo < 2 ? 2 : lo; n < hi; ++n) {
    bool prime = true;
    for (int d = 2; d * d <= n; ++d) {
      if (n % d == 0) {
        prime = false;
        break;
      }
    }
    count += prime ? 1 : 0;
  }
  return count;
}

template <class Executor>
void run(Executor& ex) {
  std::vector<mp::futures::Future<int>> fs;
  for (int lo = 0; lo < limit; lo += block) fs.push_back(ex.submit(count_primes, lo, lo + block));
  int total = 0;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    const int lo = static_cast<int>(i) * block;
    const int found = fs[i].result();
    std::printf("[%d, %d): %d primes\n", lo, lo + block, found);
    total += found;
  }
  std::printf("primes below %d: %d\n", limit, total);
}

}  // namespace

int main(int argc, char* argv[]) {
  mp::freeze_support();
  if (argc > 1 && std::string_view(argv[1]) == "local") {
    mp::futures::ProcessPoolExecutor ex(2);
    run(ex);
    return 0;
  }
  auto world = mp::mpi::serve_unless_root(argc, argv);  // ranks > 0 serve here and exit
  mp::mpi::MPIPoolExecutor ex({.max_workers = world.spmd() ? world.size() - 1 : 2});
  run(ex);
  return 0;
}
