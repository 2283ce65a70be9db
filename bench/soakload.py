#!/usr/bin/env python3
"""Load generator for bench/soak.sh: sends uniquely numbered messages at a fixed
rate and behaves like a sending MTA towards the relay under test.

Every message n carries "Message-Id: <n.RUN@soak.test>".  A message counts as
accepted only when DATA got 250; the queue id from "250 ... queued as X" is
kept.  A 4xx/5xx reply or a connection error (the relay is SIGKILLed now and
then) leaves the message with the sender, which tries it again after a short
back-off (--retry-after, doubled per failure up to --retry-max), as an MTA
would, until the run ends; then, with no new messages, it keeps retrying the
ones it still holds for up to --drain-seconds.

Writes one line per accepted message to --accepted: "n queue_id attempts t"
(t = seconds since --t0), one line per failed attempt to --failed:
"n t kind detail", and a JSON summary to stdout.  Only loopback is contacted.

  soakload.py --port P --rate R --seconds S [--sessions C] [--size B] ...
"""
import argparse, heapq, ipaddress, json, random, smtplib, socket, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--rate", type=float, required=True, help="new messages per second")
ap.add_argument("--seconds", type=float, required=True, help="how long new messages are sent")
ap.add_argument("--sessions", type=int, default=20)
ap.add_argument("--size", type=int, default=4096)
ap.add_argument("--run", default="soak")
ap.add_argument("--accepted", required=True)
ap.add_argument("--failed", required=True)
ap.add_argument("--retry-after", type=float, default=2.0)
ap.add_argument("--retry-max", type=float, default=30.0)
ap.add_argument("--drain-seconds", type=float, default=300.0)
ap.add_argument("--t0", type=float, help="epoch time 0 of the logged times (default: start)")
ap.add_argument("--sender", default="soak@sender.test")
ap.add_argument("--rcpt", default="rcpt@example.test")
a = ap.parse_args()
if not ipaddress.ip_address(a.host).is_loopback:
    raise SystemExit("soakload.py: refusing non-loopback host " + a.host)

body = ("\r\n".join(["y" * 76] * max(1, a.size // 78)) + "\r\n").encode()
lock = threading.Lock()
t0 = time.monotonic()
log_t0 = a.t0 if a.t0 is not None else time.time()
end_new = t0 + a.seconds
end_all = end_new + a.drain_seconds
state = {"next": 1, "sched": t0}
retry_heap = []          # (due, n, failures)
inflight = 0            # jobs taken and not yet answered
stats = {"sent_new": 0, "accepted": 0, "attempt_fail": 0, "fail_4xx": 0, "fail_5xx": 0,
         "fail_conn": 0, "retried_msgs": 0, "behind_max_s": 0.0, "connects": 0, "connect_fail": 0}
retried = set()
acc_f = open(a.accepted, "a", buffering=1)
fail_f = open(a.failed, "a", buffering=1)


def take():
    """Next job (n, failures) or None when done; paces new messages at --rate."""
    global inflight
    while True:
        now = time.monotonic()
        with lock:
            if retry_heap and retry_heap[0][0] <= now:
                due, n, failures = heapq.heappop(retry_heap)
                inflight += 1
                return n, failures
            if now < end_new:
                if state["sched"] <= now:
                    behind = now - state["sched"]
                    stats["behind_max_s"] = max(stats["behind_max_s"], behind)
                    # catch up after a stall, but with at most 10 s of backlog
                    state["sched"] = max(state["sched"], now - 10.0) + 1.0 / a.rate
                    n = state["next"]
                    state["next"] += 1
                    stats["sent_new"] += 1
                    inflight += 1
                    return n, 0
                wait = min(state["sched"] - now, 0.05)
            else:
                if now >= end_all or (not retry_heap and inflight == 0):
                    return None
                wait = min(retry_heap[0][0] - now, 0.2) if retry_heap else 0.2
        time.sleep(max(wait, 0.0005))


def failed(n, failures, kind, detail):
    global inflight
    t = time.monotonic()
    with lock:
        stats["attempt_fail"] += 1
        stats["fail_" + kind] += 1
        retried.add(n)
        delay = min(a.retry_after * (2 ** failures), a.retry_max) * random.uniform(0.8, 1.2)
        heapq.heappush(retry_heap, (t + delay, n, failures + 1))
        inflight -= 1
    fail_f.write(f"{n} {time.time() - log_t0:.3f} {kind} {detail}\n")


def accepted(n, failures, qid):
    global inflight
    t = time.monotonic()
    with lock:
        stats["accepted"] += 1
        inflight -= 1
    acc_f.write(f"{n} {qid} {failures + 1} {time.time() - log_t0:.3f}\n")


def message(n):
    return (f"From: <{a.sender}>\r\nTo: <{a.rcpt}>\r\nSubject: soak {n}\r\n"
            f"Message-Id: <{n}.{a.run}@soak.test>\r\n\r\n").encode() + body


def worker():
    s = None
    job = None
    while True:
        if job is None:
            job = take()
            if job is None:
                break
        n, failures = job
        try:
            if s is None:
                with lock:
                    stats["connects"] += 1
                s = smtplib.SMTP(a.host, a.port, local_hostname="load.soak.test", timeout=60)
                s.ehlo("load.soak.test")
            code, resp = s.mail(a.sender)
            if code == 250:
                code, resp = s.rcpt(a.rcpt)
                if code in (250, 251):
                    code, resp = s.data(message(n))
            if code == 250:
                txt = resp.decode("ascii", "replace")
                qid = txt.rsplit("queued as ", 1)[-1].strip() if "queued as " in txt else "-"
                accepted(n, failures, qid.replace(" ", ","))
            else:
                failed(n, failures, "4xx" if 400 <= code < 500 else "5xx",
                       f"{code} {resp.decode('ascii', 'replace')[:80]!r}")
                try:
                    s.rset()
                except (smtplib.SMTPException, OSError):
                    s = None
            job = None
        except (smtplib.SMTPException, OSError, socket.timeout) as e:
            code = getattr(e, "smtp_code", 0)
            kind = "4xx" if 400 <= code < 500 else "5xx" if 500 <= code < 600 else "conn"
            failed(n, failures, kind, f"{type(e).__name__} {code or ''}".strip())
            job = None
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
            s = None
            with lock:
                stats["connect_fail"] += 1
            time.sleep(0.2)          # the relay is restarting: do not spin
    if s is not None:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
el = time.monotonic() - t0
with lock:
    stats["retried_msgs"] = len(retried)
    stats["still_held"] = len(retry_heap) + inflight
    stats["numbered"] = state["next"] - 1
    stats["seconds"] = round(el, 1)
    stats["rate_new"] = round(stats["sent_new"] / min(el, a.seconds), 1) if el > 0 else None
    stats["behind_max_s"] = round(stats["behind_max_s"], 2)
print(json.dumps(stats))
