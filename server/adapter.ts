// The cluster seam. A VolleyServer asks its adapter about uids it does not hold locally
// and about rooms that may span nodes. The default LocalAdapter is a single process:
// a uid that is not here is nowhere. A Redis implementation lives behind the same
// interface (see docs/ARCHITECTURE.md).

import { ErrorCode, RpcError, type CallOptions, type RelayBack, type RpcPeer, type SessionImage } from '../protocol/index.ts';

/** A session taken over from another node: its engine image, its rooms, and the way back to that node. */
export interface TakenSession {
  image: SessionImage;
  rooms: string[];
  back: RelayBack;
}

/** What an adapter may ask of the node it serves. */
export interface LocalNode {
  /** Is this uid connected to this node? */
  has(uid: string): boolean;
  /** Call a client connected here (the adapter forwards remote callers' calls to this). */
  callLocal(uid: string, method: string, params: unknown[], opts?: CallOptions): Promise<unknown>;
  /** Notify a client connected here (a remote node's notification for it). */
  notifyLocal(uid: string, method: string, params: unknown[]): void;
  /** Publish an encoded notification to this node's members of a room. */
  publishLocal(room: string, bytes: Uint8Array): void;
  /** Close this node's connection for uid (duplicate login on another node). */
  disconnectLocal(uid: string, code: number, reason: string): void;
  /** The server's default deadline, for remote calls made without timeoutMs. */
  readonly timeoutMs: number;
  /** Room membership on this node (another node asked for a uid connected here). */
  join(uid: string, room: string): void;
  /** Take a uid connected here out of a room (another node asked). */
  leave(uid: string, room: string): void;
  /**
   * Optional: another node takes over uid's session `sid` (the player resumed there): the
   * session leaves this node, `exportFrom` turns its engine into a relay for the calls
   * still in flight. Undefined when there is no such session here or it can't move.
   */
  handOver?(
    uid: string,
    sid: string,
    exportFrom: (peer: RpcPeer<any>) => SessionImage | undefined,
  ):
    | {
        /** The session's engine, exported. */
        image: SessionImage;
        /** The rooms uid was in here. */
        rooms: string[];
        /** The old engine, now a relay for the calls in flight. */
        peer: RpcPeer<any>;
      }
    | undefined;
  /** Optional: read the stream of a client connected here (another node's reader asked). */
  streamLocal?(uid: string, method: string, params: unknown[]): AsyncIterable<unknown>;
  /** Optional: the engine of uid's session `sid` if it is here. */
  sessionPeer?(uid: string, sid: string): RpcPeer<any> | undefined;
  /** Metrics: the adapter reports Redis errors and presence refreshes here (when observed). */
  readonly observer?: {
    /** A Redis command failed. */
    redisError(): void;
    /** This node's presence keys were refreshed. */
    presenceRefreshed(): void;
  };
}

/** A new session for a uid on this node, and the duplicate-login policy it is under. */
export interface Registration {
  sid: string;
  /** The session the client asked to resume (it may live on another node). */
  resumeSid?: string;
  policy: 'replace' | 'reject';
}

/**
 * The cluster seam: what a server asks about uids it does not hold and rooms that may span
 * nodes. {@link LocalAdapter} is one process alone; `RedisAdapter` from
 * `volley/cluster/redis` spans nodes over Redis.
 */
export interface ClusterAdapter {
  /** Called once by the server it serves, before it listens. */
  attach(node: LocalNode): Promise<void> | void;
  /**
   * A new session for uid here / its session ended here. A cluster adapter applies the
   * duplicate-login policy across nodes: it closes the other node's session ('replace')
   * or this one (disconnectLocal with DUPLICATE_LOGIN, when 'reject' lost a race).
   */
  register(uid: string, reg?: Registration): Promise<void> | void;
  /** uid's session on this node ended. */
  unregister(uid: string): Promise<void> | void;
  /**
   * Optional: does another node hold a session of uid (other than resumeSid)? Asked
   * before the upgrade under duplicateLogin 'reject', so the refusal is an HTTP 409.
   */
  heldElsewhere?(uid: string, resumeSid?: string): Promise<boolean>;
  /** Optional: room membership changed here (for room calls across nodes). */
  joined?(uid: string, room: string): void;
  /** Optional: uid left a room here. */
  left?(uid: string, room: string): void;
  /** Optional: members of a room on other nodes (callMany({room}), allMembers). */
  remoteMembers?(room: string): Promise<string[]>;
  /**
   * Optional: uid's session `sid` lives on another node: move it here (resume on any node).
   * `install` puts it in place the moment it arrives (false: it can't; the old node's calls
   * then fail). Resolves true once installed; false when no node has it or it can't move
   * (the player then starts afresh).
   */
  takeSession?(uid: string, sid: string, install: (taken: TakenSession) => boolean): Promise<boolean>;
  /** Optional: does a live node other than this one hold a session of uid? */
  connectedElsewhere?(uid: string): Promise<boolean>;
  /**
   * Optional: join/leave for a uid not connected to this node, done on the node that
   * holds it. Returns false when it can't (the membership is then dropped: a uid's rooms
   * live only as long as its session, and it has none here).
   */
  joinRemote?(uid: string, room: string): boolean;
  /** Optional: leave for a uid not connected to this node (see joinRemote). */
  leaveRemote?(uid: string, room: string): boolean;
  /** Optional: read a stream from a uid that is not on this node (it fails UNAVAILABLE if it is on none). */
  streamRemote?(uid: string, method: string, params: unknown[], opts?: CallOptions): AsyncIterable<unknown>;
  /** Call a uid that is not on this node; rejects UNAVAILABLE if it is on none. */
  callRemote(uid: string, method: string, params: unknown[], opts?: CallOptions): Promise<unknown>;
  /** Notify a uid that is not on this node (at most once: dropped if it is on none). */
  notifyRemote(uid: string, method: string, params: unknown[]): void;
  /** Fan an encoded room notification out to the other nodes. */
  publishRemote(room: string, bytes: Uint8Array): void;
  /** Optional: engines of sessions that moved to other nodes, still relaying their calls in flight (drain waits for 0). */
  readonly relaying?: number;
  /** The server is closing: release connections and this node's presence. */
  close(): Promise<void> | void;
}

/** The default adapter: this process alone; a uid that is not here is nowhere (UNAVAILABLE). */
export class LocalAdapter implements ClusterAdapter {
  attach(): void {}
  register(): void {}
  unregister(): void {}
  callRemote(uid: string): Promise<unknown> {
    return Promise.reject(new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`));
  }
  notifyRemote(): void {}
  publishRemote(): void {}
  close(): void {}
}
