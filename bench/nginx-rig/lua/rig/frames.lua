-- The largest frame (ProtoBuf:1 payload) or message (MsgPack:1) the Kong side sent, per kind: what
-- --max-frame-bytes must admit. Kept per worker (one comparison per frame), merged into the rig_stats
-- shared dict with the other counters, served under "__frames" by /__rig/stats.

local pairs = pairs

local M = { sizes = {} }

function M.note(kind, n)
  local s = M.sizes
  if (s[kind] or -1) < n then s[kind] = n end
end

function M.flush(dict)
  for kind, n in pairs(M.sizes) do
    local key = "frame|" .. kind
    if (dict:get(key) or -1) < n then dict:set(key, n) end
  end
end

function M.collect(dict)
  local out = {}
  for _, key in pairs(dict:get_keys(0)) do
    local kind = key:match("^frame|(.*)$")
    if kind then out[kind] = dict:get(key) end
  end
  return out
end

return M
