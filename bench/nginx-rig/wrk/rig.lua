-- wrk script of the nginx rig: realistic request headers, an optional token, and a JSON line of results.
-- Environment:
--   RIG_PATH         request path (default /noplugin)
--   RIG_TOKEN_FILE   one token: every request carries `Authorization: Bearer <it>` (warm)
--   RIG_TOKENS_FILE  one token per line, cycled (cold); thread k of T takes the tokens k, k+T, k+2T...
--                    so that no token is ever sent by two threads (two threads drifting onto the same
--                    tokens would turn cold requests into cache hits)
--   RIG_MIX_DIR      a deny mix: expired, forged, fork, feature tokens, a missing and a garbage token
--   RIG_RESULT       file the JSON result line is written to (default: stdout)

local path = os.getenv("RIG_PATH") or "/noplugin"
local token_file = os.getenv("RIG_TOKEN_FILE")
local tokens_file = os.getenv("RIG_TOKENS_FILE")
local mix_dir = os.getenv("RIG_MIX_DIR")
local result_file = os.getenv("RIG_RESULT")

local function read_lines(p)
  local out = {}
  for line in io.lines(p) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

-- what a CI job's HTTP client sends through a load balancer (no body)
local function base_headers(n)
  return {
    ["Host"] = "api.acme.example",
    ["User-Agent"] = "curl/8.5.0 gitlab-runner/17.4.0 (linux; amd64)",
    ["Accept"] = "application/json",
    ["Accept-Encoding"] = "gzip, deflate, br",
    ["Accept-Language"] = "en-US,en;q=0.9",
    ["X-Request-Id"] = string.format("4f9d%08x-8a3c-4b1e-9f2d-2c7e5a1b0d3f", n),
    ["X-Forwarded-For"] = "10.42.7.19, 10.0.0.5",
    ["X-Forwarded-Proto"] = "https",
    ["X-Forwarded-Host"] = "api.acme.example",
    ["X-Real-Ip"] = "10.42.7.19",
    ["Traceparent"] = string.format("00-4bf92f3577b34da6a3ce929d0e0e%04x-00f067aa0ba902b7-01", n % 65536),
    ["Tracestate"] = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    ["X-Correlation-Id"] = "job-31415926-" .. n,
    ["Cache-Control"] = "no-cache",
    ["Connection"] = "keep-alive",
    ["Via"] = "1.1 lb-eu-west-1a",
    ["X-Gitlab-Job-Name"] = "deploy:production",
  }
end

wrk.method = "GET"
wrk.path = path
wrk.headers = base_headers(1)
if token_file then
  wrk.headers["Authorization"] = "Bearer " .. read_lines(token_file)[1]
end

local counter = 1
function setup(thread)
  thread:set("thread_index", counter)
  counter = counter + 1
end

local requests, next_request, n_requests

if tokens_file or mix_dir then
  function init(args)
    local list = {}
    local threads = tonumber(os.getenv("RIG_THREADS") or "1") or 1
    local k = thread_index or 1
    if tokens_file then
      for i, t in ipairs(read_lines(tokens_file)) do
        if (i - 1) % threads == k - 1 then list[#list + 1] = "Bearer " .. t end
      end
    else
      for _, name in ipairs({ "expired", "forged", "fork", "feature" }) do
        list[#list + 1] = "Bearer " .. read_lines(mix_dir .. "/" .. name .. ".token")[1]
      end
      list[#list + 1] = false -- no Authorization header
      list[#list + 1] = "Bearer not.a.jwt"
    end
    requests = {}
    for i, auth in ipairs(list) do
      local h = base_headers(i)
      if auth then h["Authorization"] = auth end
      requests[i] = wrk.format("GET", path, h)
    end
    n_requests = #requests
    -- each run starts somewhere else in the cycle, away from the tokens the previous run left cached
    next_request = (os.time() * 7919 + k * 104729) % n_requests
  end

  function request()
    next_request = next_request % n_requests + 1
    return requests[next_request]
  end
end

function done(summary, latency, _)
  local e = summary.errors
  local line = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f,"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout)
  if result_file then
    local f = assert(io.open(result_file, "w"))
    f:write(line)
    f:close()
  else
    io.write(line)
  end
end
