// Properties of the protocol layer under hostile input, with no socket: the decoder, the
// message guard, and RpcPeer fed frames directly with an injected send and fake timers.
// Used by test/fuzz-protocol.test.ts (bounded) and test/fuzz/long.ts (FUZZ_RUNS).

import fc from 'fast-check';
import {
  DEFAULT_LIMITS,
  ErrorCode,
  ProtocolViolation,
  RpcError,
  RpcPeer,
  decodeFrame,
  encode,
  parseMessage,
  readFrame,
  type Limits,
  type Timers,
} from '../../protocol/index.ts';
import { amplificationFrame, anyValue, frame, message, tryEncode } from './arbitraries.ts';
import { SECRET, fuzzHandlers } from './handlers.ts';
import { assertUnpolluted, prototypeSnapshot } from './pollution.ts';

/** Timers that never fire on their own: the test sees every live one, and fires them at will. */
export class FakeTimers implements Timers {
  readonly live = new Set<{ fn: () => void }>();
  setTimeout(fn: () => void): unknown {
    const h = { fn };
    this.live.add(h);
    return h;
  }
  clearTimeout(h: unknown): void {
    this.live.delete(h as { fn: () => void });
  }
  fireAll(): void {
    for (const h of [...this.live]) {
      this.live.delete(h);
      h.fn();
    }
  }
}

/** Anything decode or parse throws must be a ProtocolViolation; anything else is a bug. */
function onlyViolations(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolViolation)) throw new Error(`threw ${String(err)} instead of a ProtocolViolation`);
  }
}

const probe = encode([0, 1, 'echo', ['probe']]);

/** After any input, the (module-level) decoder still decodes a good frame correctly. */
function decoderStillSane(): void {
  const values = decodeFrame(probe, 1);
  const m = values[0] as unknown[];
  if (values.length !== 1 || m[2] !== 'echo' || (m[3] as unknown[])[0] !== 'probe') throw new Error('decoder state corrupted');
}

/**
 * Amplification shapes against the default limits: what gets decoded costs at most its
 * bytes + 64 × maxElements, and reading any such frame (≤ ~1 MiB) stays cheap.
 */
export const amplificationProperty = () =>
  fc.property(amplificationFrame, (bytes) => {
    const t0 = process.cpuUsage();
    onlyViolations(() => {
      for (const m of readFrame(bytes, DEFAULT_LIMITS)) {
        if (m.refused !== undefined) continue;
        if (m.cost > m.end - m.start + 64 * DEFAULT_LIMITS.maxElements) throw new Error(`decoded a message of cost ${m.cost}`);
        checkDecoded(m.value, DEFAULT_LIMITS, m.cost);
      }
    });
    const { user, system } = process.cpuUsage(t0);
    if (user + system > 250_000) throw new Error(`reading a ${bytes.length}-byte frame took ${(user + system) / 1000} ms of CPU`);
  });

const smallLimits: Limits = { ...DEFAULT_LIMITS, maxMessagesPerFrame: 4, maxMethodLength: 8, maxParams: 3, maxDepth: 3, maxElements: 50 };

/**
 * What the scan let through really is within the limits it was given: plain values only
 * (no BigInt, Set, Map, Error, RegExp, typed array but Uint8Array), no deeper, no more
 * values, method and params within bounds; the cost the scan reported covers the values.
 */
function checkDecoded(m: unknown, limits: Limits, cost: number): void {
  let elements = 0;
  const walk = (v: unknown, level: number): void => {
    elements++;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
    if (typeof v === 'number') return;
    if (v instanceof Date || v instanceof Uint8Array) return;
    if (typeof v !== 'object') throw new Error(`decoded a ${typeof v}`);
    if (level > limits.maxDepth) throw new Error(`decoded depth ${level} past ${limits.maxDepth}`);
    if (Array.isArray(v)) return v.forEach((x) => walk(x, level + 1));
    if (Object.getPrototypeOf(v) !== Object.prototype) throw new Error(`decoded a ${Object.prototype.toString.call(v)}`);
    for (const k of Object.keys(v)) {
      elements++;
      walk((v as Record<string, unknown>)[k], level + 1);
    }
  };
  if (!Array.isArray(m)) return walk(m, 0);
  elements++;
  for (const x of m) walk(x, 1);
  // a repeated key decodes to one property: the decoded count can only be lower
  if (elements > limits.maxElements) throw new Error(`decoded ${elements} values past ${limits.maxElements}`);
  if (cost < 64 * elements) throw new Error(`cost ${cost} below 64 × ${elements} values`);
  const [method, params] = m[0] === 0 ? [m[2], m[3]] : m[0] === 2 ? [m[1], m[2]] : [undefined, undefined];
  // The limit is on the string's bytes as sent; each such byte decodes to at most one
  // UTF-16 unit (invalid UTF-8 becomes U+FFFD, 3 bytes re-encoded), so this bound holds.
  if (typeof method === 'string' && method.length > limits.maxMethodLength) throw new Error('decoded a method name past the limit');
  if (Array.isArray(params) && params.length > limits.maxParams) throw new Error('decoded params past the limit');
}

export const decodeProperty = () =>
  fc.property(frame, fc.integer({ min: 1, max: 300 }), fc.boolean(), (bytes, maxMessages, small) => {
    const before = prototypeSnapshot();
    const limits = { ...(small ? smallLimits : DEFAULT_LIMITS), maxMessagesPerFrame: maxMessages };
    onlyViolations(() => {
      const messages = readFrame(bytes, limits);
      if (!Array.isArray(messages) || messages.length === 0 || messages.length > maxMessages) throw new Error('bad decode result');
      let size = 0;
      for (const m of messages) {
        if (m.refused === undefined) checkDecoded(m.value, limits, m.cost);
        else if (m.value !== undefined) throw new Error('a refused message was decoded');
        size += m.cost;
      }
      if (size < bytes.length) throw new Error('costs do not cover the frame');
    });
    decoderStillSane();
    assertUnpolluted(before);
  });

export const parseProperty = () =>
  fc.property(fc.oneof(message, anyValue), fc.boolean(), (value, small) => {
    const limits = small ? smallLimits : DEFAULT_LIMITS;
    onlyViolations(() => {
      const m = parseMessage(value, limits) as unknown[];
      // What passes the guard must really have the shape the engine relies on.
      if (m[0] === 0 || m[0] === 1) {
        const id = m[1] as number;
        if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new Error(`accepted id ${String(id)}`);
      }
      // Sizes are the scan's (decodeProperty); the guard checks the shape.
      if (m[0] === 0 || m[0] === 2) {
        const [method, params] = m[0] === 0 ? [m[2], m[3]] : [m[1], m[2]];
        if (typeof method !== 'string' || method.length === 0) throw new Error('accepted method');
        if (!Array.isArray(params)) throw new Error('accepted params');
      }
    });
  });

/** What one receive run saw; checked after the run. */
interface PeerRun {
  peer: RpcPeer;
  timers: FakeTimers;
  sent: Uint8Array[];
  settled: { ok: boolean; value: unknown }[];
  calls: number;
}

function makePeer(limits: Partial<Limits>): PeerRun {
  const timers = new FakeTimers();
  const sent: Uint8Array[] = [];
  const peer = new RpcPeer({
    send: (f) => sent.push(f),
    timers,
    limits,
    handlers: fuzzHandlers,
  });
  return { peer, timers, sent, settled: [], calls: 0 };
}

/** A macrotask turn: handlers' promises settle and the microtask flush goes out. */
const turn = () => new Promise<void>((r) => setImmediate(r));

export const peerProperty = () =>
  fc.asyncProperty(
    fc.array(frame, { minLength: 1, maxLength: 6 }),
    fc.integer({ min: 0, max: 3 }),
    fc.boolean(),
    fc.boolean(),
    fc.option(fc.nat(), { nil: undefined }),
    async (frames, outgoing, small, fireTimers, reconnectAt) => {
      const before = prototypeSnapshot();
      const run = makePeer(small ? smallLimits : {});
      const { peer, timers, sent, settled } = run;
      // Calls of our own, so hostile responses have something to hit (ids 0..outgoing-1).
      const pending = Array.from({ length: outgoing }, (_, i) =>
        peer.call('remote', [i]).then(
          (value) => settled.push({ ok: true, value }),
          (value) => settled.push({ ok: false, value }),
        ),
      );
      for (const [i, f] of frames.entries()) {
        if (i === (reconnectAt ?? -1) % frames.length) {
          // A drop and a resume between two frames: later requests may be taken as re-sends.
          peer.detach();
          peer.attach();
        }
        try {
          peer.receive(f);
        } catch (err) {
          throw new Error(`receive threw ${String(err)}`);
        }
      }
      await turn();
      if (fireTimers) timers.fireAll(); // every deadline passes: TIMEOUT and $cancel
      peer.close();
      await Promise.all(pending);
      await turn();

      if (peer.pendingIncoming !== 0 || peer.pendingOutgoing !== 0)
        throw new Error(`pending left: ${peer.pendingIncoming} in, ${peer.pendingOutgoing} out`);
      if (timers.live.size !== 0) throw new Error(`${timers.live.size} timers left`);
      if (settled.length !== outgoing) throw new Error('an outgoing call never settled');
      for (const s of settled)
        if (!s.ok && !(s.value instanceof RpcError && typeof s.value.code === 'string'))
          throw new Error(`a call rejected with a non-RpcError: ${String(s.value)}`);
      // Everything the peer sent is well-formed, and no handler's private error text left.
      for (const f of sent) {
        // ...and within the limits it would itself apply: one scan both ways.
        for (const m of readFrame(f, { ...peer.limits, maxMessagesPerFrame: Infinity })) {
          if (m.refused !== undefined) throw new Error(`the peer sent what it would refuse: ${m.refused}`);
          parseMessage(m.value, peer.limits);
        }
        if (Buffer.from(f).includes(SECRET)) throw new Error('a handler error message leaked to the wire');
      }
      decoderStillSane();
      assertUnpolluted(before);
    },
  );

/** A peer that got a readable-id request with a broken shape answers PROTOCOL_ERROR for it. */
export function violationAnswered(bytes: Uint8Array, id: number): { code?: string; violated: boolean } {
  let violated = false;
  const sent: Uint8Array[] = [];
  const peer = new RpcPeer({ send: (f) => sent.push(f), onViolation: () => (violated = true), limits: smallLimits });
  peer.receive(bytes);
  peer.flush();
  for (const f of sent)
    for (const v of decodeFrame(f, Infinity)) {
      const m = v as unknown[];
      if (m[0] === 1 && m[1] === id) return { code: (m[2] as { code?: string })?.code, violated };
    }
  return { violated };
}

export { tryEncode, ErrorCode };
