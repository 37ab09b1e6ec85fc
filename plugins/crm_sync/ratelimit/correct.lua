-- Corrects one limit's count from a server-reported figure, on Redis's own clock.
--
-- KEYS[1]  state of the limit (sorted set for "log", hash of buckets for "buckets")
-- ARGV[1]  kind ("log" | "buckets"), ARGV[2] window_us, ARGV[3] bucket_us
-- ARGV[4]  target: how many requests the server says are used in the window
-- ARGV[5]  "raise" (only ever add) or "set" (also remove the oldest to match)
-- ARGV[6]  token: unique prefix for members added to a log
--
-- Returns {used_before, used_after}. Added entries are stamped "now": they expire a
-- whole window later, which can only slow the pool down, never speed it up.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key = KEYS[1]
local window = tonumber(ARGV[2])
local bucket = tonumber(ARGV[3])
local target = tonumber(ARGV[4])
local mode = ARGV[5]

if ARGV[1] == 'log' then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
  if target > used then
    local members = {}
    for j = 1, target - used do
      members[#members + 1] = now
      members[#members + 1] = ARGV[6] .. ':' .. j
    end
    redis.call('ZADD', key, unpack(members))
    redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1)
  elseif mode == 'set' and target < used then
    redis.call('ZREMRANGEBYRANK', key, 0, used - target - 1)
  end
  return {used, redis.call('ZCARD', key)}
end

local flat = redis.call('HGETALL', key)
local live = {}
local used = 0
for j = 1, #flat, 2 do
  local b = tonumber(flat[j])
  local c = tonumber(flat[j + 1])
  if (b + 1) * bucket <= now - window then
    redis.call('HDEL', key, flat[j])
  else
    used = used + c
    live[#live + 1] = {b, c}
  end
end

local after = used
if target > used then
  redis.call('HINCRBY', key, tostring(math.floor(now / bucket)), target - used)
  redis.call('PEXPIRE', key, math.ceil((window + bucket) / 1000) + 1)
  after = target
elseif mode == 'set' and target < used then
  table.sort(live, function(x, y) return x[1] < y[1] end)
  local surplus = used - target
  for _, entry in ipairs(live) do
    if surplus <= 0 then break end
    local drop = math.min(surplus, entry[2])
    if drop == entry[2] then
      redis.call('HDEL', key, tostring(entry[1]))
    else
      redis.call('HINCRBY', key, tostring(entry[1]), -drop)
    end
    surplus = surplus - drop
  end
  after = target
end
return {used, after}
