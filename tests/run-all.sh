#!/usr/bin/env bash
# The test command (README): builds everything, publishes the NativeAOT binary, runs every test project
# and sample (the host, deployment and resilience tests start the published binary), packs the packages and
# builds, publishes and tests a plugin made from the kong-plugin template, smoke-runs the demo on the binary
# in both protocols, runs the performance regression gate and a short sitting of the nginx rig (real nginx as
# Kong's side: every answer checked, figures gated as ratios of the same run), and prints one summary line
# "N passed, N failed, N skipped". Exit code non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
logs=$(mktemp -d)
fail=0

step() { echo; echo "== $*"; }

step "restore and build"
dotnet restore Plugin.sln --nologo -v q || exit 1
dotnet build Plugin.sln -c Release --no-restore --nologo -v q -clp:ErrorsOnly || exit 1

step "publish the NativeAOT binary"
dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 --nologo -v q -clp:ErrorsOnly -o artifacts/bin || exit 1
export GITLAB_CI_AUTH_BIN="$root/artifacts/bin/gitlab-ci-auth"
ls -l "$GITLAB_CI_AUTH_BIN"

step "demo on the binary (ProtoBuf:1 and MsgPack:1)"
"$GITLAB_CI_AUTH_BIN" demo > "$logs/demo-pb.txt" 2>&1 || { cat "$logs/demo-pb.txt"; echo "demo (ProtoBuf:1) failed"; fail=1; }
"$GITLAB_CI_AUTH_BIN" demo --protocol MsgPack:1 > "$logs/demo-mp.txt" 2>&1 || { cat "$logs/demo-mp.txt"; echo "demo (MsgPack:1) failed"; fail=1; }

passed=0; failed=0; skipped=0
# adds a log's last "Passed!/Failed!" line (dotnet test's summary) to the totals
count() { # LOG NAME RC
  local summary p f s
  summary=$(grep -E '^(Passed|Failed)!' "$1" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "no test summary from $2 (exit $3)"; fail=1; return
  fi
  p=$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$summary")
  f=$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$summary")
  s=$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$summary")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$3" -eq 0 ] || fail=1
}

for proj in tests/*/*.Tests.csproj samples/*/*.Tests/*.Tests.csproj; do
  [ -f "$proj" ] || continue
  name=$(basename "$proj" .csproj)
  step "test $name"
  dotnet test "$proj" -c Release --no-build --nologo 2>&1 | tee "$logs/$name.txt"
  count "$logs/$name.txt" "$name" "${PIPESTATUS[0]}"
done

step "packages and the kong-plugin template: pack, install, create, publish with NativeAOT, -dump, its tests (tests/packaging/run.sh)"
bash tests/packaging/run.sh "$logs/packaging" > "$logs/packaging.txt" 2>&1
rc=$?
grep -E '^(packing|publishing|checking|running|packaging|\{|(Passed|Failed)!)' "$logs/packaging.txt"
if [ -s "$logs/packaging/template-tests.txt" ]; then count "$logs/packaging/template-tests.txt" "the template's tests" "$rc"
else tail -n 40 "$logs/packaging.txt"; echo "packaging failed (exit $rc)"; fail=1; fi

step "performance regression gate (bench/perf-gate.sh)"
bash bench/perf-gate.sh > "$logs/perf-gate.txt" 2>&1 || fail=1
grep -E '^(FAIL|perf gate|note)' "$logs/perf-gate.txt" || tail -n 20 "$logs/perf-gate.txt"

step "nginx rig, short sitting (bench/nginx-rig/run.sh --quick) and its gate (bench/nginx-rig/gate.sh)"
# installs nginx, ngx_lua, wrk, nodejs... with apt when missing (CI runs as root on a clean Debian 12)
if timeout 900 bash bench/nginx-rig/run.sh --quick --json "$logs/nginx-rig.json" > "$logs/nginx-rig.txt" 2>&1; then
  tail -n 14 "$logs/nginx-rig.txt"
else
  rc=$?
  tail -n 60 "$logs/nginx-rig.txt"
  echo "nginx rig failed (exit $rc): a wrong answer, a failed run or a setup problem"
  fail=1
fi
if [ -s "$logs/nginx-rig.json" ]; then
  bash bench/nginx-rig/gate.sh "$logs/nginx-rig.json" || fail=1
else
  echo "nginx rig: no JSON result"; fail=1
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$fail" -eq 0 ] && [ "$failed" -eq 0 ]
