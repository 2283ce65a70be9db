#!/usr/bin/env bash
# A real MTA as the primary: a private Postfix instance (its own config and
# queue directories under a temporary folder; the system's Postfix is left
# alone) listens on a loopback port and holds every message it receives. The
# embedded relay is started in front of it, messages are sent through the relay
# with Python's smtplib, and the check reads Postfix's logged SMTP conversation
# (debug_peer_list) and its queue files (postcat) to assert that each envelope
# parameter and each body byte arrived as sent.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if ! command -v postfix >/dev/null || ! command -v postcat >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "check-real-primary: Postfix is missing and cannot be installed without root; skipped" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
  fi
  echo "== installing Postfix from Debian"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi

work="$(mktemp -d /tmp/backupmx-primary.XXXXXX)"
pfdir="$work/postfix"
relay_pid=""
cleanup() {
  # Waited for: the relay writes its JIT profile into the spool folder as it exits.
  if [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null; then wait "$relay_pid" 2>/dev/null || true; fi
  postfix -c "$pfdir" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
[ "${KEEP:-}" = 1 ] && trap - EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
primary_port="$(free_port)"
relay_port="$(free_port)"

chmod 755 "$work"
mkdir -p "$pfdir" "$work/queue" "$work/data"
chown postfix "$work/data"
sed -E "s/^smtp( +)inet /127.0.0.1:$primary_port inet /" /etc/postfix/master.cf > "$pfdir/master.cf"
cat > "$pfdir/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $work/queue
data_directory = $work/data
meta_directory = /etc/postfix
myhostname = primary.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.test
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_limit = 5
smtpd_data_restrictions = check_client_access static:HOLD
local_header_rewrite_clients =
smtputf8_enable = yes
message_size_limit = 104857600
debug_peer_list = 127.0.0.1
maillog_file = $work/maillog
maillog_file_prefixes = $work
smtpd_tls_security_level = none
alias_maps =
alias_database =
CONF
# Postfix reports its own errors only to syslog or a terminal: give it a terminal.
script -qec "postfix -c '$pfdir' start" /dev/null
echo "check-real-primary: Postfix on 127.0.0.1:$primary_port"

echo "== building the embedded relay"
dotnet build src/BackupMx.Server -c Release -v quiet -nologo >/dev/null
mkdir -p "$work/relay"
(cd "$work/relay" && exec dotnet "$root/src/BackupMx.Server/bin/Release/net10.0/BackupMx.Server.dll" \
  --BackupMx:HostName=backup.test \
  --BackupMx:Smtp:Endpoints:0=127.0.0.1:$relay_port \
  --BackupMx:Smtp:MaxMessageBytes=62914560 \
  --BackupMx:Domains:0:Name=example.test \
  --BackupMx:Domains:0:Primary=127.0.0.1:$primary_port \
  --BackupMx:Spool:Path="$work/spool" \
  --BackupMx:Admin:Endpoint= \
  --Logging:LogLevel:Default=Warning >"$work/relay.log" 2>&1) &
relay_pid=$!

echo "== sending through the relay (built in ${SECONDS}s)"
python3 "$root/scripts/real-primary-messages.py" "$relay_port" "$work" "$pfdir"
echo "check-real-primary: done in ${SECONDS}s"
