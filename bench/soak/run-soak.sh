#!/usr/bin/env bash
# The documented soak run (not in CI): publish the binary if asked, then 10 minutes of steady mixed traffic.
#   bash bench/soak/run-soak.sh                 # 600 s, ProtoBuf:1
#   bash bench/soak/run-soak.sh --duration 90   # a short run; any Soak option passes through
#   PUBLISH=1 bash bench/soak/run-soak.sh       # publish src/GitLabCiAuth.Host into artifacts/bin first
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${PUBLISH:-0}" = "1" ] || [ ! -x artifacts/bin/gitlab-ci-auth ]; then
  dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 -o artifacts/bin --nologo -v q -clp:ErrorsOnly
fi
dotnet run -c Release --project bench/soak -- "$@"
