#!/usr/bin/env python3
"""ETRN for a domain, with the moment the command leaves written to a file.

usage: etrn.py PORT DOMAIN [T0_FILE]

Connects to 127.0.0.1:PORT, says EHLO, then writes the epoch time to T0_FILE
(atomically) just before sending ETRN, so that "first delivery after ETRN" is
measured from the command and not from this interpreter's start-up.  Prints
the server's reply.
"""
import os, smtplib, sys, time

port, domain = int(sys.argv[1]), sys.argv[2]
t0_file = sys.argv[3] if len(sys.argv) > 3 else None
s = smtplib.SMTP("127.0.0.1", port, timeout=50)
s.ehlo("primary.test")
if t0_file:
    tmp = t0_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%.6f\n" % time.time())
    os.replace(tmp, t0_file)
print(s.docmd("ETRN", domain))
s.quit()
