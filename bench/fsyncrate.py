#!/usr/bin/env python3
"""Synchronous write rate of the disk that holds the spools.

Appends BLOCK bytes and calls fsync() after each write, for SECONDS seconds
(bounded by --max-ops), in a scratch file inside DIR.  That is the cost a mail
server pays per accepted message when it answers 250 only after its data is
durable (one or more fsyncs per message).  Prints JSON: ops/s, median and p99
latency of write+fsync.
"""
import argparse, json, os, statistics, time

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--block", type=int, default=4096)
ap.add_argument("--max-ops", type=int, default=200000)
a = ap.parse_args()

path = os.path.join(a.dir, "fsync-probe.dat")
buf = os.urandom(a.block)
lat = []
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
try:
    t0 = time.perf_counter()
    end = t0 + a.seconds
    while len(lat) < a.max_ops:
        s = time.perf_counter()
        os.write(fd, buf)
        os.fsync(fd)
        e = time.perf_counter()
        lat.append(e - s)
        if e >= end:
            break
    el = time.perf_counter() - t0
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
print(json.dumps({"ops": len(lat), "seconds": round(el, 3), "ops_per_s": round(len(lat) / el, 1),
                  "p50_ms": round(statistics.median(lat) * 1000, 3),
                  "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3)}))
