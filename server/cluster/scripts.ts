// Lua scripts: each runs atomically in Redis, so a lookup and what depends on it cost
// one round trip and cannot interleave with another node's change. ioredis sends them
// by SHA and re-sends the source after a Redis restart flushed its script cache.
//
// A presence value is "<nodeId> <sid>". A node is alive while its channel has a
// subscriber (Redis drops a killed process's subscription as soon as its socket closes)
// or, for room lookups, while its liveness key has not expired.

/** KEYS[1] presence. ARGV: self, channel prefix, message. → {node, receivers}; node '' when uid is on no node, receivers -1 when the entry points at this node (stale). */
export const ROUTE = `
local v = redis.call('GET', KEYS[1])
if not v then return {'', 0} end
local node = string.match(v, '^(%S+)')
if node == ARGV[1] then return {node, -1} end
return {node, redis.call('PUBLISH', ARGV[2] .. node, ARGV[3])}
`;

/**
 * KEYS[1] presence. ARGV: self, value, ttlMs, policy, resumeSid, channel prefix.
 * → {'ok', ''} | {'took', node, sid} (the other live node must drop its session) |
 * {'refused', node} ('reject' and a live node holds another session of uid).
 */
export const CLAIM = `
local old = redis.call('GET', KEYS[1])
if old then
  local node, sid = string.match(old, '^(%S+) (%S*)$')
  if node and node ~= ARGV[1] then
    local alive = redis.call('PUBSUB', 'NUMSUB', ARGV[6] .. node)[2] > 0
    if alive and ARGV[4] == 'reject' and sid ~= ARGV[5] then return {'refused', node} end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    if alive then return {'took', node, sid} end
    return {'ok', ''}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {'ok', ''}
`;

/** KEYS[1] presence. ARGV: value. Deletes the entry only if it is still this session's. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: presence keys. ARGV: self, ttlMs, then one value per key. Re-sets each entry
 * that is absent (Redis restarted, or it expired) or still ours; returns the 1-based
 * indexes of entries another node holds now (this node lost those sessions).
 */
export const REFRESH = `
local lost = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if (not v) or v == ARGV[i + 2] or string.match(v, '^(%S+)') == ARGV[1] then
    redis.call('SET', k, ARGV[i + 2], 'PX', ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
`;

/** KEYS[1] presence. ARGV: self, resumeSid, channel prefix. → 1 if a live other node holds another session of uid. */
export const HELD = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local node, sid = string.match(v, '^(%S+) (%S*)$')
if (not node) or node == ARGV[1] or sid == ARGV[2] then return 0 end
if redis.call('PUBSUB', 'NUMSUB', ARGV[3] .. node)[2] == 0 then return 0 end
return 1
`;

/** KEYS[1] room hash. ARGV: self, node key prefix. → members on other live nodes; drops dead nodes' entries. */
export const MEMBERS = `
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
for i = 1, #all, 2 do
  local uid, node = all[i], all[i + 1]
  if node ~= ARGV[1] then
    local a = alive[node]
    if a == nil then
      a = redis.call('EXISTS', ARGV[2] .. node) == 1
      alive[node] = a
    end
    if a then out[#out + 1] = uid else redis.call('HDEL', KEYS[1], uid) end
  end
end
return out
`;

/** KEYS[1] room hash. ARGV: uid, self. Removes uid only if this node added it. */
export const LEAVE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;
