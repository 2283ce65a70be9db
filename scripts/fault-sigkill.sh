#!/usr/bin/env bash
# The long SIGKILL run: the built embedded server is killed with SIGKILL at random
# moments while 20 clients send and a fake primary keeps going down and coming back;
# every message that got 250 must reach the primary exactly once or more (duplicates
# are counted and printed, loss fails the run).
#
# It is the suite's own test (SigkillTests) with bigger numbers, selected by name, so
# the code that runs in CI and the code that runs here cannot drift apart.
#
#   scripts/fault-sigkill.sh [KILLS] [MESSAGES] [SEED]     defaults: 20 kills, 2000 messages, random seed
set -euo pipefail
cd "$(dirname "$0")/.."

export BACKUPMX_SIGKILL_KILLS="${1:-20}"
export BACKUPMX_SIGKILL_MESSAGES="${2:-2000}"
if [ -n "${3:-}" ]; then
  export BACKUPMX_SIGKILL_SEED="$3"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test tests/BackupMx.EndToEnd.Tests -c "${CONFIGURATION:-Release}" \
  --filter "FullyQualifiedName~SigkillTests" \
  --logger "console;verbosity=detailed" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

echo
echo "== summary"
grep -E '^\[sigkill\] (SIGKILL run|sending|RESULT|  duplicate)' "$log" || echo "no result line: see the log above"
exit "$status"
