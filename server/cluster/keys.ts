// Where the cluster keeps things in Redis. Everything sits under one prefix so several
// clusters (or test runs) can share a Redis without seeing each other.
//
// Every command touches one key or one channel, so nothing here needs two keys in one
// slot on Redis Cluster. A room's hash and its channel still share a hash tag (the room
// name in braces): a room's data and traffic live on one shard. A prefix with a tag of
// its own ("{game}:") puts everything on one shard.

export interface Keys {
  /** uid → "<nodeId> <sid>", with the presence TTL; the node that holds uid refreshes it. */
  presence(uid: string): string;
  /** A node's liveness key, with the presence TTL. */
  node(nodeId: string): string;
  /** The sharded pub/sub channel a node listens on for calls, replies, cancels, kicks. */
  channel(nodeId: string): string;
  /** The sharded pub/sub channel of one room's notifications: only nodes with members there subscribe. */
  roomChannel(room: string): string;
  /** Room hash: uid → node id, for room members across nodes (callMany({room}), allMembers). */
  room(room: string): string;
}

export function keysFor(prefix: string): Keys {
  return {
    presence: (uid) => `${prefix}p:${uid}`,
    node: (id) => `${prefix}n:${id}`,
    channel: (id) => `${prefix}c:{${id}}`,
    roomChannel: (room) => `${prefix}rc:{${room}}`,
    room: (room) => `${prefix}r:{${room}}`,
  };
}
