#!/usr/bin/env python3
"""Count messages that reached the stand-in primary (smtp-sink) and time them.

smtp-sink is started with `-d DIR/%H%M%S/` so it writes one dump file per
mail transaction (name = strftime template + random hex), in a folder per
second (files straight in DIR are counted too).  This is the
counting method for every "delivered" figure, for both systems:

  * a file is counted once it is complete: its size has reached --min-size
    (run.sh passes 90% of the payload: the dump stores LF line ends, not
    CRLF) AND it ends with the empty line smtp-sink writes after each
    transaction ("\n\n"), so a dump still being written is not counted;
  * files are keyed by their Message-Id header (smtp-source writes a distinct
    one per message; so does smtplat.py); a second copy of a message already
    seen counts as a duplicate, not as progress, so an at-least-once redelivery
    cannot make a phase look finished early;
  * files last modified before --t0 (the start of the phase) are ignored, so
    one sink directory can serve consecutive phases.

Polls every --interval s (every 10 ms until the first delivery) until the
target is reached or --timeout s pass.  Prints JSON: count, dups, first_s and
done_s (seconds since t0; null if not reached).

t0 is an epoch time stamp: --t0 when the caller knows it before this script
starts, or --t0-file when it does not yet.  With --t0-file the script starts
first, touches --ready once it runs (the caller waits for that), and only then
does the caller act and write t0 to the file: a flush measured in fractions of
a second must not include this interpreter's start-up.  The directory must
then be fresh (every file in it counts).
"""
import argparse, json, os, re, time

MID = re.compile(rb"^message-id:\s*(\S+)", re.I | re.M)

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--target", type=int, required=True)
ap.add_argument("--timeout", type=float, required=True)
t0 = ap.add_mutually_exclusive_group(required=True)
t0.add_argument("--t0", type=float)
t0.add_argument("--t0-file")
ap.add_argument("--ready")
ap.add_argument("--min-size", type=int, default=1)
ap.add_argument("--interval", type=float, default=0.05)
a = ap.parse_args()
if a.ready:
    open(a.ready, "w").close()


def read_t0():
    try:
        with open(a.t0_file) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


if a.t0_file:
    a.t0 = None
    wait_until = time.monotonic() + a.timeout
    while a.t0 is None and time.monotonic() < wait_until:
        a.t0 = read_t0() or None
        if a.t0 is None:
            time.sleep(0.002)
    if a.t0 is None:
        print(json.dumps({"count": 0, "target": a.target, "dups": 0, "first_s": None, "done_s": None,
                          "error": "t0 never written to " + a.t0_file}))
        raise SystemExit(1)

done_files, ids = set(), set()
settled_dirs = set()   # per-second folders whose every file has been counted or passed by
dups = 0


def consider(path, name):
    """Counts one dump file; returns (new unique messages, whether it is finished with)."""
    global dups
    try:
        st = os.stat(path)
        if st.st_mtime < a.t0 - 0.05:      # from an earlier phase
            return 0, True
        if st.st_size < a.min_size:
            return 0, False
        with open(path, "rb") as f:
            head = f.read(8192)
            f.seek(-2, os.SEEK_END)
            if f.read(2) != b"\n\n":
                return 0, False
    except OSError:
        return 0, False
    m = MID.search(head)
    key = m.group(1) if m else name.encode()
    if key in ids:
        dups += 1
        return 0, True
    ids.add(key)
    return 1, True


def scan():
    """Returns the number of newly completed unique messages.

    smtp-sink's template may put each second's dumps in a folder of their own (%H%M%S/):
    a folder whose second is over and whose files are all counted is not listed again, so a
    scan costs what the last seconds delivered, not the whole run (100,000 files in D).
    """
    new = 0
    try:
        it = os.scandir(a.dir)
    except FileNotFoundError:
        return 0
    with it:
        for e in it:
            if e.name in done_files or e.name in settled_dirs:
                continue
            if e.is_dir(follow_symlinks=False):
                open_files = 0
                try:
                    quiet = time.time() - e.stat().st_mtime > 2
                    with os.scandir(e.path) as inner:
                        for f in inner:
                            key = e.name + "/" + f.name
                            if key in done_files:
                                continue
                            n, finished = consider(f.path, key)
                            new += n
                            if finished:
                                done_files.add(key)
                            else:
                                open_files += 1
                except OSError:
                    continue
                if quiet and open_files == 0:
                    settled_dirs.add(e.name)
                continue
            n, finished = consider(e.path, e.name)
            new += n
            if finished:
                done_files.add(e.name)
    return new


count, first, done = 0, None, None
deadline = time.monotonic() + a.timeout
while True:
    n = scan()
    now = time.time() - a.t0
    if n:
        count += n
        if first is None:
            first = now
    if count >= a.target:
        done = now
        break
    if time.monotonic() >= deadline:
        break
    time.sleep(a.interval if first is not None else min(a.interval, 0.01))
print(json.dumps({"count": count, "target": a.target, "dups": dups,
                  "first_s": None if first is None else round(first, 3),
                  "done_s": None if done is None else round(done, 3)}))
