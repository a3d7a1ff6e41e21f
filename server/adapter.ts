// The cluster seam. A VolleyServer asks its adapter about uids it does not hold locally
// and about rooms that may span nodes. The default LocalAdapter is a single process:
// a uid that is not here is nowhere. A Redis implementation lives behind the same
// interface (see docs/ARCHITECTURE.md).

import { ErrorCode, RpcError, type CallOptions } from '../protocol/index.ts';

/** What an adapter may ask of the node it serves. */
export interface LocalNode {
  /** Is this uid connected to this node? */
  has(uid: string): boolean;
  /** Call a client connected here (the adapter forwards remote callers' calls to this). */
  callLocal(uid: string, method: string, params: unknown[], opts?: CallOptions): Promise<unknown>;
  notifyLocal(uid: string, method: string, params: unknown[]): void;
  /** Publish an encoded notification to this node's members of a room. */
  publishLocal(room: string, bytes: Uint8Array): void;
  /** Close this node's connection for uid (duplicate login on another node). */
  disconnectLocal(uid: string, code: number, reason: string): void;
}

export interface ClusterAdapter {
  attach(node: LocalNode): Promise<void> | void;
  /** A uid connected here / left this node. */
  register(uid: string): Promise<void> | void;
  unregister(uid: string): Promise<void> | void;
  /** Call a uid that is not on this node; rejects UNAVAILABLE if it is on none. */
  callRemote(uid: string, method: string, params: unknown[], opts?: CallOptions): Promise<unknown>;
  notifyRemote(uid: string, method: string, params: unknown[]): void;
  /** Fan an encoded room notification out to the other nodes. */
  publishRemote(room: string, bytes: Uint8Array): void;
  close(): Promise<void> | void;
}

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
