# SPDX-License-Identifier: MIT
"""Python's side of the processes-vs-threads benchmark (see pool.hpp for the workloads).

Usage: python3 pool.py CPU_TASKS CPU_STEPS MAP_ITEMS MAP1_ITEMS ROUND_TRIPS

Every pool has two workers (fork) and is started before its clock starts, as on the C++ side, and
warmed up except for the cpu-bound job, whose starmap is the pool's first call (map: an untimed
map of the same input first, then the best of 3 timed maps with the default chunksize, one with
chunksize 1). Prints one line per workload,
"python <workload> <value>", read by bench_pool (main.cpp):
    python cpu_serial_s         <seconds for CPU_TASKS crunch(seed, CPU_STEPS) calls, in a loop>
    python cpu_pool_s           <the same with multiprocessing.Pool(2).starmap>
    python cpu_threads_s        <the same with multiprocessing.pool.ThreadPool(2).starmap>
    python map_pool_items_s     <items/s of Pool(2).map(square, range(MAP_ITEMS))>
    python map_threads_items_s  <the same with ThreadPool(2)>
    python map1_pool_items_s    <items/s of Pool(2).map(square, range(MAP1_ITEMS), chunksize=1)>
    python map1_threads_items_s <the same with ThreadPool(2)>
    python apply_pool_us        <µs per Pool(2).apply_async(square, (i,)).get()>
    python apply_threads_us     <the same with ThreadPool(2)>
    python submit_process_us    <µs per ProcessPoolExecutor(2).submit(square, i).result()>
    python submit_thread_us     <the same with ThreadPoolExecutor(2)>
"""
import concurrent.futures as cf
import multiprocessing as mp
import multiprocessing.pool
import sys
import time

MASK = (1 << 64) - 1
WARMUP_TRIPS = 20


def crunch(seed, steps):
    """pool.hpp's crunch(): a xorshift64 walk, in 64-bit arithmetic."""
    x = (seed * 0x9E3779B97F4A7C15 + 1) & MASK
    for i in range(steps):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        x = (x + i) & MASK
    return x


def square(x):
    return x * x


def warm_up(pool):
    pool.map(square, range(8), chunksize=1)


def report(workload, value):
    print(f"python {workload} {value:.6g}", flush=True)


def cpu(make_pool, tasks, steps):
    calls = [(k, steps) for k in range(tasks)]
    with make_pool() as pool:  # the starmap is the pool's first call, as on the C++ side
        begin = time.perf_counter()
        results = pool.starmap(crunch, calls)
        seconds = time.perf_counter() - begin
    return seconds, sum(results) & MASK


def map_items_s(make_pool, items, chunksize, timed):
    """The best of `timed` maps after an untimed one, on one pool (as on the C++ side)."""
    xs = range(items)
    expected = [x * x for x in xs]
    best = None
    with make_pool() as pool:
        pool.map(square, xs, chunksize)
        for _ in range(timed):
            begin = time.perf_counter()
            ys = pool.map(square, xs, chunksize)
            seconds = time.perf_counter() - begin
            assert ys == expected
            best = seconds if best is None else min(best, seconds)
    return items / best


def apply_us(make_pool, trips):
    with make_pool() as pool:
        warm_up(pool)
        for i in range(WARMUP_TRIPS):
            pool.apply_async(square, (i,)).get()
        begin = time.perf_counter()
        total = 0
        for i in range(trips):
            total += pool.apply_async(square, (i,)).get()
        seconds = time.perf_counter() - begin
    assert total == sum(i * i for i in range(trips))
    return seconds * 1e6 / trips


def submit_us(make_executor, trips):
    with make_executor() as ex:
        for i in range(WARMUP_TRIPS):
            ex.submit(square, i).result()
        begin = time.perf_counter()
        total = 0
        for i in range(trips):
            total += ex.submit(square, i).result()
        seconds = time.perf_counter() - begin
    assert total == sum(i * i for i in range(trips))
    return seconds * 1e6 / trips


def main():
    cpu_tasks, cpu_steps, map_items, map1_items, trips = (int(a) for a in sys.argv[1:6])
    ctx = mp.get_context("fork")
    processes = lambda: ctx.Pool(2)  # noqa: E731
    threads = lambda: multiprocessing.pool.ThreadPool(2)  # noqa: E731
    print(f"# python {sys.version.split()[0]}", flush=True)

    begin = time.perf_counter()
    expected = sum(crunch(k, cpu_steps) for k in range(cpu_tasks)) & MASK
    report("cpu_serial_s", time.perf_counter() - begin)
    for name, make in (("cpu_pool_s", processes), ("cpu_threads_s", threads)):
        seconds, checksum = cpu(make, cpu_tasks, cpu_steps)
        assert checksum == expected, (name, checksum, expected)
        report(name, seconds)

    report("map_pool_items_s", map_items_s(processes, map_items, None, 3))
    report("map_threads_items_s", map_items_s(threads, map_items, None, 3))
    report("map1_pool_items_s", map_items_s(processes, map1_items, 1, 1))
    report("map1_threads_items_s", map_items_s(threads, map1_items, 1, 1))

    report("apply_pool_us", apply_us(processes, trips))
    report("apply_threads_us", apply_us(threads, trips))

    report("submit_process_us", submit_us(lambda: cf.ProcessPoolExecutor(2, mp_context=ctx), trips))
    report("submit_thread_us", submit_us(lambda: cf.ThreadPoolExecutor(2), trips))


if __name__ == "__main__":
    main()
