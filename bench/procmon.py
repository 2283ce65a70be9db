#!/usr/bin/env python3
"""Sample memory and CPU of a process tree until SIGTERM/SIGINT, then print JSON.

Used by bench/run.sh once per phase and per system.

  procmon.py --pid PID [--interval 0.1] [--out FILE]

Memory:
  * rss_peak_kib   max over samples of the SUM of VmRSS of PID and all of its
                   live descendants (Postfix: master + smtpd/cleanup/qmgr/smtp/...).
                   Summing RSS counts shared pages (libc, libpostfix-*) once per
                   process, so for multi-process servers it over-states memory.
  * pss_peak_kib   same with Pss from /proc/P/smaps_rollup (shared pages divided
                   among the processes sharing them) -- the fairer multi-process figure.
  * hwm_kib        VmHWM of PID itself after resetting it at start
                   (echo 5 > /proc/PID/clear_refs, root only); exact peak for a
                   single-process server such as BackupMx, not sampled.
  * rss_start_kib  summed RSS at the first sample (baseline for "growth").
CPU:
  * cpu_ms         delta of (utime+stime of every live process in the tree) +
                   (cutime+cstime of PID, i.e. children that exited and were reaped
                   by PID during the phase).  Postfix's master reaps its daemons, so
                   short-lived smtpd/smtp/cleanup processes are accounted for.
"""
import argparse, json, os, signal, sys, time

TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def read_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    # rest[0]=state rest[1]=ppid ... utime=rest[11] stime=rest[12] cutime=rest[13] cstime=rest[14] rss=rest[21]
    return {"ppid": int(rest[1]), "utime": int(rest[11]), "stime": int(rest[12]),
            "cutime": int(rest[13]), "cstime": int(rest[14]), "rss_kib": int(rest[21]) * PAGE_KIB,
            "state": rest[0]}


def tree(root):
    stats = {}
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = read_stat(int(d))
        if st is None:
            continue
        stats[int(d)] = st
        children.setdefault(st["ppid"], []).append(int(d))
    if root not in stats:
        return {}
    out, todo = {}, [root]
    while todo and len(out) < 10000:
        p = todo.pop()
        if p in out:
            continue
        out[p] = stats[p]
        todo.extend(children.get(p, []))
    return out


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--max-seconds", type=float, default=3600)
    ap.add_argument("--out")
    ap.add_argument("--ready", help="file created once the baseline sample is taken")
    a = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    try:  # reset the peak-RSS watermark of the root process (Linux >= 4.0, needs root)
        with open(f"/proc/{a.pid}/clear_refs", "w") as f:
            f.write("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False

    def cpu_ticks(t):
        tot = sum(s["utime"] + s["stime"] for s in t.values())
        if a.pid in t:
            tot += t[a.pid]["cutime"] + t[a.pid]["cstime"]
        return tot

    t = tree(a.pid)
    cpu0 = cpu_ticks(t)
    rss0 = sum(s["rss_kib"] for s in t.values())
    rss_peak, pss_peak, nmax, samples = rss0, 0, len(t), 0
    cpu_last = cpu0
    if a.ready:
        open(a.ready, "w").close()
    deadline = time.monotonic() + a.max_seconds
    while time.monotonic() < deadline:
        t = tree(a.pid)
        if not t:
            break
        samples += 1
        cpu_last = cpu_ticks(t)
        rss = sum(s["rss_kib"] for s in t.values())
        rss_peak = max(rss_peak, rss)
        pss_peak = max(pss_peak, sum(pss_kib(p) for p in t))
        nmax = max(nmax, len(t))
        if stop:
            break
        time.sleep(a.interval)
    res = {
        "rss_start_kib": rss0, "rss_peak_kib": rss_peak, "pss_peak_kib": pss_peak,
        "hwm_kib": hwm_kib(a.pid) if hwm_reset else 0,
        "cpu_ms": round((cpu_last - cpu0) * 1000.0 / TCK, 1), "procs_max": nmax, "samples": samples,
    }
    s = json.dumps(res)
    if a.out:
        with open(a.out, "w") as f:
            f.write(s + "\n")
    print(s)


if __name__ == "__main__":
    main()
