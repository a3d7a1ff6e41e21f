// Calls that cross nodes. Outgoing: a call to a uid held by another node is published on
// that node's channel and waits here for the reply, under the caller's deadline and
// signal. Incoming: a call another node forwarded runs against the local client, and its
// outcome is published back. Every pending entry ends on reply, deadline, abort, the
// target node's death, or the loss of the Redis link: nothing waits forever.

import { ErrorCode, RpcError, type CallOptions, type WireError } from '../../protocol/index.ts';
import type { LocalNode } from '../adapter.ts';
import { CALL, CANCEL, REPLY, pack, type NodeMessage } from './wire.ts';

interface Outgoing {
  resolve(value: unknown): void;
  reject(err: RpcError): void;
  timer: ReturnType<typeof setTimeout>;
  /** The node the call went to, once the route lookup answered. */
  node: string | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export interface ForwardingLink {
  readonly nodeId: string;
  /** Redis usable right now (both connections ready). */
  ready(): boolean;
  /** Look uid up and publish `message` to its node, in one step. → {node, receivers}. */
  route(uid: string, message: Buffer): Promise<[node: string, receivers: number]>;
  /** Publish to one node's channel; failures are ignored (the other side times out). */
  send(node: string, message: Buffer): void;
}

const unavailable = (msg: string) => new RpcError(ErrorCode.UNAVAILABLE, msg);

export class Forwarding {
  #outgoing = new Map<number, Outgoing>();
  #nextId = 0;
  /** Calls other nodes forwarded here, by "<from> <id>", to cancel them. */
  #incoming = new Map<string, AbortController>();
  /** Cancels owed to other nodes for calls failed while the link was down. */
  #owedCancels: [node: string, id: number][] = [];

  constructor(
    readonly link: ForwardingLink,
    readonly local: LocalNode,
  ) {}

  get pendingOutgoing(): number {
    return this.#outgoing.size;
  }
  get pendingIncoming(): number {
    return this.#incoming.size;
  }

  // ---- outgoing ------------------------------------------------------------------

  call(uid: string, method: string, params: unknown[], opts?: CallOptions): Promise<unknown> {
    if (!this.link.ready()) return Promise.reject(unavailable(`${uid} is not reachable: no connection to the cluster`));
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(new RpcError(ErrorCode.CANCELLED, 'call aborted before it was sent'));
    const timeoutMs = opts?.timeoutMs ?? this.local.timeoutMs;
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) % 0x1_0000_0000;
    let message: Buffer;
    try {
      message = pack([CALL, this.link.nodeId, id, uid, method, params, timeoutMs]);
    } catch {
      return Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, 'params could not be encoded'));
    }
    return new Promise((resolve, reject) => {
      const pending: Outgoing = {
        resolve,
        reject,
        // The callee node runs the same deadline on the client call; this timer is the
        // caller's own guarantee, whatever happens to the other node or to Redis.
        timer: setTimeout(() => this.#giveUp(id, new RpcError(ErrorCode.TIMEOUT, `${method} timed out after ${timeoutMs} ms`)), timeoutMs),
        node: undefined,
        signal,
        onAbort: undefined,
      };
      if (signal) {
        pending.onAbort = () => this.#giveUp(id, new RpcError(ErrorCode.CANCELLED, `${method} was cancelled`));
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#outgoing.set(id, pending);
      this.link.route(uid, message).then(
        ([node, receivers]) => {
          if (!node) return this.#fail(id, unavailable(`${uid} is not connected`));
          // 0 receivers: the node's subscription is gone (it died); -1: a stale entry of ours.
          if (receivers <= 0) return this.#fail(id, unavailable(`${uid} is not connected (node ${node} is gone)`));
          const p = this.#outgoing.get(id);
          if (p) p.node = node;
        },
        () => this.#fail(id, unavailable(`${uid} is not reachable: the cluster lookup failed`)),
      );
    });
  }

  /** A reply from the node that ran call `id`. Late ones (after deadline/cancel) are dropped. */
  onReply(id: number, error: WireError | null, result: unknown): void {
    const p = this.#settle(id);
    if (!p) return;
    if (error == null) p.resolve(result);
    else p.reject(RpcError.fromWire(error));
  }

  /** Target nodes of calls still waiting (the liveness sweep checks these). */
  targets(): Set<string> {
    const nodes = new Set<string>();
    for (const p of this.#outgoing.values()) if (p.node) nodes.add(p.node);
    return nodes;
  }

  /** A node died: its pending calls fail now rather than at their deadlines. */
  failNode(node: string, err: RpcError): void {
    for (const [id, p] of [...this.#outgoing]) if (p.node === node) this.#fail(id, err);
  }

  /**
   * The reply path is gone (Redis link lost, or shutting down): fail every pending call.
   * The callee nodes are told once the link is back (flushCancels), so their clients'
   * handlers stop instead of running to the deadline for nobody.
   */
  failAll(err: RpcError): void {
    for (const [id, p] of [...this.#outgoing]) {
      this.#fail(id, err);
      if (p.node) this.#owedCancels.push([p.node, id]);
    }
  }

  flushCancels(): void {
    const owed = this.#owedCancels;
    this.#owedCancels = [];
    for (const [node, id] of owed) this.link.send(node, pack([CANCEL, this.link.nodeId, id]));
  }

  #giveUp(id: number, err: RpcError): void {
    const p = this.#settle(id);
    if (!p) return;
    p.reject(err);
    // Tell the callee node so the client's handler sees $cancel and stops.
    if (p.node) this.link.send(p.node, pack([CANCEL, this.link.nodeId, id]));
  }

  #fail(id: number, err: RpcError): void {
    this.#settle(id)?.reject(err);
  }

  #settle(id: number): Outgoing | undefined {
    const p = this.#outgoing.get(id);
    if (!p) return undefined;
    this.#outgoing.delete(id);
    clearTimeout(p.timer);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
    return p;
  }

  // ---- incoming ------------------------------------------------------------------

  /** Another node forwarded a call to a uid that should be here. */
  onCall(from: string, id: number, uid: string, method: string, params: unknown[], timeoutMs: number): void {
    const key = `${from} ${id}`;
    if (!this.local.has(uid)) return this.#reply(from, id, unavailable(`${uid} is not connected`).toWire(), null);
    const controller = new AbortController();
    this.#incoming.set(key, controller);
    this.local.callLocal(uid, method, params, { timeoutMs, signal: controller.signal }).then(
      (result) => {
        if (this.#incoming.get(key) !== controller) return;
        this.#incoming.delete(key);
        this.#reply(from, id, null, result);
      },
      (err: unknown) => {
        if (this.#incoming.get(key) !== controller) return;
        this.#incoming.delete(key);
        const e = err instanceof RpcError ? err : new RpcError(ErrorCode.INTERNAL, 'Internal error');
        this.#reply(from, id, e.toWire(), null);
      },
    );
  }

  onCancel(from: string, id: number): void {
    const key = `${from} ${id}`;
    const controller = this.#incoming.get(key);
    if (!controller) return;
    this.#incoming.delete(key);
    controller.abort();
  }

  /** Link lost or shutting down: stop the client calls running for other nodes (no reply could reach them). */
  abortIncoming(): void {
    const all = [...this.#incoming.values()];
    this.#incoming.clear();
    for (const c of all) c.abort();
  }

  #reply(to: string, id: number, error: WireError | null, result: unknown): void {
    let message: Buffer;
    try {
      message = pack([REPLY, id, error, result === undefined ? null : result] satisfies NodeMessage);
    } catch {
      message = pack([REPLY, id, { code: ErrorCode.INTERNAL, message: 'result could not be encoded' }, null]);
    }
    this.link.send(to, message);
  }
}
