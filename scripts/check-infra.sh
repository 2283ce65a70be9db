#!/usr/bin/env bash
# Compiles and lints the Bicep templates under infra/.
#
# The Bicep CLI comes from the NuGet package Azure.Bicep.CommandLine.linux-x64
# (pinned below), downloaded once into .tools/ by a throw-away restore, so the
# only network this script needs is the NuGet feed, and only on the first run.
# Fails on any build error, any lint error and any lint warning except the
# date-dependent ones (a rule such as use-recent-api-versions starts warning as
# the calendar moves on, without any change here).
set -euo pipefail

BICEP_VERSION="0.49.2"
BICEP_PACKAGE="Azure.Bicep.CommandLine.linux-x64"
# Warnings whose outcome depends on today's date rather than on the templates.
DATE_DEPENDENT_RULES="use-recent-api-versions"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
packages_dir="${tools_dir}/nuget"
package_id_lower="$(printf '%s' "${BICEP_PACKAGE}" | tr '[:upper:]' '[:lower:]')"
bicep="${packages_dir}/${package_id_lower}/${BICEP_VERSION}/tools/bicep"

# Reporting which release of the CLI judged the templates is part of the result;
# a newer one would print an "upgrade available" notice, which is just noise here.
export BICEP_TRACING_ENABLED="${BICEP_TRACING_ENABLED:-false}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1

fetch_bicep() {
  echo "check-infra: fetching ${BICEP_PACKAGE} ${BICEP_VERSION} from NuGet into ${packages_dir}"
  local scratch
  scratch="$(mktemp -d)"
  # Outside the repository, so the repository's Directory.*.props (central package
  # management, warnings as errors) do not apply to this throw-away project.
  cat > "${scratch}/fetch-bicep.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
    <ImportDirectoryBuildProps>false</ImportDirectoryBuildProps>
    <ImportDirectoryPackagesProps>false</ImportDirectoryPackagesProps>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="${BICEP_PACKAGE}" Version="[${BICEP_VERSION}]" />
  </ItemGroup>
</Project>
XML
  if ! dotnet restore "${scratch}/fetch-bicep.csproj" --packages "${packages_dir}" --verbosity quiet; then
    rm -rf "${scratch}"
    echo "check-infra: FAILED to restore ${BICEP_PACKAGE} ${BICEP_VERSION}" >&2
    exit 1
  fi
  rm -rf "${scratch}"
}

if [[ ! -x "${bicep}" ]]; then
  if [[ ! -f "${bicep}" ]]; then
    fetch_bicep
  fi
  if [[ ! -f "${bicep}" ]]; then
    echo "check-infra: ${bicep} not found after restore" >&2
    exit 1
  fi
  chmod +x "${bicep}"
fi

cd "${repo_root}"
status=0

run() {
  echo "check-infra: \$ ${*/#${bicep}/bicep}"
}

echo "check-infra: bicep $("${bicep}" --version 2>/dev/null | head -n 1)"

# --- build -----------------------------------------------------------------
build_log="$(mktemp)"
lint_log="$(mktemp)"
trap 'rm -f "${build_log}" "${lint_log}"' EXIT

show() {
  # Diagnostics may lack a final newline; keep each on its own line.
  if [[ -s "$1" ]]; then
    cat "$1"
    [[ "$(tail -c 1 "$1")" == "" ]] || echo
  fi
}

run "${bicep}" build infra/main.bicep --stdout
if ! "${bicep}" build infra/main.bicep --stdout > /dev/null 2> "${build_log}"; then
  show "${build_log}" >&2
  echo "check-infra: bicep build FAILED" >&2
  status=1
fi

# --- lint ------------------------------------------------------------------
run "${bicep}" lint infra/main.bicep
set +e
"${bicep}" lint infra/main.bicep > "${lint_log}" 2>&1
lint_rc=$?
set -e
if [[ ${lint_rc} -ne 0 ]]; then
  show "${lint_log}" >&2
  echo "check-infra: bicep lint exited ${lint_rc}" >&2
  status=1
fi

# Diagnostics look like: path(line,col) : Warning rule-name: text [url]
# `bicep build` repeats the linter's findings, so both logs are merged and
# de-duplicated. Date-dependent findings are counted, not listed: they appear as
# time passes and say nothing about this change.
all_diagnostics() { show "${build_log}"; show "${lint_log}"; }
date_pattern="$(printf '%s' "${DATE_DEPENDENT_RULES}" | tr ' ' '|')"
mapfile -t blocking < <(all_diagnostics \
  | grep -E ' : (Warning|Error) ' \
  | grep -Ev " : Warning (${date_pattern}):" \
  | sort -u || true)
mapfile -t ignored < <(all_diagnostics \
  | grep -E " : Warning (${date_pattern}):" \
  | sort -u || true)

if [[ ${#ignored[@]} -gt 0 ]]; then
  echo "check-infra: ignoring ${#ignored[@]} date-dependent warning(s) (${DATE_DEPENDENT_RULES}); run bicep lint to list them"
fi
if [[ ${#blocking[@]} -gt 0 ]]; then
  echo "check-infra: ${#blocking[@]} blocking diagnostic(s):" >&2
  printf '  %s\n' "${blocking[@]}" >&2
  status=1
fi

if [[ ${status} -eq 0 ]]; then
  echo "check-infra: OK (bicep ${BICEP_VERSION}: build and lint clean)"
else
  echo "check-infra: FAILED" >&2
fi
exit ${status}
