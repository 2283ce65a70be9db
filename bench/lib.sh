# bench/lib.sh -- shell helpers shared by bench/run.sh and bench/soak.sh (sourced).
# The caller sets LOOP (the only address contacted), WORK and RES.
# -------------------------------------------------------------- utilities --
log()  { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die()  { log "FATAL: $*"; exit 1; }
now()  { date +%s.%N; }
calc() { awk "BEGIN { x = $1; printf \"%.${2:-1}f\", x }"; }
jget() { python3 -c 'import json,sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2" 2>/dev/null || true; }

WORK="" RES=""
rec() { printf '%s=%s\n' "$1" "$2" >>"$RES"; }

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT TIMEOUT_S [PID]: until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 tmo=$2 pid=${3:-} i
  for ((i = 0; i < tmo * 10; i++)); do
    if (exec 3<>"/dev/tcp/$LOOP/$port") 2>/dev/null; then return 0; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    sleep 0.1
  done
  return 1
}

# kill_wait PID TIMEOUT_S: TERM, wait (bounded), then KILL.
kill_wait() {
  local pid=$1 tmo=${2:-10} i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < tmo * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    # a zombie that is not our child counts as gone
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------- BackupMx --
# BackupMx as docs/install.md installs it: published for this machine's platform, so the
# relay and the operator commands measured are precompiled as an operator's are.
# The caller sets REPO.
case "$(uname -m)" in
  x86_64) BMX_RID=linux-x64 ;; aarch64|arm64) BMX_RID=linux-arm64 ;; *) BMX_RID="" ;;
esac
BMX_DLL="$REPO/src/BackupMx.Server/bin/Release/net10.0/${BMX_RID:+$BMX_RID/}publish/BackupMx.Server.dll"

# bmx_publish LOGFILE: dotnet publish of the relay (up to 15 minutes).
bmx_publish() {
  log "dotnet publish -c Release ${BMX_RID:+-r $BMX_RID }src/BackupMx.Server"
  (cd "$REPO" && timeout 900 dotnet publish -c Release ${BMX_RID:+-r "$BMX_RID"} src/BackupMx.Server -nologo) >"$1" 2>&1
}
