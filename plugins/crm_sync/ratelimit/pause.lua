-- Pauses the whole pool: every acquire checks this key first.
-- A shorter pause never cuts a longer one already in force.
--
-- KEYS[1]  pool pause key; ARGV[1] pause in milliseconds; ARGV[2] reason
-- Returns the pause left in milliseconds after the call.

local wanted = tonumber(ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < wanted then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', wanted)
  return wanted
end
return left
