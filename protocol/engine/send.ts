// Writing: reliable messages (requests and responses, numbered and kept until the peer
// acknowledges them) and the `$ack`s that acknowledge the peer's.

import { encode } from '../codec.ts';
import type { WireError } from '../errors.ts';
import { NOTIFICATION } from '../messages.ts';
import { errorResponse } from '../refusals.ts';
import { ACK } from '../session.ts';
import { chargeTotal } from './budget.ts';
import type { EngineState } from './state.ts';

/**
 * A request or response: numbered, kept (owned bytes) until the peer acknowledges it,
 * written now unless there is no socket or the socket waits for its resync. Returns its seq.
 */
export function sendReliable(s: EngineState<any>, bytes: Uint8Array, requestId: number): number {
  const reliable = s.reliable;
  if (reliable.mode === 'plain') {
    if (s.onSocket && !s.resyncing) s.writer.write(bytes);
    return reliable.push(bytes, requestId);
  }
  // A copy is kept for a re-send (reliable.ts copies it into chunks of its own); the
  // encoder's bytes go out now. They stay valid through this tick's flush, and they are
  // off the V8 heap already: handing the socket a small on-heap copy made V8 move it out
  // (a malloc and an ArrayBuffer per message, once the largest single cost of a call).
  const before = reliable.keptBytes;
  const seq = reliable.push(bytes, requestId);
  chargeTotal(s, reliable.keptBytes - before);
  if (s.onSocket && !s.resyncing) writeKept(s, seq, bytes);
  else s.unwrittenBytes += bytes.byteLength;
  return seq;
}

/** Write a kept message on the current socket (in seq order). */
export function writeKept(s: EngineState<any>, seq: number, bytes: Uint8Array): void {
  s.writtenSeq = seq;
  s.writer.write(bytes);
}

/** An error response: reliable like any response (the caller waits for it). */
export function replyError(s: EngineState<any>, id: number, error: WireError): void {
  if (s.closedBy) return;
  let bytes: Uint8Array;
  try {
    bytes = errorResponse(id, error);
  } catch {
    // error data that can't be encoded: send the code and message alone
    bytes = errorResponse(id, { code: error.code, message: error.message });
  }
  if (s.relay) return s.relay.response(id, bytes); // the player is on another node now
  sendReliable(s, bytes, -1);
}

export function sendAck(s: EngineState<any>): void {
  s.writer.write(encode([NOTIFICATION, ACK, [s.reliable.acked()]]));
}
