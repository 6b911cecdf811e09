#!/usr/bin/env bash
# The nginx rig: Debian's nginx + ngx_lua playing Kong's side of the plugin-server protocol, wrk as the
# client, the published NativeAOT binary (and Kong's JS PDK) as plugin servers. See bench/nginx-rig/README.md.
#
#   bash bench/nginx-rig/run.sh                       # default scenarios, 10 s x 3 runs each (~7 min)
#   bash bench/nginx-rig/run.sh --quick --json out.json   # CI: 2 s x 1 run each (~25 s of measuring)
#   bash bench/nginx-rig/run.sh --help
#
# Exit 0 when every answer check and every run was clean, 1 when an answer was wrong or a run had
# errors (non-2xx on an allowed route, socket errors, plugin errors), 2 on a usage or setup problem.
{ # the whole script is parsed before it runs: editing this file during a run cannot derail the run
set -euo pipefail
export LC_ALL=C DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

duration=${RIG_DURATION:-10}
runs=${RIG_RUNS:-3}
threads=${RIG_THREADS:-2}
connections=${RIG_CONNECTIONS:-50}
warmup=${RIG_WARMUP:-2}
workers=${RIG_WORKERS:-2}
cold_tokens=${RIG_COLD_TOKENS:-2000}
scenarios=${RIG_SCENARIOS:-example,gitlab-warm,gitlab-cold,example-msgpack,gitlab-warm-msgpack,js-pdk}
json_out=${RIG_JSON:-}
bin=${GITLAB_CI_AUTH_BIN:-$repo/artifacts/bin/gitlab-ci-auth}
install=1
keep=0
syscalls=0
syscall_secs=${RIG_SYSCALL_SECONDS:-3}
frames=0

usage() {
  cat <<'EOF'
usage: bench/nginx-rig/run.sh [options]

  --quick               CI setting: 2 s per run, 1 run, 1 s warmup (RIG_QUICK=1)
  --duration S          seconds per measured run (default 10; RIG_DURATION)
  --runs N              runs per scenario; figures are medians (default 3; RIG_RUNS)
  --threads N           wrk threads (default 2; RIG_THREADS)
  --connections N       wrk connections (default 50; RIG_CONNECTIONS)
  --warmup S            seconds of unmeasured load per route before the first round (default 2)
  --workers N           nginx worker processes (default 2)
  --scenarios LIST      comma-separated, from: example gitlab-warm gitlab-cold gitlab-deny
                        example-msgpack gitlab-warm-msgpack js-pdk
                        (default example,gitlab-warm,gitlab-cold,example-msgpack,gitlab-warm-msgpack,js-pdk)
  --cold-tokens N       distinct tokens the cold route cycles through (default 2000)
  --json FILE           also write the results as JSON (RIG_JSON)
  --binary PATH         the plugin server (default artifacts/bin/gitlab-ci-auth; GITLAB_CI_AUTH_BIN)
  --no-install          do not apt-get install missing packages
  --keep                keep the temp directory (nginx logs, server logs, raw runs)
  --frames              before measuring, send the largest requests nginx accepts with Kong's buffer settings
                        (headers filling large_client_header_buffers 4 x 8k, a body of client_body_buffer_size
                        8k) and report the largest frame/message the Kong side sent per kind (what
                        --max-frame-bytes must admit)
  --syscalls            after measuring, run each scenario once more for 3 s under strace and count the
                        plugin server's socket calls, wake-ups and short reads per request (strace slows
                        the server: only the counts mean something, not the timings)
  -h, --help            this text

Each plugin scenario's run is preceded by a /noplugin run (same proxying, no plugin); "x noplugin"
is the scenario's req/s over that run's.
EOF
}

die() { echo "nginx-rig: $*" >&2; exit 2; }

[ "${RIG_QUICK:-0}" = 1 ] && { duration=2; runs=1; warmup=1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=2; runs=1; warmup=1 ;;
    --duration) duration=${2:?}; shift ;;
    --runs) runs=${2:?}; shift ;;
    --threads) threads=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    --warmup) warmup=${2:?}; shift ;;
    --workers) workers=${2:?}; shift ;;
    --scenarios) scenarios=${2:?}; shift ;;
    --cold-tokens) cold_tokens=${2:?}; shift ;;
    --json) json_out=${2:?}; shift ;;
    --binary) bin=${2:?}; shift ;;
    --no-install) install=0 ;;
    --keep) keep=1 ;;
    --syscalls) syscalls=1 ;;
    --frames) frames=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done
for v in duration runs threads connections warmup workers cold_tokens; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "--${v//_/-} must be a positive integer"
done
[ "$cold_tokens" -ge 8 ] || die "--cold-tokens must be at least 8"
if [ -n "$json_out" ]; then
  case "$json_out" in /*) ;; *) json_out=$PWD/$json_out ;; esac
fi

# ------------------------------------------------------------------ scenarios

# scenario -> route path, plugin server, token mode (none|warm|cold|mix), expectation (allow|reject)
declare -A route=(
  [noplugin]=/noplugin
  [example]=/example [gitlab-warm]=/gitlab [gitlab-cold]=/gitlab-cold [gitlab-deny]=/gitlab-deny
  [example-msgpack]=/example-mp [gitlab-warm-msgpack]=/gitlab-mp [js-pdk]=/js
)
declare -A server_of=(
  [example]=pb-example [gitlab-warm]=pb-gitlab [gitlab-cold]=pb-gitlab [gitlab-deny]=pb-gitlab
  [example-msgpack]=mp-example [gitlab-warm-msgpack]=mp-gitlab [js-pdk]=js
)
declare -A tokens_of=(
  [noplugin]=none [example]=none [gitlab-warm]=warm [gitlab-cold]=cold [gitlab-deny]=mix
  [example-msgpack]=none [gitlab-warm-msgpack]=warm [js-pdk]=none
)
declare -A protocol_of=(
  [noplugin]=- [example]=ProtoBuf:1 [gitlab-warm]=ProtoBuf:1 [gitlab-cold]=ProtoBuf:1 [gitlab-deny]=ProtoBuf:1
  [example-msgpack]=MsgPack:1 [gitlab-warm-msgpack]=MsgPack:1 [js-pdk]=MsgPack:1
)

IFS=, read -r -a scenario_list <<<"$scenarios"
[ ${#scenario_list[@]} -gt 0 ] || die "no scenarios"
declare -A needed_server=()
for s in "${scenario_list[@]}"; do
  [ -n "${server_of[$s]:-}" ] || die "unknown scenario '$s'"
  needed_server[${server_of[$s]}]=1
done
if [ "$frames" = 1 ]; then for n in pb-example pb-gitlab mp-example mp-gitlab; do needed_server[$n]=1; done; fi

# ------------------------------------------------------------------ packages, binary, tokens

ensure_packages() {
  local pkgs=(nginx libnginx-mod-http-lua lua-resty-core lua-cjson lua-messagepack wrk jq curl)
  [ "$syscalls" = 1 ] && pkgs+=(strace)
  [ -n "${needed_server[js]:-}" ] && { command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm); }
  local missing=()
  for p in "${pkgs[@]}"; do
    case "$p" in
      nodejs|npm) missing+=("$p") ;;
      *) dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$install" = 1 ] || die "missing packages: ${missing[*]} (run without --no-install, as root, or install them)"
  [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; install them or run as root"
  echo "nginx-rig: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq >/dev/null || die "apt-get update failed"
  timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed"
}
ensure_packages

lua_module=/usr/lib/nginx/modules/ngx_http_lua_module.so
ndk_module=/usr/lib/nginx/modules/ndk_http_module.so
[ -f "$lua_module" ] || die "$lua_module is missing (libnginx-mod-http-lua)"

if [ ! -x "$bin" ]; then
  echo "nginx-rig: $bin is missing; publishing it" >&2
  (cd "$repo" && timeout 900 dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 --nologo -v q -clp:ErrorsOnly -o "$(dirname "$bin")") \
    || die "publishing the binary failed"
fi

if [ -n "${needed_server[js]:-}" ] && [ ! -x "$repo/bench/js-pdk/node_modules/kong-pdk/bin/kong-js-pluginserver" ]; then
  echo "nginx-rig: npm ci in bench/js-pdk" >&2
  (cd "$repo/bench/js-pdk" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in bench/js-pdk failed"
fi

dir=$(mktemp -d /tmp/nginx-rig.XXXXXX)
chmod 755 "$dir" # nginx workers run as nobody: they must reach the sockets in here
mkdir -p "$dir/nginx/logs" "$dir/logs" "$dir/tokens" "$dir/runs"

# ------------------------------------------------------------------ process bookkeeping

declare -a started_pids=()
nginx_master=
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local p
  for p in "${started_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  local deadline=$((SECONDS + 10))
  for p in "${started_pids[@]}" ${nginx_workers:-}; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$keep" = 1 ]; then
    echo "nginx-rig: kept $dir" >&2
  else
    rm -rf "$dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ports for listeners are taken below the ephemeral range, so that no outgoing connection holds them
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
[ "$ephemeral_low" -gt 12000 ] || die "the ephemeral port range starts at $ephemeral_low: no room for the rig's listeners"
used_ports=" "
free_port() { # variable name: set to a port nothing listens on and not handed out before
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    case "$used_ports" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      used_ports="$used_ports$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port found"
}

wait_for() { # seconds, command...: polls every 0.05 s
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# ------------------------------------------------------------------ tokens and configs

echo "nginx-rig: minting tokens (1 warm, $cold_tokens cold, the deny mix)" >&2
timeout 300 dotnet build "$here/TokenKit" -c Release --nologo -v q -clp:ErrorsOnly >/dev/null || die "building TokenKit failed"
timeout 300 dotnet "$here/TokenKit/bin/Release/net10.0/TokenKit.dll" --out "$dir/tokens" --cold "$cold_tokens" 2>/dev/null \
  || die "TokenKit failed"

"$bin" -dump --plugin example >"$dir/dump-example.json" || die "$bin -dump failed"
"$bin" -dump --plugin gitlab-ci-auth >"$dir/dump-gitlab.json" || die "$bin -dump failed"
jq -e '.Plugins[0].Name == "example"' "$dir/dump-example.json" >/dev/null || die "unexpected dump of the example plugin"
jq -e '.Plugins[0].Name == "gitlab-ci-auth"' "$dir/dump-gitlab.json" >/dev/null || die "unexpected dump of gitlab-ci-auth"

gitlab_config=$(cat "$dir/tokens/gitlab-config.json")
# the cold route's cache holds a quarter of the tokens it cycles through, so every request misses it
cold_config=$(jq -c --argjson n "$((cold_tokens / 4))" '. + {verified_token_cache_size: $n}' "$dir/tokens/gitlab-config.json")

# ------------------------------------------------------------------ plugin servers

declare -A server_pid=() metrics_url=()
start_ours() { # name protocol plugin
  local name=$1 protocol=$2 plugin=$3 port
  free_port port
  # the server's socket is 0600 by default (Kong starts it as its workers' user); here nginx's workers run
  # as Debian's default user (nobody) while the rig runs as root, so they need a wider mode to connect
  # shellcheck disable=SC2086 # RIG_SERVER_ARGS: extra options for our servers, word-split on purpose
  "$bin" --socket "$dir/$name.socket" --socket-mode 666 --protocol "$protocol" --plugin "$plugin" \
    --metrics-listen "127.0.0.1:$port" ${RIG_SERVER_ARGS:-} >"$dir/logs/$name.log" 2>&1 &
  server_pid[$name]=$!
  started_pids+=($!)
  metrics_url[$name]="http://127.0.0.1:$port/metrics"
  if ! wait_for 20 test -S "$dir/$name.socket"; then
    tail -n 5 "$dir/logs/$name.log" >&2
    die "$name did not start listening"
  fi
  wait_for 10 curl -sf -o /dev/null "${metrics_url[$name]}" || metrics_url[$name]=""
}
start_js() {
  local js=$repo/bench/js-pdk
  (umask 0; cd "$dir" && NODE_ENV=production exec node "$js/node_modules/kong-pdk/bin/kong-js-pluginserver" \
    --plugins-directory "$js/plugins" --kong-prefix "$dir" --sock-name js.socket >"$dir/logs/js.log" 2>&1) &
  server_pid[js]=$!
  started_pids+=($!)
  metrics_url[js]=""
  if ! wait_for 30 test -S "$dir/js.socket"; then
    tail -n 5 "$dir/logs/js.log" >&2
    die "the JS PDK server did not start listening"
  fi
}

[ -n "${needed_server[pb-example]:-}" ] && start_ours pb-example ProtoBuf:1 example
[ -n "${needed_server[pb-gitlab]:-}" ] && start_ours pb-gitlab ProtoBuf:1 gitlab-ci-auth
[ -n "${needed_server[mp-example]:-}" ] && start_ours mp-example MsgPack:1 example
[ -n "${needed_server[mp-gitlab]:-}" ] && start_ours mp-gitlab MsgPack:1 gitlab-ci-auth
[ -n "${needed_server[js]:-}" ] && start_js

# ------------------------------------------------------------------ nginx

free_port proxy_port
free_port echo_port
free_port admin_port

jq -n \
  --arg dir "$dir" \
  --arg ex "$dir/dump-example.json" --arg gl "$dir/dump-gitlab.json" \
  --argjson gitlab "$gitlab_config" --argjson cold "$cold_config" '
  {
    servers: {
      "pb-example": {socket: "\($dir)/pb-example.socket", protocol: "ProtoBuf:1", dump: $ex},
      "pb-gitlab":  {socket: "\($dir)/pb-gitlab.socket",  protocol: "ProtoBuf:1", dump: $gl},
      "mp-example": {socket: "\($dir)/mp-example.socket", protocol: "MsgPack:1",  dump: $ex},
      "mp-gitlab":  {socket: "\($dir)/mp-gitlab.socket",  protocol: "MsgPack:1",  dump: $gl},
      "js":         {socket: "\($dir)/js.socket",         protocol: "MsgPack:1",  dump: $ex}
    },
    routes: {
      "example":             {server: "pb-example", config: {}},
      "gitlab-warm":         {server: "pb-gitlab",  config: $gitlab},
      "gitlab-cold":         {server: "pb-gitlab",  config: $cold},
      "gitlab-deny":         {server: "pb-gitlab",  config: $gitlab},
      "example-msgpack":     {server: "mp-example", config: {}},
      "gitlab-warm-msgpack": {server: "mp-gitlab",  config: $gitlab},
      "js-pdk":              {server: "js",         config: {}},
      "probe-pb-body":       {server: "pb-example", config: {read_body: true}},
      "probe-mp-body":       {server: "mp-example", config: {read_body: true}}
    }
  }' >"$dir/settings.json"

proxy_route() { # location path, scenario (empty: no plugin)
  local access=""
  [ -n "$2" ] && access="access_by_lua_block { runloop.access(\"$2\") }"
  cat <<EOF
        location = $1 {
            $access
            proxy_pass http://echo_upstream;
        }
EOF
}

{
  cat <<EOF
# generated by bench/nginx-rig/run.sh
load_module $ndk_module;
load_module $lua_module;

daemon off;
master_process on;
worker_processes $workers;
error_log $dir/nginx/logs/error.log notice;
pid $dir/nginx/logs/nginx.pid;

events {
    worker_connections 8192;
    multi_accept off;
}

http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    # Kong's proxy settings (kong_defaults.lua: nginx_http_client_body_buffer_size, client_max_body_size) and
    # nginx's default header buffers (Kong leaves them): they bound the largest frames Kong sends (--frames)
    client_body_buffer_size 8k;
    client_max_body_size 0;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;

    lua_package_path "$here/lua/?.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;";
    lua_package_cpath "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;";
    lua_socket_pool_size 256;
    lua_socket_keepalive_timeout 60s;
    lua_socket_log_errors off;
    lua_socket_connect_timeout 10s;
    lua_socket_send_timeout 10s;
    lua_socket_read_timeout 10s;
    lua_shared_dict rig_kong 1m;
    lua_shared_dict rig_stats 1m;

    init_by_lua_block {
        require "resty.core"
        require "rig.selftest"
        runloop = require "rig.runloop"
        runloop.init("$dir/settings.json")
    }
    init_worker_by_lua_block {
        runloop.init_worker()
    }

    upstream echo_upstream {
        server 127.0.0.1:$echo_port;
        keepalive 512;
    }

    proxy_http_version 1.1;
    proxy_set_header Host \$host;
    proxy_set_header Connection "";
    proxy_set_header X-Real-IP \$remote_addr;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_buffering on;

    # the gateway
    server {
        listen 127.0.0.1:$proxy_port backlog=4096;
EOF
  proxy_route /noplugin ""
  proxy_route /example example
  proxy_route /gitlab gitlab-warm
  proxy_route /gitlab-cold gitlab-cold
  proxy_route /gitlab-deny gitlab-deny
  proxy_route /example-mp example-msgpack
  proxy_route /gitlab-mp gitlab-warm-msgpack
  proxy_route /js js-pdk
  proxy_route /probe-pb-body probe-pb-body
  proxy_route /probe-mp-body probe-mp-body
  cat <<EOF
    }

    # the upstream service: echoes what it received
    server {
        listen 127.0.0.1:$echo_port backlog=4096;
        location / {
            content_by_lua_block { runloop.echo() }
        }
    }

    # the rig's own counters (not part of any measurement)
    server {
        listen 127.0.0.1:$admin_port;
        location = /__rig/stats {
            default_type application/json;
            content_by_lua_block { ngx.print(runloop.stats_json()) }
        }
        location = /__rig/selftest {
            default_type application/json;
            content_by_lua_block {
                local failures = require("rig.selftest").run()
                ngx.print(require("cjson").encode({ ok = #failures == 0, failures = failures }))
            }
        }
    }
}
EOF
} >"$dir/nginx/nginx.conf"

nginx -t -q -p "$dir/nginx" -c "$dir/nginx/nginx.conf" 2>"$dir/logs/nginx-t.log" \
  || { cat "$dir/logs/nginx-t.log" >&2; die "nginx -t failed"; }
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" 2>>"$dir/nginx/logs/error.log" &
nginx_master=$!
started_pids+=($nginx_master)
wait_for 20 curl -sf -o /dev/null "http://127.0.0.1:$admin_port/__rig/stats" || die "nginx did not start (see $dir/nginx/logs/error.log)"

children_of() {
  if cat /proc/"$1"/task/*/children >/dev/null 2>&1; then
    cat /proc/"$1"/task/*/children
    return
  fi
  local p
  for p in /proc/[0-9]*/stat; do
    awk -v want="$1" '{ sub(/^.*\) /, ""); if ($2 == want) { split(FILENAME, a, "/"); print a[3] } }' "$p" 2>/dev/null
  done
}
all_workers_up() { [ "$(children_of "$nginx_master" | wc -w)" -ge "$workers" ]; }
wait_for 10 all_workers_up || die "the nginx workers did not start"
nginx_workers=$(children_of "$nginx_master" | tr '\n' ' ')
[ -n "$nginx_workers" ] || die "no nginx workers found"
nginx_pids="$nginx_master $nginx_workers"

# ------------------------------------------------------------------ /proc sampling

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the given processes (live and exited threads)
  local total=0 p t
  for p in "$@"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
ctx_switches() { # voluntary and nonvoluntary context switches summed over the threads of a process
  cat /proc/"$1"/task/*/status 2>/dev/null \
    | awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'
}
scrape() { # metric name -> value (labels summed), as JSON; {} without an endpoint
  local url=$1
  if [ -z "$url" ]; then echo '{}'; return; fi
  curl -sf --max-time 5 "$url" | awk '
    /^#/ || NF < 2 { next }
    { name = $1; sub(/\{.*/, "", name); v[name] += $NF }
    END {
      printf "{"; sep = ""
      for (k in v) { printf "%s\"%s\":%.17g", sep, k, v[k]; sep = "," }
      printf "}"
    }' || echo '{}'
}
rig_stats() { curl -sf --max-time 5 "http://127.0.0.1:$admin_port/__rig/stats" || echo '{}'; }

# ------------------------------------------------------------------ answer checks

check_failures=0
check() { # label, expected status, path, jq filter on the body, curl args...; req_id=... overrides X-Request-Id
  local label=$1 want=$2 path=$3 filter=$4 code body="$dir/check.$BASHPID.body"
  shift 4
  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 -H "Host: api.acme.example" \
    -H "X-Request-Id: ${req_id:-rig-check-1}" "$@" "http://127.0.0.1:$proxy_port$path" 2>/dev/null) || code=000
  if [ "$code" = "$want" ] && jq -e "$filter" "$body" >/dev/null 2>&1; then
    rm -f "$body"
    return 0
  fi
  echo "CHECK FAILED: $label: $path answered $code, expected $want with $filter; body: $(head -c 400 "$body" 2>/dev/null)" >&2
  return 1
}

token() { head -n 1 "$dir/tokens/$1"; }
warm_token=$(token warm.token)
cold_sample=$(sed -n '7p' "$dir/tokens/cold.tokens")
identity='.headers["x-gitlab-project-id"] == "16234" and .headers["x-gitlab-project-path"] == "acme/platform/billing-api"
  and .headers["x-gitlab-ref"] == "main" and .headers["x-gitlab-job-id"] == "31415926"
  and .headers["x-gitlab-namespace-path"] == "acme/platform" and .headers["x-request-id"] == "rig-check-1"
  and (.headers | has("authorization") | not)'

# the one check repeated during each run of a scenario
primary_check() {
  case "$1" in
    noplugin) check noplugin 200 /noplugin '.headers["x-request-id"] == "rig-check-1" and (.headers | has("x-example") | not)' ;;
    example|example-msgpack|js-pdk)
      check "$1" 200 "${route[$1]}" '.headers["x-example"] == "hello rig-check-1@api.acme.example"' ;;
    gitlab-warm|gitlab-warm-msgpack)
      check "$1" 200 "${route[$1]}" "$identity" -H "Authorization: Bearer $warm_token" ;;
    gitlab-cold)
      check "$1" 200 "${route[$1]}" "$identity" -H "Authorization: Bearer $(sed -n "$((RANDOM % cold_tokens + 1))p" "$dir/tokens/cold.tokens")" ;;
    gitlab-deny)
      check "$1" 401 "${route[$1]}" '.code == "token_missing"' ;;
  esac
}

# everything a scenario's route must answer right before it is timed
full_checks() {
  local s=$1 p=${route[$1]} ok=0
  primary_check "$s" || ok=1
  case "$s" in
    example|example-msgpack|js-pdk)
      req_id=deny check "$s deny" 403 "$p" '.message == "denied by example"' || ok=1 ;;
    gitlab-warm|gitlab-warm-msgpack|gitlab-cold|gitlab-deny)
      check "$s valid token" 200 "$p" "$identity" -H "Authorization: Bearer $warm_token" || ok=1
      check "$s cold token" 200 "$p" "$identity" -H "Authorization: Bearer $cold_sample" || ok=1
      check "$s client-sent identity header is replaced" 200 "$p" "$identity" \
        -H "Authorization: Bearer $warm_token" -H "X-GitLab-Project-Id: 1" || ok=1
      check "$s no token" 401 "$p" '.code == "token_missing"' || ok=1
      check "$s garbage token" 401 "$p" '.code == "token_malformed"' -H "Authorization: Bearer not.a.jwt" || ok=1
      check "$s expired token" 401 "$p" '.code == "token_expired"' -H "Authorization: Bearer $(token expired.token)" || ok=1
      check "$s forged token" 401 "$p" '.code == "signature_invalid"' -H "Authorization: Bearer $(token forged.token)" || ok=1
      check "$s fork (deny rule)" 403 "$p" '.code == "policy_denied"' -H "Authorization: Bearer $(token fork.token)" || ok=1
      check "$s feature branch (no rule)" 403 "$p" '.code == "no_rule_matched"' -H "Authorization: Bearer $(token feature.token)" || ok=1
      # the 401's challenge header
      local h
      h=$(curl -s -o /dev/null -D - --max-time 10 -H "Host: api.acme.example" "http://127.0.0.1:$proxy_port$p" \
        | tr -d '\r' | grep -i '^www-authenticate:' || true)
      case "$h" in
        [Ww][Ww][Ww]-[Aa]uthenticate:\ Bearer\ realm=*) ;;
        *) echo "CHECK FAILED: $s no token: WWW-Authenticate is '$h'" >&2; ok=1 ;;
      esac
      ;;
  esac
  return $ok
}

selftest=$(curl -sf --max-time 10 "http://127.0.0.1:$admin_port/__rig/selftest" || echo '{"ok":false,"failures":["no answer"]}')
if [ "$(printf '%s' "$selftest" | jq -r .ok)" != true ]; then
  printf '%s' "$selftest" | jq -r '.failures[] | "SELFTEST FAILED: " + .' >&2
  die "the rig's protobuf encoding does not match Kong's bytes"
fi

echo "nginx-rig: checking answers" >&2
full_checks noplugin || check_failures=$((check_failures + 1))
for s in "${scenario_list[@]}"; do
  full_checks "$s" || check_failures=$((check_failures + 1))
done
# a restarted server forgets its instances: the Kong side must notice ("closed" on ProtoBuf:1, "no plugin
# instance" on MsgPack:1), start a new instance and replay the event, and the answer must still be right
restart_check() { # scenario
  local s=$1 server=${server_of[$1]} before after
  case "$server" in pb-*|mp-*) ;; *) return 0 ;; esac
  before=$(rig_stats | jq -r --arg s "$s" '.[$s].starts // 0')
  local old=${server_pid[$server]} p kept=()
  kill -TERM "$old" 2>/dev/null || true
  wait "$old" 2>/dev/null || true
  for p in "${started_pids[@]}"; do [ "$p" = "$old" ] || kept+=("$p"); done
  started_pids=("${kept[@]}")
  case "$server" in
    pb-example) start_ours pb-example ProtoBuf:1 example ;;
    pb-gitlab) start_ours pb-gitlab ProtoBuf:1 gitlab-ci-auth ;;
    mp-example) start_ours mp-example MsgPack:1 example ;;
    mp-gitlab) start_ours mp-gitlab MsgPack:1 gitlab-ci-auth ;;
  esac
  local i ok=0
  for i in 1 2 3 4; do primary_check "$s" || ok=1; done # both workers, more than one pooled connection
  sleep 0.3
  after=$(rig_stats | jq -r --arg s "$s" '.[$s].starts // 0')
  if [ "$after" -le "$before" ]; then
    echo "CHECK FAILED: $s: no new instance was started after the server restarted" >&2
    ok=1
  fi
  return $ok
}
declare -A restarted=()
for s in "${scenario_list[@]}"; do
  [ -n "${restarted[${server_of[$s]}]:-}" ] && continue
  restarted[${server_of[$s]}]=1
  restart_check "$s" || check_failures=$((check_failures + 1))
done

# ------------------------------------------------------------------ frame sizes (optional)

frames_json='{}'
if [ "$frames" = 1 ]; then
  echo "nginx-rig: the largest frames Kong sends (--frames)" >&2
  probe_failures=0
  probe() { # label, path, expected statuses (regex), curl args...
    local label=$1 path=$2 want=$3 code
    shift 3
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: api.acme.example" "$@" "http://127.0.0.1:$proxy_port$path" 2>/dev/null) || code=000
    if [[ $code =~ ^($want)$ ]]; then echo "  $label on $path: $code" >&2
    else echo "  PROBE FAILED: $label on $path answered $code, expected $want" >&2; probe_failures=$((probe_failures + 1)); fi
  }
  many="$dir/probe.many" same="$dir/probe.same"
  : >"$many"; : >"$same"
  # 990 header lines of 32 bytes (31.7 KiB with the request line): what fits nginx's 4 x 8k buffers with the
  # most lines under get_headers' maximum of 1000 (each line costs protobuf/msgpack framing on top of its bytes)
  for i in $(seq 1 990); do printf 'x-h%04d: %021d\n' "$i" 0 >>"$many"; printf 'x-same: %022d\n' "$i" >>"$same"; done
  big=$(head -c 8100 /dev/zero | tr '\0' 'a') # a line must fit one 8k buffer
  body=$dir/probe.body
  head -c 8192 /dev/zero | tr '\0' 'b' >"$body"
  head -c 8193 /dev/zero | tr '\0' 'b' >"$body.over"
  for p in /gitlab /gitlab-mp; do
    probe "990 distinct headers" "$p" 401 -H @"$many"
    probe "990 lines of one header" "$p" 401 -H @"$same"
    probe "3 headers of 8,100 bytes" "$p" 401 -H "x-big1: $big" -H "x-big2: $big" -H "x-big3: $big"
    probe "one header line too many for the buffers (nginx refuses it)" "$p" 400 -H @"$many" -H "x-big1: $big"
  done
  for p in /probe-pb-body /probe-mp-body; do
    probe "a body of client_body_buffer_size (8 KiB, in memory)" "$p" 200 --data-binary @"$body"
    probe "a body one byte larger (to a temp file)" "$p" 200 --data-binary @"$body.over"
  done
  sleep 0.5 # the runloop merges its counters every 0.2 s
  frames_json=$(rig_stats | jq -c '.__frames // {}')
  printf '%s' "$frames_json" | jq -r 'to_entries | sort_by(-.value) | .[] | "  \(.value | tostring | (" " * (9 - length)) + .) bytes  \(.key)"' >&2
  [ "$probe_failures" -eq 0 ] || check_failures=$((check_failures + probe_failures))
fi

if [ "$check_failures" -gt 0 ]; then
  echo "nginx-rig: $check_failures scenario(s) answered wrong before timing; not measuring" >&2
  [ -n "$json_out" ] && jq -n --argjson n "$check_failures" '{ok: false, check_failures: $n, scenarios: {}}' >"$json_out"
  exit 1
fi

# ------------------------------------------------------------------ measuring

run_wrk() { # scenario, seconds, result file
  local s=$1 secs=$2 out=$3
  local -a env=(RIG_PATH="${route[$s]}" RIG_RESULT="$out" RIG_THREADS="$threads")
  case "${tokens_of[$s]}" in
    warm) env+=(RIG_TOKEN_FILE="$dir/tokens/warm.token") ;;
    cold) env+=(RIG_TOKENS_FILE="$dir/tokens/cold.tokens") ;;
    mix) env+=(RIG_MIX_DIR="$dir/tokens") ;;
  esac
  env "${env[@]}" timeout $((secs + 30)) wrk -t"$threads" -c"$connections" -d"${secs}s" --timeout 5s \
    -s "$here/wrk/rig.lua" "http://127.0.0.1:$proxy_port${route[$s]}" >"$out.log" 2>&1
}

runs_file=$dir/runs.jsonl
: >"$runs_file"
measure() { # scenario, round, paired noplugin req/s (empty for noplugin)
  local s=$1 round=$2 paired=${3:-}
  local server=${server_of[$s]:-} spid="" url=""
  [ -n "$server" ] && { spid=${server_pid[$server]}; url=${metrics_url[$server]}; }
  local out="$dir/runs/$s.$round.json"
  rm -f "$out"

  local st0 m0 n0 s0 c0
  st0=$(rig_stats)
  m0=$(scrape "$url")
  n0=$(cpu_ticks $nginx_pids)
  if [ -n "$spid" ]; then s0=$(cpu_ticks "$spid"); c0=$(ctx_switches "$spid"); else s0=0; c0="0 0"; fi

  local mid="$dir/runs/$s.$round.mid"
  ( sleep $(( (duration + 1) / 2 )); if primary_check "$s" 2>"$mid.err"; then echo ok >"$mid"; else echo fail >"$mid"; fi ) &
  local mid_pid=$!
  run_wrk "$s" "$duration" "$out" || true

  local n1 s1 c1 m1 st1
  n1=$(cpu_ticks $nginx_pids)
  if [ -n "$spid" ]; then s1=$(cpu_ticks "$spid"); c1=$(ctx_switches "$spid"); else s1=0; c1="0 0"; fi
  m1=$(scrape "$url")
  wait "$mid_pid" 2>/dev/null || true
  sleep 0.3 # the runloop's counters reach shared memory every 0.2 s
  st1=$(rig_stats)

  local alive=true
  [ -n "$spid" ] && ! kill -0 "$spid" 2>/dev/null && alive=false
  local wrk_json='null'
  [ -s "$out" ] && wrk_json=$(cat "$out")
  local mid_ok=false
  [ "$(cat "$mid" 2>/dev/null)" = ok ] && mid_ok=true

  jq -nc \
    --arg s "$s" --argjson round "$round" --arg protocol "${protocol_of[$s]}" --arg expect "$([ "$s" = gitlab-deny ] && echo reject || echo allow)" \
    --argjson wrk "$wrk_json" --argjson tck "$clk_tck" \
    --argjson n0 "$n0" --argjson n1 "$n1" --argjson s0 "$s0" --argjson s1 "$s1" \
    --arg c0 "$c0" --arg c1 "$c1" --argjson m0 "$m0" --argjson m1 "$m1" \
    --argjson st0 "$st0" --argjson st1 "$st1" --arg paired "$paired" \
    --argjson alive "$alive" --argjson mid_ok "$mid_ok" --arg mid_err "$(head -c 300 "$mid.err" 2>/dev/null)" '
    def per(a; b): if b > 0 then a / b else null end;
    def delta(k): (($m1[k] // 0) - ($m0[k] // 0));
    ($wrk // {}) as $w
    | ($w.requests // 0) as $req
    | ($c0 | split(" ") | map(tonumber)) as $cs0 | ($c1 | split(" ") | map(tonumber)) as $cs1
    | (($st1[$s] // {}) as $b | ($st0[$s] // {}) as $a
        | reduce ($b | keys[]) as $k ({}; .[$k] = ($b[$k] - ($a[$k] // 0)))) as $rig
    | (delta("pluginserver_events_total")) as $events
    | {
        scenario: $s, round: $round, protocol: $protocol,
        requests: $req,
        rps: per($req; ($w.duration_us // 0) / 1e6),
        p50_us: $w.p50_us, p90_us: $w.p90_us, p99_us: $w.p99_us, max_us: $w.max_us,
        non2xx: ($w.non2xx // null),
        socket_errors: (if $wrk == null then null else ($w.connect_errors + $w.read_errors + $w.write_errors + $w.timeouts) end),
        nginx_cpu_us_per_req: per(($n1 - $n0) * 1e6 / $tck; $req),
        server_cpu_us_per_req: (if $protocol == "-" then null else per(($s1 - $s0) * 1e6 / $tck; $req) end),
        server_vcsw_per_req: (if $protocol == "-" then null else per($cs1[0] - $cs0[0]; $req) end),
        server_nvcsw_per_req: (if $protocol == "-" then null else per($cs1[1] - $cs0[1]; $req) end),
        pdk_calls_per_event: per($rig.pdk_calls // 0; $rig.events // 0),
        plugin_events: ($rig.events // null),
        plugin_errors: (if $protocol == "-" then 0 else (($rig.errors // 0) + ($rig.lua_errors // 0)) end),
        instance_starts: ($rig.starts // null),
        server_events: (if $m1 == {} then null else $events end),
        server_round_trips_per_event: (if $m1 == {} then null else per(delta("pluginserver_event_round_trips_total"); $events) end),
        server_alloc_bytes_per_event: (if $m1 == {} then null else per(delta("dotnet_gc_allocated_bytes_total"); $events) end),
        token_cache_hit_ratio: (delta("gitlab_ci_auth_token_cache_hits_total") as $h | delta("gitlab_ci_auth_token_cache_misses_total") as $mi
          | if $h + $mi > 0 then $h / ($h + $mi) else null end),
        noplugin_rps: (if $paired == "" then null else ($paired | tonumber) end),
        server_alive: $alive, mid_run_check: $mid_ok
      }
    | .x_noplugin = (if .noplugin_rps and .rps then .rps / .noplugin_rps else null end)
    | .problems = ([
        (if $wrk == null then "wrk produced no result" else empty end),
        (if $req == 0 then "no requests completed" else empty end),
        (if $expect == "allow" and (.non2xx // 0) > 0 then "\(.non2xx) non-2xx answers on an allowed route" else empty end),
        (if $expect == "reject" and $wrk != null and .non2xx != $req then "\($req - .non2xx) 2xx answers on the deny route" else empty end),
        (if (.socket_errors // 0) > 0 then "\(.socket_errors) socket errors" else empty end),
        (if .plugin_errors > 0 then "\(.plugin_errors) plugin errors (see the nginx error log)" else empty end),
        (if ($alive | not) then "the plugin server died" else empty end),
        (if $s == "gitlab-cold" and (.token_cache_hit_ratio // 0) > 0.05 then "the cold route hit the token cache (\(.token_cache_hit_ratio)): not cold" else empty end),
        (if ($s | startswith("gitlab-warm")) and .token_cache_hit_ratio != null and .token_cache_hit_ratio < 0.95 then "the warm route missed the token cache (hits \(.token_cache_hit_ratio))" else empty end),
        (if ($mid_ok | not) then "the answer check during the run failed: \($mid_err)" else empty end)
      ])
    | .ok = (.problems | length == 0)' >>"$runs_file"

  tail -n 1 "$runs_file" | jq -r '"  \(.scenario) #\(.round): \(.rps // 0 | floor) req/s"
    + (if .x_noplugin then " (x\(.x_noplugin * 1000 | round / 1000) noplugin)" else "" end)
    + ", p99 \((.p99_us // 0) / 1000) ms, nginx \(.nginx_cpu_us_per_req // 0 | round) us/req"
    + (if .server_cpu_us_per_req then ", server \(.server_cpu_us_per_req | round) us/req" else "" end)
    + (if .ok then "" else "  PROBLEMS: " + (.problems | join("; ")) end)' >&2
}

last_rps() { tail -n 1 "$runs_file" | jq -r '.rps // 0'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "nginx-rig: warming up (${warmup} s per route)" >&2
run_wrk noplugin "$warmup" "$dir/runs/warmup.noplugin.json" || true
for s in "${scenario_list[@]}"; do run_wrk "$s" "$warmup" "$dir/runs/warmup.$s.json" || true; done

echo "nginx-rig: measuring: ${#scenario_list[@]} scenario(s) x $runs run(s) x ${duration} s, each after a /noplugin run; wrk -t$threads -c$connections" >&2
for round in $(seq 1 "$runs"); do
  for s in "${scenario_list[@]}"; do
    measure noplugin "$round"
    measure "$s" "$round" "$(last_rps)"
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ syscalls (optional)

# per request: calls of each traced syscall, and for the receiving calls how many returned exactly
# 4 bytes (a frame's length read alone) and the most common sizes
strace_summary() { # strace output file, requests
  awk -v requests="$2" '
    /<unfinished \.\.\.>$/ { next }
    {
      line = $0
      sub(/^[0-9]+ +/, "", line)
      if (line ~ /^<\.\.\. /) { split(line, w, " "); name = w[2] } else { name = line; sub(/\(.*/, "", name) }
      n = split(line, parts, " = ")
      if (n < 2) next
      split(parts[n], r, " ")
      ret = r[1]
      calls[name]++
      if (name ~ /^(recvmsg|recvfrom|read|readv)$/ && ret ~ /^[0-9]+$/) {
        recv_calls++
        if (ret == 0) recv_eof++
        if (ret == 4) recv_len4++
        size[ret]++
      }
      if (ret ~ /^-1/ && parts[n] ~ /EAGAIN/) eagain[name]++
    }
    END {
      printf "{\"requests\":%d,\"per_request\":{", requests; sep = ""
      for (k in calls) { printf "%s\"%s\":%.3f", sep, k, (requests ? calls[k] / requests : 0); sep = "," }
      printf "},\"eagain_per_request\":{"; sep = ""
      for (k in eagain) { printf "%s\"%s\":%.3f", sep, k, (requests ? eagain[k] / requests : 0); sep = "," }
      printf "},\"receives_per_request\":%.3f,\"receives_of_4_bytes_per_request\":%.3f,\"share_of_receives_of_4_bytes\":%.3f,\"receive_sizes\":{",
        (requests ? recv_calls / requests : 0), (requests ? recv_len4 / requests : 0), (recv_calls ? recv_len4 / recv_calls : 0)
      sep = ""
      for (k in size) { printf "%s\"%s\":%d", sep, k, size[k]; sep = "," }
      printf "}}"
    }' "$1" | jq -c '.receive_sizes |= (to_entries | sort_by(-.value) | .[:8] | map({bytes: (.key | tonumber), count: .value}))'
}

syscalls_file=$dir/syscalls.jsonl
: >"$syscalls_file"
if [ "$syscalls" = 1 ]; then
  echo "nginx-rig: counting the plugin servers' syscalls (${syscall_secs} s per scenario under strace)" >&2
  for s in "${scenario_list[@]}"; do
    spid=${server_pid[${server_of[$s]}]}
    trace="$dir/runs/strace.$s.txt"
    timeout $((syscall_secs + 60)) strace -f -qq -s 0 -o "$trace" \
      -e trace=read,readv,recvmsg,recvfrom,write,writev,sendmsg,sendto,epoll_wait,epoll_pwait,futex -p "$spid" 2>/dev/null &
    strace_pid=$!
    # the nginx workers too: how often they wake (epoll_wait) and call into the kernel per request
    ntrace="$dir/runs/strace-nginx.$s.txt"
    nginx_attach=()
    for w in $nginx_workers; do nginx_attach+=(-p "$w"); done
    timeout $((syscall_secs + 60)) strace -qq -s 0 -o "$ntrace" \
      -e trace=read,readv,recvmsg,recvfrom,write,writev,sendmsg,sendto,epoll_wait,epoll_pwait "${nginx_attach[@]}" 2>/dev/null &
    nstrace_pid=$!
    sleep 1 # attached to every thread
    run_wrk "$s" "$syscall_secs" "$dir/runs/strace.$s.json" || true
    kill -INT "$strace_pid" "$nstrace_pid" 2>/dev/null || true
    wait "$strace_pid" "$nstrace_pid" 2>/dev/null || true
    req=$(jq -r '.requests // 0' "$dir/runs/strace.$s.json" 2>/dev/null || echo 0)
    nginx_counts=$(strace_summary "$ntrace" "$req" | jq -c '.per_request')
    strace_summary "$trace" "$req" | jq -c --arg s "$s" --argjson n "$nginx_counts" '{scenario: $s} + . + {nginx_per_request: $n}' >>"$syscalls_file"
    rm -f "$ntrace"
    tail -n 1 "$syscalls_file" | jq -r '"  \(.scenario): \(.requests) requests; per request: \(.receives_per_request) receives (\(.receives_of_4_bytes_per_request) of exactly 4 bytes), "
      + (.per_request | to_entries | map("\(.key) \(.value)") | join(", "))
      + "; nginx workers: " + (.nginx_per_request | to_entries | map("\(.key) \(.value)") | join(", "))' >&2
    rm -f "$trace"
  done
fi

# ------------------------------------------------------------------ summary

# anything nginx logged at error level or worse (a broken pooled connection, a Lua error, ...) fails the run
nginx_errors=$(grep -cE '\[(error|crit|alert|emerg)\]' "$dir/nginx/logs/error.log" || true)
nginx_error_sample=$({ grep -E '\[(error|crit|alert|emerg)\]' "$dir/nginx/logs/error.log" || true; } | head -n 5 | cut -c1-400 | jq -R . | jq -sc .)

versions=$(jq -n \
  --arg nginx "$(nginx -v 2>&1 | sed 's/^nginx version: //')" \
  --arg lua "$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null)" \
  --arg wrk "$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')" \
  --arg node "$(node --version 2>/dev/null || true)" \
  --arg commit "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || true)" \
  --arg src_commit "$(git -C "$repo" log -1 --format=%h -- src 2>/dev/null || true)" \
  --arg dirty "$(git -C "$repo" status --porcelain -- src 2>/dev/null | head -n 1)" \
  '{nginx: $nginx, ngx_lua: $lua, wrk: $wrk, node: $node, commit: $commit, src_commit: $src_commit, src_modified: ($dirty != "")}')

summary=$(jq -s \
  --argjson settings "$(jq -n --argjson d "$duration" --argjson r "$runs" --argjson t "$threads" --argjson c "$connections" \
      --argjson w "$workers" --argjson n "$cold_tokens" --arg sc "$scenarios" \
      '{duration_s: $d, runs: $r, wrk_threads: $t, wrk_connections: $c, nginx_workers: $w, cold_tokens: $n, scenarios: ($sc | split(","))}')" \
  --argjson versions "$versions" --slurpfile syscalls "$syscalls_file" --argjson frames "$frames_json" \
  --argjson nginx_errors "${nginx_errors:-0}" --argjson nginx_error_sample "$nginx_error_sample" \
  --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" --argjson cores "$(nproc)" \
  --arg load_start "$load_start" --arg load_end "$load_end" --arg when "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
  def median: map(select(. != null)) | sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def med(k): map(.[k]) | median;
  . as $runs
  | (group_by(.scenario) | map({key: .[0].scenario, value: {
        protocol: .[0].protocol,
        runs: length,
        rps: med("rps"), x_noplugin: med("x_noplugin"),
        p50_us: med("p50_us"), p99_us: med("p99_us"),
        non2xx: (map(.non2xx // 0) | add), socket_errors: (map(.socket_errors // 0) | add),
        plugin_errors: (map(.plugin_errors // 0) | add),
        nginx_cpu_us_per_req: med("nginx_cpu_us_per_req"),
        server_cpu_us_per_req: med("server_cpu_us_per_req"),
        server_vcsw_per_req: med("server_vcsw_per_req"), server_nvcsw_per_req: med("server_nvcsw_per_req"),
        pdk_calls_per_event: med("pdk_calls_per_event"),
        server_round_trips_per_event: med("server_round_trips_per_event"),
        server_alloc_bytes_per_event: med("server_alloc_bytes_per_event"),
        token_cache_hit_ratio: med("token_cache_hit_ratio"),
        ok: all(.ok)
      }}) | from_entries) as $sc
  | def ratio(a; b; k): if ($sc[a][k] // null) != null and ($sc[b][k] // 0) > 0 then $sc[a][k] / $sc[b][k] else null end;
  {
    ok: (($runs | all(.ok)) and $nginx_errors == 0),
    nginx_error_log: {errors: $nginx_errors, first: $nginx_error_sample},
    when: $when,
    machine: {cpu: $cpu, cores: $cores, load_start: $load_start, load_end: $load_end},
    versions: $versions,
    settings: $settings,
    scenarios: $sc,
    ratios: {
      server_cpu: {
        "gitlab-warm/example": ratio("gitlab-warm"; "example"; "server_cpu_us_per_req"),
        "gitlab-cold/example": ratio("gitlab-cold"; "example"; "server_cpu_us_per_req"),
        "gitlab-deny/example": ratio("gitlab-deny"; "example"; "server_cpu_us_per_req"),
        "example-msgpack/example": ratio("example-msgpack"; "example"; "server_cpu_us_per_req"),
        "gitlab-warm-msgpack/gitlab-warm": ratio("gitlab-warm-msgpack"; "gitlab-warm"; "server_cpu_us_per_req"),
        "js-pdk/example": ratio("js-pdk"; "example"; "server_cpu_us_per_req"),
        "js-pdk/example-msgpack": ratio("js-pdk"; "example-msgpack"; "server_cpu_us_per_req")
      },
      nginx_cpu: {
        "example/noplugin": ratio("example"; "noplugin"; "nginx_cpu_us_per_req"),
        "gitlab-warm/noplugin": ratio("gitlab-warm"; "noplugin"; "nginx_cpu_us_per_req")
      }
    },
    syscalls: ($syscalls | map({key: .scenario, value: (. | del(.scenario))}) | from_entries),
    frames: $frames,
    problems: ([$runs[] | select(.ok | not) | "\(.scenario) #\(.round): \(.problems | join("; "))"]
      + (if $nginx_errors > 0 then ["nginx logged \($nginx_errors) lines at error level or worse, e.g. \($nginx_error_sample[0])"] else [] end)),
    run_records: $runs
  } | .ratios |= (.server_cpu |= with_entries(select(.value != null)) | .nginx_cpu |= with_entries(select(.value != null)))' "$runs_file")

[ -n "$json_out" ] && printf '%s\n' "$summary" >"$json_out"

# the human table
printf '%s\n' "$summary" | jq -r --arg order "noplugin,$scenarios" '
  def fmt(d): if . == null then "-" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
  def pad(n): tostring | if length >= n then . else (" " * (n - length)) + . end;
  def lpad(n): tostring | if length >= n then . else . + (" " * (n - length)) end;
  . as $r
  | "",
    "nginx rig: \($r.machine.cores) cores (\($r.machine.cpu)), load \($r.machine.load_start) -> \($r.machine.load_end); nginx \($r.versions.nginx), \($r.settings.nginx_workers) workers; wrk -t\($r.settings.wrk_threads) -c\($r.settings.wrk_connections), \($r.settings.runs) x \($r.settings.duration_s) s (medians); src/ at \($r.versions.src_commit)\(if $r.versions.src_modified then " (modified)" else "" end)",
    "",
    ("scenario" | lpad(20)) + ("protocol" | lpad(11)) + ("req/s" | pad(8)) + ("x noplug" | pad(9)) + ("p50 ms" | pad(8)) + ("p99 ms" | pad(8))
      + ("non-2xx" | pad(8)) + ("nginx us" | pad(9)) + ("server us" | pad(10)) + ("vcsw/req" | pad(9)) + ("nvcsw/req" | pad(10))
      + ("PDK/ev" | pad(7)) + ("RT/ev" | pad(6)) + ("B/ev" | pad(7)) + ("hits" | pad(5)) + ("ok" | pad(4)),
    ($order | split(",") | reduce .[] as $x ([]; if index([$x]) then . else . + [$x] end) | .[]
      | . as $name | $r.scenarios[$name] // empty
      | ($name | lpad(20)) + (.protocol | lpad(11)) + (.rps | fmt(0) | pad(8)) + (.x_noplugin | fmt(3) | pad(9))
        + ((if .p50_us then .p50_us / 1000 else null end) | fmt(2) | pad(8)) + ((if .p99_us then .p99_us / 1000 else null end) | fmt(2) | pad(8))
        + (.non2xx | fmt(0) | pad(8)) + (.nginx_cpu_us_per_req | fmt(0) | pad(9)) + (.server_cpu_us_per_req | fmt(1) | pad(10))
        + (.server_vcsw_per_req | fmt(2) | pad(9)) + (.server_nvcsw_per_req | fmt(2) | pad(10))
        + (.pdk_calls_per_event | fmt(1) | pad(7)) + (.server_round_trips_per_event | fmt(2) | pad(6))
        + (.server_alloc_bytes_per_event | fmt(0) | pad(7)) + (.token_cache_hit_ratio | fmt(2) | pad(5))
        + ((if .ok then "yes" else "NO" end) | pad(4))),
    "",
    "server CPU ratios: " + ($r.ratios.server_cpu | to_entries | map("\(.key) \(.value | fmt(2))") | join(", ")),
    (if ($r.syscalls | length) > 0 then
      "", "plugin server syscalls per request (under strace; wrk -c\($r.settings.wrk_connections)):",
      ($r.syscalls | to_entries[] | "  \(.key | lpad(20)) receives \(.value.receives_per_request | fmt(2)) (of exactly 4 bytes: \(.value.receives_of_4_bytes_per_request | fmt(2))); "
        + (.value.per_request | to_entries | sort_by(.key) | map("\(.key) \(.value | fmt(2))") | join(", "))
        + "; nginx workers: " + ((.value.nginx_per_request // {}) | to_entries | sort_by(.key) | map("\(.key) \(.value | fmt(2))") | join(", ")))
    else empty end),
    (if ($r.problems | length) > 0 then "", "PROBLEMS:", ($r.problems[] | "  " + .) else empty end)'

if [ "$(printf '%s' "$summary" | jq -r .ok)" != true ]; then
  echo "nginx-rig: FAILED (a run had errors or a wrong answer)" >&2
  exit 1
fi
exit 0
}
