# SPDX-License-Identifier: MIT
"""Python's side of the MPI benchmark (see main.cpp): mpi4py.futures next to concurrent.futures.

Usage: python3 mpi.py TINY_ITEMS CPU_TASKS CPU_STEPS

Both executors have two workers, started and warmed up before the clock starts (mpi4py's are
spawned with MPI_Comm_spawn: the program runs alone). Prints "python <workload> <value>" lines:
    python tiny_local_items_s  <items/s of ProcessPoolExecutor(2).map(square, range(TINY_ITEMS))>
    python tiny_mpi_items_s    <the same with mpi4py.futures.MPIPoolExecutor(2)>
    python cpu_serial_s        <seconds for CPU_TASKS crunch(k, CPU_STEPS) calls in a loop>
    python cpu_local_s         <the same with ProcessPoolExecutor(2).map>
    python cpu_mpi_s           <the same with MPIPoolExecutor(2).map>
Without mpi4py, the mpi lines say 0 (and stderr says why).
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time

# The kernels are pool.py's (the CPU-bound walk and the tiny call), so the two benchmarks measure
# the same work; mpi4py's spawned workers get the folder on their sys.path to unpickle them.
POOL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pool")
sys.path.insert(0, POOL_DIR)
from pool import MASK, crunch, square  # noqa: E402


def report(workload, value):
    print(f"python {workload} {value:.6g}", flush=True)


def measure(ex, items, tasks, steps, expected):
    """(tiny items/s: the best of 3 maps after a warm-up, cpu seconds) on one executor."""
    xs = range(items)
    want = [x * x for x in xs]
    list(ex.map(square, range(64)))
    best = None
    for _ in range(3):
        begin = time.perf_counter()
        got = list(ex.map(square, xs))
        seconds = time.perf_counter() - begin
        assert got == want
        best = seconds if best is None else min(best, seconds)
    begin = time.perf_counter()
    checksum = sum(ex.map(crunch, range(tasks), [steps] * tasks)) & MASK
    cpu_s = time.perf_counter() - begin
    assert checksum == expected
    return items / best, cpu_s


def main():
    items, tasks, steps = (int(a) for a in sys.argv[1:4])
    print(f"# python {sys.version.split()[0]}", flush=True)
    begin = time.perf_counter()
    expected = sum(crunch(k, steps) for k in range(tasks)) & MASK
    report("cpu_serial_s", time.perf_counter() - begin)

    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        tiny, cpu = measure(ex, items, tasks, steps, expected)
    report("tiny_local_items_s", tiny)
    report("cpu_local_s", cpu)

    try:
        from mpi4py.futures import MPIPoolExecutor
    except ImportError as e:
        print(f"mpi.py: no mpi4py ({e}): install python3-mpi4py", file=sys.stderr)
        report("tiny_mpi_items_s", 0)
        report("cpu_mpi_s", 0)
        return
    with MPIPoolExecutor(2, path=[POOL_DIR]) as ex:
        tiny, cpu = measure(ex, items, tasks, steps, expected)
    report("tiny_mpi_items_s", tiny)
    report("cpu_mpi_s", cpu)


if __name__ == "__main__":
    main()
