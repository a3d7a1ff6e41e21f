// One connection's call engine state. The engine's modules beside this file are functions
// over it, one concern each (outgoing, incoming, running, budget, resume, teardown); the
// state is one object per connection (RpcPeer extends it), so splitting the engine by
// concern costs no object, and an idle connection holds what it held before.
// The browser build shortens these fields' names (scripts/build-browser.ts, ENGINE_FIELDS):
// a field added here goes there too, under a name no user-facing option has.

import { DEFAULT_TIMEOUT_MS, resolveLimits, type Limits } from '../limits.ts';
import type { RpcError, WireError } from '../errors.ts';
import type { ParamsSchema } from '../schema.ts';
import { FrameWriter, type FrameSink } from './frameWriter.ts';
import { toMap, type AnyHandler, type InboundCall, type PeerOptions } from './options.ts';
import type { Relay, RelayedCalls } from './handover.ts';
import type { PendingCalls } from './pendingCalls.ts';
import type { StreamQueue } from './streams.ts';
import type { Uploads } from './uploads.ts';
import { DEFAULT_MAX_UNACKED_BYTES, ReliableStream } from './reliable.ts';
import { checkUnacked, startSocket } from './resume.ts';

/** Default cap on what one connection may hold. */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

/** Every peer's running calls until its first: an idle connection holds no Map. Only track() writes. */
export const NO_RUNNING: ReadonlyMap<number, unknown> = new Map<number, unknown>();

/** What the engine keeps with a call of its own: its request's seq (for $cancel). */
export type OutgoingData = number;

/** @internal The fields are the engine's; read them through RpcPeer's getters. */
export class EngineState<C extends InboundCall = InboundCall> implements FrameSink {
  /** What this side accepts from the peer (checked on receive). */
  readonly limits: Limits;
  /** The other side's receive limits: what this side checks before it sends. */
  peerLimits: Limits;
  /** Notifications dropped because the transport was congested, detached or resyncing. */
  droppedNotifications = 0;
  /** @internal */ readonly opts: PeerOptions<C>;
  /** @internal */ readonly handlerMap: Map<string, AnyHandler>;
  /** @internal */ readonly schemaMap: Map<string, ParamsSchema>;
  /** @internal */ readonly defaultTimeoutMs: number;
  /** @internal Calls from here; made at the first call (most connections' first is far off or never). */
  outgoingCalls: PendingCalls<OutgoingData> | undefined = undefined;
  /** @internal Calls from the peer still running; the shared empty map until the first (track). */
  incoming = NO_RUNNING as Map<number, C>;
  /** @internal */ readonly writer: FrameWriter;
  /** @internal Numbered messages kept for the peer's `$ack`, and what arrived from it. */
  reliable = new ReliableStream();
  /** @internal Why the connection closed, once it has. */
  closedBy: RpcError | undefined = undefined;
  /** @internal A socket is in place (between attach() and detach()). */
  onSocket: boolean;
  /** @internal */ everAttached = false;
  /** @internal On a resumed socket, until the peer's first `$ack`: reliable messages wait (kept). */
  resyncing = false;
  /** @internal Cancels for requests the peer already had when this side gave up offline (made when first needed). */
  owedCancels: number[] | undefined = undefined;
  /**
   * @internal Kept messages not yet written on the current socket: the newest
   * `unwrittenBytes` of the kept ones (writes on a socket go in seq order). Only what was
   * written can be blamed on a peer that does not acknowledge.
   */
  writtenSeq = 0;
  /** @internal */ unwrittenBytes = 0;
  /** @internal Bytes held by running calls' params (estimated). */
  paramsHeld = 0;
  /** @internal */ readonly maxUnacked: number;
  /** @internal */ readonly maxHeld: number;
  /** @internal The OVERLOADED refusal past maxIncomingPending, made when first needed. */
  overloadedRunning: WireError | undefined = undefined;
  /** @internal The session moved to another node: this engine only relays its calls still in flight (handover.ts). */
  relay: Relay | undefined = undefined;
  /** @internal On the node a session moved to: the old node's calls still waiting (handover.ts). */
  relayedCalls: RelayedCalls | undefined = undefined;
  /** @internal Streams this side reads, by the id of their call (streams.ts); made at the first. */
  streams: Map<number, StreamQueue> | undefined = undefined;
  /** @internal Uploads of calls from here, by call id, until each call settles (uploads.ts); made at the first. */
  uploads: Map<number, Uploads> | undefined = undefined;
  /** @internal The peer takes several stream items in one request (`$items`: it named the feature `items`, SPEC §11, §12). */
  peerItems = false;
  /** @internal The peer's first `$features` arrived (free; a repeated one pays, incoming.ts). */
  featuresHeard = false;

  constructor(opts: PeerOptions<C>) {
    this.opts = opts;
    this.limits = resolveLimits(opts.limits);
    this.peerLimits = resolveLimits(opts.peerLimits);
    this.handlerMap = toMap(opts.handlers);
    this.schemaMap = toMap(opts.schemas);
    this.defaultTimeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxUnacked = opts.maxUnackedBytes ?? DEFAULT_MAX_UNACKED_BYTES;
    this.maxHeld = opts.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
    this.writer = new FrameWriter(this);
    this.onSocket = !opts.detached;
    if (this.onSocket) startSocket(this);
  }

  /** @internal FrameSink: the writer hands a frame to the transport. */
  sendFrame(frame: Uint8Array): void {
    this.opts.send(frame);
  }

  /** @internal FrameSink, after each flush. */
  flushed(): void {
    checkUnacked(this);
  }
}
