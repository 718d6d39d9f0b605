#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the project (Release, Ninja, build/) and runs the main demonstration: the
# producer/consumer example, then the processes-vs-threads summary of benchmarks/pool/.
# Until those exist it runs what does: process_parallel_tasks instead of the example, and no
# summary without bench_pool.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
mkdir -p build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build/configure.log 2>&1 ||
  { cat build/configure.log; exit 1; }
cmake --build build

# the built executable called $1, if any
built() { find build -type f -perm -u+x -name "$1" -print -quit; }

example=$(built producer_consumer_condition)
example=${example:-$(built process_parallel_tasks)}
if [[ -z $example ]]; then
  echo "demo.sh: no demonstration program was built (examples/ is empty?)" >&2
  exit 1
fi
echo "== $example"
"$example"

bench=$(built bench_pool)
if [[ -n $bench ]]; then
  echo "== $bench"
  "$bench"
fi
