# SPDX-License-Identifier: MIT
"""Python's side of the lock benchmark (see locks.hpp for the workloads).

Usage: python3 locks.py PAIRS INCREMENTS ROUND_TRIPS

Prints one line per workload, "python <workload> <value>", read by bench_locks (main.cpp):
    python uncontended_ns <ns per acquire+release>
    python contended_per_s <increments per second, two processes>
    python round_trip_us <µs per Event ping-pong round trip>
"""
import multiprocessing as mp
import sys
import time


def add(lock, counter, n):
    for _ in range(n):
        with lock:
            counter.value += 1


def partner(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()


def main():
    pairs, increments, round_trips = (int(a) for a in sys.argv[1:4])
    ctx = mp.get_context("fork")
    print(f"# python {sys.version.split()[0]}", flush=True)

    lock = ctx.Lock()
    begin = time.perf_counter_ns()
    for _ in range(pairs):
        lock.acquire()
        lock.release()
    print(f"python uncontended_ns {(time.perf_counter_ns() - begin) / pairs:.1f}", flush=True)

    counter = ctx.Value("q", 0, lock=False)
    child = ctx.Process(target=add, args=(lock, counter, increments))
    begin = time.perf_counter_ns()
    child.start()
    add(lock, counter, increments)
    child.join()
    seconds = (time.perf_counter_ns() - begin) / 1e9
    assert counter.value == 2 * increments, counter.value
    print(f"python contended_per_s {2 * increments / seconds:.0f}", flush=True)

    ping, pong = ctx.Event(), ctx.Event()
    child = ctx.Process(target=partner, args=(ping, pong, round_trips))
    child.start()
    begin = time.perf_counter_ns()
    for _ in range(round_trips):
        ping.set()
        pong.wait()
        pong.clear()
    print(f"python round_trip_us {(time.perf_counter_ns() - begin) / 1000 / round_trips:.2f}", flush=True)
    child.join()


if __name__ == "__main__":
    main()
