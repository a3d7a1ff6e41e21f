// Frames from the peer: read (the scan refuses what breaks a limit before it is decoded),
// parsed, and each message sent where it belongs: a response settles a call of ours, a
// request runs (running.ts), a notification runs or is an engine message (`$ack`,
// `$cancel`, `$trace`) or an extension the transport handles.

import { readFrame, type FrameMessage } from '../codec.ts';
import { ErrorCode, RpcError } from '../errors.ts';
import { CANCEL, NOTIFICATION, ProtocolViolation, REQUEST, RESPONSE, parseMessage, type Message } from '../messages.ts';
import { wireError } from '../refusals.ts';
import { ACK, FEATURES } from '../session.ts';
import { TRACE } from '../traceContext.ts';
import { overHeld, pay, refuse, reject } from './budget.ts';
import { decidePlain, receiveAck } from './resume.ts';
import { duplicate, onNotification, onRequest, receiveCancel } from './running.ts';
import { replyError, sendAck } from './send.ts';
import type { EngineState } from './state.ts';

/** Method label of a refusal whose method was never read (the scan refused the message). */
const OTHER = 'other';

/** Feed one frame received from the transport. Returns how many messages it held. */
export function receive(s: EngineState<any>, data: ArrayBuffer | Uint8Array): number {
  if (s.closedBy) return 0;
  let messages: FrameMessage[];
  try {
    messages = readFrame(data, s.limits);
  } catch (err) {
    violation(s, err as ProtocolViolation);
    return 0;
  }
  s.reliable.bytesSinceAck += data.byteLength;
  s.writer.hold();
  try {
    return receiveMessages(s, messages);
  } finally {
    s.writer.release();
  }
}

function receiveMessages(s: EngineState<any>, messages: FrameMessage[]): number {
  const count = messages.length;
  for (let i = 0; i < count; i++) {
    const m = messages[i]!;
    if (m.refused !== undefined) {
      // The scan refused it undecoded (a limit, a type Volley does not carry); the
      // connection stays when the message can be answered or dropped alone.
      if (m.kind === REQUEST && m.id >= 0) {
        refuseRequest(s, m.id, m.refused);
        if (s.closedBy) return count;
        continue;
      }
      // A notification, or a message type a later version adds (SPEC §11): dropped, but it pays.
      if (m.kind >= NOTIFICATION) {
        if (s.opts.admit?.()) s.opts.onRefused?.();
        continue;
      }
      if (m.kind === RESPONSE && m.id >= 0) {
        dispatch(s, [RESPONSE, m.id, { code: ErrorCode.PROTOCOL_ERROR, message: `response refused: ${m.refused}` }, null], 0);
        if (s.closedBy) return count;
        continue;
      }
      violation(s, new ProtocolViolation(m.refused));
      return count;
    }
    let msg: Message;
    try {
      msg = parseMessage(m.value, s.limits);
    } catch (err) {
      const v = err as ProtocolViolation;
      if (!v.fatal) {
        // Over a limit but well-formed: refuse this call alone (a notification is dropped).
        // A message type a later version adds (SPEC §11) is skipped the same way: it pays
        // like a notification, is not counted as received and is not answered.
        if (v.id !== undefined) refuseRequest(s, v.id, v.message);
        else if (s.opts.admit?.()) s.opts.onRefused?.();
        if (s.closedBy) return count;
        continue;
      }
      violation(s, v);
      return count;
    }
    dispatch(s, msg, m.cost, messages, i);
    if (s.closedBy) return count;
  }
  const queuedBefore = s.writer.queued;
  if (s.reliable.mode !== 'plain' && s.reliable.ackDue() && s.onSocket) sendAck(s);
  // Replies of synchronous handlers go out now, inside the transport's own callback
  // (where uWebSockets.js has the socket corked), not a microtask later. An `$ack` alone
  // waits for the microtask flush, to ride with the replies of async handlers.
  if (queuedBefore > 0) s.writer.flush();
  return count;
}

/**
 * A request refused without running (past a limit, or a value Volley does not carry).
 * It still counts as received (its error response is its answer) and still pays the
 * rate limit, so a flood of invalid calls is charged like any other.
 */
function refuseRequest(s: EngineState<any>, id: number, reason: string): void {
  decidePlain(s);
  s.reliable.count();
  if (s.incoming.has(id)) return duplicate(s, id);
  const limited = s.opts.admit?.();
  if (limited) return refuse(s, id, limited, OTHER);
  reject(s, id, wireError(ErrorCode.INVALID_PARAMS, reason), OTHER);
}

/** The peer broke the wire format: answer the request if its id could be read, tell the transport. */
export function violation(s: EngineState<any>, v: ProtocolViolation): void {
  if (v.id !== undefined && !s.incoming.has(v.id)) replyError(s, v.id, wireError(ErrorCode.PROTOCOL_ERROR, v.message));
  s.opts.onViolation?.(v);
}

/** `frame` and `at`: the WebSocket message this one came in, and where (a `$trace` looks at what follows it). */
function dispatch(s: EngineState<any>, msg: Message, cost: number, frame?: FrameMessage[], at = 0): void {
  switch (msg[0]) {
    case RESPONSE: {
      decidePlain(s);
      s.reliable.count();
      const id = msg[1];
      const calls = s.outgoingCalls;
      // Free when it settles a call of ours (we asked for it). One that settles nothing
      // (late after a deadline or cancel, or never asked for) is dropped, and pays: a flood
      // of them is refused like any other (issue 20 #4).
      if (calls !== undefined && (msg[2] == null ? calls.resolve(id, msg[3]) : calls.has(id) && calls.reject(id, RpcError.fromWire(msg[2])))) return;
      pay(s);
      return;
    }
    case REQUEST:
      decidePlain(s);
      s.reliable.count();
      onRequest(s, msg[1], msg[2], msg[3], cost);
      return;
    case NOTIFICATION:
      if (msg[1].charCodeAt(0) === 36 /* $ */) engineMessage(s, msg[1], msg[2], frame, at);
      else {
        decidePlain(s);
        if (s.opts.admit?.() || overHeld(s, cost)) return s.opts.onRefused?.();
        onNotification(s, msg[1], msg[2], cost);
      }
      return;
  }
}

/**
 * A `$` notification. The protocol's own messages are free only while each pairs with work
 * the rate limit already bounds; any other pays like a notification (issue 20 #4: one
 * client sent 10.4 M free `$trace` in 8 s and was never cut).
 */
function engineMessage(s: EngineState<any>, method: string, params: unknown[], frame: FrameMessage[] | undefined, at: number): void {
  if (method === ACK) return receiveAck(s, params[0]);
  if (method === CANCEL) return receiveCancel(s, params[0]);
  // A `$trace` annotates the request right after it (SPEC §10), which pays for both.
  if (method === TRACE && frame?.[at + 1]?.kind === REQUEST) return s.opts.onExtension?.(method, params);
  // The session's first `$features` (SPEC §11): every client that uses a feature sends it once.
  if (method === FEATURES && !s.featuresHeard) {
    s.featuresHeard = true;
    return s.opts.onExtension?.(method, params);
  }
  // The rest pays: `$ping` (answered with a `$pong`), `$pong`, `$limits`, `$session`, a repeated `$features`,
  // unknown ones, and a `$trace` that annotates nothing (dropped unread).
  if (!pay(s) || method === TRACE) return;
  s.opts.onExtension?.(method, params);
}
