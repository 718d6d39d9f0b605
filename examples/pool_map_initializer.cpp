// SPDX-License-Identifier: MIT
// C++ twin of seed 002's Pool with an initializer:
//
//   def do_calculation(data):
//       return data * 2
//   def start_process():
//       print("starting", multiprocessing.current_process().name)
//   if __name__ == '__main__':
//       inputs = list(range(10))
//       print("Input :", inputs)
//       builtin_outputs = list(map(do_calculation, inputs))
//       print("Built-in:", builtin_outputs)
//       pool_size = multiprocessing.cpu_count()*2
//       pool = multiprocessing.Pool(
//           processes=pool_size,
//           initializer=start_process,
//       )
//       pool_outputs = pool.map(do_calculation, inputs)
//       pool.close()
//       pool.join()
//       print("Pool:", pool_outputs)
//
// and of its closing remark, that maxtasksperchild makes the pool replace a worker after that many
// tasks (to free what a long-running worker accumulates):
//
//       pool = multiprocessing.Pool(processes=2, initializer=start_process, maxtasksperchild=2)
//       pids = pool.map(worker_pid, inputs, chunksize=1)
//       ...
//       print(len(inputs), "tasks ran in", len(set(pids)), "worker processes")
//
// Every worker runs the initializer once when it starts, so "starting ...PoolWorker-N" is printed
// once per worker — by the replacements too. With two tasks per worker, ten tasks need at least
// five workers. Workers are named as in Python: ForkPoolWorker-N, SpawnPoolWorker-N or
// ForkServerPoolWorker-N. Run it with "spawn" or "forkserver" as the first argument to use that
// start method.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

int do_calculation(int data) { return data * 2; }

void start_process() { std::cout << "starting " << mp::current_process().name() << std::endl; }

int worker_pid(int /*data*/) { return static_cast<int>(::getpid()); }

// Python's repr of a list of ints: [0, 2, 4].
std::string repr(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");

  std::vector<int> inputs(10);  // list(range(10))
  std::iota(inputs.begin(), inputs.end(), 0);
  std::cout << "Input : " << repr(inputs) << std::endl;
  std::vector<int> builtin_outputs;
  std::ranges::transform(inputs, std::back_inserter(builtin_outputs), do_calculation);
  std::cout << "Built-in: " << repr(builtin_outputs) << std::endl;

  const int pool_size = mp::cpu_count() * 2;
  auto pool = ctx.Pool({.processes = pool_size, .initializer = start_process});
  const std::vector<int> pool_outputs = pool.map(do_calculation, inputs);
  pool.close();
  pool.join();
  std::cout << "Pool: " << repr(pool_outputs) << std::endl;

  auto short_lived =
      ctx.Pool({.processes = 2, .initializer = start_process, .maxtasksperchild = 2});
  const std::vector<int> pids = short_lived.map(worker_pid, inputs, 1);
  short_lived.close();
  short_lived.join();
  const std::set<int> workers(pids.begin(), pids.end());
  std::cout << inputs.size() << " tasks ran in " << workers.size() << " worker processes"
            << std::endl;
}
