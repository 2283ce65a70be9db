"""Sends the check's messages through the relay and asserts what Postfix received.

Run by check-real-primary.sh: argv = relay port, work folder, Postfix config folder.
Postfix keeps every message in its hold queue; postcat shows its envelope and
content (with LF line ends: Postfix stores lines, not CRLF), and the smtpd
conversation is in the work folder's maillog (debug_peer_list).
"""
import glob
import os
import re
import smtplib
import subprocess
import sys
import time

relay_port, work, pfdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def message(tag, body, headers=b""):
    return (b"From: alice@sender.test\r\nTo: dave@example.test\r\nSubject: " + tag.encode() + b"\r\n"
            + b"Message-Id: <" + tag.encode() + b"@sender.test>\r\n" + headers + b"\r\n" + body)


big_line = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJKL\r\n"
cases = [
    # tag, sender, [(recipient, rcpt options)], mail options, message
    ("dsn", "alice@sender.test",
     [("dave@example.test", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig+2Bdave@example.test"]), ("erin@example.test", ["NOTIFY=NEVER"])],
     ["RET=HDRS", "ENVID=QQ314159"], message("dsn", b"hello\r\n")),
    ("eightbit-plain", "alice@sender.test", [("dave@example.test", [])], ["BODY=8BITMIME"],
     message("eightbit-plain", b"caf\xe9 \xfcber na\xefve\r\n")),
    ("eightbit-mime", "alice@sender.test", [("dave@example.test", [])], ["BODY=8BITMIME"],
     message("eightbit-mime", b"caf\xc3\xa9\r\n", b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")),
    ("smtputf8", "j\u00f6s\u00e9@b\u00fccher.example", [("\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@example.test", ["NOTIFY=FAILURE"])], ["SMTPUTF8", "BODY=8BITMIME"],
     message("smtputf8", "gr\u00fc\u00dfe\r\n".encode(), "X-Name: J\u00f6s\u00e9\r\n".encode())),
    ("dots", "alice@sender.test", [("dave@example.test", [])], [],
     message("dots", b".\r\n..\r\n.leading dot\r\n. \r\nend\r\n")),
    ("dkim", "alice@sender.test", [("dave@example.test", [])], ["BODY=8BITMIME"],
     b"DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=sender.test; s=test;\r\n\th=from:to:subject; bh=AAAA; b=BBBB\r\n" + message("dkim", b"signed  body with   spaces \r\n" + b"x" * 1200 + b"\r\n")),
    ("many", "alice@sender.test", [("r%02d@example.test" % i, []) for i in range(12)], [], message("many", b"many recipients\r\n")),
    ("large", "alice@sender.test", [("dave@example.test", [])], [], message("large", big_line * (50 * 1024 * 1024 // len(big_line)))),
]

# The relay takes a moment to start.
deadline = time.time() + 60
while True:
    try:
        client = smtplib.SMTP("127.0.0.1", relay_port, timeout=120)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("the relay did not start; see relay.log")
        time.sleep(0.5)

client.ehlo("client.sender.test")
check(client.has_extn("smtputf8"), "the relay offers SMTPUTF8")
for tag, sender, recipients, mail_options, data in cases:
    code, reply = client.mail(sender, mail_options)
    check(code == 250, f"{tag}: MAIL accepted ({code} {reply!r})")
    for address, options in recipients:
        code, reply = client.rcpt(address, options)
        check(code == 250, f"{tag}: RCPT {address} accepted ({code} {reply!r})")
    code, reply = client.data(data)
    check(code == 250, f"{tag}: DATA accepted ({code} {reply!r})")
client.quit()

expected_files = len(cases) + 2  # 12 recipients with smtpd_recipient_limit 5: three transactions
hold = os.path.join(work, "queue", "hold")
deadline = time.time() + 90
while len(glob.glob(os.path.join(hold, "**", "*"), recursive=True)) < expected_files and time.time() < deadline:
    time.sleep(0.5)
time.sleep(1)


def postcat(args, path):
    return subprocess.run(["postcat", "-c", pfdir] + args + [path], check=True, capture_output=True).stdout


held = {}
for path in glob.glob(os.path.join(hold, "**", "*"), recursive=True):
    if not os.path.isfile(path):
        continue
    content = postcat(["-bh"], path)
    envelope = postcat(["-e"], path).decode("utf-8", "replace")
    tag = re.search(rb"^Subject: (\S+)$", content, re.M).group(1).decode()
    held.setdefault(tag, []).append((content, envelope))

check(len(held.get("many", [])) == 3, "many: 12 recipients arrived in 3 transactions (smtpd_recipient_limit 5)")

for tag, sender, recipients, mail_options, data in cases:
    if tag not in held:
        check(False, f"{tag}: arrived at Postfix")
        continue
    content, envelope = held[tag][0]
    # Postfix's Received, then ours; every byte after them is the client's (LF for CRLF).
    blocks = re.match(rb"(Received: [^\n]*\n(?:[ \t][^\n]*\n)*){2}", content)
    check(blocks is not None and b"by backup.test" in blocks.group(0), f"{tag}: our Received header below Postfix's")
    rest = content[blocks.end():] if blocks else content
    check(rest == data.replace(b"\r\n", b"\n"), f"{tag}: every body byte as sent")
    all_recipients = [r for _, e in held[tag] for r in re.findall(r"^recipient: (.*)$", e, re.M)]
    check(sorted(all_recipients) == sorted(a for a, _ in recipients), f"{tag}: recipients {sorted(all_recipients)}")
    check(re.search(r"^sender: " + re.escape(sender) + "$", envelope, re.M) is not None, f"{tag}: sender {sender}")

dsn = held.get("dsn", [(b"", "")])[0][1]
check("named_attribute: envelope_id=QQ314159" in dsn, "dsn: ENVID")
check("named_attribute: ret_flags=2" in dsn, "dsn: RET=HDRS")
check("named_attribute: dsn_orig_rcpt=rfc822;orig+dave@example.test" in dsn, "dsn: the client's ORCPT, not one made from the address")
check(re.search(r"notify_flags=6\n(?:.*\n)*?recipient: dave@", dsn) is not None, "dsn: NOTIFY=SUCCESS,FAILURE for dave")
check(re.search(r"notify_flags=1\n(?:.*\n)*?recipient: erin@", dsn) is not None, "dsn: NOTIFY=NEVER for erin")
for tag in ("eightbit-plain", "eightbit-mime", "smtputf8", "dkim"):
    check("named_attribute: encoding=8bit" in held.get(tag, [(b"", "")])[0][1], f"{tag}: BODY=8BITMIME")

log = open(os.path.join(work, "maillog"), encoding="utf-8", errors="replace").read()
commands = re.findall(r"< [^:]*\]: ((?:MAIL FROM|RCPT TO):.*)$", log, re.M)
check(any(c.startswith("MAIL FROM:<alice@sender.test> SIZE=") and c.endswith(" BODY=8BITMIME") for c in commands), "8-bit: MAIL with SIZE and BODY=8BITMIME")
check(any(re.fullmatch(r"MAIL FROM:<alice@sender.test> SIZE=\d+ RET=HDRS ENVID=QQ314159", c) for c in commands), "dsn: MAIL with SIZE, RET and ENVID")
check("RCPT TO:<dave@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bdave@example.test" in commands, "dsn: RCPT with NOTIFY and ORCPT as sent")
check("RCPT TO:<erin@example.test> NOTIFY=NEVER ORCPT=rfc822;erin@example.test" in commands, "dsn: RCPT with NOTIFY=NEVER and the ORCPT a relay may add (RFC 3461 §4.2)")
check(any(re.fullmatch("MAIL FROM:<j\u00f6s\u00e9@b\u00fccher.example> SMTPUTF8 SIZE=\\d+ BODY=8BITMIME", c) for c in commands), "smtputf8: MAIL with SMTPUTF8")
check("RCPT TO:<\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@example.test> NOTIFY=FAILURE" in commands, "smtputf8: the UTF-8 recipient as sent")
large = [c for c in commands if re.fullmatch(r"MAIL FROM:<alice@sender.test> SIZE=(\d+)", c) and int(c.split("SIZE=")[1]) > 50 * 1024 * 1024 - 4096]
check(len(large) == 1, "large: MAIL with the stored SIZE, our Received header counted")
check(log.count("452 4.5.3 Error: too many recipients") >= 2, "many: Postfix's 452 after 5 recipients, twice")

if failures:
    print(f"check-real-primary: {len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print(f"check-real-primary: {len(cases)} messages arrived at Postfix as sent")
