#!/usr/bin/env bash
# Performance regression gate (see bench/README.md). Runs the load test's short gate run (well under 2 minutes)
# against the published NativeAOT binary and compares it with bench/perf-baseline.json:
#   * allocations per event and PDK round trips per event (deterministic: tight bounds),
#   * server CPU per event of each scenario as a ratio to the `example` scenario of the same run (generous bound).
# Exit 0 when every check passes, 1 on a regression (each failed check is printed), 2 on a usage problem.
#
#   bash bench/perf-gate.sh                     # check
#   bash bench/perf-gate.sh --update-baseline   # re-measure and rewrite bench/perf-baseline.json (thresholds kept)
#
# GITLAB_CI_AUTH_BIN overrides the binary (default artifacts/bin/gitlab-ci-auth; published first when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

bin=${GITLAB_CI_AUTH_BIN:-artifacts/bin/gitlab-ci-auth}
if [ ! -x "$bin" ]; then
  echo "perf-gate: $bin is missing; publishing it"
  dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 --nologo -v q -clp:ErrorsOnly -o "$(dirname "$bin")"
fi
dotnet build bench/LoadTest/LoadTest.csproj -c Release --nologo -v q -clp:ErrorsOnly

exec dotnet bench/LoadTest/bin/Release/net10.0/LoadTest.dll --binary "$bin" --gate bench/perf-baseline.json "$@"
