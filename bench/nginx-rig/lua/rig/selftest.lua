-- Checks the rig's hand-written protobuf against known byte vectors of Kong's plugin protocol (the
-- event and StartInstance exchanges, ExitArgs, Value quirks) and a few round trips. run.sh calls it
-- through the admin port before anything is measured; a failure stops the run.

local pb = require "rig.pb"
local mp = require "MessagePack"

local M = {}

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x ", c:byte()) end))
end

local function bytes(spec) -- "08 02 'my-auth' 12": hex bytes and quoted text
  local out, i = {}, 1
  while i <= #spec do
    local c = spec:sub(i, i)
    if c == " " then
      i = i + 1
    elseif c == "'" then
      local j = assert(spec:find("'", i + 1, true), "unterminated text in " .. spec)
      out[#out + 1] = spec:sub(i + 1, j - 1)
      i = j + 1
    else
      out[#out + 1] = string.char((assert(tonumber(spec:sub(i, i + 1), 16), "bad hex in " .. spec)))
      i = i + 2
    end
  end
  return table.concat(out)
end

local function run(failures)
  local function eq(name, got, want)
    if got ~= want then
      if type(got) == "string" and type(want) == "string" then
        failures[#failures + 1] = name .. ": got " .. hex(got) .. "want " .. hex(want)
      else
        failures[#failures + 1] = name .. ": got " .. tostring(got) .. ", want " .. tostring(want)
      end
    end
  end

  -- RpcCall: StartInstance (sequence 2) and HandleEvent (sequence 3, instance 7)
  eq("StartInstance", pb.start_instance(2, "my-auth", '{"__seq__":7}'),
    bytes("08 02 8a 02 18 0a 07 'my-auth' 12 0d '{\"__seq__\":7}'"))
  eq("HandleEvent", pb.handle_event(3, 7, "access"), bytes("08 03 a2 02 0a 08 07 12 06 'access'"))
  eq("CloseInstance", pb.close_instance(4, 7), bytes("08 04 9a 02 02 08 07"))

  -- RpcReturn with instance_status{name, instance_id=7, started_at=1700000000}
  local r = pb.rpc_return(bytes("08 02 8a 02 11 0a 07 'my-auth' 10 07 20 80 e2 cf aa 06"))
  eq("RpcReturn.sequence", r.sequence, 2)
  eq("InstanceStatus.instance_id", r.instance_status and r.instance_status.instance_id, 7)
  eq("InstanceStatus.started_at", r.instance_status and r.instance_status.started_at, 1700000000)
  eq("RpcReturn of an event", pb.rpc_return(bytes("08 03")).sequence, 3)
  eq("RpcReturn without status", pb.rpc_return(bytes("08 03")).instance_status, nil)

  -- PDK arguments and replies
  eq("String arg", pb.args.String(bytes("0a 0d 'authorization'")), "authorization")
  eq("String arg, empty message", pb.args.String(""), "")
  eq("String reply", pb.ret.String("Bearer x"), bytes("0a 08 'Bearer x'"))
  eq("String reply of nil", pb.ret.String(nil), "")
  eq("String reply of ''", pb.ret.String(""), "")
  eq("Int arg 1000", pb.args.Int(bytes("08 e8 07")), 1000)
  eq("Int arg, empty message", pb.args.Int(""), 0)
  local status, body, headers = pb.args.ExitArgs(bytes(
    "08 91 03 12 02 6e 6f 1a 1e 0a 1c 0a 10 'WWW-Authenticate' 12 08 1a 06 'Bearer'"))
  eq("ExitArgs.status", status, 401)
  eq("ExitArgs.body", body, "no")
  eq("ExitArgs.headers", headers and headers["WWW-Authenticate"], "Bearer")
  local s2, b2, h2 = pb.args.ExitArgs(bytes("08 cc 01"))
  eq("ExitArgs without body", b2, "")
  eq("ExitArgs without headers", h2, nil)
  eq("Empty reply of nil", pb.ret.Empty(nil), "")
  eq("Empty reply of a table", pb.ret.Empty({ x = 1 }), "")
  eq("Empty reply of a boolean raises", pcall(pb.ret.Empty, true), false)
  local k, v = pb.args.KV(bytes("0a 03 'key' 12 04 1a 02 'ok'"))
  eq("KV.k", k, "key")
  eq("KV.v", v, "ok")
  local id, by_username = pb.args.ConsumerSpec(bytes("0a 03 'bob' 10 01"))
  eq("ConsumerSpec.id", id, "bob")
  eq("ConsumerSpec.by_username", by_username, true)
  local c, cred = pb.args.AuthenticateArgs(bytes("12 0b 0a 09 'project-1'"))
  eq("AuthenticateArgs without consumer", c, nil)
  eq("AuthenticateArgs credential id", cred and cred.id, "project-1")
  eq("AuthenticateArgs credential consumer_id default", cred and cred.consumer_id, "")
  eq("Consumer reply of nil", pb.ret.Consumer(nil), "")

  -- Value: Kong's quirks
  eq("Value nil", pb.enc_value(nil), bytes("08 01"))
  eq("Value false", pb.enc_value(false), bytes("20 00"))
  eq("Value string", pb.enc_value("a"), bytes("1a 01 'a'"))
  eq("Value number", pb.enc_value(1), bytes("11 00 00 00 00 00 00 f0 3f"))
  eq("Value list", pb.enc_value({ "a", "b" }), bytes("32 0a 0a 03 1a 01 'a' 0a 03 1a 01 'b'"))
  eq("unwrap false is nil", pb.dec_value(bytes("20 00"), 1, 3), nil)
  eq("unwrap null_value 1", pb.dec_value(bytes("08 01"), 1, 3), 1)
  eq("unwrap null_value 0", pb.dec_value(bytes("08 00"), 1, 3), "NULL_VALUE")
  local enc = pb.enc_struct({ a = "x", b = { "y", "z" }, c = { d = 2.5 } })
  local st = pb.dec_struct(enc, 1, #enc + 1)
  eq("Struct round trip string", st.a, "x")
  eq("Struct round trip list", st.b and st.b[2], "z")
  eq("Struct round trip nested", st.c and st.c.d, 2.5)
  local list = { pb.args.ListValue(pb.enc_list({ "a", 2, true })) }
  eq("ListValue args", table.concat({ tostring(list[1]), tostring(list[2]), tostring(list[3]) }, ","), "a,2,true")

  -- varints
  eq("varint 300", pb.varint(300), bytes("ac 02"))
  eq("varint -1", pb.varint(-1), bytes("ff ff ff ff ff ff ff ff ff 01"))
  eq("read varint -1", (pb.read_varint(bytes("ff ff ff ff ff ff ff ff ff 01"), 1)), -1)
  eq("read varint 1700000000", (pb.read_varint(bytes("80 e2 cf aa 06"), 1)), 1700000000)

  -- MsgPack: an array with a leading nil still spreads as two arguments (authenticate(nil, credential))
  local arr = mp.unpack(bytes("92 c0 81 a2 'id' a1 'z'"))
  eq("msgpack [nil, x] spreads to 2 args", select("#", unpack(arr)), 2)
end

function M.run()
  local failures = {}
  local ok, err = pcall(run, failures)
  if not ok then failures[#failures + 1] = "raised: " .. tostring(err) end
  return failures
end

return M
