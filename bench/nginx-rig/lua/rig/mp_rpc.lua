-- Kong's side of MsgPack:1 (msgpack-rpc), as Kong 3.9's external-plugin runloop behaves:
--   * one RPC per pooled checkout: connect, one send of `[0, msgid, method, [params]]`, a fresh unpacker
--     over `receiveany(4096)` until a response `[1, msgid, error, result]` arrives (a `serverPid`
--     notification may come first), then `setkeepalive()`;
--   * `plugin.HandleEvent {InstanceId, EventName}` answers `{EventId, Data}`; Data is "ret" (done) or a
--     PDK call `{Method, Args}`; Kong runs it with the array spread as positional arguments and sends
--     the result with the next `plugin.Step*` (StepMultiMap for header maps, StepCredential for
--     get_credential/authenticate, StepConsumer for load_consumer/get_consumer, Step otherwise);
--   * header maps go out as name -> array of strings, an empty map as an empty map;
--   * `kong.response.exit` suspends the handler for good: no Step follows;
--   * an error containing "no plugin instance" resets the instances and replays the event; any other
--     error is only logged and the request goes on (fail-open, every Kong version): the rig counts it
--     as an error so a run with one fails.

local cjson = require "cjson.safe"
local mp = require "MessagePack"
local pdk = require "rig.pdk"
local frames = require "rig.frames"

local ngx = ngx
local type, pairs, unpack, assert, setmetatable, tonumber = type, pairs, unpack, assert, setmetatable, tonumber
local find, lower = string.find, string.lower

local M = {}
M.MAX_REPLAYS = 3

-- cjson.null packs as nil; a function packs whatever it writes (used for the empty map/array markers)
do
  local packers = mp.packers
  local pack_nil = packers["nil"]
  packers.userdata = function(buffer, u)
    if u == cjson.null then return pack_nil(buffer) end
    error("pack 'userdata' is unimplemented")
  end
  packers["function"] = function(buffer, f) f(buffer) end
end

local function empty_map(buffer) mp.packers.map(buffer, {}, 0) end
local function empty_array(buffer) mp.packers.array(buffer, {}, 0) end

-- header/query maps: every value an array of strings; a flag (true) an empty array
local function multimap(t)
  if type(t) ~= "table" then return t end
  local out, empty = {}, true
  for k, v in pairs(t) do
    empty = false
    if v == true then
      out[k] = empty_array
    elseif type(v) == "string" then
      out[k] = { v }
    else
      out[k] = v
    end
  end
  if empty then return empty_map end
  return out
end

local fixes = {
  ["kong.request.get_headers"] = multimap,
  ["kong.request.get_raw_body"] = function(bin) -- Kong's fix_raw: the body as bin
    if type(bin) ~= "string" then return bin end
    return function(buffer) mp.packers.binary(buffer, bin) end
  end,
}

local step_for = {
  ["kong.client.get_credential"] = "plugin.StepCredential",
  ["kong.client.authenticate"] = "plugin.StepCredential",
  ["kong.client.load_consumer"] = "plugin.StepConsumer",
  ["kong.client.get_consumer"] = "plugin.StepConsumer",
  ["kong.request.get_headers"] = "plugin.StepMultiMap",
}

local methods = pdk.methods

local function call_pdk(name, args)
  local f = methods[name]
  if not f then
    pdk.log.err("could not find pdk method: ", name)
    return nil
  end
  local ret
  if type(args) == "table" then
    ret = f(unpack(args))
  else
    ret = f(args)
  end
  local fix = fixes[name]
  if fix then ret = fix(ret) end
  return ret
end

local Rpc = {}
Rpc.__index = Rpc

function Rpc:call(method, params, counters)
  self.msg_id = self.msg_id + 1
  local msg_id = self.msg_id

  local c, err = ngx.socket.connect(self.address)
  if not c then
    pdk.log.err("trying to connect: ", err)
    return nil, err
  end

  local bytes
  local msg = mp.pack({ 0, msg_id, method, { params } })
  frames.note("MsgPack:1 " .. method, #msg)
  bytes, err = c:send(msg)
  if not bytes then
    c:setkeepalive()
    return nil, err
  end

  local reader = mp.unpacker(function() return c:receiveany(4096) end)
  while true do
    local ok, data = reader()
    if not ok then
      c:setkeepalive()
      return nil, "no data"
    end
    if data[1] == 2 then
      self:notification(data[2], data[3])
    else
      assert(data[1] == 1, "RPC response expected from the plugin server")
      assert(data[2] == msg_id, "unexpected RPC response ID from the plugin server")
      c:setkeepalive()
      if data[3] ~= nil then return nil, data[3] end
      return data[4]
    end
  end
end

-- serverPid: when the server's pid changes, the instances started on it are gone
function Rpc:notification(label, args)
  if label ~= "serverPid" then return end
  local pid = tonumber(args)
  if self.server_pid and pid ~= self.server_pid then
    self.instances.reset_instance(self)
  end
  self.server_pid = pid
end

function Rpc:call_start_instance(plugin_name, conf, counters)
  counters.starts = counters.starts + 1
  local status, err = self:call("plugin.StartInstance", { Name = plugin_name, Config = cjson.encode(conf) }, counters)
  if status == nil then return nil, err end
  return { id = status.Id, conf = conf, seq = conf.__seq__, Config = status.Config, rpc = self }
end

function Rpc:call_close_instance(instance_id, counters)
  counters.closes = counters.closes + 1
  return self:call("plugin.CloseInstance", instance_id, counters)
end

local function bridge_loop(self, instance_id, phase, counters)
  local step, err = self:call("plugin.HandleEvent", { InstanceId = instance_id, EventName = phase }, counters)
  if not step then return nil, err end
  local event_id = step.EventId
  while true do
    local data = step.Data
    if data == "ret" then break end
    counters.pdk_calls = counters.pdk_calls + 1
    local res = call_pdk(data.Method, data.Args)
    step, err = self:call(step_for[data.Method] or "plugin.Step", { EventId = event_id, Data = res }, counters)
    if not step then return nil, err end
  end
  return true
end

function Rpc:handle_event(entity, phase, replays)
  local counters = entity.counters
  local instance_id, err = self.instances.get_instance_id(self, entity)
  if not err then
    local _
    _, err = bridge_loop(self, instance_id, phase, counters)
  end
  if not err then return end

  if type(err) ~= "string" then err = tostring(err) end
  if find(lower(err), "no plugin instance", 1, true) then
    counters.resets = counters.resets + 1
    self.instances.reset_instance(self)
    pdk.log.warn(err)
    replays = (replays or 0) + 1
    if replays <= M.MAX_REPLAYS then
      return self:handle_event(entity, phase, replays)
    end
  end
  -- Kong only logs this and lets the request through
  counters.errors = counters.errors + 1
  pdk.log.err(err)
end

function M.new(socket_path, instances)
  return setmetatable({
    address = "unix:" .. socket_path,
    msg_id = 0,
    instances = instances,
    protocol = "MsgPack:1",
  }, Rpc)
end

return M
