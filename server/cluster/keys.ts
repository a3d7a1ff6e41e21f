// Where the cluster keeps things in Redis. Everything sits under one prefix so several
// clusters (or test runs) can share a Redis without seeing each other.

export interface Keys {
  /** uid → "<nodeId> <sid>", with the presence TTL; the node that holds uid refreshes it. */
  presence(uid: string): string;
  /** A node's liveness key, with the presence TTL. */
  node(nodeId: string): string;
  /** Prefix of node keys (Lua scripts build them from a node id). */
  nodePrefix: string;
  /** The pub/sub channel a node listens on for calls, replies, cancels and kicks. */
  channel(nodeId: string): string;
  /** Prefix of node channels (Lua scripts build them from a node id). */
  channelPrefix: string;
  /** The channel every node listens on for room notifications. */
  roomsChannel: string;
  /** Room hash: uid → node id, for room members across nodes (callMany({room})). */
  room(room: string): string;
}

export function keysFor(prefix: string): Keys {
  return {
    presence: (uid) => `${prefix}p:${uid}`,
    node: (id) => `${prefix}n:${id}`,
    nodePrefix: `${prefix}n:`,
    channel: (id) => `${prefix}c:${id}`,
    channelPrefix: `${prefix}c:`,
    roomsChannel: `${prefix}rooms`,
    room: (room) => `${prefix}r:${room}`,
  };
}
