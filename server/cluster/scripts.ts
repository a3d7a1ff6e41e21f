// Lua scripts: each runs atomically in Redis, so a read and the write that depends on it
// cannot interleave with another node's change. Every script touches the keys of one
// slot only (Redis Cluster refuses anything else): liveness checks, which name another
// node's key or channel, are separate commands made by the node (see presence.ts).
// ioredis sends them by SHA and re-sends the source after a Redis restart.
//
// A presence value is "<nodeId> <sid>".

/**
 * KEYS[1] presence. ARGV: self, value, ttlMs, policy, resumeSid.
 * → {'ok'} | {'took', node, sid} (written; that node must drop its session) |
 * {'held', node, sid} ('reject' and another node holds another session of uid: not
 * written; the caller checks whether that node is alive and claims with 'replace' if not).
 */
export const CLAIM = `
local old = redis.call('GET', KEYS[1])
if old then
  local node, sid = string.match(old, '^(%S+) (%S*)$')
  if node and node ~= ARGV[1] then
    if ARGV[4] == 'reject' and sid ~= ARGV[5] then return {'held', node, sid} end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return {'took', node, sid}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {'ok'}
`;

/** KEYS[1] presence. ARGV: value. Deletes the entry only if it is still this session's. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: presence keys, all of one slot. ARGV: self, ttlMs, then one value per key.
 * Re-sets each entry that is absent (Redis restarted, or it expired) or still ours;
 * returns the 1-based indexes of entries another node holds now (this node lost those).
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

/** KEYS[1] room hash. ARGV: uid, node. Removes uid only if it is still `node`'s entry. */
export const LEAVE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;
