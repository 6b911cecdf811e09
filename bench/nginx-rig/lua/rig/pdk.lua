-- A stand-in for the part of Kong's PDK that external plugins reach through the plugin server
-- protocol, built on nginx request data. It covers the calls gitlab-ci-auth and the example plugin
-- make (and a few neighbours), with Kong's argument checks and results: header names come back
-- lower-cased, repeated headers as arrays, `get_headers` takes a max of 1..1000 (default 100),
-- `kong.response.exit` in the access phase is recorded and the handler's coroutine is suspended for
-- good (Kong's delayed response), `load_consumer` raises for a non-UUID id looked up by id.
--
-- `M.methods` maps the wire name of each method to its function (Kong resolves names the same way:
-- its flat overrides first, then the path inside `kong`).

local cjson = require "cjson.safe"

local ngx = ngx
local type, pairs, ipairs, error, select, tostring = type, pairs, ipairs, error, select, tostring
local lower, gsub, find, sub = string.lower, string.gsub, string.find, string.sub
local concat = table.concat
local co_yield = coroutine.yield

local M = {}

local MAX_HEADERS_DEFAULT = 100
local MAX_HEADERS = 1000

-- ------------------------------------------------------------------ helpers

local var_names = {} -- header name -> "http_..." variable name (the names come from a plugin: a small set)
local function header_var(name)
  local v = var_names[name]
  if not v then
    v = "http_" .. gsub(lower(name), "-", "_")
    var_names[name] = v
  end
  return v
end

local function is_uuid(s)
  return type(s) == "string" and #s == 36
    and find(s, "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil
end
M.is_uuid = is_uuid

local function validate_header_name(name)
  if type(name) ~= "string" then
    error(("invalid header name %q: got %s, expected string"):format(tostring(name), type(name)), 3)
  end
end

local function validate_header_value(name, value)
  local t = type(value)
  if t == "string" or t == "number" or t == "boolean" then return end
  if t == "table" then
    for _, v in ipairs(value) do
      local vt = type(v)
      if vt ~= "string" and vt ~= "number" and vt ~= "boolean" then
        error(("invalid header value in array %q: got %s, expected string"):format(name, vt), 3)
      end
    end
    return
  end
  error(("invalid header value for %q: got %s, expected array of string, string, number or boolean"):format(name, t), 3)
end

local function plugin_prefix()
  local name = ngx.ctx.rig_plugin_name
  return name and ("[" .. name .. "] ") or ""
end

-- ------------------------------------------------------------------ kong.request

local request = {}

function request.get_header(name)
  if type(name) ~= "string" then error("header name must be a string", 2) end
  return ngx.var[header_var(name)]
end

function request.get_headers(max_headers)
  if max_headers == nil then return ngx.req.get_headers(MAX_HEADERS_DEFAULT) end
  if type(max_headers) ~= "number" then error("max_headers must be a number", 2)
  elseif max_headers < 1 then error("max_headers must be >= 1", 2)
  elseif max_headers > MAX_HEADERS then error("max_headers must be <= " .. MAX_HEADERS, 2)
  end
  return ngx.req.get_headers(max_headers)
end

-- Kong 3.x: the buffered body; a body that went to a temp file is an error (no max_allowed_file_size here)
function request.get_raw_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    if ngx.req.get_body_file() then
      return nil, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
    end
    return ""
  end
  return body
end

function request.get_method()
  return ngx.req.get_method()
end

-- the path without the query string (Kong also normalizes it; the rig's paths need no normalizing)
function request.get_path()
  local uri = ngx.var.request_uri or ""
  local q = find(uri, "?", 2, true)
  return q and sub(uri, 1, q - 1) or uri
end

function request.get_host()
  return ngx.var.host
end

function request.get_scheme()
  return ngx.var.scheme
end

-- ------------------------------------------------------------------ kong.service.request

local service_request = {}

function service_request.set_header(header, value)
  validate_header_name(header)
  validate_header_value(header, value)
  if lower(header) == "host" then
    ngx.var.upstream_host = value
    return
  end
  ngx.req.set_header(header, value)
end

function service_request.add_header(header, value)
  validate_header_name(header)
  validate_header_value(header, value)
  local existing = ngx.req.get_headers(MAX_HEADERS)[header]
  if existing == nil then
    ngx.req.set_header(header, value)
  else
    local all = type(existing) == "table" and existing or { existing }
    all[#all + 1] = value
    ngx.req.set_header(header, all)
  end
end

function service_request.set_headers(headers)
  if type(headers) ~= "table" then error("headers must be a table", 2) end
  for k, v in pairs(headers) do
    validate_header_name(k)
    validate_header_value(k, v)
  end
  for k, v in pairs(headers) do
    if lower(k) == "host" then
      ngx.var.upstream_host = v
    else
      ngx.req.set_header(k, v)
    end
  end
end

function service_request.clear_header(header)
  validate_header_name(header)
  ngx.req.clear_header(header)
end

-- ------------------------------------------------------------------ kong.response

local response = {}

-- what Kong's response.exit does once it really sends: status, headers, body, end of the request
function M.send(status, body, headers)
  if ngx.headers_sent then error("headers have already been sent", 2) end
  ngx.status = status
  local has_type = false
  if headers then
    for k, v in pairs(headers) do
      ngx.header[k] = v
      if lower(k) == "content-type" then has_type = true end
    end
  end
  if type(body) == "table" then
    body = cjson.encode(body)
    if not has_type then ngx.header["Content-Type"] = "application/json; charset=utf-8" end
  end
  if body and body ~= "" then
    ngx.header["Content-Length"] = #body
    ngx.print(body)
  else
    ngx.header["Content-Length"] = 0
  end
  return ngx.exit(status)
end

function response.exit(status, body, headers)
  if type(status) ~= "number" then error("code must be a number", 2)
  elseif status < 100 or status > 599 then error("code must be a number between 100 and 599", 2)
  end
  if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
    error("body must be a nil, string or table", 2)
  end
  if headers ~= nil and type(headers) ~= "table" then error("headers must be a nil or table", 2) end
  if headers then
    for k, v in pairs(headers) do
      validate_header_name(k)
      validate_header_value(k, v)
    end
  end
  local ctx = ngx.ctx
  if ctx.delay_response and not ctx.delayed_response then
    -- access phase: the runloop sends it after the handler; this handler never runs again
    ctx.delayed_response = { status_code = status, content = body, headers = headers }
    co_yield()
    return
  end
  return M.send(status, body, headers)
end

local ERROR_MESSAGES = {
  [400] = "Bad request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not found",
  [500] = "An unexpected error occurred", [502] = "An invalid response was received from the upstream server",
  [503] = "Service unavailable",
}

function response.error(status, message, headers)
  message = message or ERROR_MESSAGES[status] or "The upstream server responded with " .. tostring(status)
  local h = { ["Content-Type"] = "application/json; charset=utf-8" }
  if headers then for k, v in pairs(headers) do h[k] = v end end
  return response.exit(status, cjson.encode({ message = message }), h)
end

-- ------------------------------------------------------------------ kong.client

local client = {}

function client.authenticate(consumer, credential)
  if not consumer and not credential then
    error("either credential or consumer must be provided", 2)
  end
  if consumer and type(consumer) ~= "table" then error("consumer must be a table or nil", 2) end
  if credential and type(credential) ~= "table" then error("credential must be a table or nil", 2) end
  local ctx = ngx.ctx
  ctx.authenticated_consumer = consumer
  ctx.authenticated_credential = credential
end

function client.get_credential()
  return ngx.ctx.authenticated_credential
end

function client.get_consumer()
  return ngx.ctx.authenticated_consumer
end

-- the rig has no consumers: every well-formed lookup answers "not found"
function client.load_consumer(consumer_id, search_by_username)
  if type(consumer_id) ~= "string" then error("consumer_id must be a string", 2) end
  if not is_uuid(consumer_id) and not search_by_username then
    error("cannot load a consumer with an id that is not a uuid", 2)
  end
  return nil
end

function client.get_ip()
  return ngx.var.realip_remote_addr or ngx.var.remote_addr
end

function client.get_forwarded_ip()
  return ngx.var.remote_addr
end

-- ------------------------------------------------------------------ kong.log

local log = {}

local function logger(level)
  return function(...)
    local n = select("#", ...)
    local parts = { ... }
    for i = 1, n do parts[i] = tostring(parts[i]) end
    ngx.log(level, plugin_prefix(), concat(parts, "", 1, n))
  end
end

log.alert = logger(ngx.ALERT)
log.crit = logger(ngx.CRIT)
log.err = logger(ngx.ERR)
log.warn = logger(ngx.WARN)
log.notice = logger(ngx.NOTICE)
log.info = logger(ngx.INFO)
log.debug = logger(ngx.DEBUG)

function log.set_serialize_value(key, value, options)
  options = options or {}
  local mode = options.mode or "set"
  if type(key) ~= "string" then error("key must be a string", 2) end
  local vt = type(value)
  if not (vt == "number" or vt == "string" or vt == "nil" or vt == "boolean" or vt == "table") then
    error("value must be a number, string, boolean, table or nil", 2)
  end
  if mode ~= "set" and mode ~= "add" and mode ~= "replace" then
    error("mode must be 'set', 'add' or 'replace'", 2)
  end
  local ctx = ngx.ctx
  local values = ctx.serialize_values or {}
  values[#values + 1] = { key = key, value = value, mode = mode }
  ctx.serialize_values = values
end

-- ------------------------------------------------------------------ kong.nginx, kong.ctx.shared, kong.plugin

local nginx = {}

function nginx.set_ctx(k, v)
  ngx.ctx[k] = v
end

function nginx.get_ctx(k)
  return ngx.ctx[k]
end

function nginx.get_var(v)
  return ngx.var[v]
end

local function shared()
  local ctx = ngx.ctx
  local t = ctx.rig_shared
  if not t then
    t = {}
    ctx.rig_shared = t
  end
  return t
end

M.plugin = {
  get_id = function() return ngx.ctx.plugin_id end,
}

-- ------------------------------------------------------------------ the method table

M.request, M.service_request, M.response, M.client, M.log, M.nginx = request, service_request, response, client, log, nginx

M.methods = {
  ["kong.request.get_header"] = request.get_header,
  ["kong.request.get_headers"] = request.get_headers,
  ["kong.request.get_method"] = request.get_method,
  ["kong.request.get_raw_body"] = request.get_raw_body,
  ["kong.request.get_path"] = request.get_path,
  ["kong.request.get_host"] = request.get_host,
  ["kong.request.get_scheme"] = request.get_scheme,
  ["kong.service.request.set_header"] = service_request.set_header,
  ["kong.service.request.add_header"] = service_request.add_header,
  ["kong.service.request.set_headers"] = service_request.set_headers,
  ["kong.service.request.clear_header"] = service_request.clear_header,
  ["kong.response.exit"] = response.exit,
  ["kong.response.error"] = response.error,
  ["kong.client.authenticate"] = client.authenticate,
  ["kong.client.get_credential"] = client.get_credential,
  ["kong.client.get_consumer"] = client.get_consumer,
  ["kong.client.load_consumer"] = client.load_consumer,
  ["kong.client.get_ip"] = client.get_ip,
  ["kong.client.get_forwarded_ip"] = client.get_forwarded_ip,
  ["kong.log.alert"] = log.alert,
  ["kong.log.crit"] = log.crit,
  ["kong.log.err"] = log.err,
  ["kong.log.warn"] = log.warn,
  ["kong.log.notice"] = log.notice,
  ["kong.log.info"] = log.info,
  ["kong.log.debug"] = log.debug,
  ["kong.log.set_serialize_value"] = log.set_serialize_value,
  ["kong.nginx.set_ctx"] = nginx.set_ctx,
  ["kong.nginx.get_ctx"] = nginx.get_ctx,
  ["kong.nginx.get_var"] = nginx.get_var,
  ["kong.ctx.shared.set"] = function(k, v) shared()[k] = v end,
  ["kong.ctx.shared.get"] = function(k) return shared()[k] end,
}

-- ProtoBuf:1 argument and return messages of those methods (Kong's pluginsocket.proto); a method
-- missing here is "not found" over ProtoBuf:1, as a method missing from Kong's .proto is
M.pb_types = {
  ["kong.request.get_header"] = { "String", "String" },
  ["kong.request.get_headers"] = { "Int", "Struct" },
  ["kong.request.get_method"] = { "Empty", "String" },
  ["kong.request.get_raw_body"] = { "Empty", "RawBodyResult" },
  ["kong.request.get_path"] = { "Empty", "String" },
  ["kong.request.get_host"] = { "Empty", "String" },
  ["kong.request.get_scheme"] = { "Empty", "String" },
  ["kong.service.request.set_header"] = { "KV", "Empty" },
  ["kong.service.request.add_header"] = { "KV", "Empty" },
  ["kong.service.request.set_headers"] = { "Struct", "Empty" },
  ["kong.service.request.clear_header"] = { "String", "Empty" },
  ["kong.response.exit"] = { "ExitArgs", "Empty" },
  ["kong.client.authenticate"] = { "AuthenticateArgs", "Empty" },
  ["kong.client.get_credential"] = { "Empty", "AuthenticatedCredential" },
  ["kong.client.get_consumer"] = { "Empty", "Consumer" },
  ["kong.client.load_consumer"] = { "ConsumerSpec", "Consumer" },
  ["kong.client.get_ip"] = { "Empty", "String" },
  ["kong.client.get_forwarded_ip"] = { "Empty", "String" },
  ["kong.log.alert"] = { "ListValue", "Empty" },
  ["kong.log.crit"] = { "ListValue", "Empty" },
  ["kong.log.err"] = { "ListValue", "Empty" },
  ["kong.log.warn"] = { "ListValue", "Empty" },
  ["kong.log.notice"] = { "ListValue", "Empty" },
  ["kong.log.info"] = { "ListValue", "Empty" },
  ["kong.log.debug"] = { "ListValue", "Empty" },
  ["kong.log.set_serialize_value"] = { "KV", "Empty" },
  ["kong.nginx.set_ctx"] = { "KV", "String" },
  ["kong.nginx.get_ctx"] = { "String", "Value" },
  ["kong.nginx.get_var"] = { "String", "String" },
  ["kong.ctx.shared.set"] = { "KV", "Empty" },
  ["kong.ctx.shared.get"] = { "String", "Value" },
}

return M
