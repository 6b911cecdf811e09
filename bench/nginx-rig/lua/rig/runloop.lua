-- The slice of Kong's runloop an external plugin sees, for the rig's routes:
--   * one plugin entity per route, with a UUID; its config is the schema's defaults (from the server's
--     `-dump`) around the route's settings, plus the keys Kong injects: `__plugin_id`, `__key__`,
--     `__ws_id`, `route_id`, and `__seq__` from a shared-memory counter at worker start (Kong 3.6+);
--   * a per-worker instance cache keyed by the plugin entity id: an instance is reused while its seq and
--     plugin id match, otherwise StartInstance (with the config as cjson text) and CloseInstance of the
--     old one; a second request arriving while an instance starts waits in 0.1 s sleeps (10 s at most);
--   * the access handler runs in a coroutine with Kong's delayed response: `kong.response.exit` records
--     the answer and suspends the handler, the runloop sends it afterwards; a Lua error in the handler
--     is logged and answered 500 "An unexpected error occurred".
-- Counters (events, PDK calls, starts, resets, errors, ...) are kept per worker and flushed to the
-- `rig_stats` shared dict every 0.2 s; `/__rig/stats` on the admin port serves them as JSON.

local cjson = require "cjson.safe"
local frames = require "rig.frames"
local pdk = require "rig.pdk"
local pb_rpc = require "rig.pb_rpc"
local mp_rpc = require "rig.mp_rpc"

local ngx = ngx
local pairs, ipairs, next, type, error = pairs, ipairs, next, type, error
local co_create, co_resume = coroutine.create, coroutine.resume

local M = {}

local COUNTERS = { "events", "pdk_calls", "starts", "closes", "resets", "errors", "lua_errors", "exits" }

local settings
local entities = {}  -- route name -> entity
local servers = {}   -- server name -> { socket, protocol, plugin }
local rpcs = {}      -- server name -> Rpc (per worker after fork)

-- ------------------------------------------------------------------ config building (init phase)

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return out
end

-- the schema's defaults around the given values, as Kong stores a plugin's config: every field
-- present, records filled, fields without a default null
local function fill_defaults(fields, given)
  local out = {}
  for _, f in ipairs(fields) do
    local name, def = next(f)
    local v = given and given[name]
    if v == nil then
      if def.default ~= nil then
        v = deep_copy(def.default)
      elseif def.type == "record" then
        v = fill_defaults(def.fields or {}, nil)
      else
        v = cjson.null
      end
    elseif def.type == "record" and type(v) == "table" then
      v = fill_defaults(def.fields or {}, v)
    end
    out[name] = v
  end
  if given then
    for k, v in pairs(given) do
      if out[k] == nil then out[k] = v end -- unknown to the schema: left for the server to judge
    end
  end
  return out
end

local function uuid()
  local t = {}
  for i = 1, 16 do t[i] = math.random(0, 255) end
  t[7] = t[7] % 16 + 64  -- version 4
  t[9] = t[9] % 64 + 128 -- variant
  local h = {}
  for i = 1, 16 do h[i] = string.format("%02x", t[i]) end
  return table.concat(h, "", 1, 4) .. "-" .. table.concat(h, "", 5, 6) .. "-" .. table.concat(h, "", 7, 8) .. "-"
    .. table.concat(h, "", 9, 10) .. "-" .. table.concat(h, "", 11, 16)
end

local function config_schema(dump_path)
  local dump = assert(cjson.decode(read_file(dump_path)), "cannot decode " .. dump_path)
  local plugins = dump.Plugins or dump
  local plugin = plugins[1]
  for _, f in ipairs(plugin.Schema.fields) do
    if f.config then return plugin.Name, f.config.fields or {} end
  end
  return plugin.Name, {}
end

-- init_by_lua: reads the rig's settings (servers and routes) and builds each route's plugin entity
function M.init(settings_path)
  math.randomseed(ngx.now() * 1000)
  settings = assert(cjson.decode(read_file(settings_path)), "cannot decode " .. settings_path)
  local ws_id = uuid()
  for name, s in pairs(settings.servers) do
    servers[name] = s
  end
  for route, r in pairs(settings.routes) do
    local server = assert(servers[r.server], "route " .. route .. ": unknown server " .. tostring(r.server))
    local plugin_name, fields = config_schema(server.dump)
    local conf = fill_defaults(fields, r.config or {})
    local plugin_id, route_id = uuid(), uuid()
    conf.__plugin_id = plugin_id
    conf.__ws_id = ws_id
    conf.route_id = route_id
    conf.__key__ = "plugins:" .. plugin_name .. ":" .. route_id .. ":" .. "" .. ":" .. "" .. "::" .. ws_id
    entities[route] = {
      route = route,
      id = plugin_id,
      plugin_name = plugin_name,
      server = r.server,
      conf = conf,
    }
  end
end

-- ------------------------------------------------------------------ instances (per worker)

local running = {} -- plugin entity id -> { id, seq, conf, plugin_name, rpc }

local instances = {}

local SLEEP_STEP, MAX_WAIT_STEPS = 0.1, 100

function instances.get_instance_id(rpc, entity)
  local key = pdk.plugin.get_id()
  local conf = entity.conf
  local info = running[key]

  local waited = 0
  while info and not info.id do
    ngx.sleep(SLEEP_STEP)
    waited = waited + 1
    if waited > MAX_WAIT_STEPS then
      running[key] = nil
      return nil, "Could not claim instance_id for " .. entity.plugin_name .. " (key: " .. key .. ")"
    end
    info = running[key]
  end

  if info and info.id and info.seq == conf.__seq__ and info.conf and info.conf.__plugin_id == key then
    return info.id
  end

  local old_id = info and info.id
  if not info then
    info = { conf = conf, seq = conf.__seq__ }
    running[key] = info
  else
    info.id = nil
  end

  local started, err = rpc:call_start_instance(entity.plugin_name, conf, entity.counters)
  if started == nil then
    pdk.log.err("starting instance: ", err)
    running[key] = nil
    error(err)
  end
  info.id = started.id
  info.plugin_name = entity.plugin_name
  info.conf = started.conf
  info.seq = started.seq
  info.Config = started.Config
  info.rpc = rpc

  if old_id then
    rpc:call_close_instance(old_id, entity.counters) -- errors do not matter
  end
  return info.id
end

-- Kong drops every cached instance of the plugin (one plugin per server); the rig keys that on the
-- server, because several of its servers serve a plugin named "example"
function instances.reset_instance(rpc)
  for k, info in pairs(running) do
    if info.rpc == rpc then running[k] = nil end
  end
end

-- ------------------------------------------------------------------ stats

local function flush(premature)
  local dict = ngx.shared.rig_stats
  frames.flush(dict)
  for route, e in pairs(entities) do
    local c = e.counters
    for _, name in ipairs(COUNTERS) do
      local n = c[name]
      if n ~= 0 then
        dict:incr(route .. "|" .. name, n, 0)
        c[name] = 0
      end
    end
  end
end

function M.stats_json()
  local dict = ngx.shared.rig_stats
  local out = {}
  for route in pairs(entities) do
    local t = {}
    for _, name in ipairs(COUNTERS) do t[name] = dict:get(route .. "|" .. name) or 0 end
    out[route] = t
  end
  out.__frames = frames.collect(dict)
  return cjson.encode(out)
end

-- ------------------------------------------------------------------ worker start

function M.init_worker()
  for name, s in pairs(servers) do
    if s.protocol == "MsgPack:1" then
      rpcs[name] = mp_rpc.new(s.socket, instances)
    else
      rpcs[name] = pb_rpc.new(s.socket, instances)
    end
  end
  local seq_dict = ngx.shared.rig_kong
  for _, e in pairs(entities) do
    e.rpc = rpcs[e.server]
    e.conf.__seq__ = seq_dict:incr("plugins_iterator:__seq__", 1, 0)
    local c = {}
    for _, name in ipairs(COUNTERS) do c[name] = 0 end
    e.counters = c
  end
  ngx.timer.every(0.2, flush)
end

-- ------------------------------------------------------------------ access phase

local function run_access(entity)
  return entity.rpc:handle_event(entity, "access")
end

function M.access(route)
  local entity = entities[route]
  local ctx = ngx.ctx
  ctx.plugin_id = entity.id
  ctx.rig_plugin_name = entity.plugin_name
  ctx.delay_response = true
  local counters = entity.counters
  counters.events = counters.events + 1

  local co = co_create(run_access)
  local ok, err = co_resume(co, entity)
  ctx.delay_response = nil
  if not ok then
    counters.lua_errors = counters.lua_errors + 1
    ngx.log(ngx.ERR, "[", entity.plugin_name, "] ", err)
    ctx.delayed_response = { status_code = 500, content = { message = "An unexpected error occurred" } }
  end

  local dr = ctx.delayed_response
  if dr then
    counters.exits = counters.exits + 1
    return pdk.send(dr.status_code, dr.content, dr.headers)
  end
end

-- the upstream: answers 200 with what it received (method, URI, request headers)
function M.echo()
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode({
    method = ngx.req.get_method(),
    uri = ngx.var.request_uri,
    headers = ngx.req.get_headers(1000),
  }))
end

return M
