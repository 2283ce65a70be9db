#!/usr/bin/env python3
"""Stand-in primary for bench/soak.sh: a minimal SMTP server that records, for
every message it accepts, one line "<Message-Id> <queue id>" in --record.

The queue id is the one BackupMx wrote into its Received header ("... id X"),
so a redelivery of one spooled message (same queue id) can be told from two
spooled copies of one message (a sender's retry after a lost 250: two ids).

The line is written (one O_APPEND write, in the kernel once it returns) BEFORE
the 250 is sent, as a real primary commits before it answers: a kill of this
process between the two is a duplicate at worst, never a loss. Bodies are not
kept. The flaps are done by starting and killing this process; the record file
is appended to across its lifetimes.

  soaksink.py --port P --record FILE
"""
import argparse, asyncio, os, re, signal

MID = re.compile(rb"^message-id:[ \t]*(\S+)", re.I | re.M)
RID = re.compile(rb"^received:.*?\bid ([A-Za-z0-9._-]+)", re.I | re.M | re.S)

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--record", required=True)
ap.add_argument("--host", default="127.0.0.1")
a = ap.parse_args()
rec_fd = os.open(a.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def record(data: bytes):
    head = data.split(b"\r\n\r\n", 1)[0]
    m = MID.search(head)
    r = RID.search(head)
    line = (m.group(1) if m else b"-") + b" " + (r.group(1) if r else b"-") + b"\n"
    os.write(rec_fd, line)


async def session(reader, writer):
    def send(s):
        writer.write(s.encode() + b"\r\n")
    try:
        send("220 primary.test ESMTP soak sink")
        await writer.drain()
        have_rcpt = False
        while True:
            line = await reader.readline()
            if not line:
                return
            cmd = line[:4].upper()
            if cmd in (b"EHLO",):
                writer.write(b"250-primary.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
            elif cmd == b"HELO":
                send("250 primary.test")
            elif cmd == b"MAIL":
                have_rcpt = False
                send("250 2.1.0 Ok")
            elif cmd == b"RCPT":
                have_rcpt = True
                send("250 2.1.5 Ok")
            elif cmd == b"DATA":
                if not have_rcpt:
                    send("503 5.5.1 Error: need RCPT command")
                    await writer.drain()
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                chunks = []
                while True:
                    l = await reader.readline()
                    if not l:
                        return                      # cut mid-DATA: not accepted
                    if l == b".\r\n":
                        break
                    chunks.append(l)
                record(b"".join(chunks))
                have_rcpt = False
                send("250 2.0.0 Ok: stored")
            elif cmd == b"RSET":
                have_rcpt = False
                send("250 2.0.0 Ok")
            elif cmd == b"NOOP":
                send("250 2.0.0 Ok")
            elif cmd == b"QUIT":
                send("221 2.0.0 Bye")
                await writer.drain()
                return
            else:
                send("502 5.5.2 Error: command not recognized")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(session, a.host, a.port, reuse_address=True, backlog=256,
                                        limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


asyncio.run(main())
