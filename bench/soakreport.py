#!/usr/bin/env python3
"""Summary of one bench/soak.sh run, as Markdown on stdout.

Reads from --work: results.txt (key=value), events.log, accepted.log
("n queue_id attempts t", one line per message the relay answered 250),
failed.log, sink.log ("<Message-Id> queue_id", one line per message the
primary took, duplicates included), rss.log (soakrss.py) and load.json.

  accepted   messages the relay answered 250 (each number at most once)
  delivered  distinct message numbers the primary received
  lost       accepted and never delivered, after the final drain
  duplicates deliveries beyond the first of a number, split into
             * redelivered: one spooled copy (one queue id) delivered again
               (at-least-once after a kill or a flap in mid-delivery);
             * sender copies: the relay took the message twice (two queue
               ids), because the sender retried after losing the 250 in a kill.

Exit status 1 when something was lost or the relay crashed.
"""
import argparse, json, os, re, statistics
from collections import Counter, defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--flat-pct", type=float, default=10.0)
a = ap.parse_args()
W = a.work


def path(n):
    return os.path.join(W, n)


def lines(n):
    try:
        with open(path(n)) as f:
            for line in f:
                yield line.split()
    except FileNotFoundError:
        return


res = {}
for line in open(path("results.txt")):
    k, _, v = line.rstrip("\n").partition("=")
    res[k] = v
try:
    load = json.load(open(path("load.json")))
except (OSError, ValueError):
    load = {}
dur = int(res["meta.duration_s"])
win = int(res["meta.window_s"])

# ---- messages ---------------------------------------------------------------
acc_qid = {}                                   # n -> queue id(s) of its 250
acc_attempts = Counter()
for f in lines("accepted.log"):
    if len(f) >= 3:
        acc_qid[int(f[0])] = f[1]
        acc_attempts[int(f[2])] += 1

MID = re.compile(r"^<(\d+)\.[^@>]*@soak\.test>$")
deliv = defaultdict(list)                      # n -> queue ids it arrived with
foreign = 0
for f in lines("sink.log"):
    m = MID.match(f[0]) if f else None
    if not m:
        foreign += 1
        continue
    deliv[int(m.group(1))].append(f[1] if len(f) > 1 else "-")

total_deliveries = sum(len(v) for v in deliv.values())
dups = total_deliveries - len(deliv)
redelivered = sum(sum(c - 1 for c in Counter(q).values()) for q in deliv.values())
sender_copies = dups - redelivered
lost = sorted(n for n in acc_qid if n not in deliv)
# the copy the sender was told about (its 250's queue id) never arrived,
# though another copy of the same message did
qid_missing = sorted(n for n, q in acc_qid.items()
                     if n in deliv and not set(q.split(",")) & set(deliv[n]))
never_250 = sorted(n for n in deliv if n not in acc_qid)

fail_kinds = Counter(f[2] for f in lines("failed.log") if len(f) >= 3)

# ---- events -------------------------------------------------------------------
events = [(float(f[0]), " ".join(f[1:])) for f in lines("events.log") if f]
kills = [e for e in events if e[1].startswith("kill ")]
crashes = [e for e in events if "CRASH" in e[1]]
restarts = [e for e in events if e[1].startswith("restarted ")]
flaps = [e for e in events if e[1].startswith("primary-")]
listen_s = [float(m.group(1)) for _, t in restarts for m in [re.search(r"listening_s=([\d.]+)", t)] if m]

# ---- RSS ------------------------------------------------------------------------
samples = []                                   # (t, pid, rss, hwm, cpu, load1)
for f in lines("rss.log"):
    if len(f) >= 4:
        samples.append((float(f[0]), int(f[1]), int(f[2]), int(f[3]),
                        int(f[4]) if len(f) > 4 else 0, float(f[5]) if len(f) > 5 else 0.0))
soak = [s for s in samples if s[0] < dur]
first = [s[2] for s in soak if s[0] < win]
last = [s[2] for s in soak if s[0] >= dur - win]
lives = {}
for s in samples:
    L = lives.setdefault(s[1], {"t0": s[0], "t1": s[0], "rss": [], "hwm": 0, "cpu0": s[4], "cpu1": s[4]})
    L["t1"] = s[0]
    L["rss"].append(s[2])
    L["hwm"] = max(L["hwm"], s[3])
    L["cpu1"] = s[4]
tck = os.sysconf("SC_CLK_TCK")
load1 = [s[5] for s in samples]


def mib(kib):
    return f"{kib / 1024:.1f}"


def pct(x, y):
    return (x / y - 1) * 100 if y else float("nan")


out = []
p = out.append
p(f"# BackupMx soak, {res.get('meta.date', '?')}\n")
p(f"`{res.get('meta.cmd', '')}` at {res.get('meta.commit', '?')}\n")
p(f"Machine: {res.get('meta.nproc')} CPUs ({res.get('meta.cpu')}), {res.get('meta.mem')}, .NET SDK "
  f"{res.get('meta.dotnet')}; load average at start {res.get('meta.load_start')}, at end "
  f"{res.get('meta.load_end')}; 1-min load while soaking: median "
  f"{statistics.median(load1) if load1 else '?'}, max {max(load1) if load1 else '?'} "
  "(the machine is shared: other processes' load counts in these figures).\n")
if "burst.max_rate" in res:
    p(f"Maximum accept rate (smtp-source burst, {res['burst.n']} msgs, primary down, fresh spool): "
      f"**{res['burst.max_rate']} msg/s**; soak rate = half: **{res['load.rate']} msg/s**.\n")
else:
    p(f"Soak rate: {res.get('load.rate')} msg/s (given).\n")

p("## Load and events\n")
p("| | |\n|---|---|")
p(f"| duration of load / flap half-period / kill period | {dur} s / {res['meta.flap_s']} s / {res['meta.kill_s']} s |")
p(f"| new messages sent (rate achieved) | {load.get('sent_new', '?')} ({load.get('rate_new', '?')} msg/s; "
  f"target {res.get('load.rate')}; sender at most {load.get('behind_max_s', '?')} s behind schedule) |")
p(f"| failed attempts (4xx / 5xx / connection) | {load.get('attempt_fail', '?')} "
  f"({fail_kinds.get('4xx', 0)} / {fail_kinds.get('5xx', 0)} / {fail_kinds.get('conn', 0)}), "
  f"on {load.get('retried_msgs', '?')} messages, all retried by the sender |")
p(f"| attempts per accepted message | " + ", ".join(f"{k}: {v}" for k, v in sorted(acc_attempts.items())) + " |")
p(f"| still held by the sender at the end (never 250'd) | {load.get('still_held', '?')} |")
p(f"| primary flaps (up/down transitions) | {len(flaps)} |")
p(f"| relay SIGKILLs / crashes | {len(kills)} / {len(crashes)} |")
if listen_s:
    p(f"| restart: SIGKILL to listening (s) | median {statistics.median(listen_s):.2f}, max {max(listen_s):.2f} |")
p(f"| spool records left after the drain | {res.get('drain.spool_left', '?')} |")
p(f"| body files left after the drain (orphans of a kill between a finished record's deletion and its body's; removed at the next start) | {res.get('drain.body_files', '?')} |")
p("")

for t, text in crashes:
    p(f"- at {t:.0f} s: {text}")
if crashes:
    p("")

p("## Messages\n")
p("| | count |\n|---|---|")
p(f"| accepted (250) | {len(acc_qid)} |")
p(f"| delivered (unique) | {len(deliv)} |")
p(f"| **lost** (250'd, never delivered) | **{len(lost)}** |")
p(f"| 250'd copy never delivered, another copy was | {len(qid_missing)} |")
p(f"| delivered, never 250'd to the sender | {len(never_250)} |")
p(f"| **duplicates** (deliveries beyond the first) | **{dups}** |")
p(f"| of which redelivered (same queue id) | {redelivered} |")
p(f"| of which sender copies (sender retried after losing the 250) | {sender_copies} |")
p(f"| deliveries without a soak Message-Id | {foreign} |")
p("")
if lost:
    p("Lost (number, queue id of the 250; first 20): " +
      ", ".join(f"{n} {acc_qid[n]}" for n in lost[:20]) + "\n")
if qid_missing:
    p("250'd copy missing (number, queue id; first 20): " +
      ", ".join(f"{n} {acc_qid[n]}" for n in qid_missing[:20]) + "\n")

p("## Relay RSS\n")
p(f"Sampled every few seconds from /proc (VmRSS); windows of {win} s at the start and the end of the load.\n")
p("| window | samples | mean MiB | max MiB |\n|---|---|---|---|")
mf = statistics.mean(first) if first else 0
ml = statistics.mean(last) if last else 0
pf = max(first) if first else 0
pl = max(last) if last else 0
p(f"| first {win} s | {len(first)} | {mib(mf)} | {mib(pf)} |")
p(f"| last {win} s | {len(last)} | {mib(ml)} | {mib(pl)} |")
p(f"| change | | {pct(ml, mf):+.1f} % | {pct(pl, pf):+.1f} % |")
p("")
p("Per process lifetime (VmHWM = the kernel's exact peak of that process):\n")
p("| # | pid | from s | to s | samples | mean MiB | VmHWM MiB | CPU s | CPU % of one core |\n|---|---|---|---|---|---|---|---|---|")
for i, (pid, L) in enumerate(sorted(lives.items(), key=lambda kv: kv[1]["t0"]), 1):
    span = max(L["t1"] - L["t0"], 1e-9)
    cpu = (L["cpu1"] - L["cpu0"]) / tck
    p(f"| {i} | {pid} | {L['t0']:.0f} | {L['t1']:.0f} | {len(L['rss'])} | {mib(statistics.mean(L['rss']))} | "
      f"{mib(L['hwm'])} | {cpu:.0f} | {100 * cpu / span:.0f} |")
p("")

flat = bool(first and last) and abs(pct(ml, mf)) <= a.flat_pct and abs(pct(pl, pf)) <= a.flat_pct
rate_ok = load.get("rate_new") is not None and float(load["rate_new"]) >= 0.95 * float(res.get("load.rate", 0))
p("## Verdicts\n")
p(f"- RSS flat within {a.flat_pct:.0f} % (mean and max, last vs first window): "
  f"**{'PASS' if flat else 'FAIL'}** (mean {pct(ml, mf):+.1f} %, max {pct(pl, pf):+.1f} %)")
p(f"- nothing lost: **{'PASS' if not lost else 'FAIL'}** ({len(lost)} of {len(acc_qid)} accepted messages lost"
  f"{'; the 250d copy of ' + str(len(qid_missing)) + ' arrived only as another copy' if qid_missing else ''})")
p(f"- duplicates counted: **{dups}** ({redelivered} redelivered, {sender_copies} sender copies; "
  f"{100 * dups / max(len(deliv), 1):.3f} % of delivered)")
p(f"- no crash (only the planned SIGKILLs): **{'PASS' if not crashes else 'FAIL'}** ({len(crashes)} crashes)")
p(f"- spool drained: **{'PASS' if res.get('drain.spool_left') == '0' else 'FAIL'}** "
  f"({res.get('drain.spool_left')} records left)")
p(f"- load held (≥ 95 % of the target rate): **{'PASS' if rate_ok else 'FAIL'}** "
  f"({load.get('rate_new', '?')} of {res.get('load.rate')} msg/s)")
print("\n".join(out))
raise SystemExit(1 if lost or crashes else 0)
