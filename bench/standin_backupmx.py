#!/usr/bin/env python3
"""STAND-IN for the BackupMx embedded server -- NOT BackupMx.

Exists only so bench/run.sh's BackupMx code path (start with the planned
command line, phases A/B/C, monitor-driven recovery, big message) can be
exercised before the real embedded host is runnable:

    bench/run.sh --backupmx-cmd "python3 bench/standin_backupmx.py"

It understands the same --BackupMx:... arguments run.sh passes, accepts mail
for the configured domain, writes each message to <Spool:Path>/bodies/ and
fsyncs it before answering 250, forwards to the primary (4 parallel
connections), and when the primary is down re-probes it every
Delivery:ProbeInterval and flushes the backlog on recovery.  Figures obtained
with it say nothing about BackupMx; run.sh labels them as a custom command.
"""
import asyncio, os, smtplib, sys, threading, time, uuid
from concurrent.futures import ThreadPoolExecutor

cfg = {}
for arg in sys.argv[1:]:
    if arg.startswith("--BackupMx:") and "=" in arg:
        k, v = arg[len("--BackupMx:"):].split("=", 1)
        cfg[k] = v
host_name = cfg.get("HostName", "standin.test")
listen = cfg.get("Smtp:Endpoints:0", "127.0.0.1:2525")
domain = cfg.get("Domains:0:Name", "example.test").lower()
primary = cfg.get("Domains:0:Primary", "127.0.0.1:2526")
spool = os.path.abspath(cfg.get("Spool:Path", "spool"))
h, m, s = (cfg.get("Delivery:ProbeInterval", "00:00:30").split(":") + ["0", "0"])[:3]
probe = int(h) * 3600 + int(m) * 60 + float(s)
bodies = os.path.join(spool, "bodies")
os.makedirs(bodies, exist_ok=True)
dfd = os.open(bodies, os.O_RDONLY)
p_host, p_port = primary.rsplit(":", 1)
state = {"up": True}
inflight = set()
lock = threading.Lock()
pool = ThreadPoolExecutor(4)


def log(msg):
    print(time.strftime("%H:%M:%S"), "standin:", msg, flush=True)


def deliver(path):
    with lock:
        if path in inflight or not state["up"]:
            return
        inflight.add(path)
    try:
        with open(path, "rb") as f:
            sender = f.readline().strip().decode()
            rcpts = f.readline().strip().decode().split(",")
            data = f.read()
        with smtplib.SMTP(p_host, int(p_port), local_hostname=host_name, timeout=60) as c:
            c.sendmail(sender, rcpts, data)
        os.unlink(path)
    except (OSError, smtplib.SMTPException) as e:
        if state["up"]:
            log(f"primary down: {e!r}")
        state["up"] = False
    finally:
        with lock:
            inflight.discard(path)


async def monitor():
    while True:
        await asyncio.sleep(probe)
        if state["up"]:
            continue
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(p_host, int(p_port)), 5)
            w.close()
            state["up"] = True
            backlog = sorted(os.path.join(bodies, n) for n in os.listdir(bodies))
            log(f"primary up, flushing {len(backlog)}")
            for p in backlog:
                pool.submit(deliver, p)
        except (OSError, asyncio.TimeoutError):
            pass


async def session(reader, writer):
    async def reply(line):
        writer.write(line.encode() + b"\r\n")
        await writer.drain()
    await reply(f"220 {host_name} ESMTP stand-in")
    sender, rcpts = None, []
    try:
        while line := await reader.readline():
            cmd = line.decode("latin-1").strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                await reply(f"250-{host_name}\r\n250-PIPELINING\r\n250 8BITMIME" if verb == "EHLO" else f"250 {host_name}")
            elif verb == "MAIL":
                sender, rcpts = cmd.split(":", 1)[1].strip().split()[0].strip("<>"), []
                await reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = cmd.split(":", 1)[1].strip().split()[0].strip("<>")
                if addr.lower().endswith("@" + domain):
                    rcpts.append(addr)
                    await reply("250 2.1.5 Ok")
                else:
                    await reply("550 5.7.1 Relay denied")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    await reply("503 5.5.1 Bad sequence")
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while (l := await reader.readline()) not in (b".\r\n", b".\n", b""):
                    chunks.append(l[1:] if l.startswith(b".") else l)
                path = os.path.join(bodies, uuid.uuid4().hex)
                with open(path + ".tmp", "wb") as f:
                    f.write(f"{sender}\n{','.join(rcpts)}\n".encode())
                    f.write(b"".join(chunks))
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(path + ".tmp", path)
                os.fsync(dfd)
                await reply("250 2.0.0 Ok: queued")
                sender, rcpts = None, []
                if state["up"]:
                    pool.submit(deliver, path)
            elif verb == "RSET":
                sender, rcpts = None, []
                await reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                await reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                await reply("221 2.0.0 Bye")
                break
            else:
                await reply("502 5.5.2 Error: command not recognized")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    lh, lp = listen.rsplit(":", 1)
    srv = await asyncio.start_server(session, lh, int(lp), limit=1 << 20, backlog=256)
    log(f"listening on {listen}, domain {domain} -> {primary}, probe {probe}s, spool {spool}")
    asyncio.create_task(monitor())
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
