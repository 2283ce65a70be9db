#!/usr/bin/env bash
# Builds the receiver's container image from src/BackupMx.Receiver/Dockerfile and runs it the
# way Azure Container Apps does, then checks what the deployment relies on:
#   - the image runs as a non-root user and declares port 2525;
#   - the container listens on 2525 (the ingress maps the public port 25 to it) and answers
#     SMTP: greeting with the configured host name, EHLO extensions, 550 5.7.1 for a domain
#     it does not relay, 250 for one it does;
#   - the TCP health probes (connect, then close) leave no warning in the log;
#   - SIGTERM (a new revision, a scale-in) ends an idle session with 421 4.3.2 and the
#     process with exit code 0.
# Storage is Azurite from tools/azurite on free loopback ports. There is no Service Bus
# emulator, so no message is taken to 250 here: the in-process Azure-mode end-to-end tests
# cover the pipeline; this script covers the image.
#
# Engine: Docker when a daemon answers, else Podman. As root on a Debian machine with neither,
# Podman is installed with apt. Without an engine the check is skipped with a notice, except
# under CI=true, where that is a failure.
#
# Base images: mcr.microsoft.com/dotnet/sdk:10.0 and runtime:10.0 when they can be pulled.
# A machine that cannot reach mcr.microsoft.com builds stand-ins instead, as root, with
# debootstrap (Debian minbase, the libraries .NET needs, this machine's .NET SDK and CA
# certificates, and the "app" user with id 1654 in APP_UID, as in the published images) and
# passes them as SDK_IMAGE and RUNTIME_IMAGE. The Dockerfile's steps are the same either way.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work_dir="${repo_root}/.tools/container"
image="localhost/backupmx-receiver:check"
container="backupmx-receiver-check-$$"
sdk_image="mcr.microsoft.com/dotnet/sdk:10.0"
runtime_image="mcr.microsoft.com/dotnet/runtime:10.0"
standin_sdk="localhost/backupmx-standin-dotnet-sdk:10.0"
standin_runtime="localhost/backupmx-standin-dotnet-runtime:10.0"
app_uid=1654

say() { echo "check-receiver-image: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

mkdir -p "${work_dir}"

# A fresh machine may have no package lists yet: read them once if the first try fails.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"${work_dir}/apt.log" 2>&1 && return 0
  DEBIAN_FRONTEND=noninteractive apt-get update -q >>"${work_dir}/apt.log" 2>&1 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"${work_dir}/apt.log" 2>&1 && return 0
  tail -n 20 "${work_dir}/apt.log" >&2
  return 1
}

# --- engine -------------------------------------------------------------------------------
engine=""
engine_args=()
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v podman >/dev/null 2>&1; then
  engine=podman
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing podman, runc and debootstrap with apt"
  apt_install podman runc debootstrap || fail "could not install podman (log: ${work_dir}/apt.log)"
  engine=podman
else
  if [ "${CI:-}" = "true" ]; then
    fail "no container engine: install Docker or Podman, or run as root on Debian so Podman can be installed"
  fi
  say "SKIPPED: no container engine (Docker or Podman); the image was not built or checked"
  exit 0
fi

if [ "${engine}" = podman ]; then
  # crun cannot run in hosts with hybrid cgroups (v1 and v2 at once); runc can, and runs anywhere else too.
  if command -v runc >/dev/null 2>&1; then
    engine_args+=(--runtime=runc)
  fi
  # Podman's default open-files limit can exceed the hard limit a sandboxed host allows; keep the host's.
  printf '[containers]\ndefault_ulimits = []\n' >"${work_dir}/containers.conf"
  export CONTAINERS_CONF="${work_dir}/containers.conf"
fi
ctr() { "${engine}" "${engine_args[@]}" "$@"; }
say "engine: ${engine} $(ctr --version | head -n 1)"

# --- base images ----------------------------------------------------------------------------
build_args=()
if ctr image inspect "${sdk_image}" >/dev/null 2>&1 && ctr image inspect "${runtime_image}" >/dev/null 2>&1; then
  say "base images: ${sdk_image} and ${runtime_image} (already present)"
elif timeout 300 "${engine}" pull -q "${sdk_image}" >/dev/null 2>&1 && timeout 300 "${engine}" pull -q "${runtime_image}" >/dev/null 2>&1; then
  say "base images: ${sdk_image} and ${runtime_image} (pulled)"
else
  say "mcr.microsoft.com cannot be reached: using stand-in base images"
  if ! ctr image inspect "${standin_sdk}" >/dev/null 2>&1 || ! ctr image inspect "${standin_runtime}" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "building stand-in base images needs root (debootstrap, chroot)"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap || fail "could not install debootstrap (log: ${work_dir}/apt.log)"
    dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
    runtime_dir="$(ls -d "${dotnet_root}"/shared/Microsoft.NETCore.App/10.* 2>/dev/null | sort -V | tail -n 1)"
    [ -n "${runtime_dir}" ] || fail "no .NET 10 runtime under ${dotnet_root} to build the stand-ins from"

    rootfs="${work_dir}/rootfs"
    if [ ! -f "${rootfs}/.complete" ]; then
      rm -rf "${rootfs}"
      say "debootstrap: Debian bookworm minbase into ${rootfs} (log: ${work_dir}/debootstrap.log)"
      debootstrap --variant=minbase --include=ca-certificates,libicu72,libssl3,tzdata \
        bookworm "${rootfs}" http://deb.debian.org/debian >"${work_dir}/debootstrap.log" 2>&1 \
        || { tail -n 20 "${work_dir}/debootstrap.log" >&2; fail "debootstrap failed"; }
      rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
      # Trust what this machine trusts, so a package proxy with its own certificate works in the build.
      cp /etc/ssl/certs/ca-certificates.crt "${rootfs}/etc/ssl/certs/ca-certificates.crt"
      chroot "${rootfs}" groupadd --gid "${app_uid}" app
      chroot "${rootfs}" useradd --uid "${app_uid}" --gid "${app_uid}" --create-home --shell /bin/false app
      touch "${rootfs}/.complete"
    fi

    # Runtime: the muxer, the host resolver and Microsoft.NETCore.App only, like runtime:10.0;
    # SDK: this machine's whole .NET installation. Both at /usr/share/dotnet, as in the published images.
    stage="${work_dir}/stage"
    for kind in runtime sdk; do
      rm -rf "${stage}"
      cp -a "${rootfs}" "${stage}"
      rm -f "${stage}/.complete"
      mkdir -p "${stage}/usr/share/dotnet/shared/Microsoft.NETCore.App"
      if [ "${kind}" = runtime ]; then
        cp -a "${dotnet_root}/dotnet" "${dotnet_root}/host" "${stage}/usr/share/dotnet/"
        cp -a "${runtime_dir}" "${stage}/usr/share/dotnet/shared/Microsoft.NETCore.App/"
        target="${standin_runtime}"
        extra=()
      else
        cp -a "${dotnet_root}/." "${stage}/usr/share/dotnet/"
        target="${standin_sdk}"
        extra=(--change "ENV NUGET_CERT_REVOCATION_MODE=${NUGET_CERT_REVOCATION_MODE:-online}"
               --change "ENV DOTNET_NOLOGO=1" --change "ENV DOTNET_CLI_TELEMETRY_OPTOUT=1")
      fi
      ln -sf /usr/share/dotnet/dotnet "${stage}/usr/bin/dotnet"
      tar -C "${stage}" -c . | ctr import \
        --change "ENV APP_UID=${app_uid}" --change "ENV DOTNET_RUNNING_IN_CONTAINER=true" "${extra[@]}" \
        - "${target}" >"${work_dir}/import.log" 2>&1 \
        || { cat "${work_dir}/import.log" >&2; fail "could not import the stand-in ${kind} image"; }
    done
    rm -rf "${stage}"
  fi
  build_args=(--build-arg "SDK_IMAGE=${standin_sdk}" --build-arg "RUNTIME_IMAGE=${standin_runtime}")
  say "base images: stand-ins ${standin_sdk} and ${standin_runtime}"
fi

# --- build ----------------------------------------------------------------------------------
say "building ${image} from src/BackupMx.Receiver/Dockerfile (log: ${work_dir}/build.log)"
pull_never=()
[ "${engine}" = podman ] && pull_never=(--pull=never)
(cd "${repo_root}" && ctr build "${pull_never[@]}" --network=host "${build_args[@]}" \
    -f src/BackupMx.Receiver/Dockerfile -t "${image}" . >"${work_dir}/build.log" 2>&1) \
  || { tail -n 30 "${work_dir}/build.log" >&2; fail "the image did not build"; }

checks=0
ok() { checks=$((checks + 1)); echo "ok ${checks} - $*"; }

user="$(ctr image inspect --format '{{.Config.User}}' "${image}")"
case "${user}" in
  "" | 0 | root | 0:* | root:*) fail "the image runs as '${user:-root}', not as a non-root user" ;;
esac
ok "image user is ${user}, not root"
ctr image inspect --format '{{json .Config.ExposedPorts}}' "${image}" | grep -q '"2525/tcp"' \
  || fail "the image does not declare port 2525"
ok "image declares port 2525"
# Multi-stage: the SDK and the sources stay in the build stage.
contents="$(ctr run --rm --network=none --entrypoint /bin/sh "${image}" -c 'ls /usr/share/dotnet; ls -d /src 2>/dev/null || true')"
if grep -qx "sdk" <<<"${contents}" || grep -qx "/src" <<<"${contents}"; then
  fail "the final image carries the SDK or the sources: $(tr '\n' ' ' <<<"${contents}")"
fi
ok "the final image has the .NET runtime only, no SDK and no sources"

# --- run ------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("0.0.0.0",int(sys.argv[1]))); s.close()' "$1" 2>/dev/null; }

azurite_dir="${repo_root}/tools/azurite"
if [ ! -x "${azurite_dir}/node_modules/.bin/azurite" ]; then
  (cd "${azurite_dir}" && npm ci --no-audit --no-fund --loglevel=error)
fi
blob_port="$(free_port)"; table_port="$(free_port)"; queue_port="$(free_port)"
azurite_log="${work_dir}/azurite.log"
node "${azurite_dir}/node_modules/azurite/dist/src/azurite.js" --silent --skipApiVersionCheck --disableTelemetry \
  --inMemoryPersistence \
  --blobHost 127.0.0.1 --blobPort "${blob_port}" --tableHost 127.0.0.1 --tablePort "${table_port}" \
  --queueHost 127.0.0.1 --queuePort "${queue_port}" >"${azurite_log}" 2>&1 &
azurite_pid=$!
for _ in $(seq 1 60); do
  if python3 -c 'import socket,sys; [socket.create_connection(("127.0.0.1", int(p)), 1).close() for p in sys.argv[1:]]' \
      "${blob_port}" "${table_port}" 2>/dev/null; then
    break
  fi
  kill -0 "${azurite_pid}" 2>/dev/null || { cat "${azurite_log}" >&2; fail "Azurite did not start"; }
  sleep 1
done

cleanup() {
  ctr rm -f "${container}" >/dev/null 2>&1 || true
  kill "${azurite_pid}" 2>/dev/null || true
}
trap cleanup EXIT

# The image listens on 2525 as Container Apps runs it. With host networking that port must be
# free here; if something else holds it, the container is told to use another one.
smtp_port=2525
endpoint_override=()
if ! port_free 2525; then
  smtp_port="$(free_port)"
  endpoint_override=(-e "BackupMx__Smtp__Endpoints__0=127.0.0.1:${smtp_port}")
  say "port 2525 is in use on this machine; the container listens on ${smtp_port} instead"
fi

account_key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${account_key};BlobEndpoint=http://127.0.0.1:${blob_port}/devstoreaccount1;TableEndpoint=http://127.0.0.1:${table_port}/devstoreaccount1;"
closed_port="$(free_port)"
ctr run -d --name "${container}" --network=host \
  -e "BackupMx__Azure__StorageConnectionString=${storage}" \
  -e "BackupMx__Azure__ServiceBusConnectionString=Endpoint=sb://127.0.0.1:${closed_port}/;SharedAccessKeyName=check;SharedAccessKey=Y2hlY2s=" \
  -e BackupMx__HostName=mx2.check.test \
  -e BackupMx__Domains__0__Name=example.test \
  -e BackupMx__Domains__0__Primary=mail.example.test \
  "${endpoint_override[@]}" \
  "${image}" >/dev/null

listening=false
for _ in $(seq 1 60); do
  if ! ctr ps --format '{{.Names}}' | grep -qx "${container}"; then
    ctr logs "${container}" >&2 || true
    fail "the container exited during start-up"
  fi
  if ctr logs "${container}" 2>&1 | grep -q "SMTP receiver listening on"; then
    listening=true
    break
  fi
  sleep 1
done
[ "${listening}" = true ] || { ctr logs "${container}" >&2; fail "the receiver did not start listening within 60 s"; }
ok "container started: $(ctr logs "${container}" 2>&1 | grep -o 'SMTP receiver listening on [^ ]*')"

uid="$(ctr exec "${container}" id -u)"
[ "${uid}" != 0 ] || fail "the receiver process runs as root"
ok "receiver process runs as uid ${uid}"

python3 - "${smtp_port}" "${checks}" <<'PY' || fail "SMTP conversation (above)"
import smtplib, sys
port = int(sys.argv[1])
checks = int(sys.argv[2])
def ok(text):
    global checks
    checks += 1
    print(f"ok {checks} - {text}")
s = smtplib.SMTP()
code, banner = s.connect("127.0.0.1", port)
banner = banner.decode()
assert code == 220 and banner.startswith("mx2.check.test"), f"greeting {code} {banner!r}"
ok(f"greeting: 220 {banner}")
code, _ = s.ehlo("client.check.test")
assert code == 250, f"EHLO {code}"
for ext in ("pipelining", "8bitmime", "size", "dsn"):
    assert s.has_extn(ext), f"EHLO lacks {ext.upper()}"
ok("EHLO offers PIPELINING, 8BITMIME, SIZE and DSN")
code, _ = s.mail("sender@elsewhere.test")
assert code == 250, f"MAIL {code}"
code, reply = s.rcpt("bob@foreign.test")
assert code == 550 and reply.decode().startswith("5.7.1"), f"RCPT foreign {code} {reply!r}"
ok(f"RCPT to a domain not relayed: {code} {reply.decode()}")
code, reply = s.rcpt("bob@example.test")
assert code == 250, f"RCPT example.test {code} {reply!r}"
ok(f"RCPT to the configured domain: {code} {reply.decode()}")
s.quit()
PY
checks=$((checks + 4))

# Container Apps' TCP probes connect and close without a word, every few seconds.
for _ in 1 2 3 4 5; do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5).close()' "${smtp_port}"
done
sleep 1
if ctr logs "${container}" 2>&1 | grep -E " (warn|fail|crit): "; then
  fail "the log has warnings or errors after the health probes (above)"
fi
ok "five probe connections left no warning or error in the log"

# SIGTERM with an idle session open: the session gets 421 4.3.2, the process exits 0.
reply_file="${work_dir}/idle-session.txt"
python3 - "${smtp_port}" >"${reply_file}" 2>&1 <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 60)
s.settimeout(60)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode(errors="replace"), end="")
PY
reader=$!
sleep 1
ctr stop -t 30 "${container}" >/dev/null
wait "${reader}" || true
grep -q "^421 4.3.2 " "${reply_file}" || { cat "${reply_file}" >&2; fail "the idle session did not get 421 4.3.2 at shutdown"; }
ok "SIGTERM: the idle session got '$(grep '^421' "${reply_file}" | tr -d '\r')'"
exit_code="$(ctr inspect --format '{{.State.ExitCode}}' "${container}")"
[ "${exit_code}" = 0 ] || { ctr logs "${container}" >&2; fail "the receiver exited with ${exit_code} after SIGTERM"; }
ok "SIGTERM: the receiver exited with code 0"

say "all ${checks} checks passed"
