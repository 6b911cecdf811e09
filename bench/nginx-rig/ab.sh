#!/usr/bin/env bash
# Before/after on the nginx rig: two plugin-server binaries measured in alternating sittings (A B B A A B ...), so
# that the machine's drift over the sitting falls on both alike. Prints, per scenario, each binary's medians and the
# median of the per-round B/A ratios (server CPU per request, nginx CPU per request, req/s as a share of /noplugin,
# p99), then the per-round server CPU ratios themselves. Every other option goes to run.sh (scenarios, duration, runs per
# sitting...).
#
#   bash bench/nginx-rig/ab.sh --a /tmp/before/gitlab-ci-auth --b artifacts/bin/gitlab-ci-auth --rounds 4 \
#        --scenarios example,gitlab-warm --runs 1 --duration 5
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
a="" b="" rounds=4 json="" rig_args=()
usage() {
  cat <<'EOF'
usage: bash bench/nginx-rig/ab.sh --a BINARY --b BINARY [--rounds N] [--json FILE] [run.sh options]
  --a, --b      the two plugin-server binaries (A: before, B: after)
  --rounds N    sittings per binary, in the order A B B A A B ... (default 4)
  --json FILE   also write every sitting's results and the summary as JSON
Other options go to run.sh for every sitting (default there: all scenarios, 10 s x 3 runs).
Exit status: 0 when every sitting was clean, 1 when one had wrong answers or errors, 2 on a usage problem.
EOF
}
while [ $# -gt 0 ]; do
  case "$1" in
    --a) a=${2:?}; shift ;;
    --b) b=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --json) json=${2:?}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) rig_args+=("$1") ;;
  esac
  shift
done
[ -x "$a" ] && [ -x "$b" ] || { usage >&2; echo "ab: --a and --b must be executable files" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ab: --rounds must be a positive integer" >&2; exit 2; }

out=$(mktemp -d /tmp/nginx-rig-ab.XXXXXX)
# the sittings' results stay when the summary cannot be made
trap 'if [ "${summarized:-}" = 1 ]; then rm -rf "$out"; else echo "ab: sittings kept in $out" >&2; fi' EXIT
status=0
for ((i = 0; i < rounds; i++)); do
  # A B, B A, A B, ...: each binary goes first in half of the rounds
  if ((i % 2 == 0)); then order="a b"; else order="b a"; fi
  for side in $order; do
    bin=$a; [ "$side" = b ] && bin=$b
    echo "ab: round $((i + 1))/$rounds, $side ($bin)" >&2
    if ! bash "$here/run.sh" --binary "$bin" --json "$out/$side-$i.json" "${rig_args[@]}" >"$out/$side-$i.log" 2>&1; then
      echo "ab: the sitting failed; its log:" >&2
      tail -n 30 "$out/$side-$i.log" >&2
      status=1
    fi
  done
done

summary=$(jq -s --argjson rounds "$rounds" '
  def median: map(select(. != null)) | sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def pick($side; $i): map(select(.side == $side and .round == $i))[0].result;
  . as $all
  | ($all | map(.result.scenarios // {} | keys) | add | unique) as $names
  | [ $names[] as $s
      | [ range(0; $rounds) as $i | {a: (pick("a"; $i).scenarios[$s]), b: (pick("b"; $i).scenarios[$s])}
          | select(.a != null and .b != null) ] as $pairs
      | { scenario: $s, rounds: ($pairs | length),
          a: { server_us: ($pairs | map(.a.server_cpu_us_per_req) | median), nginx_us: ($pairs | map(.a.nginx_cpu_us_per_req) | median),
               x_noplugin: ($pairs | map(.a.x_noplugin) | median), p99_us: ($pairs | map(.a.p99_us) | median) },
          b: { server_us: ($pairs | map(.b.server_cpu_us_per_req) | median), nginx_us: ($pairs | map(.b.nginx_cpu_us_per_req) | median),
               x_noplugin: ($pairs | map(.b.x_noplugin) | median), p99_us: ($pairs | map(.b.p99_us) | median) },
          b_over_a: {
            server_us: ($pairs | map(select(.a.server_cpu_us_per_req > 0) | .b.server_cpu_us_per_req / .a.server_cpu_us_per_req) | median),
            nginx_us: ($pairs | map(select(.a.nginx_cpu_us_per_req > 0) | .b.nginx_cpu_us_per_req / .a.nginx_cpu_us_per_req) | median),
            x_noplugin: ($pairs | map(select(.a.x_noplugin > 0) | .b.x_noplugin / .a.x_noplugin) | median),
            p99_us: ($pairs | map(select(.a.p99_us > 0) | .b.p99_us / .a.p99_us) | median) },
          server_rounds: ($pairs | map(select(.a.server_cpu_us_per_req > 0) | .b.server_cpu_us_per_req / .a.server_cpu_us_per_req)) } ]
' < <(for f in "$out"/*.json; do
       n=$(basename "$f" .json)
       jq -c --arg side "${n%%-*}" --argjson round "${n##*-}" '{side: $side, round: $round, result: .}' "$f"
     done))

summarized=1
echo
echo "A: $a"
echo "B: $b"
echo "$rounds round(s) per binary; medians over rounds; B/A = median of the per-round ratios"
printf '%-20s %10s %10s %8s   %10s %10s %8s   %9s %9s %7s   %8s %8s %7s\n' scenario "A srv us" "B srv us" "B/A" \
  "A nginx" "B nginx" "B/A" "A x-noplg" "B x-noplg" "B/A" "A p99 ms" "B p99 ms" "B/A"
echo "$summary" | jq -r '.[] | [.scenario,
    (.a.server_us // "-"), (.b.server_us // "-"), (.b_over_a.server_us // "-"),
    (.a.nginx_us // "-"), (.b.nginx_us // "-"), (.b_over_a.nginx_us // "-"),
    (.a.x_noplugin // "-"), (.b.x_noplugin // "-"), (.b_over_a.x_noplugin // "-"),
    ((.a.p99_us // 0) / 1000), ((.b.p99_us // 0) / 1000), (.b_over_a.p99_us // "-")] | @tsv' |
  while IFS=$'\t' read -r s as bs r1 an bn r2 ax bx r3 ap bp r4; do
    printf '%-20s %10.1f %10.1f %8.3f   %10.1f %10.1f %8.3f   %9.3f %9.3f %7.3f   %8.2f %8.2f %7.3f\n' \
      "$s" "${as/-/0}" "${bs/-/0}" "${r1/-/0}" "${an/-/0}" "${bn/-/0}" "${r2/-/0}" "${ax/-/0}" "${bx/-/0}" "${r3/-/0}" "$ap" "$bp" "${r4/-/0}"
  done

# the per-round server CPU ratios: a median inside the spread of its rounds is not a change the rig can vouch for
echo
echo "server CPU B/A per round (B cheaper in k of n rounds; with 4 rounds, 4 of 4 happens by chance 1 time in 16):"
echo "$summary" | jq -r '.[] | select(.server_rounds | length > 0)
  | "  \(.scenario): \(.server_rounds | map(. * 1000 | round / 1000 | tostring) | join(" ")) (B cheaper in \(.server_rounds | map(select(. < 1)) | length) of \(.server_rounds | length))"'

if [ -n "$json" ]; then
  jq -n --arg a "$a" --arg b "$b" --argjson rounds "$rounds" --argjson summary "$summary" \
    --slurpfile sittings <(for f in "$out"/*.json; do n=$(basename "$f" .json); jq -c --arg side "${n%%-*}" --argjson round "${n##*-}" '{side: $side, round: $round, result: .}' "$f"; done) \
    '{a: $a, b: $b, rounds: $rounds, summary: $summary, sittings: $sittings}' >"$json"
  echo "ab: wrote $json" >&2
fi
exit "$status"
