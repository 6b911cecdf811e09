-- Protobuf (proto3) wire format for the few messages of Kong's plugin socket protocol the rig speaks,
-- written by hand (Debian has no lua-protobuf). Field numbers are those of package kong_plugin_protocol
-- and of google.protobuf.{Value,Struct,ListValue}. The encoders produce the bytes Kong's encoder
-- produces: scalars outside a oneof are left out when they hold their default, oneof members
-- (Value's kinds) are always written. The decoders hand back what Kong's PDK functions receive: absent
-- scalars read as their defaults, absent sub-messages as nil, Values unwrapped the way Kong unwraps
-- them (list, then struct, then `bool or string or number or null`, so `false` becomes nil).

local ffi = require "ffi"
local bit = require "bit"

local byte, char, sub = string.byte, string.char, string.sub
local floor = math.floor
local type, pairs, ipairs, tostring, error, unpack = type, pairs, ipairs, tostring, error, unpack

local M = {}

local dbl = ffi.new("double[1]")
local TWO32 = 4294967296

-- ------------------------------------------------------------------ varints

local function varint(n)
  if n >= 0 then
    if n < 0x80 then return char(n) end
    if n < 0x4000 then return char(n % 128 + 128, floor(n / 128)) end
    local t, i = {}, 0
    while n >= 128 do
      i = i + 1
      t[i] = n % 128 + 128
      n = floor(n / 128)
    end
    t[i + 1] = n
    return char(unpack(t, 1, i + 1))
  end
  -- negative: ten bytes of 64-bit two's complement
  local u = ffi.cast("uint64_t", ffi.cast("int64_t", n))
  local t = {}
  for i = 1, 10 do
    local b = tonumber(bit.band(u, 0x7f))
    u = bit.rshift(u, 7)
    t[i] = i < 10 and b + 128 or b
  end
  return char(unpack(t, 1, 10))
end
M.varint = varint

-- returns value, next position; a ten-byte varint (a negative int32/int64) is read from its low 32 bits
local function read_varint(s, i)
  local b = byte(s, i)
  if not b then error("protobuf: truncated varint", 2) end
  if b < 128 then return b, i + 1 end
  local v, mul, n, start = b - 128, 128, 1, i
  i = i + 1
  while true do
    b = byte(s, i)
    if not b then error("protobuf: truncated varint", 2) end
    i = i + 1
    n = n + 1
    if b < 128 then
      v = v + b * mul
      break
    end
    v = v + (b - 128) * mul
    mul = mul * 128
    if n > 10 then error("protobuf: varint too long", 2) end
  end
  if n == 10 then
    local lo, m = 0, 1
    for k = 0, 4 do
      lo = lo + (byte(s, start + k) % 128) * m
      m = m * 128
    end
    lo = lo % TWO32
    v = lo >= 2147483648 and lo - TWO32 or lo
  end
  return v, i
end
M.read_varint = read_varint

local function skip(s, i, wt)
  if wt == 0 then
    local _
    _, i = read_varint(s, i)
    return i
  elseif wt == 2 then
    local len
    len, i = read_varint(s, i)
    return i + len
  elseif wt == 1 then
    return i + 8
  elseif wt == 5 then
    return i + 4
  end
  error("protobuf: unsupported wire type " .. wt, 2)
end

local function read_double(s, i)
  ffi.copy(dbl, sub(s, i, i + 7), 8)
  return dbl[0]
end

-- ------------------------------------------------------------------ google.protobuf.Value / Struct / ListValue

local enc_value, enc_struct, enc_list

-- Kong's wrapping of a Lua value: nil -> null_value 1 (sic), a table with [1] -> list, other tables -> struct
function enc_value(v)
  local t = type(v)
  if t == "string" then return "\26" .. varint(#v) .. v end
  if t == "nil" then return "\8\1" end
  if t == "boolean" then return v and "\32\1" or "\32\0" end
  if t == "number" then
    dbl[0] = v
    return "\17" .. ffi.string(dbl, 8)
  end
  if t == "table" then
    if v[1] ~= nil then
      local l = enc_list(v)
      return "\50" .. varint(#l) .. l
    end
    local st = enc_struct(v)
    return "\42" .. varint(#st) .. st
  end
  return "" -- userdata (cjson.null), functions: no kind is set
end

function enc_list(arr)
  local out, n = {}, 0
  for _, v in ipairs(arr) do
    local e = enc_value(v)
    n = n + 1
    out[n] = "\10" .. varint(#e) .. e
  end
  return table.concat(out, "", 1, n)
end

function enc_struct(tbl)
  local out, n = {}, 0
  for k, v in pairs(tbl) do
    k = tostring(k)
    local e = enc_value(v)
    local entry = "\10" .. varint(#k) .. k .. "\18" .. varint(#e) .. e
    n = n + 1
    out[n] = "\10" .. varint(#entry) .. entry
  end
  return table.concat(out, "", 1, n)
end

M.enc_value, M.enc_struct, M.enc_list = enc_value, enc_struct, enc_list

local dec_value, dec_struct, dec_list

-- decodes s[i..e) as a Value and unwraps it
function dec_value(s, i, e)
  local null, num, str, bool, struct, list
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    local f, wt = floor(tag / 8), tag % 8
    if f == 3 and wt == 2 then
      local len
      len, i = read_varint(s, i)
      str = sub(s, i, i + len - 1)
      i = i + len
    elseif f == 4 and wt == 0 then
      local v
      v, i = read_varint(s, i)
      bool = v ~= 0
    elseif f == 2 and wt == 1 then
      num = read_double(s, i)
      i = i + 8
    elseif f == 1 and wt == 0 then
      null, i = read_varint(s, i)
    elseif f == 5 and wt == 2 then
      local len
      len, i = read_varint(s, i)
      struct = dec_struct(s, i, i + len)
      i = i + len
    elseif f == 6 and wt == 2 then
      local len
      len, i = read_varint(s, i)
      list = dec_list(s, i, i + len)
      i = i + len
    else
      i = skip(s, i, wt)
    end
  end
  if list then return list end
  if struct then return struct end
  if null == 0 then null = "NULL_VALUE" end -- an enum is read as its name when known
  return bool or str or num or null
end

function dec_struct(s, i, e)
  local out = {}
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 10 then -- fields: map entry {1 key, 2 value}
      local len
      len, i = read_varint(s, i)
      local j, ee = i, i + len
      local k, v = "", nil
      while j < ee do
        local t2
        t2, j = read_varint(s, j)
        if t2 == 10 then
          local l2
          l2, j = read_varint(s, j)
          k = sub(s, j, j + l2 - 1)
          j = j + l2
        elseif t2 == 18 then
          local l2
          l2, j = read_varint(s, j)
          v = dec_value(s, j, j + l2)
          j = j + l2
        else
          j = skip(s, j, t2 % 8)
        end
      end
      out[k] = v
      i = ee
    else
      i = skip(s, i, tag % 8)
    end
  end
  return out
end

function dec_list(s, i, e)
  local out, n = {}, 0
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 10 then
      local len
      len, i = read_varint(s, i)
      n = n + 1
      out[n] = dec_value(s, i, i + len)
      i = i + len
    else
      i = skip(s, i, tag % 8)
    end
  end
  return out
end

M.dec_value, M.dec_struct, M.dec_list = dec_value, dec_struct, dec_list

-- ------------------------------------------------------------------ generic field walk

-- calls on_field(field, wire type, value or start, end) for each field of s[i..e): varints pass the
-- value, length-delimited fields pass their start and end, fixed64 passes the start
local function fields(s, i, e, on_field, acc)
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    local f, wt = floor(tag / 8), tag % 8
    if wt == 0 then
      local v
      v, i = read_varint(s, i)
      on_field(acc, f, wt, v)
    elseif wt == 2 then
      local len
      len, i = read_varint(s, i)
      on_field(acc, f, wt, i, i + len)
      i = i + len
    elseif wt == 1 then
      on_field(acc, f, wt, i)
      i = i + 8
    else
      i = skip(s, i, wt)
    end
  end
  return acc
end

-- ------------------------------------------------------------------ PDK arguments (server -> Kong)

-- each returns the positional Lua arguments of the PDK call
M.args = {}

M.args.Empty = function() end

M.args.String = function(s)
  local v = ""
  local i, e = 1, #s + 1
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 10 then
      local len
      len, i = read_varint(s, i)
      v = sub(s, i, i + len - 1)
      i = i + len
    else
      i = skip(s, i, tag % 8)
    end
  end
  return v
end
M.args.ByteString = M.args.String

M.args.Int = function(s)
  local v = 0
  local i, e = 1, #s + 1
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 8 then
      v, i = read_varint(s, i)
      v = v % TWO32
      if v >= 2147483648 then v = v - TWO32 end
    else
      i = skip(s, i, tag % 8)
    end
  end
  return v
end

M.args.Bool = function(s)
  local v = false
  local i, e = 1, #s + 1
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 8 then
      local x
      x, i = read_varint(s, i)
      v = x ~= 0
    else
      i = skip(s, i, tag % 8)
    end
  end
  return v
end

-- KV {1 k, 2 v: Value} -> k, unwrapped v
M.args.KV = function(s)
  local k, v = "", nil
  local i, e = 1, #s + 1
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 10 then
      local len
      len, i = read_varint(s, i)
      k = sub(s, i, i + len - 1)
      i = i + len
    elseif tag == 18 then
      local len
      len, i = read_varint(s, i)
      v = dec_value(s, i, i + len)
      i = i + len
    else
      i = skip(s, i, tag % 8)
    end
  end
  return k, v
end

M.args.ListValue = function(s)
  return unpack(dec_list(s, 1, #s + 1))
end

M.args.Struct = function(s)
  return dec_struct(s, 1, #s + 1)
end

-- ExitArgs {1 status, 2 body, 3 headers: Struct} -> status, body, headers (nil when absent)
local function exit_field(acc, f, wt, a, b)
  if f == 1 and wt == 0 then
    acc[1] = a % TWO32
    if acc[1] >= 2147483648 then acc[1] = acc[1] - TWO32 end
  elseif f == 2 and wt == 2 then
    acc[2] = sub(acc.s, a, b - 1)
  elseif f == 3 and wt == 2 then
    acc[3] = dec_struct(acc.s, a, b)
  end
end
M.args.ExitArgs = function(s)
  local acc = fields(s, 1, #s + 1, exit_field, { 0, "", nil, s = s })
  return acc[1], acc[2], acc[3]
end

-- ConsumerSpec {1 id, 2 by_username} -> id, by_username
M.args.ConsumerSpec = function(s)
  local id, by_username = "", false
  local i, e = 1, #s + 1
  while i < e do
    local tag
    tag, i = read_varint(s, i)
    if tag == 10 then
      local len
      len, i = read_varint(s, i)
      id = sub(s, i, i + len - 1)
      i = i + len
    elseif tag == 16 then
      local x
      x, i = read_varint(s, i)
      by_username = x ~= 0
    else
      i = skip(s, i, tag % 8)
    end
  end
  return id, by_username
end

-- Consumer {1 id, 2 created_at, 3 username, 4 custom_id, 5 tags}: every scalar present, defaults filled
local function consumer_field(acc, f, wt, a, b)
  local s = acc.s
  if wt == 2 then
    local v = sub(s, a, b - 1)
    if f == 1 then acc.t.id = v
    elseif f == 3 then acc.t.username = v
    elseif f == 4 then acc.t.custom_id = v
    elseif f == 5 then acc.t.tags[#acc.t.tags + 1] = v
    end
  elseif wt == 0 and f == 2 then
    acc.t.created_at = a
  end
end
local function dec_consumer(s, i, e)
  local t = { id = "", created_at = 0, username = "", custom_id = "", tags = {} }
  fields(s, i, e, consumer_field, { s = s, t = t })
  return t
end

-- AuthenticatedCredential {1 id, 2 consumer_id}
local function credential_field(acc, f, wt, a, b)
  if wt == 2 then
    if f == 1 then acc.t.id = sub(acc.s, a, b - 1)
    elseif f == 2 then acc.t.consumer_id = sub(acc.s, a, b - 1)
    end
  end
end
local function dec_credential(s, i, e)
  local t = { id = "", consumer_id = "" }
  fields(s, i, e, credential_field, { s = s, t = t })
  return t
end

-- AuthenticateArgs {1 consumer, 2 credential} -> consumer table or nil, credential table or nil
local function auth_field(acc, f, wt, a, b)
  if wt == 2 then
    if f == 1 then acc[1] = dec_consumer(acc.s, a, b)
    elseif f == 2 then acc[2] = dec_credential(acc.s, a, b)
    end
  end
end
M.args.AuthenticateArgs = function(s)
  local acc = fields(s, 1, #s + 1, auth_field, { nil, nil, s = s })
  return acc[1], acc[2]
end

-- ------------------------------------------------------------------ PDK returns (Kong -> server)

local function bad_encode(got)
  error("bad argument #2 to 'encode' (table expected, got " .. type(got) .. ")", 3)
end

local function str_field(tag, v)
  if v == nil then return "" end
  local t = type(v)
  if t == "number" then v = tostring(v)
  elseif t ~= "string" then error("protobuf: string expected, got " .. t, 3) end
  if v == "" then return "" end
  return tag .. varint(#v) .. v
end

-- each takes the PDK function's return values and gives the reply payload
M.ret = {}

-- identity-wrapped outputs: whatever the function returned is encoded as the message
M.ret.Empty = function(v)
  if v == nil then return "" end
  if type(v) ~= "table" then bad_encode(v) end
  return ""
end

M.ret.String = function(v) return str_field("\10", v) end
M.ret.ByteString = M.ret.String

M.ret.Int = function(v)
  if v == nil or v == 0 then return "" end
  if type(v) ~= "number" then error("protobuf: number expected, got " .. type(v), 2) end
  return "\8" .. varint(floor(v))
end

M.ret.Bool = function(v)
  if not v then return "" end
  return "\8\1"
end

M.ret.Number = function(v)
  if v == nil or v == 0 then return "" end
  dbl[0] = v
  return "\9" .. ffi.string(dbl, 8)
end

M.ret.Value = function(v) return enc_value(v) end

M.ret.Struct = function(v)
  if type(v) ~= "table" then error("bad argument #1 to 'pairs' (table expected, got " .. type(v) .. ")", 2) end
  return enc_struct(v)
end

M.ret.Consumer = function(c)
  if c == nil then return "" end
  if type(c) ~= "table" then bad_encode(c) end
  local out = str_field("\10", c.id)
  local created = c.created_at
  if type(created) == "number" and created ~= 0 then out = out .. "\16" .. varint(floor(created)) end
  out = out .. str_field("\26", c.username) .. str_field("\34", c.custom_id)
  if type(c.tags) == "table" then
    for _, tag in ipairs(c.tags) do out = out .. "\42" .. varint(#tag) .. tag end
  end
  return out
end

-- Kong's pb_rpc wraps get_raw_body: the body as content, else the temp file's path, else the error
M.ret.RawBodyResult = function(v, err)
  if type(v) == "string" then return "\10" .. varint(#v) .. v end
  local path = ngx.req.get_body_file()
  if path then return "\18" .. varint(#path) .. path end
  local e = err or "Can't read request body"
  return "\26" .. varint(#e) .. e
end

M.ret.AuthenticatedCredential = function(c)
  if c == nil then return "" end
  if type(c) ~= "table" then bad_encode(c) end
  return str_field("\10", c.id) .. str_field("\18", c.consumer_id)
end

-- ------------------------------------------------------------------ RpcCall / RpcReturn

-- RpcCall{1 sequence, 33 cmd_start_instance{1 name, 2 config}}
function M.start_instance(seq, name, config)
  local body = str_field("\10", name) .. str_field("\18", config)
  return "\8" .. varint(seq) .. "\138\2" .. varint(#body) .. body
end

-- RpcCall{1 sequence, 35 cmd_close_instance{1 instance_id}}
function M.close_instance(seq, instance_id)
  local body = instance_id ~= 0 and "\8" .. varint(instance_id) or ""
  return "\8" .. varint(seq) .. "\154\2" .. varint(#body) .. body
end

-- RpcCall{1 sequence, 36 cmd_handle_event{1 instance_id, 2 event_name}}
function M.handle_event(seq, instance_id, event_name)
  local body = (instance_id ~= 0 and "\8" .. varint(instance_id) or "") .. str_field("\18", event_name)
  return "\8" .. varint(seq) .. "\162\2" .. varint(#body) .. body
end

-- InstanceStatus {1 name, 2 instance_id, 3 config: Value, 4 started_at}
local function status_field(acc, f, wt, a, b)
  local t = acc.t
  if f == 1 and wt == 2 then t.name = sub(acc.s, a, b - 1)
  elseif f == 2 and wt == 0 then
    local v = a % TWO32
    t.instance_id = v >= 2147483648 and v - TWO32 or v
  elseif f == 3 and wt == 2 then t.config = dec_value(acc.s, a, b)
  elseif f == 4 and wt == 0 then t.started_at = a
  end
end

-- RpcReturn {1 sequence, 33 instance_status}: only what Kong reads
local function return_field(acc, f, wt, a, b)
  if f == 1 and wt == 0 then
    acc.r.sequence = a
  elseif f == 33 and wt == 2 then
    local t = { name = "", instance_id = 0, started_at = 0 }
    fields(acc.s, a, b, status_field, { s = acc.s, t = t })
    acc.r.instance_status = t
  end
end

function M.rpc_return(s)
  local r = { sequence = 0 }
  fields(s, 1, #s + 1, return_field, { s = s, r = r })
  return r
end

return M
