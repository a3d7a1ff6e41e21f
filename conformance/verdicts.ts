// Verdicts on what crossed the wire, per case: a client runner asks
// `GET /kit/verdict?case=<id>&uid=<uid>` (or calls `kit.verdict(caseId)`) after doing
// what the case says, and the kit judges the frames it recorded for that uid.

import { DEFAULT_LIMITS } from '../protocol/index.ts';
import { NUMBERS } from './handlers.ts';
import { elements, hasExtension, toHex } from './msgpackWalk.ts';
import type { Wire } from './proxy.ts';
import { fail, pass, show, until, type KitState, type Verdict } from './state.ts';
import { intEncodings } from './vectors.ts';
import { isNote, isReliable, isRequest, isResponse, messagesOf, noteArg, type LoggedMessage } from './wireLog.ts';

type Judge = (kit: KitState, wires: Wire[]) => Verdict | Promise<Verdict>;

const opened = (wires: Wire[]) => wires.filter((w) => w.status === 101);

/** The `$session` info on a socket, and where it came. */
function sessionOf(w: Wire): { info: Record<string, unknown>; seq: number } | undefined {
  const m = messagesOf(w, 'down').find((x) => isNote(x, '$session'));
  return m && { info: noteArg(m) as Record<string, unknown>, seq: m.seq };
}

/** Requests carrying the marker `over:<case>` as first param must never reach the wire. */
const notSent = (caseId: string): Judge => (_kit, wires) => {
  const sent = wires.flatMap((w) => messagesOf(w, 'up')).filter((m) => isRequest(m) && (m.value![3] as unknown[])?.[0] === `over:${caseId}`);
  return sent.length ? fail(`the client sent the over-limit request (${sent[0]!.bytes.length} bytes) instead of refusing it locally`) : pass('refused locally, nothing sent');
};

/** The response the client got to its request for `method`, and the request. */
function replyTo(wires: Wire[], method: string): { req: LoggedMessage; res: LoggedMessage } | undefined {
  for (const w of wires) {
    const msgs = messagesOf(w);
    const req = msgs.find((m) => m.dir === 'up' && isRequest(m, method));
    if (!req) continue;
    const res = msgs.find((m) => m.dir === 'down' && m.seq > req.seq && isResponse(m, req.value![1] as number));
    if (res) return { req, res };
  }
  return undefined;
}

/** A message forwarded this close to its socket's cut may never have been read. */
const IN_FLIGHT_MS = 50;

/**
 * SPEC §5: no reliable message is delivered twice. Over every socket of the uid, in
 * order: a request id must not arrive again while that request is open, and a response
 * must answer an open request. A copy of a message forwarded just before its socket was
 * cut is allowed: the reader may never have seen the first.
 */
export function duplicates(wires: Wire[]): string[] {
  const msgs = wires.flatMap((w) => messagesOf(w)).filter((m) => isReliable(m) && !m.injected).sort((a, b) => a.seq - b.seq);
  const open = { up: new Map<number, LoggedMessage>(), down: new Map<number, LoggedMessage>() };
  const answered = { up: new Map<number, LoggedMessage>(), down: new Map<number, LoggedMessage>() };
  const mayBeLost = (m: LoggedMessage) => m.wire.endedAt > 0 && m.at >= m.wire.endedAt - IN_FLIGHT_MS;
  const found: string[] = [];
  for (const m of msgs) {
    const id = m.value![1] as number;
    const other = m.dir === 'up' ? 'down' : 'up';
    const who = m.dir === 'up' ? 'client' : 'server';
    if (m.value![0] === 0) {
      const first = open[m.dir].get(id);
      if (first && !mayBeLost(first)) found.push(`the ${who} sent request ${id} (${String(m.value![2])}) again while it was open`);
      open[m.dir].set(id, m);
      answered[other].delete(id);
    } else {
      if (open[other].has(id)) {
        open[other].delete(id);
        answered[m.dir].set(id, m);
      } else {
        const first = answered[m.dir].get(id);
        if (first && !mayBeLost(first)) found.push(`the ${who} sent response ${id} twice`);
      }
    }
  }
  return found;
}

const noDuplicates: Judge = (_kit, wires) => {
  if (opened(wires).length < 2) return fail('the client did not resume on a second socket');
  const found = duplicates(wires);
  return found.length ? fail(found.slice(0, 3).join('; ')) : pass('nothing delivered twice');
};

const judges: Record<string, Judge> = {
  '1.1'(_kit, wires) {
    const w = opened(wires)[0];
    if (!w) return fail('no socket opened');
    const down = messagesOf(w, 'down');
    if (!down[0] || !isNote(down[0], '$session')) return fail(`first server message is not $session: ${show(down[0]?.value)}`);
    const up = messagesOf(w, 'up');
    const early = up.find((m) => m.seq < down[0]!.seq);
    if (early) return fail(`the client sent ${show(early.value)} before $session`);
    if (!up[0] || !isNote(up[0], '$ack') || noteArg(up[0]) !== 0) return fail(`first client message must be $ack [0], was ${show(up[0]?.value)}`);
    return pass('$session first; client waited, then $ack [0]');
  },
  /** A `$session` with a feature, a field and a limit from a later version: ignored (SPEC §11). */
  '1.10'(_kit, wires) {
    const w = opened(wires)[0];
    if (!w) return fail('no socket opened');
    const s = sessionOf(w);
    if (!(s?.info.features as unknown[] | undefined)?.includes('x-kit-future')) return fail('the kit did not rewrite $session (is the path /future/?)');
    if (w.clientClose !== undefined) return fail(`the client closed the socket (${w.clientClose})`);
    const claimed = messagesOf(w, 'up').find((m) => isNote(m, '$features') && show(m.value).includes('x-kit-future'));
    if (claimed) return fail(`the client claimed a feature it does not know: ${show(claimed.value)}`);
    return replyTo(wires, 'echo') ? pass('unknown fields ignored, the session works') : fail('no echo answered on the session');
  },
  '1.7'(_kit, wires) {
    const s = opened(wires)[0] && sessionOf(opened(wires)[0]!);
    if (!s) return fail('no $session');
    const missing = ['sid', 'resumed', 'resumeWindowMs', 'heartbeatMs', 'maxMessageBytes', 'limits'].filter((k) => !(k in s.info));
    if (missing.length) return fail(`$session lacks ${missing.join(', ')}`);
    const limits = s.info.limits as Record<string, unknown>;
    const names = ['maxMessageBytes', 'maxMessagesPerFrame', 'maxMethodLength', 'maxParams', 'maxDepth', 'maxElements', 'maxIncomingPending'];
    const bad = names.filter((k) => typeof limits?.[k] !== 'number');
    return bad.length ? fail(`limits lacks numeric ${bad.join(', ')}: ${show(limits)}`) : pass(show(limits));
  },
  '5.1'(_kit, wires) {
    const r = replyTo(wires, 'kit.batch');
    if (!r) return fail('no reply to kit.batch seen');
    const n = (r.req.value![3] as number[])[0]!;
    const same = messagesOf(wires.find((w) => w.records.some((x) => x.seq === r.res.seq))!, 'down').filter((m) => m.seq === r.res.seq);
    const notes = same.filter((m) => isNote(m, 'note')).length;
    return notes >= n ? pass(`${same.length} messages in one frame`) : fail(`only ${notes} notes shared the reply's frame`);
  },
  '5.2'(_kit, wires) {
    const frames = wires.flatMap((w) => w.records.filter((r) => r.dir === 'up' && r.opcode === 2));
    const msgs = wires.flatMap((w) => messagesOf(w, 'up'));
    const perFrame = new Map<number, number>();
    for (const m of msgs) perFrame.set(m.seq, m.inFrame);
    const most = Math.max(0, ...perFrame.values());
    const biggest = Math.max(0, ...frames.map((f) => f.payload.length));
    const calls = msgs.filter((m) => isRequest(m, 'echo')).length;
    if (calls < 600) return fail(`only ${calls} echo requests seen`);
    if (most > DEFAULT_LIMITS.maxMessagesPerFrame) return fail(`a frame held ${most} messages (limit ${DEFAULT_LIMITS.maxMessagesPerFrame})`);
    if (frames.some((f) => f.truncated)) return fail('a frame was larger than the kit records (64 KiB) for 600 small calls');
    return pass(`${frames.length} frames, at most ${most} messages and ${biggest} bytes each`);
  },
  /** Unknown message types from the server: ignored, never counted (SPEC §11). */
  '4.5'(_kit, wires) {
    const w = opened(wires);
    if (w.length !== 1) return fail(`the client used ${w.length} sockets: it must keep the one it had`);
    if (w[0]!.clientClose !== undefined) return fail(`the client closed the socket (${w[0]!.clientClose})`);
    const msgs = messagesOf(w[0]!);
    const unknown = msgs.filter((m) => m.injected && typeof m.value?.[0] === 'number' && ![0, 1, 2].includes(m.value[0]));
    if (unknown.length < 4) return fail(`only ${unknown.length} unknown messages were injected`);
    const last = unknown[unknown.length - 1]!.seq;
    const acks = msgs.filter((m) => m.dir === 'up' && isNote(m, '$ack'));
    for (const a of acks) {
      const had = msgs.filter((m) => m.dir === 'down' && m.seq < a.seq && isReliable(m)).length;
      if ((noteArg(a) as number) > had) return fail(`the client said $ack [${noteArg(a)}] having received ${had} reliable messages: it counted unknown ones`);
    }
    return acks.some((a) => a.seq > last) ? pass(`${unknown.length} unknown messages ignored, acks ${acks.map(noteArg).join(',')}`) : fail('no $ack after the unknown messages (one goes with each heartbeat)');
  },
  '5.3': closedWith(4002),
  '5.4': closedWith(4002),
  '6.4'(_kit, wires) {
    const r = replyTo(wires, 'kit.numbers');
    if (!r) return fail('no reply to kit.numbers seen');
    const got = elements(elements(r.res.bytes)[3]!).map(toHex);
    const wrong = NUMBERS.map((v, i) => (intEncodings(v).includes(got[i]!) ? undefined : `${v} sent as ${got[i]}`)).filter(Boolean);
    return wrong.length ? fail(`the server wrote ${wrong.join(', ')} (want int64/uint64)`) : pass('server wrote int64/uint64');
  },
  '6.6'(_kit, wires) {
    const r = replyTo(wires, 'kit.undefinedResult');
    if (!r) return fail('no reply to kit.undefinedResult seen');
    return hasExtension(r.res.bytes) ? fail(`the result carries an extension type: ${toHex(r.res.bytes)}`) : pass('absent values went out as nil');
  },
  '6.7': notSent('6.7'),
  '7.1': notSent('7.1'),
  '7.2': notSent('7.2'),
  '7.3': notSent('7.3'),
  '7.4': notSent('7.4'),
  '7.5': notSent('7.5'),
  '8.1': cancelSent,
  '8.2': cancelSent,
  '9.1': noDuplicates,
  '9.15': noDuplicates,
  '12.5': noDuplicates,
  '12.7': uploadSent,
  '12.13': itemsTaken,
  '12.11': noDuplicates,
  '9.2': noDuplicates,
  '9.3': noDuplicates,
  '9.4': noDuplicates,
  '9.5': resync,
  '9.9': noDuplicates,
  '9.10': noDuplicates,
  '9.11': noDuplicates,
  '6.10': resync,
  '9.12': offlineCancel('re-sent'),
  '9.13': offlineCancel('had'),
  async '9.14'(kit, wires) {
    for (const w of opened(wires)) {
      const s = sessionOf(w);
      const early = s && messagesOf(w, 'up').find((m) => m.seq < s.seq);
      if (!s) return fail(`socket ${w.id} got no $session`);
      if (early) return fail(`on socket ${w.id} the client sent ${show(early.value)} before $session`);
    }
    return resync(kit, wires);
  },
  '9.6'(_kit, wires) {
    const w = opened(wires)[0];
    if (!w) return fail('no socket');
    const up = messagesOf(w, 'up');
    if (!isNote(up[0]!, '$ack') || noteArg(up[0]!) !== 0) return fail(`first client message must be $ack [0], was ${show(up[0]?.value)}`);
    const acks = up.filter((m) => isNote(m, '$ack')).map(noteArg) as number[];
    if (acks.some((a, i) => i > 0 && a < acks[i - 1]!)) return fail(`acks went down: ${acks}`);
    const received = messagesOf(w, 'down').filter(isReliable).length;
    if (acks.some((a) => a > received)) return fail(`acked more than was received (${received}): ${acks}`);
    return acks.some((a) => a >= 256) ? pass(`acks ${acks.join(',')}`) : fail(`after ${received} responses the acks were ${acks.join(',')}; want one every 128`);
  },
  '10.1'(_kit, wires) {
    const pings = wires.flatMap((w) => messagesOf(w, 'up')).filter((m) => isNote(m, '$ping')).length;
    const pongs = wires.flatMap((w) => messagesOf(w, 'down')).filter((m) => isNote(m, '$pong')).length;
    return pings >= 2 && pongs >= 1 ? pass(`${pings} $ping, ${pongs} $pong`) : fail(`${pings} $ping, ${pongs} $pong`);
  },
  '10.2'(_kit, wires) {
    const w = opened(wires);
    if (w.length < 2) return fail('the client did not reconnect');
    return w[0]!.clientClose === 4008 ? pass('closed 4008, reconnected') : fail(`first socket closed by the client with ${w[0]!.clientClose}`);
  },
  '11.1'(_kit, wires) {
    const w = opened(wires);
    // The 4009 close frame is queued behind the data the reader has not read, so it may be
    // cut before the frame gets out (SPEC §6): no close frame is as good as 4009, any other
    // code is wrong.
    const code = w[0]?.serverClose;
    if (code !== 4009 && code !== undefined) return fail(`the server closed the slow socket with ${code}, not 4009`);
    return w.length >= 2 ? pass(`${code ?? 'cut without a close frame'}, then the client resumed`) : fail('no reconnect after 4009');
  },
  '11.2'(_kit, wires) {
    const w = opened(wires);
    if (w[0]?.serverClose !== 4029) return fail(`the flooding socket was closed with ${w[0]?.serverClose}, not 4029`);
    return w.length === 1 ? pass('4029, no reconnect') : fail('the client reconnected after 4029');
  },
  '1.6'(_kit, wires) {
    const w = opened(wires);
    if (w[0]?.serverClose !== 4000) return fail(`the replaced socket was closed with ${w[0]?.serverClose}, not 4000`);
    return w.length === 2 ? pass('4000, the replaced client did not reconnect') : fail(`${w.length} sockets: the replaced client reconnected`);
  },
};

/**
 * Case 12.13: a client that named the feature `items` was sent the stream as `$items` and
 * answered each once, with nil error and result; one that did not was sent only `$item`.
 */
function itemsTaken(_kit: KitState, wires: Wire[]): Verdict {
  const msgs = wires.flatMap((w) => messagesOf(w));
  const named = msgs.some((m) => m.dir === 'up' && isNote(m, '$features') && [((m.value![2] as unknown[])[0] as unknown[] | undefined)].flat().includes('items'));
  const batches = msgs.filter((m) => m.dir === 'down' && isRequest(m, '$items'));
  if (!named) return batches.length === 0 ? pass('the client did not name items: only $item') : fail(`the kit sent $items to a client that did not name items`);
  if (batches.length === 0) return fail('the client named items but the kit sent no $items: did the client name it after its first $ack?');
  for (const b of batches) {
    const id = b.value![1] as number;
    const answers = msgs.filter((m) => m.dir === 'up' && isResponse(m, id));
    if (answers.length !== 1) return fail(`$items ${id} answered ${answers.length} times`);
    if (show(answers[0]!.value) !== show([1, id, null, null])) return fail(`$items ${id} answered ${show(answers[0]!.value)}, want [1, ${id}, nil, nil]`);
  }
  return pass(`${batches.length} $items, each answered once`);
}

/**
 * Case 12.7: the call went out as `$call ["sumStream", [nil], [0]]`, and the client, the
 * upload's producer, kept at most 16 `$item` requests unanswered (SPEC §12, its credit).
 */
function uploadSent(_kit: KitState, wires: Wire[]): Verdict {
  const msgs = wires.flatMap((w) => messagesOf(w));
  const call = msgs.find((m) => m.dir === 'up' && isRequest(m, '$call'));
  if (!call) return fail('no $call request from the client');
  if (show(call.value![3]) !== show(['sumStream', [null], [0]])) return fail(`$call params ${show(call.value![3])}, want ["sumStream", [nil], [0]]`);
  const pull = msgs.find((m) => m.dir === 'down' && isRequest(m, '$upload'));
  if (!pull) return fail('the server never read the upload ($upload)');
  // Items unanswered by request id: one for an `$item`, its values for an `$items` (feature
  // `items`, which the client may use only once it has named it in `$features`).
  const unanswered = new Map<number, number>();
  const named = msgs.some((m) => m.dir === 'up' && isNote(m, '$features') && [((m.value![2] as unknown[])[0] as unknown[] | undefined)].flat().includes('items'));
  let most = 0;
  for (const m of msgs) {
    const many = isRequest(m, '$items');
    if (m.dir === 'up' && (many || isRequest(m, '$item')) && (m.value![3] as unknown[])[0] === pull.value![1]) {
      if (many && !named) return fail('the client sent $items without naming the feature `items` in $features');
      unanswered.set(m.value![1] as number, many ? ((m.value![3] as unknown[])[1] as unknown[]).length : 1);
    } else if (m.dir === 'down' && isResponse(m)) unanswered.delete(m.value![1] as number);
    let n = 0;
    for (const k of unanswered.values()) n += k;
    most = Math.max(most, n);
  }
  return most <= 16 ? pass(`$call as SPEC §12 says; at most ${most} items unanswered`) : fail(`the client had ${most} items unanswered (credit: 16)`);
}

/**
 * A deadline passed while offline (SPEC §5.4 step 4, §5.5). `re-sent`: the request was
 * lost in flight, so after the resume it goes again with `$cancel [id]` after it, never
 * before. `had`: the server had it running, so it is not re-sent and `$cancel [id]` goes
 * after the server's `$ack` on the resumed socket. Either way the handler is aborted.
 */
function offlineCancel(how: 're-sent' | 'had'): Judge {
  return async (kit, wires) => {
    const w = opened(wires);
    if (w.length < 2) return fail('the client did not resume on a second socket');
    const sent = wires.flatMap((x) => messagesOf(x, 'up').filter((m) => isRequest(m, 'sleep')));
    if (sent.length !== 1) return fail(`the sleep request reached the server ${sent.length} times, want once`);
    const req = sent[0]!;
    const [, key] = req.value![3] as [number, string];
    const id = req.value![1];
    if (how === 're-sent' && req.wire === w[0]) return fail('the request reached the server before the drop (the kit meant to lose it)');
    if (how === 'had' && req.wire !== w[0]) return fail('the request reached the server only after the resume (the kit meant it to run before the drop)');
    const on = w[how === 're-sent' ? w.indexOf(req.wire) : 1]!;
    const up = messagesOf(on, 'up');
    const at = up.findIndex((m) => isNote(m, '$cancel') && noteArg(m) === id);
    if (at < 0) return fail(`no $cancel [${id}] on the resumed socket`);
    if (how === 're-sent' && at < up.indexOf(up.find((m) => m.seq === req.seq && isRequest(m, 'sleep'))!))
      return fail(`$cancel [${id}] came before the re-sent request: it cancels nothing and the request runs`);
    if (how === 'had') {
      const ack = messagesOf(on, 'down').find((m) => isNote(m, '$ack'));
      if (!ack || up[at]!.seq < ack.seq) return fail(`$cancel [${id}] went before the server's $ack on the resumed socket`);
    }
    if (!(await until(() => (kit.cancelled.get(key) ?? 0) > 0, 1500))) return fail(`the server's handler was not aborted (cancelled[${key}] = 0)`);
    return pass(`$cancel [${id}] after the ${how === 're-sent' ? 're-sent request' : "server's $ack"}, handler aborted`);
  };
}

function closedWith(code: number): Judge {
  return (_kit, wires) => {
    const w = opened(wires);
    const hit = w.find((x) => x.records.some((r) => r.injected));
    if (!hit) return fail('nothing was injected');
    if (hit.clientClose !== code) return fail(`the client closed with ${hit.clientClose ?? 'no close frame'}, want ${code}`);
    return w.indexOf(hit) === w.length - 1 ? pass(`closed ${code}, no reconnect`) : fail(`the client reconnected after ${code}`);
  };
}

function cancelSent(kit: KitState, wires: Wire[]): Verdict {
  const msgs = wires.flatMap((w) => messagesOf(w, 'up'));
  const req = msgs.find((m) => isRequest(m, 'sleep'));
  if (!req) return fail('no sleep request seen');
  const [, key] = req.value![3] as [number, string];
  const id = req.value![1];
  if (!msgs.some((m) => m.seq > req.seq && isNote(m, '$cancel') && noteArg(m) === id)) return fail(`no $cancel [${id}] after the sleep request`);
  return (kit.cancelled.get(key) ?? 0) === 1 ? pass('$cancel sent, server handler aborted') : fail(`the server handler's signal fired ${kit.cancelled.get(key) ?? 0} times`);
}

/**
 * SPEC §5 resync on the second socket: the client's first message is `$ack [n]` with n the
 * reliable messages it had received; it sends nothing reliable before the server's first
 * `$ack [m]`; then it re-sends only its reliable messages numbered above m.
 */
function resync(_kit: KitState, wires: Wire[]): Verdict {
  const w = opened(wires);
  if (w.length < 2) return fail('no second socket');
  const [first, second] = [w[0]!, w[1]!];
  const received = messagesOf(first, 'down').filter((m) => isReliable(m) && !m.injected).length;
  const sentBefore = messagesOf(first, 'up').filter(isReliable);
  const up = messagesOf(second, 'up');
  const down = messagesOf(second, 'down');
  if (!up[0] || !isNote(up[0], '$ack')) return fail(`first message on the resumed socket is not $ack: ${show(up[0]?.value)}`);
  if (noteArg(up[0]) !== received) return fail(`client's $ack [${noteArg(up[0])}] on resume, but it had received ${received} reliable messages`);
  const serverAck = down.find((m) => isNote(m, '$ack'));
  if (!serverAck) return fail('the server sent no $ack on the resumed socket');
  const m = noteArg(serverAck) as number;
  if (m !== sentBefore.length) return fail(`server's $ack [${m}] on resume, but the client had sent it ${sentBefore.length} reliable messages`);
  const early = up.find((x) => isReliable(x) && x.seq < serverAck.seq);
  if (early) return fail(`the client sent ${show(early.value)} before the server's $ack`);
  const resent = up.filter((x) => isRequest(x) && sentBefore.some((s) => s.value![1] === x.value![1] && s.value![2] === x.value![2]));
  if (resent.length) return fail(`the client re-sent ${resent.length} requests the server had acknowledged (ids ${resent.map((x) => x.value![1]).join(',')})`);
  return pass(`client $ack [${received}], server $ack [${m}], nothing re-sent twice`);
}

export async function judge(kit: KitState, uid: string, caseId: string): Promise<Verdict> {
  const j = judges[caseId];
  if (!j) return fail(`no verdict for case ${caseId}`);
  return j(kit, kit.proxy.wiresOf(uid));
}

export const verdictIds = Object.keys(judges);
