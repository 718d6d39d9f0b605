#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures build/ (Release, Ninja), builds just what the demonstration runs, and runs it: the
# producer/consumer example, then the processes-vs-threads summary of benchmarks/pool/.
# Until those exist it runs what does: process_parallel_tasks instead of the example, and no
# summary without bench_pool.
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
  build_and_run bench_pool
fi
