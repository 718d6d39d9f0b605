#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what building and testing multiprocessing-cpp needs, on Debian or Ubuntu.
# Idempotent: installs only what is missing and runs `apt-get update` only then.
# Anywhere else it prints one line saying what to install and exits 1.
set -euo pipefail

packages=(
  build-essential cmake ninja-build   # compiler and build tools
  clang                               # the second supported compiler (clang 14 on Debian 12)
  libboost-dev libfmt-dev catch2      # libraries (Catch2 2.13 for the tests)
  libssl-dev python3                  # python3: the benchmarks compare with Python's multiprocessing
  openmpi-bin libopenmpi-dev          # the MPI executor
  python3-mpi4py                      # its benchmark compares with mpi4py.futures
)

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: no apt-get here: install a C++20 compiler (g++ >= 12 or clang >= 14), CMake >= 3.21, Ninja, Boost >= 1.74 headers, fmt, Catch2 2.13, OpenSSL headers, Python 3 and Open MPI, then run the build yourself" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup.sh: all ${#packages[@]} packages present"
  exit 0
fi

if ((EUID == 0)); then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "setup.sh: not root and no sudo: run 'apt-get install -y ${missing[*]}' as root" >&2
  exit 1
fi

log="$(mktemp "${TMPDIR:-/tmp}/mp-setup.XXXXXX.log")"
if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 &&
   "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$log" 2>&1; then
  rm -f "$log"
  echo "setup.sh: installed ${missing[*]}"
else
  tail -n 20 "$log" >&2
  echo "setup.sh: apt-get failed installing ${missing[*]} (full log: $log)" >&2
  exit 1
fi
