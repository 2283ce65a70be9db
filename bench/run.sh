#!/usr/bin/env bash
# bench/run.sh -- side-by-side benchmark: BackupMx (embedded mode) vs. Postfix
# configured as a backup MX for the same domain, on the same machine, over
# loopback only.  See bench/README.md.  Usage: bench/run.sh -h
#
# Outside world (Debian "postfix" package tools):
#   senders  = /usr/sbin/smtp-source      primary = /usr/sbin/smtp-sink
# Each system gets, with the same N/C/S:
#   A  primary down: N messages in -> accept rate (smtp-source), then L more
#      through bench/smtplat.py for DATA->250 latency (median/p99).
#   B  primary comes back (smtp-sink starts): seconds to first delivery and to
#      all delivered, drain rate.  Postfix: `postqueue -f` right after the sink
#      is up (optionally, --postfix-retry: on its retry timers alone).  BackupMx:
#      ETRN from the primary's address (127.0.0.1) right after the sink is up;
#      then, each with N more messages spooled while the primary is down,
#      B2 the operator's `flush` command and B3 the primary monitor's probe
#      (the relay restarted with --recovery-probe seconds between probes),
#      first delivery measured from the probe that found the primary back.
#   C  primary up: N messages end to end (sender -> server -> sink).
#   big one message of -b MiB accepted while the primary is down, then
#      forwarded: peak memory growth.
#   D  (--deep M, BackupMx only) M messages spooled in chunks of 10,000 with
#      the primary down: accept rate of the first and of the last chunk, peak
#      RSS, `queue` command time, then ETRN: first delivery and drain rate.
# plus, once: loopback ceiling (smtp-source straight into smtp-sink) and the
# disk's synchronous 4 KiB write rate.
#
# Delivered messages are counted at the sink: smtp-sink dumps every
# transaction to its own file (-d DIR/%H%M%S/<random>); bench/sinkcount.py
# counts complete dumps by unique Message-Id (duplicates reported apart).
#
# Only 127.0.0.1 is ever targeted.  Every wait is bounded; everything started
# here is stopped by the EXIT trap (by PID / by `postfix -c DIR stop|abort`).
set -Eeuo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

# Become a child subreaper (prctl PR_SET_CHILD_SUBREAPER) so that Postfix's
# daemonised master and its children are reaped by this script even where
# PID 1 does not reap (containers).  bash reaps any child it is handed.
if [[ -z "${BENCH_REAPER:-}" ]] && command -v python3 >/dev/null 2>&1; then
  export BENCH_REAPER=1
  exec python3 -c 'import ctypes,os,signal,sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
try: ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
except Exception: pass
os.execvp("bash", ["bash"] + sys.argv[1:])' "${BASH_SOURCE[0]}" "$@"
fi

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"

# ---------------------------------------------------------------- options --
N=5000 C=20 S=4096 L=1000 BIG_MIB=50 PROBE=30 RECOVERY_PROBE=1 DEEP=0
SYSTEMS="postfix,backupmx"
POSTFIX_RETRY=0 SKIP_BUILD=0 KEEP=0
BACKUPMX_CMD="" WORKROOT="${TMPDIR:-/tmp}" OUTDIR="$BENCH_DIR/out"
RETRY_TIMEOUT=1500

usage() {
  cat <<EOF
Usage: bench/run.sh [options]
  -n N              messages per phase (default $N)
  -c C              concurrent SMTP sessions (default $C)
  -s BYTES          message payload size (default $S)
  -l L              messages for the latency sample in phase A (default $L; 0 = skip)
  -b MIB            size of the big message (default $BIG_MIB; 0 = skip)
  -p SECONDS        BackupMx Delivery:ProbeInterval for phases C and big (default $PROBE;
                    phases A, B and B2 run with one hour, so no probe races ETRN or flush)
  --recovery-probe S  ProbeInterval of the relay restarted for phase B3 (default $RECOVERY_PROBE)
  --deep M          phase D: M messages spooled (e.g. 100000), BackupMx only (default off)
  --systems LIST    comma list of postfix,backupmx (default $SYSTEMS)
  --postfix-retry   also measure Postfix recovery on its retry timers alone,
                    without postqueue -f (adds up to ~10 min; off by default)
  --backupmx-cmd C  command to run instead of the built BackupMx.Server.dll
                    (the --BackupMx:... arguments are appended); figures are
                    then labelled as coming from a custom command
  --skip-build      do not run dotnet publish (BackupMx is published for this
                    machine's platform, as docs/install.md installs it)
  --workdir DIR     where the temporary spools/queues go (default $WORKROOT)
  --out DIR         where the result table is written (default bench/out)
  --keep            keep the temporary directory
EOF
}

while (($#)); do
  case "$1" in
    -n) N="$2"; shift 2 ;;
    -c) C="$2"; shift 2 ;;
    -s) S="$2"; shift 2 ;;
    -l) L="$2"; shift 2 ;;
    -b) BIG_MIB="$2"; shift 2 ;;
    -p) PROBE="$2"; shift 2 ;;
    --recovery-probe) RECOVERY_PROBE="$2"; shift 2 ;;
    --deep) DEEP="$2"; shift 2 ;;
    --systems) SYSTEMS="$2"; shift 2 ;;
    --postfix-retry) POSTFIX_RETRY=1; shift ;;
    --backupmx-cmd) BACKUPMX_CMD="$2"; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --workdir) WORKROOT="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in N C S L BIG_MIB PROBE RECOVERY_PROBE DEEP; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "-$v must be a non-negative integer" >&2; exit 2; }
done
((N >= 1 && C >= 1 && S >= 1 && PROBE >= 1)) || { echo "N, C, S, PROBE must be >= 1" >&2; exit 2; }
((N <= 1000000 && C <= 500 && S <= 10485760 && BIG_MIB <= 1024 && DEEP <= 1000000 && RECOVERY_PROBE >= 1)) || { echo "option out of range" >&2; exit 2; }

LOOP=127.0.0.1              # the only address this script ever connects to
SENDER=bench@sender.test
RCPT=rcpt@example.test
DOMAIN=example.test
# The big message: total size just under BIG_MIB MiB including smtp-source's
# ~250 bytes of headers, so it fits BackupMx's default 50 MiB MaxMessageBytes.
BIG_BODY=$((BIG_MIB * 1048576 - 4096))
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"

# ------------------------------------------------ utilities (bench/lib.sh) --
source "$BENCH_DIR/lib.sh"

# --------------------------------------------------- resource monitoring --
MON_PID=""
mon_start() {  # mon_start PID TAG
  local ready="$WORK/mon.$2.ready"
  rm -f "$ready"
  python3 "$BENCH_DIR/procmon.py" --pid "$1" --interval 0.25 --ready "$ready" \
    --out "$WORK/mon.$2.json" >/dev/null 2>>"$WORK/procmon.log" &
  MON_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do [[ -e "$ready" ]] && return 0; sleep 0.05; done
  log "warning: procmon not ready after 5 s"
}
mon_stop() {   # mon_stop SYS TAG MSGS -> records peak RSS/PSS/HWM and CPU ms/msg
  local sys=$1 tag=$2 msgs=$3 f="$WORK/mon.$1.$2.json"
  kill_wait "$MON_PID" 10; MON_PID=""
  [[ -s "$f" ]] || { log "warning: no procmon output for $tag"; return 0; }
  local rss pss hwm cpu start
  rss=$(jget "$f" rss_peak_kib) pss=$(jget "$f" pss_peak_kib) hwm=$(jget "$f" hwm_kib)
  cpu=$(jget "$f" cpu_ms) start=$(jget "$f" rss_start_kib)
  # peak = larger of the sampled summed RSS and the exact VmHWM of the root process
  local peak=$rss; ((hwm > peak)) && peak=$hwm
  rec "$sys.$tag.rss_peak_mib" "$(calc "$peak/1024")"
  rec "$sys.$tag.pss_peak_mib" "$(calc "$pss/1024")"
  rec "$sys.$tag.rss_start_mib" "$(calc "$start/1024")"
  rec "$sys.$tag.cpu_ms" "$cpu"
  ((msgs > 0)) && rec "$sys.$tag.cpu_ms_per_msg" "$(calc "$cpu/$msgs" 3)"
  rec "$sys.$tag.procs_max" "$(jget "$f" procs_max)"
  return 0
}

# ------------------------------------------------------------------ sink --
SINK_PID="" SINK_PORT="" SINK_DIR="" SINK_ROOT=""
# sink_start DUMPDIR|"" : smtp-sink on $SINK_PORT; with a dump dir it writes one
# file per transaction (our delivery counter), without it it just discards.
sink_start() {
  local dump=$1 args=(-h primary.test)
  [[ $EUID -eq 0 ]] && args+=(-u nobody)   # smtp-sink refuses to run as root without -u
  if [[ -n "$dump" ]]; then
    mkdir -p "$dump"; [[ $EUID -eq 0 ]] && chown nobody "$dump"
    args+=(-d "$dump/%H%M%S/")   # a folder per second: the counter lists only the last seconds
  fi
  SINK_DIR=$dump
  smtp-sink "${args[@]}" "$LOOP:$SINK_PORT" 1024 >>"$WORK/smtp-sink.log" 2>&1 &
  SINK_PID=$!
  wait_port "$SINK_PORT" 10 "$SINK_PID" || die "smtp-sink did not start (see $WORK/smtp-sink.log)"
}
sink_stop() { kill_wait "$SINK_PID" 10; SINK_PID=""; }

# sink_watch DIR TARGET TIMEOUT MINSIZE OUT: sinkcount.py started before a flush, waiting for the
# flush to write t0 (mark_t0, or etrn.py just before it sends ETRN), so the interpreter's start-up
# is not counted in the first delivery; sink_watch_end waits for its JSON in OUT.
sink_watch() {
  rm -f "$WORK/t0" "$WORK/t0.ready"
  python3 "$BENCH_DIR/sinkcount.py" --dir "$1" --target "$2" --timeout "$3" --t0-file "$WORK/t0" \
    --ready "$WORK/t0.ready" --min-size $(($4 * 9 / 10)) >"$5" &
  WAIT_PID=$!
  local i
  for ((i = 0; i < 1000; i++)); do [[ -e "$WORK/t0.ready" ]] && return 0; sleep 0.01; done
  log "sinkcount.py did not start within 10 s"
}
sink_watch_end() { wait "$WAIT_PID" || true; WAIT_PID=""; }
# mark_t0: the flush starts now (written atomically for sink_watch's counter).
mark_t0() { now >"$WORK/t0.tmp" && mv -f "$WORK/t0.tmp" "$WORK/t0"; }
# t0_or_now: the t0 a flush wrote, or now if it wrote none (it failed before its command left).
t0_or_now() { [[ -s "$WORK/t0" ]] || mark_t0; cat "$WORK/t0"; }

# sink_wait DIR TARGET TIMEOUT T0 MINSIZE -> JSON on stdout
# (run in the background and waited for, so that an INT/TERM to this script
# is handled at once instead of after the wait's timeout)
WAIT_PID=""
sink_wait() {
  python3 "$BENCH_DIR/sinkcount.py" --dir "$1" --target "$2" --timeout "$3" --t0 "$4" --min-size $(($5 * 9 / 10)) &
  WAIT_PID=$!
  wait "$WAIT_PID" || true
  WAIT_PID=""
}

# source PORT COUNT SIZE SESSIONS TAG -> prints elapsed seconds; rc of smtp-source
source_run() {
  local port=$1 count=$2 size=$3 sess=$4 tag=$5 t0 t1 rc=0
  local tmo=$((120 + count / 5 + size / 100000))
  t0=$(now)
  timeout "$tmo" smtp-source -d -s "$sess" -m "$count" -l "$size" -f "$SENDER" -t "$RCPT" \
    -M client.test "$LOOP:$port" >"$WORK/smtp-source.$tag.log" 2>&1 || rc=$?
  t1=$(now)
  calc "$t1 - $t0" 3
  if ((rc != 0)); then log "smtp-source ($tag) exited $rc: $(tail -2 "$WORK/smtp-source.$tag.log" | tr '\n' ' ')"; fi
  return $rc
}

# -------------------------------------------------------- prerequisites --
ensure_tools() {
  command -v python3 >/dev/null || die "python3 is required"
  if ! command -v postfix >/dev/null || [[ ! -x /usr/sbin/smtp-source || ! -x /usr/sbin/smtp-sink ]]; then
    [[ $EUID -eq 0 ]] || die "postfix (smtp-source/smtp-sink) missing; run as root to apt-get install it"
    log "installing postfix (non-interactive, 'No configuration')"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y -q postfix >"$WORK/apt.log" 2>&1 ||
      { timeout 600 apt-get update -q >>"$WORK/apt.log" 2>&1 && timeout 600 apt-get install -y -q postfix >>"$WORK/apt.log" 2>&1; } ||
      die "apt-get install postfix failed (see $WORK/apt.log)"
  fi
  if [[ ",$SYSTEMS," == *,backupmx,* ]] && ! command -v sqlite3 >/dev/null && [[ $EUID -eq 0 ]]; then
    log "installing sqlite3 (to inspect BackupMx's spool.db)"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q sqlite3 >>"$WORK/apt.log" 2>&1 || log "warning: sqlite3 install failed"
  fi
}

# ---------------------------------------------------------------- Postfix --
PF="" PF_PORT="" PF_MASTER=""
pfctl() {  # postfix -c DIR <cmd>; via script(1) so fatal errors reach stderr
  # (postfix prints to stderr only on a tty; otherwise it logs to syslog,
  # which may not exist, and fails silently).
  if command -v script >/dev/null; then
    timeout 60 script -qec "postfix -c '$PF/etc' $*" /dev/null
  else
    timeout 60 postfix -c "$PF/etc" "$@"
  fi
}

postfix_setup() {
  [[ $EUID -eq 0 ]] || { log "Postfix needs root (its master runs as root)"; return 1; }
  # users/groups the Debian package normally creates
  getent group postfix >/dev/null || groupadd -r postfix
  getent passwd postfix >/dev/null || useradd -r -g postfix -d /var/spool/postfix -s /usr/sbin/nologin postfix
  getent group postdrop >/dev/null || groupadd -r postdrop
  PF="$WORK/postfix"
  mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
  chown postfix:postfix "$PF/data"         # master.lock etc.; must belong to mail_owner
  PF_PORT=$(free_port)
  local pfver=${PF_VERSION:-3.6}
  cat >"$PF/etc/main.cf" <<EOF
# Private Postfix instance for bench/run.sh: a backup MX for $DOMAIN.
# Everything not set here is at its default (durability, concurrency, timers).
compatibility_level = $( [[ $pfver =~ ^[0-9]+\.[0-9]+ ]] && echo "${BASH_REMATCH[0]}" || echo 3.6)
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = pf-backup.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = $DOMAIN
transport_maps = inline:{ $DOMAIN=smtp:[$LOOP]:$SINK_PORT }
alias_maps =
alias_database =
local_recipient_maps =
# not syslog: this instance logs to its own file
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
# the only deviation that changes behaviour: default is 10240000 bytes, too
# small for the big-message phase
message_size_limit = $(((BIG_MIB + 10) * 1048576))
EOF
  # master.cf: Debian's default services, chroot off (no chroot jail set up
  # under a temp dir), smtpd on a free loopback port.
  cat >"$PF/etc/master.cf" <<EOF
$LOOP:$PF_PORT inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  # `postfix check` creates the queue directories with the right owners and
  # modes (what set-permissions would do, without touching system files).
  pfctl check >"$PF/check.log" 2>&1 || { cat "$PF/check.log" >&2; return 1; }
}

postfix_start() {
  postfix_setup || return 1
  pfctl start >"$PF/start.log" 2>&1 || { cat "$PF/start.log" >&2; tail -5 "$PF/maillog" >&2 2>/dev/null; return 1; }
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$PF/queue/pid/master.pid" ]] && break; sleep 0.1
  done
  PF_MASTER=$(tr -d ' \n' <"$PF/queue/pid/master.pid" 2>/dev/null || true)
  [[ -n "$PF_MASTER" ]] || { log "no Postfix master pid"; return 1; }
  wait_port "$PF_PORT" 30 "$PF_MASTER" || { log "Postfix smtpd not listening"; tail -5 "$PF/maillog" >&2; return 1; }
  SYS_PORT=$PF_PORT SYS_PID=$PF_MASTER
  log "Postfix $PF_VERSION master pid $PF_MASTER, smtpd $LOOP:$PF_PORT, queue $PF/queue"
}

postfix_stop() {
  [[ -n "$PF" && -n "$PF_MASTER" ]] || return 0
  pfctl stop >/dev/null 2>&1 || pfctl abort >/dev/null 2>&1 || true
  kill_wait "$PF_MASTER" 15
  PF_MASTER=""
}

postfix_queue() {  # messages in the queue (any state)
  find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" "$PF/queue/hold" \
       "$PF/queue/maildrop" -type f 2>/dev/null | wc -l
}
postfix_settled() {  # nothing left in incoming/active: all deferred
  [[ $(find "$PF/queue/incoming" "$PF/queue/active" -type f 2>/dev/null | wc -l) -eq 0 ]]
}
postfix_kick() { mark_t0; timeout 30 postqueue -c "$PF/etc" -f >>"$PF/postqueue.log" 2>&1 || log "postqueue -f failed"; }

# --------------------------------------------------------------- BackupMx --
BMX_PID="" BMX_PORT="" BMX_SPOOL="" BMX_LABEL="BackupMx"
# BMX_DLL (bench/lib.sh): published for this machine's platform, so the operator commands the
# B2 and D phases run are what an operator runs.

backupmx_build() {
  [[ -n "$BACKUPMX_CMD" ]] && { BMX_LABEL="custom: $BACKUPMX_CMD"; return 0; }
  ((SKIP_BUILD)) && return 0
  command -v dotnet >/dev/null || { log "dotnet not found"; return 1; }
  bmx_publish "$WORK/build.log" ||
    { tail -20 "$WORK/build.log" >&2; log "build failed (see $WORK/build.log)"; return 1; }
}

# backupmx_start [PROBE_SECONDS] [keep]: a relay on a fresh spool, or on the last one with "keep".
BMX_ARGS=()
backupmx_start() {
  local probe=${1:-$PROBE} keep=${2:-}
  BMX_PORT=$(free_port)
  BMX_SPOOL="$WORK/backupmx-spool"
  [[ -n "$keep" ]] || { rm -rf "$BMX_SPOOL"; mkdir -p "$BMX_SPOOL"; }
  local probe_ts; probe_ts=$(printf '%02d:%02d:%02d' $((probe / 3600)) $((probe % 3600 / 60)) $((probe % 60)))
  local args=(
    "--BackupMx:HostName=bench.test"
    "--BackupMx:Smtp:Endpoints:0=$LOOP:$BMX_PORT"
    "--BackupMx:Domains:0:Name=$DOMAIN"
    "--BackupMx:Domains:0:Primary=$LOOP:$SINK_PORT"
    "--BackupMx:Spool:Path=$BMX_SPOOL"
    "--BackupMx:Delivery:ProbeInterval=$probe_ts"
    # The admin endpoint (dashboard, /metrics) stays on, as by default, on a free port, so a
    # relay already on the default port does not stop this one from starting.
    "--BackupMx:Admin:Endpoint=$LOOP:$(free_port)"
    # Every sender here is 127.0.0.1: lift the per-client limits, as for Postfix's
    # defaults (it has no per-client rate limit out of the box).
    "--BackupMx:Smtp:MaxConnectionsPerIp=1000"
    "--BackupMx:Smtp:MaxMessagesPerMinutePerIp=0"
    "--Logging:LogLevel:Default=Warning"
  )
  BMX_ARGS=("${args[@]}")
  local cmd dir
  if [[ -n "$BACKUPMX_CMD" ]]; then
    read -r -a cmd <<<"$BACKUPMX_CMD"; dir="$REPO"
  else
    [[ -f "$BMX_DLL" ]] || { log "not built: $BMX_DLL"; return 1; }
    cmd=(dotnet "$BMX_DLL"); dir="$(dirname "$BMX_DLL")"   # cwd = content root (appsettings.json)
  fi
  printf '%q ' "${cmd[@]}" "${args[@]}" >"$WORK/backupmx.cmdline"
  (cd "$dir" && exec "${cmd[@]}" "${args[@]}") >>"$WORK/backupmx.log" 2>&1 &
  BMX_PID=$!
  local rc=0; wait_port "$BMX_PORT" 60 "$BMX_PID" || rc=$?
  if ((rc != 0)); then
    local erc=""; ((rc == 2)) && { wait "$BMX_PID" 2>/dev/null; erc="exit code $?"; }
    log "BackupMx did not listen on $LOOP:$BMX_PORT within 60 s ${erc:+($erc)}; log tail:"
    tail -5 "$WORK/backupmx.log" >&2 || true
    rec backupmx.error "did not start: not listening within 60 s${erc:+, $erc}"
    kill_wait "$BMX_PID" 10; BMX_PID=""
    return 1
  fi
  SYS_PORT=$BMX_PORT SYS_PID=$BMX_PID
  log "BackupMx pid $BMX_PID on $LOOP:$BMX_PORT, spool $BMX_SPOOL, probe $probe_ts"
}

backupmx_stop() { kill_wait "$BMX_PID" 20; BMX_PID=""; }

# Spooled messages: files under <spool>/bodies, or rows per $BMX_QUEUE_SQL in
# <spool>/spool.db if set; -1 = cannot tell (the sink count stays authoritative).
backupmx_queue() {
  if [[ -n "${BMX_QUEUE_SQL:-}" && -f "$BMX_SPOOL/spool.db" ]] && command -v sqlite3 >/dev/null; then
    timeout 10 sqlite3 -readonly "$BMX_SPOOL/spool.db" "$BMX_QUEUE_SQL" 2>/dev/null || echo -1
  elif [[ -d "$BMX_SPOOL/bodies" ]]; then
    find "$BMX_SPOOL/bodies" -type f ! -name '*.tmp' 2>/dev/null | wc -l
  else
    echo -1
  fi
}
backupmx_settled() { true; }
backupmx_kick() { backupmx_etrn; }

# ETRN for the domain from 127.0.0.1, which is the primary's address here (the
# relay accepts ETRN from its domain's primary); t0 is written as the command leaves.
backupmx_etrn() {
  timeout 60 python3 "$BENCH_DIR/etrn.py" "$BMX_PORT" "$DOMAIN" "$WORK/t0" >>"$WORK/etrn.log" 2>&1 ||
    { log "ETRN failed (see $WORK/etrn.log)"; [[ -s "$WORK/t0" ]] || mark_t0; }
}

# An operator command against the running relay's spool (queue, flush ...).
backupmx_cmd() {
  (cd "$(dirname "$BMX_DLL")" && timeout 120 dotnet "$BMX_DLL" "$@" "${BMX_ARGS[@]}")
}

# Seconds since the epoch of the last "went from Down to Up" in the relay's log (UTC ISO stamps).
backupmx_recovered_at() {
  python3 -c 'import datetime,re,sys
t = None
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z .*went from Down to Up", line)
    if m: t = m.group(1)
print("" if t is None else datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.timezone.utc).timestamp())' "$WORK/backupmx.log"
}

# ----------------------------------------------------------------- phases --
SYS_PORT="" SYS_PID=""
LONG_PROBE=3600   # phases A, B, B2 and D: no probe may find the primary before ETRN or flush does

# record_drain SYS PHASE JSON SPOOLED: first delivery, all delivered, drain rate from sinkcount's JSON.
record_drain() {
  local sys=$1 ph=$2 j=$3 spooled=$4 first done
  first=$(jget "$j" first_s) done=$(jget "$j" done_s)
  rec "$sys.$ph.delivered" "$(jget "$j" count)"; rec "$sys.$ph.dups" "$(jget "$j" dups)"
  [[ -n "$first" ]] && rec "$sys.$ph.first_s" "$first"
  if [[ -n "$done" ]]; then
    rec "$sys.$ph.done_s" "$done"
    rec "$sys.$ph.drain_rate" "$(calc "$spooled / ($done - $first + 0.001)")"
  else
    rec "$sys.$ph.error" "only $(jget "$j" count) of $spooled delivered in time"
  fi
}

# BackupMx's other two flushes, each with N fresh messages spooled while the primary is down.
backupmx_flush_phases() {
  local t0 first rec_at
  log "[backupmx] B2: $N more messages while the primary is down, then the operator's flush command"
  sink_stop
  source_run "$BMX_PORT" "$N" "$S" "$C" backupmx.B2 >/dev/null || rec backupmx.B2.error "smtp-source failed"
  sleep 3   # mail accepted while the primary still counted as up is tried at once, and fails
  sink_start "$SINK_ROOT/sink.backupmx.B2"
  mon_start "$BMX_PID" backupmx.B2
  sink_watch "$SINK_DIR" "$N" $((120 + N / 20)) "$S" "$WORK/B2.backupmx.json"
  mark_t0; t0=$(cat "$WORK/t0")
  backupmx_cmd flush "$DOMAIN" >"$WORK/flush.out" 2>&1 || log "flush command failed: $(tail -1 "$WORK/flush.out")"
  rec backupmx.B2.cmd_s "$(calc "$(now) - $t0" 2)"
  sink_watch_end
  mon_stop backupmx B2 "$N"
  record_drain backupmx B2 "$WORK/B2.backupmx.json" "$N"
  alive_or_stop backupmx B2 || return 1

  log "[backupmx] B3: $N more while the primary is down; relay restarted with ProbeInterval ${RECOVERY_PROBE}s"
  sink_stop
  source_run "$BMX_PORT" "$N" "$S" "$C" backupmx.B3 >/dev/null || rec backupmx.B3.error "smtp-source failed"
  sleep 3
  backupmx_stop
  backupmx_start "$RECOVERY_PROBE" keep || { rec backupmx.B3.error "restart failed"; return 1; }
  sleep $((RECOVERY_PROBE + 2))   # its first probes find the primary down
  mon_start "$BMX_PID" backupmx.B3
  sink_watch "$SINK_ROOT/sink.backupmx.B3" "$N" $((120 + N / 20)) "$S" "$WORK/B3.backupmx.json"
  mark_t0; t0=$(cat "$WORK/t0")
  sink_start "$SINK_ROOT/sink.backupmx.B3"
  sink_watch_end
  mon_stop backupmx B3 "$N"
  record_drain backupmx B3 "$WORK/B3.backupmx.json" "$N"
  first=$(jget "$WORK/B3.backupmx.json" first_s) rec_at=$(backupmx_recovered_at)
  if [[ -n "$first" && -n "$rec_at" ]]; then
    rec backupmx.B3.probe_s "$(calc "$rec_at - $t0" 2)"
    rec backupmx.B3.first_after_probe_s "$(calc "$t0 + $first - $rec_at" 2)"
  fi
  alive_or_stop backupmx B3
}

# Phase D: DEEP messages spooled (BackupMx alone), accept rate per 10,000, RSS, queue, ETRN.
deep_phase() {
  local chunk=10000 spooled=0 k=0 m secs rate="" t0 q best="" all=""
  log "==== backupmx: D, $DEEP messages spooled ===="
  backupmx_build || return 0
  backupmx_start "$LONG_PROBE" || { rec backupmx.D.error "did not start"; return 0; }
  mon_start "$BMX_PID" backupmx.D
  while ((spooled < DEEP)); do
    m=$((DEEP - spooled < chunk ? DEEP - spooled : chunk))
    secs=$(source_run "$BMX_PORT" "$m" "$S" "$C" "backupmx.D$k") || { rec backupmx.D.error "smtp-source failed after $spooled"; break; }
    rate=$(calc "$m / $secs")
    ((k == 0)) && rec backupmx.D.rate_first "$rate"
    log "[backupmx] D: $((spooled + m)) spooled; this chunk $rate msg/s"
    spooled=$((spooled + m)) k=$((k + 1))
  done
  mon_stop backupmx D "$spooled"
  rec backupmx.D.rate_last "$rate"; rec backupmx.D.spooled "$spooled"
  rec backupmx.D.rss_now_mib "$(awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$BMX_PID/status")"
  for k in 1 2 3; do
    t0=$(now); backupmx_cmd queue >"$WORK/queue.out" 2>&1 || log "queue failed: $(tail -1 "$WORK/queue.out")"
    q=$(calc "$(now) - $t0" 2); all+="${all:+ }$q"
    [[ -z "$best" ]] || awk "BEGIN { exit !($q < $best) }" && best=$q
  done
  rec backupmx.D.queue_s "$best"; rec backupmx.D.queue_s_all "$all"
  mon_start "$BMX_PID" backupmx.Ddrain
  sink_start "$SINK_ROOT/sink.backupmx.D"
  sink_watch "$SINK_DIR" "$spooled" $((300 + spooled / 20)) "$S" "$WORK/D.backupmx.json"
  backupmx_etrn
  sink_watch_end
  mon_stop backupmx Ddrain "$spooled"
  record_drain backupmx D "$WORK/D.backupmx.json" "$spooled"
  sink_stop
  backupmx_stop
}

# wait_queue_empty SYS TIMEOUT -> prints seconds waited; rc 1 on timeout or unknown
wait_queue_empty() {
  local sys=$1 tmo=$2 t0 q i
  t0=$(now)
  for ((i = 0; i < tmo * 10; i++)); do
    q=$("${sys}_queue")
    ((q < 0)) && return 1            # cannot tell
    ((q == 0)) && { calc "$(now) - $t0" 3; return 0; }
    sleep 0.1
  done
  return 1
}

# alive_or_stop SYS PHASE: if the server died, record it and stop this system.
alive_or_stop() {
  kill -0 "$SYS_PID" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$SYS_PID/stat" 2>/dev/null)" != Z ]] && return 0
  rec "$1.$2.error" "server process $SYS_PID died during phase $2"
  log "[$1] server process died during phase $2; skipping the remaining phases"
  sink_stop; "${1}_stop"; return 1
}

run_system() {
  local sys=$1 secs j spooled
  log "==== $sys ===="
  if [[ $sys == backupmx ]]; then backupmx_build || { rec backupmx.error "build failed"; return 0; }; fi
  if [[ $sys == backupmx ]]; then backupmx_start "$LONG_PROBE" || return 0
  else postfix_start || { rec postfix.error "did not start"; return 0; }; fi
  rec "$sys.label" "$([[ $sys == postfix ]] && echo "Postfix $PF_VERSION" || echo "$BMX_LABEL")"

  # ---- A: primary down --------------------------------------------------
  log "[$sys] A: primary down, $N x $S B from $C sessions (smtp-source)"
  mon_start "$SYS_PID" "$sys.A"
  local arc=0
  secs=$(source_run "$SYS_PORT" "$N" "$S" "$C" "$sys.A") || arc=$?
  mon_stop "$sys" A "$N"
  if ((arc != 0)); then
    rec "$sys.A.error" "smtp-source failed: $(tail -1 "$WORK/smtp-source.$sys.A.log")"
    log "[$sys] phase A failed; skipping the remaining phases for $sys"
    "${sys}_stop"; return 0
  fi
  rec "$sys.A.secs" "$secs"
  rec "$sys.A.rate" "$(calc "$N / $secs")"
  spooled=$N
  if ((L > 0)); then
    log "[$sys] A: latency sample, $L messages from $C sessions (smtplat.py)"
    mon_start "$SYS_PID" "$sys.Alat"
    timeout $((60 + L)) python3 "$BENCH_DIR/smtplat.py" --port "$SYS_PORT" --count "$L" \
      --concurrency "$C" --size "$S" --timeout $((30 + L)) >"$WORK/lat.$sys.json" 2>>"$WORK/smtplat.log" || true
    mon_stop "$sys" Alat "$L"
    j="$WORK/lat.$sys.json"
    rec "$sys.A.lat_p50_ms" "$(jget "$j" p50_ms)"; rec "$sys.A.lat_p99_ms" "$(jget "$j" p99_ms)"
    rec "$sys.A.lat_client_rate" "$(jget "$j" rate)"; rec "$sys.A.lat_failed" "$(jget "$j" failed)"
    local sent; sent=$(jget "$j" sent)
    spooled=$((spooled + ${sent:-0}))
  fi
  # let Postfix's queue manager finish deferring (nothing left in active/incoming)
  local i
  for ((i = 0; i < 1800; i++)); do "${sys}_settled" && break; sleep 0.1; done
  alive_or_stop "$sys" A || return 0
  rec "$sys.B.spooled" "$spooled"
  rec "$sys.B.queue_before" "$("${sys}_queue")"

  # ---- B: primary comes back ---------------------------------------------
  log "[$sys] B: primary comes back; $spooled messages to deliver"
  mon_start "$SYS_PID" "$sys.B"
  sink_start "$SINK_ROOT/sink.$sys.B"
  sink_watch "$SINK_DIR" "$spooled" $((120 + spooled / 20)) "$S" "$WORK/B.$sys.json"
  "${sys}_kick"
  local t0; t0=$(t0_or_now)
  sink_watch_end
  local empty; empty=$(wait_queue_empty "$sys" 60) || empty=""
  [[ -n "$empty" ]] && rec "$sys.B.empty_s" "$(calc "$(now) - $t0" 2)"
  mon_stop "$sys" B "$spooled"
  record_drain "$sys" B "$WORK/B.$sys.json" "$spooled"

  alive_or_stop "$sys" B || return 0

  if [[ $sys == backupmx ]]; then
    backupmx_flush_phases || return 0
  fi

  # ---- C: primary up, end to end -----------------------------------------
  log "[$sys] C: primary up, $N messages end to end"
  mon_start "$SYS_PID" "$sys.C"
  t0=$(now)
  secs=$(source_run "$SYS_PORT" "$N" "$S" "$C" "$sys.C") || rec "$sys.C.error" "smtp-source failed"
  sink_wait "$SINK_DIR" "$N" $((120 + N / 20)) "$t0" "$S" >"$WORK/C.$sys.json"
  mon_stop "$sys" C "$N"
  rec "$sys.C.accept_rate" "$(calc "$N / $secs")"
  done=$(jget "$WORK/C.$sys.json" done_s)
  rec "$sys.C.dups" "$(jget "$WORK/C.$sys.json" dups)"
  if [[ -n "$done" ]]; then rec "$sys.C.e2e_rate" "$(calc "$N / $done")"; rec "$sys.C.e2e_s" "$done"
  else rec "$sys.C.error" "only $(jget "$WORK/C.$sys.json" count) of $N delivered in time"; fi

  alive_or_stop "$sys" C || return 0

  # ---- big message ---------------------------------------------------------
  if ((BIG_MIB > 0)); then
    log "[$sys] big: one ${BIG_MIB} MiB message while the primary is down, then forwarded"
    sink_stop
    if [[ $sys == backupmx ]]; then
      # A fresh process: after phases A-C the managed heap has grown and been collected, and
      # memory it keeps mapped would absorb the message's buffers without any growth in RSS,
      # so a VmHWM delta in that process says nothing. Baseline = the settled fresh process.
      backupmx_stop
      backupmx_start || { rec "$sys.big.error" "restart failed"; return 0; }
      sleep 3
    fi
    sleep 1
    mon_start "$SYS_PID" "$sys.big"
    secs=$(source_run "$SYS_PORT" 1 "$BIG_BODY" 1 "$sys.big") || rec "$sys.big.error" "not accepted"
    rec "$sys.big.accept_s" "$secs"
    t0=$(now)
    sink_start "$SINK_ROOT/sink.$sys.big"
    "${sys}_kick"
    sink_wait "$SINK_ROOT/sink.$sys.big" 1 $((PROBE + 180)) "$t0" "$BIG_BODY" >"$WORK/big.$sys.json"
    mon_stop "$sys" big 0
    done=$(jget "$WORK/big.$sys.json" done_s)
    [[ -n "$done" ]] && rec "$sys.big.deliver_s" "$done" || rec "$sys.big.error" "not delivered in time"
    local f="$WORK/mon.$sys.big.json" start peak hwm
    start=$(jget "$f" rss_start_kib) peak=$(jget "$f" rss_peak_kib) hwm=$(jget "$f" hwm_kib)
    ((hwm > peak)) && peak=$hwm
    rec "$sys.big.growth_mib" "$(calc "($peak - $start) / 1024")"
    rec "$sys.big.size_mib" "$(calc "($BIG_BODY + 4096) / 1048576" 2)"
  fi

  # ---- optional: Postfix on its retry timers alone --------------------------
  if [[ $sys == postfix ]] && ((POSTFIX_RETRY)); then
    log "[postfix] retry timers: $N messages while down, then wait WITHOUT postqueue -f (up to ${RETRY_TIMEOUT}s)"
    sink_stop
    source_run "$SYS_PORT" "$N" "$S" "$C" postfix.R >/dev/null || true
    for ((i = 0; i < 1800; i++)); do postfix_settled && break; sleep 0.1; done
    t0=$(now)
    sink_start "$SINK_ROOT/sink.postfix.R"
    sink_wait "$SINK_ROOT/sink.postfix.R" "$N" "$RETRY_TIMEOUT" "$t0" "$S" >"$WORK/R.postfix.json"
    rec postfix.R.first_s "$(jget "$WORK/R.postfix.json" first_s)"
    rec postfix.R.done_s "$(jget "$WORK/R.postfix.json" done_s)"
    rec postfix.R.delivered "$(jget "$WORK/R.postfix.json" count)"
  fi

  sink_stop
  "${sys}_stop"
  cp -f "$WORK/backupmx.log" "$OUTDIR/backupmx-$STAMP.log" 2>/dev/null || true
  [[ -n "$PF" ]] && cp -f "$PF/maillog" "$OUTDIR/postfix-maillog-$STAMP.log" 2>/dev/null || true
}

# ---------------------------------------------------------------- cleanup --
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [[ -n "$WAIT_PID" ]] && kill_wait "$WAIT_PID" 5
  [[ -n "$MON_PID" ]] && kill_wait "$MON_PID" 5
  [[ -n "$SINK_PID" ]] && sink_stop
  [[ -n "$BMX_PID" ]] && backupmx_stop
  [[ -n "$PF_MASTER" ]] && postfix_stop
  [[ -n "$SINK_ROOT" && "$SINK_ROOT" != "$WORK" ]] && rm -rf "$SINK_ROOT"
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if ((KEEP)) || ((rc != 0)); then log "temporary files kept in $WORK"
    else rm -rf "$WORK"; fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------- main --
mkdir -p "$OUTDIR" "$WORKROOT"
WORK="$(mktemp -d "$WORKROOT/backupmx-bench.XXXXXX")"
chmod 755 "$WORK"          # Postfix daemons (user postfix) must traverse it
# The primary stand-in's dumps go to a RAM file system where there is one: the primary is
# another machine, and its writes must not compete with the spool's for this disk.
SINK_ROOT=$WORK
if [[ -d /dev/shm && -w /dev/shm ]] && [[ "$(stat -f -c %T /dev/shm)" == tmpfs ]]; then
  SINK_ROOT="$(mktemp -d /dev/shm/backupmx-bench-sink.XXXXXX)"; chmod 755 "$SINK_ROOT"
fi
RES="$WORK/results.txt"; : >"$RES"
ensure_tools
# Postfix version from the compiled-in defaults (-d) of an empty config dir:
# works even where /etc/postfix/main.cf does not exist ("No configuration").
mkdir -p "$WORK/empty-cf"
PF_VERSION=$(postconf -c "$WORK/empty-cf" -d -h mail_version 2>/dev/null || echo unknown)
SINK_PORT=$(free_port)
START_TS=$(now)

rec meta.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
cmdline="bench/run.sh -n $N -c $C -s $S -l $L -b $BIG_MIB -p $PROBE --recovery-probe $RECOVERY_PROBE --systems $SYSTEMS"
((DEEP > 0)) && cmdline+=" --deep $DEEP"
((POSTFIX_RETRY)) && cmdline+=" --postfix-retry"
[[ -n "$BACKUPMX_CMD" ]] && cmdline+=" --backupmx-cmd '$BACKUPMX_CMD'"
rec meta.cmd "$cmdline"
rec meta.deep "$DEEP"; rec meta.recovery_probe "$RECOVERY_PROBE"
rec meta.n "$N"; rec meta.c "$C"; rec meta.s "$S"; rec meta.l "$L"; rec meta.big_mib "$BIG_MIB"; rec meta.probe "$PROBE"
rec meta.postfix_retry "$POSTFIX_RETRY"
rec meta.nproc "$(nproc)"
rec meta.cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
rec meta.mem "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
rec meta.kernel "$(uname -sr)"
rec meta.disk "$(df -PT "$WORK" | awk 'NR==2 {print $1 " (" $2 "), " $3/1048576 " GiB"}' | sed -E 's/([0-9]+)\.[0-9]+ GiB/\1 GiB/')"
if [[ "$SINK_ROOT" == "$WORK" ]]; then rec meta.sink_dumps "on the disk of the spools"
else rec meta.sink_dumps "on $(stat -f -c %T "$SINK_ROOT") ($(dirname "$SINK_ROOT")), as the primary is another machine"; fi
rec meta.postfix "$PF_VERSION"
rec meta.dotnet "$(dotnet --version 2>/dev/null || echo none)"
rec meta.python "$(python3 -V 2>&1)"

log "work dir $WORK; N=$N C=$C S=$S L=$L big=${BIG_MIB}MiB probe=${PROBE}s systems=$SYSTEMS"

log "disk: synchronous 4 KiB write+fsync rate in $WORK"
python3 "$BENCH_DIR/fsyncrate.py" "$WORK" --seconds 3 >"$WORK/fsync.json"
rec env.fsync_rate "$(jget "$WORK/fsync.json" ops_per_s)"
rec env.fsync_p50_ms "$(jget "$WORK/fsync.json" p50_ms)"

log "loopback ceiling: smtp-source -> smtp-sink, $N x $S B, $C sessions"
sink_start ""
secs=$(source_run "$SINK_PORT" "$N" "$S" "$C" ceiling) && rec env.ceiling_rate "$(calc "$N / $secs")"
sink_stop
sink_start "$SINK_ROOT/sink.ceiling"
secs=$(source_run "$SINK_PORT" "$N" "$S" "$C" ceiling-dump) && rec env.ceiling_dump_rate "$(calc "$N / $secs")"
sink_stop
rm -rf "$SINK_ROOT/sink.ceiling"

IFS=',' read -r -a sys_list <<<"$SYSTEMS"
for sys in "${sys_list[@]}"; do
  case "$sys" in
    postfix|backupmx) run_system "$sys" ;;
    *) log "unknown system '$sys' (postfix, backupmx)";;
  esac
done
if ((DEEP > 0)) && [[ ",$SYSTEMS," == *,backupmx,* ]]; then deep_phase; fi

log "disk: synchronous write rate again (it varies on virtual disks)"
python3 "$BENCH_DIR/fsyncrate.py" "$WORK" --seconds 3 >"$WORK/fsync-end.json"
rec env.fsync_rate_end "$(jget "$WORK/fsync-end.json" ops_per_s)"
rec env.fsync_p50_ms_end "$(jget "$WORK/fsync-end.json" p50_ms)"
rec meta.wall_s "$(calc "$(now) - $START_TS" 0)"
cp "$RES" "$OUTDIR/results-$STAMP.txt"
python3 "$BENCH_DIR/report.py" "$RES" | tee "$OUTDIR/bench-$STAMP.md"
cp -f "$OUTDIR/bench-$STAMP.md" "$OUTDIR/latest.md"
log "table written to $OUTDIR/bench-$STAMP.md (raw: results-$STAMP.txt)"
