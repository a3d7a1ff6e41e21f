// Scripted server → client calls. A client calls `kit.callMe(caseId)`; the kit server
// then calls the client's handlers (echo, add, slow, fail, boom, count: see README) as
// the case says, judges what came back and what crossed the wire, and answers the
// client's call with the verdict {ok, detail}.

import { RpcError } from '../protocol/index.ts';
import type { ServerContext } from '../server/index.ts';
import { fail, pass, same, show, sleep, until, type KitState, type Verdict } from './state.ts';
import { echoValues } from './values.ts';
import { decodeAll, isNote, isRequest, isResponse, messagesOf, noteArg } from './wireLog.ts';

type Script = (kit: KitState, ctx: ServerContext) => Promise<Verdict>;

/** Settle a promise into its value or its RpcError code. */
async function outcome(p: Promise<unknown>): Promise<{ value?: unknown; code?: string; message?: string; data?: unknown }> {
  try {
    return { value: await p };
  } catch (err) {
    const e = err as { code?: string; message?: string; data?: unknown };
    return { code: e.code ?? 'THROWN', message: e.message, data: e.data };
  }
}

const expectCode = async (p: Promise<unknown>, code: string, extra?: (o: Awaited<ReturnType<typeof outcome>>) => string | undefined) => {
  const o = await outcome(p);
  if (o.code !== code) return fail(`expected ${code}, got ${o.code ? `${o.code} (${o.message})` : `result ${show(o.value)}`}`);
  const bad = extra?.(o);
  return bad ? fail(bad) : pass(`${code} as expected`);
};

/** The server's call to the client's slow(ms, tag) must end with the handler aborted and no reply. */
async function abortedWithoutReply(kit: KitState, uid: string, tag: string, how: string): Promise<Verdict> {
  if (!(await until(() => (kit.aborted.get(tag) ?? 0) > 0, 2000)))
    return fail(`${how}: the client's slow handler did not report kit.aborted("${tag}") within 2 s of the $cancel`);
  await sleep(300);
  const msgs = kit.proxy.wiresOf(uid).flatMap((w) => messagesOf(w));
  const req = msgs.find((m) => m.dir === 'down' && isRequest(m, 'slow') && (m.value![3] as unknown[])[1] === tag);
  if (!req) return fail('the request to slow was not seen on the wire');
  const id = req.value![1] as number;
  if (!msgs.some((m) => m.dir === 'down' && isNote(m, '$cancel') && noteArg(m) === id)) return fail(`no $cancel [${id}] went to the client`);
  const reply = msgs.find((m) => m.dir === 'up' && isResponse(m, id));
  if (reply) return fail(`the client answered the cancelled call ${id} anyway: ${show(reply.value)}`);
  return pass(`${how}: handler aborted, no response`);
}

/** An upload (SPEC §12) the server passes: the integers 1 … n, then `code` as its error if given. */
async function* upload(n: number, code?: string): AsyncGenerator<number> {
  for (let i = 1; i <= n; i++) yield i;
  if (code) throw new RpcError(code, 'the upload failed');
}

const scripts: Record<string, Script> = {
  async '3.1'(_kit, { server, uid }) {
    const wrong: string[] = [];
    for (const v of echoValues) {
      const o = await outcome(server.call(uid, 'echo', [v]));
      if (o.code || !same(o.value, v)) wrong.push(`${show(v)} came back as ${o.code ?? show(o.value)}`);
    }
    return wrong.length ? fail(wrong.slice(0, 5).join('; ')) : pass(`${echoValues.length} values echoed`);
  },
  async '3.2'(_kit, { server, uid }) {
    return expectCode(server.call(uid, 'fail', ['APP_NOPE', 'not allowed', { need: [1, 'two'] }]), 'APP_NOPE', (o) =>
      o.message !== 'not allowed' ? `message ${show(o.message)}` : !same(o.data, { need: [1, 'two'] }) ? `data ${show(o.data)}` : undefined,
    );
  },
  async '3.3'(_kit, { server, uid }) {
    return expectCode(server.call(uid, 'boom', []), 'INTERNAL', (o) => (/secret/.test(o.message ?? '') ? 'the handler\'s own message leaked' : undefined));
  },
  async '3.4'(_kit, { server, uid }) {
    return expectCode(server.call(uid, 'noSuchMethod', [1]), 'METHOD_NOT_FOUND');
  },
  async '3.5'(_kit, { server, uid }) {
    return expectCode(server.call(uid, '$echo', [1]), 'METHOD_NOT_FOUND');
  },
  async '3.6'(_kit, { server, uid }) {
    const n = 300;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => outcome(server.call(uid, 'echo', [i]))));
    const wrong = got.map((o, i) => (o.value === i ? undefined : `${i} → ${o.code ?? show(o.value)}`)).filter(Boolean);
    return wrong.length ? fail(`${wrong.length} of ${n} wrong: ${wrong.slice(0, 3).join(', ')}`) : pass(`${n} calls answered`);
  },
  async '3.7'(kit, { server, uid }) {
    const tag = `deadline-${uid}`;
    const o = await outcome(server.call(uid, 'slow', [5000, tag], { timeoutMs: 150 }));
    if (o.code !== 'TIMEOUT') return fail(`expected TIMEOUT on the server, got ${o.code ?? show(o.value)}`);
    return abortedWithoutReply(kit, uid, tag, 'deadline');
  },
  async '3.8'(kit, { server, uid }) {
    const tag = `cancel-${uid}`;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const o = await outcome(server.call(uid, 'slow', [5000, tag], { signal: ac.signal }));
    if (o.code !== 'CANCELLED') return fail(`expected CANCELLED on the server, got ${o.code ?? show(o.value)}`);
    return abortedWithoutReply(kit, uid, tag, 'cancel');
  },
  async '3.9'(_kit, { server, uid }) {
    return expectCode(server.call(uid, 'add', [1]), 'INVALID_PARAMS');
  },
  /** A server → client call pending across a drop is answered once and ran once. */
  async '9.4'(kit, { server, uid }) {
    const key = `s2c-${uid}`;
    const first = outcome(server.call(uid, 'count', [key, 500], { timeoutMs: 15_000 }));
    await sleep(150);
    if (kit.proxy.drop(uid) === 0) return fail('no socket to drop');
    const a = await first;
    if (a.value !== 1) return fail(`first call: expected 1, got ${a.code ?? show(a.value)}`);
    const b = await outcome(server.call(uid, 'count', [key, 0]));
    if (b.value !== 2) return fail(`second call: expected 2 (the first ran once), got ${b.code ?? show(b.value)}`);
    return pass('answered once, ran once');
  },
  /** The client's answer is lost in flight (stalled uplink, then a cut): it must keep and re-send it. */
  async '9.9'(kit, { server, uid }) {
    const key = `reply-lost-${uid}`;
    kit.proxy.stall(uid, 0, 'up');
    const first = outcome(server.call(uid, 'count', [key, 0], { timeoutMs: 15_000 }));
    const held = () => kit.proxy.live(uid).some((w) => w.heldUp?.some((h) => decodeAll(h.frame.payload).some((m) => m?.[0] === 1)));
    if (!(await until(held, 3000))) return fail('the client did not answer count (its answer never reached the kit)');
    await sleep(100); // the request has surely been read: a copy of it after the resume would be a duplicate
    kit.proxy.drop(uid);
    const a = await first;
    if (a.value !== 1) return fail(`expected 1, got ${a.code ?? show(a.value)}`);
    const b = await outcome(server.call(uid, 'count', [key, 0]));
    return b.value === 2 ? pass('the kept answer came after the resume; the handler ran once') : fail(`second call: expected 2, got ${b.code ?? show(b.value)}`);
  },
  /** The server's request is lost in flight (stalled downlink, then a cut): it arrives once after the resume. */
  async '9.10'(kit, { server, uid }) {
    const key = `request-lost-${uid}`;
    kit.proxy.stall(uid);
    const first = outcome(server.call(uid, 'count', [key, 0], { timeoutMs: 15_000 }));
    await sleep(200);
    kit.proxy.drop(uid);
    const a = await first;
    if (a.value !== 1) return fail(`expected 1, got ${a.code ?? show(a.value)}`);
    const b = await outcome(server.call(uid, 'count', [key, 0]));
    return b.value === 2 ? pass('re-sent after the resume, ran once') : fail(`second call: expected 2, got ${b.code ?? show(b.value)}`);
  },
  /**
   * A client that receives more than the spec's floor announces it with `$limits` right
   * after its first `$ack`, and the server may then batch up to that (SPEC §8).
   */
  async '7.6'(kit, { server, uid }) {
    const up = kit.proxy.wiresOf(uid).flatMap((w) => messagesOf(w, 'up'));
    if (!isNote(up[0]!, '$ack') || !up[1] || !isNote(up[1], '$limits'))
      return fail(`the client's first two messages are ${show(up.slice(0, 2).map((m) => m.value))}, want $ack then $limits`);
    const announced = noteArg(up[1]) as { maxMessagesPerFrame?: number };
    if (announced?.maxMessagesPerFrame !== 1024) return fail(`$limits announced ${show(announced)}, want maxMessagesPerFrame 1024`);
    const n = 600;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => outcome(server.call(uid, 'echo', [i]))));
    if (got.some((o, i) => o.value !== i)) return fail('not every call was answered');
    const down = kit.proxy.wiresOf(uid).flatMap((w) => messagesOf(w, 'down'));
    const most = Math.max(...down.map((m) => m.inFrame));
    return most > 256 ? pass(`server frames of up to ${most} messages`) : fail(`the server kept to 256 messages per frame (most ${most}): the $limits were not used`);
  },
  /** `$ack` counts every reliable message received, requests included (SPEC §5). */
  async '9.7'(kit, { server, uid }) {
    const n = 300;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => outcome(server.call(uid, 'echo', [i]))));
    if (got.some((o, i) => o.value !== i)) return fail('not every call was answered');
    await sleep(200);
    const acks = kit.proxy.wiresOf(uid).flatMap((w) => messagesOf(w, 'up')).filter((m) => isNote(m, '$ack')).map(noteArg) as number[];
    if (!acks.some((a) => a >= 256)) return fail(`after ${n} requests from the server the client acknowledged only ${show(acks)}; want an $ack ≥ 256 (every 128)`);
    return pass(`acks ${acks.join(',')}`);
  },
  /** With the heartbeat, the client acknowledges what arrived since its last `$ack`. */
  async '12.10'(_kit, { server, uid }) {
    const all = await outcome(server.call(uid, 'collect', [upload(50)]));
    if (all.code || !same(all.value, Array.from({ length: 50 }, (_, i) => i + 1)))
      return fail(`collect(1 … 50) answered ${all.code ? `${all.code} (${all.message})` : show(all.value)}`);
    return expectCode(server.call(uid, 'collect', [upload(2, 'BAD_CHUNK')]), 'BAD_CHUNK');
  },
  async '12.12'(_kit, ctx) {
    const { server, uid } = ctx;
    const tries: [string, unknown[], string][] = [
      ['$upload', [ctx.id, 0], 'INVALID_PARAMS'], // the client's call kit.callMe: no upload
      ['$upload', [0xffffffff, 0], 'INVALID_PARAMS'], // an id the client never used
      ['$call', ['collect', [5], [0]], 'INVALID_PARAMS'], // index 0 holds a value
      ['$call', ['nope', [null], [0]], 'METHOD_NOT_FOUND'],
    ];
    for (const [method, params, code] of tries) {
      const o = await outcome(server.call(uid, method as never, params as never, { timeoutMs: 5000 }));
      if (o.code !== code) return fail(`${method} ${show(params)}: expected ${code}, got ${o.code ? `${o.code} (${o.message})` : `result ${show(o.value)}`}`);
    }
    const echo = await outcome(server.call(uid, 'echo', ['still here']));
    return echo.value === 'still here' ? pass('each refused, the session stays') : fail(`echo after them: ${show(echo)}`);
  },
  async '10.3'(kit, { server, uid }) {
    const before = kit.proxy.wiresOf(uid).flatMap((w) => messagesOf(w, 'up')).length;
    const o = await outcome(server.call(uid, 'echo', ['tick']));
    if (o.value !== 'tick') return fail('echo failed');
    const heartbeatMs = 200;
    await sleep(heartbeatMs * 3);
    const after = kit.proxy.wiresOf(uid).flatMap((w) => messagesOf(w, 'up')).slice(before);
    const ping = after.findIndex((m) => isNote(m, '$ping'));
    if (ping < 0) return fail('no $ping within three heartbeat intervals');
    const ack = after.slice(0, ping + 1).find((m) => isNote(m, '$ack') && (noteArg(m) as number) >= 1);
    return ack ? pass(`$ack [${noteArg(ack)}] before $ping`) : fail('the client sent $ping without an $ack for the request it had received');
  },
};

export async function runScript(kit: KitState, ctx: ServerContext, caseId: string): Promise<Verdict> {
  const script = scripts[caseId];
  if (!script) return fail(`no script for case ${caseId}`);
  return script(kit, ctx);
}

export const scriptIds = Object.keys(scripts);
