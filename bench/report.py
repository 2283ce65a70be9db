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

row("A  accept rate, primary down (msg/s, smtp-source)", "A.rate", target="BackupMx >= 1.5x Postfix",
    check=lambda pf, bx: pf and bx >= 1.5 * pf)
row("A  DATA->250 latency median (ms, smtplat.py)", "A.lat_p50_ms", 2)
row("A  DATA->250 latency p99 (ms, smtplat.py)", "A.lat_p99_ms", 2)
row("A  peak RSS (MiB; Postfix: sum over its processes)", "A.rss_peak_mib")
row("A  peak PSS (MiB)", "A.pss_peak_mib")
row("A  CPU per message (ms)", "A.cpu_ms_per_msg", 3)
row("B  messages spooled when the primary returns", "B.spooled", 0, ratio=False)
row("B  first delivery after primary is back (s)", "B.first_s", 2,
    target=f"BackupMx <= ProbeInterval + 5 s = {PROBE + 5:.0f} s", check=lambda pf, bx: bx <= PROBE + 5)
row("B  all delivered (s after primary is back)", "B.done_s", 2)
row("B  queue/spool empty (s after primary is back)", "B.empty_s", 2)
row("B  drain rate, first to last delivery (msg/s)", "B.drain_rate",
    target="BackupMx >= 1.5x Postfix (postqueue -f)", check=lambda pf, bx: pf and bx >= 1.5 * pf)
row("B  peak RSS (MiB)", "B.rss_peak_mib",
    target=f"BackupMx <= 256 MiB with 10,000 spooled", check=lambda pf, bx: bx <= 256)
row("B  peak PSS (MiB)", "B.pss_peak_mib")
row("B  CPU per message (ms)", "B.cpu_ms_per_msg", 3)
row("C  accept rate, primary up (msg/s)", "C.accept_rate")
row("C  end-to-end rate sender -> primary (msg/s)", "C.e2e_rate")
row("C  peak RSS (MiB)", "C.rss_peak_mib")
row("C  CPU per message (ms)", "C.cpu_ms_per_msg", 3)
if "postfix.big.accept_s" in R or "backupmx.big.accept_s" in R:
    row(f"Big {BIG:.0f} MiB message: accept, primary down (s)", "big.accept_s", 2)
    row("Big: delivered after primary is back (s)", "big.deliver_s", 2)
    row("Big: peak memory growth (MiB)", "big.growth_mib",
        target=f"BackupMx < 2x size = {2 * BIG:.0f} MiB", check=lambda pf, bx: bx < 2 * BIG)
for sys_ in ("postfix", "backupmx"):
    if f"{sys_}.B.dups" in R:
        R[f"{sys_}.dups"] = str(int(num(f"{sys_}.B.dups") or 0) + int(num(f"{sys_}.C.dups") or 0))
row("Duplicates seen at the primary (B + C)", "dups", 0, ratio=False)

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
           f"{R.get('env.ceiling_dump_rate', '?')} msg/s with the sink dumping each message to a file\n")
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
notes.append("CPU per message: utime+stime of the server's processes (Postfix: the master's whole tree, "
             "including exited children) during the phase, divided by the messages in that phase. "
             "Latency figures come from a threaded Python client and include client overhead.")
out.append("")
out.extend("- " + n for n in notes)
print("\n".join(out))
