# SPDX-License-Identifier: MIT
"""Python's side of the process-start benchmark: start()+join() latency of a no-op Process.

Usage: python3 process_start.py [N] [method ...]

For each start method (default: fork, spawn, forkserver) it runs a few untimed warm-up starts
(for forkserver these start the server), then N timed ones, and prints one line per method:

    python <method> <samples> <median_us> <p90_us>

Lines starting with '#' are comments. bench_process_start (main.cpp) runs this and parses the lines.
"""
import multiprocessing
import sys
import time


def noop():
    pass


def percentile(sorted_samples, fraction):
    """Nearest-rank percentile, the same definition as main.cpp's."""
    rank = max(1, -(-len(sorted_samples) * fraction // 1))  # ceil(n * fraction), at least 1
    return sorted_samples[int(rank) - 1]


def warmup_count(n):
    return min(20, max(1, n // 10))


def measure(method, n):
    ctx = multiprocessing.get_context(method)
    samples = []
    for i in range(warmup_count(n) + n):
        begin = time.perf_counter_ns()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        elapsed_us = (time.perf_counter_ns() - begin) / 1000.0
        if p.exitcode != 0:
            raise RuntimeError(f"{method}: child exited with {p.exitcode}")
        if i >= warmup_count(n):
            samples.append(elapsed_us)
    samples.sort()
    return samples


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    methods = sys.argv[2:] or ["fork", "spawn", "forkserver"]
    print(f"# python {sys.version.split()[0]}, {n} samples per method")
    for method in methods:
        samples = measure(method, n)
        print(f"python {method} {len(samples)} {percentile(samples, 0.5):.1f} "
              f"{percentile(samples, 0.9):.1f}", flush=True)


if __name__ == "__main__":
    main()
