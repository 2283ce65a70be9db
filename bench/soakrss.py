#!/usr/bin/env python3
"""RSS sampler for bench/soak.sh: every --interval s, reads the pid in --pid-file
(the relay's pid changes at every restart) and appends one line to --out:

  t pid rss_kib hwm_kib cpu_ticks load1

t = seconds since --t0 (epoch); rss from /proc/PID/stat (procmon.read_stat),
hwm = VmHWM (procmon.hwm_kib), the process's exact peak so far, so the last
line of a pid holds the peak of that process's whole lifetime; cpu_ticks = its utime+stime (clock ticks); load1 = the machine's
1-minute load average (the machine may be shared).  Runs until
SIGTERM/SIGINT.
"""
import argparse, os, signal, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procmon import hwm_kib, read_stat  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--pid-file", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--t0", type=float, required=True)
ap.add_argument("--interval", type=float, default=5.0)
a = ap.parse_args()
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
signal.signal(signal.SIGINT, lambda *_: stop.append(1))
with open(a.out, "a", buffering=1) as out:
    while not stop:
        try:
            pid = int(open(a.pid_file).read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        st = read_stat(pid) if pid else None
        if st and st["state"] != "Z":
            load1 = open("/proc/loadavg").read().split()[0]
            out.write(f"{time.time() - a.t0:.1f} {pid} {st['rss_kib']} {hwm_kib(pid)} "
                      f"{st['utime'] + st['stime']} {load1}\n")
        end = time.monotonic() + a.interval
        while not stop and time.monotonic() < end:
            time.sleep(0.2)
