#!/usr/bin/env bash
# bench/soak.sh -- soak test of BackupMx (embedded mode), not part of CI.
# See bench/README.md ("Soak").  Usage: bench/soak.sh -h
#
# For --duration (default 1 h), on loopback only:
#   * a load generator (bench/soakload.py) sends uniquely numbered messages at
#     --rate msg/s (default: half the maximum accept rate, measured first with
#     an smtp-source burst into a throw-away relay whose primary is down) and
#     retries what was not answered 250, as a sending MTA would;
#   * the primary (bench/soaksink.py, records Message-Id + queue id of every
#     message before its 250) flaps: up --flap, down --flap, ... (SIGKILLed
#     when it goes down, so sessions in flight are cut);
#   * the relay is SIGKILLed every --kill-every and restarted at once on the
#     same spool, port and configuration;
#   * the relay's RSS is sampled every --interval s (bench/soakrss.py).
# Then the primary stays up, the sender retries what it still holds, and the
# spool drains.  bench/soakreport.py prints the Markdown summary (RSS first vs
# last window, per-lifetime peaks, accepted / delivered / lost / duplicates,
# verdicts), also written to bench/out/soak-<UTC stamp>.md.
set -Eeuo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"

# ---------------------------------------------------------------- options --
DURATION=1h RATE="" FLAP=2m KILL_EVERY=10m KILL_OFFSET="" PROBE=5 SESSIONS=20 SIZE=4096
INTERVAL=5 WINDOW=10m DRAIN=10m BURST=3000 TRACE=1 SKIP_BUILD=0 KEEP=0
WORKROOT="${TMPDIR:-/tmp}" OUTDIR="$BENCH_DIR/out"

usage() {
  cat <<EOF
Usage: bench/soak.sh [options]        (durations: 90, 90s, 10m, 1h)
  --duration D      how long load, flaps and kills go on (default $DURATION)
  --rate R          new messages per second (default: half the measured
                    maximum accept rate)
  --burst N         messages in the smtp-source burst that measures the
                    maximum accept rate (default $BURST)
  --flap D          the primary is up for D, down for D, ... (default $FLAP;
                    0 = always up)
  --kill-every D    SIGKILL + restart of the relay every D (default $KILL_EVERY;
                    0 = never)
  --kill-offset D   the first kill comes at --kill-every + D (default: --flap
                    + 10 s, so with the defaults kills fall 10 s into a phase,
                    alternately while the backlog drains and while the primary
                    is down, never on a flap itself)
  --probe S         the relay's Delivery:ProbeInterval in seconds (default $PROBE)
  --sessions C      concurrent sender sessions (default $SESSIONS)
  --size B          message body size in bytes (default $SIZE)
  --interval S      RSS sample interval in seconds (default $INTERVAL)
  --window D        RSS comparison window, first vs last (default $WINDOW,
                    at most a third of --duration)
  --drain D         at most this long for the final drain (default $DRAIN)
  --no-trace        relay logs warnings only; by default it also logs each
                    message's life (accepted, attempted, delivered, finished;
                    Information), the evidence should one be lost
  --skip-build      do not run dotnet publish
  --workdir DIR     where the temporary directory goes (default $WORKROOT)
  --out DIR         where the summary is written (default bench/out)
  --keep            keep the temporary directory (kept anyway on failure,
                    loss or crash)
EOF
}

secs_of() {  # 90 | 90s | 10m | 1h -> seconds
  local v=$1
  [[ $v =~ ^([0-9]+)([smh]?)$ ]] || { echo "bad duration: $v" >&2; exit 2; }
  case "${BASH_REMATCH[2]}" in
    h) echo $((BASH_REMATCH[1] * 3600)) ;; m) echo $((BASH_REMATCH[1] * 60)) ;; *) echo "${BASH_REMATCH[1]}" ;;
  esac
}

while (($#)); do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --burst) BURST="$2"; shift 2 ;;
    --flap) FLAP="$2"; shift 2 ;;
    --kill-every) KILL_EVERY="$2"; shift 2 ;;
    --kill-offset) KILL_OFFSET="$2"; shift 2 ;;
    --probe) PROBE="$2"; shift 2 ;;
    --sessions) SESSIONS="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --window) WINDOW="$2"; shift 2 ;;
    --drain) DRAIN="$2"; shift 2 ;;
    --no-trace) TRACE=0; shift ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --workdir) WORKROOT="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
DUR_S=$(secs_of "$DURATION") FLAP_S=$(secs_of "$FLAP") KILL_S=$(secs_of "$KILL_EVERY")
WINDOW_S=$(secs_of "$WINDOW") DRAIN_S=$(secs_of "$DRAIN")
KILL_OFFSET_S=$(secs_of "${KILL_OFFSET:-$((FLAP_S > 0 ? FLAP_S + 10 : 0))}")
((WINDOW_S > DUR_S / 3)) && WINDOW_S=$((DUR_S / 3))
for v in PROBE SESSIONS SIZE INTERVAL BURST; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || { echo "--${v,,} must be a positive integer" >&2; exit 2; }
done
[[ -z "$RATE" || "$RATE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "--rate must be a number" >&2; exit 2; }
((DUR_S >= 60)) || { echo "--duration must be at least 60 s" >&2; exit 2; }

LOOP=127.0.0.1              # the only address this script ever connects to
DOMAIN=example.test
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
source "$BENCH_DIR/lib.sh"

BMX_PID="" SINK_PID="" RSS_PID="" LOAD_PID=""
T0=""
ev() { printf '%s %s\n' "$(calc "$(now) - $T0" 1)" "$*" >>"$WORK/events.log"; log "$*"; }

# relay_start SPOOL PORT SINKPORT LOGFILE: starts the relay, waits until it listens.
relay_start() {
  local spool=$1 port=$2 sink=$3 logf=$4
  local probe_ts; probe_ts=$(printf '%02d:%02d:%02d' $((PROBE / 3600)) $((PROBE % 3600 / 60)) $((PROBE % 60)))
  local args=(
    "--BackupMx:HostName=soak.test"
    "--BackupMx:Smtp:Endpoints:0=$LOOP:$port"
    "--BackupMx:Domains:0:Name=$DOMAIN"
    "--BackupMx:Domains:0:Primary=$LOOP:$sink"
    "--BackupMx:Spool:Path=$spool"
    "--BackupMx:Delivery:ProbeInterval=$probe_ts"
    # every sender here is 127.0.0.1: lift the per-client limits (as bench/run.sh)
    "--BackupMx:Smtp:MaxConnectionsPerIp=1000"
    "--BackupMx:Smtp:MaxMessagesPerMinutePerIp=0"
    # no admin endpoint: its default port is fixed and may be taken on a shared machine
    "--BackupMx:Admin:Endpoint="
    "--Logging:LogLevel:Default=Warning"
  )
  if ((TRACE)); then
    args+=("--Logging:LogLevel:BackupMx.Core.Intake=Information"
           "--Logging:LogLevel:BackupMx.Core.Forwarding=Information"
           "--Logging:LogLevel:BackupMx.Core.Monitoring=Information")
  fi
  (cd "$(dirname "$BMX_DLL")" && exec dotnet "$BMX_DLL" "${args[@]}") >>"$logf" 2>&1 &
  BMX_PID=$!
  local rc=0; wait_port "$port" 60 "$BMX_PID" || rc=$?
  ((rc == 0)) || { log "relay did not listen on $LOOP:$port within 60 s (rc $rc); log tail:"; tail -5 "$logf" >&2; return 1; }
}

sink_up() {
  python3 "$BENCH_DIR/soaksink.py" --port "$SINK_PORT" --record "$WORK/sink.log" 2>>"$WORK/sink.err" &
  SINK_PID=$!
  wait_port "$SINK_PORT" 10 "$SINK_PID" || die "sink did not start (see $WORK/sink.err)"
}
sink_down() {  # a primary that goes away: SIGKILL, sessions in flight are cut
  [[ -n "$SINK_PID" ]] || return 0
  kill -KILL "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
}

relay_alive() {
  [[ -n "$BMX_PID" ]] && kill -0 "$BMX_PID" 2>/dev/null &&
    [[ "$(awk '{print $3}' "/proc/$BMX_PID/stat" 2>/dev/null)" != Z ]]
}

# relay_restart WHY: SIGKILL (if still alive) and start again on the same spool.
LIFE=0
relay_restart() {
  local why=$1 old=$BMX_PID t
  if relay_alive; then kill -KILL "$old" 2>/dev/null || true; fi
  wait "$old" 2>/dev/null || true
  LIFE=$((LIFE + 1))
  printf '\n===== lifetime %d (after %s of pid %s) at %s =====\n' "$LIFE" "$why" "$old" "$(date -u +%T)" >>"$WORK/relay.log"
  t=$(now)
  relay_start "$SPOOL" "$PORT" "$SINK_PORT" "$WORK/relay.log" || { ev "restart-failed"; return 1; }
  echo "$BMX_PID" >"$WORK/relay.pid"
  ev "restarted pid=$BMX_PID after=$why old=$old listening_s=$(calc "$(now) - $t" 2)"
}

spool_count() {  # records left in the spool (-1: cannot tell)
  [[ -f "$SPOOL/spool.db" ]] || { echo -1; return; }
  timeout 20 sqlite3 -readonly "$SPOOL/spool.db" \
    'select (select count(*) from spool) + (select count(*) from quarantine)' 2>/dev/null || echo -1
}
# Body files: a SIGKILL between a finished record's deletion and its body's leaves
# an orphan that the next start removes (after a grace period); not a message.
body_count() { find "$SPOOL/bodies" -type f ! -name '*.tmp' 2>/dev/null | wc -l; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [[ -n "$LOAD_PID" ]] && kill_wait "$LOAD_PID" 5
  [[ -n "$RSS_PID" ]] && kill_wait "$RSS_PID" 5
  sink_down
  [[ -n "$BMX_PID" ]] && kill_wait "$BMX_PID" 20
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if ((KEEP)) || ((rc != 0)) || [[ -e "$WORK/keep" ]]; then log "temporary files kept in $WORK"
    else rm -rf "$WORK"; fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------- main --
command -v python3 >/dev/null || die "python3 is required"
command -v sqlite3 >/dev/null || die "sqlite3 is required (to count the spool's records)"
mkdir -p "$OUTDIR" "$WORKROOT"
WORK="$(mktemp -d "$WORKROOT/backupmx-soak.XXXXXX")"
RES="$WORK/results.txt"; : >"$RES"
SPOOL="$WORK/spool" PORT=$(free_port) SINK_PORT=$(free_port)
mkdir -p "$SPOOL"
log "work dir $WORK"

if ((!SKIP_BUILD)); then
  bmx_publish "$WORK/build.log" ||
    { tail -20 "$WORK/build.log" >&2; die "build failed (see $WORK/build.log)"; }
fi
[[ -f "$BMX_DLL" ]] || die "not built: $BMX_DLL"

rec meta.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
rec meta.cmd "bench/soak.sh --duration $DURATION --flap $FLAP --kill-every $KILL_EVERY --kill-offset ${KILL_OFFSET_S}s --probe $PROBE --sessions $SESSIONS --size $SIZE${RATE:+ --rate $RATE}$( ((TRACE)) || echo ' --no-trace')"
rec meta.commit "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted changes in src/)')"
rec meta.nproc "$(nproc)"
rec meta.cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
rec meta.mem "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
rec meta.dotnet "$(dotnet --version 2>/dev/null || echo none)"
rec meta.load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta.duration_s "$DUR_S"; rec meta.flap_s "$FLAP_S"; rec meta.kill_s "$KILL_S"; rec meta.kill_offset_s "$KILL_OFFSET_S"
rec meta.window_s "$WINDOW_S"; rec meta.probe_s "$PROBE"; rec meta.size "$SIZE"; rec meta.sessions "$SESSIONS"

# ---- maximum accept rate: smtp-source burst, throw-away relay, primary down --
if [[ -z "$RATE" ]]; then
  command -v smtp-source >/dev/null || die "smtp-source (postfix) is needed to measure the accept rate; or give --rate"
  log "maximum accept rate: $BURST x $SIZE B from $SESSIONS sessions (smtp-source), primary down"
  mkdir -p "$WORK/burst-spool"
  bport=$(free_port)
  relay_start "$WORK/burst-spool" "$bport" "$SINK_PORT" "$WORK/burst-relay.log" || die "relay did not start"
  t=$(now)
  timeout $((120 + BURST / 5)) smtp-source -d -s "$SESSIONS" -m "$BURST" -l "$SIZE" -f burst@sender.test \
    -t "rcpt@$DOMAIN" -M client.test "$LOOP:$bport" >"$WORK/burst.log" 2>&1 || die "smtp-source burst failed: $(tail -2 "$WORK/burst.log")"
  secs=$(calc "$(now) - $t" 3)
  kill_wait "$BMX_PID" 20; BMX_PID=""
  rm -rf "$WORK/burst-spool"
  MAX=$(calc "$BURST / $secs" 0)
  RATE=$(calc "$MAX / 2" 0)
  rec burst.max_rate "$MAX"; rec burst.secs "$secs"; rec burst.n "$BURST"
  log "maximum accept rate $MAX msg/s ($BURST in $secs s); soak rate $RATE msg/s"
fi
rec load.rate "$RATE"

# ---- the soak ----------------------------------------------------------------
: >"$WORK/events.log"; : >"$WORK/sink.log"; : >"$WORK/accepted.log"; : >"$WORK/failed.log"
sink_up
SINK_STATE=up
relay_start "$SPOOL" "$PORT" "$SINK_PORT" "$WORK/relay.log" || die "relay did not start"
echo "$BMX_PID" >"$WORK/relay.pid"
T0=$(now)          # time 0 of flaps, kills, load and RSS samples: the relay listens
ev "start relay_pid=$BMX_PID port=$PORT sink_port=$SINK_PORT rate=$RATE"
python3 "$BENCH_DIR/soakrss.py" --pid-file "$WORK/relay.pid" --out "$WORK/rss.log" --t0 "$T0" \
  --interval "$INTERVAL" 2>>"$WORK/soakrss.err" &
RSS_PID=$!
python3 "$BENCH_DIR/soakload.py" --port "$PORT" --rate "$RATE" --seconds "$DUR_S" --sessions "$SESSIONS" \
  --size "$SIZE" --run "$STAMP" --accepted "$WORK/accepted.log" --failed "$WORK/failed.log" \
  --drain-seconds "$DRAIN_S" --t0 "$T0" >"$WORK/load.json" 2>"$WORK/load.err" &
LOAD_PID=$!

next_kill=$((KILL_S + KILL_OFFSET_S))
crashes=0
while :; do
  el=$(calc "$(now) - $T0" 0)
  ((el >= DUR_S)) && break
  if ((FLAP_S > 0)); then
    want=$(( (el / FLAP_S) % 2 == 0 ? 1 : 0 ))
    if ((want)) && [[ $SINK_STATE == down ]]; then sink_up; SINK_STATE=up; ev "primary-up"
    elif ((!want)) && [[ $SINK_STATE == up ]]; then sink_down; SINK_STATE=down; ev "primary-down"; fi
  fi
  if ! relay_alive; then
    crashes=$((crashes + 1)); touch "$WORK/keep"
    ev "CRASH relay pid=$BMX_PID exited on its own; log: $(tail -3 "$WORK/relay.log" | tr '\n' ' ' | cut -c1-400)"
    relay_restart crash || die "relay did not restart"
  elif ((KILL_S > 0 && el >= next_kill)); then
    ev "kill pid=$BMX_PID spool_records=$(spool_count)"
    relay_restart SIGKILL || die "relay did not restart"
    next_kill=$((next_kill + KILL_S))
  fi
  kill -0 "$LOAD_PID" 2>/dev/null || die "load generator exited early: $(tail -3 "$WORK/load.err")"
  sleep 1
done

# ---- final drain: primary up, no more kills; the sender retries what it holds --
[[ $SINK_STATE == down ]] && { sink_up; SINK_STATE=up; ev "primary-up (final)"; }
ev "end-of-load spool_records=$(spool_count)"
wait "$LOAD_PID" || log "load generator exited $?"
LOAD_PID=""
ev "sender-done $(cat "$WORK/load.json" 2>/dev/null)"
deadline=$(($(date +%s) + DRAIN_S)); zero=0
while (($(date +%s) < deadline)); do
  relay_alive || { crashes=$((crashes + 1)); touch "$WORK/keep"
    ev "CRASH relay pid=$BMX_PID during the drain; log: $(tail -3 "$WORK/relay.log" | tr '\n' ' ' | cut -c1-400)"
    relay_restart crash || break; }
  n=$(spool_count)
  if ((n == 0)); then zero=$((zero + 1)); ((zero >= 2)) && break; else zero=0; fi
  sleep 2
done
ev "drained spool_records=$(spool_count) body_files=$(body_count)"
rec drain.spool_left "$(spool_count)"
rec drain.body_files "$(body_count)"
rec relay.crashes "$crashes"
rec meta.load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
kill_wait "$RSS_PID" 5; RSS_PID=""
sink_down
kill_wait "$BMX_PID" 20; BMX_PID=""

rc=0
python3 "$BENCH_DIR/soakreport.py" --work "$WORK" >"$OUTDIR/soak-$STAMP.md" || rc=$?
cat "$OUTDIR/soak-$STAMP.md"
cp -f "$OUTDIR/soak-$STAMP.md" "$OUTDIR/soak-latest.md"
cp -f "$WORK/events.log" "$OUTDIR/soak-$STAMP.events.log"
log "summary written to $OUTDIR/soak-$STAMP.md"
# a loss, a crash or a failed verdict: keep everything for the evidence
((rc != 0 || crashes > 0)) && { touch "$WORK/keep"; log "evidence kept in $WORK (relay.log, sink.log, accepted.log, spool/)"; }
exit 0
