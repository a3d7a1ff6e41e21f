// Exactly-once across sockets: whether the peer takes part (its first `$ack`, or a plain
// msgpack-rpc peer), its acknowledgements, sockets detached and attached, and the resync
// on a resumed socket (what is still kept is re-sent, in seq order).

import { encode } from '../codec.ts';
import { CANCEL, NOTIFICATION, ProtocolViolation } from '../messages.ts';
import { chargeTotal, pay } from './budget.ts';
import { violation } from './incoming.ts';
import { sendAck, writeKept } from './send.ts';
import type { EngineState } from './state.ts';

/** A reliable message or a plain notification came before any `$ack`: a plain peer. */
export function decidePlain(s: EngineState<any>): void {
  if (s.reliable.mode !== 'unknown') return;
  chargeTotal(s, -s.reliable.becomePlain());
  s.unwrittenBytes = 0;
}

/** `$ack`: free when it says something new (or opens a socket's resync); a repeat pays. */
export function receiveAck(s: EngineState<any>, n: unknown): void {
  const reliable = s.reliable;
  const news = reliable.mode === 'unknown' || (reliable.mode === 'acking' && (s.resyncing || n !== reliable.peerAcked));
  if (news || pay(s)) onAck(s, n);
}

function onAck(s: EngineState<any>, n: unknown): void {
  const reliable = s.reliable;
  if (reliable.mode === 'plain') return; // it decided not to take part; late acks mean nothing
  const invalid = reliable.invalidAck(n);
  if (invalid) return violation(s, new ProtocolViolation(invalid));
  if (reliable.mode === 'unknown') reliable.mode = 'acking';
  const before = reliable.keptBytes;
  reliable.ack(n as number, (seq, byteLength, requestId) => {
    // The peer had this request when we gave it up offline: its cancel is owed.
    if (reliable.cancelOwed?.delete(seq)) (s.owedCancels ??= []).push(requestId);
    if (seq > s.writtenSeq) s.unwrittenBytes -= byteLength;
  });
  chargeTotal(s, reliable.keptBytes - before);
  if (s.resyncing) resync(s);
}

/**
 * The peer's first `$ack [n]` on a resumed socket arrived (kept ≤ n are dropped): re-send
 * what is left, in seq order, each given-up request followed by its `$cancel`.
 */
function resync(s: EngineState<any>): void {
  s.resyncing = false;
  s.unwrittenBytes = 0;
  const reliable = s.reliable;
  reliable.forEachKept((seq, bytes, requestId) => {
    writeKept(s, seq, bytes);
    if (reliable.cancelOwed?.delete(seq)) s.writer.write(encode([NOTIFICATION, CANCEL, [requestId]]));
  });
  const owed = s.owedCancels;
  if (owed === undefined) return;
  s.owedCancels = undefined;
  // An id reallocated since belongs to a new call: its cancel would hit the wrong one.
  for (const id of owed) if (!s.outgoingCalls?.has(id)) s.writer.write(encode([NOTIFICATION, CANCEL, [id]]));
}

/**
 * After each flush: past maxUnackedBytes written and not acknowledged, exactly-once can't
 * be kept silently (a reader that far behind has normally been cut 4009 by the
 * transport's hard limit first, which keeps the session).
 */
export function checkUnacked(s: EngineState<any>): void {
  const reliable = s.reliable;
  if (!s.onSocket || reliable.mode === 'plain' || reliable.keptBytes - s.unwrittenBytes <= s.maxUnacked) return;
  if (reliable.mode === 'unknown') {
    // The peer never said it acknowledges: treat it as a plain msgpack-rpc peer.
    chargeTotal(s, -reliable.becomePlain());
    s.unwrittenBytes = 0;
    return;
  }
  s.opts.onViolation?.(new ProtocolViolation(`peer is not acknowledging: over ${s.maxUnacked} bytes unacknowledged`));
}

/** The socket dropped but the session may resume: writes are dropped until attach(). */
export function detach(s: EngineState<any>): void {
  if (!s.onSocket) return;
  s.onSocket = false;
  s.resyncing = false;
  s.writer.clear();
  // Whatever is kept must be written again on the next socket.
  s.writtenSeq = s.reliable.peerAcked;
  s.unwrittenBytes = s.reliable.keptBytes;
}

/** A socket is (back) in place: `preamble` first, then `$ack`, `afterAck`, and the kept messages or the resync. */
export function attach(s: EngineState<any>, preamble?: Uint8Array, afterAck?: readonly (Uint8Array | undefined)[]): void {
  if (s.closedBy || s.onSocket) return;
  s.onSocket = true;
  if (preamble) s.writer.write(preamble);
  startSocket(s, afterAck);
}

export function startSocket(s: EngineState<any>, afterAck?: readonly (Uint8Array | undefined)[]): void {
  const resumed = s.everAttached;
  s.everAttached = true;
  if (s.reliable.mode === 'plain') return;
  sendAck(s);
  for (const m of afterAck ?? []) if (m) s.writer.write(m);
  if (resumed) {
    s.resyncing = true;
    return;
  }
  resync(s); // as if the peer had said `$ack [0]`: everything kept goes out
}
