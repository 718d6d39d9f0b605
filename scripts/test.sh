#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs the test suite four times:
#   build/       warnings as errors (-DMP_WERROR=ON), every test; tests labelled `slow` only when
#                CI=true or MP_SLOW=1
#   build-clang/ the same with clang++, without the `slow`, `consumers` and `benchmark` labels
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, without the `slow`, `consumers`
#                and `compile_fail` labels (those do not exercise the library's run time)
#   build-tsan/  ThreadSanitizer, the thread-side test cases only (Catch tag [thread])
# Ends with "N passed, N failed" over all runs; exits non-zero if any build or test failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

bash scripts/setup.sh || exit 1

passed=0
failed=0
broken=()  # builds that did not configure or compile
failures=()  # "<build dir>: <test name>" for every failed test, repeated in the summary

# run_suite <build dir> <ctest label-exclude regex or ""> <cmake args...>
run_suite() {
  local dir=$1 exclude=$2
  shift 2
  echo "== $dir: configure and build"
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    broken+=("$dir (configure)")
    return
  fi
  if ! cmake --build "$dir"; then
    broken+=("$dir (build)")
    return
  fi
  echo "== $dir: ctest${exclude:+ (excluding labels: $exclude)}"
  local log="$dir/ctest.log"
  ctest --test-dir "$dir" --output-on-failure -j2 ${exclude:+-LE "$exclude"} 2>&1 | tee "$log"
  # "97% tests passed, 1 tests failed out of 33"; no such line when no test was selected.
  local summary
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1]))
    passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  elif ! grep -q 'No tests were found' "$log"; then
    broken+=("$dir (ctest did not report a summary)")
  fi
  # ctest lists them as "  17 - name (Failed)" under "The following tests FAILED:".
  local line
  while IFS= read -r line; do
    failures+=("$dir: $line")
  done < <(sed -n '/^The following tests FAILED:/,/^$/{/^[[:space:]]*[0-9]* - /{s/^[[:space:]]*//;p}}' "$log")
}

if [[ ${CI:-} == true || ${MP_SLOW:-} == 1 ]]; then
  main_exclude=""
else
  main_exclude="slow"
fi
mkdir -p build build-clang build-asan build-tsan  # for the configure logs

run_suite build "$main_exclude" -DCMAKE_BUILD_TYPE=Release -DMP_WERROR=ON

# The second supported compiler: the library, its tests and the compile-fail messages under clang.
run_suite build-clang "slow|consumers|benchmark" -DCMAKE_BUILD_TYPE=Release -DMP_WERROR=ON \
  -DCMAKE_CXX_COMPILER=clang++ -DMP_BUILD_BENCHMARKS=OFF

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
run_suite build-asan "slow|consumers|compile_fail" -DCMAKE_BUILD_TYPE=Debug \
  -DMP_SANITIZE="address;undefined" -DMP_BUILD_BENCHMARKS=OFF

# ThreadSanitizer on the thread-side cases (Catch tag [thread]; tests/CMakeLists.txt registers only
# those under MP_SANITIZE=thread, since TSan does not support fork() in a multi-threaded program).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}
run_suite build-tsan "slow|consumers|compile_fail|spawn|example|benchmark" -DCMAKE_BUILD_TYPE=Debug \
  -DMP_SANITIZE=thread -DMP_BUILD_BENCHMARKS=OFF -DMP_BUILD_EXAMPLES=OFF

# Repeated here so that the end of a long log names what failed; the output of each failed
# test is in that build's ctest.log (ctest --output-on-failure).
for what in "${failures[@]}"; do
  echo "FAILED TEST: $what"
done
for what in "${broken[@]}"; do
  echo "FAILED: $what"
done
echo "$passed passed, $failed failed"
((failed == 0 && ${#broken[@]} == 0))
