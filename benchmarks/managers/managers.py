# SPDX-License-Identifier: MIT
"""Python's side of the manager benchmark (see managers.hpp for the workloads).

Usage: python3 managers.py OPS KEYS

Prints one line per workload, "python <workload> <operations per second>", read by
bench_managers (main.cpp); each is measured inside a child process, as the C++ side does.
"""
import multiprocessing as mp
import sys
import time
from multiprocessing.managers import BaseManager, DictProxy


class RemoteManager(BaseManager):
    pass


SERVED = {}
RemoteManager.register("get_dict", callable=lambda: SERVED, proxytype=DictProxy)


def dict_set(d, n, keys, out):
    begin = time.perf_counter()
    for i in range(n):
        d[i % keys] = i
    out.put(n / (time.perf_counter() - begin))


def dict_get(d, n, keys, out):
    begin = time.perf_counter()
    total = 0
    for i in range(n):
        total += d[i % keys]
    out.put(n / (time.perf_counter() - begin))


def list_append(l, n, keys, out):
    begin = time.perf_counter()
    for i in range(n):
        l.append(i)
    out.put(n / (time.perf_counter() - begin))


def dict_set_str(d, n, keys, out):
    begin = time.perf_counter()
    for i in range(n):
        d["k" + str(i % keys)] = i
    out.put(n / (time.perf_counter() - begin))


def remote_dict_set(address, n, keys, out):
    m = RemoteManager(address=address, authkey=b"key")
    m.connect()
    d = m.get_dict()
    begin = time.perf_counter()
    for i in range(n):
        d[i % keys] = i
    out.put(n / (time.perf_counter() - begin))


def main():
    ops, keys = (int(a) for a in sys.argv[1:3])
    ctx = mp.get_context("fork")
    print(f"# python {sys.version.split()[0]}", flush=True)
    with ctx.Manager() as mgr:
        d, l, s = mgr.dict(), mgr.list(), mgr.dict()
        out = ctx.SimpleQueue()
        for name, target, container in (("dict_set", dict_set, d), ("dict_get", dict_get, d),
                                        ("list_append", list_append, l),
                                        ("dict_set_str", dict_set_str, s)):
            child = ctx.Process(target=target, args=(container, ops, keys, out))
            child.start()
            rate = out.get()
            child.join()
            assert child.exitcode == 0, child.exitcode
            print(f"python {name} {rate:.0f}", flush=True)
        assert len(l) == ops, len(l)
    server = RemoteManager(address=("127.0.0.1", 0), authkey=b"key", ctx=ctx)
    server.start()
    out = ctx.SimpleQueue()
    child = ctx.Process(target=remote_dict_set, args=(server.address, ops, keys, out))
    child.start()
    rate = out.get()
    child.join()
    assert child.exitcode == 0, child.exitcode
    print(f"python remote_dict_set {rate:.0f}", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
