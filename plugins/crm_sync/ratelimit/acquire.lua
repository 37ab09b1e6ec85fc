-- Atomic check-and-take over several limits of one account, on Redis's own clock.
--
-- KEYS[1]      pool pause key (a string whose TTL is the pause; its value is the reason)
-- KEYS[1 + i]  state of limit i: a sorted set ("log") or a hash of time buckets ("buckets")
-- ARGV[1]      token: a unique prefix for the members this call adds
-- ARGV[2]      cost: requests to take from every limit
-- ARGV[3]      "1" to take when every limit has room, "0" to only look (counts even if paused)
-- ARGV[4 + 4*(i-1) ..]  per limit: kind, limit, window_us, bucket_us
--
-- Returns {granted, wait_us, blocking, pause_reason, now_us, used_1, ..., used_n}
--   blocking: 0 when granted, -1 when the pool is paused, else the index of the limit
--   that needs the longest wait. Nothing is taken unless every limit has room.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local n = #KEYS - 1

local pause_ms = redis.call('PTTL', KEYS[1])
local pause_reason = ''
if pause_ms > 0 then
  pause_reason = redis.call('GET', KEYS[1]) or ''
  if take then
    return {0, pause_ms * 1000, -1, pause_reason, now}
  end
end

-- Sliding log: an entry counts while it is younger than the window, so the number
-- of entries in any window of that length never exceeds the limit.
local function log_state(key, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
  if used + cost <= limit then
    return 0, used
  end
  local rank = used + cost - limit - 1
  local entry = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  return tonumber(entry[2]) + window - now, used
end

-- Time buckets: a bucket counts until its END is a whole window old, so the sum
-- over-counts by at most one bucket's span and never lets more through.
local function bucket_state(key, limit, window, bucket)
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
  if used + cost <= limit then
    return 0, used
  end
  table.sort(live, function(x, y) return x[1] < y[1] end)
  local excess = used + cost - limit
  for _, entry in ipairs(live) do
    excess = excess - entry[2]
    if excess <= 0 then
      return (entry[1] + 1) * bucket + window - now, used
    end
  end
  return window, used
end

local wait, blocking = 0, 0
local used = {}
for i = 1, n do
  local base = 4 + 4 * (i - 1)
  local kind = ARGV[base]
  local limit = tonumber(ARGV[base + 1])
  local window = tonumber(ARGV[base + 2])
  local w, u
  if kind == 'log' then
    w, u = log_state(KEYS[1 + i], limit, window)
  else
    w, u = bucket_state(KEYS[1 + i], limit, window, tonumber(ARGV[base + 3]))
  end
  used[i] = u
  if w > wait then
    wait, blocking = w, i
  end
end

if pause_ms > 0 then
  wait, blocking = pause_ms * 1000, -1
end
if wait > 0 or not take then
  local reply = {wait > 0 and 0 or 1, math.ceil(wait), blocking, pause_reason, now}
  for i = 1, n do reply[5 + i] = used[i] end
  return reply
end

for i = 1, n do
  local base = 4 + 4 * (i - 1)
  local key = KEYS[1 + i]
  local window = tonumber(ARGV[base + 2])
  if ARGV[base] == 'log' then
    local members = {}
    for j = 1, cost do
      members[#members + 1] = now
      members[#members + 1] = ARGV[1] .. ':' .. j
    end
    redis.call('ZADD', key, unpack(members))
    redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1)
  else
    local bucket = tonumber(ARGV[base + 3])
    redis.call('HINCRBY', key, tostring(math.floor(now / bucket)), cost)
    redis.call('PEXPIRE', key, math.ceil((window + bucket) / 1000) + 1)
  end
  used[i] = used[i] + cost
end

local reply = {1, 0, 0, '', now}
for i = 1, n do reply[5 + i] = used[i] end
return reply
