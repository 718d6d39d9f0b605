# SPDX-License-Identifier: MIT
"""Python's side of the pipe benchmark (see pipes.hpp for the workloads).

Usage: python3 pipes.py TRIPS ROUNDS COUNT_1K COUNT_1M

Prints one line per workload, "python <workload> <value>", read by bench_pipes (main.cpp):
    python rtt_typed_us <µs per send(obj)/recv() round trip, best of ROUNDS>
    python rtt_bytes_us <µs per send_bytes/recv_bytes round trip of 8 bytes, best of ROUNDS>
    python bw_1k_mb_s   <MB/s, COUNT_1K messages of 1 KiB, send_bytes/recv_bytes>
    python bw_1m_mb_s   <MB/s, COUNT_1M messages of 1 MiB, send_bytes/recv_bytes>
"""
import multiprocessing as mp
import sys
import time


def echo(conn, typed, trips):
    for _ in range(trips):
        if typed:
            conn.send(conn.recv())
        else:
            conn.send_bytes(conn.recv_bytes())


def sink(conn, size, count):
    for _ in range(count):
        if len(conn.recv_bytes()) != size:
            raise RuntimeError("wrong size")
    conn.send_bytes(b"!")


def round_trip_us(ctx, typed, trips):
    here, there = ctx.Pipe()
    child = ctx.Process(target=echo, args=(there, typed, trips))
    child.start()
    there.close()
    here.send(-1)  # untimed, as the C++ competitors
    assert here.recv() == -1
    payload = bytes(8)
    begin = time.perf_counter_ns()
    for i in range(1, trips):
        if typed:
            here.send(i)
            assert here.recv() == i
        else:
            here.send_bytes(payload)
            assert len(here.recv_bytes()) == 8
    elapsed = time.perf_counter_ns() - begin
    child.join()
    assert child.exitcode == 0, child.exitcode
    return elapsed / 1000 / (trips - 1)


def bandwidth_mb_s(ctx, size, count):
    here, there = ctx.Pipe()
    child = ctx.Process(target=sink, args=(there, size, count))
    child.start()
    there.close()
    message = b"\x5a" * size
    begin = time.perf_counter_ns()
    for _ in range(count):
        here.send_bytes(message)
    here.recv_bytes()
    elapsed = time.perf_counter_ns() - begin
    child.join()
    assert child.exitcode == 0, child.exitcode
    return size * count / (elapsed / 1e9) / 1e6


def main():
    trips, rounds, count_1k, count_1m = (int(a) for a in sys.argv[1:5])
    ctx = mp.get_context("fork")
    print(f"# python {sys.version.split()[0]}", flush=True)
    typed = min(round_trip_us(ctx, True, trips) for _ in range(rounds))
    print(f"python rtt_typed_us {typed:.3f}", flush=True)
    raw = min(round_trip_us(ctx, False, trips) for _ in range(rounds))
    print(f"python rtt_bytes_us {raw:.3f}", flush=True)
    print(f"python bw_1k_mb_s {bandwidth_mb_s(ctx, 1024, count_1k):.1f}", flush=True)
    print(f"python bw_1m_mb_s {bandwidth_mb_s(ctx, 1 << 20, count_1m):.1f}", flush=True)


if __name__ == "__main__":
    main()
