#!/usr/bin/env bash
# Scans the relay's inbound STARTTLS with external scanners from Debian and fails on anything
# weak: a protocol older than TLS 1.2, or a NULL, anonymous, export, RC4, DES/3DES or MD5 suite.
#
# Runs the embedded relay (src/BackupMx.Server, Release) on a free loopback port with a throw-away
# RSA certificate given the way Azure mode gets it: the base64 text of a PKCS#12 file, as a Key
# Vault certificate's secret holds it. RSA, so that the RSA key-exchange suites are tried as well.
# Then sslscan --starttls-smtp and testssl.sh --starttls smtp (whichever are installed; at least
# one must be: apt-get install sslscan testssl.sh). Their reports are kept in
# ${CHECK_TLS_OUT:-artifacts/tls-scan}.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${CHECK_TLS_OUT:-${repo_root}/artifacts/tls-scan}"
work="$(mktemp -d)"
server_pid=""

say() { echo "check-inbound-tls: $*"; }
fail() { echo "check-inbound-tls: FAILED: $*" >&2; exit 1; }

cleanup() {
  if [[ -n "${server_pid}" ]] && kill -0 "${server_pid}" 2>/dev/null; then
    kill "${server_pid}" 2>/dev/null || true
    wait "${server_pid}" 2>/dev/null || true
  fi
  rm -rf "${work}"
}
trap cleanup EXIT

command -v openssl >/dev/null || fail "openssl is needed to make the test certificate"
have_sslscan=false; command -v sslscan >/dev/null && have_sslscan=true
testssl_bin="$(command -v testssl || command -v testssl.sh || true)"
[[ "${have_sslscan}" == true || -n "${testssl_bin}" ]] || fail "neither sslscan nor testssl.sh is installed (apt-get install sslscan testssl.sh)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# --- certificate -------------------------------------------------------------
host="mx.tls-check.test"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=${host}" \
  -addext "subjectAltName=DNS:${host}" -keyout "${work}/key.pem" -out "${work}/cert.pem" 2>/dev/null
openssl pkcs12 -export -passout pass: -inkey "${work}/key.pem" -in "${work}/cert.pem" -out "${work}/cert.pfx"
base64 -w 0 "${work}/cert.pfx" > "${work}/tls-certificate"

# --- relay ---------------------------------------------------------------------
say "dotnet build src/BackupMx.Server -c Release"
dotnet build "${repo_root}/src/BackupMx.Server" -c Release -o "${work}/server" >"${work}/build.log" 2>&1 \
  || { tail -n 30 "${work}/build.log" >&2; fail "the relay does not build"; }

port="$(free_port)"
primary_port="$(free_port)"
mkdir -p "${work}/spool"
say "starting the relay on 127.0.0.1:${port} with a base64 PKCS#12 certificate for ${host}"
(
  cd "${work}"
  export DOTNET_ENVIRONMENT=Production
  export BackupMx__HostName="${host}"
  export BackupMx__Smtp__Endpoints__0="127.0.0.1:${port}"
  export BackupMx__Admin__Endpoint=""
  export BackupMx__Smtp__TlsCertificatePath="${work}/tls-certificate"
  export BackupMx__Domains__0__Name=example.test
  export BackupMx__Domains__0__Primary="127.0.0.1:${primary_port}"
  export BackupMx__Spool__Path="${work}/spool"
  exec dotnet "${work}/server/BackupMx.Server.dll"
) >"${work}/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 150); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then break; fi
  kill -0 "${server_pid}" 2>/dev/null || { cat "${work}/server.log" >&2; fail "the relay exited"; }
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null || { cat "${work}/server.log" >&2; fail "the relay does not listen on ${port}"; }
grep -m1 "STARTTLS offered" "${work}/server.log" | sed 's/^/check-inbound-tls: relay: /' || true

mkdir -p "${out}"
problems=()

# The names OpenSSL and IANA give the suites that must never be offered.
weak_cipher='NULL|EXP|EXPORT|RC4|DES|3DES|anon|ADH|AECDH|MD5|IDEA|SEED|PSK|SRP'

# --- sslscan -------------------------------------------------------------------
if [[ "${have_sslscan}" == true ]]; then
  say "sslscan --starttls-smtp 127.0.0.1:${port}"
  sslscan --no-colour --starttls-smtp "127.0.0.1:${port}" > "${out}/sslscan.txt" 2>&1 || true
  grep -q "Supported Server Cipher" "${out}/sslscan.txt" || { cat "${out}/sslscan.txt" >&2; fail "sslscan produced no cipher list"; }
  while read -r line; do problems+=("sslscan: ${line}"); done < <(grep -E '^(SSLv2|SSLv3|TLSv1\.0|TLSv1\.1) +enabled' "${out}/sslscan.txt" || true)
  while read -r line; do problems+=("sslscan: ${line}"); done < <(grep -E '^(Preferred|Accepted)' "${out}/sslscan.txt" | grep -E "${weak_cipher}" || true)
  while read -r line; do problems+=("sslscan: ${line}"); done < <(grep -E '^(Preferred|Accepted) +(SSLv|TLSv1\.0|TLSv1\.1)' "${out}/sslscan.txt" || true)
  grep -E '^(SSLv|TLSv)[0-9.]* +(enabled|disabled)' "${out}/sslscan.txt" | sed 's/^/check-inbound-tls: sslscan: /'
  grep -E '^(Preferred|Accepted)' "${out}/sslscan.txt" | sed 's/^/check-inbound-tls: sslscan: /'
fi

# --- testssl.sh ----------------------------------------------------------------
if [[ -n "${testssl_bin}" ]]; then
  say "testssl --starttls smtp --protocols --std 127.0.0.1:${port}"
  rm -f "${out}/testssl.json"
  "${testssl_bin}" --quiet --color 0 --warnings off --starttls smtp --protocols --std \
    --jsonfile "${out}/testssl.json" "127.0.0.1:${port}" > "${out}/testssl.txt" 2>&1 || true
  [[ -s "${out}/testssl.json" ]] || { cat "${out}/testssl.txt" >&2; fail "testssl.sh produced no report"; }
  while read -r line; do problems+=("testssl: ${line}"); done < <(python3 - "${out}/testssl.json" <<'PY'
import json, sys
findings = {f["id"]: f["finding"] for f in json.load(open(sys.argv[1]))}
# Offered protocols and suite classes that must be absent; TLS 1.2 and 1.3 that must be present.
must_be_off = ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL",
               "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA"]
for id in must_be_off:
    if id not in findings:
        print(f"{id}: not in the report")
    elif not findings[id].startswith("not offered"):
        print(f"{id}: {findings[id]}")
for id in ["TLS1_2", "TLS1_3"]:
    if not findings.get(id, "").startswith("offered"):
        print(f"{id}: {findings.get(id, 'not in the report')}")
PY
)
  python3 - "${out}/testssl.json" <<'PY' | sed 's/^/check-inbound-tls: testssl: /'
import json, sys
for f in json.load(open(sys.argv[1])):
    if f["id"] in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3") or f["id"].startswith("cipherlist_"):
        print(f"{f['id']:22} {f['finding']}")
PY
fi

say "reports in ${out}"
if [[ ${#problems[@]} -gt 0 ]]; then
  printf 'check-inbound-tls: weak: %s\n' "${problems[@]}" >&2
  fail "${#problems[@]} weak protocol(s) or suite(s) offered"
fi
say "OK: TLS 1.2 and 1.3 only; no NULL, anonymous, export, RC4, DES/3DES or MD5 suite"
