#!/usr/bin/env python3
"""Render bench/run.sh's results file (key=value lines) as a Markdown table.

  report.py RESULTS.txt

Columns: Postfix, BackupMx, ratio BackupMx/Postfix, target, verdict.
A missing BackupMx figure is shown as 'pending' (with the reason if known).
"""
import sys


def load(path):
    r = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                r[k] = v
    return r


R = load(sys.argv[1])


def num(key):
    v = R.get(key, "")
    try:
        return float(v)
    except ValueError:
        return None


def fmt(v, nd=1):
    if v is None:
        return None
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


N = int(R.get("meta.n", 0) or 0)
DEEP = int(R.get("meta.deep", 0) or 0)
RP = num("meta.recovery_probe") or 1
PROBE = num("meta.probe") or 30
BIG = num("postfix.big.size_mib") or num("backupmx.big.size_mib") or float(R.get("meta.big_mib", 50) or 50)
bmx_label = R.get("backupmx.label", "BackupMx")
custom = bmx_label.startswith("custom")
pending = "pending" + (f" ({R['backupmx.error']})" if "backupmx.error" in R else "")


def cell(sys_, key, nd=1):
    v = num(f"{sys_}.{key}")
    if v is None:
        if sys_ == "backupmx" and ("backupmx.label" not in R or "backupmx.error" in R):
            return "pending"
        return "error" if f"{sys_}.error" in R else "n/a"
    return fmt(v, nd)


rows = []


def row(label, key, nd=1, target=None, check=None, ratio=True):
    """target: text; check(pf, bmx) -> bool|None for the verdict."""
    pf, bx = num(f"postfix.{key}"), num(f"backupmx.{key}")
    rt = f"{bx / pf:.2f}x" if ratio and pf and bx is not None else ""
    verdict = ""
    if check is not None:
        if bx is None:
            verdict = "pending"
        else:
            ok = check(pf, bx)
            verdict = "" if ok is None else ("PASS" if ok else "FAIL")
    rows.append((label, cell("postfix", key, nd), cell("backupmx", key, nd), rt, target or "", verdict))


spooled_pf = num("postfix.B.spooled")
spooled_bx = num("backupmx.B.spooled")
spooled = spooled_bx or spooled_pf or 0

row("A  accept rate, primary down (msg/s, smtp-source)", "A.rate", target="BackupMx >= 3x Postfix",
    check=lambda pf, bx: pf and bx >= 3 * pf)
row("A  DATA->250 latency median (ms, smtplat.py)", "A.lat_p50_ms", 2)
row("A  DATA->250 latency p99 (ms, smtplat.py)", "A.lat_p99_ms", 2)
row("A  peak RSS (MiB; Postfix: sum over its processes)", "A.rss_peak_mib")
row("A  peak PSS (MiB)", "A.pss_peak_mib")
row("A  CPU per message (ms)", "A.cpu_ms_per_msg", 3)
row("B  messages spooled when the primary returns", "B.spooled", 0, ratio=False)
row("B  first delivery after the flush (s; Postfix postqueue -f, BackupMx ETRN)", "B.first_s", 2,
    target="BackupMx <= 0.3 s", check=lambda pf, bx: bx <= 0.3)
row("B  all delivered (s after the flush)", "B.done_s", 2)
row("B  queue/spool empty (s after the flush)", "B.empty_s", 2)
row("B  drain rate after the flush, first to last delivery (msg/s)", "B.drain_rate",
    target="BackupMx >= 3x Postfix (postqueue -f)", check=lambda pf, bx: pf and bx >= 3 * pf)
row("B2 first delivery after the operator's `flush` command started (s)", "B2.first_s", 2,
    target="BackupMx <= 0.3 s", check=lambda pf, bx: bx <= 0.3, ratio=False)
row("B2 `flush` command run time (s, .NET start-up included)", "B2.cmd_s", 2, ratio=False)
row("B2 drain rate after `flush` (msg/s)", "B2.drain_rate", ratio=False)
row(f"B3 first delivery after the probe found the primary back (s; probe every {RP:.0f} s)", "B3.first_after_probe_s", 2,
    target="BackupMx <= 0.3 s", check=lambda pf, bx: bx <= 0.3, ratio=False)
row("B3 first delivery after the primary came back (s, probe wait included)", "B3.first_s", 2, ratio=False)
row("B3 drain rate after the recovery flush (msg/s)", "B3.drain_rate", ratio=False)
row("B  peak RSS (MiB)", "B.rss_peak_mib",
    target=f"BackupMx <= 256 MiB with 10,000 spooled", check=lambda pf, bx: bx <= 256)
row("B  peak PSS (MiB)", "B.pss_peak_mib")
row("B  CPU per message (ms)", "B.cpu_ms_per_msg", 3)
row("C  accept rate, primary up (msg/s)", "C.accept_rate")
row("C  end-to-end rate sender -> primary (msg/s)", "C.e2e_rate",
    target="BackupMx >= 2.5x Postfix", check=lambda pf, bx: pf and bx >= 2.5 * pf)
row("C  peak RSS (MiB)", "C.rss_peak_mib")
row("C  CPU per message (ms)", "C.cpu_ms_per_msg", 3)
if "postfix.big.accept_s" in R or "backupmx.big.accept_s" in R:
    row(f"Big {BIG:.0f} MiB message: accept, primary down (s)", "big.accept_s", 2)
    row("Big: delivered after primary is back (s)", "big.deliver_s", 2)
    row("Big: peak memory growth (MiB)", "big.growth_mib",
        target=f"BackupMx < 2x size = {2 * BIG:.0f} MiB", check=lambda pf, bx: bx < 2 * BIG)
if DEEP:
    D = f"{DEEP:,.0f}"
    row(f"D  accept rate, first 10,000 of {D} (msg/s)", "D.rate_first", ratio=False)
    row(f"D  accept rate, last 10,000 of {D} (msg/s)", "D.rate_last", ratio=False)
    first, last = num("backupmx.D.rate_first"), num("backupmx.D.rate_last")
    if first and last is not None:
        R["backupmx.D.rate_pct"] = str(100 * last / first)
    row(f"D  accept rate at {D} as % of the rate at 0", "D.rate_pct", 0,
        target=">= 80 %", check=lambda pf, bx: bx >= 80, ratio=False)
    row(f"D  peak RSS while spooling {D} (MiB)", "D.rss_peak_mib",
        target="<= 256 MiB", check=lambda pf, bx: bx <= 256, ratio=False)
    row(f"D  peak RSS while draining {D} (MiB)", "Ddrain.rss_peak_mib",
        target="<= 256 MiB", check=lambda pf, bx: bx <= 256, ratio=False)
    row(f"D  `queue` with {D} spooled (s, best of 3, .NET start-up included)", "D.queue_s", 2,
        target="<= 1 s", check=lambda pf, bx: bx <= 1, ratio=False)
    row(f"D  first delivery after ETRN with {D} spooled (s)", "D.first_s", 2,
        target="<= 0.3 s", check=lambda pf, bx: bx <= 0.3, ratio=False)
    row(f"D  drain rate after ETRN with {D} spooled (msg/s)", "D.drain_rate", ratio=False)
for sys_ in ("postfix", "backupmx"):
    if f"{sys_}.B.dups" in R:
        R[f"{sys_}.dups"] = str(sum(int(num(f"{sys_}.{ph}.dups") or 0) for ph in ("B", "B2", "B3", "C", "D")))
row("Duplicates seen at the primary (all phases)", "dups", 0, ratio=False)

out = []
out.append(f"# BackupMx vs Postfix backup-MX benchmark -- {R.get('meta.date', '')}\n")
out.append(f"Command: `{R.get('meta.cmd', '')}`  ")
out.append(f"N={N} messages/phase, {R.get('meta.c')} sessions, {R.get('meta.s')} B payload, "
           f"latency sample {R.get('meta.l')} msgs, ProbeInterval {PROBE:.0f} s  ")
out.append(f"Machine: {R.get('meta.nproc')} CPUs ({R.get('meta.cpu', '?')}), {R.get('meta.mem')} RAM, "
           f"{R.get('meta.kernel')}, disk {R.get('meta.disk')}  ")
out.append(f"Postfix {R.get('meta.postfix')}, .NET SDK {R.get('meta.dotnet')}, {R.get('meta.python')}; "
           f"wall time {R.get('meta.wall_s', '?')} s\n")
fs = f"Disk: synchronous 4 KiB write+fsync: {R.get('env.fsync_rate', '?')} /s (median {R.get('env.fsync_p50_ms', '?')} ms) at the start"
if "env.fsync_rate_end" in R:
    fs += f", {R['env.fsync_rate_end']} /s (median {R.get('env.fsync_p50_ms_end', '?')} ms) at the end"
out.append(fs + " of the run  ")
out.append(f"Loopback ceiling (smtp-source -> smtp-sink): {R.get('env.ceiling_rate', '?')} msg/s discarding, "
           f"{R.get('env.ceiling_dump_rate', '?')} msg/s with the sink dumping each message to a file"
           f" ({R.get('meta.sink_dumps', 'on the disk')})\n")
hdr = ("Metric", R.get("postfix.label", "Postfix"), bmx_label if "backupmx.label" in R else "BackupMx",
       "BackupMx/Postfix", "Target", "Verdict")
widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(6)]
line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
out.append(line(hdr))
out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
out.extend(line(r) for r in rows)
notes = []
if "backupmx.label" in R and "backupmx.B.empty_s" not in R and "backupmx.B.done_s" in R:
    notes.append("BackupMx 'spool empty' is n/a: no <spool>/bodies directory; set BMX_QUEUE_SQL to a "
                 "query counting queued messages in <spool>/spool.db.")
if "backupmx.label" not in R or "backupmx.error" in R:
    notes.append(f"BackupMx: {pending}.")
if custom:
    notes.append(f"The BackupMx column was produced by a CUSTOM COMMAND ({bmx_label[8:]}), not by "
                 "BackupMx.Server; it only exercises the harness.")
if spooled and spooled < 10000:
    notes.append(f"The 256 MiB RSS target is defined at 10,000 spooled messages; this run spooled "
                 f"{spooled:.0f} (use -n/-l so that n + l >= 10000 to test it as stated).")
for sys_ in ("postfix", "backupmx"):
    for k, v in sorted(R.items()):
        if k.startswith(sys_ + ".") and k.endswith(".error") and k != "backupmx.error":
            notes.append(f"{sys_}: {k.split('.')[1]}: {v}")
if R.get("meta.postfix_retry") == "1":
    notes.append(f"Postfix on its retry timers alone (no postqueue -f), {N} msgs: first delivery "
                 f"{R.get('postfix.R.first_s') or 'none'} s, all delivered {R.get('postfix.R.done_s') or 'not within the bound'} s "
                 f"({R.get('postfix.R.delivered', '?')} delivered).")
else:
    notes.append("Postfix recovery was triggered with `postqueue -f` right after the primary came back. "
                 "On its retry timers alone (defaults: minimal_backoff_time 300 s, queue_run_delay 300 s) "
                 "expect the first retry 5-10 min after the first deferral; measure it with --postfix-retry.")
notes.append("Peak RSS for Postfix sums VmRSS over the master and all its live children (sampled every 0.25 s), "
             "which counts shared libraries once per process; PSS divides shared pages among them. "
             "For BackupMx (one process) RSS is the exact VmHWM of the process during the phase.")
if "backupmx.big.growth_mib" in R:
    notes.append("Big-message memory growth: peak RSS during the phase minus RSS at its start. BackupMx is "
                 "restarted for this phase and measured from its settled fresh process, so memory kept "
                 "from earlier phases cannot hide the message's buffers; Postfix starts fresh smtpd/cleanup/smtp "
                 "processes for it anyway.")
notes.append("B2, B3 and D are BackupMx's alone (Postfix's only flush is postqueue -f, phase B). Phases A, B, B2 "
             "and D run with a ProbeInterval of one hour so that no probe races ETRN or the flush; B3 restarts the "
             "relay on the same spool with the --recovery-probe interval and times the first delivery from the "
             "probe's 'went from Down to Up' log line; C runs on that relay.")
notes.append("First delivery after a flush is timed from the flush itself: the moment ETRN leaves the client "
             "(bench/etrn.py writes it after EHLO), or the start of `postqueue -f` or of BackupMx's `flush` "
             "command (their process start-up included). The sink's counter is running before that moment, "
             "so neither Python's start-up nor the counter's adds to the figure; it polls every 10 ms until "
             "the first delivery.")
notes.append("CPU per message: utime+stime of the server's processes (Postfix: the master's whole tree, "
             "including exited children) during the phase, divided by the messages in that phase. "
             "Latency figures come from a threaded Python client and include client overhead.")
out.append("")
out.extend("- " + n for n in notes)
print("\n".join(out))
