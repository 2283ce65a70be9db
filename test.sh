#!/usr/bin/env bash
# Runs every BackupMx test: the infrastructure checks (bicep build + lint), the
# receiver's container image (built and run by scripts/check-receiver-image.sh),
# the function app's deployment package (scripts/check-functions-package.sh),
# a real Postfix as the primary (scripts/check-real-primary.sh: the envelope and
# bytes the relay sends, read back from Postfix's log and queue files),
# and the whole .NET test suite, including the Azure adapters against Azurite
# (installed here from tools/azurite on first use and started by the test fixture),
# and the admin dashboard in Debian's headless Chromium (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x tools/azurite/node_modules/.bin/azurite ]; then
  echo "== installing Azurite (npm ci in tools/azurite)"
  (cd tools/azurite && npm ci --no-audit --no-fund --loglevel=error)
fi

# systemd-analyze checks deploy/systemd/backupmx.service (SystemdUnitTests).
if ! command -v systemd-analyze >/dev/null; then
  echo "== installing systemd (systemd-analyze)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

# The dashboard's browser test drives Debian's Chromium (no browser is downloaded at run time).
if [ -z "${BACKUPMX_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Chromium (apt-get install chromium)"
    apt_log="$(mktemp)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >"$apt_log" 2>&1 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 \
          && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$apt_log" 2>&1; }; }; then
      tail -n 20 "$apt_log" >&2
      echo "could not install chromium; the dashboard's browser test will fail" >&2
    fi
    rm -f "$apt_log"
  else
    echo "Chromium is missing and cannot be installed here (not root on Debian): the dashboard's browser test will fail; install chromium or set BACKUPMX_CHROMIUM" >&2
  fi
fi

echo "== infrastructure checks"
bash scripts/check-infra.sh

echo "== receiver container image"
bash scripts/check-receiver-image.sh

echo "== function app package"
bash scripts/check-functions-package.sh

echo "== Postfix as the primary"
bash scripts/check-real-primary.sh

echo "== dotnet test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test BackupMx.Functions.sln -c Release 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line over all test assemblies.
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{ n += $2 } END { print n + 0 }')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{ n += $2 } END { print n + 0 }')
if [ "$status" -ne 0 ] && [ "${failed:-0}" -eq 0 ]; then
  echo "dotnet test failed without a failing test (a build or test host error above)" >&2
  failed=1
fi
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "${passed:-0}" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
