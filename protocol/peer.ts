// The call engine shared by server and client, as one object per connection: RpcPeer is
// its public face; its state (engine/state.ts) and the functions over it, one concern a
// file, live in engine/ (see docs/ARCHITECTURE.md for the path of a call through them).
// No I/O: the transport hands it frames (`receive`) and gives it `send`; timers are
// injected so tests and other runtimes can drive them.

import { encode } from './codec.ts';
import { ErrorCode, RpcError } from './errors.ts';
import { DEFAULT_LIMITS, announcedBy, type Limits } from './limits.ts';
import { NOTIFICATION } from './messages.ts';
import { FEATURES, ITEMS_FEATURE, LIMITS, SUPPORTED_FEATURES, type PING, type PONG } from './session.ts';
import type { CallOptions } from './contract.ts';
import { heldBytes } from './engine/budget.ts';
import { receive } from './engine/incoming.ts';
import { InboundCall, type PeerOptions } from './engine/options.ts';
import { call, notify } from './engine/outgoing.ts';
import { attach, detach } from './engine/resume.ts';
import { sendAck } from './engine/send.ts';
import { EngineState } from './engine/state.ts';
import { stream } from './engine/streams.ts';
import { close, reset } from './engine/teardown.ts';

export type { Timers } from './engine/pendingCalls.ts';
export { InboundCall, toMap, type AnyHandler, type HeldTotal, type PeerOptions } from './engine/options.ts';
export { outgoingError } from './engine/outgoing.ts';
export { DEFAULT_MAX_HELD_BYTES } from './engine/state.ts';

/**
 * One side of one connection's calls: calls out and their answers, the peer's calls in and
 * the handlers that run them, exactly-once across sockets. Server and client each hold
 * one per connection; the transport feeds it frames (`receive`) and sends what it writes.
 */
export class RpcPeer<C extends InboundCall = InboundCall> extends EngineState<C> {
  constructor(opts: PeerOptions<C>) {
    super(opts);
  }

  /** Calls from here waiting for a reply. */
  get pendingOutgoing(): number {
    return this.outgoingCalls?.size ?? 0;
  }
  /** Calls from the peer whose handlers are still running. */
  get pendingIncoming(): number {
    return this.incoming.size;
  }
  /** True once close() ran: every later call rejects at once. */
  get closed(): boolean {
    return this.closedBy !== undefined;
  }
  /** False between detach() and attach(): writes are dropped (reliable ones kept), state is kept. */
  get attached(): boolean {
    return this.onSocket;
  }
  /** Bytes retained for the peer's `$ack` (the chunks the kept copies are in). */
  get keptBytes(): number {
    return this.reliable.keptBytes;
  }
  /** What this connection holds: running calls' params, kept messages, the transport's queued input. */
  get heldBytes(): number {
    return heldBytes(this);
  }
  /** The peer takes part in acknowledgements and resume (it sent `$ack` first). */
  get peerAcks(): boolean {
    return this.reliable.mode === 'acking';
  }
  /** Bytes written this tick and not yet handed to the transport. */
  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }

  /** The peer announced its receive limits (`$session` limits, `$limits`). */
  setPeerLimits(limits: Partial<Limits>): void {
    this.peerLimits = announcedBy(limits);
  }

  /** The optional features the peer named (SPEC §11: `$session.features`, `$features`); what is not a list names none. */
  setPeerFeatures(features: unknown): void {
    this.peerItems = Array.isArray(features) && features.includes(ITEMS_FEATURE);
  }

  /**
   * A client's `$features`: those of the server's `offered` list (its `$session.features`)
   * this side uses, or undefined when none. Sent right after `$limits`: attach(_, [.., this]).
   */
  featuresAnnouncement(offered: unknown): Uint8Array | undefined {
    const used = Array.isArray(offered) ? SUPPORTED_FEATURES.filter((f) => offered.includes(f)) : [];
    return used.length > 0 ? encode([NOTIFICATION, FEATURES, [used]]) : undefined;
  }

  /** Call the peer's `method`; settles with its result or a coded RpcError (deadline, cancel, disconnect). */
  call(method: string, params: unknown[], opts?: CallOptions): Promise<unknown> {
    return call(this, method, params, opts);
  }

  /**
   * Call a method whose handler returns an async iterable and read its items (`for await`).
   * Every item arrives once, in order, across cuts and resumes; the producer waits while the
   * reader is behind; breaking out of the loop cancels the stream. No deadline unless
   * `opts.timeoutMs` sets one for the whole stream.
   */
  stream(method: string, params: unknown[], opts?: CallOptions): AsyncIterable<unknown> {
    return stream(this, method, params, opts);
  }

  /** Fire and forget. At most once: dropped while detached, resyncing or congested. */
  notify(method: string, params: unknown[]): void {
    notify(this, method, params);
  }

  /** Feed one frame received from the transport. Returns how many messages it held. */
  receive(data: ArrayBuffer | Uint8Array): number {
    return receive(this, data);
  }

  /** Send `$ack [received]` now if anything arrived since the last one (heartbeats). */
  ackIfChanged(): void {
    if (this.onSocket && this.reliable.received !== this.reliable.ackedReceived) sendAck(this);
  }

  /** Heartbeat: `$ack` (if due) then `$ping` (client) or `$pong` (server). */
  heartbeat(method: typeof PING | typeof PONG): void {
    if (!this.onSocket || this.closedBy) return;
    this.ackIfChanged();
    this.writer.write(encode([NOTIFICATION, method, []]));
  }

  /** Send whatever is queued now instead of at the end of the tick. */
  flush(): void {
    this.writer.flush();
  }

  /**
   * The transport dropped but the session may resume: keep pending calls (their deadlines
   * still run), running handlers and kept messages; drop writes until attach().
   */
  detach(): void {
    detach(this);
  }

  /**
   * A transport is (back) in place for this session. `preamble` goes out first (e.g. the
   * session confirmation), then `$ack [received]`. On the session's first socket the kept
   * messages (calls made before it) go out at once; on a resumed one they wait for the
   * peer's first `$ack` (the resync).
   */
  attach(preamble?: Uint8Array, afterAck?: readonly (Uint8Array | undefined)[]): void {
    attach(this, preamble, afterAck);
  }

  /**
   * `$limits` announcing this side's receive limits, or undefined when they are the
   * floor (SPEC §8). Sent right after the first `$ack` of a session: attach(_, [this, …]).
   */
  limitsAnnouncement(keys: readonly (keyof Limits)[]): Uint8Array | undefined {
    const differ: Partial<Limits> = {};
    let any = false;
    for (const k of keys)
      if (this.limits[k] !== DEFAULT_LIMITS[k]) {
        differ[k] = this.limits[k];
        any = true;
      }
    return any ? encode([NOTIFICATION, LIMITS, [differ]]) : undefined;
  }

  /**
   * The session is gone but this peer will serve a new one: pending calls reject with
   * `reason`, running handlers are aborted, kept messages are freed, and the next
   * attach() starts a fresh session.
   */
  reset(reason: RpcError): void {
    reset(this, reason);
  }

  /**
   * The connection is gone: every pending outgoing call rejects with `reason`
   * (DISCONNECTED by default), every running handler's signal fires, kept messages are
   * freed, and later calls reject at once. Idempotent.
   */
  close(reason: RpcError = new RpcError(ErrorCode.DISCONNECTED, 'connection closed')): void {
    close(this, reason);
  }
}
