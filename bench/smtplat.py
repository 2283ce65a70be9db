#!/usr/bin/env python3
"""Small measuring SMTP client: DATA-to-250 latency.

smtp-source reports no latencies, so this client sends COUNT messages of SIZE
bytes over CONCURRENCY parallel sessions (one thread per session, connection
reused, like `smtp-source -d`) and times, for every message, the span from
sending the DATA command to receiving the final reply after the terminating
dot -- i.e. 354 round trip + body transfer + the server making the message
durable and answering 250.  With a threaded CPython client the client itself
may be the bottleneck, so only the latencies are reported as figures; the
accept *rate* figures come from smtp-source.

Only a loopback host is accepted.  Prints JSON.
"""
import argparse, ipaddress, json, smtplib, statistics, threading, time, uuid

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--count", type=int, default=1000)
ap.add_argument("--concurrency", type=int, default=20)
ap.add_argument("--size", type=int, default=4096)
ap.add_argument("--timeout", type=float, default=300, help="overall bound, seconds")
ap.add_argument("--sender", default="bench@sender.test")
ap.add_argument("--rcpt", default="rcpt@example.test")
a = ap.parse_args()
if not ipaddress.ip_address(a.host).is_loopback:
    raise SystemExit("smtplat.py: refusing non-loopback host " + a.host)

line = "x" * 76
body_lines = [line] * max(1, a.size // 78)
lock = threading.Lock()
lat, errors = [], []
next_msg = [0]
deadline = time.monotonic() + a.timeout


def take():
    with lock:
        if next_msg[0] >= a.count or time.monotonic() > deadline:
            return None
        next_msg[0] += 1
        return next_msg[0]


def worker(wid):
    try:
        s = smtplib.SMTP(a.host, a.port, local_hostname="lat-client.test", timeout=60)
        s.ehlo("lat-client.test")
    except Exception as e:  # noqa: BLE001
        errors.append(f"connect: {e!r}")
        return
    try:
        while (i := take()) is not None:
            msg = (f"From: <{a.sender}>\r\nTo: <{a.rcpt}>\r\nSubject: latency {i}\r\n"
                   f"Message-Id: <{uuid.uuid4().hex}.{i}@lat-client.test>\r\n\r\n" + "\r\n".join(body_lines) + "\r\n")
            code, resp = s.mail(a.sender)
            if code != 250:
                errors.append(f"MAIL {code} {resp!r}")
                s.rset()
                continue
            code, resp = s.rcpt(a.rcpt)
            if code not in (250, 251):
                errors.append(f"RCPT {code} {resp!r}")
                s.rset()
                continue
            t = time.perf_counter()
            code, resp = s.data(msg)
            d = time.perf_counter() - t
            if code == 250:
                with lock:
                    lat.append(d)
            else:
                errors.append(f"DATA {code} {resp!r}")
        s.quit()
    except Exception as e:  # noqa: BLE001
        errors.append(f"session {wid}: {e!r}")


t0 = time.perf_counter()
ts = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(a.concurrency)]
for t in ts:
    t.start()
for t in ts:
    t.join(max(0.1, deadline - time.monotonic() + 5))
el = time.perf_counter() - t0
lat.sort()


def pct(p):
    return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2) if lat else None


print(json.dumps({"sent": len(lat), "failed": len(errors), "seconds": round(el, 3),
                  "rate": round(len(lat) / el, 1) if el > 0 else None,
                  "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
                  "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                  "errors": errors[:5]}))
