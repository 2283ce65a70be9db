#!/usr/bin/env bash
# Publishes the function app as `azd deploy` does (dotnet publish, Release) and checks the
# package the Flex Consumption plan receives: the host finds host.json, worker.config.json
# and functions.metadata at its root, the worker's entry assembly, and no local settings.
# The Functions host itself does not run here (there is none on this machine); the tests
# call the function classes directly, and this checks what a deployment would start from.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

say() { echo "check-functions-package: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

say "dotnet publish src/BackupMx.Functions -c Release"
dotnet publish "${repo_root}/src/BackupMx.Functions" -c Release -o "${out}" >"${out}.log" 2>&1 \
  || { tail -n 30 "${out}.log" >&2; rm -f "${out}.log"; fail "the function app did not publish"; }
rm -f "${out}.log"

python3 - "${out}" "${repo_root}" <<'PY'
import json, os, sys
out, root = sys.argv[1], sys.argv[2]
checks = 0
def ok(text):
    global checks
    checks += 1
    print(f"ok {checks} - {text}")
def fail(text):
    print(f"check-functions-package: FAILED: {text}", file=sys.stderr)
    sys.exit(1)

def load(name):
    path = os.path.join(out, name)
    if not os.path.isfile(path):
        fail(f"{name} is not at the root of the package")
    with open(path, encoding="utf-8-sig") as f:
        return f.read()

host = load("host.json")
with open(os.path.join(root, "host.json"), encoding="utf-8-sig") as f:
    if json.loads(host) != json.loads(f.read()):
        fail("the package's host.json differs from the repository's")
if json.loads(host).get("version") != "2.0":
    fail("host.json has no version 2.0")
ok("host.json at the root, the repository's own")

worker = json.loads(load("worker.config.json"))["description"]
if worker.get("language") != "dotnet-isolated" or worker.get("defaultWorkerPath") != "BackupMx.Functions.dll":
    fail(f"worker.config.json describes {worker}")
if not os.path.isfile(os.path.join(out, "BackupMx.Functions.dll")):
    fail("BackupMx.Functions.dll is not in the package")
ok("worker.config.json starts BackupMx.Functions.dll as a dotnet-isolated worker")

functions = {f["name"]: f for f in json.loads(load("functions.metadata"))}
expected = {
    "Forward": ("timerTrigger", "*/10 * * * * *"),
    "ProbePrimaries": ("timerTrigger", "*/10 * * * * *"),
    "Expire": ("timerTrigger", "0 * * * * *"),
    "MessageShow": ("httpTrigger", None),
    "MessageHold": ("httpTrigger", None),
    "MessageRelease": ("httpTrigger", None),
    "MessageDelete": ("httpTrigger", None),
    "QueueHold": ("httpTrigger", None),
    "QueueRelease": ("httpTrigger", None),
    "QueueSummary": ("httpTrigger", None),
    "QueueList": ("httpTrigger", None),
    "QueueFlush": ("httpTrigger", None),
    "VerifyRecipient": ("httpTrigger", None),
    "Dashboard": ("httpTrigger", None),
}
if set(functions) != set(expected):
    fail(f"functions.metadata lists {sorted(functions)}, not {sorted(expected)}")
for name, (trigger, schedule) in expected.items():
    binding = next((b for b in functions[name]["bindings"] if b["type"] == trigger), None)
    if binding is None:
        fail(f"{name} has no {trigger}")
    if schedule is not None and binding.get("schedule") != schedule:
        fail(f"{name} runs on '{binding.get('schedule')}', not '{schedule}'")
    if trigger == "httpTrigger" and binding.get("authLevel", "").lower() != "function":
        fail(f"{name} is not at authorization level Function")
    if functions[name].get("scriptFile") != "BackupMx.Functions.dll":
        fail(f"{name} points at {functions[name].get('scriptFile')}")
ok("functions.metadata: Forward, ProbePrimaries, Expire (timers), the admin API, the dashboard and the receiver's callouts (HTTP, Function key)")

json.loads(load("extensions.json"))
if not os.path.isdir(os.path.join(out, ".azurefunctions")):
    fail("the .azurefunctions folder (the host's extension startup) is missing")
ok("extensions.json and .azurefunctions for the host's extension startup")

for name in ("local.settings.json", "appsettings.Development.json"):
    if os.path.exists(os.path.join(out, name)):
        fail(f"{name} would be deployed")
ok("no local settings in the package")

size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
print(f"check-functions-package: all {checks} checks passed ({size / 1048576:.1f} MiB to deploy)")
PY
