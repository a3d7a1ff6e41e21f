// Calls that cross nodes. Outgoing: a call to a uid held by another node is published on
// that node's channel and waits here for the reply, under the caller's deadline and
// signal. Incoming: a call another node forwarded runs against the local client, and its
// outcome is published back. Every pending entry ends on reply, deadline, abort, the
// target node's death, or the loss of the Redis link: nothing waits forever.
//
// The first call to a uid looks its node up (one GET), then rides in that node's batch
// like every later call, which uses the remembered route. A wrong route costs one retry
// through a fresh lookup, never a wrong answer: the node that lacks the uid answers
// NOT_HERE without running anything, and a node that is gone receives nothing.

import { ErrorCode, RpcError, type CallOptions, type WireError } from '../../protocol/index.ts';
import { PendingCalls, type PendingCall } from '../../protocol/engine/pendingCalls.ts';
import type { LocalNode } from '../adapter.ts';
import { Outbox } from './outbox.ts';
import { RouteCache } from './routes.ts';
import { CALL, CANCEL, JOIN, LEAVE, NOTIFY, NOT_HERE, REPLY, pack, type NodeMessage } from './wire.ts';

/** What a forwarded call keeps beside the shared pending-call fields. */
interface Forwarded {
  uid: string;
  params: unknown[];
  /** The node the call went to, once known. */
  node: string | undefined;
  /** Already sent back through a fresh lookup once. */
  retried: boolean;
  /** The caller's W3C traceparent (observe.tracing), sent again with a retry. */
  traceparent: string | undefined;
}

type Outgoing = PendingCall<Forwarded>;

/** A CALL tuple; the traceparent (8th element) only when there is one, so untraced calls stay as before. */
function callMessage(from: string, id: number, uid: string, method: string, params: unknown[], timeoutMs: number, traceparent: string | undefined): NodeMessage {
  return traceparent
    ? [CALL, from, id, uid, method, params, timeoutMs, traceparent]
    : [CALL, from, id, uid, method, params, timeoutMs];
}

export interface ForwardingLink {
  readonly nodeId: string;
  /** Redis usable right now (both connections ready). */
  ready(): boolean;
  /** The node Redis says holds uid ('' when none). */
  locate(uid: string): Promise<string>;
  /** Publish to one node's channel → subscribers reached. */
  publish(node: string, message: Buffer): Promise<number>;
}

const unavailable = (msg: string) => new RpcError(ErrorCode.UNAVAILABLE, msg);

/**
 * What a forwarded call's local call is cancelled through: the part of AbortSignal the
 * engine uses (`aborted`, one 'abort' listener), without an AbortController's EventTarget,
 * which cost ~3 µs of a forwarded call's node CPU.
 */
class Cancel {
  aborted = false;
  #onAbort: (() => void) | undefined;
  addEventListener(_type: 'abort', fn: () => void): void {
    this.#onAbort = fn;
  }
  removeEventListener(_type: 'abort', fn: () => void): void {
    if (this.#onAbort === fn) this.#onAbort = undefined;
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const fn = this.#onAbort;
    this.#onAbort = undefined;
    fn?.();
  }
}

export class Forwarding {
  readonly routes: RouteCache;
  #outbox: Outbox;
  // The same table (ids, deadlines, signals, give up) as the engine's own calls.
  #outgoing = new PendingCalls<Forwarded>({
    // Tell the callee node so the client's handler sees $cancel and stops.
    onGiveUp: (p) => {
      if (p.data.node) this.#send(p.data.node, pack([CANCEL, this.link.nodeId, p.id]));
    },
  });
  /** Calls other nodes forwarded here, by "<from> <id>", to cancel them. */
  #incoming = new Map<string, Cancel>();
  /** Cancels owed to other nodes for calls failed while the link was down. */
  #owedCancels: [node: string, id: number][] = [];

  constructor(
    readonly link: ForwardingLink,
    readonly local: LocalNode,
    routeTtlMs: number,
  ) {
    this.routes = new RouteCache(routeTtlMs);
    this.#outbox = new Outbox((node, bytes) => link.publish(node, bytes));
  }

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
    const id = this.#outgoing.allocateId();
    let message: Buffer;
    // The W3C traceparent of the caller's span (observe.tracing), so the trace continues on the node that holds uid.
    const tp = (opts as { traceparent?: string } | undefined)?.traceparent;
    try {
      message = pack(callMessage(this.link.nodeId, id, uid, method, params, timeoutMs, tp));
    } catch {
      return Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, 'params could not be encoded'));
    }
    // The callee node runs the same deadline on the client call; this one is the caller's
    // own guarantee, whatever happens to the other node or to Redis.
    const promise = this.#outgoing.add(id, method, { uid, params, node: undefined, retried: false, traceparent: tp }, timeoutMs, signal);
    const p = this.#outgoing.get(id)!;
    const node = this.routes.get(uid);
    if (node) this.#sendTo(id, p, node, message);
    else this.#lookup(id, p, message);
    return promise;
  }

  /** Send along a remembered route; if the node is gone, look again (once). */
  #sendTo(id: number, p: Outgoing, node: string, message: Buffer): void {
    p.data.node = node;
    this.#outbox.push(node, message, (receivers) => {
      if (receivers > 0 || this.#outgoing.get(id) !== p) return;
      this.routes.forget(p.data.uid, node);
      // 0: nobody got it, so trying again can't run it twice. A failed publish may still
      // have gone out (a command that timed out here can run later): no retry then.
      if (receivers === 0) this.#retry(id, p, `node ${node} is gone`);
      else this.#fail(id, unavailable(`${p.data.uid} is not reachable: the cluster did not take the call`));
    });
  }

  /** Find uid's node, then send along that route. */
  #lookup(id: number, p: Outgoing, message: Buffer): void {
    const uid = p.data.uid;
    this.link.locate(uid).then(
      (node) => {
        if (this.#outgoing.get(id) !== p) return;
        // '' : uid is on no node; our own id: a stale entry of ours (uid is not here either).
        if (!node || node === this.link.nodeId) return this.#fail(id, unavailable(`${uid} is not connected`));
        this.routes.set(uid, node);
        this.#sendTo(id, p, node, message);
      },
      () => this.#fail(id, unavailable(`${uid} is not reachable: the cluster lookup failed`)),
    );
  }

  /** The call did not run where it went: one more try through a fresh lookup, then UNAVAILABLE. */
  #retry(id: number, p: Outgoing, why: string): void {
    const d = p.data;
    if (d.retried || !this.link.ready()) return this.#fail(id, unavailable(`${d.uid} is not connected (${why})`));
    d.retried = true;
    d.node = undefined;
    const remaining = Math.max(1, p.deadline - Date.now()); // Infinity stays Infinity
    this.#lookup(id, p, pack(callMessage(this.link.nodeId, id, d.uid, p.method, d.params, remaining, d.traceparent)));
  }

  /**
   * Fire and forget to whichever node holds uid (notify, join, leave), in that node's
   * batch. Always through a fresh lookup, not the remembered route: unlike a call, a
   * message a node no longer holding uid would drop gets no NOT_HERE to retry on.
   * Dropped when uid is on no node.
   */
  toHolder(uid: string, message: Buffer): void {
    this.link.locate(uid).then((node) => {
      if (node && node !== this.link.nodeId && this.link.ready()) this.#outbox.push(node, message);
    }, () => {});
  }

  /** A message from another node on this node's channel: a call, its reply or cancel, or one for a uid held here. */
  receive(m: unknown[]): void {
    switch (m[0]) {
      case CALL: {
        const [, from, id, uid, method, params, timeoutMs, tp] = m as [number, string, number, string, string, unknown[], number, unknown];
        if (typeof method !== 'string' || !Array.isArray(params)) return;
        return this.onCall(String(from), Number(id), String(uid), method, params, Number(timeoutMs), typeof tp === 'string' ? tp : undefined);
      }
      case REPLY:
        return this.onReply(Number(m[1]), (m[2] ?? null) as never, m[3]);
      case NOT_HERE:
        return this.onNotHere(Number(m[1]));
      case CANCEL:
        return this.onCancel(String(m[1]), Number(m[2]));
      case NOTIFY:
        if (typeof m[2] === 'string' && Array.isArray(m[3])) this.local.notifyLocal(String(m[1]), m[2], m[3]);
        return;
      case JOIN:
      case LEAVE: {
        const [kind, uid, room] = m as [number, string, string];
        // Only for a uid still here: never bounce it on to yet another node.
        if (typeof room !== 'string' || !this.local.has(String(uid))) return;
        if (kind === JOIN) this.local.join(String(uid), room);
        else this.local.leave(String(uid), room);
        return;
      }
    }
  }

  /** A reply from the node that ran call `id`. Late ones (after deadline/cancel) are dropped. */
  onReply(id: number, error: WireError | null, result: unknown): void {
    if (error == null) this.#outgoing.resolve(id, result);
    else if (this.#outgoing.has(id)) this.#outgoing.reject(id, RpcError.fromWire(error));
  }

  /** Call `id` reached a node that does not hold its uid (it moved or left). */
  onNotHere(id: number): void {
    const p = this.#outgoing.get(id);
    if (!p) return;
    if (p.data.node) this.routes.forget(p.data.uid, p.data.node);
    this.#retry(id, p, 'it left its node');
  }

  /** Target nodes of calls still waiting (the liveness sweep checks these). */
  targets(): Set<string> {
    const nodes = new Set<string>();
    for (const p of this.#outgoing.values()) if (p.data.node) nodes.add(p.data.node);
    return nodes;
  }

  /** A node died: its pending calls fail now rather than at their deadlines. */
  failNode(node: string, err: RpcError): void {
    this.routes.forgetNode(node);
    for (const p of [...this.#outgoing.values()]) if (p.data.node === node) this.#fail(p.id, err);
  }

  /**
   * The reply path is gone (Redis link lost, or shutting down): fail every pending call.
   * The callee nodes are told once the link is back (flushCancels), so their clients'
   * handlers stop instead of running to the deadline for nobody.
   */
  failAll(err: RpcError): void {
    this.routes.clear(); // Redis may come back empty, nodes may have changed
    for (const p of [...this.#outgoing.values()]) {
      this.#fail(p.id, err);
      if (p.data.node) this.#owedCancels.push([p.data.node, p.id]);
    }
  }

  flushCancels(): void {
    const owed = this.#owedCancels;
    this.#owedCancels = [];
    for (const [node, id] of owed) this.#send(node, pack([CANCEL, this.link.nodeId, id]));
  }

  #fail(id: number, err: RpcError): void {
    this.#outgoing.reject(id, err);
  }

  // ---- incoming ------------------------------------------------------------------

  /** Another node forwarded a call to a uid that should be here. */
  onCall(from: string, id: number, uid: string, method: string, params: unknown[], timeoutMs: number, traceparent?: string): void {
    if (!this.local.has(uid)) return this.#send(from, pack([NOT_HERE, id]));
    const key = `${from} ${id}`;
    const controller = new Cancel();
    this.#incoming.set(key, controller);
    this.local.callLocal(uid, method, params, { timeoutMs, signal: controller as unknown as AbortSignal, traceparent } as CallOptions).then(
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
    this.#send(to, message);
  }

  /** To a node, in order with every other message to it (handover.ts); `delivered` learns how many received it (0: the node is gone). */
  sendTo(node: string, message: Buffer, delivered?: (receivers: number) => void): void {
    if (this.link.ready()) this.#outbox.push(node, message, delivered);
    else delivered?.(0);
  }

  /** Fire and forget to a node (replies, cancels): if it is gone, its caller is gone too. */
  #send(node: string, message: Buffer): void {
    if (this.link.ready()) this.#outbox.push(node, message);
  }
}
