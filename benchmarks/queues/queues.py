# SPDX-License-Identifier: MIT
"""Python's side of the queue benchmark (see queues.hpp for the workloads).

Usage: python3 queues.py COUNT_SMALL COUNT_1K COUNT_1M

Runs multiprocessing.Queue (fork) with the same stage as the C++ competitors: every child waits
at a barrier with the parent, whose clock starts there; consumers stop at an end marker (None)
and record when they got it. Prints one line per workload, read by bench_queues (main.cpp):
    python small_1x1_msgs_s <int messages per second, one producer, one consumer>
    python small_2x2_msgs_s <int messages per second, two producers, two consumers>
    python bw_1k_mb_s       <MB/s of 1 KiB bytes messages, one producer, one consumer>
    python bw_1m_mb_s       <MB/s of 1 MiB bytes messages, one producer, one consumer>
"""
import multiprocessing as mp
import sys
import time


def consumer(q, barrier, results, slot, size):
    got = bad = 0
    barrier.wait()
    while True:
        message = q.get()
        if message is None:
            break
        if size and len(message) != size:
            bad += 1
        got += 1
    results[3 * slot] = time.monotonic_ns()
    results[3 * slot + 1] = got
    results[3 * slot + 2] = bad


def producer(q, barrier, n, size):
    message = b"\x5a" * size
    barrier.wait()
    if size:
        for _ in range(n):
            q.put(message)
    else:
        for i in range(n):
            q.put(i)
    q.put(None)


def measure(ctx, producers, consumers, size, count):
    """Returns the seconds from the release of the children to the last message received."""
    q = ctx.Queue()
    barrier = ctx.Barrier(producers + consumers + 1)
    results = ctx.Array("q", 3 * consumers, lock=False)
    children = [ctx.Process(target=consumer, args=(q, barrier, results, k, size))
                for k in range(consumers)]
    children += [ctx.Process(target=producer,
                             args=(q, barrier, count // producers + (k < count % producers), size))
                 for k in range(producers)]
    for child in children:
        child.start()
    barrier.wait()
    start = time.monotonic_ns()
    for child in children:
        child.join()
        assert child.exitcode == 0, child.exitcode
    end = max(results[3 * k] for k in range(consumers))
    got = sum(results[3 * k + 1] for k in range(consumers))
    bad = sum(results[3 * k + 2] for k in range(consumers))
    assert got == count and bad == 0, (got, count, bad)
    return (end - start) / 1e9


def main():
    count_small, count_1k, count_1m = (int(a) for a in sys.argv[1:4])
    ctx = mp.get_context("fork")
    print(f"# python {sys.version.split()[0]}", flush=True)
    print(f"python small_1x1_msgs_s {count_small / measure(ctx, 1, 1, 0, count_small):.0f}", flush=True)
    print(f"python small_2x2_msgs_s {count_small / measure(ctx, 2, 2, 0, count_small):.0f}", flush=True)
    print(f"python bw_1k_mb_s {count_1k * 1024 / measure(ctx, 1, 1, 1024, count_1k) / 1e6:.1f}",
          flush=True)
    print(f"python bw_1m_mb_s {count_1m * (1 << 20) / measure(ctx, 1, 1, 1 << 20, count_1m) / 1e6:.1f}",
          flush=True)


if __name__ == "__main__":
    main()
