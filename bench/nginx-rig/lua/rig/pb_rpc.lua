-- Kong's side of ProtoBuf:1, as Kong 3.9's external-plugin runloop behaves:
--   * every command takes a connection from the worker's cosocket pool (`ngx.socket.connect("unix:...")`)
--     and gives it back with `setkeepalive()` only after a complete exchange;
--   * a frame is a uint32 little-endian length and the payload, written as two sends and read as two
--     receives (4 bytes, then the payload), one frame at a time;
--   * the sequence is a counter per RPC object (per plugin server per worker): incremented, then sent
--     plus one (the first call carries 2), and the RpcReturn must echo it;
--   * during an event the server drives: a method-name frame and an argument frame per PDK call, one
--     reply frame from Kong, an empty frame for "done", then the RpcReturn;
--   * `kong.response.exit` suspends the handler for good: no reply, the connection is abandoned and
--     nginx closes it when the request ends;
--   * an error containing "no plugin instance" or "closed" resets this server's cached instances in the
--     worker and replays the event; any other error is logged and answered 500 (Kong 3.8+).

local cjson = require "cjson.safe"
local pb = require "rig.pb"
local pdk = require "rig.pdk"
local frames = require "rig.frames"

local ngx = ngx
local byte, char, find, lower, format = string.byte, string.char, string.find, string.lower, string.format
local floor = math.floor
local assert, setmetatable = assert, setmetatable

local methods, types = pdk.methods, pdk.pb_types
local args_of, ret_of = pb.args, pb.ret

local M = {}

-- the rig stops replaying after this many resets within one request (Kong has no limit)
M.MAX_REPLAYS = 3

local Rpc = {}
Rpc.__index = Rpc

local function len4(n)
  return char(n % 256, floor(n / 256) % 256, floor(n / 65536) % 256, floor(n / 16777216) % 256)
end

local function send_frame(c, payload)
  assert(c:send(len4(#payload)))
  assert(c:send(payload))
end

local function recv_frame(c)
  local head, err = c:receive(4)
  if not head then return nil, err end
  local a, b, d, e = byte(head, 1, 4)
  return c:receive(a + b * 256 + d * 65536 + e * 16777216)
end

-- runs one PDK call; returns the reply payload, or nil and an error
local function call_pdk(name, arg)
  local t = types[name]
  if not t then
    return nil, format("method %q not found", name)
  end
  return ret_of[t[2]](methods[name](args_of[t[1]](arg)))
end

-- kind: "event" (x = instance id, y = event name), "start" (x = plugin name, y = config JSON), "close" (x = id)
function Rpc:call(kind, x, y, counters)
  self.msg_id = self.msg_id + 1
  local seq = self.msg_id + 1

  local c, err = ngx.socket.connect(self.address)
  if not c then
    pdk.log.err("trying to connect: ", err)
    return nil, err
  end

  local msg
  if kind == "event" then
    msg = pb.handle_event(seq, x, y)
  elseif kind == "start" then
    msg = pb.start_instance(seq, x, y)
  else
    msg = pb.close_instance(seq, x)
  end
  frames.note(kind == "start" and "ProtoBuf:1 StartInstance" or kind == "event" and "ProtoBuf:1 HandleEvent" or "ProtoBuf:1 CloseInstance", #msg)
  send_frame(c, msg)

  if kind == "event" then
    while true do
      local name
      name, err = recv_frame(c)
      if not name then return nil, err end
      if name == "" then break end
      local arg
      arg, err = recv_frame(c)
      if not arg then return nil, err end
      counters.pdk_calls = counters.pdk_calls + 1
      local reply
      reply, err = call_pdk(name, arg)
      if not reply then return nil, err end
      frames.note("ProtoBuf:1 " .. name, #reply)
      send_frame(c, reply)
    end
  end

  msg, err = recv_frame(c)
  if not msg then return nil, err end
  c:setkeepalive()

  local ret = pb.rpc_return(msg)
  assert(ret.sequence == seq, "unexpected RpcReturn sequence")
  return ret
end

function Rpc:call_start_instance(plugin_name, conf, counters)
  counters.starts = counters.starts + 1
  local status, err = self:call("start", plugin_name, cjson.encode(conf), counters)
  if status == nil then return nil, err end
  return {
    id = status.instance_status.instance_id,
    conf = conf,
    seq = conf.__seq__,
    Config = status.instance_status.config,
    rpc = self,
  }
end

function Rpc:call_close_instance(instance_id, counters)
  counters.closes = counters.closes + 1
  return self:call("close", instance_id, nil, counters)
end

-- one event of one plugin entity (entity: {id, conf, counters}; instances: the runloop's callbacks)
function Rpc:handle_event(entity, phase, replays)
  local counters = entity.counters
  local instance_id, err = self.instances.get_instance_id(self, entity)
  local res
  if not err then
    res, err = self:call("event", instance_id, phase, counters)
  end
  if res then return end

  local e = err and lower(err) or "unknown error"
  if find(e, "no plugin instance", 1, true) or find(e, "closed", 1, true) then
    counters.resets = counters.resets + 1
    self.instances.reset_instance(self)
    pdk.log.warn(err)
    replays = (replays or 0) + 1
    if replays <= M.MAX_REPLAYS then
      return self:handle_event(entity, phase, replays)
    end
    err = "gave up after " .. M.MAX_REPLAYS .. " replays: " .. err
  end
  counters.errors = counters.errors + 1
  pdk.log.err("pluginserver error: ", err or "unknown error")
  return pdk.response.error(500)
end

function M.new(socket_path, instances)
  return setmetatable({
    address = "unix:" .. socket_path,
    msg_id = 0,
    instances = instances,
    protocol = "ProtoBuf:1",
  }, Rpc)
end

return M
