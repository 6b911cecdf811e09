#!/usr/bin/env bash
# Gate for the nginx rig's JSON (run.sh --json): every answer right (ok), and per scenario the socket round
# trips per event, the managed bytes allocated per event and the voluntary context switches per request within
# bench/nginx-rig/baseline.json; server CPU compared only as ratios between scenarios of the same run.
#
#   bash bench/nginx-rig/gate.sh rig.json [baseline.json]
#
# Exit 0 when every check passes, 1 on a failed check (each printed as FAIL), 2 on a usage problem.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
json=${1:?usage: gate.sh rig.json [baseline.json]}
base=${2:-$here/baseline.json}
[ -s "$json" ] || { echo "nginx-rig gate: $json is missing or empty" >&2; exit 2; }
jq -e . "$base" >/dev/null || { echo "nginx-rig gate: $base is not JSON" >&2; exit 2; }

jq -r --slurpfile b "$base" '
  $b[0] as $b
  | def r2: . * 100 | round / 100;
    def check(ok; what): (if ok then "ok   " else "FAIL " end) + what;
  [ check(.ok == true; "every answer check and every run clean (ok: \(.ok); problems: \(.problems | length))") ]
  + [ .scenarios as $sc | $b.scenarios | to_entries[] | .key as $s | .value as $want | $sc[$s] as $got
      | if $got == null then "skip  \($s): not in this run"
        else
          check(($got.server_round_trips_per_event // 99) <= $want.round_trips + $b.round_trip_slack;
            "\($s): round trips/event \($got.server_round_trips_per_event // "none" | tostring) <= \($want.round_trips)"),
          check(($got.server_alloc_bytes_per_event // 1e9) <= $want.alloc_bytes_max;
            "\($s): allocated B/event \($got.server_alloc_bytes_per_event // "none" | if type == "number" then round else . end) <= \($want.alloc_bytes_max)"),
          check(($got.server_vcsw_per_req // 1e9) <= $want.vcsw_max;
            "\($s): voluntary context switches/request \($got.server_vcsw_per_req // "none" | if type == "number" then r2 else . end) <= \($want.vcsw_max)")
        end ]
  + [ .ratios.server_cpu as $r | $b.server_cpu_ratio_max | to_entries[]
      | if $r[.key] == null then "skip  server CPU \(.key): not in this run"
        else check($r[.key] <= .value; "server CPU \(.key) \($r[.key] | r2) <= \(.value)") end ]
  + [ .ratios.server_cpu as $r | $b.server_cpu_ratio_min | to_entries[]
      | if $r[.key] == null then "skip  server CPU \(.key): not in this run"
        else check($r[.key] >= .value; "server CPU \(.key) \($r[.key] | r2) >= \(.value)") end ]
  | .[]' "$json" >"$json.gate" || { echo "nginx-rig gate: cannot read $json" >&2; exit 2; }

cat "$json.gate"
if grep -q '^FAIL' "$json.gate" || ! grep -q '^ok' "$json.gate"; then
  echo "nginx-rig gate: FAILED"
  exit 1
fi
echo "nginx-rig gate passed"
