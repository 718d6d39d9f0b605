#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures build/ (Release, Ninja), builds just what the demonstration runs, and runs it: the
# producer/consumer example, then the processes-vs-threads summary of benchmarks/pool/ (bench_pool:
# about 25 s on 2 cores; one table, also written to build/benchmarks/pool/bench_pool.csv).
# Where the example is missing it runs process_parallel_tasks instead; without bench_pool (a
# build with MP_BUILD_BENCHMARKS off) there is no summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
mkdir -p build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build/configure.log 2>&1 ||
  { cat build/configure.log; exit 1; }

targets=$(cmake --build build --target help)
has_target() { grep -q "^$1:" <<<"$targets"; }

# build_and_run <target>: builds one executable target and runs it.
build_and_run() {
  cmake --build build --target "$1"
  local exe
  exe=$(find build -type f -perm -u+x -name "$1" -print -quit)
  echo "== $exe"
  "$exe"
}

if has_target producer_consumer_condition; then
  build_and_run producer_consumer_condition
else
  build_and_run process_parallel_tasks
fi
if has_target bench_pool; then
  echo
  echo "== processes vs threads: mp::Pool, mp::dummy::Pool and the executors against raw code and Python"
  build_and_run bench_pool
fi
